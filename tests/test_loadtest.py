"""The rehearsal harness: report math, crowd model, scenarios and tallies (no server), plus one
end-to-end run of the quick ``unprotected`` scenario against a real server (about 25 s).

Select or skip the end-to-end run by name (markers are not registered in this project):
``pytest tests/test_loadtest.py -k real_server`` / ``-k "not real_server"``.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadtest import report, scenarios
from loadtest.chart import fairness_reports
from loadtest.crowd import Crowd, make_crowd
from loadtest.devices import DEVICE_SECONDS, PowModel, browser_seconds, modelled_counter
from loadtest.plan import Plan
from loadtest.report import Order, assess, classify, oversold, ratio, ratio_interval, verdict
from loadtest.table import format_table
from loadtest.tally import Tally, bucket_ms, by_class, outcome_of, percentile

REPO = Path(__file__).resolve().parent.parent


def order(n: int, person: str, *, serial: int | None = None, status: str = "confirmed") -> Order:
    return Order(f"d.{n:032x}", n if serial is None else serial, status, f"{person}-acct", person)


def won(humans: list[int], bots: list[int]) -> list[Order]:
    """Orders giving ``human-<i>`` ``humans[i]`` units and ``bot-<i>`` ``bots[i]``, serials
    numbered from 1 like a drop's."""
    made: list[Order] = []
    for prefix, values in (("human-", humans), ("bot-", bots)):
        for i, v in enumerate(values):
            for _ in range(v):
                made.append(order(len(made) + 1, f"{prefix}{i}"))
    return made


# --- classification and parsing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("person", "cls"),
    [
        ("human-0", "human"),
        ("human-123", "human"),
        ("bot-7", "bot"),
        ("bot-", "other"),
        ("human-x", "other"),
        ("probe-lt-1", "other"),
        ("robot-1", "other"),
    ],
)
def test_classify(person: str, cls: str) -> None:
    assert classify(person) == cls


def test_parse_orders_dedupes_repeated_pages_keeping_the_later_copy() -> None:
    first = {"order_id": "a", "serial": 1, "status": "held", "account": "x", "person": "human-1"}
    again = {**first, "status": "confirmed"}
    other = {"order_id": "b", "serial": 2, "status": "held", "account": "y", "person": "bot-1"}
    orders = report.parse_orders([first, other, again])
    assert len(orders) == 2
    assert {o.order_id: o.status for o in orders} == {"a": "confirmed", "b": "held"}


# --- oversold -----------------------------------------------------------------------------------


def stats(held: int = 0, confirmed: int = 0, remaining: int = 0) -> dict[str, Any]:
    return {"held": held, "confirmed": confirmed, "remaining": remaining}


def test_oversold_zero_when_every_unit_is_sold_once() -> None:
    orders = [order(i, f"human-{i}") for i in range(1, 11)]
    result = oversold(orders, 10, stats(confirmed=10))
    assert result.units == 0
    assert result.orders_vs_stats == 0


def test_oversold_counts_orders_beyond_supply() -> None:
    orders = [order(i, f"human-{i}") for i in range(1, 13)]
    assert oversold(orders, 10, stats(confirmed=10)).units == 2


def test_oversold_counts_a_serial_sold_twice_even_within_supply() -> None:
    orders = [order(1, "human-1"), order(2, "bot-1", serial=1)]
    result = oversold(orders, 10, stats(confirmed=2, remaining=8))
    assert result.duplicate_serials == 1
    assert result.units == 1


def test_oversold_counts_serials_outside_the_supply() -> None:
    assert oversold([order(1, "human-1", serial=11)], 10, stats(confirmed=1)).units == 1


def test_oversold_trusts_the_servers_counters_too() -> None:
    assert oversold([], 10, stats(held=4, confirmed=8)).units == 2
    assert oversold([], 10, stats(remaining=-3)).units == 3


def test_expired_and_cancelled_orders_are_not_units() -> None:
    orders = [order(i, f"human-{i}", serial=1, status="expired") for i in range(1, 5)]
    orders.append(order(9, "human-9", serial=1, status="cancelled"))
    orders.append(order(10, "human-10", serial=1))
    assert oversold(orders, 1, stats(confirmed=1)).units == 0
    assert report.units_by_person(orders) == {"human-10": 1}


