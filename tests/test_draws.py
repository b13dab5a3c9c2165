"""The draw's batched writes and its own connection: lua/draw_write.lua and DrawRunner.

draw_write is safe to send again after a lost reply (a batch names the place it starts at), so
the runner reconnects and resends what was unanswered; a draw that stops with replies unread
drops its connection instead of handing stale replies to the pool's next user.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError, ResponseError

from dropserver import draws
from dropserver.app import create_app
from dropserver.appkeys import SERVICES
from dropserver.config import Settings
from dropserver.drops import Drop
from dropserver.keys import drop_keys
from dropserver.lottery import build_proof, receipt
from dropserver.scripts import load_script
from tests.helpers import ADMIN, drop_body, rfc3339

LOCK, ORDER, RANKS = "t:lock", "t:order", "t:ranks"
TOKEN = "token-1"


def item(i: int, pid: str | None = None) -> str:
    return f"{i:064x} {pid if pid is not None else f'person-{i}'}"


@pytest.fixture
async def write(redis: Redis) -> Any:
    script = load_script("draw_write")
    await redis.script_load(script.source)
    await redis.set(LOCK, TOKEN, px=30_000)

    async def call(start: int, items: list[str], token: str = TOKEN) -> Any:
        return await redis.evalsha(script.sha, 3, LOCK, ORDER, RANKS, token, 30_000, start, *items)

    return call


async def state(redis: Redis) -> tuple[list[bytes], dict[bytes, bytes]]:
    return await redis.lrange(ORDER, 0, -1), await redis.hgetall(RANKS)  # type: ignore[return-value]


# --- lua/draw_write.lua ----------------------------------------------------------------------


async def test_write_appends_items_and_ranks_them_from_start(redis: Redis, write: Any) -> None:
    first = [item(i) for i in range(2_500)]  # more than one slice of 1000
    assert await write(0, first) == [0]
    assert await write(2_500, [item(2_500, "a pid with spaces")]) == [0]
    order, ranks = await state(redis)
    assert order == [x.encode() for x in [*first, item(2_500, "a pid with spaces")]]
    assert ranks[b"person-0"] == b"0" and ranks[b"person-2499"] == b"2499"
    assert ranks[b"a pid with spaces"] == b"2500"
    assert len(ranks) == 2_501


async def test_ranks_are_written_as_integers(redis: Redis, write: Any) -> None:
    big = 200_000  # the list must already be as long as start says
    await redis.rpush(ORDER, *[b"x"] * big)
    assert await write(big, [item(1), item(2)]) == [0]
    assert await redis.hget(RANKS, "person-1") == str(big).encode()
    assert await redis.hget(RANKS, "person-2") == str(big + 1).encode()


async def test_a_batch_written_again_changes_nothing(redis: Redis, write: Any) -> None:
    batch = [item(i) for i in range(1_500)]
    assert await write(0, batch) == [0]
    before = await state(redis)
    # The same batch again, as after a lost reply: nothing is written twice.
    assert await write(0, batch) == [2, 1_500]
    assert await state(redis) == before
    # A batch behind the last one, sent again after the next was written: skipped as well.
    assert await write(1_500, [item(i) for i in range(1_500, 2_000)]) == [0]
    after = await state(redis)
    assert await write(0, batch) == [2, 2_000]
    assert await state(redis) == after
    assert len(after[0]) == len(after[1]) == 2_000


async def test_a_batch_that_does_not_fit_is_refused(redis: Redis, write: Any) -> None:
    assert await write(0, [item(0), item(1)]) == [0]
    before = await state(redis)
    # A gap (a batch missing before this one) and an overlap that is not this batch.
    assert await write(5, [item(5)]) == [3, 2]
    assert await write(1, [item(7)]) == [3, 2]
    assert await write(0, [item(0), item(9)]) == [3, 2]
    assert await state(redis) == before


async def test_a_lock_that_is_not_ours_writes_nothing(redis: Redis, write: Any) -> None:
    assert await write(0, [item(0)], token="someone-else") == [1]
    assert await state(redis) == ([], {})


async def test_a_malformed_item_writes_nothing(redis: Redis, write: Any) -> None:
    # The bad item is in the second slice: the first one must not have been written.
    items = [item(i) for i in range(1_200)]
    items[1_100] = "not a receipt and pid"
    with pytest.raises(ResponseError, match="item 1101"):
        await write(0, items)
    with pytest.raises(ResponseError):
        await write(0, [f"{0:064x}"])  # a receipt without a pid
    assert await state(redis) == ([], {})


async def test_a_write_renews_the_lock(redis: Redis, write: Any) -> None:
    await redis.pexpire(LOCK, 1_000)
    assert await write(0, [item(0)]) == [0]
    assert await redis.pttl(LOCK) > 20_000


# --- reading the entries -----------------------------------------------------------------------


def bulk(text: str) -> bytes:
    data = text.encode()
    return b"$%d\r\n%b\r\n" % (len(data), data)


def test_entries_are_decoded_without_splitting_the_sub() -> None:
    r1, r2, r3 = (f"{i:064x}" for i in range(3))
    flat = [
        b"p1",
        f"{'e' * 32} {r1} a sub with spaces 1".encode(),
        b"p2",
        f"{'f' * 32} {r2} sub 0".encode(),  # a late fair-start arrival: not in the draw
        "p é".encode(),
        f"{'a' * 32} {r3} sub-ending-in 1 1".encode(),
    ]
    bulk_of: dict[str, bytes] = {}
    draws._decode_entries(flat, bulk_of)
    draws._decode_entries(flat[:2], bulk_of)  # HSCAN may return an entry twice
    assert bulk_of == {r1: bulk(f"{r1} p1"), r3: bulk(f"{r3} p é")}
    with pytest.raises(ValueError, match="no receipt"):
        draws._decode_entries([b"p", b"e short-receipt sub 1"], {})


def test_write_batches_are_packed_like_evalsha() -> None:
    script = load_script("draw_write")
    receipts = [f"{i:064x}" for i in range(3)]
    items = [f"{receipts[0]} p0", f"{receipts[1]} pé", f"{receipts[2]} a b"]
    bulk_of = {r: bulk(text) for r, text in zip(receipts, items, strict=True)}
    head = ("tok", 30_000, 7)
    keys = ["k1", "k2", "k3"]
    expected = draws.pack_evalsha(script, keys, [*head, *items])
    assert draws._pack_write(script, keys, head, receipts, bulk_of) == expected


# --- DrawRunner over its own connection ----------------------------------------------------


@pytest.fixture
async def client(settings: Settings, redis: Redis) -> AsyncIterator[TestClient]:
    """The app without its background loops (the draw runner would race the test)."""
    async with TestClient(TestServer(create_app(settings, run_background=False))) as test_client:
        yield test_client


async def closed_lottery(client: TestClient, redis: Redis, n: int) -> tuple[Drop, dict[str, str]]:
    """A closed lottery with n entries written as lua/enter.lua writes them; its receipt -> pid."""
    body = drop_body(mode="lottery", supply=5, closes_at=rfc3339(60), claim_seconds=300)
    resp = await client.post("/v1/drops", json=body, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    drop_id: str = (await resp.json())["id"]
    keys = drop_keys(drop_id)
    pid_of: dict[str, str] = {}
    mapping: dict[str, str] = {}
    for i in range(n):
        pid, entry_id = f"person {i:05d}", os.urandom(16).hex()
        r = receipt(drop_id, entry_id)
        mapping[pid] = f"{entry_id} {r} account {i} 1"
        pid_of[r] = pid
    if mapping:
        await redis.hset(keys.entries, mapping=mapping)
        await redis.hincrby(keys.counts, "entries", n)
    assert (await client.post(f"/v1/drops/{drop_id}/close", headers=ADMIN)).status == 200
    found = await client.app[SERVICES].drops.get(drop_id)
    assert found is not None
    return found[0], pid_of


async def assert_drawn(redis: Redis, drop: Drop, pid_of: dict[str, str]) -> None:
    """The published order and ranks are exactly the draw's, each item once."""
    keys = drop_keys(drop.id)
    seed = bytes.fromhex((await redis.hget(keys.draw, "seed")).decode())  # type: ignore[union-attr]
    expected = build_proof(drop.id, seed, list(pid_of), drop.supply, drop.beacon)
    order = expected.winners + expected.waitlist
    assert await redis.lrange(keys.draw_order, 0, -1) == [
        f"{r} {pid_of[r]}".encode() for r in order
    ]
    ranks = await redis.hgetall(keys.ranks)
    assert ranks == {pid_of[r].encode(): str(i).encode() for i, r in enumerate(order)}
    assert not await redis.exists(keys.draw_order_tmp, keys.ranks_tmp, keys.draw_lock)


