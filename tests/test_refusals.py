"""Refusals decided in the process reach the drop's rejection counts (/stats)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError

from dropserver.appkeys import SERVICES
from dropserver.embedded_redis import free_port
from dropserver.keys import drop_keys
from dropserver.pow.solver import payload, solve
from dropserver.refusals import RefusalTally
from tests.helpers import buyer, rfc3339
from tests.test_gate import SMALL_POW, forge, purchase
from tests.test_purchase import create, stats


async def test_flush_adds_to_the_scripts_rejection_counts(redis: Redis) -> None:
    counts = drop_keys("d1").counts
    await redis.hset(counts, "rej:not_open", 2)  # as purchase.lua counts its own refusals
    tally = RefusalTally(redis)
    for reason in ("not_open", "pow_invalid", "pow_invalid"):
        tally.count("d1", reason)
    tally.count("d2", "pow_expired")
    await tally.flush()
    assert await redis.hgetall(counts) == {b"rej:not_open": b"3", b"rej:pow_invalid": b"2"}
    assert await redis.hget(drop_keys("d2").counts, "rej:pow_expired") == b"1"
    assert tally.pending("d1", "pow_invalid") == 0
    await tally.flush()  # nothing new: nothing added
    assert await redis.hget(counts, "rej:pow_invalid") == b"2"


async def test_a_failed_flush_keeps_its_counts() -> None:
    unreachable = Redis(port=free_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    tally = RefusalTally(unreachable)
    tally.count("d1", "pow_invalid")
    with pytest.raises(ConnectionError):
        await tally.flush()
    tally.count("d1", "pow_invalid")
    assert tally.pending("d1", "pow_invalid") == 2
    await unreachable.aclose()


async def test_pow_and_early_refusals_show_in_stats(client: TestClient) -> None:
    drop_id = await create(client, pow=SMALL_POW)
    status, body = await purchase(client, drop_id, buyer("a"), "bm90IGpzb24=")
    assert (status, body["error"]["code"]) == (403, "pow_invalid")
    old = forge(drop_id, pid="a", expires_in=-5)
    status, body = await purchase(client, drop_id, buyer("a"), payload(old, solve(old)))
    assert (status, body["error"]["code"]) == (403, "pow_expired")
    later = await create(client, opens_at=rfc3339(3600))
    status, body = await purchase(client, later, buyer("a"), None)
    assert (status, body["error"]["code"]) == (425, "not_open")

    await client.app[SERVICES].refusals.flush()  # the app does this every second
    assert (await stats(client, drop_id))["rejections"] == {"pow_invalid": 1, "pow_expired": 1}
    assert (await stats(client, later))["rejections"] == {"not_open": 1}
