"""Running draws: lottery drops at their close, fair-start drops at the end of the window.

The draw reads the frozen entries in bounded batches (HSCAN), computes the order in a thread
(pure Python, deterministic: dropserver.lottery), writes it in bounded batches to a temporary
list, and publishes it with one short script. Redis is never busy for long at a time, and a
draw interrupted anywhere (the process killed) is simply run again: a new attempt takes the
lock once the old one's lifetime has passed, clears the half-written list and, the inputs being
the same, computes the same order.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from dropserver.batcher import ScriptBatcher
from dropserver.drop_store import DropStore
from dropserver.drops import Drop
from dropserver.keys import DropKeys, drop_keys, platform_drops
from dropserver.lottery import build_proof
from dropserver.metrics import Metrics
from dropserver.scripts import Script
from dropserver.sweeper import Sweeper

log = logging.getLogger("dropserver.draws")

READ_BATCH = 5_000  # entries per HSCAN call
WRITE_BATCH = 2_500  # draw-order items per draw_write call: ~20 ms of Redis time each
LOCK_MS = 30_000  # a drawer that stops renewing for this long is presumed dead


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


class DrawRunner:
    def __init__(
        self,
        redis: Redis,
        batcher: ScriptBatcher,
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
        pid_of = await self._read_entries(keys)
        proof = await asyncio.to_thread(
            build_proof, drop.id, seed, pid_of, drop.supply, drop.beacon
        )
        order = proof.winners + proof.waitlist
        for start in range(0, len(order), WRITE_BATCH):
            batch = order[start : start + WRITE_BATCH]
            pids = [pid_of[receipt] for receipt in batch]
            pairs: list[str | int] = [token, LOCK_MS, len(batch)]
            pairs += [f"{receipt} {pid}" for receipt, pid in zip(batch, pids, strict=True)]
            for rank, pid in enumerate(pids, start):
                pairs += (pid, rank)
            written = await self._batcher.run(
                self._scripts["draw_write"],
                [keys.draw_lock, keys.draw_order_tmp, keys.ranks_tmp],
                pairs,
            )
            if written[0] != 0:
                raise DrawRefused(3)
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

    async def _read_entries(self, keys: DropKeys) -> dict[str, str]:
        """receipt -> pid of every entry in the draw (for fair start: the window's arrivals)."""
        pid_of: dict[str, str] = {}
        cursor = 0
        while True:
            cursor, batch = await self._redis.hscan(keys.entries, cursor, count=READ_BATCH)
            assert isinstance(batch, dict)
            for pid, value in batch.items():
                assert isinstance(pid, bytes) and isinstance(value, bytes)
                _entry_id, receipt, _sub, early = value.decode().split(" ")
                if early == "1":
                    pid_of[receipt] = pid.decode()
            if cursor == 0:
                return pid_of

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
