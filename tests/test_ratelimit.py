"""dropserver.ratelimit without Redis: configuration, ARGV encoding, reply decoding, IP prefixes."""

from __future__ import annotations

import math

import pytest
from redis.crc import key_slot

from dropserver.keys import drop_tag, limiter_key
from dropserver.ratelimit import (
    MAX_SPAN_US,
    RateLimit,
    RateLimitResult,
    RateLimits,
    ip_prefix,
    limiter_args,
)

# --- RateLimit / RateLimits -----------------------------------------------------------------


def test_rate_limit_from_json_accepts_ints_and_fractions() -> None:
    assert RateLimit.from_json({"rate": 2, "burst": 5}) == RateLimit(rate=2.0, burst=5)
    half = RateLimit.from_json({"rate": 0.5, "burst": 1})
    assert half.rate == 0.5
    assert half.emission_interval_us == 2_000_000
    assert half.limit == 1


def test_emission_interval_rounds_to_whole_microseconds() -> None:
    assert RateLimit(rate=3, burst=1).emission_interval_us == 333_333
    assert RateLimit(rate=1_000_000, burst=1).emission_interval_us == 1


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"rate": 0, "burst": 5}, "rate limits.ip: rate must be a number > 0, got 0"),
        ({"rate": -1, "burst": 5}, "rate must be a number > 0"),
        ({"rate": math.nan, "burst": 5}, "rate must be a number > 0"),
        ({"rate": math.inf, "burst": 5}, "rate must be at most"),
        ({"rate": 2_000_000, "burst": 5}, "rate must be at most 1e+06 per second"),
        ({"rate": True, "burst": 5}, "rate must be a number, got True"),
        ({"rate": "1", "burst": 5}, "rate must be a number, got '1'"),
        ({"rate": 1, "burst": 0}, "burst must be between 1 and"),
        ({"rate": 1, "burst": 2.0}, "burst must be an integer, got 2.0"),
        ({"rate": 1, "burst": True}, "burst must be an integer, got True"),
        ({"rate": 1, "burst": None}, "burst must be an integer, got None"),
        ({"rate": 1e-9, "burst": 10}, "must be at most"),
        ({"rate": 5e-324, "burst": 1}, "burst / rate (the time a full bucket takes to refill)"),
        ({"rate": 1}, "missing field(s) burst"),
        ({"rate": 1, "burst": 1, "period": 60}, "unknown field(s) period"),
        ([1, 1], "must be an object"),
    ],
)
def test_rate_limit_from_json_rejects(obj: object, message: str) -> None:
    with pytest.raises(ValueError, match=r"^rate limits\.ip: ") as info:
        RateLimit.from_json(obj, "rate limits.ip")
    assert message.removeprefix("rate limits.ip: ") in str(info.value)


def test_rate_limit_constructor_validates_too() -> None:
    with pytest.raises(ValueError, match="burst must be between 1"):
        RateLimit(rate=1, burst=0)


