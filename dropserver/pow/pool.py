"""A stock of pre-derived puzzles per difficulty level, refilled in background workers.

Deterministic-mode challenges need one KDF each (milliseconds for PBKDF2, up to hundreds of
milliseconds for scrypt). Running it on the request path would let anyone who can ask for
challenges stall the event loop, so the KDF runs here, ahead of demand, in an executor.

The server's pool derives in worker processes (``processes=True``). Threads would share the
event loop's GIL: ``hashlib.pbkdf2_hmac`` and ``hashlib.scrypt`` release it while they work,
but iterated SHA-256 is a Python loop that never does, and every puzzle also costs some
microseconds of Python (random draws, canonical JSON, an HMAC). While two threads refilled a
SHA-256 level (cost 5,000), an event loop kept 0.00 to 0.01 of its idle throughput, with gaps
of 0.4 to 0.9 s; beside two worker processes it kept 0.92 (``bench/pool_gil.py``; PBKDF2 keeps
0.83 to 0.91 either way). From processes the loop only unpickles the puzzles (3 us each).
Threads stay available for derive functions that cannot be pickled (tests). A program that
creates a process pool must guard its main module (``if __name__ == "__main__"``): the
workers import it, as multiprocessing's workers always do.

Concurrency model:

- one ``deque`` per level: ``extend`` (the executor's callback thread) and ``popleft`` (the
  event loop) are atomic, so a pre-derived puzzle is handed out at most once without any lock
  on the hot path;
- a lock only around refill scheduling, and at most one refill chain in flight per level;
- a refill chain derives for a bounded time slice in a worker, hands the slice's puzzles
  over, then re-queues itself. An on-demand derivation (:meth:`PreDerivationPool.take_async`
  on an empty stock) therefore waits for at most one slice in the executor queue, not for a
  whole batch of 256 scrypt runs.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import select
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any, Final, Generic, TypeVar, overload

from dropserver.pow.difficulty import Difficulty, PreDerived, pre_derive

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long one refill task derives before handing its puzzles over and yielding its worker.
REFILL_SLICE_SECONDS: Final = 0.05
#: At most this many puzzles per slice: the event loop's process unpickles a slice in one go
#: (3 us a puzzle), and cheap levels derive thousands in a slice's time.
SLICE_MAX_ITEMS: Final = 256
#: Worker processes that died (killed, out of memory) are replaced this many times in a row;
#: then the pool stops refilling rather than respawn forever, and says so in the log.
MAX_RESTARTS: Final = 3


def derive_slice(
    derive: Callable[[Difficulty], T], difficulty: Difficulty, count: int, seconds: float
) -> list[T]:
    """Up to ``count`` puzzles, or as many as ``seconds`` allow (at least one): one refill
    slice, run in a worker."""
    deadline = time.monotonic() + seconds
    items = [derive(difficulty)]
    while len(items) < count and time.monotonic() < deadline:
        items.append(derive(difficulty))
    return items


def _start_worker(owner: int) -> None:
    """Worker start-up. Ctrl-C in a terminal reaches the whole process group; the server
    shuts its workers down itself, without a KeyboardInterrupt traceback from each.

    A worker must not outlive the process that owns the pool. When that process dies without
    shutting the pool down (SIGKILL, out of memory), its workers would wait for work forever:
    each holds both ends of the executor's queues, so none of them ever reads an end of file,
    and the forkserver stays up as long as they do. So each worker watches its owner and exits
    with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(owner,), name="owner watch", daemon=True).start()


def _exit_with(owner: int) -> None:
    try:
        # A pidfd turns readable when the process exits, and names that process even if its
        # pid is reused later (Linux 5.3 and later).
        pidfd = os.pidfd_open(owner)
    except ProcessLookupError:
        os._exit(0)  # already gone
    except (AttributeError, OSError):  # no pidfd here: poll the pid instead
        while _alive(owner):
            time.sleep(1.0)
        os._exit(0)
    select.select([pidfd], [], [])
    os._exit(0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    return True


def _process_executor(workers: int) -> ProcessPoolExecutor:
    # forkserver: workers fork from a clean single-threaded server process, never from this
    # one (its event loop and threads must not be copied), and start in milliseconds.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["dropserver.pow.challenge"])
    return ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(os.getpid(),)
    )


