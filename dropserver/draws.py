"""Running draws: lottery drops at their close, fair-start drops at the end of the window.

The draw reads the frozen entries in bounded batches (HSCAN), computes the order in a thread
(pure Python, deterministic: dropserver.lottery), writes it in bounded batches to a temporary
list, and publishes it with one short script. Redis is never busy for long at a time, and a
draw interrupted anywhere (the process killed) is simply run again: a new attempt takes the
lock once the old one's lifetime has passed, clears the half-written list and, the inputs being
the same, computes the same order.

The reads and writes travel on a connection of the draw's own, pipelined so that Redis works on
the next batch while Python handles the last one: one HSCAN ahead while a batch of entries is
decoded, one draw_write ahead while the next batch is built, replies read in order. A write is
safe to send again (it names the place it starts at, and lua/draw_write.lua skips a batch that
is already there), so a lost connection is reconnected and what was unanswered sent again. A
draw that stops with replies still unread drops that connection, so no later user of the pooled
connection reads them as its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, ResponseError

from dropserver.batcher import RETRY_DELAYS, RETRYABLE, Batcher, pack_evalsha
from dropserver.drop_store import DropStore
from dropserver.drops import Drop
from dropserver.keys import DropKeys, drop_keys, platform_drops
from dropserver.lottery import build_proof
from dropserver.metrics import Metrics
from dropserver.redis_clients import RedisClient
from dropserver.scripts import Script
from dropserver.sweeper import Sweeper

log = logging.getLogger("dropserver.draws")

READ_BATCH = 5_000  # entries per HSCAN call: ~5 ms of Redis time each
WRITE_BATCH = 2_000  # draw-order items per draw_write call: ~5 ms of Redis time each
LOCK_MS = 30_000  # a drawer that stops renewing for this long is presumed dead
REPLY_TIMEOUT = 10.0  # seconds for one reply on the draw's connection
_RESEND_ON = (*RETRYABLE, NoScriptError)
_RECEIPT_LEN = 64  # dropserver.lottery.receipt: 64 hex characters


class DrawRefused(Exception):
    def __init__(self, code: int, due_at: int = 0) -> None:
        super().__init__(code)
        self.code = code  # 1 too early, 2 already drawn, 3 busy, 8 no draw
        self.due_at = due_at


@dataclass(frozen=True, slots=True)
class DrawOutcome:
    drop_id: str
    entries: int
    seconds: float


class _Link:
    """A pooled connection used by one draw alone, with commands pipelined on it.

    ``send`` writes a command without waiting; ``read`` returns the reply of the oldest command
    not yet answered. Every command sent must be safe to send twice: after a connection error
    (or a NOSCRIPT reply), the connection is opened again, ``prepare`` run (SCRIPT LOAD) and
    every unanswered command sent again, in order.
    """

    def __init__(self, connection: AbstractConnection) -> None:
        self.connection = connection
        self.prepare: Callable[[], Awaitable[None]] | None = None
        self._unanswered: deque[bytes | list[bytes]] = deque()
        self._broken = False

    @property
    def unread(self) -> int:
        """Commands sent whose replies are not read yet."""
        return len(self._unanswered)

    async def send(self, packed: bytes | list[bytes]) -> None:
        self._unanswered.append(packed)
        if self._broken:
            return  # the next read reconnects and sends it
        try:
            await self.connection.send_packed_command(packed, False)
        except RETRYABLE:
            self._broken = True

    async def read(self) -> Any:
        """The oldest unanswered command's reply (bytes: decoding disabled)."""
        assert self._unanswered, "nothing sent"
        for delay in (*RETRY_DELAYS, None):
            try:
                if self._broken:
                    await self._resend()
                reply = await self._reply()
            except _RESEND_ON:
                if delay is None:
                    raise
                self._broken = True
                await self.connection.disconnect()
                await asyncio.sleep(delay)
                continue
            self._unanswered.popleft()
            return reply
        raise AssertionError("unreachable")

    async def _reply(self) -> Any:
        try:
            async with asyncio.timeout(REPLY_TIMEOUT):
                return await self.connection.read_response(disable_decoding=True, timeout=math.inf)
        except NoScriptError:
            raise  # the command did not run, nor will those behind it: sent again
        except ResponseError:
            self._unanswered.popleft()  # the command's own error: the rest is in step
            raise

    async def _resend(self) -> None:
        await self.connection.disconnect()  # sending connects again
        if self.prepare is not None:
            await self.prepare()
        for packed in self._unanswered:
            await self.connection.send_packed_command(packed, False)
        self._broken = False

    async def call(self, *args: str | int | bytes) -> Any:
        """One command, its reply awaited (nothing else may be unanswered)."""
        assert not self._unanswered
        await self.send(self.connection.pack_command(*args))
        return await self.read()


