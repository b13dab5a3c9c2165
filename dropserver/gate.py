"""The anti-bot gate in front of every purchase and entry.

- Proof of work: a challenge is only issued once the drop is open, bound to drop, person,
  action and IP prefix, signed (no KDF on the request path: the pool pre-derives), and its id
  is consumed in the same Lua script as the purchase or entry, so a payload works once.
- Rate limits per person, IP prefix and device: GCRA, charged inside the same script. The
  challenge endpoint, which writes nothing shared, is limited in this process
  (:mod:`dropserver.local_limits`) so that it needs no round trip.
- Adaptive difficulty: live demand of identified persons (:mod:`dropserver.demand`); each
  level reached doubles the work of the challenges issued.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from dropserver.clientip import client_ip
from dropserver.config import Settings
from dropserver.drops import Drop
from dropserver.errors import ApiError, forbidden, invalid
from dropserver.identity import Buyer
from dropserver.keys import DropKeys
from dropserver.local_limits import LocalLimiter
from dropserver.metrics import Metrics
from dropserver.pow import (
    BoundIssuer,
    Difficulty,
    PowError,
    PreDerivationPool,
    Puzzle,
    Ticket,
    check_binding,
    verify_payload,
)
from dropserver.ratelimit import (
    KINDS,
    RateLimit,
    RateLimitResult,
    RateLimits,
    ip_prefix,
    limiter_args,
)
from dropserver.refusals import RefusalTally

DEVICE_HEADER = "X-Device-Id"
_OFF: list[str | int] = [0, 0, 0]  # a limiter switched off (never modified)
MAX_LEVEL_FACTOR = 1 << 6  # adaptive difficulty never multiplies the work by more than 64


@dataclass(slots=True)  # not frozen: built per request (see Attempt)
class Origin:
    """Where a request comes from, as far as the limits are concerned."""

    ip_prefix: str
    device: str | None


# What LocalLimiter.check answers when every limiter is off.
_UNLIMITED = RateLimitResult(False, 0, 0, 0, -1, 0)


def action_of(drop: Drop) -> str:
    return "enter" if drop.mode == "lottery" else "buy"


class Gate:
    def __init__(
        self,
        settings: Settings,
        pool: PreDerivationPool[Puzzle],
        metrics: Metrics,
        refusals: RefusalTally,
    ) -> None:
        self._settings = settings
        self._refusals = refusals
        self._pow = settings.pow
        self._pool = pool
        self._issuer = BoundIssuer(
            hmac_secret=settings.pow.secret, key_signature_secret=settings.pow.key_signature_secret
        )
        self._trusted_proxies = settings.server.trusted_proxies
        self._metrics = metrics
        self._challenge_limits = LocalLimiter()
        self._limits_of: dict[str, RateLimits] = {}  # drop id -> its limits merged with defaults
        # drop id -> per kind (person, ip, device): limiter key prefix and ARGV triple
        self._limiter_plans: dict[str, list[tuple[str, list[str | int]]]] = {}
        # drop id -> per kind: this process's challenge limiter key prefix and the limit
        self._challenge_plans: dict[str, list[tuple[str, RateLimit | None]]] = {}
        self._shown_difficulty: dict[str, int] = {}  # drop id -> counter_max in the gauge
        self._served: dict[str, Difficulty] = {}  # algorithm -> the level last served

    # --- where a request comes from -------------------------------------------------------

    def origin(self, request: web.Request) -> Origin:
        try:
            prefix = ip_prefix(client_ip(request, self._trusted_proxies))
        except ValueError:
            prefix = "unknown"
        device = request.headers.get(DEVICE_HEADER)
        if device is not None and (
            not 1 <= len(device) <= 128 or any(not 0x21 <= ord(c) <= 0x7E for c in device)
        ):
            raise invalid(f"{DEVICE_HEADER} must be 1 to 128 visible ASCII characters")
        return Origin(prefix, device)

    # --- rate limits -----------------------------------------------------------------------

    def _merged(self, drop: Drop) -> RateLimits:
        """The drop's limits with the deployment's defaults (cached: both are immutable)."""
        limits = self._limits_of.get(drop.id)
        if limits is None:
            limits = self._limits_of[drop.id] = drop.rate_limits.merge(self._settings.limits)
        return limits

    def limiters(
        self, drop: Drop, keys: DropKeys, buyer: Buyer, origin: Origin
    ) -> tuple[list[str], list[str | int]]:
        """The three limiter keys (person, ip, device) and their ARGV triples; a kind with no
        limit, or a device limit without a device id, is switched off with (0, 0, 0)."""
        plan = self._limiter_plans.get(drop.id)
        if plan is None:
            # Per kind: the key prefix and the ARGV triple, which depend on the drop alone.
            limits = self._merged(drop)
            plan = self._limiter_plans[drop.id] = [
                (keys.limiter_prefix(kind), limiter_args(limits.get(kind))) for kind in KINDS
            ]
        (person_key, person_args), (ip_key, ip_args), (device_key, device_args) = plan
        device = origin.device
        if device is None:
            device_key, device_args = device_key + "-", _OFF
        else:
            device_key += device
        return (
            [person_key + buyer.person, ip_key + origin.ip_prefix, device_key],
            [*person_args, *ip_args, *device_args],
        )

    def check_challenge_limits(self, drop: Drop, buyer: Buyer, origin: Origin) -> RateLimitResult:
        """Charge the challenge request to this process's limiters (person, ip, device)."""
        plan = self._challenge_plans.get(drop.id)
        if plan is None:
            # Per kind: the key prefix and the limit, which depend on the drop alone.
            limits = self._merged(drop)
            plan = self._challenge_plans[drop.id] = [
                (f"{drop.id} {kind} ", limits.get(kind)) for kind in KINDS
            ]
        (person_key, person_limit), (ip_key, ip_limit), (device_key, device_limit) = plan
        if person_limit is None and ip_limit is None and device_limit is None:
            return _UNLIMITED
        device = origin.device
        return self._challenge_limits.check(
            [
                (person_key + buyer.person, person_limit),
                (ip_key + origin.ip_prefix, ip_limit),
                (device_key + device, device_limit) if device else ("", None),
            ]
        )

    def rate_limited_reply(self, drop_id: str, reply: list[Any]) -> ApiError:
        """The 429 for a script's rate-limited reply ``{6, index, limit, remaining, retry,
        reset}``."""
        return self.rate_limited(drop_id, RateLimitResult.from_reply([1, *reply[1:]]))

    def rate_limited(self, drop_id: str, result: RateLimitResult) -> ApiError:
        """The 429 for a refusal by the limiter at ``result.index`` (1..3: person, ip, device)."""
        kind = KINDS[result.index - 1] if 1 <= result.index <= 3 else "unknown"
        self._metrics.ratelimit_rejections.inc(drop_id, kind)
        retry = result.retry_after_seconds()
        message = (
            f"too many requests ({kind} limit); retry after {retry} s"
            if retry is not None
            else f"this request exceeds the {kind} limit's burst and can never pass"
        )
        return ApiError(
            429, "rate_limited", message, headers=result.headers(), extra={"kind": kind}
        )

    # --- proof of work ---------------------------------------------------------------------

    def difficulty(self, drop: Drop, level: int) -> Difficulty:
        assert drop.pow is not None
        base = drop.pow.difficulty
        if not drop.pow.adaptive or level <= 0:
            return base
        factor = min(1 << level, MAX_LEVEL_FACTOR)
        # Doubling counter_max doubles the expected work (the secret counter lies in
        # [counter_max/2, counter_max]) without touching the KDF cost a phone must afford.
        return replace(base, counter_max=min(base.counter_max * factor, 10_000_000))

    def prepare(self, drop: Drop) -> None:
        """Start pre-deriving a drop's base level (at creation, long before its opening)."""
        if drop.pow is not None:
            self._pool.ensure(drop.pow.difficulty)

    def issue(self, drop: Drop, buyer: Buyer, origin: Origin, level: int) -> bytes | None:
        """A challenge for this buyer, as the JSON bytes of the response; None when its level
        has no puzzle ready (then :meth:`issue_derived`). Synchronous: the usual challenge
        request awaits nothing."""
        difficulty = self.difficulty(drop, level)
        puzzle = self._pool.take(difficulty)  # refills below its low water mark
        if puzzle is None:
            return None
        return self._issued(drop, buyer, origin, level, difficulty, puzzle)

    async def issue_derived(self, drop: Drop, buyer: Buyer, origin: Origin, level: int) -> bytes:
        """:meth:`issue` on a puzzle derived for this request (the stock ran out)."""
        difficulty = self.difficulty(drop, level)
        puzzle = await self._pool.derive_async(difficulty)
        return self._issued(drop, buyer, origin, level, difficulty, puzzle)

    def _issued(
        self,
        drop: Drop,
        buyer: Buyer,
        origin: Origin,
        level: int,
        difficulty: Difficulty,
        puzzle: Puzzle,
    ) -> bytes:
        m = self._metrics
        # Only on a change (a gauge set takes a lock).
        if self._shown_difficulty.get(drop.id) != difficulty.counter_max:
            self._shown_difficulty[drop.id] = difficulty.counter_max
            m.child(m.pow_difficulty, drop.id).set(difficulty.counter_max)  # type: ignore[attr-defined]
        self._served[difficulty.algorithm] = difficulty
        if drop.pow is not None and drop.pow.adaptive:
            # The next level up is likely next: have some ready before it is asked for.
            self._pool.start(self.difficulty(drop, level + 1))
        challenge = self._issuer.issue(
            puzzle,
            expires_at=int(time.time()) + self._pow.ttl_seconds,
            drop_id=drop.id,
            pid=buyer.person,
            action=action_of(drop),
            ip_prefix=origin.ip_prefix,
        )
        m.pow_issued.inc(drop.id)
        return challenge

    def publish_pool_stock(self) -> None:
        """Set the pool gauges (at scrape time, not per challenge): per algorithm, the stock
        of the level last served."""
        m = self._metrics
        for algorithm, difficulty in list(self._served.items()):
            m.child(m.pow_pool_stock, algorithm).set(self._pool.stock(difficulty))  # type: ignore[attr-defined]

    def verify(
        self, drop: Drop, body: dict[str, Any], buyer: Buyer, origin: Origin
    ) -> Ticket | None:
        """The ticket of a purchase or entry body, or None for a drop without proof of work.

        Signature, expiry and binding are checked here, in pure CPU; the ticket's single use
        is enforced by the Lua script that consumes it.
        """
        if drop.pow is None:
            return None
        payload = body.get("pow")
        try:
            if not isinstance(payload, str):
                raise PowError(
                    "pow_invalid", "a proof-of-work payload (body field pow) is required"
                )
            ticket = verify_payload(
                payload,
                hmac_secret=self._pow.secret,
                key_signature_secret=self._pow.key_signature_secret,
                now=time.time(),
                allow_slow_path=False,
            )
            check_binding(
                ticket,
                drop_id=drop.id,
                pid=buyer.person,
                action=action_of(drop),
                ip_prefix=origin.ip_prefix,
            )
        except PowError as exc:
            self.count_verification(drop.id, exc.code)
            self._refusals.count(drop.id, exc.code)  # the script never sees this attempt
            raise forbidden(exc.code, exc.message) from exc
        return ticket

    def count_verification(self, drop_id: str, outcome: str) -> None:
        self._metrics.pow_verifications.inc(drop_id, outcome)