# --- the ratio ----------------------------------------------------------------------------------


def test_ratio_is_units_per_bot_person_over_units_per_human_person() -> None:
    assert ratio(10, 10, 40, 40) == 1.0
    assert ratio(20, 10, 20, 40) == 4.0
    assert ratio(0, 10, 20, 40) == 0.0
    assert ratio(5, 10, 0, 40) == math.inf
    assert math.isnan(ratio(0, 10, 0, 40))
    assert math.isnan(ratio(1, 0, 1, 40))


def binary(winners: int, persons: int) -> list[int]:
    return [1] * winners + [0] * (persons - winners)


def test_exact_interval_covers_1_for_a_proportional_outcome() -> None:
    interval = ratio_interval(binary(16, 40), binary(4, 10), seed=1)
    assert interval.method.startswith("exact")
    assert interval.low < 1 < interval.high


def test_exact_interval_excludes_1_when_bots_win_everything() -> None:
    interval = ratio_interval(binary(0, 40), binary(10, 10), seed=1)
    assert interval.low > 1
    assert interval.high == math.inf


def test_exact_interval_agrees_with_the_exact_test() -> None:
    # The interval excludes 1 exactly when the two-sided exact test rejects at 5%.
    for k in range(11):
        interval = report.exact_interval(persons=50, bots=10, winners=20, bot_winners=k)
        p = report.exact_test_p(50, 10, 20, k)
        assert interval.covers(1.0) == (p >= 0.05), (k, interval, p)
        point = ratio(k, 10, 20 - k, 40)
        assert interval.low <= point <= interval.high


def test_exact_interval_is_at_most_5_percent_wrong_on_a_fair_draw() -> None:
    # The rate at which a fair lottery would make the CI check fail, for the quick crowd.
    assert report.ci_false_alarm_rate(40, 10, 20, seed=1) <= 0.05
    assert report.ci_false_alarm_rate(20, 5, 10, seed=1) <= 0.05


def test_exact_interval_when_everyone_or_nobody_won() -> None:
    everyone = ratio_interval(binary(40, 40), binary(10, 10), seed=1)
    assert (everyone.low, everyone.high) == (1.0, 1.0)
    nobody = ratio_interval(binary(0, 40), binary(0, 10), seed=1)
    assert (nobody.low, nobody.high) == (0.0, math.inf)


def test_bootstrap_interval_is_reproducible_and_brackets_the_estimate() -> None:
    humans = [1] * 10 + [0] * 30
    bots = [3, 2, 0, 1, 0, 2, 0, 0, 1, 1]  # several units per bot person: no exact method
    first = ratio_interval(humans, bots, seed=5, bot_max=3)
    assert first == ratio_interval(humans, bots, seed=5, bot_max=3)
    assert first.method.startswith("stratified percentile bootstrap")
    assert first.low < ratio(10, 10, 10, 40) < first.high


def test_bootstrap_uses_the_rule_of_three_when_humans_won_nothing() -> None:
    interval = ratio_interval([0] * 40, [2] * 10, seed=1, bot_max=10)
    # bot rate 2 per person; human rate at most 3/40 (each human buys once).
    assert interval.low == pytest.approx(2 / (3 / 40))
    assert interval.high == math.inf


def test_bootstrap_uses_the_rule_of_three_when_bots_won_nothing() -> None:
    interval = ratio_interval([2] + [0] * 39, [0] * 10, seed=1, bot_max=10)
    assert interval.low == 0.0
    assert interval.high == pytest.approx((3 / 10 * 10) / (2 / 40))


# --- assess and verdict -------------------------------------------------------------------------

HUMANS = [f"human-{i}" for i in range(40)]
BOTS = [f"bot-{i}" for i in range(10)]


