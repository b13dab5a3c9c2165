"""PreDerivationPool: stocking, single use, refills, on-demand derivation, no over-scheduling."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from dropserver.pow import (
    Difficulty,
    PreDerivationPool,
    PreDerived,
    derive_key,
    password,
    pre_derive,
)

FAST = Difficulty(cost=1, counter_max=20)


@pytest.fixture(params=[False, True], ids=["threads", "processes"])
def pool(request: pytest.FixtureRequest) -> Iterator[PreDerivationPool]:
    with PreDerivationPool(workers=2, target=32, low_water=8, processes=request.param) as p:
        yield p


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.002)


def test_ensure_fills_to_target(pool: PreDerivationPool) -> None:
    assert pool.stock(FAST) == 0
    pool.ensure(FAST)
    wait_until(lambda: pool.stock(FAST) == 32)
    time.sleep(0.05)
    assert pool.stock(FAST) == 32  # and not beyond


def test_take_returns_distinct_valid_tuples(pool: PreDerivationPool) -> None:
    pool.ensure(FAST)
    wait_until(lambda: pool.stock(FAST) == 32)
    items: list[PreDerived] = []
    for _ in range(32):
        item = pool.take(FAST)
        assert item is not None
        items.append(item)
    assert len({item.nonce for item in items}) == 32
    assert len({id(item) for item in items}) == 32
    for item in items:
        assert item.difficulty == FAST
        assert FAST.counter_max // 2 <= item.counter <= FAST.counter_max
        assert item.key == derive_key(
            FAST.algorithm, password(item.nonce, item.counter), item.salt, FAST.cost, 32
        )


def test_refills_after_draining(pool: PreDerivationPool) -> None:
    pool.ensure(FAST)
    wait_until(lambda: pool.stock(FAST) == 32)
    taken = 0
    while pool.take(FAST) is not None:
        taken += 1
    assert taken >= 32
    wait_until(lambda: pool.stock(FAST) == 32)


def test_take_on_unknown_level_returns_none_and_starts_stocking(pool: PreDerivationPool) -> None:
    level = Difficulty(cost=2, counter_max=20)
    assert pool.take(level) is None
    assert pool.misses == 1
    wait_until(lambda: pool.stock(level) == 32)


def test_levels_are_separate(pool: PreDerivationPool) -> None:
    other = Difficulty(algorithm="SHA-256", cost=1, counter_max=20)
    pool.ensure(FAST)
    pool.ensure(other)
    wait_until(lambda: pool.stock(FAST) == 32 and pool.stock(other) == 32)
    item = pool.take(other)
    assert item is not None and item.difficulty == other


async def test_take_async_when_empty(pool: PreDerivationPool) -> None:
    level = Difficulty(cost=3, counter_max=20)
    assert pool.stock(level) == 0
    item = await pool.take_async(level)
    assert item.difficulty == level
    assert level.counter_min <= item.counter <= level.counter_max
    assert pool.misses == 1
    wait_until(lambda: pool.stock(level) == 32)
    # From stock now: no more misses.
    assert (await pool.take_async(level)).nonce != item.nonce
    assert pool.misses == 1


def test_concurrent_takers_never_share_a_tuple() -> None:
    with PreDerivationPool(workers=2, target=64, low_water=32) as pool:
        pool.ensure(FAST)
        wait_until(lambda: pool.stock(FAST) == 64)
        seen: list[bytes] = []
        lock = threading.Lock()

        def taker() -> None:
            got: list[bytes] = []
            deadline = time.monotonic() + 0.2
            while time.monotonic() < deadline:
                item = pool.take(FAST)
                if item is not None:
                    got.append(item.nonce)
                time.sleep(0)  # let the refill thread have the GIL now and then
            with lock:
                seen.extend(got)

        threads = [threading.Thread(target=taker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(seen) >= 64  # the initial stock at least, plus whatever refills made
        assert len(seen) == len(set(seen))


def test_one_refill_in_flight_per_level() -> None:
    active: dict[Difficulty, int] = {}
    peak: dict[Difficulty, int] = {}
    lock = threading.Lock()
    real = pre_derive

    def tracking(difficulty: Difficulty) -> PreDerived:
        with lock:
            active[difficulty] = active.get(difficulty, 0) + 1
            peak[difficulty] = max(peak.get(difficulty, 0), active[difficulty])
        time.sleep(0.001)
        try:
            return real(difficulty)
        finally:
            with lock:
                active[difficulty] -= 1

    other = Difficulty(cost=2, counter_max=20)
    with PreDerivationPool(workers=4, target=40, low_water=30, derive=tracking) as pool:
        for _ in range(200):  # hammer the triggers: ensure and take below low water
            pool.ensure(FAST)
            pool.ensure(other)
            pool.take(FAST)
            pool.take(other)
        wait_until(lambda: pool.stock(FAST) == 40 and pool.stock(other) == 40)
    assert peak == {FAST: 1, other: 1}


def test_close_stops_refills_and_on_demand() -> None:
    pool = PreDerivationPool(workers=1, target=8, low_water=2)
    pool.close()
    pool.ensure(FAST)
    assert pool.take(FAST) is None
    time.sleep(0.02)
    assert pool.stock(FAST) == 0


async def test_take_async_after_close_raises() -> None:
    pool = PreDerivationPool(workers=1, target=8, low_water=2)
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        await pool.take_async(FAST)


def test_failing_derivation_does_not_spin(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    def broken(difficulty: Difficulty) -> PreDerived:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    with PreDerivationPool(workers=1, target=8, low_water=2, derive=broken) as pool:
        pool.ensure(FAST)
        time.sleep(0.05)
    assert calls == 1
    assert "pre-derivation failed" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"workers": 0}, "workers"),
        ({"target": 0}, "target"),
        ({"target": 4, "low_water": 5}, "low_water"),
        ({"low_water": -1}, "low_water"),
    ],
)
def test_constructor_validation(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PreDerivationPool(**kwargs)


def test_start_stocks_a_new_level_but_does_not_top_up() -> None:
    with PreDerivationPool(workers=1, target=32, low_water=8) as pool:
        pool.start(FAST)
        wait_until(lambda: pool.stock(FAST) == 32)
        time.sleep(0.1)  # the refill chain that filled it has ended
        for _ in range(10):
            assert pool.take(FAST) is not None
        pool.start(FAST)  # 22 left, above low water: no refill
        time.sleep(0.1)
        assert pool.stock(FAST) == 22
        pool.ensure(FAST)  # ensure tops up
        wait_until(lambda: pool.stock(FAST) == 32)


def die_once(marker: str, difficulty: Difficulty) -> PreDerived:
    """Kills the worker process that runs it first (SIGKILL, as the OOM killer would); derives
    normally once ``marker`` exists. Module level: worker processes import it by name."""
    path = Path(marker)
    if not path.exists():
        path.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return pre_derive(difficulty)


def test_a_killed_worker_process_is_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "killed"
    derive = partial(die_once, str(marker))
    with (
        caplog.at_level(logging.WARNING),
        PreDerivationPool(workers=1, target=16, low_water=4, derive=derive, processes=True) as pool,
    ):
        pool.ensure(FAST)
        wait_until(lambda: pool.stock(FAST) == 16, timeout=20)
    assert marker.exists()  # a worker was really killed
    assert "a pre-derivation worker died" in caplog.text


def test_refills_stop_when_workers_keep_dying(caplog: pytest.LogCaptureFixture) -> None:
    with PreDerivationPool(
        workers=1, target=8, low_water=2, derive=partial(die_outside, os.getpid()), processes=True
    ) as pool:
        pool.ensure(FAST)
        wait_until(lambda: "refills stopped" in caplog.text, timeout=20)
        for _ in range(3):  # later triggers neither respawn nor log again
            assert pool.take(FAST) is None
        time.sleep(0.2)
        assert pool.stock(FAST) == 0
        assert caplog.text.count("a pre-derivation worker died") == 3
        assert caplog.text.count("refills stopped") == 1


async def test_take_async_derives_in_a_thread_once_the_workers_are_gone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with PreDerivationPool(
        workers=1, target=8, low_water=2, derive=partial(die_outside, os.getpid()), processes=True
    ) as pool:
        pool.ensure(FAST)
        wait_until(lambda: "refills stopped" in caplog.text, timeout=20)
        item = await pool.take_async(FAST)  # derived here, in a thread
        assert item.difficulty == FAST


def die_outside(home: int, difficulty: Difficulty) -> PreDerived:
    """Kills any process but ``home`` (a worker) that runs it; derives when run in ``home``."""
    if os.getpid() != home:
        os.kill(os.getpid(), signal.SIGKILL)
    return pre_derive(difficulty)
