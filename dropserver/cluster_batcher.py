"""Shared round trips on a Redis Cluster: one :class:`ScriptBatcher` per primary.

A script call's keys all carry one drop's hash tag, so its first key names the slot and the
slot the primary. Calls for drops on the same primary share its pipelines, exactly as on a
single Redis; calls for drops on different primaries travel in parallel.

When a slot moves (resharding, a failover), the old primary answers ``MOVED`` (or ``ASK`` /
``TRYAGAIN`` while the slot's keys migrate, ``CLUSTERDOWN`` while a failover settles). Such a
reply means the script did not run, so the call is routed again on a fresh view of the cluster
and sent again, after a short pause, for about 4 s of pauses; then the request gets 503. A
primary that cannot be reached at all (it died; its replica is being promoted) is treated the
same way once its batcher has given up reconnecting (which adds its own second or so per
attempt): every script is safe to send twice (each is idempotent
or deduplicated by an id the request chose), so resending to the new primary cannot allocate
twice. ``ASK`` is not followed to the importing primary (a script's keys must all be on one
side): the call waits for the move of the slot's keys to finish, so moving a drop's slot
pauses its sales meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    SlotNotCoveredError,
    TryAgainError,
)

from dropserver import redis_clients
from dropserver.batcher import RETRYABLE, Arg, ScriptBatcher
from dropserver.metrics import Metrics
from dropserver.scripts import Script

# MovedError is an AskError. A redirected call did not run: safe to send again.
REDIRECTED = (AskError, TryAgainError, ClusterDownError)
# What sends a call to the cluster's current view again: a redirection, or a primary that
# stayed unreachable through its batcher's reconnects.
REROUTED = (*REDIRECTED, *RETRYABLE)
# Pauses before each new attempt: enough for a slot's migration of a drop's keys or a
# failover's election (cluster-node-timeout is typically a few seconds; the last attempts wait).
REDIRECT_DELAYS = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
_MAX_ROUTES = 100_000  # first keys remembered with their primary (a drop's meta key, mostly)


class ClusterScriptBatcher:
    def __init__(
        self,
        cluster: RedisCluster,
        node_client: Callable[[str, int], Redis],
        make_batcher: Callable[[Redis], ScriptBatcher],
        metrics: Metrics | None = None,
    ) -> None:
        self._cluster = cluster
        self._metrics = metrics
        self._node_client = node_client
        self._make_batcher = make_batcher
        self._by_node: dict[str, ScriptBatcher] = {}  # "host:port" of a primary -> its batcher
        self._by_key: dict[str, ScriptBatcher] = {}
        self._refreshing: asyncio.Future[None] | None = None

    def run(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Awaitable[Any]:
        return self._run(script, keys, args)

    async def _run(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        for delay in REDIRECT_DELAYS:
            try:
                return await self._route(keys[0]).run(script, keys, args)
            except REROUTED as exc:
                redirected = exc
                if self._metrics and isinstance(exc, REDIRECTED):
                    self._metrics.redis_redirects.inc()
                await asyncio.sleep(delay)
                await self.refresh()
        # Not a script's refusal but storage that is not there yet: the request gets 503.
        raise ClusterError(
            f"the slot of {keys[0]} had no reachable primary after {len(REDIRECT_DELAYS)} attempts"
        ) from redirected

    def _route(self, key: str) -> ScriptBatcher:
        batcher = self._by_key.get(key)
        if batcher is None:
            try:
                node = self._cluster.get_node_from_key(key)
            except SlotNotCoveredError:
                node = None
            if node is None:  # the slot has no primary: a failover in progress
                raise ClusterDownError(f"no primary serves the slot of {key}")
            batcher = self._by_node.get(node.name)
            if batcher is None:
                client = self._node_client(node.host, int(node.port))
                batcher = self._by_node[node.name] = self._make_batcher(client)
            if len(self._by_key) >= _MAX_ROUTES:
                self._by_key.clear()
            self._by_key[key] = batcher
        return batcher

    async def refresh(self) -> None:
        """Learn the slots' primaries again (after a redirection). The calls redirected at
        the same moment share one refresh; a caller cancelled meanwhile does not cancel it."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._relearn())
        await asyncio.shield(self._refreshing)

    async def _relearn(self) -> None:
        await self._cluster.nodes_manager.initialize()
        self._by_key.clear()

    def client_for(self, key: str) -> Redis:
        return self._route(key).client_for(key)

    async def load(self, scripts: Sequence[Script]) -> None:
        """SCRIPT LOAD on every primary (a primary that loses its cache later, or one that
        joins, gets a script again from its own batcher on NOSCRIPT)."""
        await self._cluster.initialize()
        for script in scripts:
            await self._cluster.script_load(script.source)

    async def close(self) -> None:
        batchers = list(self._by_node.values())
        self._by_node.clear()
        self._by_key.clear()
        for batcher in batchers:
            await batcher.close()
            await redis_clients.close(batcher.client_for(""))