class PreDerivationPool(Generic[T]):
    """Keeps about ``target`` puzzles per :class:`Difficulty`: :class:`PreDerived` ones, or
    whatever ``derive`` makes of a difficulty (the server's are ready to issue, see
    :func:`dropserver.pow.challenge.derive_puzzle`).

    ``take`` is non-blocking and O(1); when a level drops below ``low_water`` a refill up to
    ``target`` is scheduled. Levels are stocked on first use or by :meth:`ensure` (call it when
    a drop is created or about to open so the first buyers find a full stock).
    """

    @overload
    def __init__(
        self: PreDerivationPool[PreDerived],
        *,
        workers: int = 2,
        target: int = 256,
        low_water: int = 64,
        processes: bool = False,
    ) -> None: ...

    @overload
    def __init__(
        self,
        *,
        workers: int = 2,
        target: int = 256,
        low_water: int = 64,
        derive: Callable[[Difficulty], T],
        processes: bool = False,
    ) -> None: ...

    def __init__(
        self,
        *,
        workers: int = 2,
        target: int = 256,
        low_water: int = 64,
        derive: Callable[[Difficulty], Any] = pre_derive,
        processes: bool = False,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if target < 1:
            raise ValueError(f"target must be >= 1, got {target}")
        if not 0 <= low_water <= target:
            raise ValueError(f"low_water must be in [0, target={target}], got {low_water}")
        self._target = target
        self._derive = derive
        self._low_water = low_water
        self._workers = workers
        self._processes = processes  # derive must then be picklable (a module-level function)
        self._executor = self._new_executor()
        self._restarts = 0
        self._stocks: dict[Difficulty, deque[T]] = {}
        self._refilling: set[Difficulty] = set()
        # Reentrant: a slice that is already done when its callback is added runs the callback
        # at once, in the thread that submitted it and holds the lock.
        self._lock = threading.RLock()
        self._closed = False
        self._misses = 0

    @property
    def misses(self) -> int:
        """How many times :meth:`take` found the stock empty (a metric: raise ``target``).

        Approximate if ``take`` is called from several threads; exact from one event loop.
        """
        return self._misses

    def ensure(self, difficulty: Difficulty) -> None:
        """Start (or top up) the stock of a level. Cheap and idempotent."""
        self._stock_of(difficulty)
        self._schedule_refill(difficulty)

    def start(self, difficulty: Difficulty) -> None:
        """Stock a level not seen before. Unlike :meth:`ensure`, a level already kept is left
        alone (``take`` refills it below ``low_water``), so this is cheap on a request path:
        topping up on every request would keep the workers deriving, and taking the GIL from
        the event loop, while the stock is still deep."""
        if difficulty not in self._stocks:
            self.ensure(difficulty)

    def take(self, difficulty: Difficulty) -> T | None:
        """Pop one pre-derived puzzle, or ``None`` if the level has none right now."""
        stock = self._stocks.get(difficulty)
        if stock is None:
            stock = self._stock_of(difficulty)
        try:
            item: T | None = stock.popleft()
        except IndexError:
            item = None
            self._misses += 1
        if len(stock) < self._low_water or item is None:
            self._schedule_refill(difficulty)
        return item

    async def take_async(self, difficulty: Difficulty) -> T:
        """:meth:`take`, or derive one in the executor so the request is still served."""
        item = self.take(difficulty)
        if item is not None:
            return item
        return await self.derive_async(difficulty)

    async def derive_async(self, difficulty: Difficulty) -> T:
        """One puzzle derived now, in the executor, for a request :meth:`take` found none
        for (the pool's stock is left as it is)."""
        if self._closed:
            raise RuntimeError("PreDerivationPool is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._derive, difficulty)
        except BrokenProcessPool:
            # The workers died and could not be replaced: still serve, from a thread.
            return await asyncio.to_thread(self._derive, difficulty)

    def stock(self, difficulty: Difficulty) -> int:
        """How many puzzles of this level are ready."""
        stock = self._stocks.get(difficulty)
        return 0 if stock is None else len(stock)

    def close(self, *, wait: bool = True) -> None:
        """Stop refilling and shut the workers down. Queued refills are cancelled.

        With ``wait=True`` this blocks until running KDFs finish (at most one slice each):
        from async code call it through ``asyncio.to_thread`` or pass ``wait=False``.
        """
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=wait, cancel_futures=True)

    def __enter__(self) -> PreDerivationPool[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals

    def _new_executor(self) -> Executor:
        if self._processes:
            return _process_executor(self._workers)
        return ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="pow-derive")

    def _stock_of(self, difficulty: Difficulty) -> deque[T]:
        stock = self._stocks.get(difficulty)
        if stock is None:
            # setdefault is atomic under the GIL: two racing callers get the same deque.
            stock = self._stocks.setdefault(difficulty, deque())
        return stock

    def _schedule_refill(self, difficulty: Difficulty) -> None:
        # Unlocked pre-check keeps the lock off the hot path while a refill runs. A stale
        # read can only skip one trigger; the next take() below low_water triggers again.
        if difficulty in self._refilling:
            return
        with self._lock:
            if self._closed or difficulty in self._refilling:
                return
            if len(self._stock_of(difficulty)) >= self._target:
                return
            self._refilling.add(difficulty)
            self._submit(difficulty)

    def _submit(self, difficulty: Difficulty) -> None:
        """Queue one refill slice. Caller holds the lock and has marked the level in flight."""
        want = min(self._target - len(self._stock_of(difficulty)), SLICE_MAX_ITEMS)
        work = partial(derive_slice, self._derive, difficulty, want, REFILL_SLICE_SECONDS)
        try:
            future = self._executor.submit(work)
        except BrokenProcessPool:
            if not self._restart():  # logged once, when the restarts ran out
                self._refilling.discard(difficulty)
                return
            future = self._executor.submit(work)
        except RuntimeError:  # executor shut down concurrently
            self._refilling.discard(difficulty)
            return
        future.add_done_callback(partial(self._slice_done, difficulty))

    def _restart(self) -> bool:
        """Replace an executor whose worker process died. Caller holds the lock."""
        if self._closed or self._restarts > MAX_RESTARTS:
            return False
        self._restarts += 1
        if self._restarts > MAX_RESTARTS:
            log.error("pre-derivation workers keep dying: refills stopped")
            return False
        log.warning("a pre-derivation worker died: starting new ones")
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._new_executor()
        return True

    def _slice_done(self, difficulty: Difficulty, future: Future[list[T]]) -> None:
        stock = self._stock_of(difficulty)
        failed = future.cancelled()
        broken = False
        if not failed:
            error = future.exception()
            if error is None:
                stock.extend(future.result())
                self._restarts = 0
            elif isinstance(error, BrokenProcessPool):
                broken = True  # the next submit starts new workers
            else:
                # Should not happen (Difficulty is validated); never spin on a broken level.
                log.error("pre-derivation failed for %r", difficulty, exc_info=error)
                failed = True
        with self._lock:
            # Decided under the lock, so a take() that drained the stock meanwhile either
            # sees the level still in flight (and we continue here) or schedules anew.
            if not failed and not self._closed and (broken or len(stock) < self._target):
                self._submit(difficulty)
            else:
                self._refilling.discard(difficulty)
