"""Delivering the event streams to webhooks (dropserver.webhooks.dispatcher), against a real
Redis and a real HTTP receiver: retries with backoff, giving up, several processes at once, a
dead process's events taken over (also from a real, killed server process), the groups kept
tidy, and the whole path from a purchase to a signed delivery."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis
from standardwebhooks import Webhook

from dropserver.app import create_app
from dropserver.config import PlatformSettings, Settings, WebhookSettings, WebhookTarget
from dropserver.embedded_redis import EmbeddedRedis, free_port
from dropserver.keys import WEBHOOK_GROUP, drop_keys, platform_drops
from dropserver.metrics import Metrics
from dropserver.webhooks import WebhookDispatcher, retry_delay
from dropserver.webhooks import dispatcher as dispatcher_module
from tests.helpers import ADMIN, ADMIN_KEY, SECRET, buyer, drop_body
from tests.test_server import config, start_server, wait_until_up

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"w" * 32).decode()
# Short waits, so retries happen within a test: an attempt is due again 0.6 s after the first
# delivery (timeout 0.5 + backoff 0.1), then 0.7 s, 0.9 s ... The timeout leaves a slow test
# machine room: an attempt timed out by accident would be a retry the tests do not expect.
FAST = WebhookSettings(
    poll_seconds=0.02, timeout_seconds=0.5, concurrency=8, max_attempts=4,
    retry_seconds=0.1, retry_cap_seconds=1.0,
)  # fmt: skip


@dataclass
class Delivery:
    at: float
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A platform's webhook endpoint: records every request, answers with ``statuses`` in turn
    (then 200)."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    delay: float = 0.0
    hold: asyncio.Event | None = None  # answer only once this is set

    async def handle(self, request: web.Request) -> web.Response:
        self.deliveries.append(
            Delivery(time.monotonic(), dict(request.headers), await request.read())
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.hold is not None:
            await self.hold.wait()
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    def ids(self) -> list[str]:
        return [d.headers["webhook-id"] for d in self.deliveries]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    app = web.Application()
    app.router.add_post("/hooks", state.handle)
    async with TestServer(app) as server:
        state.url = str(server.make_url("/hooks"))
        yield state


def platforms(url: str) -> dict[str, PlatformSettings]:
    return {
        "acme": PlatformSettings(
            "acme", (ADMIN_KEY,), SECRET, None, WebhookTarget(url, WEBHOOK_SECRET)
        )
    }


@pytest.fixture
async def dispatchers(
    redis: Redis, receiver: Receiver
) -> AsyncIterator[Callable[..., WebhookDispatcher]]:
    made: list[WebhookDispatcher] = []

    def make(name: str | None = None, metrics: Metrics | None = None) -> WebhookDispatcher:
        made.append(
            WebhookDispatcher(
                redis, platforms(receiver.url), FAST, metrics or Metrics(), consumer=name
            )
        )
        return made[-1]

    yield make
    for dispatcher in made:
        await dispatcher.close()


async def add_events(redis: Redis, drop_id: str, count: int) -> list[str]:
    await redis.sadd(platform_drops("acme"), drop_id)
    ids = []
    for i in range(count):
        entry = await redis.xadd(
            drop_keys(drop_id).events, {"type": "allocated", "drop": drop_id, "serial": i + 1}
        )
        ids.append(f"{drop_id}:{entry.decode()}")
    return ids


async def run_until(
    dispatchers: list[WebhookDispatcher], done: Callable[[], bool], limit: float = 10.0
) -> None:
    deadline = time.monotonic() + limit
    while not done():
        assert time.monotonic() < deadline, "not delivered in time"
        for dispatcher in dispatchers:
            await dispatcher.run_once()
        await asyncio.sleep(FAST.poll_seconds)
    for dispatcher in dispatchers:  # the acknowledgements of the last deliveries
        await dispatcher.close()


async def wait_for(done: Callable[[], bool], limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not done():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def pending(redis: Redis, drop_id: str) -> int:
    summary = await redis.xpending(drop_keys(drop_id).events, WEBHOOK_GROUP)
    return int(summary["pending"])


def attempts(metrics: Metrics, outcome: str) -> float:
    sample = metrics.registry.get_sample_value(
        "dropserver_webhook_attempts_total", {"platform": "acme", "outcome": outcome}
    )
    return sample or 0.0


def test_retry_delay_doubles_up_to_the_cap() -> None:
    assert [retry_delay(n, 5.0, 600.0) for n in range(1, 10)] == [
        5,
        10,
        20,
        40,
        80,
        160,
        320,
        600,
        600,
    ]
    assert retry_delay(1000, 5.0, 600.0) == 600


async def test_a_failing_receiver_gets_the_event_again_after_a_growing_wait(
    redis: Redis, receiver: Receiver, dispatchers: Callable[..., WebhookDispatcher]
) -> None:
    """Two failures (500, then 503), then 200: three attempts with the same webhook-id, each
    after the backoff that its attempt count calls for; acknowledged at the end."""
    (event,) = await add_events(redis, "d1", 1)  # made before anything watched the drop
    receiver.statuses = [500, 503]
    metrics = Metrics()
    dispatcher = dispatchers(metrics=metrics)
    await run_until([dispatcher], lambda: len(receiver.deliveries) == 3)
    assert receiver.ids() == [event] * 3
    first, second, third = (d.at for d in receiver.deliveries)
    # Due once the attempt's timeout and its backoff have passed: 0.5 + 0.1 s after the first
    # delivery, then 0.5 + 0.2 s. Redis measures the idle time from the delivery, a moment
    # before the receiver sees the request (longer for the first, which also connects): the
    # bounds allow 0.1 s for that, and a second more for a slow machine.
    timeout, backoff = FAST.timeout_seconds, FAST.retry_seconds
    assert timeout + backoff - 0.1 <= second - first < timeout + backoff + 1.0
    assert timeout + 2 * backoff - 0.1 <= third - second < timeout + 2 * backoff + 1.0
    assert await pending(redis, "d1") == 0
    assert (attempts(metrics, "failed"), attempts(metrics, "delivered")) == (2, 1)


async def test_after_max_attempts_the_event_is_dropped_but_stays_in_the_stream(
    redis: Redis, receiver: Receiver, dispatchers: Callable[..., WebhookDispatcher]
) -> None:
    await add_events(redis, "d1", 1)
    receiver.statuses = [500] * 10
    metrics = Metrics()
    dispatcher = dispatchers(metrics=metrics)
    await run_until([dispatcher], lambda: attempts(metrics, "dropped") == 1)
    assert len(receiver.deliveries) == FAST.max_attempts
    assert await pending(redis, "d1") == 0
    assert await redis.xlen(drop_keys("d1").events) == 1
    await asyncio.sleep(dispatcher.due_after_ms(FAST.max_attempts) / 1000)
    await dispatcher.run_once()
    await dispatcher.close()
    assert len(receiver.deliveries) == FAST.max_attempts  # not sent again


async def test_timeouts_and_redirects_are_failures(
    redis: Redis, receiver: Receiver, dispatchers: Callable[..., WebhookDispatcher]
) -> None:
    await add_events(redis, "d1", 1)
    receiver.statuses = [302]
    metrics = Metrics()
    await run_until([dispatchers(metrics=metrics)], lambda: len(receiver.deliveries) == 2)
    assert attempts(metrics, "failed") == 1
    receiver.deliveries.clear()
    (slow,) = await add_events(redis, "d2", 1)
    receiver.delay = FAST.timeout_seconds * 2
    slow_metrics = Metrics()
    slow_dispatcher = dispatchers(metrics=slow_metrics)
    await run_until([slow_dispatcher], lambda: len(receiver.deliveries) == 1)
    await asyncio.sleep(FAST.timeout_seconds * 2)
    assert attempts(slow_metrics, "failed") == 1
    assert await pending(redis, "d2") == 1  # still owed: the receiver never answered in time
    assert receiver.ids() == [slow]


async def test_two_processes_deliver_every_event_once(
    redis_server: EmbeddedRedis, redis: Redis, receiver: Receiver
) -> None:
    """Two dispatchers, each with its own connection as two server processes would have,
    share the events of two drops: each event reaches the receiver exactly once, though the
    receiver is slow."""
    events = await add_events(redis, "d1", 100) + await add_events(redis, "d2", 100)
    # Slow enough that many deliveries are in flight while the other process looks for due
    # events, and still well inside the timeout: none of them may be taken over.
    receiver.delay = FAST.timeout_seconds * 0.4
    clients = [Redis.from_url(redis_server.url) for _ in range(2)]
    metrics = [Metrics(), Metrics()]
    pair = [
        WebhookDispatcher(client, platforms(receiver.url), FAST, m)
        for client, m in zip(clients, metrics, strict=True)
    ]
    try:
        await run_until(pair, lambda: len(receiver.deliveries) >= len(events))
        await asyncio.sleep(0.5)  # time for a duplicate to show up, if there were one
        for dispatcher in pair:
            await dispatcher.run_once()
            await dispatcher.close()
        assert sorted(receiver.ids()) == sorted(events)
        assert all(attempts(m, "delivered") > 0 for m in metrics), "one process did all the work"
        assert await pending(redis, "d1") == await pending(redis, "d2") == 0
    finally:
        for c in clients:
            await c.aclose()


async def test_a_dead_process_events_are_taken_over(
    redis: Redis, receiver: Receiver, dispatchers: Callable[..., WebhookDispatcher]
) -> None:
    """A process read an event and died before answering it: once the event has been idle for
    a finished attempt plus its backoff, another process claims and delivers it."""
    (event,) = await add_events(redis, "d1", 1)
    key = drop_keys("d1").events
    await redis.xgroup_create(key, WEBHOOK_GROUP, id="0")
    await redis.xreadgroup(WEBHOOK_GROUP, "dead-process", {key: ">"})
    read_at = time.monotonic()
    survivor = dispatchers(name="survivor")
    await run_until([survivor], lambda: len(receiver.deliveries) == 1)
    assert receiver.ids() == [event]
    due = FAST.timeout_seconds + FAST.retry_seconds  # a finished attempt, and its backoff
    assert due <= receiver.deliveries[0].at - read_at < due + 1.0
    assert await pending(redis, "d1") == 0


async def test_a_purchase_and_its_confirmation_reach_the_webhook_signed(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    """The whole path through the app: the events the scripts append are pushed to the
    platform's webhook, signed so that the Standard Webhooks verifier accepts them."""
    hooked = replace(
        settings, platforms={**settings.platforms, **platforms(receiver.url)}, webhooks=FAST
    )
    async with TestClient(TestServer(create_app(hooked))) as client:
        resp = await client.post("/v1/drops", json=drop_body(), headers=ADMIN)
        assert resp.status == 201, await resp.text()
        drop_id = (await resp.json())["id"]
        resp = await client.post(f"/v1/drops/{drop_id}/purchase", json={}, headers=buyer("a1"))
        assert resp.status == 201, await resp.text()
        order = await resp.json()
        resp = await client.post(f"/v1/orders/{order['order_id']}/confirm", headers=ADMIN)
        assert resp.status == 200, await resp.text()
        await wait_for(lambda: len(receiver.deliveries) >= 2)
    verifier = Webhook(WEBHOOK_SECRET)
    payloads = [verifier.verify(d.body, d.headers) for d in receiver.deliveries]
    by_type = {p["type"]: p["data"] for p in payloads}
    assert by_type["allocated"] == {
        "drop": drop_id, "order": order["order_id"], "serial": order["serial"], "pid": "a1",
        "sub": "a1", "status": "held", "expires_at": order["expires_at"],
    }  # fmt: skip
    assert by_type["confirmed"]["order"] == order["order_id"]
    stream = await redis.xrange(drop_keys(drop_id).events)
    assert sorted(receiver.ids()) == sorted(f"{drop_id}:{i.decode()}" for i, _ in stream)
    assert await pending(redis, drop_id) == 0


