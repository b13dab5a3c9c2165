"""One middleware for every request: errors as the contract's JSON, and the request metrics.

A single middleware (not two) because each layer costs a coroutine frame per request on the hot
path. Metrics are labelled by route template (``/v1/drops/{id}/purchase``), never by raw path,
so a bot probing random ids cannot blow up the series count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from redis.exceptions import RedisError

from dropserver.errors import ApiError
from dropserver.http import json_response
from dropserver.metrics import Metrics

log = logging.getLogger("dropserver")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def make_middleware(metrics: Metrics) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            response = await handler(request)
        except ApiError as exc:
            response = json_response(exc.body(), exc.status, exc.headers)
        except web.HTTPException as exc:  # routing (404/405) and aiohttp's own refusals
            if exc.status < 400:
                raise
            code = _HTTP_CODES.get(exc.status, "error")
            # Keep the exception's headers: a 405 must say what is Allowed.
            headers = {k: v for k, v in exc.headers.items() if k.lower() != "content-type"}
            response = json_response(
                {"error": {"code": code, "message": exc.reason}}, exc.status, headers
            )
        except RedisError:
            log.exception("redis failed during %s %s", request.method, request.path)
            response = json_response(
                {"error": {"code": "unavailable", "message": "storage unavailable, retry"}},
                503,
                {"Retry-After": "1"},
            )
        except Exception:
            log.exception("unhandled error during %s %s", request.method, request.path)
            response = json_response(
                {"error": {"code": "internal", "message": "internal error"}}, 500
            )
        route = request.match_info.route.resource
        template = route.canonical if route is not None else "unmatched"
        method = request.method
        metrics.child(metrics.http_requests, template, method, str(response.status)).inc()  # type: ignore[attr-defined]
        metrics.child(metrics.http_latency, template, method).observe(  # type: ignore[attr-defined]
            time.perf_counter() - started
        )
        return response

    return middleware
