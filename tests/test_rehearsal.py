"""A rehearsal seed makes draws reproducible; without one, every drop's seed is fresh."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from dropserver.app import create_app
from dropserver.config import Settings
from tests.helpers import ADMIN, buyer, drop_body, rfc3339


async def rehearse(settings: Settings, redis: Redis) -> dict[str, Any]:
    await redis.flushall()
    async with TestClient(TestServer(create_app(settings, run_background=False))) as client:
        body = drop_body(id="rehearsal-1", mode="lottery", supply=3, closes_at=rfc3339(60))
        assert (await client.post("/v1/drops", json=body, headers=ADMIN)).status == 201
        for i in range(8):
            resp = await client.post("/v1/drops/rehearsal-1/entries", headers=buyer(f"p{i}"))
            assert resp.status == 202
        await client.post("/v1/drops/rehearsal-1/close", headers=ADMIN)
        proof: dict[str, Any] = await (
            await client.post("/v1/drops/rehearsal-1/draw", headers=ADMIN)
        ).json()
        return proof


async def test_same_seed_same_crowd_same_draw(settings: Settings, redis: Redis) -> None:
    seeded = replace(settings, rehearsal_seed=b"ci-1")
    first, second = await rehearse(seeded, redis), await rehearse(seeded, redis)
    for key in ("commitment", "seed", "entries_digest", "winners", "waitlist"):
        assert first[key] == second[key], key


async def test_without_a_seed_draws_differ(settings: Settings, redis: Redis) -> None:
    first, second = await rehearse(settings, redis), await rehearse(settings, redis)
    assert first["seed"] != second["seed"]
    assert first["entries_digest"] != second["entries_digest"]
