"""Challenge demand: counted in each process, pooled in Redis by reports (two meters on one
real Redis stand for two server processes)."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from dropserver.batcher import ScriptBatcher
from dropserver.demand import DemandMeter, _Rate, level_of
from dropserver.keys import drop_keys
from dropserver.redis_clock import RedisClock
from dropserver.scripts import load_script
from tests.helpers import ADMIN, buyer
from tests.test_purchase import create

REPORT = load_script("demand_report")
WINDOW = 0.5  # seconds: rates fall by e every half second of quiet


async def meter(redis: Redis, clock: RedisClock | None = None) -> DemandMeter:
    batcher = ScriptBatcher(redis)
    await batcher.load([REPORT])
    return DemandMeter(
        batcher,
        REPORT,
        clock or RedisClock(),
        window_seconds=WINDOW,
        drop_levels=(40.0, 80.0),
        ip_levels=(30.0,),
    )


async def a_drop(redis: Redis, drop_id: str = "d1") -> str:
    await redis.hset(drop_keys(drop_id).meta, mapping={"id": drop_id, "opens_at": 0})
    return drop_id


async def script_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))


def test_levels_count_the_thresholds_reached() -> None:
    assert [level_of(r, (40.0, 80.0)) for r in (0, 39.9, 40, 79, 80, 1e6)] == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("seed", range(20))
def test_a_cached_level_is_always_the_level_of_the_rate(seed: int) -> None:
    """The level a hit gets comes from a cache most of the time: it must be exactly the level
    of the decayed rate, whatever mix of requests, quiet and reports came before."""
    rng = random.Random(seed)
    thresholds = (40.0, 80.0, 160.0)
    rate, now, seen = _Rate(at=0.0), 0.0, set()
    for _ in range(3000):
        step = rng.random()
        if step < 0.7:
            rate.pending += rng.choice((1, 1, 1, 5))
        elif step < 0.97:
            now += rng.expovariate(1 / (0.02 if rng.random() < 0.8 else 0.6))
        else:
            rate.reported(rng.choice((0.0, 30.0, 90.0, 200.0, 500.0)), now, 0)
        expected = level_of(rate.value(now, WINDOW), thresholds)
        level = rate.level_at(now, WINDOW, thresholds)
        assert level == expected, (now, rate)
        seen.add(level)
    # The sequence went through every level, so the cache was refreshed up and down.
    assert seen == {0, 1, 2, 3}


async def test_a_process_sees_its_own_surge_at_once(redis: Redis) -> None:
    demand = await meter(redis)
    drop = await a_drop(redis)
    # 50 requests in a 0.5 s window: 100/s, over both drop thresholds, before any report.
    levels = [demand.hit(drop, f"10.0.{i}.0/24") for i in range(50)]
    assert levels[0] == 0 and levels[-1] == 2
    # One prefix alone crosses its own (lower) threshold while the drop is still calm.
    other = await meter(redis)
    assert [other.hit(drop, "10.9.9.0/24") for _ in range(16)][-1] == 1


async def test_reports_pool_the_demand_of_every_process(redis: Redis) -> None:
    first, second = await meter(redis), await meter(redis)
    drop = await a_drop(redis)
    for i in range(30):
        first.hit(drop, f"10.0.{i}.0/24")  # 60/s here: level 1
    assert second.hit(drop, "10.1.0.0/24") == 0  # 2/s: the second process alone is calm
    await first.report()
    await second.report()
    stored = await redis.hget(drop_keys(drop).demand, "g")
    assert stored is not None and float(stored.split(b"|")[0]) == pytest.approx(62, abs=1)
    # The second process now knows the pooled rate: its next request gets level 1.
    assert second.hit(drop, "10.1.0.0/24") == 1


async def test_demand_falls_after_the_load(redis: Redis) -> None:
    demand = await meter(redis)
    drop = await a_drop(redis)
    for _ in range(50):
        demand.hit(drop, "10.0.0.0/24")
    await demand.report()
    await asyncio.sleep(4 * WINDOW)  # e^-4 of 100/s is under 2/s
    await demand.report()
    assert demand.hit(drop, "10.0.0.0/24") == 0


async def test_counts_made_during_a_report_are_kept_for_the_next(redis: Redis) -> None:
    demand = await meter(redis)
    drop = await a_drop(redis)
    demand.hit(drop, "10.0.0.0/24")
    in_flight = demand.report()
    demand.hit(drop, "10.0.0.0/24")  # counted after the report's arguments were built
    await in_flight
    await demand.report()
    stored = await redis.hget(drop_keys(drop).demand, "ip:10.0.0.0/24")
    assert stored is not None
    # Two requests in all, each worth 1/tau = 2/s (less a few ms of decay).
    assert float(stored.split(b"|")[0]) == pytest.approx(4, abs=0.1)


async def test_reports_bring_the_redis_clock_and_closings(redis: Redis) -> None:
    clock = RedisClock()
    demand = await meter(redis, clock)
    drop = await a_drop(redis)
    demand.hit(drop, "10.0.0.0/24")
    await demand.report()
    assert clock.synced and demand.closed_at(drop) == 0
    seconds, micros = await redis.time()
    assert abs(clock.now_ms() - (seconds * 1000 + micros / 1000)) < 50
    await redis.hset(drop_keys(drop).meta, "closed_at", 1234)
    await demand.report()
    assert demand.closed_at(drop) == 1234


async def test_a_report_for_an_unknown_drop_forgets_it(redis: Redis) -> None:
    demand = await meter(redis)
    demand.hit("nope", "10.0.0.0/24")
    await demand.report()
    assert await redis.exists(drop_keys("nope").demand) == 0
    await demand.report()  # nothing left to report


async def test_the_script_refuses_bad_counts_before_writing(redis: Redis) -> None:
    drop = await a_drop(redis)
    keys = drop_keys(drop)
    for args in (["500000", "1", "10.0.0.0/24", "x"], ["0", "1"], ["500000", "1", "odd"]):
        with pytest.raises(ResponseError, match="BADARGS"):
            await redis.eval(REPORT.source.decode(), 2, keys.meta, keys.demand, *args)
    assert await redis.exists(keys.demand) == 0


async def test_an_early_close_stops_challenges_at_once_in_this_process(
    client: TestClient,
) -> None:
    drop_id = await create(client, pow={"algorithm": "SHA-256", "cost": 1, "counter_max": 16})
    first = await client.get(f"/v1/drops/{drop_id}/challenge", headers=buyer("a"))
    assert first.status == 200
    assert (await client.post(f"/v1/drops/{drop_id}/close", headers=ADMIN)).status == 200
    after = await client.get(f"/v1/drops/{drop_id}/challenge", headers=buyer("a"))
    assert after.status == 409 and (await after.json())["error"]["code"] == "closed"


async def test_a_drop_nobody_asks_about_is_no_longer_reported(redis: Redis) -> None:
    demand = await meter(redis)
    drop = await a_drop(redis)
    demand.hit(drop, "10.0.0.0/24")
    await demand.report()
    await redis.delete(drop_keys(drop).demand)
    await asyncio.sleep(6 * WINDOW)  # 2/s decays under 0.01/s
    await demand.report()  # the prefix is forgotten, the drop still reported once
    calls = await script_calls(redis)
    await demand.report()  # now the drop is forgotten: no script call, nothing written
    assert await script_calls(redis) == calls
    assert await redis.exists(drop_keys(drop).demand) == 0
    assert demand.closed_at(drop) == 0 and demand.hit(drop, "10.0.0.0/24") == 0
