"""Running the server: uvloop, an embedded Redis when none is configured, graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from aiohttp import web

from dropserver.app import create_app
from dropserver.config import Settings
from dropserver.embedded_redis import EmbeddedRedis

log = logging.getLogger("dropserver")


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve(settings: Settings) -> None:
    embedded: EmbeddedRedis | None = None
    if settings.redis.url is None:
        embedded = EmbeddedRedis(
            settings.redis.data_dir.resolve(), appendfsync=settings.redis.appendfsync
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
    try:
        web.run_app(
            create_app(settings),
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