def test_rate_limits_from_json_and_merge() -> None:
    drop = RateLimits.from_json({"person": {"rate": 1, "burst": 3}, "device": None})
    assert drop == RateLimits(person=RateLimit(1, 3))
    defaults = RateLimits(person=RateLimit(5, 10), ip=RateLimit(20, 50))
    merged = drop.merge(defaults)
    assert merged == RateLimits(person=RateLimit(1, 3), ip=RateLimit(20, 50), device=None)
    assert merged.to_json() == {
        "person": {"rate": 1.0, "burst": 3},
        "ip": {"rate": 20.0, "burst": 50},
    }
    assert RateLimits.from_json(merged.to_json()) == merged
    assert RateLimits.from_json({}).merge(defaults) == defaults


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"user": {"rate": 1, "burst": 1}}, "rate_limits: unknown key(s) user (allowed: person"),
        ({"ip": {"rate": 1, "burst": 0}}, "rate_limits.ip: burst must be between 1"),
        ({"device": {"rate": False, "burst": 1}}, "rate_limits.device: rate must be a number"),
        ({"person": 5}, "rate_limits.person: must be an object"),
        ("fast", "rate_limits: must be an object"),
    ],
)
def test_rate_limits_from_json_rejects(obj: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        RateLimits.from_json(obj)
    assert str(info.value).startswith(message)


# --- keys and ARGV --------------------------------------------------------------------------


def test_limiter_key_stays_in_the_drop_slot() -> None:
    tag = drop_tag("d1")
    keys = [limiter_key(tag, kind, value) for kind, value in [
        ("person", "p-1"), ("ip", "203.0.113.0/24"), ("device", "dev{x}"),
    ]]  # fmt: skip
    assert keys[0] == "{drop:d1}:rl:person:p-1"
    assert {key_slot(k.encode()) for k in keys} == {key_slot(f"{tag}:meta".encode())}


@pytest.mark.parametrize(
    ("tag", "kind", "value"),
    [("drop:d1", "ip", "x"), ("{drop:d1}", "user", "x"), ("{drop:d1}", "ip", "")],
)
def test_limiter_key_rejects(tag: str, kind: str, value: str) -> None:
    with pytest.raises(ValueError):
        limiter_key(tag, kind, value)


def test_limiter_args() -> None:
    assert limiter_args(RateLimit(rate=0.5, burst=16)) == [2_000_000, 16, 1]
    assert limiter_args(RateLimit(rate=10, burst=3), quantity=0) == [100_000, 3, 0]
    assert limiter_args(None) == [0, 0, 0]
    with pytest.raises(ValueError, match="quantity must be an integer >= 0"):
        limiter_args(RateLimit(rate=1, burst=1), quantity=-1)
    with pytest.raises(ValueError, match="quantity must be an integer >= 0"):
        limiter_args(RateLimit(rate=1, burst=1), quantity=True)
    with pytest.raises(ValueError, match="too large"):
        limiter_args(RateLimit(rate=1, burst=1), quantity=MAX_SPAN_US)


# --- RateLimitResult ------------------------------------------------------------------------


def limited(
    retry_after_ms: int, *, remaining: int = 0, reset_after_ms: int = 5000
) -> RateLimitResult:
    return RateLimitResult.from_reply([1, 1, 5, remaining, retry_after_ms, reset_after_ms])


@pytest.mark.parametrize(
    ("retry_after_ms", "seconds"),
    [(1200, 2), (2000, 2), (2001, 3), (1, 1), (999, 1), (1000, 1), (0, 1)],
)
def test_retry_after_rounds_up_only_a_fractional_part(retry_after_ms: int, seconds: int) -> None:
    # 0 cannot come from the script (a refusal is always >= 1 ms away), but it must still not
    # turn into "Retry-After: 0", which invites an immediate retry.
    assert limited(retry_after_ms).retry_after_seconds() == seconds


def test_retry_after_absent_when_allowed_or_permanent() -> None:
    allowed = RateLimitResult.from_reply([0, 0, 5, 4, -1, 200])
    assert not allowed.limited
    assert allowed.retry_after_seconds() is None
    permanent = limited(-1, remaining=5, reset_after_ms=0)
    assert permanent.permanent
    assert permanent.retry_after_seconds() is None


def test_headers() -> None:
    assert limited(1200, remaining=0, reset_after_ms=4001).headers() == {
        "Retry-After": "2",
        "RateLimit-Limit": "5",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "5",
    }
    assert RateLimitResult.from_reply([0, 0, 16, 15, -1, 2000]).headers() == {
        "RateLimit-Limit": "16",
        "RateLimit-Remaining": "15",
        "RateLimit-Reset": "2",
    }
    assert "Retry-After" not in limited(-1).headers()
    # No limiter applied: nothing to advertise.
    assert RateLimitResult.from_reply([0, 0, 0, 0, -1, 0]).headers() == {}


@pytest.mark.parametrize(
    "reply", [[0, 0, 5, 4, -1], [0, 0, 5, 4, -1, b"2"], [True, 0, 5, 4, -1, 2]]
)
def test_from_reply_rejects_malformed(reply: list[object]) -> None:
    with pytest.raises(ValueError, match="6 integers"):
        RateLimitResult.from_reply(reply)


# --- ip_prefix ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "prefix"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("10.0.0.1", "10.0.0.0/24"),
        ("2001:db8:abcd:12ff:1:2:3:4", "2001:db8:abcd:1200::/56"),
        ("2001:db8:abcd:1234::1", "2001:db8:abcd:1200::/56"),
        ("::1", "::/56"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        ("::FFFF:c633:6409", "198.51.100.0/24"),
        ("fe80::1%eth0", "fe80::/56"),
    ],
)
def test_ip_prefix(ip: str, prefix: str) -> None:
    assert ip_prefix(ip) == prefix


@pytest.mark.parametrize(
    "ip", ["", "localhost", "256.1.1.1", "1.2.3", "10.0.0.0/8", " 1.2.3.4", "01.2.3.4", "::g"]
)
def test_ip_prefix_rejects(ip: str) -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        ip_prefix(ip)
