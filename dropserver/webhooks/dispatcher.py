"""Delivers the drops' event streams to the platforms' webhooks, from every process at once.

The state lives in Redis, not in a process: each drop's stream ``{drop:<id>}:events`` has a
consumer group (``keys.WEBHOOK_GROUP``), and every server process is one consumer of it.

- A new event goes to one process (``XREADGROUP ... >``), which posts it and acknowledges it
  (``XACK``) on a 2xx answer. Until then it stays pending in the group.
- A pending event whose last attempt is over (the timeout) and whose wait has passed (the
  backoff after that many attempts, ``retry_delay``) is due. Whichever process sees it first
  takes it over with ``XCLAIM``, whose minimum idle time is that same threshold, so two
  processes never take the same attempt: the second claim finds the event no longer idle.
  That also picks up the events of a process that died mid-delivery.
- After ``max_attempts`` failed attempts the event is acknowledged and counted as dropped; it
  stays in the stream, which remains the record a platform can always read.

So delivery is at least once (a process that dies after the receiver's 2xx but before the XACK
sends that event again); receivers drop duplicates by ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from redis.exceptions import ResponseError

from dropserver.config import PlatformSettings, WebhookSettings
from dropserver.keys import WEBHOOK_GROUP, drop_keys, platform_drops
from dropserver.metrics import Metrics
from dropserver.redis_clients import RedisClient
from dropserver.webhooks.messages import Signer, message_of

log = logging.getLogger("dropserver.webhooks")
_SCAN = 100  # pending events looked at per drop and round
# The longest a round goes on taking events while there are more: under the 5 s that a
# stopping app gives a background round to finish.
_ROUND_SECONDS = 4.0
# Every start of a process adds a consumer to each group. One with nothing pending that has not
# read for an hour is a process gone (a live one reads every round): deleting it loses nothing.
_TIDY_EVERY_SECONDS = 300.0
_GONE_AFTER_MS = 3_600_000


def retry_delay(attempts: int, first: float, cap: float) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: doubling from ``first``."""
    return min(first * (1 << min(max(attempts - 1, 0), 30)), cap)


@dataclass(frozen=True, slots=True)
class _Target:
    platform: str
    url: str
    signer: Signer


@dataclass(frozen=True, slots=True)
class _Stream:
    target: _Target
    drop_id: str
    key: str


