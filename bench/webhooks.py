"""How fast server processes push a backlog of events to a platform's webhook.

    .venv/bin/python bench/webhooks.py [--events 5000] [--processes 1] [--concurrency 16]
        [--receiver-ms 0]

Starts a redis-server on a free port, appends ``--events`` events to one drop's stream, and has
``--processes`` dispatchers (each with its own Redis connection, as server processes would)
deliver them, with the default settings otherwise, to a local aiohttp receiver that answers 200
after ``--receiver-ms``. Prints the events delivered per second and checks that each one
arrived exactly once. The receiver shares the machine (and the event loop) with the
dispatchers, so it counts against the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402
from aiohttp.test_utils import TestServer  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from dropserver.config import PlatformSettings, WebhookSettings, WebhookTarget  # noqa: E402
from dropserver.embedded_redis import EmbeddedRedis  # noqa: E402
from dropserver.keys import drop_keys, platform_drops  # noqa: E402
from dropserver.metrics import Metrics  # noqa: E402
from dropserver.webhooks import WebhookDispatcher  # noqa: E402

SECRET = "whsec_" + base64.b64encode(b"b" * 32).decode()


async def run(events: int, processes: int, concurrency: int, receiver_ms: float) -> None:
    seen: Counter[str] = Counter()

    async def receive(request: web.Request) -> web.Response:
        await request.read()
        seen[request.headers["webhook-id"]] += 1
        if receiver_ms:
            await asyncio.sleep(receiver_ms / 1000)
        return web.Response()

    app = web.Application()
    app.router.add_post("/hooks", receive)
    settings = replace(WebhookSettings(), concurrency=concurrency)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp)) as server:
        async with TestServer(app) as receiver:
            target = WebhookTarget(str(receiver.make_url("/hooks")), SECRET)
            platforms = {"b": PlatformSettings("b", ("b" * 16,), "s" * 32, None, target)}
            clients = [Redis.from_url(server.url) for _ in range(processes + 1)]
            await clients[0].sadd(platform_drops("b"), "bench")
            pipe = clients[0].pipeline(transaction=False)
            for i in range(events):
                fields = {"type": "allocated", "drop": "bench", "serial": i + 1, "pid": f"p{i}"}
                pipe.xadd(drop_keys("bench").events, fields)  # type: ignore[arg-type]
            await pipe.execute()
            dispatchers = [
                WebhookDispatcher(c, platforms, settings, Metrics()) for c in clients[1:]
            ]

            async def serve(dispatcher: WebhookDispatcher) -> None:
                while len(seen) < events:  # as the app's periodic task runs it
                    await dispatcher.run_once()
                    if len(seen) < events:
                        await asyncio.sleep(settings.poll_seconds)
                await dispatcher.close()

            started = time.perf_counter()
            await asyncio.gather(*(serve(d) for d in dispatchers))
            elapsed = time.perf_counter() - started
            for client in clients:
                await client.aclose()
    duplicates = sum(n - 1 for n in seen.values())
    print(
        f"{events} events, {processes} dispatcher(s), concurrency {concurrency}, receiver"
        f" {receiver_ms:g} ms: {elapsed:.2f} s, {events / elapsed:,.0f} events/s,"
        f" {duplicates} duplicates"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--receiver-ms", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(run(args.events, args.processes, args.concurrency, args.receiver_ms))


if __name__ == "__main__":
    main()
