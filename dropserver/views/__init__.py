"""HTTP handlers, one module per caller: buyers, platforms (admin), operators."""

from __future__ import annotations

from aiohttp import web

from dropserver.instrument import CATCH_ALL, UNMATCHED, Handler, instrumented, unmatched
from dropserver.request_stats import RequestStats
from dropserver.views import admin, buyer, docs, lottery, ops

# aiohttp tries the routes under one static prefix (/v1/drops) in the order they were added:
# the calls of a drop's opening come first, so they are matched at the first try.
ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/v1/drops/{id}/purchase", buyer.purchase),
    ("GET", "/v1/drops/{id}/challenge", buyer.challenge),
    ("POST", "/v1/drops/{id}/challenge", buyer.challenge),
    ("POST", "/v1/drops/{id}/entries", lottery.create_entry),
    ("GET", "/v1/drops/{id}/me", buyer.me),
    ("GET", "/v1/drops/{id}", buyer.get_drop),
    ("POST", "/v1/drops", admin.create_drop),
    ("GET", "/v1/drops", admin.list_drops),
    ("POST", "/v1/drops/{id}/close", admin.close_drop),
    ("GET", "/v1/drops/{id}/stats", admin.drop_stats),
    ("GET", "/v1/drops/{id}/orders", admin.list_orders),
    ("POST", "/v1/drops/{id}/draw", lottery.run_draw),
    ("GET", "/v1/drops/{id}/proof", lottery.get_proof),
    ("GET", "/v1/drops/{id}/entries.ndjson", lottery.get_entries),
    ("GET", "/v1/orders/{order_id}", buyer.get_order),
    ("POST", "/v1/orders/{order_id}/confirm", admin.confirm_order),
    ("POST", "/v1/orders/{order_id}/cancel", admin.cancel_order),
    ("GET", "/healthz", ops.healthz),
    ("GET", "/readyz", ops.readyz),
    ("GET", "/metrics", ops.metrics),
    ("GET", "/v1/openapi.json", docs.openapi),
]


def setup_routes(app: web.Application, stats: RequestStats) -> None:
    router = app.router
    for method, path, handler in ROUTES:
        wrapped = instrumented(handler, path, stats)
        router.add_route(method, path, wrapped)
        if method == "GET":
            router.add_route("HEAD", path, wrapped)
    router.add_route("*", CATCH_ALL, instrumented(unmatched, UNMATCHED, stats))
