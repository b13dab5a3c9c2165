"""Find the peak purchase rate, and its p99, at which the server stays correct.

    python -m loadtest.throughput [--processes 2] [--users 4,8,16,32,64] [--step-seconds 10]
        [--max-error-rate 0.01] [--p99-slo-ms 500] [--quick]
        [--url URL --api-key KEY --identity-secret SECRET [--platform ID]] --out throughput.json

Starts ``dropserver serve`` (embedded Redis) unless ``--url`` is given, creates an FCFS drop
with a supply no run can exhaust and no proof of work (this measures the purchase path: the
identity check, the one Lua script, the hold; ``--pow`` adds a challenge and a natively solved
small proof of work before each purchase, and a failed challenge counts as an error), and runs
Locust headless in distributed mode (``--processes`` worker processes) with a stepped number of
closed-loop buyers, each purchase by a new person. Per step: purchases per second, error rate,
p50 and p99 latency.

"Correct" is checked on the server afterwards: every allocation the clients were told about
is in the orders listing, no serial is sold twice or beyond supply, the listing agrees with
the drop's counters, and the stats report ``consistent``. The peak is the fastest step with
at most ``--max-error-rate`` errors (and p99 within ``--p99-slo-ms`` when given); it is only
reported when the correctness checks pass.

On a shared machine the load generator and the server compete for the same cores: the figures
are a floor for the server, not its capacity. Exit status: 0 correct, 1 incorrect.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtest import capabilities, capacity, report, scenarios
from loadtest.admin import Admin
from loadtest.capabilities import rfc3339
from loadtest.locust_run import REPO, run_locust
from loadtest.plan import PLAN_ENV
from loadtest.server import Deployment, LocalServer
from loadtest.tally import load

LOCUSTFILE = REPO / "loadtest" / "throughput_locustfile.py"
SUPPLY = 10_000_000  # the most a drop may have: never sold out in a run
WARMUP_S = 2.0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest.throughput", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--processes", type=int, default=2, help="Locust worker processes (2)")
    p.add_argument("--users", default="4,8,16,32,64", help="buyers per step, comma-separated")
    p.add_argument("--step-seconds", type=float, default=10.0)
    p.add_argument("--quick", action="store_true", help="steps 4,16,48 of 6 s each")
    p.add_argument("--pow", action="store_true", help="challenge, solve, purchase (small PoW)")
    p.add_argument("--max-error-rate", type=float, default=0.01)
    p.add_argument("--p99-slo-ms", type=float, help="also require p99 at or below this")
    p.add_argument("--url")
    p.add_argument("--api-key")
    p.add_argument("--identity-secret")
    p.add_argument("--platform", default="rehearsal")
    p.add_argument("--out", type=Path, required=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.url and not (args.api_key and args.identity_secret):
        p.error("--url needs --api-key and --identity-secret")
    users = [4, 16, 48] if args.quick else [int(u) for u in args.users.split(",") if u.strip()]
    step_s = 6.0 if args.quick else args.step_seconds
    if not users or min(users) < 1 or step_s <= WARMUP_S or args.processes < 1:
        p.error("--users must be positive counts, --step-seconds > 2, --processes >= 1")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dropserver-throughput-") as tmp:
        work = Path(tmp)
        server = None if args.url else LocalServer(work)
        if server is None:
            deployment = Deployment(args.url, args.platform, args.api_key, args.identity_secret)
        else:
            deployment = server.start()
        try:
            result = measure(args, deployment, work, users, step_s)
        finally:
            if server is not None:
                server.stop()
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_summary(result)
    print(f"figures: {args.out}")
    return 0 if result["correct"] else 1


def measure(
    args: argparse.Namespace, deployment: Deployment, work: Path, users: list[int], step_s: float
) -> dict[str, Any]:
    admin = Admin(deployment)
    if args.pow:
        capabilities.check(deployment, [scenarios.POW])
    drop_id = f"throughput-{secrets.token_hex(4)}"
    admin.create_drop(
        {
            "id": drop_id,
            "title": "throughput rehearsal",
            "supply": SUPPLY,
            "mode": "fcfs",
            "opens_at": rfc3339(time.time() - 1),
            "hold_seconds": 3600,
            "pow": dict(scenarios.SIM_POW) if args.pow else None,
        }
    )
    tally_path = work / "tally.json"
    plan_path = work / "plan.json"
    plan = {
        "drop_id": drop_id,
        "platform": deployment.platform,
        "identity_secret": deployment.identity_secret,
        "steps": [[u, step_s] for u in users],
        "pow": args.pow,
        "tally_path": str(tally_path),
    }
    plan_path.write_text(json.dumps(plan))
    exit_code = run_locust(
        LOCUSTFILE,
        host=deployment.url,
        env={PLAN_ENV: str(plan_path)},
        log_path=args.out.with_suffix(".locust.log"),
        timeout=len(users) * step_s + 120,
        extra=["--processes", str(args.processes)],
    )
    time.sleep(1.0)  # let the last in-flight purchases land before reading
    tally = load(tally_path)
    figures = capacity.step_figures(tally, users, WARMUP_S)
    correctness = check_correct(admin, drop_id, capacity.client_purchases(tally.counts))
    best = capacity.peak(figures, max_error_rate=args.max_error_rate, p99_slo_ms=args.p99_slo_ms)
    correct = all(v for k, v in correctness.items() if k.startswith("ok_"))
    return {
        "kind": "throughput",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "server": {"url": deployment.url, "started_by_harness": args.url is None},
        "locust_processes": args.processes,
        "pow": dict(scenarios.SIM_POW) if args.pow else None,
        "step_seconds": step_s,
        "warmup_seconds": WARMUP_S,
        "max_error_rate": args.max_error_rate,
        "p99_slo_ms": args.p99_slo_ms,
        "steps": [f.to_json() for f in figures],
        "correct": correct,
        "correctness": correctness,
        "peak": _peak_json(best) if best is not None and correct else None,
        # More buyers would probably buy faster: add steps (or load generator processes).
        "peak_still_rising": capacity.still_rising(figures, best),
        "locust_exit_code": exit_code,
    }


def _peak_json(best: capacity.StepFigures) -> dict[str, Any]:
    return {
        "rate_per_s": best.rate_per_s,
        "p99_ms": best.p99_ms,
        "p50_ms": best.p50_ms,
        "users": best.users,
        "step": best.step,
    }


def check_correct(admin: Admin, drop_id: str, told: int) -> dict[str, Any]:
    orders = report.parse_orders(admin.orders(drop_id, page=5000))
    stats = admin.stats(drop_id)
    sold = report.oversold(orders, SUPPLY, stats)
    live = sold.live_orders
    statuses = Counter(o.status for o in orders)
    return {
        "clients_told_allocated": told,
        "orders_listed": len(orders),
        "orders_by_status": dict(statuses),
        "server_held_plus_confirmed": int(stats["held"]) + int(stats["confirmed"]),
        # A client may time out after the server allocated: more orders than 201s is possible
        # (and is a unit held for nobody); fewer would be an allocation lost.
        "ok_no_allocation_lost": live >= told,
        "ok_listing_matches_counters": sold.orders_vs_stats == 0,
        "ok_no_serial_sold_twice": sold.duplicate_serials == 0 and sold.serials_out_of_range == 0,
        "ok_stats_consistent": bool(stats.get("consistent")),
        "allocated_without_answer": max(0, live - told),
    }


def print_summary(result: dict[str, Any]) -> None:
    print("step  users  seconds  purchases/s  errors   p50 ms  p99 ms")
    for s in result["steps"]:
        print(
            f"{s['step']:<4}  {s['users']:<5}  {s['seconds']:<7}  {s['rate_per_s']:<11}  "
            f"{s['error_rate']:<7.2%}  {s['p50_ms']!s:<6}  {s['p99_ms']!s:<6}"
        )
    c = result["correctness"]
    print(f"correct: {result['correct']}  ({', '.join(f'{k}={v}' for k, v in c.items())})")
    peak = result["peak"]
    if peak:
        rate, p99, users = peak["rate_per_s"], peak["p99_ms"], peak["users"]
        print(f"peak: {rate} purchases/s at p99 {p99} ms ({users} buyers)")
        if result["peak_still_rising"]:
            print("  (still rising at the last step: add steps with more buyers)")
    else:
        print("peak: none (no step within bounds, or the server was not correct)")


if __name__ == "__main__":
    sys.exit(main())
