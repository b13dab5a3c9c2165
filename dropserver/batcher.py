"""Shared round trips: concurrent script calls in one process travel in one pipeline.

A request hands its EVALSHA to the batcher and awaits a future. While a pipeline is on the wire,
new calls queue up; when it returns, everything queued goes out in the next one. Under light load
a call costs one round trip as before; under heavy load one write carries up to ``max_batch``
calls ("natural batching"), which is what lets one process keep Redis busy. ``max_in_flight``
writes may await their replies at once, each on its own connection.

The script cache of Redis is volatile (a restart or failover empties it). A call answered with
NOSCRIPT did not run, so it is safe to load the script and send it again.

With ``wait_replicas`` set, every batch ends with ``WAIT <replicas> <timeout>`` in the same
write: Redis answers it once that many replicas have the batch's writes (or the timeout
passes), so a reply is only handed to its caller once it would survive a failover to a replica.
That costs no round trip of its own, only the replicas' lag. When too few replicas confirm in
time, every call of the batch fails with :class:`NotReplicated` (the server answers 503): the
writes are on the primary, but nobody is told they are safe. A retry with the same
Idempotency-Key gets the stored answer once it is.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError, NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dropserver.metrics import Metrics
from dropserver.scripts import Script

Arg = str | int | bytes
# The connection errors worth a reconnect and a resend (every script is safe to send again),
# and the pauses before each new attempt. The draw's own connection (draws.py) uses them too.
RETRYABLE = (ConnectionError, RedisTimeoutError, OSError)  # OSError: TimeoutError too
RETRY_DELAYS = (0.01, 0.05, 0.1, 0.25, 0.5)
_BATCH_TIMEOUT = 10.0  # seconds for Redis to answer a whole batch
_CONNECTION_ATTEMPTS = len(RETRY_DELAYS) + 1
_Call = tuple[Script, Sequence[str], Sequence[Arg], asyncio.Future[Any]]
# hiredis's stub types the command as a tuple of one element and leaves the result untyped.
_pack_command: Callable[[tuple[Arg, ...]], bytes] = hiredis.pack_command  # type: ignore[assignment]


class NotReplicated(RedisError):
    """Fewer replicas than ``wait_replicas`` confirmed a batch's writes in time."""


def pack_evalsha(script: Script, keys: Sequence[str], args: Sequence[Arg]) -> bytes:
    """``EVALSHA sha numkeys key... arg...`` in RESP: an array of bulk strings.

    hiredis packs it in C: half the time of the Python packer it replaced (2.6 against 5.0 us
    for a purchase's 35 arguments, timeit), which in turn had replaced redis-py's general
    ``pack_command`` (a tenth of a purchase's CPU).
    """
    return _pack_command(("EVALSHA", script.sha, len(keys), *keys, *args))


