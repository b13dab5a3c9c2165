"""``dropserver demo``: an embedded Redis, the server, a sample drop and a crowd, end to end.

Everything runs in this process against a real redis-server that the demo starts and stops,
talking HTTP to the real server on a free port, so what it prints is what a platform would see.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from dropserver.app import create_app
from dropserver.config import PlatformSettings, RedisSettings, Settings
from dropserver.embedded_redis import EmbeddedRedis, free_port
from dropserver.identity import mint_token
from dropserver.timefmt import format_ms

PLATFORM = PlatformSettings(
    "demo", ("demo-admin-key-0000000000000001",), "demo-identity-secret-0123456789abcdef"
)
ADMIN = {"Authorization": f"Bearer {PLATFORM.api_keys[0]}"}


async def run_demo(data_dir: Path, *, supply: int, persons: int, accounts: int) -> int:
    redis = EmbeddedRedis(data_dir / "redis")
    print(f"starting redis-server ({redis.binary}) with AOF in {redis.data_dir}")
    redis.start()
    runner: web.AppRunner | None = None
    try:
        settings = Settings(platforms={"demo": PLATFORM}, redis=RedisSettings(url=redis.url))
        runner = web.AppRunner(create_app(settings), access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base = f"http://127.0.0.1:{port}"
        print(f"dropserver listening on {base}\n")
        async with aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(limit=200)) as http:
            await fcfs_crowd(http, supply=supply, persons=persons, accounts=accounts)
    finally:
        if runner is not None:
            await runner.cleanup()
        redis.stop()
    return 0


async def fcfs_crowd(
    http: aiohttp.ClientSession, *, supply: int, persons: int, accounts: int
) -> None:
    opens_at = format_ms(int(time.time() * 1000) - 1000)
    body = {
        "title": "Demo sneakers",
        "supply": supply,
        "mode": "fcfs",
        "opens_at": opens_at,
        "pow": None,
        "hold_seconds": 300,
    }
    async with http.post("/v1/drops", json=body, headers=ADMIN) as resp:
        drop = await resp.json()
    drop_id = drop["id"]
    attempts = persons * accounts
    print(f"FCFS drop {drop_id}: {supply} units, limit 1 per person")
    print(f"crowd: {persons} persons x {accounts} accounts = {attempts} purchase attempts at once")

    tokens = [
        mint_token(PLATFORM, account=f"p{p}-a{a}", person=f"p{p}")
        for p in range(persons)
        for a in range(accounts)
    ]
    latencies: list[float] = []

    async def attempt(token: str) -> tuple[int, dict[str, Any]]:
        started = time.perf_counter()
        async with http.post(
            f"/v1/drops/{drop_id}/purchase", json={}, headers={"Authorization": f"Bearer {token}"}
        ) as resp:
            result = resp.status, await resp.json()
        latencies.append(time.perf_counter() - started)
        return result

    started = time.perf_counter()
    results = await asyncio.gather(*(attempt(t) for t in tokens))
    elapsed = time.perf_counter() - started
    outcomes = Counter(
        body.get("status", "?") if status == 201 else body["error"]["code"]
        for status, body in results
    )
    orders = [body for status, body in results if status == 201]
    serials = [o["serial"] for o in orders]

    # The platform takes payment for most holds and releases the rest.
    confirmed = cancelled = 0
    for i, order in enumerate(orders):
        action = "cancel" if i % 5 == 0 else "confirm"
        async with http.post(f"/v1/orders/{order['order_id']}/{action}", headers=ADMIN) as resp:
            if resp.status == 200:
                confirmed += action == "confirm"
                cancelled += action == "cancel"
    async with http.get(f"/v1/drops/{drop_id}/stats", headers=ADMIN) as resp:
        stats = await resp.json()

    latencies.sort()
    print(f"\n{attempts} attempts in {elapsed:.2f} s ({attempts / elapsed:,.0f} req/s)")
    print(
        f"latency p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:.1f} ms"
    )
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    serials_ok = len(set(serials)) == len(serials) and all(1 <= s <= supply for s in serials)
    print(f"serials unique and within 1..{supply}: {serials_ok}")
    print(f"platform confirmed {confirmed} holds and cancelled {cancelled}")
    print(
        f"stock: supply {stats['supply']} = remaining {stats['remaining']} + held "
        f"{stats['held']} + confirmed {stats['confirmed']}; consistent: {stats['consistent']}"
    )
