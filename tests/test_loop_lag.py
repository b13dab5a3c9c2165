from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry, Histogram

from dropserver.background import periodic
from dropserver.loop_lag import LoopLagProbe


def _lags(histogram: Histogram) -> tuple[float, float]:
    """(rounds observed, their sum in seconds)."""
    samples = {s.name: s.value for s in histogram.collect()[0].samples if not s.labels}
    return samples["lag_seconds_count"], samples["lag_seconds_sum"]


async def test_a_blocked_loop_shows_as_lag_and_an_idle_one_does_not() -> None:
    histogram = Histogram("lag_seconds", "lag", registry=CollectorRegistry())
    probe = LoopLagProbe(histogram, 0.02)
    async with periodic("loop lag", probe.measure, 0.02):
        await asyncio.sleep(0.2)
        idle_rounds, idle_lag = _lags(histogram)
        # Blocking on purpose: what a long garbage collection does to the loop.
        time.sleep(0.3)  # noqa: ASYNC251
        await asyncio.sleep(0.05)
    rounds, lag = _lags(histogram)
    assert idle_rounds >= 3 and idle_lag / idle_rounds < 0.01
    assert rounds > idle_rounds and lag - idle_lag >= 0.25
