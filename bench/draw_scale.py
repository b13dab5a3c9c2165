"""Lottery draw at scale: draw time, longest Redis block, verify time, Redis memory per entry.

    .venv/bin/python bench/draw_scale.py [--entries 1000000] [--supply 1000]
        [--read-batch N] [--write-batch N] [--events] [--no-probe]

The issue's goals: a draw over 1,000,000 entries finishes in under 10 s without blocking Redis
for more than 50 ms at a time, and verify-draw on the same data runs in under 10 s.

Starts an embedded redis-server (AOF on, as in production) in a temporary directory, builds the
app (no background loops) behind an aiohttp TestServer and creates a lottery drop through the
admin API. The entries are then written straight into Redis, in pipelined batches, in exactly
the format lua/enter.lua writes (entries hash ``pid -> "<entry_id> <receipt> <sub> 1"``, counts
field ``entries``): a million HTTP entries would take long and are not what is measured.
``--events`` also appends the ``entered`` event enter.lua adds to the drop's stream per entry, to
measure what that costs in memory.

Then ``DrawRunner.draw`` runs end to end (begin, HSCAN read, compute in a thread, batched
writes, commit, first promotions), timed as a whole and per phase. Redis blocking is measured
three ways: the slow log (every command over 100 us, so the worst one is certain to be in it),
the latency monitor (events over 10 ms: commands, fork, AOF fsync, ...), and an independent
client process that PINGs Redis every millisecond during the draw (what any other client would
have waited; on a small machine that also includes CPU contention, so it is an upper bound).
Finally /proof and /entries.ndjson are downloaded and ``python -m dropserver.lottery.verify``
checks them in a subprocess. Prints a table and writes bench/results/draw_scale.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from dropserver import draws  # noqa: E402
from dropserver.app import create_app  # noqa: E402
from dropserver.appkeys import SERVICES  # noqa: E402
from dropserver.config import PlatformSettings, RedisSettings, Settings  # noqa: E402
from dropserver.embedded_redis import EmbeddedRedis  # noqa: E402
from dropserver.keys import drop_keys  # noqa: E402
from dropserver.lottery import receipt  # noqa: E402
from dropserver.services import Services  # noqa: E402
from dropserver.timefmt import format_ms  # noqa: E402

API_KEY = "bench-admin-key-000000000000001"
SECRET = "bench-identity-secret-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {API_KEY}"}
RESULTS = ROOT / "bench" / "results" / "draw_scale.json"
LOAD_BATCH = 10_000  # entries per HSET while loading
SLOWLOG_US = 100  # slow log threshold during the draw: far below any command that matters
LATENCY_MS = 10  # latency monitor threshold
GOAL_DRAW_S = 10.0
GOAL_BLOCK_MS = 50.0
GOAL_VERIFY_S = 10.0

# An independent client: PING every millisecond until the stop file appears, then report the
# worst round trip and when it happened.
PROBE = r"""
import json, os, sys, time
import redis
r = redis.Redis.from_url(sys.argv[1])
stop = sys.argv[2]
r.ping()
print("ready", flush=True)
worst, worst_at, n, over10, over50 = 0.0, 0.0, 0, 0, 0
while not os.path.exists(stop):
    t = time.perf_counter()
    r.ping()
    dt = (time.perf_counter() - t) * 1000
    n += 1
    over10 += dt > 10
    over50 += dt > 50
    if dt > worst:
        worst, worst_at = dt, time.time()
    time.sleep(0.001)
print(json.dumps({"pings": n, "max_ms": worst, "max_at": worst_at,
                  "over_10ms": over10, "over_50ms": over50}), flush=True)