async def test_a_killed_server_process_delivery_is_finished_by_another(
    tmp_path: Path, redis_server: EmbeddedRedis, redis: Redis, receiver: Receiver
) -> None:
    """A real ``dropserver serve`` process is SIGKILLed while its webhook request is in flight
    (the receiver holds it); a second process, started afterwards, delivers the event."""
    first_port = free_port()
    path = config(tmp_path, redis_server.url, first_port)
    hooks = f'webhook_url = "{receiver.url}"\nwebhook_secret = "{WEBHOOK_SECRET}"\n'
    hooks += "[webhooks]\npoll_seconds = 0.05\ntimeout_seconds = 1.0\nretry_seconds = 0.2\n"
    path.write_text(path.read_text() + hooks)  # the platform's table is the file's last
    held = asyncio.Event()
    receiver.hold = held
    first = await start_server(path)
    second = None
    try:
        base = f"http://127.0.0.1:{first_port}"
        await wait_until_up(base, first)
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{base}/v1/drops", json=drop_body(), headers=ADMIN) as resp:
                drop_id = (await resp.json())["id"]
            url = f"{base}/v1/drops/{drop_id}/purchase"
            async with session.post(url, json={}, headers=buyer("a1")) as resp:
                assert resp.status == 201, await resp.text()
        await wait_for(lambda: len(receiver.deliveries) == 1)
        first.kill()
        await first.wait()
        receiver.hold = None
        held.set()
        second_path = tmp_path / "second.toml"
        second_port = free_port()
        second_path.write_text(
            path.read_text().replace(f"port = {first_port}", f"port = {second_port}")
        )
        second = await start_server(second_path)
        await wait_until_up(f"http://127.0.0.1:{second_port}", second)
        await wait_for(lambda: len(receiver.deliveries) == 2)
        assert receiver.ids()[0] == receiver.ids()[1]
        assert orjson.loads(receiver.deliveries[1].body)["type"] == "allocated"
        deadline = time.monotonic() + 5
        while await pending(redis, drop_id):  # the second process's XACK follows the 200
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()


