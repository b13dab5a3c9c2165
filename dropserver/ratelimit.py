"""Rate limits: configuration, ARGV encoding for the GCRA Lua code, and decoding its verdict.

The limiter itself is GCRA as redis-cell implements it (``lua/include/gcra.lua``), run inside
Redis on the Redis clock. This module only turns the API's view of a limit into script arguments
and the script's reply into HTTP headers.

Mapping onto redis-cell: the API says ``rate`` (events per second, may be fractional) and
``burst`` (how many requests may arrive at once). redis-cell's emission interval is
``T = 1 / rate`` (sent as whole microseconds) and its ``max_burst`` is ``burst - 1``, so
``tau = T * burst`` and the ``limit`` it reports is ``burst``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from dropserver.keys import LIMITER_KINDS

KINDS = LIMITER_KINDS

# Bounds shared with gcra.lua. T is sent in whole microseconds, so a rate above 1e6/s would
# round to T = 0, which the script reads as "limiter off". Spans are capped at 2^50 us
# (about 35.7 years) so the script's integer-microsecond sums stay exact in a Lua double.
MAX_RATE = 1_000_000.0
MAX_SPAN_US = 2**50
MAX_BURST = 1_000_000

IPV4_PREFIX = 24
IPV6_PREFIX = 56


def _emission_interval_us(rate: float) -> int:
    # redis-cell's T in whole microseconds; the rounding error is under 0.5 us per event.
    return max(1, round(1_000_000 / rate))


def _validate(rate: object, burst: object, where: str) -> tuple[float, int]:
    # bool is an int subclass; "rate": true must not mean 1 event per second.
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        raise ValueError(f"{where}: rate must be a number, got {rate!r}")
    # Written as "not (x > 0)" so NaN fails too; comparisons also work for huge ints.
    if not rate > 0:
        raise ValueError(f"{where}: rate must be a number > 0, got {rate!r}")
    if not rate <= MAX_RATE:
        raise ValueError(f"{where}: rate must be at most {MAX_RATE:g} per second, got {rate!r}")
    if not isinstance(burst, int) or isinstance(burst, bool):
        raise ValueError(f"{where}: burst must be an integer, got {burst!r}")
    if not 1 <= burst <= MAX_BURST:
        raise ValueError(f"{where}: burst must be between 1 and {MAX_BURST}, got {burst!r}")
    # The float test first: round() of an infinite interval (rate 5e-324) would raise.
    if 1_000_000 / rate > MAX_SPAN_US or _emission_interval_us(rate) * burst > MAX_SPAN_US:
        raise ValueError(
            f"{where}: burst / rate (the time a full bucket takes to refill) must be at most "
            f"{MAX_SPAN_US // 1_000_000} seconds"
        )
    return float(rate), burst


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``rate`` events per second on average, ``burst`` of them at once on an idle limiter."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        rate, _ = _validate(self.rate, self.burst, "rate limit")
        # RateLimit(1, 5) and RateLimit(1.0, 5) are the same limit; keep one representation.
        object.__setattr__(self, "rate", rate)

    @property
    def emission_interval_us(self) -> int:
        """redis-cell's T in whole microseconds (>= 1 for any valid rate)."""
        return _emission_interval_us(self.rate)

    @property
    def limit(self) -> int:
        """What clients see as ``RateLimit-Limit``: redis-cell's ``max_burst + 1``."""
        return self.burst

    @classmethod
    def from_json(cls, obj: object, where: str = "rate limit") -> RateLimit:
        if not isinstance(obj, Mapping):
            raise ValueError(f'{where}: must be an object {{"rate": ..., "burst": ...}}')
        unknown = sorted(str(k) for k in obj if k not in ("rate", "burst"))
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
        missing = [k for k in ("rate", "burst") if k not in obj]
        if missing:
            raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
        rate, burst = obj["rate"], obj["burst"]
        # Validated here as well as in __post_init__ so the message names the JSON path.
        rate, burst = _validate(rate, burst, where)
        return cls(rate=rate, burst=burst)

    def to_json(self) -> dict[str, Any]:
        return {"rate": self.rate, "burst": self.burst}


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The limits of one drop by kind; ``None`` = not set here (defaults apply on merge)."""

    person: RateLimit | None = None
    ip: RateLimit | None = None
    device: RateLimit | None = None

    KINDS: ClassVar[tuple[str, ...]] = KINDS

    def merge(self, defaults: RateLimits) -> RateLimits:
        """Kinds this object does not set take the deployment's defaults."""
        return RateLimits(
            person=self.person if self.person is not None else defaults.person,
            ip=self.ip if self.ip is not None else defaults.ip,
            device=self.device if self.device is not None else defaults.device,
        )

    def get(self, kind: str) -> RateLimit | None:
        if kind not in KINDS:
            raise ValueError(f"unknown rate limit kind {kind!r}")
        limit: RateLimit | None = getattr(self, kind)
        return limit

    @classmethod
    def from_json(cls, obj: object, where: str = "rate_limits") -> RateLimits:
        """``{"person": {...}, "ip": {...}, "device": {...}}``; each optional, null = absent."""
        if not isinstance(obj, Mapping):
            raise ValueError(f"{where}: must be an object with keys among {', '.join(KINDS)}")
        unknown = sorted(str(k) for k in obj if k not in KINDS)
        if unknown:
            raise ValueError(
                f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(KINDS)})"
            )
        parsed: dict[str, RateLimit | None] = {}
        for kind in KINDS:
            value = obj.get(kind)
            parsed[kind] = None if value is None else RateLimit.from_json(value, f"{where}.{kind}")
        return cls(**parsed)

    def to_json(self) -> dict[str, Any]:
        return {kind: limit.to_json() for kind in KINDS if (limit := self.get(kind)) is not None}


