"""Compacting the embedded Redis's append-only file between sales, not during them.

Left to itself, Redis rewrites its AOF whenever the file has doubled since the last rewrite
(``auto-aof-rewrite-percentage 100``, from 64 MB). A sale writes about 1.2 KB of AOF per
purchase, so a busy drop sets that off every few seconds: each rewrite forks Redis and
compresses the whole dataset while buyers wait. On one machine with the server, that fork
takes cores from the sale itself (BENCHMARKS.md: purchases/s a fifth lower with Redis's own
rewrites than without). So the embedded Redis runs with its automatic rewrites off, and the
process that owns it asks for a rewrite here once the file has doubled *and* the writes have
quietened: between sales. A sale that goes on so long that the file grows eightfold (and past
1 GiB) gets its rewrite anyway, so the disk never fills.

An external Redis is its operator's to configure (deploy/README.md says what to consider).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

log = logging.getLogger("dropserver.aof")

MIN_SIZE = 64 << 20  # Redis's auto-aof-rewrite-min-size: smaller files are not worth it
QUIET_BYTES_PER_SECOND = 64 << 10  # about 50 purchases a second: no sale is running
OVERDUE_FACTOR = 8  # grown this many times over its last rewrite (and past OVERDUE_SIZE)...
OVERDUE_SIZE = 1 << 30  # ...the file is rewritten even during a sale


@dataclass(frozen=True, slots=True)
class AofState:
    """What INFO persistence says of the AOF, at one moment."""

    enabled: bool
    busy: bool  # a rewrite in progress or scheduled
    current_size: int
    base_size: int  # the size after the last rewrite (or at start)

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> AofState:
        return cls(
            enabled=bool(info.get("aof_enabled")),
            busy=bool(info.get("aof_rewrite_in_progress") or info.get("aof_rewrite_scheduled")),
            current_size=int(info.get("aof_current_size", 0)),
            base_size=int(info.get("aof_base_size", 0)),
        )


@dataclass(frozen=True, slots=True)
class AofPolicy:
    min_size: int = MIN_SIZE
    quiet_bytes_per_second: float = QUIET_BYTES_PER_SECOND
    overdue_factor: int = OVERDUE_FACTOR
    overdue_size: int = OVERDUE_SIZE

    def should_rewrite(self, state: AofState, growth_per_second: float | None) -> bool:
        """Whether to ask for a rewrite now. ``growth_per_second`` is how fast the file grew
        since the last look (None on the first look: no rate yet, so only an overdue file
        qualifies)."""
        if not state.enabled or state.busy:
            return False
        size, base = state.current_size, max(state.base_size, 1)
        if size >= max(self.overdue_size, self.overdue_factor * base):
            return True
        doubled = size >= self.min_size and size >= 2 * base
        quiet = growth_per_second is not None and growth_per_second < self.quiet_bytes_per_second
        return doubled and quiet


class AofCompactor:
    """Looks at the AOF once per round (one INFO call); asks for a rewrite when the policy
    says so. Run it in the one process that owns the Redis."""

    def __init__(self, redis: Redis, policy: AofPolicy = AofPolicy()) -> None:
        self._redis = redis
        self._policy = policy
        self._last: tuple[float, int] | None = None  # (monotonic time, AOF size) last round
        self.rewrites = 0  # rewrites this compactor asked for

    async def round(self) -> None:
        info = await self._redis.info("persistence")
        state = AofState.from_info(info)
        now = time.monotonic()
        growth = None
        if self._last is not None and now > self._last[0]:
            growth = max(0, state.current_size - self._last[1]) / (now - self._last[0])
        self._last = (now, state.current_size)
        if not self._policy.should_rewrite(state, growth):
            return
        await self._redis.bgrewriteaof()
        self.rewrites += 1
        log.info(
            "AOF rewrite started: %d bytes, %d after the last rewrite",
            state.current_size,
            state.base_size,
        )
