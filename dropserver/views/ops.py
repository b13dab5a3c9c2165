"""Operator endpoints: liveness, readiness, Prometheus."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dropserver.appkeys import SERVICES
from dropserver.http import json_response


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when Redis answers and holds every script (a restarted Redis lost its cache; the
    batcher reloads on NOSCRIPT, but a load balancer should know while it is empty)."""
    services = request.app[SERVICES]
    try:
        shas = [s.sha for s in services.scripts.values()]
        present = await services.redis.script_exists(*shas)
    except Exception as exc:  # any failure to ask means not ready
        return json_response({"status": "unavailable", "reason": str(exc)}, 503)
    if not all(present):
        try:
            await services.batcher.load(list(services.scripts.values()))
        except Exception as exc:
            return json_response({"status": "unavailable", "reason": str(exc)}, 503)
    return json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    services.gate.publish_pool_stock()
    registry = services.metrics.registry
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