"""


def person(i: int) -> tuple[str, str]:
    """pid and account of the i-th entrant (lengths like a short opaque id)."""
    return f"person-{i:08d}", f"account-{i:08d}"


async def used_memory(redis: Redis) -> int:
    info: dict[str, Any] = await redis.info("memory")
    return int(info["used_memory"])


async def load_entries(redis: Redis, drop_id: str, n: int, *, events: bool, seed: int = 1) -> float:
    """Write n entries as enter.lua would; the seconds it took."""
    keys = drop_keys(drop_id)
    rng = random.Random(seed)
    started = time.perf_counter()
    for start in range(0, n, LOAD_BATCH):
        mapping: dict[str, str] = {}
        rows: list[tuple[str, str, str]] = []
        for i in range(start, min(start + LOAD_BATCH, n)):
            pid, sub = person(i)
            entry_id = f"{rng.getrandbits(128):032x}"
            r = receipt(drop_id, entry_id)
            mapping[pid] = f"{entry_id} {r} {sub} 1"
            rows.append((pid, sub, r))
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.entries, mapping=mapping)
            pipe.hincrby(keys.counts, "entries", len(mapping))
            if events:
                for pid, sub, r in rows:
                    pipe.xadd(
                        keys.events,
                        {"type": "entered", "drop": drop_id, "pid": pid, "sub": sub, "receipt": r},
                    )
            await pipe.execute()
    return time.perf_counter() - started


class Phases:
    """Wall time of each step of DrawRunner.draw, recorded by wrapping what it calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.worst: dict[str, float] = defaultdict(float)
        self.marks: dict[str, float] = {}

    def record(self, name: str, started: float) -> None:
        now = time.perf_counter()
        took = now - started
        self.seconds[name] += took
        self.calls[name] += 1
        self.worst[name] = max(self.worst[name], took)
        self.marks.setdefault(f"{name}:first_start", started)
        self.marks[f"{name}:last_end"] = now

    def wrap_async(
        self, name: str | Callable[..., str], fn: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.record(name(*args) if callable(name) else name, started)

        return wrapped

    def wrap_sync(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.record(name, started)

        return wrapped


def instrument(services: Services, phases: Phases) -> None:
    runner = services.draws
    runner._read_entries = phases.wrap_async("read (HSCAN)", runner._read_entries)  # type: ignore[method-assign]
    batcher = runner._batcher
    batcher.run = phases.wrap_async(lambda script, *_: f"script {script.name}", batcher.run)  # type: ignore[method-assign]
    sweeper = runner._sweeper
    sweeper.sweep_drop = phases.wrap_async("promote (sweep_drop)", sweeper.sweep_drop)  # type: ignore[method-assign]
    runner._write_order = phases.wrap_async("write (draw_write)", runner._write_order)  # type: ignore[method-assign]
    draws.build_proof = phases.wrap_sync("compute (build_proof)", draws.build_proof)


def phase_table(phases: Phases) -> dict[str, dict[str, float]]:
    m = phases.marks
    out: dict[str, dict[str, float]] = {}
    for name in sorted(phases.seconds):
        out[name] = {
            "seconds": round(phases.seconds[name], 4),
            "calls": phases.calls[name],
            "worst_ms": round(phases.worst[name] * 1000, 2),
        }
    # The write phase is the loop between the compute and the commit: draw_write round trips
    # plus building their arguments in Python.
    if "compute (build_proof):last_end" in m and "script draw_commit:first_start" in m:
        span = m["script draw_commit:first_start"] - m["compute (build_proof):last_end"]
        out["write loop (args + draw_write)"] = {"seconds": round(span, 4)}
    return out


async def slowlog_setup(redis: Redis) -> None:
    await redis.config_set("slowlog-log-slower-than", SLOWLOG_US)
    await redis.config_set("slowlog-max-len", 100_000)
    await redis.slowlog_reset()
    await redis.config_set("latency-monitor-threshold", LATENCY_MS)
    await redis.execute_command("LATENCY", "RESET")


async def slowlog_report(redis: Redis, names: dict[str, str]) -> dict[str, Any]:
    entries: list[dict[str, Any]] = await redis.slowlog_get(-1)  # type: ignore[assignment]
    by_command: dict[str, list[int]] = defaultdict(list)
    worst: dict[str, Any] | None = None
    entries.reverse()  # oldest first
    for entry in entries:
        words = entry["command"].split(b" ", 2)
        name = words[0].decode().upper()
        if name == "EVALSHA" and len(words) > 1:
            name = "EVALSHA " + names.get(words[1].decode(), words[1].decode()[:8])
        by_command[name].append(int(entry["duration"]))
        if worst is None or entry["duration"] > worst["duration_us"]:
            worst = {"command": name, "duration_us": int(entry["duration"])}
    latency: list[list[Any]] = await redis.execute_command("LATENCY", "LATEST")
    return {
        "threshold_us": SLOWLOG_US,
        "logged": len(entries),
        "max_ms": round(worst["duration_us"] / 1000, 3) if worst else 0.0,
        "max_command": worst["command"] if worst else None,
        # The slowest calls of each script, with their place among that script's calls (a
        # batch that lands on a hash table resize of the ranks, say, shows as a fixed place).
        "slowest": {
            name: sorted(
                ([i, round(d / 1000, 2)] for i, d in enumerate(durations)),
                key=lambda pair: -pair[1],
            )[:5]
            for name, durations in sorted(by_command.items())
            if name.startswith("EVALSHA") or name == "HSCAN"
        },
        "by_command": {
            name: {
                "count": len(durations),
                "max_ms": round(max(durations) / 1000, 3),
                "mean_ms": round(sum(durations) / len(durations) / 1000, 3),
                "total_ms": round(sum(durations) / 1000, 1),
            }
            for name, durations in sorted(by_command.items())
        },
        "latency_latest": [
            {
                "event": (ev[0].decode() if isinstance(ev[0], bytes) else ev[0]),
                "latest_ms": int(ev[2]),
                "max_ms": int(ev[3]),
            }
            for ev in latency
        ],
    }


async def aof_rewrite_done(redis: Redis) -> float:
    """Wait until no AOF rewrite runs; the seconds waited."""
    started = time.perf_counter()
    while True:
        info: dict[str, Any] = await redis.info("persistence")
        if not int(info["aof_rewrite_in_progress"]) and not int(info["aof_rewrite_scheduled"]):
            return time.perf_counter() - started
        await asyncio.sleep(0.1)


async def key_memory(redis: Redis, key: str) -> int:
    used = await redis.memory_usage(key, samples=0)
    return int(used or 0)


async def download(client: TestClient, path: str, dest: Path) -> float:
    started = time.perf_counter()
    resp = await client.get(path)
    assert resp.status == 200, f"{path}: {resp.status} {await resp.text()}"
    with dest.open("wb") as f:
        async for chunk in resp.content.iter_chunked(1 << 20):
            f.write(chunk)
    return time.perf_counter() - started


def start_probe(url: str, stop: Path) -> subprocess.Popen[str]:
    probe = subprocess.Popen(
        [sys.executable, "-c", PROBE, url, str(stop)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert probe.stdout is not None
    assert probe.stdout.readline().strip() == "ready"
    return probe


def stop_probe(probe: subprocess.Popen[str], stop: Path) -> dict[str, Any]:
    stop.touch()
    out, _ = probe.communicate(timeout=30)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    draws.READ_BATCH = args.read_batch
    draws.WRITE_BATCH = args.write_batch
    server = EmbeddedRedis(workdir / "redis")
    server.start()
    try:
        settings = Settings(
            platforms={"bench": PlatformSettings("bench", (API_KEY,), SECRET)},
            redis=RedisSettings(url=server.url),
        )
        app = create_app(settings, run_background=False)
        async with TestClient(TestServer(app)) as client:
            return await measure(args, workdir, server, client, app[SERVICES])
    finally:
        server.stop()


async def measure(
    args: argparse.Namespace,
    workdir: Path,
    server: EmbeddedRedis,
    client: TestClient,
    services: Services,
) -> dict[str, Any]:
    redis = services.redis
    n = args.entries
    closes_at_ms = int((time.time() + args.close_in) * 1000)
    body = {
        "title": "Draw at scale",
        "mode": "lottery",
        "supply": args.supply,
        "opens_at": format_ms(int((time.time() - 1) * 1000)),
        "closes_at": format_ms(closes_at_ms),
        "claim_seconds": 900,
        "pow": None,
    }
    resp = await client.post("/v1/drops", json=body, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    drop_id: str = (await resp.json())["id"]
    keys = drop_keys(drop_id)

    mem_start = await used_memory(redis)
    load_s = await load_entries(redis, drop_id, n, events=args.events)
    mem_loaded = await used_memory(redis)
    print(f"loaded {n:,} entries in {load_s:.1f} s", file=sys.stderr)

    wait = closes_at_ms / 1000 - time.time()
    if wait > 0:
        await asyncio.sleep(wait + 0.05)
    # Loading a million entries in seconds makes Redis rewrite its AOF (a forked child busy
    # for seconds on one of the cores): an artefact of the bulk load, so let it finish first.
    # Rewrites the draw's own writes start are part of the measurement (aof_rewrites_in_draw).
    rewrite_wait_s = await aof_rewrite_done(redis)
    if args.aof == "no-rewrite":
        await redis.config_set("auto-aof-rewrite-percentage", 0)
    elif args.aof == "off":
        await redis.config_set("appendonly", "no")
    rewrites_before = int((await redis.info("persistence"))["aof_rewrites"])
    found = await services.drops.get(drop_id)
    assert found is not None
    drop = found[0]

    phases = Phases()
    instrument(services, phases)
    await slowlog_setup(redis)
    stop = workdir / "probe.stop"
    probe = start_probe(server.url, stop) if args.probe else None
    started = time.perf_counter()
    try:
        outcome = await services.draws.draw(drop)
    except Exception as exc:
        if probe:
            stop_probe(probe, stop)
        return {
            "entries": n,
            "write_batch": draws.WRITE_BATCH,
            "error": f"the draw failed after {time.perf_counter() - started:.2f} s: "
            f"{type(exc).__name__}: {exc}",
            "phases": phase_table(phases),
        }
    draw_s = time.perf_counter() - started
    probe_result = stop_probe(probe, stop) if probe else None
    rewrites_in_draw = int((await redis.info("persistence"))["aof_rewrites"]) - rewrites_before
    names = {script.sha: script.name for script in services.scripts.values()}
    slow = await slowlog_report(redis, names)
    await redis.config_set("slowlog-log-slower-than", 10_000)
    assert outcome.entries == n

    mem_drawn = await used_memory(redis)
    key_bytes = {
        "entries": await key_memory(redis, keys.entries),
        "draw_order": await key_memory(redis, keys.draw_order),
        "ranks": await key_memory(redis, keys.ranks),
        "events": await key_memory(redis, keys.events),
    }
    leftovers = [
        k for k in (keys.draw_order_tmp, keys.ranks_tmp, keys.draw_lock) if await redis.exists(k)
    ]

    proof_path, entries_path = workdir / "proof.json", workdir / "entries.ndjson"
    proof_s = await download(client, f"/v1/drops/{drop_id}/proof", proof_path)
    entries_s = await download(client, f"/v1/drops/{drop_id}/entries.ndjson", entries_path)
    stats = await (await client.get(f"/v1/drops/{drop_id}/stats", headers=ADMIN)).json()

    started = time.perf_counter()
    verify = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "dropserver.lottery.verify", str(proof_path), str(entries_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    verify_s = time.perf_counter() - started

    per_entry = (mem_loaded - mem_start) / n if n else 0.0
    per_entry_drawn = (mem_drawn - mem_start) / n if n else 0.0
    return {
        "entries": n,
        "supply": args.supply,
        "read_batch": draws.READ_BATCH,
        "write_batch": draws.WRITE_BATCH,
        "events_loaded": args.events,
        "aof": args.aof,
        "redis_version": (await redis.info("server"))["redis_version"],
        "cpus": os.cpu_count(),
        "load_seconds": round(load_s, 2),
        "aof_rewrite_wait_seconds": round(rewrite_wait_s, 2),
        "aof_rewrites_in_draw": rewrites_in_draw,
        "draw_seconds": round(draw_s, 3),
        "phases": phase_table(phases),
        "redis_block": slow,
        "probe": probe_result,
        "memory": {
            "used_before": mem_start,
            "used_after_load": mem_loaded,
            "used_after_draw": mem_drawn,
            "bytes_per_entry_loaded": round(per_entry, 1),
            "bytes_per_entry_with_draw": round(per_entry_drawn, 1),
            "memory_usage_keys": key_bytes,
        },
        "leftover_keys": leftovers,
        "stats": {k: stats[k] for k in ("entries", "held", "remaining", "consistent")},
        "proof_download_seconds": round(proof_s, 2),
        "proof_bytes": proof_path.stat().st_size,
        "entries_download_seconds": round(entries_s, 2),
        "entries_bytes": entries_path.stat().st_size,
        "verify_seconds": round(verify_s, 2),
        "verify_exit": verify.returncode,
        "verify_output": (verify.stdout + verify.stderr).strip()[-500:],
    }


def report(r: dict[str, Any]) -> None:
    blk, mem = r["redis_block"], r["memory"]
    probe = r["probe"]
    rows = [
        ("entries", f"{r['entries']:,}", ""),
        ("draw (DrawRunner.draw, end to end)", f"{r['draw_seconds']:.2f} s", f"< {GOAL_DRAW_S} s"),
        (
            "longest Redis command (slowlog)",
            f"{blk['max_ms']:.1f} ms ({blk['max_command']})",
            f"< {GOAL_BLOCK_MS} ms",
        ),
        (
            "latency monitor events >= 10 ms",
            ", ".join(f"{e['event']} {e['max_ms']} ms" for e in blk["latency_latest"]) or "none",
            "",
        ),
        (
            "worst PING seen by another client",
            f"{probe['max_ms']:.1f} ms ({probe['over_50ms']} over 50 ms)" if probe else "-",
            "upper bound",
        ),
        (
            "verify-draw (subprocess)",
            f"{r['verify_seconds']:.2f} s exit {r['verify_exit']}",
            "< 10 s",
        ),
        ("Redis bytes per entry (entries)", f"{mem['bytes_per_entry_loaded']:.0f}", ""),
        ("Redis bytes per entry (+ order, ranks)", f"{mem['bytes_per_entry_with_draw']:.0f}", ""),
        ("held after the draw / supply", f"{r['stats']['held']} / {r['supply']}", ""),
    ]
    width = max(len(row[0]) for row in rows)
    for name, value, goal in rows:
        print(f"{name:<{width}}  {value:<40} {goal}")
    print("\nphases:")
    for name, p in r["phases"].items():
        extra = f"  {p['calls']} calls, worst {p['worst_ms']} ms" if "calls" in p else ""
        print(f"  {name:<34} {p['seconds']:8.3f} s{extra}")
    print("\nslow log by command (>= 100 us; commands run inside scripts are logged too):")
    for name, c in blk["by_command"].items():
        print(
            f"  {name:<24} {c['count']:6d} x  max {c['max_ms']:7.2f} ms"
            f"  mean {c['mean_ms']:6.2f} ms  total {c['total_ms']:8.1f} ms"
        )


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop, as the server runs (dropserver.server), when installed."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--supply", type=int, default=1_000)
    parser.add_argument("--read-batch", type=int, default=draws.READ_BATCH)
    parser.add_argument("--write-batch", type=int, default=draws.WRITE_BATCH)
    parser.add_argument("--close-in", type=float, default=3.0, help="seconds to closes_at")
    parser.add_argument("--events", action="store_true", help="also write the entered events")
    parser.add_argument(
        "--aof",
        choices=("on", "no-rewrite", "off"),
        default="on",
        help="during the draw: AOF as configured (on), no automatic rewrite, or no AOF "
        "(the last two only to find where time goes)",
    )
    parser.add_argument("--no-probe", dest="probe", action="store_false")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="draw-scale-") as tmp,
        asyncio.Runner(loop_factory=event_loop_factory()) as runner,
    ):
        result = runner.run(run(args, Path(tmp)))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    if "error" in result:
        print(result["error"])
        print(f"wrote {args.output}")
        sys.exit(1)
    report(result)
    print(f"\nwrote {args.output}")
    ok = (
        result["draw_seconds"] < GOAL_DRAW_S
        and result["redis_block"]["max_ms"] < GOAL_BLOCK_MS
        and result["verify_exit"] == 0
        and result["verify_seconds"] < GOAL_VERIFY_S
    )
    print("goals met" if ok else "GOALS NOT MET")


if __name__ == "__main__":
    main()