def test_assess_counts_classes_winners_and_extra_account_wins() -> None:
    orders = won([1] * 5 + [0] * 35, [3, 1, 0, 0, 0, 0, 0, 0, 0, 2])
    f = assess(orders, humans=HUMANS, bots=BOTS, supply=20, stats=stats(confirmed=11),
               seed=1, bot_max=3)  # fmt: skip
    assert (f.human_units, f.bot_units, f.human_winners, f.bot_winners) == (5, 6, 5, 3)
    assert f.bot_extra_account_wins == 3  # 2 from bot-0, 1 from bot-9
    assert f.ratio == pytest.approx((6 / 10) / (5 / 40))
    assert f.exact_test_p is None  # a bot person holds several units
    assert f.oversold.units == 0


def test_assess_lists_persons_outside_the_crowd() -> None:
    orders = [order(1, "human-0"), order(2, "someone")]
    f = assess(orders, humans=HUMANS, bots=BOTS, supply=5, stats=stats(confirmed=2), seed=1)
    assert f.other_persons == ["someone"]
    assert f.other_units == 1


def test_verdict_fair_lottery() -> None:
    orders = won([1] * 16 + [0] * 24, [1] * 4 + [0] * 6)
    f = assess(orders, humans=HUMANS, bots=BOTS, supply=20, stats=stats(confirmed=20), seed=1)
    label, _, met = verdict(f, "fair")
    assert (label, met) == ("fair", True)
    assert f.exact_test_p == pytest.approx(1.0)


def test_verdict_bots_win_the_unprotected_baseline() -> None:
    orders = won([0] * 40, [2] * 10)
    f = assess(orders, humans=HUMANS, bots=BOTS, supply=20, stats=stats(confirmed=20),
               seed=1, bot_max=10)  # fmt: skip
    label, _, met = verdict(f, "bots_win")
    assert label == "unfair: bots favoured"
    assert met is True
    assert verdict(f, "fair")[2] is False
    assert verdict(f, None)[2] is None


def test_verdict_flags_extra_account_wins_even_with_a_ratio_near_1() -> None:
    orders = won([1] * 8 + [0] * 32, [2] + [0] * 9)
    f = assess(orders, humans=HUMANS, bots=BOTS, supply=10, stats=stats(confirmed=10),
               seed=1, bot_max=2)  # fmt: skip
    assert f.interval.covers(1.0)
    assert verdict(f, "fair")[:1] == ("unfair: extra-account wins",)


def test_verdict_is_inconclusive_when_nothing_was_allocated() -> None:
    f = assess([], humans=HUMANS, bots=BOTS, supply=20, stats=stats(remaining=20), seed=1)
    label, _, met = verdict(f, "fair")
    assert label == "inconclusive: nothing allocated"
    assert met is False


def test_verdict_oversold_wins_over_everything() -> None:
    orders = won([1] * 16 + [0] * 24, [1] * 4 + [0] * 6)
    f = assess(orders, humans=HUMANS, bots=BOTS, supply=19, stats=stats(confirmed=20), seed=1)
    label, sentence, met = verdict(f, "fair")
    assert label == "oversold"
    assert "1 unit" in sentence
    assert met is False


def test_json_numbers() -> None:
    assert report.json_number(math.inf) == "inf"
    assert report.json_number(math.nan) is None
    assert report.json_number(1.234567) == 1.2346
    assert report.from_json_number("inf") == math.inf
    assert math.isnan(report.from_json_number(None))


# --- devices, crowd, scenarios, plan ------------------------------------------------------------


def test_browser_time_matches_altchas_benchmark_and_scales_with_work() -> None:
    model = PowModel(cost=5000, counter_max=10_000)
    assert browser_seconds("laptop", model, 7500) == pytest.approx(1.6)
    assert browser_seconds("phone", model, 7500) == pytest.approx(9.5)
    assert browser_seconds("phone", PowModel(cost=2500), 7500) == pytest.approx(9.5 / 2)
    # The simulated counter maps onto the modelled range.
    assert modelled_counter(75, 100, model) == pytest.approx(7500)
    assert set(DEVICE_SECONDS) == {"laptop", "phone"}


