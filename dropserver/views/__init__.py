"""HTTP handlers, one module per caller: buyers, platforms (admin), operators."""

from __future__ import annotations

from aiohttp import web

from dropserver.views import admin, buyer, docs, lottery, ops


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/v1/drops", admin.create_drop)
    r.add_get("/v1/drops", admin.list_drops)
    r.add_get("/v1/drops/{id}", buyer.get_drop)
    r.add_post("/v1/drops/{id}/close", admin.close_drop)
    r.add_get("/v1/drops/{id}/stats", admin.drop_stats)
    r.add_get("/v1/drops/{id}/orders", admin.list_orders)
    r.add_get("/v1/drops/{id}/challenge", buyer.challenge)
    r.add_post("/v1/drops/{id}/challenge", buyer.challenge)
    r.add_post("/v1/drops/{id}/purchase", buyer.purchase)
    r.add_post("/v1/drops/{id}/entries", lottery.create_entry)
    r.add_post("/v1/drops/{id}/draw", lottery.run_draw)
    r.add_get("/v1/drops/{id}/proof", lottery.get_proof)
    r.add_get("/v1/drops/{id}/entries.ndjson", lottery.get_entries)
    r.add_get("/v1/drops/{id}/me", buyer.me)
    r.add_get("/v1/orders/{order_id}", buyer.get_order)
    r.add_post("/v1/orders/{order_id}/confirm", admin.confirm_order)
    r.add_post("/v1/orders/{order_id}/cancel", admin.cancel_order)
    r.add_get("/healthz", ops.healthz)
    r.add_get("/readyz", ops.readyz)
    r.add_get("/metrics", ops.metrics)
    r.add_get("/v1/openapi.json", docs.openapi)
