"""GCRA rate limits kept in this process, for the challenge endpoint.

Purchases and entries are limited inside their Lua script, on Redis, across every server
process. Issuing a challenge writes nothing shared (it is one signature over a pre-derived
puzzle) and buys nothing by itself: a ticket still passes the purchase script's limits and is
consumed there. What the challenge limit protects is this process's CPU, so it is enforced
here, without a Redis round trip, with the same arithmetic as ``lua/include/gcra.lua``
(redis-cell's): one TAT per key, integer microseconds, all limiters checked before any is
charged, the same verdict and headers. Behind N processes a person can get up to N times the
configured challenge rate; their purchases stay limited once, in Redis.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from dropserver.ratelimit import RateLimit, RateLimitResult

PRUNE_EVERY = 50_000  # charges between sweeps of keys whose bucket is full again


def _ceil_ms(us: int) -> int:
    return -1 if us < 0 else -(-us // 1000)


class LocalLimiter:
    """TATs by key in a dict; a key whose TAT has passed is the same as no key, so they are
    swept out every ``PRUNE_EVERY`` charges and memory follows the number of active keys."""

    def __init__(self) -> None:
        self._tat: dict[str, int] = {}
        self._since_prune = 0

    def __len__(self) -> int:
        return len(self._tat)

    def check(
        self, limiters: Sequence[tuple[str, RateLimit | None]], now_us: int | None = None
    ) -> RateLimitResult:
        """Check every limiter, charge all of them (one unit each) only if all pass.

        ``limiters`` are (key, limit) pairs; ``None`` switches one off. The result is
        ``gcra_verdict``'s: when refused, the limiter with the longest wait (its index is the
        1-based position in ``limiters``); when allowed, the tightest one.
        """
        now = time.monotonic_ns() // 1000 if now_us is None else now_us
        tats = self._tat
        pick: tuple[int, int, int, int, int] | None = None  # index, limit, remaining, retry, reset
        limited = False
        writes: list[tuple[str, int]] = []
        for index, (key, limit) in enumerate(limiters, 1):
            if limit is None:
                continue
            emission = limit.emission_interval_us
            tau = emission * limit.burst
            tat = tats.get(key, now)
            new_tat = max(tat, now) + emission
            diff = now - (new_tat - tau)
            if diff < 0:
                retry = -diff if emission <= tau else -1
                ttl = max(tat - now, 0)
            else:
                retry = -1
                ttl = new_tat - now
                writes.append((key, new_tat))
            spare = tau - ttl
            remaining = spare // emission if spare > 0 else 0
            if diff < 0:
                if not limited or (pick is not None and retry > pick[3]):
                    pick = (index, limit.burst, remaining, retry, ttl)
                limited = True
            elif not limited and (
                pick is None or remaining < pick[2] or (remaining == pick[2] and ttl > pick[4])
            ):
                pick = (0, limit.burst, remaining, retry, ttl)
        if not limited:
            for key, new_tat in writes:
                tats[key] = new_tat
            self._since_prune += 1
            if self._since_prune >= PRUNE_EVERY:
                self.prune(now)
        if pick is None:
            return RateLimitResult(False, 0, 0, 0, -1, 0)
        index, limit_value, remaining, retry, reset = pick
        return RateLimitResult(
            limited, index if limited else 0, limit_value, remaining, _ceil_ms(retry),
            _ceil_ms(reset),
        )  # fmt: skip

    def prune(self, now_us: int | None = None) -> None:
        """Forget keys whose bucket is full again (their TAT has passed)."""
        now = time.monotonic_ns() // 1000 if now_us is None else now_us
        self._tat = {k: t for k, t in self._tat.items() if t > now}
        self._since_prune = 0
