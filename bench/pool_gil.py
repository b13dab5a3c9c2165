"""How much an event loop still gets done while the proof-of-work pool refills a level.

    .venv/bin/python bench/pool_gil.py [--algorithm SHA-256] [--cost 5000] [--seconds 2]

For threads and for worker processes in turn: an event loop runs slices of pure Python work
(about 10 us each, yielding to the loop between them) for ``--seconds`` with no pool, then
again while a pool of two workers stocks the level. Prints the share of the idle throughput
the loop kept, and the longest gap between two of its slices (what a request would wait).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dropserver.pow import Difficulty, PreDerivationPool  # noqa: E402
from dropserver.pow.challenge import derive_puzzle  # noqa: E402


async def slices(seconds: float) -> tuple[int, float]:
    """Work slices done in ``seconds``, and the longest gap between two of them."""
    done, worst = 0, 0.0
    last = time.perf_counter()
    end = last + seconds
    while (now := time.perf_counter()) < end:
        worst = max(worst, now - last)
        last = now
        for _ in range(200):
            pass
        done += 1
        await asyncio.sleep(0)
    return done, worst


async def measure(difficulty: Difficulty, processes: bool, seconds: float) -> None:
    idle, _ = await slices(seconds)
    pool = PreDerivationPool(
        workers=2,
        target=1_000_000,  # never full: the refill runs through the measured window
        low_water=0,
        derive=partial(derive_puzzle, key_signature_secret=b"k" * 32),
        processes=processes,
    )
    try:
        pool.ensure(difficulty)
        await asyncio.sleep(0.2)  # the workers are up and deriving
        busy, worst = await slices(seconds)
        stocked = pool.stock(difficulty)
    finally:
        pool.close(wait=False)
    mode = "processes" if processes else "threads"
    print(
        f"{difficulty.algorithm} cost {difficulty.cost}, {mode:9}: the loop kept "
        f"{busy / idle:.2f} of its idle throughput, longest gap {worst * 1000:.1f} ms "
        f"({stocked} puzzles derived)"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--algorithm", default="SHA-256")
    parser.add_argument("--cost", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    difficulty = Difficulty.from_config(
        {"algorithm": args.algorithm, "cost": args.cost, "counter_max": 4}
    )
    for processes in (False, True):
        asyncio.run(measure(difficulty, processes, args.seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
