"""Shared round trips, script-cache recovery and waiting for replicas, against real Redis
servers (a replica among them)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from dropserver.app import create_app
from dropserver.batcher import NotReplicated, ScriptBatcher, pack_evalsha
from dropserver.config import PlatformSettings, RedisSettings, Settings, SweeperSettings
from dropserver.embedded_redis import EmbeddedRedis
from dropserver.metrics import Metrics
from dropserver.scripts import Script, load_script
from tests.helpers import ADMIN_KEY, SECRET, buyer
from tests.test_purchase import create, stats


async def test_concurrent_calls_share_round_trips(redis: Redis) -> None:
    metrics = Metrics()
    batcher = ScriptBatcher(redis, max_in_flight=1, metrics=metrics)
    script = load_script("close_drop")
    await batcher.load([script])
    replies = await asyncio.gather(
        *(
            batcher.run(script, [f"{{drop:x{i}}}:meta", f"{{drop:x{i}}}:events"], [])
            for i in range(200)
        )
    )
    assert replies == [[0]] * 200  # none of these drops exist
    batches = metrics.redis_batch_size.collect()[0].samples
    count = next(s.value for s in batches if s.name.endswith("_count"))
    assert count < 20  # 200 calls in a handful of pipelines, not 200 round trips


async def test_batches_are_capped_and_several_fly_at_once(redis: Redis) -> None:
    """max_batch caps a round trip; max_in_flight round trips wait for replies at once, each
    on its own connection, and every caller still gets its own reply."""
    metrics = Metrics()
    batcher = ScriptBatcher(redis, max_batch=4, max_in_flight=3, metrics=metrics)
    source = b"return ARGV[1]"
    script = Script("echo", source, hashlib.sha1(source).hexdigest())
    await batcher.load([script])
    before = len(await redis.client_list())  # this test's own connection
    replies = await asyncio.gather(*(batcher.run(script, [], [i]) for i in range(60)))
    assert replies == [str(i).encode() for i in range(60)]
    samples = metrics.redis_batch_size.collect()[0].samples
    count = next(s.value for s in samples if s.name.endswith("_count"))
    within_4 = next(
        s.value for s in samples if s.name.endswith("_bucket") and s.labels["le"] == "4.0"
    )
    assert count >= 15 and within_4 == count  # 60 calls, at most 4 per round trip
    # Three round trips were on the wire at once, never more: the batcher keeps three
    # connections of its own beside the one this test's calls use.
    assert before == 1 and len(await redis.client_list()) == 4


async def test_noscript_is_recovered_by_reloading(redis: Redis) -> None:
    batcher = ScriptBatcher(redis)
    script = load_script("close_drop")
    await batcher.load([script])
    await redis.script_flush()
    reply = await batcher.run(script, ["{drop:y}:meta", "{drop:y}:events"], [])
    assert reply == [0]


async def test_script_errors_reach_only_their_caller(redis: Redis) -> None:
    batcher = ScriptBatcher(redis)
    script = load_script("create_drop")
    await batcher.load([script])
    bad = batcher.run(script, ["{drop:z}:meta", "{drop:z}:counts"], ["odd"])
    good = batcher.run(script, ["{drop:w}:meta", "{drop:w}:counts"], ["id", "w"])
    results = await asyncio.gather(bad, good, return_exceptions=True)
    assert isinstance(results[0], Exception) and "field/value pairs" in str(results[0])
    assert results[1][0] == 1  # type: ignore[index]


async def test_redis_restart_mid_drop_keeps_working(tmp_path: Path) -> None:
    """A restarted Redis has an empty script cache; data survives through the AOF."""
    server = EmbeddedRedis(tmp_path / "redis", appendfsync="always")
    server.start()
    try:
        settings = Settings(
            platforms={"acme": PlatformSettings("acme", (ADMIN_KEY,), SECRET)},
            redis=RedisSettings(url=server.url),
            sweeper=SweeperSettings(interval_seconds=0.05),
        )
        async with TestClient(TestServer(create_app(settings))) as client:
            drop_id = await create(client, supply=10)
            for i in range(3):
                resp = await client.post(f"/v1/drops/{drop_id}/purchase", headers=buyer(f"a{i}"))
                assert resp.status == 201

            server.stop()  # SIGTERM; then a crash-style restart below
            server.start()
            for i in range(3, 5):
                resp = await client.post(f"/v1/drops/{drop_id}/purchase", headers=buyer(f"a{i}"))
                assert resp.status == 201, await resp.text()

            server.stop(kill=True)  # SIGKILL: acknowledged writes must survive (fsync always)
            server.start()
            resp = await client.post(f"/v1/drops/{drop_id}/purchase", headers=buyer("a5"))
            assert resp.status == 201, await resp.text()
            s = await stats(client, drop_id)
            assert (s["held"], s["remaining"], s["consistent"]) == (6, 4, True)
            serials = []
            for i in range(6):
                me = await (
                    await client.get(f"/v1/drops/{drop_id}/me", headers=buyer(f"a{i}"))
                ).json()
                serials += [o["serial"] for o in me["orders"]]
            assert sorted(serials) == [1, 2, 3, 4, 5, 6]
            ready = await client.get("/readyz")
            assert ready.status == 200
    finally:
        server.stop()


def test_pack_evalsha_is_resp() -> None:
    script = load_script("close_drop")
    packed = pack_evalsha(script, ["k1", "{drop:é}"], [5, b"\x00bin", "text", 0])
    expected = [b"EVALSHA", script.sha.encode(), b"2", b"k1", "{drop:é}".encode(), b"5",
                b"\x00bin", b"text", b"0"]  # fmt: skip
    resp = b"*9\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in expected)
    assert packed == resp


# --- waiting for replicas (redis.wait_replicas) ------------------------------------------------

_INCR = b"return redis.call('INCR', KEYS[1])"
INCR = Script("incr", _INCR, hashlib.sha1(_INCR).hexdigest())


@pytest.fixture
def primary_and_replica(tmp_path: Path) -> Iterator[tuple[EmbeddedRedis, EmbeddedRedis]]:
    primary = EmbeddedRedis(tmp_path / "primary")
    primary.start()
    replica = EmbeddedRedis(
        tmp_path / "replica", extra_args=["--replicaof", "127.0.0.1", str(primary.port)]
    )
    try:
        replica.start()
        probe = SyncRedis(port=replica.port)
        deadline = time.monotonic() + 10
        while probe.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not connect"
            time.sleep(0.05)
        probe.close()
        yield primary, replica
    finally:
        replica.stop(kill=True)
        primary.stop()


@contextlib.asynccontextmanager
async def batcher_on(primary: EmbeddedRedis, **options: Any) -> AsyncIterator[ScriptBatcher]:
    """A batcher on its own client of ``primary``, with INCR loaded and the stats reset."""
    client = Redis.from_url(primary.url)
    batcher = ScriptBatcher(client, **options)
    try:
        await batcher.load([INCR])
        await client.config_resetstat()
        yield batcher
    finally:
        await batcher.close()
        await client.aclose()


@contextlib.contextmanager
def paused(server: EmbeddedRedis) -> Iterator[None]:
    """The server process stopped (SIGSTOP): alive for TCP, answering nothing."""
    assert server.pid is not None
    os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)


async def test_with_wait_replicas_a_reply_waits_for_the_replica(
    primary_and_replica: tuple[EmbeddedRedis, EmbeddedRedis],
) -> None:
    """Every batch ends with one WAIT; a replica that cannot confirm in time fails the batch's
    calls (the write is on the primary, but no caller is told it is safe)."""
    primary, replica = primary_and_replica
    async with batcher_on(primary, wait_replicas=1, wait_timeout_ms=300) as batcher:
        replies = await asyncio.gather(*(batcher.run(INCR, ["{t}:n"], []) for _ in range(100)))
        assert sorted(replies) == list(range(1, 101))
        client = Redis.from_url(primary.url)
        stats = await client.info("commandstats")
        assert stats["cmdstat_evalsha"]["calls"] == 100
        assert 1 <= stats["cmdstat_wait"]["calls"] < 100  # one per batch, not per call
        with paused(replica):
            started = time.monotonic()
            with pytest.raises(NotReplicated):
                await batcher.run(INCR, ["{t}:n"], [])
            assert time.monotonic() - started >= 0.3
            assert await client.get("{t}:n") == b"101"  # written, only not confirmed
        assert await batcher.run(INCR, ["{t}:n"], []) == 102
        await client.aclose()


async def test_one_call_per_round_trip_waits_for_the_replica_too(
    primary_and_replica: tuple[EmbeddedRedis, EmbeddedRedis],
) -> None:
    primary, replica = primary_and_replica
    options = {"pipelining": False, "wait_replicas": 1, "wait_timeout_ms": 300}
    async with batcher_on(primary, **options) as batcher:
        assert await batcher.run(INCR, ["{t}:n"], []) == 1
        with paused(replica), pytest.raises(NotReplicated):
            await batcher.run(INCR, ["{t}:n"], [])


async def test_without_wait_replicas_no_wait_is_sent(
    primary_and_replica: tuple[EmbeddedRedis, EmbeddedRedis],
) -> None:
    primary, replica = primary_and_replica
    async with batcher_on(primary) as batcher:
        with paused(replica):  # nothing waits for it
            assert await batcher.run(INCR, ["{t}:n"], []) == 1
    client = Redis.from_url(primary.url)
    assert "cmdstat_wait" not in await client.info("commandstats")
    await client.aclose()


async def test_a_purchase_refused_for_want_of_a_replica_is_kept_for_its_retry(
    primary_and_replica: tuple[EmbeddedRedis, EmbeddedRedis],
) -> None:
    """503 while the replica cannot confirm; the same request sent again with its
    Idempotency-Key once the replica is back gets the order the first one made."""
    primary, replica = primary_and_replica
    settings = Settings(
        platforms={"acme": PlatformSettings("acme", (ADMIN_KEY,), SECRET)},
        redis=RedisSettings(url=primary.url, wait_replicas=1, wait_timeout_ms=300),
    )
    async with TestClient(TestServer(create_app(settings, run_background=False))) as client:
        drop_id = await create(client, supply=5)
        url = f"/v1/drops/{drop_id}/purchase"
        headers = {**buyer("a1"), "Idempotency-Key": "k1"}
        with paused(replica):
            resp = await client.post(url, json={}, headers=headers)
            assert resp.status == 503, await resp.text()
            assert (await resp.json())["error"]["code"] == "unavailable"
        resp = await client.post(url, json={}, headers=headers)
        assert resp.status == 201, await resp.text()
        order = await resp.json()
        assert order["serial"] == 1
        s = await stats(client, drop_id)
        assert (s["held"], s["remaining"]) == (1, 4)  # one unit, not two
