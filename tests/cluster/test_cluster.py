"""The server on a real Redis Cluster of three primaries (``[redis] cluster = true``): drops
spread over the primaries and sell exactly, proof of work, holds, lottery draws and webhooks
work there as on one Redis, a primary that loses its script cache is served again, and a drop
whose slot moves to another primary, keys and all, goes on selling while it moves."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis as sync_redis
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import RedisCluster
from standardwebhooks import Webhook

from dropserver.app import create_app
from dropserver.appkeys import SERVICES
from dropserver.config import RedisSettings, Settings
from dropserver.embedded_cluster import EmbeddedCluster
from dropserver.embedded_redis import free_port
from dropserver.keys import drop_keys
from dropserver.scripts import load_all
from tests.helpers import ADMIN, buyer, drop_body, rfc3339
from tests.test_gate import SMALL_POW, purchase, solved
from tests.test_purchase import stats
from tests.test_server import config, start_server, wait_until_up
from tests.webhooks.test_dispatcher import FAST, WEBHOOK_SECRET, Receiver, platforms, wait_for
from tests.webhooks.test_dispatcher import receiver as receiver


@pytest.fixture
def cluster_settings(settings: Settings, redis_cluster: EmbeddedCluster) -> Settings:
    return replace(settings, redis=RedisSettings(url=redis_cluster.url, cluster=True))


@pytest.fixture
async def client(
    cluster_settings: Settings, cluster_client: RedisCluster
) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(cluster_settings))) as test_client:
        yield test_client


def primary_of(cluster: RedisCluster, drop_id: str) -> str:
    node = cluster.get_node_from_key(drop_keys(drop_id).meta)
    assert node is not None
    return str(node.name)


async def create_on(
    client: TestClient, cluster: RedisCluster, count: int, **body: Any
) -> list[str]:
    """``count`` drops; more than one lie on at least two primaries (a test that moves a
    slot changes where, so this is checked, not assumed)."""
    ids = [f"cluster-drop-{i}" for i in range(count)]
    assert count == 1 or len({primary_of(cluster, d) for d in ids}) >= 2
    for drop_id in ids:
        resp = await client.post("/v1/drops", json=drop_body(id=drop_id, **body), headers=ADMIN)
        assert resp.status == 201, await resp.text()
    return ids


async def buy(
    client: TestClient, drop_id: str, account: str, person: str
) -> tuple[int, dict[str, Any]]:
    return await purchase(client, drop_id, buyer(account, person), None)


async def test_drops_spread_over_primaries_and_sell_exactly(
    client: TestClient, cluster_client: RedisCluster, redis_cluster: EmbeddedCluster
) -> None:
    drops = await create_on(client, cluster_client, 6, supply=5)
    attempts = [(d, f"p{p}", f"p{p}-a{a}") for d in drops for p in range(20) for a in range(2)]
    random.Random(3).shuffle(attempts)
    results = await asyncio.gather(*(buy(client, d, acct, p) for d, p, acct in attempts))
    for drop_id in drops:
        won = [
            (person, body)
            for (d, person, _), (status, body) in zip(attempts, results, strict=True)
            if d == drop_id and status == 201
        ]
        assert len(won) == 5
        assert max(Counter(person for person, _ in won).values()) == 1
        assert sorted(body["serial"] for _, body in won) == [1, 2, 3, 4, 5]
        s = await stats(client, drop_id)
        assert (s["remaining"], s["held"], s["consistent"]) == (0, 5, True)
    refused = Counter(body["error"]["code"] for status, body in results if status != 201)
    assert set(refused) <= {"sold_out", "limit_reached"}
    # The drops' keys are on more than one server, each drop's on exactly one.
    holding = []
    for node in redis_cluster.nodes:
        with sync_redis.Redis(port=node.port) as direct:
            count = "CLUSTER COUNTKEYSINSLOT"
            slots = {d: cluster_client.keyslot(drop_keys(d).meta) for d in drops}
            holding.append({d for d, slot in slots.items() if direct.execute_command(count, slot)})
    assert sum(bool(h) for h in holding) >= 2
    assert sorted(d for h in holding for d in h) == sorted(drops)


async def test_proof_of_work_and_its_single_use_on_a_cluster(
    client: TestClient, cluster_client: RedisCluster
) -> None:
    drops = await create_on(client, cluster_client, 4, supply=5, pow=SMALL_POW)
    for drop_id in drops:
        headers = buyer("alice")
        ticket = await solved(client, drop_id, headers)
        first = await client.post(
            f"/v1/drops/{drop_id}/purchase", json={"pow": ticket}, headers=headers
        )
        assert first.status == 201, await first.text()
        again = await client.post(
            f"/v1/drops/{drop_id}/purchase", json={"pow": ticket}, headers=buyer("alice-2", "bob")
        )
        assert again.status == 403
        assert (await again.json())["error"]["code"] == "pow_invalid"  # bound to alice
        replay = await client.post(
            f"/v1/drops/{drop_id}/purchase", json={"pow": ticket}, headers=headers
        )
        assert (await replay.json())["error"]["code"] == "pow_replayed"


async def test_holds_confirm_cancel_and_expire_on_a_cluster(
    client: TestClient, cluster_client: RedisCluster
) -> None:
    drops = await create_on(client, cluster_client, 4, supply=3, hold_seconds=1)
    for drop_id in drops:
        orders = [(await buy(client, drop_id, f"b{i}", f"b{i}"))[1] for i in range(3)]
        confirmed = await client.post(f"/v1/orders/{orders[0]['order_id']}/confirm", headers=ADMIN)
        assert confirmed.status == 200 and (await confirmed.json())["status"] == "confirmed"
        cancelled = await client.post(f"/v1/orders/{orders[1]['order_id']}/cancel", headers=ADMIN)
        assert cancelled.status == 200 and (await cancelled.json())["status"] == "cancelled"
        mine = await client.get(f"/v1/orders/{orders[0]['order_id']}", headers=buyer("b0"))
        assert (await mine.json())["status"] == "confirmed"
        me = await client.get(f"/v1/drops/{drop_id}/me", headers=buyer("b2"))
        assert [o["order_id"] for o in (await me.json())["orders"]] == [orders[2]["order_id"]]
    for drop_id in drops:  # the sweeper returns the third hold of every drop
        for _ in range(100):
            s = await stats(client, drop_id)
            if s["held"] == 0:
                break
            await asyncio.sleep(0.05)
        assert (s["remaining"], s["held"], s["confirmed"], s["consistent"]) == (2, 0, 1, True)
    listed = await client.get("/v1/drops", headers=ADMIN)
    assert sorted(d["id"] for d in (await listed.json())["drops"]) == sorted(drops)


async def test_lottery_draws_on_a_cluster(client: TestClient, cluster_client: RedisCluster) -> None:
    drops = await create_on(
        client,
        cluster_client,
        3,
        mode="lottery",
        supply=2,
        closes_at=rfc3339(60),
        claim_seconds=300,
    )
    for drop_id in drops:
        for i in range(6):
            resp = await client.post(
                f"/v1/drops/{drop_id}/entries", json={}, headers=buyer(f"e{i}")
            )
            assert resp.status == 202, await resp.text()
        assert (await client.post(f"/v1/drops/{drop_id}/close", headers=ADMIN)).status == 200
        resp = await client.post(f"/v1/drops/{drop_id}/draw", headers=ADMIN)
        assert resp.status == 200, await resp.text()
        proof = await resp.json()
        assert proof["state"] == "drawn" and proof["entry_count"] == 6
        assert len(proof["winners"]) == 2
        s = await stats(client, drop_id)
        assert (s["held"], s["consistent"]) == (2, True)


async def test_a_primary_that_lost_its_scripts_is_served_again(
    client: TestClient, redis_cluster: EmbeddedCluster, cluster_client: RedisCluster
) -> None:
    drops = await create_on(client, cluster_client, 4, supply=5)
    for node in redis_cluster.nodes:
        with sync_redis.Redis(port=node.port) as direct:
            direct.script_flush()
    for drop_id in drops:  # NOSCRIPT: the drop's primary gets its scripts again
        status, body = await buy(client, drop_id, "c1", "c1")
        assert status == 201, body
    assert (await client.get("/readyz")).status == 200  # which loads them on every primary
    shas = [script.sha for script in load_all().values()]
    for node in redis_cluster.nodes:
        with sync_redis.Redis(port=node.port) as direct:
            assert all(direct.script_exists(*shas))


async def test_a_drop_keeps_selling_while_its_slot_moves_to_another_primary(
    client: TestClient, redis_cluster: EmbeddedCluster, cluster_client: RedisCluster
) -> None:
    """Resharding with keys: the slot is MIGRATING/IMPORTING while its keys move, then owned by
    the new primary. Purchases run throughout, on a route the server learned before."""
    (drop_id,) = await create_on(client, cluster_client, 1, supply=60)
    for i in range(10):
        assert (await buy(client, drop_id, f"m{i}", f"m{i}"))[0] == 201
    meta = drop_keys(drop_id).meta
    slot = cluster_client.keyslot(meta)
    ports = {f"127.0.0.1:{n.port}": n.port for n in redis_cluster.nodes}
    source = ports[primary_of(cluster_client, drop_id)]
    target = next(p for p in ports.values() if p != source)

    async def buyers() -> list[tuple[int, dict[str, Any]]]:
        done = []
        for i in range(10, 60):
            done.append(await buy(client, drop_id, f"m{i}", f"m{i}"))
            await asyncio.sleep(0.005)
        return done

    during = asyncio.create_task(buyers())
    await asyncio.to_thread(migrate, source, target, slot)
    results = await during
    assert [status for status, _ in results] == [201] * 50, [b for s, b in results if s != 201]
    services = client.server.app[SERVICES]
    routed = services.batcher.client_for(meta).connection_pool.connection_kwargs["port"]
    assert routed == target  # the server relearned where the drop lives
    redirects = services.metrics.registry.get_sample_value("dropserver_redis_redirects_total")
    assert redirects and redirects > 0  # and the purchases did meet the move
    s = await stats(client, drop_id)
    assert (s["remaining"], s["held"], s["consistent"]) == (0, 60, True)
    serials = sorted(body["serial"] for _, body in results)
    assert serials == list(range(11, 61))
    with sync_redis.Redis(port=target) as moved:
        assert moved.exists(meta)


async def test_a_slot_that_stays_in_migration_answers_503_then_sells_again(
    client: TestClient, redis_cluster: EmbeddedCluster, cluster_client: RedisCluster
) -> None:
    """A slot left MIGRATING with no importing side redirects every purchase (the new
    person's keys are not on the source): after the redirection budget the request gets a
    retryable 503, nothing is written, and once the slot is stable the purchase goes through."""
    (drop_id,) = await create_on(client, cluster_client, 1, supply=5)
    slot = cluster_client.keyslot(drop_keys(drop_id).meta)
    source = int(primary_of(cluster_client, drop_id).rpartition(":")[2])
    other = next(n.port for n in redis_cluster.nodes if n.port != source)
    with sync_redis.Redis(port=source) as src, sync_redis.Redis(port=other) as dst:
        target_id = dst.execute_command("CLUSTER MYID").decode()
        src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)
        try:
            started = time.monotonic()
            resp = await client.post(f"/v1/drops/{drop_id}/purchase", json={}, headers=buyer("n1"))
            assert resp.status == 503, await resp.text()
            assert (await resp.json())["error"]["code"] == "unavailable"
            assert resp.headers["Retry-After"] == "1"
            assert 3 < time.monotonic() - started < 15
        finally:
            src.execute_command("CLUSTER SETSLOT", slot, "STABLE")
    s = await stats(client, drop_id)
    assert (s["remaining"], s["held"]) == (5, 0)
    assert (await buy(client, drop_id, "n1", "n1"))[0] == 201


def migrate(source: int, target: int, slot: int) -> None:
    """Move ``slot`` and its keys from one primary to another, as redis-cli --cluster reshard
    does (a few keys at a time, with pauses, so purchases meet every stage)."""
    with sync_redis.Redis(port=source) as src, sync_redis.Redis(port=target) as dst:
        source_id = src.execute_command("CLUSTER MYID").decode()
        target_id = dst.execute_command("CLUSTER MYID").decode()
        dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source_id)
        src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)
        time.sleep(0.05)
        while keys := src.execute_command("CLUSTER GETKEYSINSLOT", slot, 3):
            src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
            time.sleep(0.02)
        for port in (target, source):
            with sync_redis.Redis(port=port) as node:
                node.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)


async def test_events_reach_the_webhook_from_every_primary(
    cluster_settings: Settings, cluster_client: RedisCluster, receiver: Receiver
) -> None:
    hooked = replace(
        cluster_settings,
        platforms={**cluster_settings.platforms, **platforms(receiver.url)},
        webhooks=FAST,
    )
    async with TestClient(TestServer(create_app(hooked))) as client:
        drops = await create_on(client, cluster_client, 4, supply=2)
        for drop_id in drops:
            assert (await buy(client, drop_id, "w1", "w1"))[0] == 201
        await wait_for(lambda: len(receiver.deliveries) >= 4)
    verifier = Webhook(WEBHOOK_SECRET)
    delivered = [verifier.verify(d.body, d.headers) for d in receiver.deliveries]
    assert sorted(p["data"]["drop"] for p in delivered) == sorted(drops)
    assert len(set(receiver.ids())) == len(receiver.ids())  # each once


async def test_dropserver_serve_on_a_cluster(
    tmp_path: Path, redis_cluster: EmbeddedCluster
) -> None:
    """A real ``dropserver serve`` process, configured by its file (``cluster = true``)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    path = config(tmp_path, redis_cluster.url, port)
    path.write_text(path.read_text().replace("[redis]\n", "[redis]\ncluster = true\n"))
    proc = await start_server(path)
    try:
        await wait_until_up(base, proc)
        async with aiohttp.ClientSession() as session:
            body = drop_body(id="served-on-cluster", supply=1)
            async with session.post(f"{base}/v1/drops", json=body, headers=ADMIN) as resp:
                assert resp.status == 201, await resp.text()
            url = f"{base}/v1/drops/served-on-cluster/purchase"
            async with session.post(url, json={}, headers=buyer("s1")) as resp:
                assert resp.status == 201, await resp.text()
            async with session.post(url, json={}, headers=buyer("s2")) as resp:
                assert (await resp.json())["error"]["code"] == "sold_out"
    finally:
        proc.terminate()
        assert await proc.wait() == 0
