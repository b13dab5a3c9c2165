"""HTTP benchmark: dropserver's request paths against a bare aiohttp route, in one run.

    .venv/bin/python bench/bench_http.py [--duration 10] [--connections 64] [--only NAME ...]

Starts one redis-server (embedded), one bare aiohttp process and one dropserver process per
variant (each a single process with uvloop and no access log), prepares the requests, then
drives each target with wrk (Debian package ``wrk``) one after another. Prints a table and
writes bench/results/http.json. Ratios are to the bare route measured in the same run; the
load generator shares the machine's cores with the server, as the issue asks.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from redis import Redis  # noqa: E402

from dropserver.config import PlatformSettings  # noqa: E402
from dropserver.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from dropserver.identity import mint_token  # noqa: E402
from dropserver.timefmt import format_ms  # noqa: E402

API_KEY = "bench-admin-key-000000000000001"
SECRET = "bench-identity-secret-0123456789abcdef"
POW_SECRET = "bench-pow-secret-0123456789abcdef"
KEY_SIG_SECRET = "bench-keysig-secret-0123456789abcd"
PLATFORM = PlatformSettings("bench", (API_KEY,), SECRET)
# Persons and their limit: 2,000 x 100 units leaves every request of a 10 s run an allocation
# (not a refusal), and the 2 s warm-up verifies every identity token once, as a buyer's
# challenge request would before the purchase. The JWT cost of a first request is measured on
# its own (the "first request" target).
PERSONS = 2_000
LIMIT = 100
# Pre-derived puzzles the server keeps per level: enough for every challenge of a warm-up and a
# measured run, so that the measured window is the request path alone, as for a drop created
# ahead of its opening. Refilling (a KDF per puzzle) is a cost of its own: see pow_micro.py.
POOL_TARGET = 500_000
MAX_POOL_TARGET = 1_000_000  # what the configuration accepts


@dataclass
class Target:
    name: str
    server: str  # which server variant answers it
    lines: Callable[[str, int], Iterator[str]]  # (base url, count) -> request lines
    note: str = ""
    result: dict[str, Any] = field(default_factory=dict)


def server_config(tmp: Path, redis_url: str, port: int, **redis_extra: Any) -> Path:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in redis_extra.items())
    path = tmp / f"server-{port}.toml"
    path.write_text(
        f"""
