"""The embedded Redis's AOF is compacted between sales: once doubled, when writes are quiet."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from dropserver.aof_compaction import AofCompactor, AofPolicy, AofState
from dropserver.app import create_app
from dropserver.config import Settings
from dropserver.embedded_redis import EmbeddedRedis

MB = 1 << 20


def state(current: int, base: int, *, enabled: bool = True, busy: bool = False) -> AofState:
    return AofState(enabled=enabled, busy=busy, current_size=current, base_size=base)


@pytest.mark.parametrize(
    ("aof", "growth", "expected"),
    [
        (state(200 * MB, 90 * MB), 0.0, True),  # doubled, past 64 MB, quiet
        (state(200 * MB, 90 * MB), 10 * MB, False),  # doubled, but a sale is writing
        (state(200 * MB, 90 * MB), None, False),  # first look: no rate yet
        (state(150 * MB, 90 * MB), 0.0, False),  # not doubled
        (state(40 * MB, 1 * MB), 0.0, False),  # doubled but small: not worth a fork
        (state(200 * MB, 90 * MB, busy=True), 0.0, False),  # a rewrite is under way
        (state(200 * MB, 90 * MB, enabled=False), 0.0, False),  # no AOF at all
        (state(1100 * MB, 100 * MB), 10 * MB, True),  # 11 times over, past 1 GiB: even mid-sale
        (state(900 * MB, 100 * MB), 10 * MB, False),  # 9 times over but under 1 GiB
        (state(1100 * MB, 200 * MB), 10 * MB, False),  # past 1 GiB but under 8 times
        (state(1100 * MB, 200 * MB), None, False),  # the same, on the first look
        (state(1100 * MB, 100 * MB), None, True),  # overdue needs no rate
    ],
)
def test_when_a_rewrite_is_due(aof: AofState, growth: float | None, expected: bool) -> None:
    assert AofPolicy().should_rewrite(aof, growth) is expected


def test_the_state_is_read_from_info_persistence() -> None:
    info = {
        "aof_enabled": 1,
        "aof_rewrite_in_progress": 0,
        "aof_rewrite_scheduled": 1,
        "aof_current_size": 123,
        "aof_base_size": 45,
    }
    assert AofState.from_info(info) == state(123, 45, busy=True)
    assert AofState.from_info({"aof_enabled": 0}) == state(0, 0, enabled=False)


async def _settled(client: Redis) -> dict[str, int]:
    for _ in range(200):
        info = await client.info("persistence")
        if not (info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"]):
            return info
        await asyncio.sleep(0.05)
    raise AssertionError("the AOF rewrite did not finish")


async def _write(client: Redis, n: int) -> None:
    async with client.pipeline(transaction=False) as pipe:
        for i in range(n):
            pipe.set(f"k{i % 50}", "x" * 200)  # the same 50 keys: a rewrite shrinks the file
        await pipe.execute()


async def test_the_embedded_redis_leaves_rewrites_to_its_owner(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as server:
        client = Redis.from_url(server.url)
        try:
            config = await client.config_get("auto-aof-rewrite-percentage")
            assert config["auto-aof-rewrite-percentage"] == "0"
            # With Redis's own rewrites on, a floor of 1 MB would set one off below.
            await client.config_set("auto-aof-rewrite-min-size", str(1 * MB))
            before = await client.info("persistence")
            await _write(client, 20_000)  # about 5 MB of AOF
            await asyncio.sleep(0.5)  # Redis checks its rewrite conditions 10 times a second
            after = await _settled(client)
            # (Redis 6.2 has no count of rewrites: the base size changes with each.)
            assert after["aof_base_size"] == before["aof_base_size"]
            assert after["aof_current_size"] > before["aof_current_size"] + 4 * MB
        finally:
            await client.aclose()


async def test_a_grown_aof_is_rewritten_once_writes_are_quiet(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as server:
        client = Redis.from_url(server.url)
        try:
            policy = AofPolicy(min_size=1 * MB, quiet_bytes_per_second=256 << 10)
            compactor = AofCompactor(client, policy)
            await compactor.round()  # the first look: a size to measure growth from
            await _write(client, 10_000)  # a sale: about 2.5 MB in a moment
            await compactor.round()
            assert compactor.rewrites == 0  # grown, but writes are not quiet
            before = await _settled(client)
            await asyncio.sleep(0.3)  # no writes: quiet
            await compactor.round()
            assert compactor.rewrites == 1
            after = await _settled(client)
            assert after["aof_current_size"] < before["aof_current_size"] // 10
            assert after["aof_base_size"] == after["aof_current_size"]
            await asyncio.sleep(0.3)
            await compactor.round()  # compacted: not due again
            assert compactor.rewrites == 1
            assert await client.get("k7") == b"x" * 200  # nothing lost by the rewrite
        finally:
            await client.aclose()


async def test_the_app_compacts_only_the_redis_it_owns(settings: Settings) -> None:
    def tasks() -> set[str]:
        return {task.get_name() for task in asyncio.all_tasks()}

    for owns in (False, True):
        async with TestClient(TestServer(create_app(settings, compact_aof=owns))):
            assert ("AOF compaction" in tasks()) is owns
        assert "AOF compaction" not in tasks()
