"""The in-process GCRA of the challenge endpoint: redis-cell's arithmetic, like gcra.lua."""

from __future__ import annotations

import random

from dropserver.local_limits import LocalLimiter
from dropserver.ratelimit import RateLimit
from tests.test_gcra_lua import GOLDEN, SECOND, gcra_reference

START = 1_700_000_000 * SECOND
ONE_PER_SECOND = RateLimit(rate=1.0, burst=5)


def test_reproduces_redis_cell_table_for_single_requests() -> None:
    limiter = LocalLimiter()
    cases = [case for case in GOLDEN if case[2] == 1]  # the endpoint charges one unit
    assert len(cases) >= 9
    for case, at_ms, _, remaining, reset_ms, retry_ms, limited in cases:
        result = limiter.check([("k", ONE_PER_SECOND)], START + at_ms * 1000)
        assert (result.limited, result.remaining, result.reset_after_ms) == (
            limited,
            remaining,
            reset_ms,
        ), case
        assert result.retry_after_ms == retry_ms, case
        assert result.limit == 5


def test_matches_the_reference_on_random_states() -> None:
    rng = random.Random(7)
    for case in range(500):
        emission = rng.choice([SECOND // 10, SECOND, 7 * SECOND])
        burst = rng.randint(1, 12)
        limit = RateLimit(rate=SECOND / emission, burst=burst)
        limiter = LocalLimiter()
        stored: int | None = None
        now = START
        for _ in range(rng.randint(1, 20)):
            now += rng.randint(0, 2 * emission)
            result = limiter.check([("k", limit)], now)
            ref = gcra_reference(stored, now, emission, burst, 1)
            assert result.limited == ref.limited, case
            assert result.remaining == ref.remaining, case
            assert result.retry_after_ms == (-(-ref.retry_after // 1000) if ref.limited else -1)
            assert result.reset_after_ms == -(-ref.reset_after // 1000), case
            stored = ref.tat


def test_refusal_by_one_limiter_charges_none() -> None:
    limiter = LocalLimiter()
    loose, tight = RateLimit(rate=100.0, burst=100), RateLimit(rate=1.0, burst=1)
    assert not limiter.check([("a", loose), ("b", tight)], START).limited
    refused = limiter.check([("a", loose), ("b", tight)], START)
    assert refused.limited and refused.index == 2 and refused.retry_after_ms == 1000
    # "a" was not charged by the refused request: 99 more pass on their own, not 98.
    passes = [limiter.check([("a", loose)], START).limited for _ in range(100)]
    assert passes == [False] * 99 + [True]


def test_reports_the_longest_wait_and_the_tightest_pass() -> None:
    limiter = LocalLimiter()
    slow, fast = RateLimit(rate=0.1, burst=1), RateLimit(rate=2.0, burst=1)
    passed = limiter.check([("s", slow), ("f", fast)], START)
    assert not passed.limited and passed.index == 0 and passed.remaining == 0
    assert passed.reset_after_ms == 10_000  # the tighter of two empty buckets: longer reset
    refused = limiter.check([("s", slow), ("f", fast)], START + 100_000)
    assert refused.index == 1 and refused.retry_after_ms == 9_900


def test_switched_off_limiters_are_skipped() -> None:
    limiter = LocalLimiter()
    result = limiter.check([("a", None), ("b", None)], START)
    assert not result.limited and result.limit == 0 and result.headers() == {}
    assert len(limiter) == 0


def test_prune_forgets_only_full_buckets() -> None:
    limiter = LocalLimiter()
    limiter.check([("old", ONE_PER_SECOND)], START)
    limiter.check([("new", ONE_PER_SECOND)], START + 10 * SECOND)
    limiter.prune(START + 10 * SECOND + 1)
    assert len(limiter) == 1
    # The kept key still remembers its charge: four more pass, the sixth in a row does not.
    results = [limiter.check([("new", ONE_PER_SECOND)], START + 10 * SECOND + 2) for _ in range(5)]
    assert [r.limited for r in results] == [False] * 4 + [True]