[server]
port = {port}
[redis]
url = "{redis_url}"
{extra}
[pow]
secret = "{POW_SECRET}"
key_signature_secret = "{KEY_SIG_SECRET}"
pool_target = {POOL_TARGET}
[[platforms]]
id = "bench"
api_keys = ["{API_KEY}"]
identity_hs256_secret = "{SECRET}"
"""
    )
    return path


@contextmanager
def process(
    args: list[str], port: int, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    # Logs go to a file: a full pipe would block the server mid-benchmark.
    log_path = Path(tempfile.mkstemp(prefix="bench-server-", suffix=".log")[1])
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=cwd)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
                break
            except OSError as exc:
                if getattr(exc, "code", None) == 404:  # the bare server has no /healthz
                    break
                if proc.poll() is not None:
                    raise RuntimeError(log_path.read_text()[-2000:]) from exc
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def admin(base: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as resp:
        return json.loads(resp.read())


def create_drop(base: str, **overrides: Any) -> str:
    body = {
        "title": "bench",
        "supply": 10_000_000,
        "mode": "fcfs",
        "opens_at": format_ms(int(time.time() * 1000) - 1000),
        "hold_seconds": 300,
        "per_person_limit": LIMIT,
        "pow": None,
        **overrides,
    }
    drop_id: str = admin(base, "POST", "/v1/drops", body)["id"]
    return drop_id


_TOKENS: list[str] = []


def tokens() -> list[str]:
    if not _TOKENS:
        _TOKENS.extend(
            mint_token(PLATFORM, account=f"b{i}", person=f"b{i}") for i in range(PERSONS)
        )
    return _TOKENS


# PoW on, at a trivial KDF cost: the pool pre-derives off the request path (what a drop
# created ahead of its opening gets), so the request path measured here is what a buyer pays
# the server: one signature for a challenge; two HMACs and a ticket write for a purchase.
BENCH_POW = {"algorithm": "PBKDF2/SHA-256", "cost": 1, "counter_max": 4, "adaptive": False}
DERIVING_POW = {"algorithm": "SHA-256", "cost": 5000, "counter_max": 4, "adaptive": False}
PAYLOADS = 150_000  # pre-solved tickets, one per purchase request (they are single use)


def wait_for_pool(base: str, drop_id: str) -> None:
    """Wait until the server's pool is stocked (it starts when the drop is created). Each
    challenge issued sets the stock gauge, so one is asked for every half second."""
    request = urllib.request.Request(
        f"{base}/v1/drops/{drop_id}/challenge",
        headers={"Authorization": f"Bearer {tokens()[0]}"},
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        urllib.request.urlopen(request).read()
        metrics = urllib.request.urlopen(f"{base}/metrics").read().decode()
        found = re.search(r"^dropserver_pow_pool_stock\{[^}]*\} ([\d.e+]+)$", metrics, re.M)
        # Full, less the one challenge this loop takes: the refill has finished. Stopping
        # earlier (at 99%) left the refill deriving in the pool's threads through the
        # measured run, where it took a quarter of the server's CPU samples.
        if found and float(found.group(1)) >= POOL_TARGET - 1:
            return
        time.sleep(0.5)
    raise RuntimeError("the pre-derivation pool did not fill in 300 s")


def challenge_lines(base: str, count: int) -> Iterator[str]:
    drop_id = create_drop(base, pow=BENCH_POW)
    wait_for_pool(base, drop_id)
    for token in tokens():
        yield f"GET\t/v1/drops/{drop_id}/challenge\t{token}\t"


def pow_purchase_lines(base: str, count: int) -> Iterator[str]:
    from dropserver.pow import binding_data, issue_challenge, pre_derive, solve
    from dropserver.pow import payload as pow_payload
    from dropserver.pow.difficulty import Difficulty

    drop_id = create_drop(base, pow=BENCH_POW)
    wait_for_pool(base, drop_id)
    level = Difficulty.from_config({k: BENCH_POW[k] for k in ("algorithm", "cost", "counter_max")})
    all_tokens = tokens()
    expires = int(time.time()) + 3600
    for i in range(PAYLOADS):
        person = i % PERSONS
        challenge = issue_challenge(
            pre_derive(level),
            hmac_secret=POW_SECRET.encode(),
            key_signature_secret=KEY_SIG_SECRET.encode(),
            expires_at=expires,
            data=binding_data(
                drop_id=drop_id, pid=f"b{person}", action="buy", ip_prefix="127.0.0.0/24"
            ),
        )
        ticket = json.dumps({"pow": pow_payload(challenge, solve(challenge))})
        yield f"POST\t/v1/drops/{drop_id}/purchase\t{all_tokens[person]}\t{ticket}"


def bare_lines(base: str, count: int) -> Iterator[str]:
    yield "POST\t/bare\t\t{}"


def work_lines(us: int) -> Callable[[str, int], Iterator[str]]:
    def lines(base: str, count: int) -> Iterator[str]:
        yield f"POST\t/work/{us}\t\t{{}}"

    return lines


def purchase_lines(base: str, count: int) -> Iterator[str]:
    drop_id = create_drop(base)
    for token in tokens():
        yield f"POST\t/v1/drops/{drop_id}/purchase\t{token}\t{{}}"


def purchase_while_deriving_lines(base: str, count: int) -> Iterator[str]:
    # The next drop, on SHA-256, is created first: its level then stocks for the whole run
    # (POOL_TARGET puzzles at 1.6 ms each), as when a platform sets up a drop during another.
    create_drop(base, pow=DERIVING_POW)
    yield from purchase_lines(base, count)


TARGETS: list[Target] = [
    Target("bare aiohttp route", "bare", bare_lines),
    Target(
        "purchase, one EVALSHA per request",
        "naive",
        purchase_lines,
        "pipelining off: each request its own round trip",
    ),
    Target("purchase, shared round trips", "main", purchase_lines, "pipelining on (default)"),
    Target(
        "purchase with PoW ticket",
        "main",
        pow_purchase_lines,
        "pre-solved single-use tickets, verified and consumed",
    ),
    Target("challenge (PoW on)", "main", challenge_lines, "pool stocked ahead, no rate limits"),
    Target(
        "purchase while a SHA-256 level is derived",
        "main",
        purchase_while_deriving_lines,
        "another drop's pool stocks in the background (SHA-256, cost 5,000)",
    ),
]


def run_wrk(
    base: str, lines_file: Path, duration: int, connections: int, offset: int = 0
) -> dict[str, Any]:
    # The offset starts a run after the lines an earlier run (the warm-up) used: single-use
    # tickets must not be replayed.
    env = {**os.environ, "BENCH_REQUESTS": str(lines_file), "BENCH_OFFSET": str(offset)}
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "requests.lua"),
            base,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    stats = dict(
        re.findall(
            r"(\w+)=([\d.]+)",
            "\n".join(line for line in out.stdout.splitlines() if line.startswith("BENCH")),
        )
    )
    return {k: float(v) for k, v in stats.items()}


PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU time of the whole machine so far, all cores (Linux /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # without guest time, which is counted in user already
    return total - idle, total


def command_stats(client: Any) -> dict[str, dict[str, float]]:
    """Redis's INFO commandstats: calls and microseconds per command since the last reset."""
    stats: dict[str, dict[str, float]] = {}
    for name, values in client.info("commandstats").items():
        stats[name.removeprefix("cmdstat_")] = {
            "calls": values["calls"],
            "usec": values["usec"],
        }
    return stats