class DrawRunner:
    def __init__(
        self,
        redis: RedisClient,
        batcher: Batcher,
        scripts: dict[str, Script],
        drops: DropStore,
        sweeper: Sweeper,
        platforms: list[str],
        metrics: Metrics,
    ) -> None:
        self._redis = redis
        self._batcher = batcher
        self._scripts = scripts
        self._drops = drops
        self._sweeper = sweeper
        self._platforms = platforms
        self._metrics = metrics

    async def draw(self, drop: Drop) -> DrawOutcome:
        """Run the drop's draw now. Raises DrawRefused when it cannot run."""
        started = time.perf_counter()
        keys = drop_keys(drop.id)
        token = secrets.token_hex(16)
        reply = await self._batcher.run(
            self._scripts["draw_begin"],
            [keys.meta, keys.draw, keys.draw_lock, keys.draw_order_tmp, keys.ranks_tmp],
            [token, LOCK_MS],
        )
        if reply[0] != 0:
            raise DrawRefused(int(reply[0]), int(reply[1]) if len(reply) > 1 else 0)
        seed = bytes.fromhex(reply[1].decode())
        async with self._link(keys) as link:
            bulk_of = await self._read_entries(link, keys)
            # build_proof is looked up at call time (the benchmark wraps it to time it).
            proof = await asyncio.to_thread(
                build_proof, drop.id, seed, bulk_of, drop.supply, drop.beacon
            )
            order = proof.winners + proof.waitlist
            await self._write_order(link, keys, token, order, bulk_of)
        committed = await self._batcher.run(
            self._scripts["draw_commit"],
            [
                keys.meta,
                keys.draw,
                keys.draw_lock,
                keys.draw_order_tmp,
                keys.ranks_tmp,
                keys.draw_order,
                keys.ranks,
                keys.events,
                keys.late,
                keys.entries,
            ],
            [token, proof.entries_digest, len(order)],
        )
        if committed[0] != 0:
            raise DrawRefused(3)
        # Hand out the first holds now rather than at the sweeper's next tick.
        await self._sweeper.sweep_drop(drop.id)
        seconds = time.perf_counter() - started
        self._metrics.draw_duration.observe(seconds)
        log.info("drew %s: %d entries in %.2f s", drop.id, len(order), seconds)
        return DrawOutcome(drop.id, len(order), seconds)

    @contextlib.asynccontextmanager
    async def _link(self, keys: DropKeys) -> AsyncIterator[_Link]:
        """A connection of the draw's own (to the Redis holding the drop) for its bulk reads
        and writes, so they neither wait behind the batcher's pipelines nor make request
        scripts wait behind them."""
        pool = self._batcher.client_for(keys.meta).connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        link = _Link(connection)
        try:
            yield link
        finally:
            try:
                if link.unread:
                    # Stopped (failed, refused or cancelled) with replies on their way: the
                    # next user of this connection would read them as its own. Drop it.
                    await connection.disconnect()
            finally:
                await pool.release(connection)

    async def _read_entries(self, link: _Link, keys: DropKeys) -> dict[str, bytes]:
        """receipt -> its draw_write item (see _decode_entries) for every entry in the draw
        (for fair start: the window's arrivals).

        One HSCAN ahead: the next batch is asked for before this one is decoded. HSCAN may
        return an entry twice; keyed by receipt, it is counted once.
        """
        bulk_of: dict[str, bytes] = {}
        entries = keys.entries
        await link.send(link.connection.pack_command("HSCAN", entries, 0, "COUNT", READ_BATCH))
        while True:
            raw_cursor, flat = await link.read()
            cursor = int(raw_cursor)
            if cursor != 0:
                await link.send(
                    link.connection.pack_command("HSCAN", entries, cursor, "COUNT", READ_BATCH)
                )
            _decode_entries(flat, bulk_of)
            if cursor == 0:
                return bulk_of

    async def _write_order(
        self,
        link: _Link,
        keys: DropKeys,
        token: str,
        order: list[str],
        bulk_of: dict[str, bytes],
    ) -> None:
        """Write the order in batches: each batch is built while the one before is in Redis,
        and sent before that one's reply is read (at most two batches unanswered)."""
        script = self._scripts["draw_write"]
        write_keys = [keys.draw_lock, keys.draw_order_tmp, keys.ranks_tmp]

        async def load() -> None:  # when reconnected: Redis may have lost its script cache
            connection = link.connection
            await connection.send_packed_command(
                connection.pack_command("SCRIPT", "LOAD", script.source), False
            )
            async with asyncio.timeout(REPLY_TIMEOUT):
                await connection.read_response(disable_decoding=True, timeout=math.inf)

        await link.call("SCRIPT", "LOAD", script.source)
        link.prepare = load
        batch = WRITE_BATCH
        for start in range(0, len(order), batch):
            receipts = order[start : start + batch]
            head = (token, LOCK_MS, start)
            await link.send(_pack_write(script, write_keys, head, receipts, bulk_of))
            if link.unread > 1:
                _check_written(await link.read())
        while link.unread:
            _check_written(await link.read())

    async def draw_due(self) -> int:
        """Draw every drop whose draw is due and not done; the number drawn."""
        drawn = 0
        now = time.time() * 1000
        for platform in self._platforms:
            members: set[bytes] = await self._redis.smembers(platform_drops(platform))  # type: ignore[assignment]
            for raw in members:
                found = await self._drops.get(raw.decode())
                if found is None or not found[0].has_draw:
                    continue
                drop = found[0]
                if now < drop.draw_due_at:
                    continue  # (an admin who closes a lottery early draws it with /draw)
                if await self._redis.hget(found[1].draw, "state") == b"drawn":
                    continue
                try:
                    await self.draw(drop)
                    drawn += 1
                except DrawRefused:
                    continue  # too early by Redis's clock, or another process is drawing
        return drawn