def limiter_args(limit: RateLimit | None, quantity: int = 1) -> list[str | int]:
    """The three ARGV values of one limiter for gcra.lua: emission_us, burst, quantity.

    ``None`` encodes a switched-off limiter (0, 0, 0), for scripts with a fixed KEYS layout;
    quantity 0 is a peek (checked, never written).
    """
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
        raise ValueError(f"quantity must be an integer >= 0, got {quantity!r}")
    if limit is None:
        return [0, 0, 0]
    if limit.emission_interval_us * quantity > MAX_SPAN_US:
        raise ValueError(f"quantity {quantity} is too large for rate {limit.rate}")
    return [limit.emission_interval_us, limit.burst, quantity]


def _ceil_seconds(ms: int) -> int:
    # Whole seconds rounded up only when there is a fractional part: 2000 ms -> 2, 2001 -> 3.
    return -(-ms // 1000)


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    """The 6-integer reply of gcra_verdict (throttle.lua and any script that includes gcra)."""

    limited: bool
    index: int  # 1-based KEYS position of the refusing limiter; 0 when allowed
    limit: int  # 0 when no limiter was active
    remaining: int
    retry_after_ms: int  # -1 when allowed or permanently refused
    reset_after_ms: int

    @classmethod
    def from_reply(cls, reply: Sequence[object]) -> RateLimitResult:
        values = [v for v in reply if isinstance(v, int) and not isinstance(v, bool)]
        if len(values) != 6 or len(reply) != 6:
            raise ValueError(f"rate limit reply must be 6 integers, got {reply!r}")
        limited, index, limit, remaining, retry_after_ms, reset_after_ms = values
        return cls(
            limited=limited == 1,
            index=index,
            limit=limit,
            remaining=remaining,
            retry_after_ms=retry_after_ms,
            reset_after_ms=reset_after_ms,
        )

    @property
    def permanent(self) -> bool:
        """Refused and no amount of waiting helps (quantity larger than the burst)."""
        return self.limited and self.retry_after_ms < 0

    def retry_after_seconds(self) -> int | None:
        """``Retry-After`` in whole seconds, or None when allowed or permanently refused.

        Rounded up only when there is a fractional part, and at least 1: a client that waits
        exactly this long must be admitted (redis-cell #56/#58), and 0 would invite a retry storm.
        """
        if not self.limited or self.retry_after_ms < 0:
            return None
        return max(1, _ceil_seconds(self.retry_after_ms))

    def headers(self) -> dict[str, str]:
        """``Retry-After`` (limited and retryable) plus the IETF draft RateLimit-* fields."""
        headers: dict[str, str] = {}
        retry = self.retry_after_seconds()
        if retry is not None:
            headers["Retry-After"] = str(retry)
        if self.limit > 0:
            headers["RateLimit-Limit"] = str(self.limit)
            headers["RateLimit-Remaining"] = str(max(0, self.remaining))
            headers["RateLimit-Reset"] = str(_ceil_seconds(max(0, self.reset_after_ms)))
        return headers


_PREFIXES: dict[str, str] = {}  # address -> prefix: parsing costs microseconds per request
_PREFIXES_MAX = 100_000


def ip_prefix(ip: str) -> str:
    """The network a client address is limited as: /24 for IPv4, /56 for IPv6 (cached)."""
    found = _PREFIXES.get(ip)
    if found is None:
        found = _ip_prefix(ip)  # raises for a non-address, which is never cached
        if len(_PREFIXES) >= _PREFIXES_MAX:
            _PREFIXES.clear()
        _PREFIXES[ip] = found
    return found


def _ip_prefix(ip: str) -> str:
    """The network a client address is limited as: /24 for IPv4, /56 for IPv6.

    One IPv6 subscriber usually gets a /56 (or /48, /64), so limiting single IPv6 addresses would
    let one home rotate through 2^72 of them. IPv4-mapped IPv6 (``::ffff:a.b.c.d``, what a
    dual-stack socket reports for IPv4 clients) is treated as the IPv4 address it carries.
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        raise ValueError(f"not an IP address: {ip!r}") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    # int() drops any IPv6 scope id ("fe80::1%eth0"), which is not part of the network.
    if isinstance(address, ipaddress.IPv4Address):
        network = ipaddress.IPv4Network((int(address), IPV4_PREFIX), strict=False)
    else:
        network = ipaddress.IPv6Network((int(address), IPV6_PREFIX), strict=False)
    return str(network)
