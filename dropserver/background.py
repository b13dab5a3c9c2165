"""Periodic background work (the hold sweeper, the draw runner) tied to the app's lifetime.

Stopped by an event rather than by cancelling the task: a cancellation that lands inside a
Redis call can come back out as a Redis connection error, which a loop that must survive Redis
hiccups would then swallow, and the app would never finish shutting down. The event is checked
between rounds; a round in progress finishes first (bounded by ``stop_timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

log = logging.getLogger("dropserver")


@contextlib.asynccontextmanager
async def periodic(
    name: str,
    work: Callable[[], Awaitable[object]],
    interval: float,
    *,
    stop_timeout: float = 5.0,
) -> AsyncIterator[None]:
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            try:
                await work()
            except Exception:  # Redis away for a moment: try again next round
                log.exception("%s failed", name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    task = asyncio.create_task(loop(), name=name)
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), stop_timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