def test_crowd_is_reproducible_and_tells_persons_apart() -> None:
    kwargs: dict[str, Any] = dict(humans=30, bots=4, accounts_per_bot=5, arrival_spread_s=4.0)
    crowd = make_crowd(seed=3, **kwargs)
    assert crowd == make_crowd(seed=3, **kwargs)
    assert crowd != make_crowd(seed=4, **kwargs)
    assert [h.person for h in crowd.humans] == [f"human-{i}" for i in range(30)]
    assert all(len(b.clients) == 5 for b in crowd.bots)
    accounts = [c.account for b in crowd.bots for c in b.clients]
    assert len(set(accounts)) == 20
    prefixes = {c.ip.rsplit(".", 1)[0] for b in crowd.bots for c in b.clients}
    prefixes |= {h.client.ip.rsplit(".", 1)[0] for h in crowd.humans}
    assert len(prefixes) == 50  # one /24 per human and per bot account
    for h in crowd.humans:
        assert -2.0 <= h.arrive_s <= 4.0
        assert 0.15 <= h.reaction_s <= 1.5
    assert Crowd.from_json(json.loads(json.dumps(crowd.to_json()))) == crowd


def test_plan_round_trips_through_json(tmp_path: Path) -> None:
    crowd = make_crowd(humans=2, bots=1, accounts_per_bot=2, arrival_spread_s=1.0, seed=1)
    plan = Plan(
        url="http://x",
        drop_id="d",
        mode="lottery",
        pow=True,
        sim_counter_max=100,
        pow_model=PowModel(),
        opens_at=10.0,
        bots_start_at=8.0,
        end_at=30.0,
        platform="p",
        identity_secret="s",
        crowd=crowd,
        tally_path="t.json",
    )
    plan.write(tmp_path / "plan.json")
    assert Plan.read(tmp_path / "plan.json") == plan


@pytest.mark.parametrize("name", sorted(scenarios.SCENARIOS))
def test_scenario_drop_specs(name: str) -> None:
    scenario = scenarios.SCENARIOS[name]
    window = scenario.window_s(scenarios.QUICK, PowModel())
    spec = scenario.drop_spec(
        drop_id="x",
        opens_at="2030-01-01T00:00:00Z",
        closes_at="2030-01-01T00:01:00Z" if scenario.mode == "lottery" else None,
        window_s=window,
        size=scenarios.QUICK_SIZE,
    )
    assert spec["mode"] == scenario.mode
    assert (spec["pow"] is None) == (not scenario.pow)
    assert ("rate_limits" in spec) == scenario.rate_limits
    if name == "unprotected":
        assert spec["per_person_limit"] == scenarios.QUICK_SIZE.accounts_per_bot
    else:
        assert spec["per_person_limit"] == 1
    if scenario.fair_start:
        assert spec["fair_start_seconds"] == window
    if scenario.pow:
        # The window leaves a phone with the hardest modelled challenge time to act.
        assert window > scenarios.QUICK.arrival_spread_s + 9.5 * 10_000 / 7500


def test_scenarios_are_valid_drop_bodies() -> None:
    from dropserver.drops import parse_drop_spec

    for scenario in scenarios.SCENARIOS.values():
        spec = scenario.drop_spec(
            drop_id="x",
            opens_at="2030-01-01T00:00:00Z",
            closes_at="2030-01-01T00:01:00Z" if scenario.mode == "lottery" else None,
            window_s=30,
            size=scenarios.QUICK_SIZE,
        )
        parse_drop_spec(spec, platform="p")


# --- tally ----------------------------------------------------------------------------------------


def test_outcome_labels() -> None:
    assert outcome_of(201, {"order_id": "x", "status": "held"}) == "201 held"
    assert outcome_of(409, {"error": {"code": "sold_out", "message": "."}}) == "409 sold_out"
    assert outcome_of(429, {"error": {"code": "rate_limited"}}) == "429 rate_limited"
    assert outcome_of(500, "boom") == "500"
    assert outcome_of(0, None) == "0 connection_error"


