"""``dropserver demo``: an embedded Redis, the server, a sample drop and a crowd, end to end.

Everything runs in this process against a real redis-server that the demo starts and stops,
talking HTTP to the real server on a free port, so what it prints is what a platform would see.
First a contention check (many accounts, few units), then scalper bots against humans on an
unprotected first-come drop and on a protected lottery, side by side, and last what the
platform's webhook received meanwhile. (The full rehearsal tool with Locust is
``python -m loadtest.fairness``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from redis.asyncio import Redis
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from dropserver.app import create_app
from dropserver.config import (
    PlatformSettings,
    RedisSettings,
    Settings,
    WebhookSettings,
    WebhookTarget,
    new_webhook_secret,
)
from dropserver.embedded_redis import EmbeddedRedis, free_port
from dropserver.identity import mint_token
from dropserver.pow import payload as pow_payload
from dropserver.pow import solve
from dropserver.timefmt import format_ms

PLATFORM = PlatformSettings(
    "demo", ("demo-admin-key-0000000000000001",), "demo-identity-secret-0123456789abcdef"
)
ADMIN = {"Authorization": f"Bearer {PLATFORM.api_keys[0]}"}


async def run_demo(data_dir: Path, *, supply: int, persons: int, accounts: int) -> int:
    redis = EmbeddedRedis(data_dir / "redis")
    print(f"starting redis-server ({redis.binary}) with AOF in {redis.data_dir}")
    redis.start()
    hook = PlatformHook()
    runners: list[web.AppRunner] = []
    try:
        hook_url = await _serve(runners, hook.app(), "/hooks")
        platform = replace(PLATFORM, webhook=WebhookTarget(hook_url, hook.secret))
        settings = Settings(
            platforms={"demo": platform},
            redis=RedisSettings(url=redis.url),
            webhooks=WebhookSettings(poll_seconds=0.1),
        )
        base = await _serve(runners, create_app(settings), "", settings.server.backlog)
        print(f"dropserver listening on {base}\n")
        async with aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(limit=200)) as http:
            await fcfs_crowd(http, supply=supply, persons=persons, accounts=accounts)
            print("\n--- scalper bots against humans ---")
            unprotected = await bots_vs_humans(http, protected=False)
            protected = await bots_vs_humans(http, protected=True)
            print_duel(unprotected, protected)
        print("\n--- the platform's webhook ---")
        await hook.report(redis.url)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        redis.stop()
    return 0


async def _serve(
    runners: list[web.AppRunner], app: web.Application, path: str, backlog: int = 128
) -> str:
    """Serve ``app`` on a free local port; its URL with ``path``."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    runners.append(runner)
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=backlog).start()
    return f"http://127.0.0.1:{port}{path}"


class PlatformHook:
    """The platform's side of the webhooks: verifies each delivery's signature as a platform
    would (with the Standard Webhooks reference verifier) and counts the events by kind."""

    def __init__(self) -> None:
        self.secret = new_webhook_secret()
        self._verifier = Webhook(self.secret)
        self.kinds: Counter[str] = Counter()
        self.ids: set[str] = set()
        self.deliveries = self.forged = 0
        self._arrived = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hooks", self._receive)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.deliveries += 1
        try:
            self._verifier.verify(body, dict(request.headers), json_parse=False)
        except WebhookVerificationError:
            self.forged += 1
            return web.Response(status=401)
        self.ids.add(request.headers["webhook-id"])
        self.kinds[orjson.loads(body)["type"]] += 1
        self._arrived.set()
        return web.Response(status=204)

    async def report(self, redis_url: str, wait: float = 15.0) -> None:
        """Once every event of every drop has arrived (or ``wait`` has passed): what came."""
        client = Redis.from_url(redis_url)
        try:
            streams = [key async for key in client.scan_iter(match="{drop:*}:events")]
            total = sum([await client.xlen(key) for key in streams])
        finally:
            await client.aclose()
        deadline = time.monotonic() + wait
        while len(self.ids) < total and time.monotonic() < deadline:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), deadline - time.monotonic())
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.kinds.items()))
        print(f"received {len(self.ids)} of the {total} events in the drops' streams ({kinds})")
        print(
            f"signatures valid: {self.deliveries - self.forged} of {self.deliveries} deliveries;"
            f" duplicates: {self.deliveries - self.forged - len(self.ids)}"
        )


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


HUMANS, BOTS, ACCOUNTS_PER_BOT, DUEL_SUPPLY = 40, 10, 10, 20
SMALL_POW = {"algorithm": "PBKDF2/SHA-256", "cost": 10, "counter_max": 200, "adaptive": False}


