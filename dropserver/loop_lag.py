"""How late the event loop runs: the time a process could serve no request at all.

A handler that computes too long, a blocking call, or a full garbage collection over a large
heap stops every request of the process at once; the request latencies show it only as a tail
spread over many routes. The probe runs every ``interval`` seconds (dropserver.background) and
records how much later than asked it ran. A stall of any length overlaps some round, so even a
short one shows; an idle loop reports about zero.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Histogram


class LoopLagProbe:
    def __init__(self, histogram: Histogram, interval: float) -> None:
        self._histogram = histogram
        self._interval = interval
        self._last: float | None = None

    async def measure(self) -> None:
        """One round: the time since the last round beyond ``interval`` is the lag."""
        now = asyncio.get_running_loop().time()
        if self._last is not None:
            self._histogram.observe(max(0.0, now - self._last - self._interval))
        self._last = now
