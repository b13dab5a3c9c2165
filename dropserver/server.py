"""Running the server: uvloop, an embedded Redis when none is configured, graceful shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import replace

from aiohttp import web

from dropserver.app import create_app
from dropserver.config import Settings
from dropserver.embedded_redis import EmbeddedRedis

log = logging.getLogger("dropserver")

# Young collections wait for this many new objects instead of CPython's 700. A request leaves
# no cyclic garbage behind (gc.DEBUG_SAVEALL found none after thousands of purchases,
# challenges and refusals), so a young collection mostly finds the objects of the requests
# still in flight and moves them to an older generation, where they die anyway. Under purchase
# load that took 106 to 165 ms per 8 s run at 700, and 33 to 39 ms at 10,000. Cyclic garbage,
# should some code path make it, waits for at most this many new objects.
YOUNG_COLLECTION_THRESHOLD = 10_000


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def settle_heap(app: web.Application) -> None:
    """Once start-up is done: leave what it built out of every later collection, and collect
    the young generation less often (see YOUNG_COLLECTION_THRESHOLD).

    Start-up leaves about 60,000 objects (modules, the app, its services) that live as long as
    the process. Unfrozen, every full collection walked all of them while every request
    waited: 43 to 60 ms each, once or twice per benchmark run (BENCHMARKS.md)."""
    gc.collect()  # what is already garbage goes now, not frozen for good
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)


def serve(settings: Settings) -> None:
    embedded: EmbeddedRedis | None = None
    if settings.redis.url is None:
        embedded = EmbeddedRedis(
            settings.redis.data_dir.resolve(),
            appendfsync=settings.redis.appendfsync,
            binary=settings.redis.server,
        )
        url = embedded.start()
        log.info("embedded redis-server (AOF on) at %s, data in %s", url, embedded.data_dir)
        settings = replace(settings, redis=replace(settings.redis, url=url))
    if settings.rehearsal_seed is not None:
        log.warning(
            "[rehearsal] seed is set: every draw is predictable from it. For rehearsals only, "
            "never for a real drop"
        )
    if settings.pow.generated_secrets:
        log.warning(
            "no [pow] secret/key_signature_secret configured: using random ones; run ONE "
            "process only, or configure them so every process verifies the others' challenges"
        )
    app = create_app(settings, compact_aof=embedded is not None)
    app.on_startup.append(settle_heap)  # runs after cleanup_ctx has built the services
    try:
        web.run_app(
            app,
            host=settings.server.host,
            port=settings.server.port,
            # Access logging formats a line per request; off by default on the hot path.
            access_log=logging.getLogger("aiohttp.access") if settings.server.access_log else None,
            shutdown_timeout=settings.server.shutdown_timeout,
            backlog=settings.server.backlog,
            loop=new_event_loop(),
            print=lambda msg: log.info(msg.strip()),
        )
    finally:
        if embedded is not None:
            embedded.stop()
