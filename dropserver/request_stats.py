"""Request counts and latencies per route template, counted in plain Python and handed to
Prometheus at scrape time.

prometheus-client's Counter and Histogram take a lock per increment (a histogram observation
is two of them); at tens of thousands of requests per second that is measurable on a path
that otherwise does little. Every request is recorded on the event loop's thread and every
scrape reads on the same thread (the /metrics handler), so plain integers need no lock.
The exported series are those a Counter and a Histogram would export.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _Route:
    __slots__ = ("buckets", "count", "statuses", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.count = 0
        self.sum = 0.0
        self.statuses: dict[int, int] = {}


class RequestStats(Collector):
    """``dropserver_http_requests_total{route,method,status}`` and
    ``dropserver_http_request_duration_seconds{route,method}``."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], _Route] = {}

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method)
        stats = self._routes.get(key)
        if stats is None:
            stats = self._routes[key] = _Route()
        stats.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        stats.count += 1
        stats.sum += seconds
        statuses = stats.statuses
        statuses[status] = statuses.get(status, 0) + 1

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "dropserver_http_requests", "HTTP requests", labels=["route", "method", "status"]
        )
        latency = HistogramMetricFamily(
            "dropserver_http_request_duration_seconds",
            "HTTP request latency by route template",
            labels=["route", "method"],
        )
        for (route, method), stats in list(self._routes.items()):
            for status, count in sorted(stats.statuses.items()):
                requests.add_metric([route, method, str(status)], count)
            cumulative, buckets = 0, []
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), stats.buckets, strict=True):
                cumulative += count
                buckets.append((_bound(bound), cumulative))
            latency.add_metric([route, method], buckets, stats.sum)
        yield requests
        yield latency

    def describe(self) -> Iterator[Metric]:
        return iter(())  # names are known only once routes are seen; nothing to reserve


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)
