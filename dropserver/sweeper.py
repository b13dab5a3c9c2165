"""Expires unconfirmed holds, returning their units to stock.

Every server process runs one. That is safe: the expiry is one atomic script per drop that only
touches holds already due, so two sweepers racing just split the work. It also refreshes the
stock gauges that ops watch during a drop.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from dropserver.batcher import Batcher
from dropserver.config import SweeperSettings
from dropserver.drop_store import DropStore
from dropserver.keys import drop_keys, platform_drops
from dropserver.metrics import Metrics
from dropserver.orders import fresh_order_ids, order_script_keys
from dropserver.redis_clients import RedisClient
from dropserver.scripts import Script

log = logging.getLogger("dropserver.sweeper")
_IDS_PER_CALL = 64  # holds a queued drop may hand out per call; more calls follow if needed


class Sweeper:
    def __init__(
        self,
        redis: RedisClient,
        batcher: Batcher,
        script: Script,
        drops: DropStore,
        platforms: Iterable[str],
        metrics: Metrics,
        settings: SweeperSettings,
    ) -> None:
        self._redis = redis
        self._batcher = batcher
        self._script = script
        self._drops = drops
        self._platforms = list(platforms)
        self._metrics = metrics
        self._settings = settings

    async def sweep_drop(self, drop_id: str) -> int:
        """Expire every due hold of one drop, in bounded batches; the number expired."""
        keys = order_script_keys(drop_keys(drop_id))
        found = await self._drops.get(drop_id)
        queued = found is not None and found[0].has_draw
        batch = self._settings.batch
        total = 0
        while True:
            # A drop with a drawn queue passes each expired unit on: fresh ids for the holds.
            ids = fresh_order_ids(drop_id, _IDS_PER_CALL) if queued else []
            expired, more = await self._batcher.run(self._script, keys, [batch, *ids])
            total += int(expired)
            if not more:
                break
        if total:
            self._metrics.holds_expired.add(total, drop_id)
        return total

    async def sweep_once(self) -> int:
        total = 0
        for platform in self._platforms:
            members: set[bytes] = await self._redis.smembers(platform_drops(platform))  # type: ignore[assignment]
            for raw in members:
                drop_id = raw.decode()
                total += await self.sweep_drop(drop_id)
                await self._refresh_gauges(drop_id)
        return total

    async def _refresh_gauges(self, drop_id: str) -> None:
        fresh = await self._drops.fresh(drop_id)
        if fresh is None:
            return
        _, counts = fresh
        m = self._metrics
        m.stock_supply.labels(drop_id).set(counts.supply)
        m.stock_remaining.labels(drop_id).set(counts.remaining)
        m.stock_held.labels(drop_id).set(counts.held)
        m.stock_confirmed.labels(drop_id).set(counts.confirmed)