def test_tally_merges_across_processes_and_groups_by_class() -> None:
    worker, master = Tally(), Tally()
    worker.add("bot", "purchase", "201 held")
    worker.add("bot", "purchase", "409 sold_out", 3)
    worker.latency("step-1", 12.4)
    master.add("human", "purchase", "201 held")
    master.merge(json.loads(json.dumps(worker.snapshot(clear=True))))
    assert worker.counts == {}
    assert by_class(master.counts) == {
        "bot": {"purchase": {"201 held": 1, "409 sold_out": 3}},
        "human": {"purchase": {"201 held": 1}},
    }
    assert master.latency_ms["step-1"] == {12: 1}


def test_server_errors_by_class() -> None:
    from loadtest.tally import server_errors

    tally = Tally()
    tally.add("bot", "purchase", "503 unavailable", 4)
    tally.add("bot", "purchase", "0 connection_error")
    tally.add("human", "purchase", "409 sold_out", 7)
    tally.add("human", "challenge", "500")
    assert server_errors(tally.counts) == {"bot": 5, "human": 1}


def test_latency_buckets_and_percentiles() -> None:
    assert [bucket_ms(v) for v in (0.4, 42.6, 123, 1234, 98765)] == [0, 43, 120, 1200, 99000]
    hist = {10: 98, 500: 1, 900: 1}
    assert percentile(hist, 0.5) == 10
    assert percentile(hist, 0.99) == 500
    assert percentile(hist, 1.0) == 900
    assert percentile({}, 0.99) is None


# --- output -------------------------------------------------------------------------------------


def fake_report(scenario: str, stamp: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "fairness",
        "scenario": scenario,
        "generated_at": stamp,
        "supply": 20,
        "human_persons": 40,
        "bot_persons": 10,
        "accounts_per_bot": 10,
        "human_units": 16,
        "bot_units": 4,
        "win_rate_ratio": 1.0,
        "win_rate_ratio_ci95": [0.28, 2.21],
        "oversold": 0,
        "bot_extra_account_wins": 0,
        "verdict": "fair",
        "expected": "fair",
        "meets_expectation": True,
        **extra,
    }


