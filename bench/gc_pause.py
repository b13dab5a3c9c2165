"""How long a full garbage collection stops the event loop when the proof-of-work pool is
stocked for a big opening.

    .venv/bin/python bench/gc_pause.py [--puzzles 500000] [--runs 3] [--child DIR]

Derives ``--puzzles`` puzzles (the cheapest PBKDF2 level), sends each through pickle as the
pool's worker processes do, keeps them in a deque as the pool does, and times ``gc.collect()``
``--runs`` times. CPython's collector traverses every object it tracks on a full pass, and the
whole process waits (every request in flight, the event loop included). ``--child DIR`` runs
the same on the dropserver package of another checkout (``git worktree add DIR COMMIT``).
"""

from __future__ import annotations

import argparse
import gc
import pickle
import statistics
import time
from collections import deque
from pathlib import Path

from harness import use_checkout

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--puzzles", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", type=Path, default=ROOT, metavar="DIR")
    args = parser.parse_args()
    use_checkout(args.child.resolve())

    from dropserver.pow.challenge import derive_puzzle
    from dropserver.pow.difficulty import Difficulty

    level = Difficulty.from_config({"algorithm": "PBKDF2/SHA-256", "cost": 1, "counter_max": 4})
    secret = b"gc-pause-key-signature-secret"
    stock = deque(
        pickle.loads(pickle.dumps(derive_puzzle(level, secret))) for _ in range(args.puzzles)
    )
    gc.collect()  # the young passes a live pool goes through before any full one
    pauses = []
    for _ in range(args.runs):
        started = time.perf_counter()
        gc.collect()
        pauses.append((time.perf_counter() - started) * 1000)
    print(
        f"{args.child}: {len(stock):,} puzzles stocked, {len(gc.get_objects()):,} objects "
        f"tracked; a full collection took {', '.join(f'{p:.1f}' for p in pauses)} ms "
        f"(median {statistics.median(pauses):.1f})"
    )


if __name__ == "__main__":
    main()
