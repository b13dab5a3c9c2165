"""The bare aiohttp route the benchmarks compare against: same stack (uvloop, orjson, no access
log), no auth, no Redis. Whatever dropserver adds on top of this is its cost."""

from __future__ import annotations

import sys

import orjson
import uvloop
from aiohttp import web

_BODY = orjson.dumps({"order_id": "x" * 40, "serial": 1, "status": "held", "expires_at": None})


async def bare(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=_BODY, status=201, content_type="application/json")


def main() -> None:
    app = web.Application()
    app.router.add_post("/bare", bare)
    app.router.add_get("/bare", bare)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None,
                loop=uvloop.new_event_loop(), print=None)  # fmt: skip


if __name__ == "__main__":
    main()