def test_chart_takes_the_newest_report_of_each_scenario(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(fake_report("lottery", "2026-01-01T00:00:00")))
    (tmp_path / "b.json").write_text(
        json.dumps(fake_report("lottery", "2026-01-02T00:00:00", bot_units=5))
    )
    (tmp_path / "c.json").write_text(json.dumps(fake_report("unprotected", "2026-01-01")))
    (tmp_path / "other.json").write_text(json.dumps({"kind": "throughput"}))
    found = fairness_reports(tmp_path)
    assert [r["scenario"] for r in found] == ["unprotected", "lottery"]
    assert found[1]["bot_units"] == 5
    pytest.importorskip("matplotlib")
    from loadtest.chart import draw

    draw(found, tmp_path / "fairness.png")
    assert (tmp_path / "fairness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_rows() -> None:
    table = format_table([fake_report("lottery", "x", win_rate_ratio="inf")])
    assert "lottery" in table
    assert "10x10" in table
    assert "inf" in table
    assert "(expected fair: met)" in table


# --- solving -------------------------------------------------------------------------------------


def issued(counter_max: int = 100) -> dict[str, Any]:
    from dropserver.pow import Difficulty, binding_data, issue_challenge, pre_derive

    return issue_challenge(
        pre_derive(Difficulty(cost=scenarios.SIM_POW["cost"], counter_max=counter_max)),
        hmac_secret=b"h" * 32,
        key_signature_secret=b"k" * 32,
        expires_at=2_000_000_000,
        data=binding_data(drop_id="d", pid="human-1", action="purchase", ip_prefix="10.0.0.0/24"),
    )


def verified(text: str) -> Any:
    from dropserver.pow import verify_payload

    return verify_payload(
        text, hmac_secret=b"h" * 32, key_signature_secret=b"k" * 32, now=1_900_000_000
    )


def test_a_humans_payload_is_genuine_and_reports_the_browsers_time() -> None:
    from loadtest.solving import solve_as_browser

    challenge = issued()
    solved = solve_as_browser(challenge, "phone", PowModel(), 100)
    assert solved is not None
    assert verified(solved.payload).data["pid"] == "human-1"
    assert 50 <= solved.counter <= 100  # deterministic mode: counter in [max/2, max]
    assert solved.browser_seconds == pytest.approx(9.5 * solved.counter * 100 / 7500)
    assert solved.cpu_seconds < 1.0
    sent = json.loads(base64.b64decode(solved.payload))
    assert sent["solution"]["time"] == pytest.approx(solved.browser_seconds * 1000, abs=0.1)


def test_a_bots_payload_is_genuine_and_costs_no_sleep() -> None:
    from loadtest.solving import solve_native

    solved = solve_native(issued())
    assert solved is not None
    assert solved.browser_seconds == 0.0
    verified(solved.payload)


# --- throughput figures -------------------------------------------------------------------------


def test_step_figures_and_peak() -> None:
    from loadtest import capacity

    tally = Tally()
    tally.mark("step0", 1000.0)
    tally.mark("step1", 1010.0)
    tally.mark("end", 1020.0)
    for second in range(1000, 1020):
        fast = second < 1010
        tally.add("buyer", f"s{second}", "201 held", 100 if fast else 150)
        for _ in range(10):
            tally.latency(f"s{second}", 5 if fast else 40)
    tally.add("buyer", "s1015", "0 connection_error", 30)
    tally.add("buyer", "s1000", "201 held", 999)  # warm-up second: ignored
    figures = capacity.step_figures(tally, [4, 8], warmup_s=2.0)
    assert [f.seconds for f in figures] == [8, 8]
    assert [f.rate_per_s for f in figures] == [100.0, 150.0]
    assert figures[1].errors == 30
    assert figures[1].error_rate == pytest.approx(30 / 1230, abs=1e-4)
    assert (figures[0].p99_ms, figures[1].p99_ms) == (5.0, 40.0)
    assert capacity.peak(figures, max_error_rate=0.05, p99_slo_ms=None) == figures[1]
    assert capacity.peak(figures, max_error_rate=0.01, p99_slo_ms=None) == figures[0]
    assert capacity.peak(figures, max_error_rate=0.05, p99_slo_ms=20) == figures[0]
    assert capacity.client_purchases(tally.counts) == 100 * 10 + 150 * 10 + 999
    assert capacity.still_rising(figures, figures[1])
    assert not capacity.still_rising(figures, figures[0])


def test_ci_check_problems() -> None:
    from loadtest.ci_check import problems

    fair = fake_report("lottery", "x", exact_test_p=1.0)
    assert problems([fair, fake_report("unprotected", "x")]) == []
    skewed = {**fair, "win_rate_ratio_ci95": [1.2, "inf"]}
    assert problems([skewed])[0].startswith("lottery: the ratio's 95% interval")
    assert problems([{**fair, "oversold": 2}]) == ["lottery: oversold 2 unit(s)"]


# --- end to end -----------------------------------------------------------------------------------


@pytest.mark.skipif(
    importlib.util.find_spec("locust") is None, reason="needs the load extra (locust)"
)
def test_quick_unprotected_rehearsal_against_a_real_server(tmp_path: Path) -> None:
    """The whole pipeline: server, Locust crowd, confirmation, report (about 25 s)."""
    out = tmp_path / "unprotected.json"
    completed = subprocess.run(
        [sys.executable, "-m", "loadtest.fairness", "--scenario", "unprotected", "--quick",
         "--seed", "7", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    result = json.loads(out.read_text())
    assert result["oversold"] == 0
    assert result["oversold_details"]["orders_vs_stats"] == 0
    assert result["stats"]["consistent"] is True
    assert result["human_units"] + result["bot_units"] == result["supply"]  # it sells out
    assert result["orders"]["by_status"] == {"confirmed": result["supply"]}
    assert result["meets_expectation"] is True, result["verdict_detail"]
    assert set(result["requests"]) == {"human", "bot"}
    assert (tmp_path / "fairness.png").exists()
    assert "unprotected" in completed.stdout
