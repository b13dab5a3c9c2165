"""Rehearse a drop and report who won.

    python -m loadtest.fairness --scenario NAME [--quick] [--humans N] [--bots N]
        [--accounts-per-bot N] [--supply N] [--seed N]
        [--url URL --api-key KEY --identity-secret SECRET [--platform ID]] --out report.json

Starts ``dropserver serve`` with a generated config (embedded Redis, in a temp dir) unless
``--url`` names a running server, runs the Locust crowd headless, confirms every hold as the
platform would, reads the outcome from the server, writes the JSON report, prints a table and
draws ``fairness.png`` (every fairness report in the output directory, side by side).

Exit status: 0 when the run completed and nothing was oversold, 1 when something was oversold,
3 when the server lacks a feature the scenario needs, 2 for bad arguments. An unfair verdict is
a finding, not a failure of the tool: read ``verdict`` and ``meets_expectation``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtest import chart, scenarios
from loadtest.capabilities import Unsupported
from loadtest.rehearsal import Options, run
from loadtest.scenarios import SCENARIOS, Size
from loadtest.table import format_requests, format_table

EXIT_OVERSOLD, EXIT_UNSUPPORTED = 1, 3


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest.fairness", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    p.add_argument("--quick", action="store_true", help="a small crowd, under a minute")
    p.add_argument("--humans", type=int, help="human persons (quick 40, full 200)")
    p.add_argument("--bots", type=int, help="bot persons (quick 10, full 50)")
    p.add_argument("--accounts-per-bot", type=int, help="accounts of each bot person (10)")
    p.add_argument("--supply", type=int, help="units on sale (default 40%% of the persons)")
    p.add_argument("--seed", type=int, default=1, help="seed of the crowd and the bootstrap")
    p.add_argument(
        "--draw-seed",
        help="fix the started server's draw seed and entry ids (reproducible draws; never use "
        "for a real drop)",
    )
    p.add_argument("--url", help="a running server (else one is started)")
    p.add_argument("--api-key", help="with --url: the platform's admin API key")
    p.add_argument("--identity-secret", help="with --url: the platform's HS256 identity secret")
    p.add_argument("--platform", default="rehearsal", help="with --url: the platform id")
    p.add_argument("--out", type=Path, required=True, help="where to write the JSON report")
    return p


def options_from(args: argparse.Namespace) -> Options:
    base = scenarios.QUICK_SIZE if args.quick else scenarios.FULL_SIZE
    humans = base.humans if args.humans is None else args.humans
    bots = base.bots if args.bots is None else args.bots
    accounts = base.accounts_per_bot if args.accounts_per_bot is None else args.accounts_per_bot
    supply = args.supply if args.supply is not None else scenarios.default_supply(humans, bots)
    return Options(
        scenario=SCENARIOS[args.scenario],
        quick=args.quick,
        size=Size(humans=humans, bots=bots, accounts_per_bot=accounts, supply=supply),
        seed=args.seed,
        url=args.url,
        api_key=args.api_key,
        identity_secret=args.identity_secret,
        platform=args.platform,
        logs=args.out.with_suffix(""),
        draw_seed=args.draw_seed,
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.url and not (args.api_key and args.identity_secret):
        p.error("--url needs --api-key and --identity-secret")
    for flag in ("humans", "bots", "accounts_per_bot", "supply"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            p.error(f"--{flag.replace('_', '-')} must be at least 1")
    options = options_from(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        report = run(options)
    except Unsupported as exc:
        print(f"{args.scenario}: {exc}", file=sys.stderr)
        return EXIT_UNSUPPORTED
    write(report, args.out)
    print(format_table([report]))
    print(format_requests(report))
    for note in report["notes"]:
        print(f"  note: {note}")
    print(f"report: {args.out}  chart: {args.out.parent / 'fairness.png'}")
    return EXIT_OVERSOLD if report["oversold"] else 0


def write(report: dict[str, Any], out: Path) -> None:
    out.write_text(json.dumps(report, indent=2) + "\n")
    chart.draw(chart.fairness_reports(out.parent), out.parent / "fairness.png")


if __name__ == "__main__":
    sys.exit(main())
