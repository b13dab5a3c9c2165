"""Redis's own cost of one purchase script call, without the HTTP server.

    .venv/bin/python bench/purchase_script.py [--runs 5] [--calls 100000] [--limits] [--pow]
        [--aof] [--compare OTHER_LUA_DIR]

Starts a redis-server on a free port (no AOF unless ``--aof``), creates a drop's
configuration with room for every call, and drives ``EVALSHA purchase`` with ``redis-benchmark``
(Debian package redis-tools; 2 connections, 16 calls pipelined): every call has a fresh person
and order id (``__rand_int__``), so each one allocates a unit as a real purchase does. Prints
Redis's ``usec_per_call`` (INFO commandstats) of each run, and the redis-server process's CPU
time per call. ``--limits`` switches the three rate
limiters on (generous enough never to refuse), as a deployment with default limits would;
``--pow`` has every call spend a fresh proof-of-work ticket.
``--compare DIR`` alternates the runs with the purchase script (and includes) of another
``lua/`` directory (for example one checked out from an earlier commit with ``git worktree``),
so that a change is measured before and after in one run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from redis import Redis  # noqa: E402

from dropserver.embedded_redis import EmbeddedRedis  # noqa: E402
from dropserver.keys import drop_keys  # noqa: E402
from dropserver.scripts import load_script  # noqa: E402

OFF = ["0", "0", "0"]
ON = ["1", "1000000", "1"]  # 1 us per request, a burst of a million: charged, never refused


def cpu_seconds(pid: int | None) -> float:
    """User plus system CPU time of a process so far (Linux /proc): Redis's whole cost,
    with the network, the command parsing and the AOF, which commandstats leaves out."""
    assert pid is not None
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def arguments(sha: str, limits: bool, pow_ticket: bool) -> list[str]:
    keys = drop_keys("bench")
    key_names = [
        keys.meta, keys.counts, keys.free_serials, keys.persons, keys.orders, keys.holds,
        keys.idempotency, keys.events, keys.person_orders,
        keys.pow_ticket("__rand_int__" if pow_ticket else "-"),
        keys.limiter("person", "p"), keys.limiter("ip", "203.0.113.0/24"),
        keys.limiter("device", "-"), keys.entries, keys.late, keys.draw, keys.draw_order,
        keys.ranks,
    ]  # fmt: skip
    limiter = ON if limits else OFF
    # A ticket's expiry an hour out: each call spends a fresh ticket, as a purchase with PoW does.
    ticket_expiry = str((int(time.time()) + 3600) * 1000) if pow_ticket else "0"
    args = [
        "b__rand_int__", "b1", "bench.__rand_int__", "", "fingerprint", ticket_expiry,
        *limiter, *limiter, *OFF, "", "",
    ]  # fmt: skip
    return ["evalsha", sha, str(len(key_names)), *key_names, *args]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--limits", action="store_true")
    parser.add_argument(
        "--pow", action="store_true", help="each call spends a fresh proof-of-work ticket"
    )
    parser.add_argument(
        "--aof", action="store_true", help="keep AOF on (everysec), as in production"
    )
    parser.add_argument("--compare", type=Path, help="another lua/ directory to alternate with")
    args = parser.parse_args()
    benchmark = shutil.which("redis-benchmark")
    if benchmark is None:
        print("redis-benchmark is not installed: apt-get install redis-tools", file=sys.stderr)
        return 2
    versions = [("this checkout", load_script("purchase"))]
    if args.compare:
        other = load_script("purchase", args.compare, args.compare / "include")
        versions.append((str(args.compare), other))
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedRedis(Path(tmp)) as server,
    ):
        client = Redis.from_url(server.url)
        if not args.aof:
            client.config_set("appendonly", "no")
        for run, (name, script) in (
            (run, version) for run in range(args.runs) for version in versions
        ):
            client.flushall()
            sha = client.script_load(script.source)
            client.hset(
                drop_keys("bench").meta,
                mapping={"id": "bench", "supply": 10**9, "opens_at": 0, "closes_at": 0,
                         "per_person_limit": 1000, "hold_ms": 600_000, "fair_start_ms": 0},
            )  # fmt: skip
            client.config_resetstat()
            cpu_before = cpu_seconds(server.pid)
            subprocess.run(
                [benchmark, "-p", str(server.port), "-n", str(args.calls), "-P", "16", "-c", "2",
                 "-r", "100000000", "-q", *arguments(sha, args.limits, args.pow)],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            cpu = (cpu_seconds(server.pid) - cpu_before) / args.calls * 1e6
            stats = client.info("commandstats")["cmdstat_evalsha"]
            allocated = int(client.hget(drop_keys("bench").counts, "next_serial") or 0)  # type: ignore[arg-type]
            print(
                f"run {run + 1}, {name}: {stats['usec_per_call']:.2f} us per purchase script call,"
                f" {cpu:.1f} us of Redis CPU per call in all ({stats['calls']} calls,"
                f" {allocated} units allocated)"
            )
        client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