async def test_the_draw_reads_and_writes_in_many_batches(
    client: TestClient, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(draws, "READ_BATCH", 50)
    monkeypatch.setattr(draws, "WRITE_BATCH", 70)
    drop, pid_of = await closed_lottery(client, redis, 1_000)
    outcome = await client.app[SERVICES].draws.draw(drop)
    assert outcome.entries == 1_000
    await assert_drawn(redis, drop, pid_of)


async def test_a_draw_without_entries(client: TestClient, redis: Redis) -> None:
    drop, _ = await closed_lottery(client, redis, 0)
    assert (await client.app[SERVICES].draws.draw(drop)).entries == 0
    assert await redis.hget(drop_keys(drop.id).draw, "state") == b"drawn"


async def test_a_lost_reply_is_sent_again_and_written_once(
    client: TestClient, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection drops right after Redis wrote a batch, its reply unread: the runner
    reconnects, sends every unanswered batch again, and Redis skips what it already has."""
    monkeypatch.setattr(draws, "WRITE_BATCH", 100)
    drop, pid_of = await closed_lottery(client, redis, 1_000)
    read_response = AbstractConnection.read_response
    written = 0
    skipped = 0

    async def lose_the_third_reply(self: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
        nonlocal written, skipped
        reply = await read_response(self, *args, **kwargs)
        if reply == [0]:  # until the commit, only a draw_write that wrote its batch
            written += 1
            if written == 3:
                await self.disconnect()
                raise ConnectionError("connection lost after the write")
        elif isinstance(reply, list) and reply and reply[0] == 2:
            skipped += 1
        return reply

    monkeypatch.setattr(AbstractConnection, "read_response", lose_the_third_reply)
    assert (await client.app[SERVICES].draws.draw(drop)).entries == 1_000
    assert skipped >= 1  # the batch whose reply was lost, at least
    await assert_drawn(redis, drop, pid_of)


async def test_a_draw_goes_on_when_redis_forgets_its_scripts(
    client: TestClient, redis: Redis, redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NOSCRIPT (a restart or failover empties the script cache): the batch did not run, nor
    did the one behind it; both are sent again after SCRIPT LOAD."""
    monkeypatch.setattr(draws, "WRITE_BATCH", 100)
    drop, pid_of = await closed_lottery(client, redis, 1_000)
    pack_write = draws._pack_write
    packed = 0
    sync_redis = SyncRedis.from_url(redis_server.url)

    def flush_scripts(*args: Any) -> bytes:
        nonlocal packed
        packed += 1
        if packed == 3:
            sync_redis.script_flush()
        return pack_write(*args)

    monkeypatch.setattr(draws, "_pack_write", flush_scripts)
    try:
        assert (await client.app[SERVICES].draws.draw(drop)).entries == 1_000
    finally:
        sync_redis.close()
    await assert_drawn(redis, drop, pid_of)


class LinkSpy:
    """Records every _Link the runner makes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.links: list[draws._Link] = []
        init = draws._Link.__init__

        def spy(link: draws._Link, *args: Any) -> None:
            init(link, *args)
            self.links.append(link)

        monkeypatch.setattr(draws._Link, "__init__", spy)


def on_write(
    monkeypatch: pytest.MonkeyPatch, n: int, action: Callable[[], object]
) -> Callable[[], None]:
    """Run ``action`` when the draw packs its n-th write batch; returns what undoes this."""
    pack_write = draws._pack_write
    packed = 0

    def packing(*args: Any) -> bytes:
        nonlocal packed
        packed += 1
        if packed == n:
            action()
        return pack_write(*args)

    monkeypatch.setattr(draws, "_pack_write", packing)
    return lambda: monkeypatch.setattr(draws, "_pack_write", pack_write)


async def test_a_draw_that_loses_its_lock_drops_its_connection(
    client: TestClient, redis: Redis, redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused with a batch still unanswered: the connection goes, so its late reply cannot
    be read by the pool's next user; the next attempt draws correctly."""
    monkeypatch.setattr(draws, "WRITE_BATCH", 100)
    drop, pid_of = await closed_lottery(client, redis, 1_000)
    spy = LinkSpy(monkeypatch)
    sync_redis = SyncRedis.from_url(redis_server.url)
    # As if the lock had expired and another process had taken it.
    restore = on_write(monkeypatch, 3, lambda: sync_redis.delete(drop_keys(drop.id).draw_lock))
    runner = client.app[SERVICES].draws
    with pytest.raises(draws.DrawRefused) as refused:
        await runner.draw(drop)
    assert refused.value.code == 3
    assert not spy.links[0].connection.is_connected
    sync_redis.close()

    restore()
    assert (await runner.draw(drop)).entries == 1_000
    await assert_drawn(redis, drop, pid_of)


async def test_a_draw_that_fails_while_writing_drops_its_connection(
    client: TestClient, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(draws, "WRITE_BATCH", 100)
    drop, pid_of = await closed_lottery(client, redis, 1_000)
    spy = LinkSpy(monkeypatch)

    def out_of_memory() -> None:
        raise MemoryError("out of memory")

    restore = on_write(monkeypatch, 4, out_of_memory)  # with batch 3 sent and unanswered
    runner = client.app[SERVICES].draws
    with pytest.raises(MemoryError):
        await runner.draw(drop)
    assert not spy.links[0].connection.is_connected
    # The failed attempt's lock stands until it expires; then a new attempt draws.
    await redis.pexpire(drop_keys(drop.id).draw_lock, 1)
    await asyncio.sleep(0.01)
    restore()
    assert (await runner.draw(drop)).entries == 1_000
    await assert_drawn(redis, drop, pid_of)


async def test_a_draw_cancelled_while_writing_drops_its_connection(
    client: TestClient, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(draws, "WRITE_BATCH", 100)
    drop, _ = await closed_lottery(client, redis, 1_000)
    spy = LinkSpy(monkeypatch)
    read = draws._Link.read
    reads = 0
    waiting = asyncio.Event()

    async def stall(link: draws._Link) -> Any:
        nonlocal reads
        reads += 1
        if reads == 5:  # the HSCAN replies, SCRIPT LOAD, a first draw_write: then stuck
            waiting.set()
            await asyncio.sleep(3600)
        return await read(link)

    monkeypatch.setattr(draws._Link, "read", stall)
    task = asyncio.create_task(client.app[SERVICES].draws.draw(drop))
    await waiting.wait()
    assert spy.links[0].unread > 0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not spy.links[0].connection.is_connected
