"""Live demand for challenges, counted here and pooled in Redis by periodic reports.

Adaptive difficulty follows the rate of challenge requests by identified persons, for the
whole drop and per IP prefix (anonymous requests are refused before they are counted, so a
flood without identities cannot raise the difficulty for everyone else). Counting each request
in Redis would cost the challenge endpoint a round trip; instead each process counts locally
and reports every ``interval`` seconds (``lua/demand_report.lua``), and Redis returns the rates
of all processes together. Between reports a process adds its own unreported requests to the
last pooled rate, so its own surge raises the level at once, and other processes' surges
within one report interval.

The same report returns Redis's time and the drop's closing, which is what lets the challenge
endpoint answer without Redis until the next report.
"""

from __future__ import annotations

import asyncio
import math
import time
from bisect import bisect_right
from dataclasses import dataclass, field

from dropserver.batcher import Batcher
from dropserver.keys import drop_keys
from dropserver.redis_clock import RedisClock
from dropserver.scripts import Script

FORGET_BELOW = 0.01  # requests/s: a prefix this quiet is dropped from the local table


@dataclass(slots=True)
class _Rate:
    rate: float = 0.0  # events/s, all processes, as of `at` (the last report)
    at: float = 0.0  # time.monotonic() of the report
    pending: int = 0  # counted here, not reported yet
    # The level last computed, and the bounds within which it still holds: it cannot rise
    # before `pending` reaches `rise_at` (the rate only decays between reports) nor fall
    # before `fall_at` (pending only grows). A new _Rate starts with rise_at 0: computed on
    # first use. Most hits then cost two comparisons instead of an exp() and a bisect.
    level: int = 0
    rise_at: float = 0.0
    fall_at: float = 0.0

    def reported(self, rate: float, at: float, pending: int) -> None:
        """The pooled rate of a report: the cached level no longer holds."""
        self.rate, self.at, self.pending, self.rise_at = rate, at, pending, 0.0

    def value(self, now: float, tau: float) -> float:
        return self.rate * math.exp(-(now - self.at) / tau) + self.pending / tau

    def level_at(self, now: float, tau: float, thresholds: tuple[float, ...]) -> int:
        """``level_of(self.value(now, tau), thresholds)``, from the cache while it holds."""
        if self.pending < self.rise_at and now < self.fall_at:
            return self.level
        decayed = self.rate * math.exp(-(now - self.at) / tau)
        level = level_of(decayed + self.pending / tau, thresholds)
        # Rising to the next threshold takes at least this many pending requests (the
        # decay can only make it more; one less for the rounding of the bound).
        self.rise_at = (
            math.ceil((thresholds[level] - decayed) * tau) - 1
            if level < len(thresholds)
            else math.inf
        )
        # Falling below the level's threshold takes at least this long: the decayed part
        # must shrink to what the pending requests leave of it.
        self.fall_at = math.inf
        if level:
            floor = thresholds[level - 1] - self.pending / tau
            # floor <= 0: the pending requests alone keep the level until the next report.
            # Otherwise the rate is positive (the level was reached).
            if floor > 0:
                self.fall_at = self.at - tau * math.log(floor / self.rate)
        self.level = level
        return level


@dataclass(slots=True)
class _DropDemand:
    whole: _Rate = field(default_factory=_Rate)
    prefixes: dict[str, _Rate] = field(default_factory=dict)
    closed_at: int = 0


def level_of(rate: float, thresholds: tuple[float, ...]) -> int:
    """How many of the ascending thresholds the rate reaches."""
    return bisect_right(thresholds, rate)


class DemandMeter:
    def __init__(
        self,
        batcher: Batcher,
        script: Script,
        clock: RedisClock,
        *,
        window_seconds: float,
        drop_levels: tuple[float, ...],
        ip_levels: tuple[float, ...],
    ) -> None:
        self._batcher = batcher
        self._script = script
        self._clock = clock
        self._tau = window_seconds
        self._tau_us = str(int(window_seconds * 1_000_000))
        self._drop_levels = drop_levels
        self._ip_levels = ip_levels
        self._drops: dict[str, _DropDemand] = {}

    def hit(self, drop_id: str, prefix: str) -> int:
        """Count one challenge request; the difficulty level it should get."""
        state = self._drops.get(drop_id)
        if state is None:
            state = self._drops[drop_id] = _DropDemand()
        now = time.monotonic()
        ip = state.prefixes.get(prefix)
        if ip is None:
            ip = state.prefixes[prefix] = _Rate(at=now)
        whole = state.whole
        whole.pending += 1
        ip.pending += 1
        drop_level = whole.level_at(now, self._tau, self._drop_levels)
        ip_level = ip.level_at(now, self._tau, self._ip_levels)
        return drop_level if drop_level > ip_level else ip_level

    def closed_at(self, drop_id: str) -> int:
        """The drop's closing as of the last report (0: open, or not reported yet)."""
        state = self._drops.get(drop_id)
        return 0 if state is None else state.closed_at

    def note_closed(self, drop_id: str, closed_at: int) -> None:
        """This process closed the drop: no need to wait for the next report."""
        state = self._drops.setdefault(drop_id, _DropDemand())
        state.closed_at = closed_at

    async def report(self) -> None:
        """Send every drop's unreported counts in one batch of script calls; learn the pooled
        rates, Redis's clock and closings. Counts of a failed report are sent next time."""
        now = time.monotonic()
        for drop_id, state in list(self._drops.items()):
            quiet = state.whole.pending == 0 and state.whole.value(now, self._tau) < FORGET_BELOW
            if quiet and not state.prefixes:
                # Nothing to report and nothing to learn: a drop nobody asks about costs no
                # script call. (Its closing is learnt again by the first report after a hit;
                # until then the purchase script refuses a closed drop by itself.)
                del self._drops[drop_id]
        if not self._drops:
            return
        sent_at = time.time()
        results = await asyncio.gather(
            *(self._report_drop(drop_id, state) for drop_id, state in list(self._drops.items())),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        now_ms = next((r for r in results if isinstance(r, int)), None)
        if now_ms is not None:
            self._clock.observe(now_ms, sent_at, time.time())
        if errors:
            raise errors[0]

    async def _report_drop(self, drop_id: str, state: _DropDemand) -> int:
        now = time.monotonic()
        prefixes: list[tuple[str, _Rate, int]] = []
        for prefix, rate in list(state.prefixes.items()):
            if rate.pending:
                prefixes.append((prefix, rate, rate.pending))
            elif rate.value(now, self._tau) < FORGET_BELOW:
                del state.prefixes[prefix]  # quiet here: nothing to report, nothing to keep
        whole_sent = state.whole.pending
        args: list[str | int] = [self._tau_us, whole_sent]
        for prefix, _, count in prefixes:
            args += (prefix, count)
        keys = drop_keys(drop_id)
        reply = await self._batcher.run(self._script, [keys.meta, keys.demand], args)
        if reply[0] != 0:
            self._drops.pop(drop_id, None)  # no such drop (the views refuse it before counting)
            return 0
        now = time.monotonic()
        state.closed_at = int(reply[2])
        # Requests counted while the report was in flight stay pending for the next one.
        state.whole = _Rate(int(reply[3]) / 1000, now, state.whole.pending - whole_sent)
        for (_, rate, count), milli in zip(prefixes, reply[4:], strict=True):
            rate.reported(int(milli) / 1000, now, rate.pending - count)
        return int(reply[1])
