"""What the in-process benchmarks share: which checkout they import, and an app with one drop.

The benchmarks are scripts (``python bench/NAME.py``), so this directory is first on their
import path. Nothing here imports dropserver at module level: :func:`use_checkout` first
decides whose package the imports find.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

API_KEY = "k" * 32


def use_checkout(checkout: Path) -> None:
    """Import the dropserver package of ``checkout``: here, and in the proof-of-work pool's
    worker processes. Those start from the environment, not from this sys.path, and from a
    ``python -c`` whose first import directory is the working directory: a working directory
    holding another dropserver package would win."""
    sys.path.insert(0, str(checkout))
    os.chdir(checkout)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(checkout), os.environ.get("PYTHONPATH")])
    )


async def settle_heap(app: Any) -> None:
    """What ``dropserver serve`` does to its heap once started (``server.settle_heap``: collect,
    freeze, young collections at 10,000 new objects), so that a figure measured in process sees
    the collector as a served request does. Measured before it, everything built so far (the
    requests, the pool's stock) is out of the collector's way, and a full collection cannot walk
    it at a varying moment (it made instruction counts vary by up to a quarter). A checkout from
    before settle_heap (70ccd08) gets the collection and the freeze alone, as these benchmarks
    did then."""
    try:
        from dropserver.server import settle_heap as settle_like_the_server
    except ImportError:
        gc.collect()
        gc.freeze()
        return
    await settle_like_the_server(app)


@dataclass
class Bench:
    app: Any  # web.Application
    client: Any  # aiohttp.test_utils.TestClient
    platform: Any  # dropserver.config.PlatformSettings
    drop_id: str


@asynccontextmanager
async def app_with_drop(
    *,
    supply: int,
    per_person_limit: int,
    pow: dict[str, Any] | None,
    pool_target: int = 256,
    cluster: bool = False,
) -> AsyncIterator[Bench]:
    """The app on an embedded Redis (or, with ``cluster``, a local Redis Cluster of three
    primaries), with no periodic tasks (the sweeper and the demand reports would run in the
    measured window), and an FCFS drop open since 2020."""
    from aiohttp.test_utils import TestClient, TestServer

    from dropserver.app import create_app
    from dropserver.config import PlatformSettings, PowSettings, RedisSettings, Settings
    from dropserver.embedded_cluster import EmbeddedCluster
    from dropserver.embedded_redis import EmbeddedRedis

    platform = PlatformSettings("b", (API_KEY,), "s" * 40)
    with tempfile.TemporaryDirectory() as tmp:
        redis = EmbeddedCluster(Path(tmp)) if cluster else EmbeddedRedis(Path(tmp))
        with redis:
            settings = Settings(
                platforms={"b": platform},
                redis=RedisSettings(url=redis.url, cluster=cluster),
                pow=PowSettings(pool_target=pool_target),
            )
            app = create_app(settings, run_background=False)
            async with TestClient(TestServer(app)) as client:
                spec = {
                    "title": "bench", "supply": supply, "mode": "fcfs",
                    "per_person_limit": per_person_limit, "opens_at": "2020-01-01T00:00:00Z",
                    "pow": pow,
                }  # fmt: skip
                resp = await client.post(
                    "/v1/drops", json=spec, headers={"Authorization": f"Bearer {API_KEY}"}
                )
                assert resp.status == 201, await resp.text()
                yield Bench(app, client, platform, (await resp.json())["id"])


async def stocked(app: Any, pow: dict[str, Any], stock: int) -> None:
    """Wait until the app's pool holds ``stock`` puzzles of the drop's level, as it does ahead
    of an opening."""
    from dropserver.appkeys import SERVICES
    from dropserver.pow import Difficulty

    level = Difficulty.from_config({k: pow[k] for k in ("algorithm", "cost", "counter_max")})
    pool = app[SERVICES].gate._pool

    def wait() -> None:
        while pool.stock(level) < stock:
            time.sleep(0.1)

    await asyncio.to_thread(wait)