async def consumers(redis: Redis, drop_id: str) -> set[str]:
    found = await redis.xinfo_consumers(drop_keys(drop_id).events, WEBHOOK_GROUP)
    return {c["name"].decode() for c in found}


async def test_a_stopping_process_leaves_the_groups_where_it_owes_nothing(
    redis: Redis, receiver: Receiver, dispatchers: Callable[..., WebhookDispatcher]
) -> None:
    await add_events(redis, "d1", 1)
    await add_events(redis, "d2", 1)
    receiver.statuses = [500]  # one of the two events fails once: it stays owed
    dispatcher = dispatchers(name="stopping")
    await run_until([dispatcher], lambda: len(receiver.deliveries) == 2)  # closes it
    owing = [d for d in ("d1", "d2") if await pending(redis, d)]
    assert len(owing) == 1
    for drop_id in ("d1", "d2"):
        assert ("stopping" in await consumers(redis, drop_id)) == (drop_id in owing)


async def test_gone_consumers_with_nothing_pending_are_removed(
    redis: Redis,
    receiver: Receiver,
    dispatchers: Callable[..., WebhookDispatcher],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A SIGKILLed process never leaves its groups: a later round removes its consumer once it
    has been silent long enough, unless it still owes an event."""
    await add_events(redis, "d1", 2)
    key = drop_keys("d1").events
    await redis.xgroup_create(key, WEBHOOK_GROUP, id="0")
    await redis.xreadgroup(WEBHOOK_GROUP, "killed-owing", {key: ">"}, count=1)
    await redis.xgroup_createconsumer(key, WEBHOOK_GROUP, "killed-idle")
    monkeypatch.setattr(dispatcher_module, "_GONE_AFTER_MS", 200)
    await asyncio.sleep(0.3)
    await dispatchers(name="live").run_once()
    assert await consumers(redis, "d1") == {"killed-owing", "live"}
