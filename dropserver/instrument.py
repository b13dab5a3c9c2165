"""What every request goes through: errors as the contract's JSON, and the request metrics.

Each route's handler is wrapped when the route is registered, rather than by an aiohttp
middleware: the route template (the metric label, never the raw path, so a bot probing random
ids cannot blow up the series count) is then known without a lookup, and a request pays one
coroutine frame instead of aiohttp's per-request middleware chain. A catch-all route registered
last answers 404 and 405 with the same JSON errors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from redis.exceptions import RedisError, ResponseError

from dropserver.errors import ApiError
from dropserver.http import json_response
from dropserver.request_stats import RequestStats

log = logging.getLogger("dropserver")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNMATCHED = "unmatched"  # the route label of requests no route serves

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def instrumented(handler: Handler, template: str, stats: RequestStats) -> Handler:
    """``handler`` with its errors rendered as JSON and its requests recorded as ``template``."""
    perf_counter = time.perf_counter
    record = stats.record

    async def instrumented_handler(request: web.Request) -> web.StreamResponse:
        started = perf_counter()
        try:
            response = await handler(request)
        except Exception as exc:  # rendered by kind in error_response
            response = error_response(request, exc)
        record(template, request.method, response.status, perf_counter() - started)
        return response

    return instrumented_handler


def error_response(request: web.Request, exc: Exception) -> web.Response:
    if isinstance(exc, ApiError):
        return json_response(exc.body(), exc.status, exc.headers)
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        # aiohttp's own refusals (413 from the body reader); keep their headers.
        code = _HTTP_CODES.get(exc.status, "error")
        headers = {k: v for k, v in exc.headers.items() if k.lower() != "content-type"}
        return json_response({"error": {"code": code, "message": exc.reason}}, exc.status, headers)
    if isinstance(exc, web.HTTPException):
        raise exc  # a redirect or another non-error answer is the handler's to give
    if isinstance(exc, RedisError) and not isinstance(exc, ResponseError):
        # Unreachable, timed out, failing over: worth a retry. A ResponseError (a script
        # refusing its arguments) is a bug here, not an outage: it falls through to 500.
        log.exception("redis failed during %s %s", request.method, request.path)
        return json_response(
            {"error": {"code": "unavailable", "message": "storage unavailable, retry"}},
            503,
            {"Retry-After": "1"},
        )
    log.exception("unhandled error during %s %s", request.method, request.path)
    return json_response({"error": {"code": "internal", "message": "internal error"}}, 500)


async def unmatched(request: web.Request) -> web.StreamResponse:
    """The catch-all route: 405 with ``Allow`` when another route has the path, else 404."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource.canonical == CATCH_ALL_CANONICAL:
            continue
        _match, methods = await resource.resolve(request)
        allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


CATCH_ALL = "/{tail:.*}"
CATCH_ALL_CANONICAL = "/{tail}"
