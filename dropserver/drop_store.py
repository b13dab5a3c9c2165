"""Drops in Redis: create, read (with a cache of the immutable configuration), list, close."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from dropserver import rehearsal
from dropserver.batcher import Batcher
from dropserver.drops import Drop
from dropserver.keys import DropKeys, drop_keys, platform_drops
from dropserver.lottery import commitment, new_seed
from dropserver.redis_clients import RedisClient
from dropserver.scripts import Script


@dataclass(frozen=True, slots=True)
class Counts:
    supply: int
    held: int
    confirmed: int
    allocated: int  # serials handed out and not returned: must equal held + confirmed
    closed_at: int
    now: int  # Redis's clock when these were read (ms)
    rejections: dict[str, int]
    raw: dict[str, int]

    @property
    def remaining(self) -> int:
        return self.supply - self.held - self.confirmed


class DropStore:
    def __init__(
        self,
        redis: RedisClient,
        batcher: Batcher,
        scripts: dict[str, Script],
        cache_size: int = 10_000,
        rehearsal_seed: bytes | None = None,
    ) -> None:
        self._rehearsal_seed = rehearsal_seed
        self._redis = redis
        self._batcher = batcher
        self._scripts = scripts
        self._cache: OrderedDict[str, tuple[Drop, DropKeys]] = OrderedDict()
        self._cache_size = cache_size

    async def create(self, drop: Drop, create_fingerprint: str = "") -> Drop | None:
        """Store a new drop; None when the id is taken. ``create_fingerprint`` identifies the
        request that created it, so an idempotent retry can be told from a clash."""
        keys = drop_keys(drop.id)
        # Listed first: a crash between the two steps leaves an id in the listing whose drop
        # does not exist (skipped when listing), never a drop the platform cannot see.
        await self._redis.sadd(platform_drops(drop.platform), drop.id)
        if drop.has_draw:
            # The seed stays secret until the draw; its commitment is public from now on.
            seed = (
                new_seed()
                if self._rehearsal_seed is None
                else rehearsal.draw_seed(self._rehearsal_seed, drop.id)
            )
            drop = replace(drop, commitment=commitment(seed))
        meta = {**drop.to_meta(), "create_fp": create_fingerprint}
        if drop.has_draw:
            meta["seed"] = seed.hex()
        args: list[str | int] = [x for pair in meta.items() for x in pair]
        reply = await self._batcher.run(
            self._scripts["create_drop"], [keys.meta, keys.counts], args
        )
        if reply[0] != 1:
            return None
        return replace(drop, created_at=int(reply[1]))

    def cached(self, drop_id: str) -> tuple[Drop, DropKeys] | None:
        """:meth:`get` without a round trip: the drop if this process has read it before."""
        return self._cache.get(drop_id)

    async def get(self, drop_id: str) -> tuple[Drop, DropKeys] | None:
        """The drop's configuration and keys. Cached: a drop's configuration never changes
        (``closed_at`` may, so scripts read it from Redis themselves)."""
        hit = self._cache.get(drop_id)
        if hit is not None:
            return hit
        keys = drop_keys(drop_id)
        meta: dict[bytes, bytes] = await self._redis.hgetall(keys.meta)  # type: ignore[assignment]
        if not meta:
            return None
        entry = (Drop.from_meta(meta), keys)
        self._cache[drop_id] = entry
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return entry

    async def fresh(self, drop_id: str) -> tuple[Drop, Counts] | None:
        """The drop with its live counters, read in one round trip."""
        entry = await self.get(drop_id)
        if entry is None:
            return None
        drop, keys = entry
        closed_at, flat, free, sec, usec = await self._batcher.run(
            self._scripts["drop_counts"], [keys.meta, keys.counts, keys.free_serials], []
        )
        counts = dict(zip(flat[::2], flat[1::2], strict=True))
        now = int(sec) * 1000 + int(usec) // 1000
        return replace(drop, closed_at=int(closed_at or 0)), _counts(
            drop, counts, free, closed_at, now
        )

    async def create_fingerprint(self, drop_id: str) -> str | None:
        raw: bytes | None = await self._redis.hget(drop_keys(drop_id).meta, "create_fp")  # type: ignore[assignment]
        return raw.decode() if raw else None

    async def of_platform(self, platform: str) -> list[tuple[Drop, Counts]]:
        members: set[bytes] = await self._redis.smembers(platform_drops(platform))  # type: ignore[assignment]
        ids = sorted(m.decode() for m in members)
        drops = []
        for drop_id in ids:
            fresh = await self.fresh(drop_id)
            if fresh is not None:
                drops.append(fresh)
        return drops

    async def close(self, drop_id: str) -> int | None:
        """Close now; the closing time (ms), or None for an unknown drop."""
        keys = drop_keys(drop_id)
        reply = await self._batcher.run(self._scripts["close_drop"], [keys.meta, keys.events], [])
        return None if reply[0] == 0 else int(reply[1])

    def cached_ids(self) -> list[str]:
        return list(self._cache)


def _counts(drop: Drop, counts: dict[bytes, bytes], free: int, closed_at: Any, now: int) -> Counts:
    raw = {k.decode(): int(v) for k, v in counts.items()}
    rejections = {k[4:]: v for k, v in raw.items() if k.startswith("rej:")}
    return Counts(
        supply=drop.supply,
        held=raw.get("held", 0),
        confirmed=raw.get("confirmed", 0),
        allocated=raw.get("next_serial", 0) - free,
        closed_at=int(closed_at or 0),
        now=now,
        rejections=rejections,
        raw=raw,
    )
