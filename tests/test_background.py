from __future__ import annotations

import asyncio
import time

from redis.exceptions import ConnectionError as RedisConnectionError

from dropserver.background import periodic


async def test_runs_periodically_survives_errors_and_stops_promptly() -> None:
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls % 2:
            raise RedisConnectionError("Redis went away")  # what a cancelled read can become

    async with periodic("test", flaky, 0.01):
        await asyncio.sleep(0.1)
    started = time.monotonic()
    seen = calls
    await asyncio.sleep(0.05)
    assert calls == seen  # stopped: no more rounds after the block
    assert seen >= 4
    assert time.monotonic() - started < 1


async def test_a_round_in_progress_finishes_before_stop() -> None:
    finished = []

    async def slow() -> None:
        await asyncio.sleep(0.05)
        finished.append(True)

    async with periodic("test", slow, 10):
        await asyncio.sleep(0.01)
    assert finished == [True]