@dataclass
class Duel:
    name: str
    human_units: int = 0
    bot_units: int = 0
    refusals: Counter[str] = field(default_factory=Counter)

    @property
    def ratio(self) -> float:
        per_human = self.human_units / HUMANS
        per_bot = self.bot_units / BOTS
        return per_bot / per_human if per_human else float("inf")


async def bots_vs_humans(http: aiohttp.ClientSession, *, protected: bool) -> Duel:
    """40 humans (one account each, a few hundred ms to react) against 10 scalpers with 10
    accounts each that fire at the opening instant. Unprotected is the status quo: first come
    first served, no proof of work, no rate limits, and no real-name link between accounts
    (each account counts as its own person). Protected: a lottery with proof-of-work entries
    and real-name persons (a scalper's accounts share one pid)."""
    rng = random.Random(7)
    now = int(time.time() * 1000)
    body: dict[str, Any] = {
        "title": "Protected lottery" if protected else "Unprotected drop",
        "supply": DUEL_SUPPLY,
        "mode": "lottery" if protected else "fcfs",
        "opens_at": format_ms(now + 500),
        "pow": SMALL_POW if protected else None,
        "rate_limits": {},
    }
    if protected:
        body["closes_at"] = format_ms(now + 2500)
    async with http.post("/v1/drops", json=body, headers=ADMIN) as resp:
        drop_id = (await resp.json())["id"]
    duel = Duel("protected lottery" if protected else "unprotected FCFS")
    action = "entries" if protected else "purchase"
    opens_at = (now + 500) / 1000

    async def attempt(account: str, person: str, delay: float) -> None:
        await asyncio.sleep(max(0.0, opens_at + delay - time.time()))
        headers = {
            "Authorization": f"Bearer {mint_token(PLATFORM, account=account, person=person)}"
        }
        payload: dict[str, str] = {}
        if protected:
            async with http.get(f"/v1/drops/{drop_id}/challenge", headers=headers) as resp:
                if resp.status != 200:
                    duel.refusals[(await resp.json())["error"]["code"]] += 1
                    return
                challenge = await resp.json()
            payload = {"pow": pow_payload(challenge, solve(challenge))}
        async with http.post(
            f"/v1/drops/{drop_id}/{action}", json=payload, headers=headers
        ) as resp:
            if resp.status >= 400:
                duel.refusals[(await resp.json())["error"]["code"]] += 1

    tasks = [attempt(f"h{i}", f"human-{i}", rng.uniform(0.2, 0.9)) for i in range(HUMANS)]
    tasks += [
        attempt(f"b{b}-{a}", f"bot-{b}" if protected else f"bot-{b}:acct-{a}", 0.0)
        for b in range(BOTS)
        for a in range(ACCOUNTS_PER_BOT)
    ]
    await asyncio.gather(*tasks)
    if protected:
        await asyncio.sleep(max(0.0, (now + 2600) / 1000 - time.time()))
        async with http.post(f"/v1/drops/{drop_id}/draw", headers=ADMIN) as resp:
            assert resp.status == 200, await resp.text()
    # The outcome comes from the server: every order of the drop, by person.
    cursor: str | None = "0"
    seen: set[str] = set()
    while cursor is not None:
        async with http.get(
            f"/v1/drops/{drop_id}/orders", params={"cursor": cursor}, headers=ADMIN
        ) as resp:
            page = await resp.json()
        for order in page["orders"]:
            if order["order_id"] in seen or order["status"] not in ("held", "confirmed"):
                continue
            seen.add(order["order_id"])
            if order["person"].startswith("bot-"):
                duel.bot_units += 1
            else:
                duel.human_units += 1
        cursor = page["next_cursor"]
    return duel


def print_duel(*duels: Duel) -> None:
    print(f"{HUMANS} humans (1 account each) vs {BOTS} scalpers ({ACCOUNTS_PER_BOT} accounts "
          f"each, firing at the opening instant); {DUEL_SUPPLY} units\n")  # fmt: skip
    print(f"{'drop':<20} {'human units':>11} {'bot units':>9} {'win-rate ratio':>15}  refusals")
    for d in duels:
        refusals = ", ".join(f"{k} {v}" for k, v in d.refusals.most_common(3))
        print(f"{d.name:<20} {d.human_units:>11} {d.bot_units:>9} {d.ratio:>15.2f}  {refusals}")
    print("\nwin-rate ratio = units per bot person / units per human person (1.0 is fair)")
