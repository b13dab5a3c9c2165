"""The challenge handler's own cost, without HTTP: calls the registered (wrapped) handler on
mocked requests in a loop, against an embedded Redis.

    .venv/bin/python bench/challenge_handler.py

Prints microseconds per call; what the bench_http.py figure adds on top is aiohttp serving
the request.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dropserver.app import create_app  # noqa: E402
from dropserver.config import PlatformSettings, PowSettings, RedisSettings, Settings  # noqa: E402
from dropserver.embedded_redis import EmbeddedRedis  # noqa: E402
from dropserver.identity import mint_token  # noqa: E402

API_KEY = "k" * 32
CALLS = 20_000


async def main() -> None:
    platform = PlatformSettings("b", (API_KEY,), "s" * 40)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp)) as redis:
        settings = Settings(
            platforms={"b": platform},
            redis=RedisSettings(url=redis.url),
            pow=PowSettings(pool_target=CALLS + 1000),
        )
        app = create_app(settings)
        async with TestClient(TestServer(app)) as client:
            body = {
                "title": "bench", "supply": 10, "mode": "fcfs", "per_person_limit": 1,
                "opens_at": "2020-01-01T00:00:00Z",
                "pow": {"algorithm": "PBKDF2/SHA-256", "cost": 1, "counter_max": 4,
                        "adaptive": False},
            }  # fmt: skip
            resp = await client.post(
                "/v1/drops", json=body, headers={"Authorization": f"Bearer {API_KEY}"}
            )
            drop_id = (await resp.json())["id"]
            await asyncio.sleep(3)  # the pool fills
            token = mint_token(platform, account="a", person="a")
            handler = next(
                r.handler
                for r in app.router.routes()
                if r.method == "GET" and r.resource and r.resource.canonical.endswith("/challenge")
            )
            requests = [
                make_mocked_request(
                    "GET",
                    f"/v1/drops/{drop_id}/challenge",
                    headers={"Authorization": f"Bearer {token}"},
                    app=app,
                    match_info={"id": drop_id},
                )
                for _ in range(CALLS)
            ]
            for request in requests[:100]:  # identity cache, first demand entries
                assert (await handler(request)).status == 200
            started = time.perf_counter()
            for request in requests[100:]:
                await handler(request)
            per_call = (time.perf_counter() - started) / (CALLS - 100) * 1e6
            print(f"challenge handler: {per_call:.1f} us per call")


if __name__ == "__main__":
    asyncio.run(main())
