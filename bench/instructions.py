"""Instructions per call of the purchase and challenge handlers, counted by callgrind.

    .venv/bin/python bench/instructions.py [--calls 2000] [--only TARGET] [--compare DIR]

Timings on a shared machine drift by tens of percent from one minute to the next; an
instruction count does not (valgrind's callgrind counts what the CPU executes, whatever else
the machine is doing). Each target (purchase_handler.py, challenge_handler.py) runs twice
under callgrind: once preparing its requests only, once preparing and calling the handler on
them; the difference over the calls is the handler's instructions per call: the wrapped
handler with its Redis round trips and its reply, without aiohttp's HTTP parsing and writing,
and without Redis's own work (redis-server is not run under valgrind). The ``served-*``
targets (bench/served.py) count whole requests instead, aiohttp's parsing, routing and
writing included, for the bare route too: their ratios are the in-process part of
bench_http.py's, free of the machine's drift. ``--compare DIR``
counts the dropserver package of another checkout too (``git worktree add DIR COMMIT``).

Needs valgrind (Debian package ``valgrind``). Under valgrind Python runs about 50 times
slower, so keep --calls small; a few thousand calls give counts that repeat to within 1-2%.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    "purchase": ["purchase_handler.py"],
    "challenge": ["challenge_handler.py"],
    # Whole requests, aiohttp's parsing and writing included (bench/served.py).
    "served-bare": ["served.py", "--target", "bare"],
    "served-challenge": ["served.py", "--target", "challenge"],
    "served-purchase": ["served.py", "--target", "purchase"],
    "served-pow-purchase": ["served.py", "--target", "pow-purchase"],
}


def instructions(script: list[str], checkout: Path, calls: int, prepare_only: bool) -> int:
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, str(ROOT / "bench" / script[0]), *script[1:],
        "--child", str(checkout), "--calls", str(calls),
    ]  # fmt: skip
    if prepare_only:
        command.append("--prepare-only")
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--only", choices=sorted(TARGETS))
    parser.add_argument("--compare", type=Path, help="another checkout to count as well")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: apt-get install valgrind", file=sys.stderr)
        return 2
    checkouts = [ROOT] + ([args.compare.resolve()] if args.compare else [])
    for name, script in TARGETS.items():
        if args.only and name != args.only:
            continue
        for checkout in checkouts:
            base = instructions(script, checkout, args.calls, prepare_only=True)
            full = instructions(script, checkout, args.calls, prepare_only=False)
            per_call = (full - base) / args.calls
            print(f"{name:<10} {checkout}: {per_call:,.0f} instructions per call", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
