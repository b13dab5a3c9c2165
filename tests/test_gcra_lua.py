"""lua/include/gcra.lua through lua/throttle.lua on a real Redis.

Time comes from Redis TIME inside the script, so tests cannot set the clock. The GCRA state is
only ``tat - now`` though, so a simulated moment is reproduced by writing ``redis_now + offset``
as the stored TAT just before the call; with emission intervals of seconds or more, the few ms
between our TIME and the script's cannot change a verdict or a count, only shave a few ms off
the reported times (checked with a tolerance, never upwards: a reported wait is an upper bound).
The golden numbers are redis-cell's own unit-test table (redis-cell-impl/src/lib.rs,
``it_rate_limits``) and its README example, also checked against a Python reference.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError

from dropserver.ratelimit import RateLimit, RateLimitResult, limiter_args
from dropserver.scripts import Script, load_script

SECOND = 1_000_000  # us
TAG = "{drop:t}"
PERSON, IP, DEVICE = f"{TAG}:rl:person:p1", f"{TAG}:rl:ip:203.0.113.0/24", f"{TAG}:rl:device:d1"
# Slack for the reported times: the script's clock is read a little after ours.
DRIFT_MS = 250

HARNESS = Path(__file__).resolve().parent / "lua"
THROTTLE = load_script("throttle", HARNESS)


def throttle_args(
    limiters: Sequence[tuple[str, RateLimit | None]], quantity: int = 1
) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV for lua/throttle.lua; limiters without a limit are left out."""
    keys: list[str] = []
    args: list[str | int] = []
    for key, limit in limiters:
        if limit is None:
            continue
        keys.append(key)
        args.extend(limiter_args(limit, quantity))
    if len(keys) > 3:
        raise ValueError(f"throttle.lua takes at most 3 limiters, got {len(keys)}")
    return keys, args


async def run(redis: Redis, keys: list[str], args: list[str | int]) -> list[int]:
    try:
        reply = await redis.evalsha(THROTTLE.sha, len(keys), *keys, *args)
    except NoScriptError:
        # The first call of the session: EVAL runs the script and caches it under the same sha.
        reply = await redis.eval(THROTTLE.source.decode(), len(keys), *keys, *args)
    assert isinstance(reply, list)
    return reply


async def throttle(redis: Redis, *limiters: tuple[str, RateLimit], quantity: int = 1) -> list[int]:
    keys, args = throttle_args(limiters, quantity)
    return await run(redis, keys, args)


async def redis_now_us(redis: Redis) -> int:
    sec, usec = await redis.time()
    return sec * SECOND + usec


async def set_offset(redis: Redis, key: str, offset_us: int | None) -> None:
    """Make the stored TAT ``offset_us`` ahead of Redis' clock (None/<= 0: no key, i.e. idle)."""
    if offset_us is None or offset_us <= 0:
        await redis.delete(key)
        return
    await redis.set(key, str(await redis_now_us(redis) + offset_us))


# --- Python reference (integer us), written from redis-cell's rate_limit() ------------------


@dataclass
class Ref:
    limited: bool
    remaining: int
    retry_after: int  # us, -1 when allowed or permanent
    reset_after: int  # us
    tat: int | None  # stored TAT afterwards


def gcra_reference(tat: int | None, now: int, emission: int, burst: int, quantity: int) -> Ref:
    tau = emission * burst  # redis-cell: T * (max_burst + 1), max_burst = burst - 1
    increment = emission * quantity
    current = now if tat is None else tat
    new_tat = max(current, now) + increment
    diff = now - (new_tat - tau)
    if diff < 0:
        retry = -diff if increment <= tau else -1
        ttl = max(current - now, 0)
        stored = tat
        limited = True
    else:
        retry = -1
        ttl = new_tat - now
        stored = new_tat if quantity > 0 else tat
        limited = False
    nxt = tau - ttl
    remaining = nxt // emission if nxt > 0 else 0
    return Ref(limited, remaining, retry, ttl, stored)


# redis-cell it_rate_limits: limit 5 (max_burst 4), 1 per second, on one key.
# (case, now offset ms, quantity, remaining, reset_after ms, retry_after ms, limited)
GOLDEN = [
    (0, 0, 6, 5, 0, -1, True),  # larger than the bucket: refused forever
    (1, 0, 1, 4, 1000, -1, False),
    (2, 0, 1, 3, 2000, -1, False),
    (3, 0, 1, 2, 3000, -1, False),
    (4, 0, 1, 1, 4000, -1, False),
    (5, 0, 1, 0, 5000, -1, False),
    (6, 0, 1, 0, 5000, 1000, True),  # burst used up
    (7, 3000, 1, 2, 3000, -1, False),  # refilled while waiting
    (8, 3100, 1, 1, 3900, -1, False),
    (9, 4000, 1, 1, 4000, -1, False),
    (10, 8000, 1, 4, 1000, -1, False),
    (11, 9500, 1, 4, 1000, -1, False),
    (12, 9500, 0, 4, 1000, -1, False),  # quantity 0 peeks
    (13, 9500, 2, 2, 3000, -1, False),  # quantity > 1
    (14, 9500, 5, 2, 3000, 3000, True),  # too large for what is left, retryable
]
GOLDEN_EMISSION, GOLDEN_BURST = SECOND, 5


