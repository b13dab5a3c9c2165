"""Writes deploy/grafana/dashboards/dropserver.json, the Grafana dashboard of dropserver.

The JSON is generated so that every panel is uniform and every query is reviewable in one
place; edit this file, then run it (stdlib only):

    python deploy/grafana/build_dashboard.py

tests/test_deploy.py checks that the committed JSON is what this script writes, and that every
metric a query names is one the service exports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards" / "dropserver.json"

DS = {"type": "prometheus", "uid": "${datasource}"}
INST = 'instance=~"$instance"'
DROP = 'drop=~"$drop"'
OPS_ROUTES = 'route!~"/(healthz|readyz|metrics)"'
BUY_ROUTES = 'route=~"/v1/drops/[^/]+/(purchase|entries)"'
RI = "$__rate_interval"

Panel = dict[str, Any]


class Layout:
    """Places panels left to right in rows of 24 columns."""

    def __init__(self) -> None:
        self.panels: list[Panel] = []
        self.y = 0
        self.x = 0
        self.row_h = 0
        self.next_id = 1

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "id": self._id(),
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.y += 1

    def _newline(self) -> None:
        if self.x:
            self.y += self.row_h
            self.x = 0
            self.row_h = 0

    def add(self, panel: Panel, w: int, h: int) -> None:
        if self.x + w > 24:
            self._newline()
        panel["id"] = self._id()
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)


def target(expr: str, legend: str = "__auto", ref: str = "A") -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, "range": True}


def targets(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(pairs)]


def timeseries(
    title: str,
    description: str,
    tgts: list[dict[str, Any]],
    *,
    unit: str = "short",
    stacked: bool = False,
    minimum: float | None = 0,
    overrides: list[dict[str, Any]] | None = None,
) -> Panel:
    defaults: dict[str, Any] = {
        "unit": unit,
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 25 if stacked else 8,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if stacked else "none", "group": "A"},
        },
        "color": {"mode": "palette-classic"},
    }
    if minimum is not None:
        defaults["min"] = minimum
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": tgts,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
                "calcs": ["lastNotNull", "max"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(
    title: str,
    description: str,
    expr: str,
    *,
    unit: str,
    steps: list[tuple[str, float | None]],
    decimals: int | None = None,
) -> Panel:
    defaults: dict[str, Any] = {
        "unit": unit,
        "color": {"mode": "thresholds"},
        "thresholds": {
            "mode": "absolute",
            "steps": [{"color": c, "value": v} for c, v in steps],
        },
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [target(expr, title)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "auto",
        },
    }


def quantiles(
    metric: str, by: str, selector: str, legend_prefix: str = ""
) -> list[tuple[str, str]]:
    out = []
    for q in ("0.5", "0.99"):
        label = "p50" if q == "0.5" else "p99"
        expr = (
            f"histogram_quantile({q}, sum by (le{', ' + by if by else ''}) "
            f"(rate({metric}_bucket{{{selector}}}[{RI}])))"
        )
        legend = f"{label} {legend_prefix}".strip()
        out.append((expr, legend))
    return out


def build() -> dict[str, Any]:
    lay = Layout()

    # ---------------------------------------------------------------- overview
    lay.row("Overview")
    lay.add(
        stat(
            "Requests/s",
            "All HTTP requests per second over the selected instances.",
            f"sum(rate(dropserver_http_requests_total{{{INST}}}[{RI}]))",
            unit="reqps",
            steps=[("blue", None)],
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "5xx ratio",
            "Share of API responses (health and metrics excluded) that are 5xx. "
            "Alerts: DropserverHigh5xxRatio (1%), DropserverHigh5xxRatioCritical (5%).",
            f"(sum(rate(dropserver_http_requests_total"
            f'{{{INST}, {OPS_ROUTES}, status=~"5.."}}[{RI}])) or vector(0))'
            f" / sum(rate(dropserver_http_requests_total{{{INST}, {OPS_ROUTES}}}[{RI}]))",
            unit="percentunit",
            steps=[("green", None), ("orange", 0.01), ("red", 0.05)],
            decimals=2,
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "p99 purchase / entry",
            "99th percentile latency of POST purchase and entries. "
            "Alerts: DropserverPurchaseLatencyHigh (250 ms), ...Critical (1 s).",
            f"histogram_quantile(0.99, sum by (le) (rate("
            f"dropserver_http_request_duration_seconds_bucket{{{INST}, {BUY_ROUTES}}}[{RI}])))",
            unit="s",
            steps=[("green", None), ("orange", 0.25), ("red", 1)],
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Instances up",
            "dropserver replicas Prometheus can scrape.",
            'sum(up{job="dropserver"})',
            unit="none",
            steps=[("red", None), ("orange", 1), ("green", 2)],
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Units remaining",
            "Remaining stock summed over the selected drops (each replica reports every "
            "drop: max per drop, then sum).",
            f"sum(max by (drop) (dropserver_stock_remaining{{{DROP}}}))",
            unit="none",
            steps=[("red", None), ("green", 1)],
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Redis errors/s",
            "Failed pipelined round trips to Redis; any non-zero value means failed purchases.",
            f"sum(rate(dropserver_redis_errors_total{{{INST}}}[{RI}])) or vector(0)",
            unit="ops",
            steps=[("green", None), ("red", 0.001)],
        ),
        4,
        4,
    )

    # ---------------------------------------------------------------- HTTP
    lay.row("HTTP")
    lay.add(
        timeseries(
            "Request rate by route",
            "Requests per second by route template (never by raw path, so series stay bounded).",
            targets(
                (
                    f"sum by (route) (rate(dropserver_http_requests_total{{{INST}}}[{RI}]))",
                    "{{route}}",
                )
            ),
            unit="reqps",
            stacked=True,
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Responses by status",
            "All API responses by status code. 409 (sold_out, limit_reached), 425 (not_open) "
            "and 429 (rate_limited) are normal business answers during a drop; 5xx are not.",
            targets(
                (
                    "sum by (status) (rate(dropserver_http_requests_total"
                    f"{{{INST}, {OPS_ROUTES}}}[{RI}]))",
                    "{{status}}",
                )
            ),
            unit="reqps",
            stacked=True,
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Error ratio (5xx) by route",
            "Share of each route's responses that are 5xx. 503 = Redis unavailable, 500 = bug.",
            targets(
                (
                    "sum by (route) (rate(dropserver_http_requests_total"
                    f'{{{INST}, status=~"5.."}}[{RI}]))'
                    f" / sum by (route) (rate(dropserver_http_requests_total{{{INST}}}[{RI}]))",
                    "{{route}}",
                )
            ),
            unit="percentunit",
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Latency p50 / p99 by route",
            "From dropserver_http_request_duration_seconds. Watch the purchase and entries "
            "routes during the opening minute.",
            targets(
                *quantiles(
                    "dropserver_http_request_duration_seconds",
                    "route",
                    f"{INST}, {OPS_ROUTES}",
                    "{{route}}",
                )
            ),
            unit="s",
        ),
        12,
        8,
    )

    # ---------------------------------------------------------------- sales
    lay.row("Sales: $drop")
    lay.add(
        timeseries(
            "Purchases by outcome",
            "Purchase attempts per second by outcome (held, confirmed, sold_out, limit_reached, "
            "not_open, closed, rate_limited, pow_*). Stacked: the height is the total attempt "
            "rate.",
            targets(
                (
                    f"sum by (outcome) (rate(dropserver_purchases_total{{{DROP}}}[{RI}]))",
                    "{{outcome}}",
                )
            ),
            unit="ops",
            stacked=True,
        ),
        16,
        8,
    )
    lay.add(
        timeseries(
            "Holds expired",
            "Holds that expired unpaid (units returned to stock), per second, by drop. A wave "
            "means the platform's confirmations fail or bots hold without paying "
            "(alert: DropserverHoldsExpiringEnMasse).",
            targets(
                (
                    f"sum by (drop) (rate(dropserver_holds_expired_total{{{DROP}}}[{RI}]))",
                    "{{drop}}",
                )
            ),
            unit="ops",
        ),
        8,
        8,
    )
    stock = timeseries(
        "Stock: $drop",
        "Units remaining, held (awaiting payment) and confirmed, stacked; the dashed line is "
        "the supply. remaining + held + confirmed must always equal supply "
        "(alerts: DropserverStockAccountingMismatch, DropserverOversold, DropserverStockNegative).",
        targets(
            ('max by (drop) (dropserver_stock_remaining{drop=~"$drop"})', "remaining"),
            ('max by (drop) (dropserver_stock_held{drop=~"$drop"})', "held"),
            ('max by (drop) (dropserver_stock_confirmed{drop=~"$drop"})', "confirmed"),
            ('max by (drop) (dropserver_stock_supply{drop=~"$drop"})', "supply"),
        ),
        unit="none",
        stacked=True,
        overrides=[
            {
                "matcher": {"id": "byName", "options": "supply"},
                "properties": [
                    {"id": "custom.stacking", "value": {"mode": "none", "group": "A"}},
                    {"id": "custom.fillOpacity", "value": 0},
                    {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                    {"id": "color", "value": {"mode": "fixed", "fixedColor": "text"}},
                ],
            },
            {
                "matcher": {"id": "byName", "options": "remaining"},
                "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": "green"}}],
            },
            {
                "matcher": {"id": "byName", "options": "held"},
                "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": "orange"}}],
            },
            {
                "matcher": {"id": "byName", "options": "confirmed"},
                "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": "blue"}}],
            },
        ],
    )
    stock["repeat"] = "drop"
    stock["repeatDirection"] = "h"
    stock["maxPerRow"] = 2
    # Full width: Grafana splits it between the repeated copies (two per row at most).
    lay.add(stock, 24, 9)
    lay.add(
        timeseries(
            "Lottery entries by outcome",
            "Lottery entry attempts per second by outcome, stacked.",
            targets(
                (
                    f"sum by (outcome) (rate(dropserver_lottery_entries_total{{{DROP}}}[{RI}]))",
                    "{{outcome}}",
                )
            ),
            unit="ops",
            stacked=True,
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Lottery draw duration",
            "Draws are rare: mean and p99 over the last hour of draws (all drops).",
            targets(
                (
                    "sum(increase(dropserver_draw_duration_seconds_sum[1h]))"
                    " / sum(increase(dropserver_draw_duration_seconds_count[1h]))",
                    "mean (1h)",
                ),
                (
                    "histogram_quantile(0.99, sum by (le) "
                    "(increase(dropserver_draw_duration_seconds_bucket[1h])))",
                    "p99 (1h)",
                ),
            ),
            unit="s",
        ),
        12,
        8,
    )

    # ---------------------------------------------------------------- anti-bot
    lay.row("Proof of work and rate limits")
    lay.add(
        timeseries(
            "PoW challenges issued",
            "Challenges handed out per second, by drop: the live demand.",
            targets(
                (
                    f"sum by (drop) (rate(dropserver_pow_challenges_issued_total{{{DROP}}}[{RI}]))",
                    "{{drop}}",
                )
            ),
            unit="ops",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "PoW verifications by outcome",
            "Proofs checked per second by outcome, stacked. A high invalid share on every drop "
            "at once usually means the replicas do not share DROPSERVER_POW_SECRET "
            "(alert: DropserverPowInvalidSurge).",
            targets(
                (
                    f"sum by (outcome) (rate(dropserver_pow_verifications_total{{{DROP}}}[{RI}]))",
                    "{{outcome}}",
                )
            ),
            unit="ops",
            stacked=True,
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "PoW difficulty (counter_max)",
            "Current difficulty level per drop; adaptive drops raise it with demand.",
            targets((f"max by (drop) (dropserver_pow_difficulty{{{DROP}}})", "{{drop}}")),
            unit="short",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "PoW pool stock",
            "Pre-derived challenges ready, per instance and algorithm. At zero during a drop "
            "each challenge is derived on demand (alert: DropserverPowPoolEmpty).",
            targets(
                (
                    f"sum by (instance, algorithm) (dropserver_pow_pool_stock{{{INST}}})",
                    "{{instance}} {{algorithm}}",
                )
            ),
            unit="short",
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Rate-limit rejections by kind",
            "Requests refused per second by limit kind (person, ip, device), stacked. "
            "A surge of kind=ip can be honest buyers behind a carrier NAT "
            "(alert: DropserverRateLimitSurge).",
            targets(
                (
                    f"sum by (kind) (rate(dropserver_ratelimit_rejections_total{{{DROP}}}[{RI}]))",
                    "{{kind}}",
                )
            ),
            unit="ops",
            stacked=True,
        ),
        12,
        8,
    )

    # ---------------------------------------------------------------- webhooks
    lay.row("Webhooks")
    lay.add(
        timeseries(
            "Webhook deliveries by outcome",
            "Event deliveries to the platforms' webhooks per second: delivered, failed (retried "
            "after a doubling wait) and dropped (out of attempts; the event stays in the drop's "
            "stream). Failures mean the platform's endpoint is down or slow "
            "(alerts: DropserverWebhookFailing, DropserverWebhookDropped).",
            targets(
                (
                    "sum by (platform, outcome) "
                    f"(rate(dropserver_webhook_attempts_total{{{INST}}}[{RI}]))",
                    "{{platform}} {{outcome}}",
                )
            ),
            unit="ops",
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Webhook delivery time",
            "p50 and p99 of one delivery attempt, by platform: the platform endpoint's answer "
            "time (capped by webhooks.timeout_seconds).",
            targets(
                (
                    "histogram_quantile(0.5, sum by (platform, le) "
                    f"(rate(dropserver_webhook_seconds_bucket{{{INST}}}[{RI}])))",
                    "{{platform}} p50",
                ),
                (
                    "histogram_quantile(0.99, sum by (platform, le) "
                    f"(rate(dropserver_webhook_seconds_bucket{{{INST}}}[{RI}])))",
                    "{{platform}} p99",
                ),
            ),
            unit="s",
        ),
        12,
        8,
    )

    # ---------------------------------------------------------------- redis
    lay.row("Redis")
    lay.add(
        timeseries(
            "Redis batch size (script calls per round trip)",
            "Concurrent script calls share one pipelined round trip. Batches near "
            "redis.max_batch (64) mean calls queue behind Redis "
            "(alert: DropserverRedisBatchesLarge).",
            targets(
                *quantiles("dropserver_redis_batch_size", "", INST),
                (
                    f"sum(rate(dropserver_redis_batch_size_sum{{{INST}}}[{RI}]))"
                    f" / sum(rate(dropserver_redis_batch_size_count{{{INST}}}[{RI}]))",
                    "mean",
                ),
            ),
            unit="short",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Redis round trip latency",
            "Time of one pipelined round trip, p50 and p99 per instance "
            "(alert: DropserverRedisRoundtripSlow at 50 ms p99).",
            targets(
                *quantiles("dropserver_redis_roundtrip_seconds", "instance", INST, "{{instance}}")
            ),
            unit="s",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Redis round trips and errors",
            "Successful round trips and failed ones per second, per instance; on a Redis"
            " Cluster also the script calls redirected (a slot moving, a failover).",
            targets(
                (
                    "sum by (instance) (rate(dropserver_redis_roundtrip_seconds_count"
                    f"{{{INST}}}[{RI}]))",
                    "ok {{instance}}",
                ),
                (
                    f"sum by (instance) (rate(dropserver_redis_errors_total{{{INST}}}[{RI}]))",
                    "errors {{instance}}",
                ),
                (
                    f"sum by (instance) (rate(dropserver_redis_redirects_total{{{INST}}}[{RI}]))",
                    "redirected {{instance}}",
                ),
            ),
            unit="ops",
            overrides=[
                {
                    "matcher": {"id": "byRegexp", "options": "errors.*"},
                    "properties": [
                        {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}}
                    ],
                }
            ],
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Redis server: commands/s and clients",
            "From redis_exporter (job redis). Empty if the exporter is not deployed.",
            targets(
                (f"sum by (instance) (rate(redis_commands_processed_total[{RI}]))", "commands/s"),
                ("sum by (instance) (redis_connected_clients)", "clients"),
            ),
            unit="short",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Redis server: memory",
            "Used memory against maxmemory. The policy is noeviction: at the limit every write "
            "fails (alerts: RedisMemoryNearLimit, RedisMemoryFull).",
            targets(
                ("sum by (instance) (redis_memory_used_bytes)", "used"),
                ("sum by (instance) (redis_memory_max_bytes)", "maxmemory"),
            ),
            unit="bytes",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Redis server: persistence",
            "AOF enabled (1), last AOF write ok (1), last rewrite ok (1), up (1); any 0 is an "
            "alert. Keys evicted must stay 0.",
            targets(
                ("min(redis_up)", "up"),
                ("min(redis_aof_enabled)", "aof enabled"),
                ("min(redis_aof_last_write_status)", "aof last write ok"),
                ("min(redis_aof_last_bgrewrite_status)", "aof last rewrite ok"),
                (f"sum(increase(redis_evicted_keys_total[{RI}]))", "keys evicted"),
            ),
            unit="short",
        ),
        8,
        8,
    )

    # ---------------------------------------------------------------- process
    lay.row("Processes")
    lay.add(
        timeseries(
            "CPU per instance (cores)",
            "The event loop uses one core: near 1.0 the instance is saturated; scale out "
            "(alert: DropserverCpuSaturated).",
            targets(
                (
                    f'rate(process_cpu_seconds_total{{job="dropserver", {INST}}}[{RI}])',
                    "{{instance}}",
                )
            ),
            unit="short",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Resident memory per instance",
            "RSS of each dropserver process.",
            targets(
                (
                    f'process_resident_memory_bytes{{job="dropserver", {INST}}}',
                    "{{instance}}",
                )
            ),
            unit="bytes",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Event loop lag p50 / p99 per instance",
            "How late the event loop ran its timers: time in which the instance served no "
            "request at all (CPU saturation, long garbage collections, blocking work). "
            "Alert: DropserverEventLoopStalls (100 ms p99).",
            targets(
                *quantiles("dropserver_event_loop_lag_seconds", "instance", INST, "{{instance}}")
            ),
            unit="s",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Open file descriptors per instance",
            "Client connections are descriptors; compare with process_max_fds "
            "(alert: DropserverFileDescriptorsNearLimit).",
            targets(
                (f'process_open_fds{{job="dropserver", {INST}}}', "{{instance}}"),
            ),
            unit="short",
        ),
        8,
        8,
    )

    return {
        "uid": "dropserver",
        "title": "dropserver",
        "description": "Fair-drop sale server: traffic, sales, stock, anti-bot, Redis.",
        "tags": ["dropserver", "redis"],
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "5s",
        "time": {"from": "now-30m", "to": "now"},
        "timepicker": {"refresh_intervals": ["5s", "10s", "30s", "1m", "5m", "15m"]},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                {
                    "datasource": DS,
                    "enable": True,
                    "hide": False,
                    "iconColor": "red",
                    "name": "Firing alerts",
                    "expr": 'ALERTS{alertstate="firing", service=~"dropserver|redis"}',
                    "step": "30s",
                    "titleFormat": "{{alertname}}",
                    "textFormat": "{{severity}} {{drop}} {{instance}}",
                    "useValueForTime": False,
                },
            ]
        },
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                    "regex": "",
                    "includeAll": False,
                    "multi": False,
                    "options": [],
                },
                {
                    "name": "instance",
                    "label": "Instance",
                    "type": "query",
                    "datasource": DS,
                    "definition": 'label_values(up{job="dropserver"}, instance)',
                    "query": {
                        "query": 'label_values(up{job="dropserver"}, instance)',
                        "refId": "instance",
                    },
                    "refresh": 2,
                    "includeAll": True,
                    "allValue": ".*",
                    "multi": True,
                    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                    "options": [],
                    "regex": "",
                    "sort": 1,
                    "hide": 0,
                },
                {
                    "name": "drop",
                    "label": "Drop",
                    "type": "query",
                    "datasource": DS,
                    "definition": "label_values(dropserver_stock_supply, drop)",
                    "query": {
                        "query": "label_values(dropserver_stock_supply, drop)",
                        "refId": "drop",
                    },
                    "refresh": 2,
                    "includeAll": True,
                    "allValue": ".*",
                    "multi": True,
                    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                    "options": [],
                    "regex": "",
                    "sort": 1,
                    "hide": 0,
                },
            ]
        },
        "panels": lay.panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