class Batcher(Protocol):
    """What the rest of the server calls scripts through: :class:`ScriptBatcher` on one Redis,
    :class:`dropserver.cluster_batcher.ClusterScriptBatcher` on a Redis Cluster."""

    def run(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Awaitable[Any]:
        """The script's reply. ``keys[0]`` names the slot: every key of a call shares it."""
        ...

    async def load(self, scripts: Sequence[Script]) -> None: ...

    def client_for(self, key: str) -> Redis:
        """The client of the Redis that holds ``key`` (for a connection of one's own)."""
        ...

    async def close(self) -> None: ...


class ScriptBatcher:
    def __init__(
        self,
        client: Redis,
        *,
        max_batch: int = 64,
        max_in_flight: int = 1,
        pipelining: bool = True,
        metrics: Metrics | None = None,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 1000,
    ) -> None:
        self._client = client
        self._wait_replicas = wait_replicas
        self._wait_timeout_ms = wait_timeout_ms
        self._wait = (
            _pack_command(("WAIT", wait_replicas, wait_timeout_ms)) if wait_replicas else b""
        )
        self._metrics = metrics
        self._pipelining = pipelining
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._queue: list[_Call] = []
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        # One connection per batch in flight, taken from the pool once and kept, rather than
        # borrowed for every batch (the pool's lock and bookkeeping showed in profiles). A
        # flush takes an idle one; there is always one, as flushes never outnumber them.
        self._idle: list[AbstractConnection] = []
        self._lanes: list[AbstractConnection] = []

    def run(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Awaitable[Any]:
        """The script's reply, to await: the call is queued at once, and the awaitable is the
        batch's future itself (a coroutine around it would be one more frame to create and
        to resume through on every reply)."""
        if not self._pipelining:
            return self._run_alone(script, keys, args)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((script, keys, args, future))
        if self._in_flight < self._max_in_flight:
            self._start_flush()
        return future

    async def _run_alone(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """One EVALSHA per call on its own pooled connection: the baseline pipelining beats
        (kept as a switch so the benchmark can measure both in one run)."""
        try:
            return await self._evalsha_alone(script, keys, args)
        except NoScriptError:
            await self.load([script])
            return await self._evalsha_alone(script, keys, args)

    async def _evalsha_alone(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        if not self._wait_replicas:
            return await self._client.evalsha(script.sha, len(keys), *keys, *args)
        async with self._client.pipeline(transaction=False) as pipe:  # WAIT: same connection
            pipe.evalsha(script.sha, len(keys), *keys, *args)
            pipe.wait(self._wait_replicas, self._wait_timeout_ms)
            reply, confirmed = await pipe.execute()
        self._check_replicated(confirmed)
        return reply

    def _check_replicated(self, confirmed: Any) -> None:
        if isinstance(confirmed, Exception) or int(confirmed) < self._wait_replicas:
            raise NotReplicated(
                f"{confirmed} of {self._wait_replicas} replicas confirmed the writes within"
                f" {self._wait_timeout_ms} ms"
            )

    async def load(self, scripts: Sequence[Script]) -> None:
        """SCRIPT LOAD each script (at start-up, and again after Redis lost its cache)."""
        for script in scripts:
            await self._client.script_load(script.source)

    def client_for(self, key: str) -> Redis:
        return self._client

    def _start_flush(self) -> None:
        self._in_flight += 1
        task = asyncio.get_running_loop().create_task(self._flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        # No explicit yield first: a new task's first step already runs after the callbacks
        # that were ready when it was created, so the requests of this loop iteration are in
        # the queue by then.
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._send(batch)
        finally:
            self._in_flight -= 1

    async def _send(self, batch: list[_Call]) -> None:
        started = time.perf_counter()
        try:
            replies = await self._execute(batch)
        except Exception as exc:  # the connection failed: every call in the batch fails alike
            if self._metrics:
                self._metrics.redis_errors.inc()
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        if self._metrics:
            self._metrics.redis_batch_size.observe(len(batch))
            self._metrics.redis_roundtrip.observe(time.perf_counter() - started)
        retry: list[_Call] = []
        for call, reply in zip(batch, replies, strict=True):
            future = call[3]
            if future.done():  # the caller was cancelled
                continue
            if isinstance(reply, NoScriptError):
                retry.append(call)
            elif isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)
        if retry:
            try:
                await self.load(list({c[0].sha: c[0] for c in retry}.values()))
            except Exception as exc:
                for *_, future in retry:
                    if not future.done():
                        future.set_exception(exc)
                return
            await self._send(retry)

    async def _lane(self) -> AbstractConnection:
        if self._idle:
            return self._idle.pop()
        connection: AbstractConnection = await self._client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        self._lanes.append(connection)
        return connection

    async def _execute(self, batch: list[_Call]) -> list[Any]:
        """Send the batch in one write and read every reply, errors in place.

        This talks to a connection directly instead of through redis-py's Pipeline: the
        Pipeline's per-command bookkeeping (response callbacks, option dicts) cost more CPU
        than the Lua scripts themselves. Replies are still parsed by redis-py (hiredis). A
        connection error is retried after reconnecting (every script is retry-safe).
        """
        packed = b"".join([pack_evalsha(script, keys, args) for script, keys, args, _ in batch])
        connection = await self._lane()
        waits = 1 if self._wait else 0
        try:
            for attempt in range(_CONNECTION_ATTEMPTS):
                try:
                    await connection.send_packed_command(packed + self._wait, False)
                    replies: list[Any] = []
                    # One deadline for the whole batch, not a timer per reply (which cost more
                    # than parsing the reply).
                    async with asyncio.timeout(_BATCH_TIMEOUT):
                        for _ in range(len(batch) + waits):
                            try:
                                replies.append(await connection.read_response(timeout=math.inf))
                            except ResponseError as exc:  # this call's error; still in sync
                                replies.append(exc)
                    if waits:
                        self._check_replicated(replies.pop())
                    return replies
                except RETRYABLE:
                    await connection.disconnect()
                    if attempt == _CONNECTION_ATTEMPTS - 1:
                        raise
                    await asyncio.sleep(RETRY_DELAYS[attempt])
            raise AssertionError("unreachable")
        except BaseException:
            # Cancelled (or failed) mid-batch: replies may still be on their way, and the next
            # batch on this connection would read them as its own. Drop the connection (the
            # next batch reconnects).
            await connection.disconnect()
            raise
        finally:
            self._idle.append(connection)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for connection in self._lanes:
            await self._client.connection_pool.release(connection)
        self._idle.clear()
        self._lanes.clear()
