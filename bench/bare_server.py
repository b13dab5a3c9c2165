"""The bare aiohttp route the benchmarks compare against: same stack (uvloop, orjson, no access
log), no auth, no Redis. Whatever dropserver adds on top of this is its cost.

    python bench/bare_server.py PORT [WORK_US ...]

Each WORK_US adds a route ``/work/<WORK_US>``: the bare route plus that many microseconds of
pure Python work per request (a calibrated loop, the same instructions every time). They show
what a handler of a given cost reaches against the bare route on this machine, in the same run
(bench_http.py --calibrate).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable

import orjson
import uvloop
from aiohttp import web

_BODY = orjson.dumps({"order_id": "x" * 40, "serial": 1, "status": "held", "expires_at": None})


async def bare(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=_BODY, status=201, content_type="application/json")


def loops_per_us() -> float:
    """Iterations of an empty loop per microsecond: the best of a few timed runs, taken before
    any load (the best is the run the machine disturbed least)."""
    n = 2_000_000
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(n):
            pass
        best = min(best, time.perf_counter() - started)
    return n / (best * 1e6)


def working(us: int, per_us: float) -> Callable[[web.Request], Awaitable[web.Response]]:
    # A fixed count, not a deadline: the work stays the same when the process is descheduled.
    loops = range(round(us * per_us))

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        for _ in loops:
            pass
        return web.Response(body=_BODY, status=201, content_type="application/json")

    return handler


def main() -> None:
    app = web.Application()
    app.router.add_post("/bare", bare)
    app.router.add_get("/bare", bare)
    work = [int(arg) for arg in sys.argv[2:]]
    if work:
        per_us = loops_per_us()
        for us in work:
            app.router.add_route("*", f"/work/{us}", working(us, per_us))
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None,
                loop=uvloop.new_event_loop(), print=None)  # fmt: skip


if __name__ == "__main__":
    main()