def _decode_entries(flat: Sequence[bytes], bulk_of: dict[str, bytes]) -> None:
    """Add the draw's entries of one HSCAN reply (pid, value, pid, value, ...) to bulk_of:
    receipt -> the draw_write item "receipt pid" as a RESP bulk string, ready to send.

    A value is ``"<entry_id> <receipt> <sub> <early>"`` (lua/enter.lua, lua/purchase.lua); only
    early ones ("1") are in the draw. The sub may hold spaces, so the receipt is taken after
    the first space and the flag at the end, without splitting (a list per entry doubled the
    time). build_proof checks every receipt.
    """
    it = iter(flat)
    for pid, value in zip(it, it, strict=True):
        if value.endswith(b" 1"):
            start = value.index(b" ") + 1
            end = start + _RECEIPT_LEN
            if value[end : end + 1] != b" ":
                raise ValueError(f"entry of {pid!r} has no receipt: {value!r}")
            receipt = value[start:end]
            item = b"$%d\r\n%b %b\r\n" % (_RECEIPT_LEN + 1 + len(pid), receipt, pid)
            bulk_of[receipt.decode()] = item


def _pack_write(
    script: Script,
    keys: Sequence[str],
    head: Sequence[str | int],
    receipts: Sequence[str],
    bulk_of: dict[str, bytes],
) -> bytes:
    """``EVALSHA draw_write`` with the items of receipts, in RESP: the same bytes as
    pack_evalsha(script, keys, [*head, *items]). The items were framed when read, so this is
    one join: per-item Python work here would run while Redis and an AOF rewrite want the CPU.
    """
    packed = pack_evalsha(script, keys, head)
    # Only the array's length changes: "*<3 + keys + head>\r\n" becomes one with the items.
    length_end = packed.index(b"\r\n")
    total = 3 + len(keys) + len(head) + len(receipts)
    return b"*%d%b%b" % (total, packed[length_end:], b"".join(map(bulk_of.__getitem__, receipts)))


def _check_written(reply: list[Any]) -> None:
    code = int(reply[0])
    if code == 1:
        raise DrawRefused(3)  # the lock expired and another attempt took it
    if code not in (0, 2):  # 2: a batch sent again after a lost reply, already there
        raise RuntimeError(f"draw_write refused a batch: the order has {int(reply[1])} items")