class WebhookDispatcher:
    def __init__(
        self,
        redis: RedisClient,
        platforms: Mapping[str, PlatformSettings],
        settings: WebhookSettings,
        metrics: Metrics,
        *,
        consumer: str | None = None,
    ) -> None:
        self._redis = redis
        self._settings = settings
        self._metrics = metrics
        self._targets = [
            _Target(p.id, p.webhook.url, Signer(p.webhook.secret))
            for p in platforms.values()
            if p.webhook is not None
        ]
        # Unique per process and start: a restarted process must not inherit the pending
        # events of its previous life by name (they are claimed like any other process's).
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._grouped: set[str] = set()  # stream keys whose group this process made sure of
        self._in_flight: set[tuple[str, bytes]] = set()  # (stream key, entry id)
        self._tasks: set[asyncio.Task[None]] = set()
        self._freed = asyncio.Event()  # set when a delivery ends
        self._turn = 0
        self._tidied_at = float("-inf")  # loop time of the last removal of gone consumers
        self._session: aiohttp.ClientSession | None = None
        self._timeout_ms = int(settings.timeout_seconds * 1000)

    @property
    def enabled(self) -> bool:
        return bool(self._targets)

    def due_after_ms(self, attempts: int) -> int:
        """Idle time after which an event with ``attempts`` deliveries is due again: its last
        attempt is surely over (the timeout), and its backoff has passed."""
        s = self._settings
        return self._timeout_ms + int(
            retry_delay(attempts, s.retry_seconds, s.retry_cap_seconds) * 1000
        )

    # --- one round -------------------------------------------------------------------------

    async def run_once(self) -> None:
        """Start delivering what is new or due. While there is more than the free slots hold,
        go on as slots free up, for up to ``_ROUND_SECONDS``; then return (the deliveries
        still in flight go on). A backlog is thus worked through without the pause between
        rounds, and the round still ends often enough for a shutdown to stop it."""
        if not self._targets:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(self._settings.poll_seconds, _ROUND_SECONDS)
        streams = await self._streams()
        if not streams:
            return
        await self._ensure_groups(streams)
        if loop.time() - self._tidied_at >= _TIDY_EVERY_SECONDS:
            self._tidied_at = loop.time()
            await self._remove_gone_consumers(streams)
        # Owed events first (their wait is counted in seconds: once a round is enough), then
        # new ones as long as there are some and slots free up.
        await self._take_due(streams)
        while loop.time() < deadline:
            if self._room() == 0:  # wait for a slot (no await since the check: none is missed)
                self._freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._freed.wait(), max(deadline - loop.time(), 0))
                continue
            if not await self._read_new(streams):
                return

    def _room(self) -> int:
        # An event is only taken when a slot is free, so that its attempt starts at once: the
        # idle time of a pending event must mean "no attempt running", or another process
        # would take over an event that merely waited here for a slot.
        return max(self._settings.concurrency - len(self._in_flight), 0)

    async def _streams(self) -> list[_Stream]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for target in self._targets:
                pipe.smembers(platform_drops(target.platform))
            members: list[set[bytes]] = await pipe.execute()
        return [
            _Stream(target, drop_id, drop_keys(drop_id).events)
            for target, ids in zip(self._targets, members, strict=True)
            for drop_id in sorted(raw.decode() for raw in ids)
        ]

    async def _ensure_groups(self, streams: list[_Stream]) -> None:
        missing = [s for s in streams if s.key not in self._grouped]
        if not missing:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for s in missing:
                # From the stream's start: events made before any process watched the drop
                # (or before the platform set a webhook) are delivered too.
                pipe.xgroup_create(s.key, WEBHOOK_GROUP, id="0", mkstream=True)
            replies = await pipe.execute(raise_on_error=False)
        for s, reply in zip(missing, replies, strict=True):
            if isinstance(reply, ResponseError) and "BUSYGROUP" not in str(reply):
                log.warning("webhooks: cannot create the group of %s: %s", s.key, reply)
                continue
            self._grouped.add(s.key)

    async def _read_new(self, streams: list[_Stream]) -> int:
        """Take new events, at most as many as there are free slots; the number taken."""
        room = self._room()
        # Rotating which drops come first, so that a busy drop does not starve the others.
        self._turn = (self._turn + 1) % len(streams)
        chosen = (streams[self._turn :] + streams[: self._turn])[:room]
        async with self._redis.pipeline(transaction=False) as pipe:
            for s in chosen:
                pipe.xreadgroup(
                    WEBHOOK_GROUP, self.consumer, {s.key: ">"}, count=room // len(chosen)
                )
            replies = await pipe.execute(raise_on_error=False)
        started = 0
        for s, reply in self._answered(chosen, replies):
            for _key, entries in reply or ():
                for entry_id, fields in entries:
                    self._start(s, entry_id, fields, attempt=1)
                    started += 1
        return started

    async def _take_due(self, streams: list[_Stream]) -> int:
        """Take over pending events whose wait has passed, while slots are free; the number
        taken."""
        if not self._room():
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for s in streams:
                pipe.xpending_range(
                    s.key, WEBHOOK_GROUP, min="-", max="+", count=_SCAN,
                    idle=self.due_after_ms(1),
                )  # fmt: skip
            replies = await pipe.execute(raise_on_error=False)
        due: list[tuple[_Stream, bytes, int, int]] = []  # stream, entry, attempts, threshold
        room = self._room()
        for s, reply in self._answered(streams, replies):
            for pending in reply:
                entry_id: bytes = pending["message_id"]
                attempts: int = pending["times_delivered"]
                threshold = self.due_after_ms(attempts)
                idle: int = pending["time_since_delivered"]
                if (s.key, entry_id) in self._in_flight or idle < threshold:
                    continue
                if attempts >= self._settings.max_attempts:
                    await self._give_up_claimed(s, entry_id, threshold)
                elif len(due) < room:
                    due.append((s, entry_id, attempts, threshold))
        if not due:
            return 0
        # One round trip for all the claims. The claim's minimum idle time is the threshold
        # itself: of two processes that both saw an event due, only the first gets it.
        async with self._redis.pipeline(transaction=False) as pipe:
            for s, entry_id, _, threshold in due:
                pipe.xclaim(s.key, WEBHOOK_GROUP, self.consumer, threshold, [entry_id])
            claims = await pipe.execute(raise_on_error=False)
        started = 0
        for (s, _, attempts, _), claimed in zip(due, claims, strict=True):
            if self._failed(s, claimed):
                continue
            for claimed_id, fields in claimed:
                if fields is None:  # trimmed from the stream: nothing left to send
                    await self._redis.xack(s.key, WEBHOOK_GROUP, claimed_id)
                else:
                    self._start(s, claimed_id, fields, attempt=attempts + 1)
                    started += 1
        return started

    async def _give_up_claimed(self, s: _Stream, entry_id: bytes, threshold: int) -> None:
        """An event out of attempts whose last consumer is gone: take it, then drop it."""
        claimed = await self._redis.xclaim(
            s.key, WEBHOOK_GROUP, self.consumer, threshold, [entry_id], justid=True
        )
        if claimed:
            await self._drop(s, entry_id)

    async def _remove_gone_consumers(self, streams: list[_Stream]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for s in streams:
                pipe.xinfo_consumers(s.key, WEBHOOK_GROUP)
            replies = await pipe.execute(raise_on_error=False)
        gone = [
            (s.key, consumer["name"])
            for s, reply in zip(streams, replies, strict=True)
            if not isinstance(reply, Exception)
            for consumer in reply
            if consumer["pending"] == 0 and consumer["idle"] > _GONE_AFTER_MS
        ]
        if gone:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, name in gone:
                    pipe.xgroup_delconsumer(key, WEBHOOK_GROUP, name)
                await pipe.execute(raise_on_error=False)

    def _answered(
        self, streams: list[_Stream], replies: list[Any]
    ) -> Iterator[tuple[_Stream, Any]]:
        """Each stream with its reply from a pipeline, skipping the failed ones."""
        for s, reply in zip(streams, replies, strict=True):
            if not self._failed(s, reply):
                yield s, reply

    def _failed(self, s: _Stream, reply: Any) -> bool:
        """Whether a stream's reply from a pipeline is an error. NOGROUP means Redis lost the
        group (a flush, a restart without persistence): it is made again in the next round."""
        if not isinstance(reply, Exception):
            return False
        if "NOGROUP" in str(reply):
            self._grouped.discard(s.key)
        else:
            log.warning("webhooks: reading %s failed: %s", s.key, reply)
        return True

    # --- one delivery ------------------------------------------------------------------------

    def _start(self, s: _Stream, entry_id: bytes, fields: dict[bytes, bytes], attempt: int) -> None:
        self._in_flight.add((s.key, entry_id))
        task = asyncio.get_running_loop().create_task(self._deliver(s, entry_id, fields, attempt))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self, s: _Stream, entry_id: bytes, fields: dict[bytes, bytes], attempt: int
    ) -> None:
        try:
            ok = await self._post(s, entry_id, fields, attempt)
            if ok:
                await self._redis.xack(s.key, WEBHOOK_GROUP, entry_id)
            elif attempt >= self._settings.max_attempts:
                await self._drop(s, entry_id)
        except Exception:  # Redis away: the event stays pending and is retried when due
            log.exception("webhooks: delivering %s %s failed", s.key, entry_id)
        finally:
            self._in_flight.discard((s.key, entry_id))
            self._freed.set()

    async def _post(
        self, s: _Stream, entry_id: bytes, fields: dict[bytes, bytes], attempt: int
    ) -> bool:
        message = message_of(s.drop_id, entry_id.decode(), fields)
        headers = s.target.signer.headers(message, time.time())
        started = time.perf_counter()
        outcome, status = "failed", "error"
        try:
            async with self._client().post(
                s.target.url, data=message.body, headers=headers, allow_redirects=False
            ) as response:
                status = str(response.status)
                if 200 <= response.status < 300:
                    outcome = "delivered"
        except (aiohttp.ClientError, TimeoutError) as exc:
            status = type(exc).__name__
        m = self._metrics
        m.webhook_seconds.labels(s.target.platform).observe(time.perf_counter() - started)
        m.webhook_attempts.labels(s.target.platform, outcome).inc()
        if outcome != "delivered":
            log.warning(
                "webhooks: %s answered %s to %s (attempt %d of %d)",
                s.target.url, status, message.id, attempt, self._settings.max_attempts,
            )  # fmt: skip
        return outcome == "delivered"

    async def _drop(self, s: _Stream, entry_id: bytes) -> None:
        await self._redis.xack(s.key, WEBHOOK_GROUP, entry_id)
        self._metrics.webhook_attempts.labels(s.target.platform, "dropped").inc()
        log.error(
            "webhooks: gave up on %s:%s after %d attempts (it stays in %s)",
            s.drop_id, entry_id.decode(), self._settings.max_attempts, s.key,
        )  # fmt: skip

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._settings.timeout_seconds),
                headers={"User-Agent": "dropserver-webhooks"},
            )
        return self._session

    # --- lifetime ----------------------------------------------------------------------------

    async def close(self, grace: float = 5.0) -> None:
        """Let deliveries in flight finish (up to ``grace`` seconds), then stop. What is cut
        off stays pending and another process, or this one's successor, delivers it."""
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._leave()

    async def _leave(self) -> None:
        """Remove this process's consumer from the groups where it has nothing pending (what
        it has pending stays, for the others to take over)."""
        keys = sorted(self._grouped)
        if not keys:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.xpending_range(key, WEBHOOK_GROUP, "-", "+", 1, self.consumer)
                owed = await pipe.execute(raise_on_error=False)
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, mine in zip(keys, owed, strict=True):
                    if mine == []:
                        pipe.xgroup_delconsumer(key, WEBHOOK_GROUP, self.consumer)
                await pipe.execute(raise_on_error=False)
        except Exception:  # Redis away at shutdown: the tidying of a later round removes it
            log.warning("webhooks: could not leave the consumer groups", exc_info=True)

    @property
    def in_flight(self) -> int:
        """Deliveries this process has started and not finished."""
        return len(self._in_flight)
