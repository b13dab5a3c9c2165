"""Labelled counters counted in plain Python and handed to Prometheus at scrape time.

For the counters a request path increments (purchases, challenges, verifications, refusals).
A prometheus-client Counter takes a lock per increment, and a labelled child must first be
found; here one increment is a dict update: 0.13 us against 0.50 us for a cached child's
(timeit). As with :mod:`dropserver.request_stats`, every increment and every scrape runs on the
event loop's thread, so plain integers need no lock. The exported series are those a Counter
exports, without the ``_created`` samples.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector


class Tally(Collector):
    """``<name>_total{labels}``: counts by label values, in the order of ``labels``."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name = name
        self.label_names = tuple(labels)
        self._documentation = documentation
        self._counts: dict[tuple[str, ...], int] = {}

    def inc(self, *values: str) -> None:
        # add(1, ...) spelled out: delegating re-packs the values, 0.31 us instead of 0.13.
        counts = self._counts
        count = counts.get(values)
        if count is None:
            self._check(values)
            count = 0
        counts[values] = count + 1

    def add(self, amount: int, *values: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        counts = self._counts
        count = counts.get(values)
        if count is None:
            self._check(values)
            count = 0
        counts[values] = count + amount

    def _check(self, values: tuple[str, ...]) -> None:
        # Once per new series, as Counter.labels() checks: a wrong number of values would
        # otherwise be exported under the wrong labels.
        if len(values) != len(self.label_names):
            raise ValueError(f"{self.name} takes {len(self.label_names)} label values")

    def value(self, *values: str) -> int:
        return self._counts.get(values, 0)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self._documentation, labels=self.label_names)
        for values, count in list(self._counts.items()):
            family.add_metric(list(values), count)
        yield family

    def describe(self) -> Iterator[Metric]:
        # The registry asks at registration, to refuse a duplicate name; series come later.
        yield CounterMetricFamily(self.name, self._documentation, labels=self.label_names)
