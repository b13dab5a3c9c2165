"""What ``redis.wait_replicas = 1`` costs the batcher: one WAIT per batch against none.

    .venv/bin/python bench/wait_replicas.py [--runs 3] [--callers 64] [--calls 500]

Starts a primary and a replica (redis-server on free ports, the replica on the same machine)
and has ``--callers`` concurrent callers each run ``--calls`` trivial script calls through one
``ScriptBatcher``, without and then with ``wait_replicas=1``, alternating. Prints calls per
second. The script is trivial, so the figure is the worst case: a purchase's script takes
Redis far longer than the WAIT.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from redis import Redis as SyncRedis  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from dropserver.batcher import ScriptBatcher  # noqa: E402
from dropserver.embedded_redis import EmbeddedRedis  # noqa: E402
from dropserver.scripts import Script  # noqa: E402

SOURCE = b"return redis.call('INCR', KEYS[1])"
INCR = Script("incr", SOURCE, hashlib.sha1(SOURCE).hexdigest())


async def calls_per_second(url: str, wait_replicas: int, callers: int, calls: int) -> float:
    client = Redis.from_url(url)
    batcher = ScriptBatcher(client, wait_replicas=wait_replicas)
    await batcher.load([INCR])

    async def caller() -> None:
        for _ in range(calls):
            await batcher.run(INCR, ["{bench}:n"], [])

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    elapsed = time.perf_counter() - started
    await batcher.close()
    await client.aclose()
    return callers * calls / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        primary = EmbeddedRedis(Path(tmp) / "primary")
        with primary:
            replica_of = ["--replicaof", "127.0.0.1", str(primary.port)]
            with EmbeddedRedis(Path(tmp) / "replica", extra_args=replica_of) as replica:
                probe = SyncRedis(port=replica.port)
                while probe.info("replication").get("master_link_status") != "up":
                    time.sleep(0.05)
                probe.close()
                for run in range(1, args.runs + 1):
                    for wait in (0, 1):
                        rate = asyncio.run(
                            calls_per_second(primary.url, wait, args.callers, args.calls)
                        )
                        print(f"run {run}, wait_replicas={wait}: {rate:,.0f} calls/s")


if __name__ == "__main__":
    main()
