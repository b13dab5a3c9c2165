"""A stock of pre-derived puzzles per difficulty level, refilled in background threads.

Deterministic-mode challenges need one KDF each (milliseconds for PBKDF2, up to hundreds of
milliseconds for scrypt). Running it on the request path would let anyone who can ask for
challenges stall the event loop, so the KDF runs here, ahead of demand, in a thread pool:
``hashlib.pbkdf2_hmac`` and ``hashlib.scrypt`` release the GIL while they work.

Concurrency model:

- one ``deque`` per level: ``append`` (worker threads) and ``popleft`` (event loop) are atomic,
  so a pre-derived puzzle is handed out at most once without any lock on the hot path;
- a lock only around refill scheduling, and at most one refill chain in flight per level;
- a refill chain derives for a bounded time slice, then re-queues itself. An on-demand
  derivation (:meth:`PreDerivationPool.take_async` on an empty stock) therefore waits for at
  most one slice in the executor queue, not for a whole batch of 256 scrypt runs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, Generic, TypeVar, overload

from dropserver.pow.difficulty import Difficulty, PreDerived, pre_derive

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long one refill task derives before yielding its worker thread back to the queue.
REFILL_SLICE_SECONDS: Final = 0.05


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
    ) -> None: ...

    @overload
    def __init__(
        self,
        *,
        workers: int = 2,
        target: int = 256,
        low_water: int = 64,
        derive: Callable[[Difficulty], T],
    ) -> None: ...

    def __init__(
        self,
        *,
        workers: int = 2,
        target: int = 256,
        low_water: int = 64,
        derive: Callable[[Difficulty], Any] = pre_derive,
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
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pow-derive")
        self._stocks: dict[Difficulty, deque[T]] = {}
        self._refilling: set[Difficulty] = set()
        self._lock = threading.Lock()
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
        if self._closed:
            raise RuntimeError("PreDerivationPool is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._derive, difficulty)

    def stock(self, difficulty: Difficulty) -> int:
        """How many puzzles of this level are ready."""
        stock = self._stocks.get(difficulty)
        return 0 if stock is None else len(stock)

    def close(self, *, wait: bool = True) -> None:
        """Stop refilling and shut the threads down. Queued refills are cancelled.

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
        try:
            self._executor.submit(self._refill_slice, difficulty)
        except RuntimeError:  # executor shut down concurrently
            self._refilling.discard(difficulty)

    def _refill_slice(self, difficulty: Difficulty) -> None:
        stock = self._stock_of(difficulty)
        deadline = time.monotonic() + REFILL_SLICE_SECONDS
        failed = False
        try:
            while not self._closed and len(stock) < self._target:
                stock.append(self._derive(difficulty))
                if time.monotonic() >= deadline:
                    break
        except Exception:
            # Should not happen (Difficulty is validated); never spin on a broken level.
            log.exception("pre-derivation failed for %r", difficulty)
            failed = True
        with self._lock:
            # Decided under the lock, so a take() that drained the stock meanwhile either
            # sees the level still in flight (and we continue here) or schedules anew.
            if not failed and not self._closed and len(stock) < self._target:
                self._submit(difficulty)
            else:
                self._refilling.discard(difficulty)
