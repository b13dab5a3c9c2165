"""One rehearsal, end to end: create the drop, run the crowd, settle, read the outcome.

The outcome comes from the server only (its orders listing and stats), never from what the
simulated users believe happened; the users' own counts are reported next to it as request
outcomes per class.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtest import capabilities, report, scenarios
from loadtest.admin import Admin
from loadtest.capabilities import rfc3339
from loadtest.crowd import make_crowd
from loadtest.devices import DEVICE_SECONDS, PowModel
from loadtest.locust_run import REPO, run_locust
from loadtest.plan import PLAN_ENV, Plan
from loadtest.scenarios import Scenario, Size, Timing
from loadtest.server import Deployment, LocalServer
from loadtest.tally import by_class, load, server_errors

LOCUSTFILE = REPO / "loadtest" / "locustfile.py"


@dataclass(frozen=True, slots=True)
class Options:
    scenario: Scenario
    quick: bool
    size: Size
    seed: int
    url: str | None = None
    api_key: str | None = None
    identity_secret: str | None = None
    platform: str = "rehearsal"
    pow_model: PowModel = field(default_factory=PowModel)
    logs: Path | None = None  # where the server and Locust logs are kept (default: dropped)
    # Fixes the server's draw (seed and entry ids) so a rehearsal is reproducible (CI). Full
    # rehearsals leave it unset: fresh, secret seeds, as in a real drop.
    draw_seed: str | None = None

    @property
    def timing(self) -> Timing:
        return scenarios.QUICK if self.quick else scenarios.FULL


def run(options: Options) -> dict[str, Any]:
    """Run one scenario (starting a server unless ``options.url``) and return its report."""
    with tempfile.TemporaryDirectory(prefix="dropserver-rehearsal-") as tmp:
        work = Path(tmp)
        server: LocalServer | None = None
        if options.url:
            assert options.api_key and options.identity_secret
            deployment = Deployment(
                options.url, options.platform, options.api_key, options.identity_secret
            )
        else:
            server = LocalServer(work, rehearsal_seed=options.draw_seed)
            deployment = server.start()
        try:
            capabilities.check(deployment, options.scenario.requires)
            return _rehearse(options, deployment, work)
        finally:
            if server is not None:
                server.stop()
                if options.logs is not None:
                    options.logs.with_suffix(".server.log").write_bytes(
                        server.log_path.read_bytes()
                    )


def _rehearse(options: Options, deployment: Deployment, work: Path) -> dict[str, Any]:
    scenario, size, timing = options.scenario, options.size, options.timing
    admin = Admin(deployment)
    window = scenario.window_s(timing, options.pow_model)
    # With a fixed draw seed the drop id must be fixed too: it is hashed into every receipt.
    suffix = "" if options.draw_seed else f"-{secrets.token_hex(3)}"
    drop_id = f"rehearsal-{scenario.name}-{options.seed}{suffix}"
    opens_at = time.time() + timing.lead_s
    closes_at = opens_at + window if scenario.mode == "lottery" else None
    end_at = (closes_at + 1.0) if closes_at else opens_at + window + timing.tail_s
    spec = scenario.drop_spec(
        drop_id=drop_id,
        opens_at=rfc3339(opens_at),
        closes_at=rfc3339(closes_at) if closes_at else None,
        window_s=window,
        size=size,
    )
    admin.create_drop(spec)
    crowd = make_crowd(
        humans=size.humans,
        bots=size.bots,
        accounts_per_bot=size.accounts_per_bot,
        arrival_spread_s=timing.arrival_spread_s,
        seed=options.seed,
    )
    tally_path = work / "tally.json"
    plan = Plan(
        url=deployment.url,
        drop_id=drop_id,
        mode=scenario.mode,
        pow=scenario.pow,
        sim_counter_max=scenarios.SIM_POW["counter_max"],
        pow_model=options.pow_model,
        opens_at=opens_at,
        bots_start_at=opens_at - timing.bot_pre_open_s,
        end_at=end_at,
        platform=deployment.platform,
        identity_secret=deployment.identity_secret,
        crowd=crowd,
        tally_path=str(tally_path),
    )
    plan_path = work / "plan.json"
    plan.write(plan_path)
    locust_log = options.logs.with_suffix(".locust.log") if options.logs else work / "locust.log"
    exit_code = run_locust(
        LOCUSTFILE,
        host=deployment.url,
        env={PLAN_ENV: str(plan_path)},
        log_path=locust_log,
        timeout=end_at - time.time() + 90,
    )
    notes: list[str] = []
    draw_due = closes_at or (opens_at + window if scenario.fair_start else None)
    if draw_due is not None:
        time.sleep(max(0.0, draw_due - time.time()))
        if not admin.wait_drawn(drop_id, timeout=10):
            notes.append("the draw did not run by itself and POST /draw did not report it")
    _settle(admin, drop_id)
    confirmations = admin.confirm_holds(drop_id)
    orders = report.parse_orders(admin.orders(drop_id))
    stats = admin.stats(drop_id)
    fairness = report.assess(
        orders,
        humans=[h.person for h in crowd.humans],
        bots=[b.person for b in crowd.bots],
        supply=size.supply,
        stats=stats,
        seed=options.seed,
        bot_max=spec["per_person_limit"],
    )
    label, sentence, met = report.verdict(fairness, scenario.expectation)
    if exit_code == 1:
        notes.append("Locust counted unexpected answers (5xx, 4xx other than the drop's own)")
    if fairness.other_persons:
        notes.append(f"orders of persons outside the crowd: {fairness.other_persons[:5]}")
    tally = load(tally_path)
    requests = by_class(tally.counts)
    errors = server_errors(tally.counts)
    if errors:
        notes.append(f"server errors (5xx or no answer) by class: {errors}")
    for cls in ("human", "bot"):
        late = requests.get(cls, {}).get("schedule", {}).get("late", 0)
        if late:
            notes.append(f"{late} {cls}(s) started over 250 ms late: Locust started slowly")
    return {
        "kind": "fairness",
        "scenario": scenario.name,
        "description": scenario.description,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": options.seed,
        "quick": options.quick,
        "server": {"url": deployment.url, "started_by_harness": options.url is None},
        "drop": spec,
        "supply": size.supply,
        "human_persons": fairness.human_persons,
        "bot_persons": fairness.bot_persons,
        "accounts_per_bot": size.accounts_per_bot,
        "human_units": fairness.human_units,
        "bot_units": fairness.bot_units,
        "other_units": fairness.other_units,
        "human_winners": fairness.human_winners,
        "bot_winners": fairness.bot_winners,
        "units_per_human_person": round(fairness.human_units / max(1, size.humans), 4),
        "units_per_bot_person": round(fairness.bot_units / max(1, size.bots), 4),
        "win_rate_ratio": report.json_number(fairness.ratio),
        "win_rate_ratio_ci95": [
            report.json_number(fairness.interval.low),
            report.json_number(fairness.interval.high),
        ],
        "ci_method": fairness.interval.method,
        "exact_test_p": report.json_number(fairness.exact_test_p),
        "oversold": fairness.oversold.units,
        "oversold_details": fairness.oversold.to_json(),
        "bot_extra_account_wins": fairness.bot_extra_account_wins,
        "bot_accounts_winning": fairness.bot_accounts_winning,
        "expected": scenario.expectation,
        "verdict": label,
        "verdict_detail": sentence,
        "meets_expectation": met,
        "orders": {
            "distinct": len(orders),
            "by_status": _count(o.status for o in orders),
        },
        "stats": stats,
        "confirmations": confirmations,
        "requests": requests,
        "server_errors": errors,
        "timeline": {
            "opens_at": rfc3339(opens_at),
            "closes_at": rfc3339(closes_at) if closes_at else None,
            "window_seconds": window,
            "bots_start_before_open_seconds": timing.bot_pre_open_s,
            "human_arrival_spread_seconds": timing.arrival_spread_s,
            "run_ended_at": rfc3339(end_at),
        },
        "human_pow_model": {
            "modelled_difficulty": {"algorithm": "PBKDF2/SHA-256", **options.pow_model.to_json()},
            "simulated_difficulty": scenarios.SIM_POW if scenario.pow else None,
            "device_seconds_at_cost_5000_counter_7500": DEVICE_SECONDS,
        },
        "locust_exit_code": exit_code,
        "notes": notes,
    }


def _settle(admin: Admin, drop_id: str, quiet_s: float = 1.0, timeout: float = 10.0) -> None:
    """Wait until allocations stop changing (fair-start serving, last in-flight requests)."""
    deadline = time.monotonic() + timeout
    last: tuple[int, int] | None = None
    while time.monotonic() < deadline:
        stats = admin.stats(drop_id)
        now = (int(stats.get("held", 0)), int(stats.get("confirmed", 0)))
        if now == last:
            return
        last = now
        time.sleep(quiet_s)


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return dict(sorted(counts.items()))