def test_reference_reproduces_redis_cell_table() -> None:
    start = 1_700_000_000 * SECOND
    tat: int | None = None
    for case, at_ms, quantity, remaining, reset_ms, retry_ms, limited in GOLDEN:
        now = start + at_ms * 1000
        ref = gcra_reference(tat, now, GOLDEN_EMISSION, GOLDEN_BURST, quantity)
        expected = (limited, remaining, reset_ms * 1000, retry_ms * 1000 if retry_ms > 0 else -1)
        assert (ref.limited, ref.remaining, ref.reset_after, ref.retry_after) == expected, case
        tat = ref.tat


def assert_reported(actual_ms: int, expected_us: int, case: object) -> None:
    """A reported time is the exact one (ms, rounded up) minus the drift, never more."""
    if expected_us < 0:
        assert actual_ms == -1, case
        return
    expected_ms = -(-expected_us // 1000)
    assert expected_ms - DRIFT_MS <= actual_ms <= expected_ms, (case, actual_ms, expected_ms)


@pytest.mark.parametrize("scale", [1, 1000])
async def test_lua_reproduces_redis_cell_table(redis: Redis, scale: int) -> None:
    # scale 1 is the table as written (1 per second): every boundary is >= 100 ms away from
    # the few ms of drift. scale 1000 (1 per 1000 s) is the same table with huge margins.
    emission = GOLDEN_EMISSION * scale
    sim_tat: int | None = None  # the simulated key, in us since the simulated start
    for case, at_ms, quantity, remaining, reset_ms, retry_ms, limited in GOLDEN:
        now = at_ms * 1000 * scale
        redis_now = await redis_now_us(redis)  # before set_offset reads the clock
        await set_offset(redis, PERSON, None if sim_tat is None else sim_tat - now)
        before = await redis.get(PERSON)
        reply = await run(redis, [PERSON], [emission, GOLDEN_BURST, quantity])

        assert reply[:4] == [int(limited), int(limited), GOLDEN_BURST, remaining], case
        assert_reported(reply[4], retry_ms * 1000 * scale if retry_ms > 0 else -1, case)
        assert_reported(reply[5], reset_ms * 1000 * scale, case)
        ref = gcra_reference(sim_tat, now, emission, GOLDEN_BURST, quantity)
        after = await redis.get(PERSON)
        if ref.tat == sim_tat:  # refused or a peek: the key must be untouched
            assert after == before, case
        else:  # allowed: the stored TAT is the reference's, seen from the script's clock
            assert ref.tat is not None and after is not None
            ahead = int(after) - redis_now - (ref.tat - now)
            assert 0 <= ahead <= DRIFT_MS * 1000, (case, ahead)
        sim_tat = ref.tat


async def test_lua_matches_reference_on_random_states(redis: Redis) -> None:
    rng = random.Random(20240601)
    for case in range(300):
        emission = rng.choice([SECOND, 2 * SECOND, 7 * SECOND, 60 * SECOND])
        burst = rng.randint(1, 12)
        quantity = rng.randint(0, burst + 2)
        # Offsets are whole intervals, or a whole number plus between 1/4 and 3/4 of one, so
        # no verdict or count sits within the few ms of drift of a boundary.
        whole = rng.randint(-3, burst + 3)
        frac = rng.choice([0, rng.randint(emission // 4, 3 * emission // 4)])
        offset = whole * emission + frac
        stored = offset if offset > 0 else None
        await set_offset(redis, PERSON, stored)
        reply = await run(redis, [PERSON], [emission, burst, quantity])
        ref = gcra_reference(stored, 0, emission, burst, quantity)
        info = (case, emission, burst, quantity, offset, reply, ref)
        assert reply[:4] == [int(ref.limited), int(ref.limited), burst, ref.remaining], info
        assert_reported(reply[4], ref.retry_after, info)
        assert_reported(reply[5], ref.reset_after, info)


async def test_readme_example_15_30_60(redis: Redis) -> None:
    # CL.THROTTLE user123 15 30 60: max_burst 15, 30 per 60 s -> rate 0.5/s, burst 16.
    limit = RateLimit(rate=30 / 60, burst=15 + 1)
    assert await throttle(redis, (PERSON, limit)) == [0, 0, 16, 15, -1, 2000]
    for expected_remaining in range(14, -1, -1):
        reply = await throttle(redis, (PERSON, limit))
        assert reply[:4] == [0, 0, 16, expected_remaining]
    reply = await throttle(redis, (PERSON, limit))
    assert reply[:4] == [1, 1, 16, 0]
    assert_reported(reply[4], 2 * SECOND, reply)
    assert_reported(reply[5], 32 * SECOND, reply)
    result = RateLimitResult.from_reply(reply)
    assert result.retry_after_seconds() == 2
    assert result.headers()["RateLimit-Reset"] == "32"


# --- real time: short sleeps ----------------------------------------------------------------


async def test_waiting_retry_after_is_admitted(redis: Redis) -> None:
    limit = RateLimit(rate=5, burst=1)  # T = 200 ms
    assert (await throttle(redis, (PERSON, limit)))[0] == 0
    refused = RateLimitResult.from_reply(await throttle(redis, (PERSON, limit)))
    assert refused.limited
    assert 1 <= refused.retry_after_ms <= 200
    await asyncio.sleep(refused.retry_after_ms / 1000)
    assert (await throttle(redis, (PERSON, limit)))[0] == 0


async def test_bucket_refills_at_the_rate(redis: Redis) -> None:
    limit = RateLimit(rate=4, burst=2)  # T = 250 ms, full bucket = 500 ms
    assert [(await throttle(redis, (PERSON, limit)))[0] for _ in range(3)] == [0, 0, 1]
    await asyncio.sleep(0.375)  # 1.5 emission intervals: room for exactly one more
    assert [(await throttle(redis, (PERSON, limit)))[0] for _ in range(2)] == [0, 1]


# --- writes: TTL, all-or-nothing, peeks and switched-off limiters ---------------------------


async def test_allowed_request_stores_tat_with_ttl(redis: Redis) -> None:
    before = await redis_now_us(redis)
    reply = await throttle(redis, (PERSON, RateLimit(rate=0.001, burst=5)), quantity=2)
    assert reply[:4] == [0, 0, 5, 3]
    raw = await redis.get(PERSON)
    assert raw is not None
    stored = int(raw)
    assert 0 <= stored - before - 2000 * SECOND <= DRIFT_MS * 1000
    pttl = await redis.pttl(PERSON)
    assert 2_000_000 - DRIFT_MS <= pttl <= 2_000_000
    assert reply[5] >= pttl


async def test_one_microsecond_interval_never_sets_px_0(redis: Redis) -> None:
    # ttl = 1 us rounds up to PX 1; PX 0 would be an error reply.
    assert await throttle(redis, (PERSON, RateLimit(rate=1_000_000, burst=1))) == [
        0, 0, 1, 0, -1, 1,
    ]  # fmt: skip


async def test_refusal_by_second_limiter_writes_nothing(redis: Redis) -> None:
    generous, strict = RateLimit(rate=100, burst=100), RateLimit(rate=0.001, burst=1)
    assert (await throttle(redis, (IP, strict)))[0] == 0
    reply = await throttle(redis, (PERSON, generous), (IP, strict))
    assert reply[:3] == [1, 2, 1]
    assert await redis.exists(PERSON) == 0
    # An existing first limiter keeps its value too.
    assert (await throttle(redis, (PERSON, generous)))[0] == 0
    person_before = await redis.get(PERSON)
    ip_before = await redis.get(IP)
    assert (await throttle(redis, (PERSON, generous), (IP, strict)))[0] == 1
    assert await redis.get(PERSON) == person_before
    assert await redis.get(IP) == ip_before


async def test_all_limiters_written_when_all_pass(redis: Redis) -> None:
    limit = RateLimit(rate=1, burst=10)
    reply = await throttle(redis, (PERSON, limit), (IP, limit), (DEVICE, limit))
    assert reply[:2] == [0, 0]
    assert await redis.exists(PERSON, IP, DEVICE) == 3


async def test_peek_and_switched_off_limiters_write_nothing(redis: Redis) -> None:
    assert await run(redis, [PERSON], limiter_args(RateLimit(1, 5), quantity=0)) == [
        0, 0, 5, 5, -1, 0,
    ]  # fmt: skip
    assert await run(redis, [IP], limiter_args(None)) == [0, 0, 0, 0, -1, 0]
    assert await run(redis, [], []) == [0, 0, 0, 0, -1, 0]
    assert await redis.exists(PERSON, IP) == 0


# --- which limiter is reported --------------------------------------------------------------


async def test_reports_longest_wait_when_several_refuse(redis: Redis) -> None:
    short, long = RateLimit(rate=1, burst=1), RateLimit(rate=0.1, burst=1)
    assert (await throttle(redis, (PERSON, short), (IP, long)))[0] == 0
    reply = await throttle(redis, (PERSON, short), (IP, long))
    assert reply[:4] == [1, 2, 1, 0]
    assert_reported(reply[4], 10 * SECOND, reply)


async def test_permanent_refusal_wins(redis: Redis) -> None:
    await set_offset(redis, IP, 60 * SECOND)
    reply = await throttle(
        redis, (PERSON, RateLimit(rate=1, burst=3)), (IP, RateLimit(rate=1 / 60, burst=1)),
        quantity=4,
    )  # fmt: skip
    assert reply[:5] == [1, 1, 3, 3, -1]
    assert RateLimitResult.from_reply(reply).permanent


async def test_allowed_reports_tightest_limiter(redis: Redis) -> None:
    await set_offset(redis, IP, 8 * SECOND)  # 2 of 10 left before, 1 after this request
    reply = await throttle(
        redis, (PERSON, RateLimit(rate=1, burst=5)), (IP, RateLimit(rate=1, burst=10)),
        (DEVICE, RateLimit(rate=1, burst=3)),
    )  # fmt: skip
    assert reply[:4] == [0, 0, 10, 1]
    assert_reported(reply[5], 9 * SECOND, reply)


async def test_stale_tat_in_the_past_counts_as_idle(redis: Redis) -> None:
    # A key read just before its PX expiry holds a TAT slightly behind now: never a negative
    # reset or a remaining above the burst.
    await redis.set(PERSON, str(await redis_now_us(redis) - 5 * SECOND))
    limit = RateLimit(rate=1, burst=3)
    assert await throttle(redis, (PERSON, limit), quantity=4) == [1, 1, 3, 3, -1, 0]
    assert await throttle(redis, (PERSON, limit)) == [0, 0, 3, 2, -1, 1000]


async def test_tie_on_remaining_reports_the_longer_reset(redis: Redis) -> None:
    # Both have 4 of 5 left afterwards; RateLimit-Reset must not promise the earlier refill.
    reply = await throttle(
        redis, (PERSON, RateLimit(rate=1, burst=5)), (IP, RateLimit(rate=0.5, burst=5))
    )
    assert reply == [0, 0, 5, 4, -1, 2000]


# --- validation before the first write ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["1e3", 5, 1], "must be integers >= 0"),
        ([" 1000", 5, 1], "must be integers >= 0"),
        ([1000, -5, 1], "must be integers >= 0"),
        ([1000, 0, 1], "burst must be >= 1"),
        ([1000, 5, 1.5], "must be integers >= 0"),
        ([2**40, 2**11, 1], "<= 2^50"),
        ([1000, 5], "expected 6 ARGV"),
    ],
)
async def test_bad_second_limiter_is_refused_before_any_write(
    redis: Redis, args: list[str | int], message: str
) -> None:
    with pytest.raises(ResponseError, match="^BADARGS .*" + re.escape(message)):
        await run(redis, [PERSON, IP], [1000, 5, 1, *args])
    assert await redis.exists(PERSON) == 0


async def test_corrupt_state_is_refused_before_any_write(redis: Redis) -> None:
    await redis.set(IP, "not a time")
    with pytest.raises(ResponseError, match=r"^BADSTATE"):
        await run(redis, [PERSON, IP], [1000, 5, 1, 1000, 5, 1])
    await redis.delete(IP)
    await redis.hset(IP, "x", "1")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await run(redis, [PERSON, IP], [1000, 5, 1, 1000, 5, 1])
    assert await redis.exists(PERSON) == 0


async def test_at_most_three_limiters(redis: Redis) -> None:
    keys = [PERSON, IP, DEVICE, f"{TAG}:rl:person:p2"]
    with pytest.raises(ResponseError, match=r"^BADARGS at most 3"):
        await run(redis, keys, [1000, 5, 1] * 4)


# --- the script text itself -----------------------------------------------------------------


def test_script_is_self_contained_and_documented() -> None:
    text = THROTTLE.source.decode()
    assert text.startswith("--[[")
    assert "@include" not in text
    assert "local function gcra_check(" in text
    # Redis 6.2: no shebang flags, no FUNCTION library.
    assert not text.startswith("#!")
    assert "register_function" not in text
    assert isinstance(THROTTLE, Script)


def test_throttle_args_leaves_out_absent_limits() -> None:
    keys, args = throttle_args(
        [("k:person", RateLimit(1, 2)), ("k:ip", None), ("k:device", RateLimit(4, 8))], 2
    )
    assert keys == ["k:person", "k:device"]
    assert args == [1_000_000, 2, 2, 250_000, 8, 2]
    with pytest.raises(ValueError, match="at most 3"):
        throttle_args([(f"k{i}", RateLimit(1, 1)) for i in range(4)])
