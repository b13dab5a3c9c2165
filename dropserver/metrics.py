"""Prometheus metrics. One registry per app, so tests can build many apps in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.metrics import MetricWrapperBase

from dropserver.request_stats import LATENCY_BUCKETS, RequestStats
from dropserver.tally import Tally


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)  # process_* (CPU, memory, fds) for the dashboards
        # dropserver_http_requests_total and dropserver_http_request_duration_seconds
        self.requests = RequestStats()
        r.register(self.requests)
        # Counters a request path increments: plain tallies (see dropserver.tally).
        self.purchases = self._tally(
            "dropserver_purchases", "Purchase attempts by outcome", ["drop", "outcome"]
        )
        self.stock_supply = Gauge(
            "dropserver_stock_supply", "Units in the drop", ["drop"], registry=r
        )
        self.stock_remaining = Gauge(
            "dropserver_stock_remaining", "Units neither held nor confirmed", ["drop"], registry=r
        )
        self.stock_held = Gauge("dropserver_stock_held", "Units on hold", ["drop"], registry=r)
        self.stock_confirmed = Gauge(
            "dropserver_stock_confirmed", "Units sold for good", ["drop"], registry=r
        )
        self.holds_expired = self._tally(
            "dropserver_holds_expired", "Holds expired by the sweeper", ["drop"]
        )
        self.pow_issued = self._tally(
            "dropserver_pow_challenges_issued", "PoW challenges issued", ["drop"]
        )
        self.pow_verifications = self._tally(
            "dropserver_pow_verifications", "PoW verifications by outcome", ["drop", "outcome"]
        )
        self.pow_difficulty = Gauge(
            "dropserver_pow_difficulty", "Current PoW counter_max per drop", ["drop"], registry=r
        )
        self.pow_pool_stock = Gauge(
            "dropserver_pow_pool_stock", "Pre-derived challenges ready", ["algorithm"], registry=r
        )
        self.ratelimit_rejections = self._tally(
            "dropserver_ratelimit_rejections", "Requests refused by a rate limit", ["drop", "kind"]
        )
        self.lottery_entries = self._tally(
            "dropserver_lottery_entries", "Lottery entries by outcome", ["drop", "outcome"]
        )
        self.draw_duration = Histogram(
            "dropserver_draw_duration_seconds",
            "Time to run a lottery draw",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.redis_batch_size = Histogram(
            "dropserver_redis_batch_size",
            "Script calls per pipelined round trip",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=r,
        )
        self.redis_roundtrip = Histogram(
            "dropserver_redis_roundtrip_seconds",
            "Time of one pipelined round trip",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.redis_errors = Counter("dropserver_redis_errors", "Failed round trips", registry=r)
        self.redis_redirects = Counter(
            "dropserver_redis_redirects",
            "Script calls a Redis Cluster redirected (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) and"
            " that were sent again: a slot moving or a failover",
            registry=r,
        )
        self.webhook_attempts = Counter(
            "dropserver_webhook_attempts",
            "Webhook deliveries by outcome: delivered, failed (retried later), dropped (gave up)",
            ["platform", "outcome"],
            registry=r,
        )
        self.webhook_seconds = Histogram(
            "dropserver_webhook_seconds",
            "Time of one webhook delivery attempt",
            ["platform"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.loop_lag = Histogram(
            "dropserver_event_loop_lag_seconds",
            "How late the event loop ran a timer: time no request of the process was served",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self._children: dict[tuple[object, ...], MetricWrapperBase] = {}

    def _tally(self, name: str, documentation: str, labels: list[str]) -> Tally:
        tally = Tally(name, documentation, labels)
        self.registry.register(tally)
        return tally

    def child(self, metric: MetricWrapperBase, *labels: str) -> MetricWrapperBase:
        """A labelled child, cached: ``labels()`` costs a lock and a dict build per call."""
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found