def fresh_redis(client: Any) -> None:
    """Empty Redis and compact its AOF, so that every target starts from the same state.
    Otherwise a later target runs on the earlier targets' orders, and the AOF rewrites that
    its own writes trigger (each a fork that compresses the whole dataset, on the cores the
    run shares) cost it more than they cost the first."""
    client.flushall()
    client.bgrewriteaof()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        persistence = client.info("persistence")
        if not (persistence["aof_rewrite_in_progress"] or persistence["aof_rewrite_scheduled"]):
            return
        time.sleep(0.05)
    raise RuntimeError("the AOF rewrite before the target did not finish within 60 s")


def batch_totals(base: str) -> tuple[float, float]:
    """(calls, batches) the server's batcher has sent so far, from its /metrics."""
    text = urllib.request.urlopen(f"{base}/metrics").read().decode()
    totals = dict(re.findall(r"^dropserver_redis_batch_size_(sum|count) ([\d.e+]+)$", text, re.M))
    return float(totals.get("sum", 0)), float(totals.get("count", 0))


def cpu_seconds(pid: int | None) -> float:
    """User plus system CPU time a process has used so far (Linux /proc)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def profiler(pid: int, name: str, duration: int) -> Iterator[None]:
    """py-spy samples the server while the body runs (duration 0: no profile)."""
    if not duration:
        yield
        return
    out = ROOT / "bench" / "results" / (re.sub(r"[^a-z0-9]+", "-", name.lower()) + ".folded")
    out.parent.mkdir(exist_ok=True)
    spy = subprocess.Popen(
        [PY_SPY, "record", "--pid", str(pid), "--duration", str(duration), "--rate", "200",
         "--format", "raw", "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        spy.wait(duration + 30)
        print(f"  profile: {out}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--only", nargs="*", help="run only targets whose name contains these")
    parser.add_argument(
        "--redis",
        nargs="*",
        default=[],
        metavar="NAME=INT",
        help="[redis] settings of the dropserver processes, e.g. max_batch=32 max_in_flight=8",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample each server with py-spy during its run (bench/results/*.folded); "
        "the sampling slows the server, so figures of a profiled run are not comparable",
    )
    parser.add_argument(
        "--compare",
        metavar="DIR",
        help="also run each dropserver target on the dropserver package of another checkout "
        "(git worktree add DIR COMMIT), right after this checkout's: a change measured before "
        "and after in one run",
    )
    parser.add_argument(
        "--paired",
        type=int,
        default=0,
        metavar="N",
        help="after each target's run, N more pairs of runs: the bare route, then the target, "
        "back to back; prints the median of the N ratios (drift between a target and a bare "
        "run a minute earlier then counts for less)",
    )
    parser.add_argument(
        "--redis-server",
        action="append",
        default=[],
        metavar="OPTION",
        help="one more option of the embedded redis-server (repeatable), its name and value "
        "joined by '=', e.g. --redis-server=--auto-aof-rewrite-min-size=1gb",
    )
    parser.add_argument(
        "--calibrate",
        nargs="*",
        type=int,
        default=[],
        metavar="US",
        help="also run the bare route plus US microseconds of pure Python work per request: "
        "what a handler of that cost reaches on this machine, in the same run",
    )
    args = parser.parse_args()
    global PAYLOADS, POOL_TARGET
    PAYLOADS *= 1 + args.paired  # every run of the PoW purchase needs fresh tickets
    # The challenge's runs must not drain the pool below its low water mark (a quarter of the
    # target), or a refill would run in the measured window: room for 25,000 challenges a
    # second in the three quarters of the stock above that mark (the bound used to count the
    # whole stock, so a challenge at 15,000 a second reached the mark in its last pair), up to
    # the most a server keeps.
    wanted = 25_000 * (2 + args.duration * (1 + args.paired)) * 4 // 3
    POOL_TARGET = min(max(POOL_TARGET, wanted), MAX_POOL_TARGET)
    if wanted > MAX_POOL_TARGET:
        print(
            f"note: the pool holds {MAX_POOL_TARGET:,} puzzles at most: a challenge over"
            f" {MAX_POOL_TARGET * 3 // 4 // (2 + args.duration * (1 + args.paired)):,}/s"
            " will meet a refill in its last runs",
            file=sys.stderr,
        )
    redis_settings = {name: int(value) for name, value in (o.split("=", 1) for o in args.redis)}
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    targets = [t for t in TARGETS if not args.only or any(o in t.name for o in args.only)]
    if not any(t.server == "bare" for t in targets):
        targets.insert(0, TARGETS[0])
    targets[1:1] = [
        Target(f"bare route + {us} us of work", "bare", work_lines(us), "calibration")
        for us in args.calibrate
    ]
    if args.compare:
        targets = [
            twin
            for t in targets
            for twin in (
                [t]
                if t.server == "bare"
                else [t, Target(f"{t.name} [compare]", f"{t.server}-compare", t.lines, t.note)]
            )
        ]
    python = sys.executable
    dropserver = str(Path(python).parent / "dropserver")
    with (
        tempfile.TemporaryDirectory(prefix="bench-") as tmp_name,
        EmbeddedRedis(
            Path(tmp_name) / "redis",
            appendfsync="everysec",
            extra_args=[part for option in args.redis_server for part in option.split("=", 1)],
        ) as redis,
        ExitStack() as pairs,
    ):
        tmp = Path(tmp_name)
        redis_client = Redis.from_url(redis.url)
        ports = {
            name: free_port()
            for name in ("bare", "bare-pairs", "main", "naive", "main-compare", "naive-compare")
        }
        variants = {
            "bare": [
                python,
                str(ROOT / "bench" / "bare_server.py"),
                str(ports["bare"]),
                *map(str, args.calibrate),
            ],
        }
        env = None
        if args.compare:
            # The other checkout's package, run by this environment's Python.
            env = {**os.environ, "PYTHONPATH": str(Path(args.compare).resolve())}
        for name, extra in (("main", {}), ("naive", {"pipelining": False})):
            config = server_config(tmp, redis.url, ports[name], **redis_settings, **extra)
            variants[name] = [dropserver, "serve", "--config", str(config)]
            if args.compare:
                port = ports[f"{name}-compare"]
                config = server_config(tmp, redis.url, port, **redis_settings, **extra)
                variants[f"{name}-compare"] = [
                    python, "-m", "dropserver", "serve", "--config", str(config)
                ]  # fmt: skip
        bare_pairs = f"http://127.0.0.1:{ports['bare-pairs']}"
        if args.paired:
            # A bare server of its own, up for the whole run, for the bare half of each pair.
            pairs.enter_context(
                process([*variants["bare"][:2], str(ports["bare-pairs"])], ports["bare-pairs"])
            )
            bare_lines_file = tmp / "bare-pairs.lines"
            bare_lines_file.write_text("\n".join(bare_lines(bare_pairs, 0)) + "\n")
            run_wrk(bare_pairs, bare_lines_file, 2, args.connections)  # warm-up
        for target in targets:
            port = ports[target.server]
            compare = target.server.endswith("-compare")
            if target.server != "bare":
                fresh_redis(redis_client)
            # Each server runs in its own checkout: `python -m` and the proof-of-work pool's
            # worker processes import dropserver from the working directory first (run from
            # this checkout, a [compare] server ran this checkout's code, not the other's).
            with process(
                variants[target.server],
                port,
                env if compare else None,
                Path(args.compare).resolve() if compare else ROOT,
            ) as proc:
                base = f"http://127.0.0.1:{port}"
                lines_file = tmp / f"{target.server}.lines"
                lines_file.write_text("\n".join(target.lines(base, 0)) + "\n")
                warm = run_wrk(base, lines_file, 2, args.connections)  # token cache, pool
                redis_client.config_resetstat()
                batches_before = batch_totals(base) if target.server != "bare" else (0, 0)
                before = cpu_seconds(proc.pid), cpu_seconds(redis.pid)
                rewrites_before = redis_client.info("persistence").get("aof_rewrites", 0)
                busy_before = machine_busy()
                with profiler(proc.pid, target.name, args.duration if args.profile else 0):
                    target.result = run_wrk(
                        base,
                        lines_file,
                        args.duration,
                        args.connections,
                        # Requests still in flight when the warm-up stopped used their lines
                        # too (single-use tickets): skip one more per connection.
                        int(warm["requests"]) + args.connections,
                    )
                after = cpu_seconds(proc.pid), cpu_seconds(redis.pid)
                busy_after = machine_busy()
                done = target.result["requests"] or 1
                # CPU per request tells which process bounds a target: the server's Python,
                # or Redis running the scripts (both share the cores with wrk). The machine's
                # busy share tells whether the cores were the limit at all.
                target.result["server_us"] = round((after[0] - before[0]) / done * 1e6, 1)
                target.result["redis_us"] = round((after[1] - before[1]) / done * 1e6, 1)
                # wrk's own count leaves out its set-up (formatting every request once).
                wrk_cpu = target.result["cpu_s"] - target.result["init_cpu_s"]
                target.result["wrk_us"] = round(wrk_cpu / done * 1e6, 1)
                target.result["busy_pct"] = round(
                    100 * (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1]),
                    1,
                )
                target.result["redis_commands"] = command_stats(redis_client)
                # An AOF rewrite forks Redis and compresses the whole dataset on the cores
                # the run shares; a drop's own writes trigger it (auto-aof-rewrite-*).
                persistence = redis_client.info("persistence")
                target.result["aof_rewrites"] = persistence.get("aof_rewrites", 0) - rewrites_before
                if target.server != "bare":
                    calls, batches = (
                        a - b for a, b in zip(batch_totals(base), batches_before, strict=True)
                    )
                    target.result["calls_per_batch"] = round(calls / batches, 1) if batches else 0
                offset = int(warm["requests"] + target.result["requests"]) + 2 * args.connections
                ratios = []
                for _ in range(args.paired if target.server != "bare" else 0):
                    bare = run_wrk(bare_pairs, bare_lines_file, args.duration, args.connections)
                    paired = run_wrk(base, lines_file, args.duration, args.connections, offset)
                    offset += int(paired["requests"]) + args.connections
                    ratios.append(round(paired["rps"] / bare["rps"], 3))
                if ratios:
                    target.result["paired_ratios"] = ratios

            shown = {k: v for k, v in target.result.items() if k != "redis_commands"}
            print(f"  {target.name}: {shown}", file=sys.stderr)
            for name, stat in sorted(
                target.result["redis_commands"].items(), key=lambda kv: -kv[1]["usec"]
            )[:12]:
                per = stat["usec"] / done
                print(f"    redis {name:<28} {stat['calls'] / done:6.2f} calls/req"
                      f" {per:7.2f} us/req", file=sys.stderr)  # fmt: skip
    bare_rps = targets[0].result["rps"]
    print(
        f"\n{'target':<42} {'req/s':>9} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'server us':>9} {'redis us':>8} {'wrk us':>6} {'busy %':>6} {'batch':>5}"
        + (f" {'paired':>6}" if args.paired else "")
    )
    rows = []
    for t in targets:
        r = t.result
        ratio = r["rps"] / bare_rps
        rows.append({"target": t.name, "note": t.note, "ratio_to_bare": round(ratio, 3), **r})
        print(
            f"{t.name:<42} {r['rps']:>9.0f} {ratio:>6.2f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f}"
            f" {r['server_us']:>9.1f} {r['redis_us']:>8.1f} {r['wrk_us']:>6.1f}"
            f" {r['busy_pct']:>6.1f} {r.get('calls_per_batch') or '':>5}"
            + (f" {statistics.median(r['paired_ratios']):>6.2f}" if r.get("paired_ratios") else "")
        )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "http.json").write_text(
        json.dumps(
            {
                "duration_s": args.duration,
                "connections": args.connections,
                "paired": args.paired,
                "redis_settings": redis_settings,
                "rows": rows,
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
