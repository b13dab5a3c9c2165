"""Shared round trips and script-cache recovery, against a real Redis."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from dropserver.app import create_app
from dropserver.batcher import ScriptBatcher, pack_evalsha
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
