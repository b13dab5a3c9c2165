"""The CI gate: quick ``unprotected`` and ``lottery`` rehearsals with fixed seeds.

    python -m loadtest.ci_check [--out-dir DIR] [--seed N] [--allow-unsupported]

Fails (exit 1) when either scenario oversold anything, or when the lottery's 95% interval of
the win-rate ratio excludes 1. Exits 3 when the server lacks a feature a scenario needs
(``--allow-unsupported`` skips such a scenario instead, while those features are being built).

The seed fixes the crowd (who arrives when, on which device) and the report's bootstrap, and,
through the server's ``[rehearsal] seed``, the draw too (its seed and the entry ids), so a CI
result is reproducible and not flaky. Production draws keep fresh, secret seeds. The printed
chance is how often the interval check would fail on a perfectly fair draw with a random seed:
what the fixed seed spares CI.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtest import report, scenarios
from loadtest.capabilities import Unsupported
from loadtest.fairness import write
from loadtest.rehearsal import Options, run
from loadtest.table import format_requests, format_table

SEED = 20261121
EXIT_FAILED, EXIT_UNSUPPORTED = 1, 3


def problems(reports: Sequence[dict[str, Any]]) -> list[str]:
    found = []
    for r in reports:
        if r["oversold"] != 0:
            found.append(f"{r['scenario']}: oversold {r['oversold']} unit(s)")
        if r["scenario"] == "lottery":
            low, high = (report.from_json_number(v) for v in r["win_rate_ratio_ci95"])
            if not low <= 1.0 <= high:
                found.append(
                    f"lottery: the ratio's 95% interval [{low:.2f}, {high:.2f}] excludes 1 "
                    f"(ratio {r['win_rate_ratio']}, exact p {r['exact_test_p']})"
                )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.ci_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--out-dir", type=Path, help="keep the reports and chart here")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--allow-unsupported", action="store_true")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dropserver-ci-") as tmp:
        out_dir = args.out_dir or Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        reports, unsupported = [], []
        for name in ("unprotected", "lottery"):
            options = Options(
                scenario=scenarios.SCENARIOS[name],
                quick=True,
                size=scenarios.QUICK_SIZE,
                seed=args.seed,
                logs=out_dir / name,
                draw_seed=f"ci-{args.seed}",
            )
            try:
                result = run(options)
            except Unsupported as exc:
                unsupported.append(f"{name}: {exc}")
                continue
            write(result, out_dir / f"{name}.json")
            reports.append(result)
    if reports:
        print(format_table(reports))
        for r in reports:
            print(f"{r['scenario']} requests:")
            print(format_requests(r))
    for r in reports:
        if r["scenario"] == "lottery":
            size = scenarios.QUICK_SIZE
            winners = r["human_winners"] + r["bot_winners"]
            chance = report.ci_false_alarm_rate(size.humans, size.bots, winners, seed=args.seed)
            print(f"lottery check: would fail on a fair draw with probability {chance:.2%}")
    for line in unsupported:
        print(f"UNSUPPORTED {line}", file=sys.stderr)
    found = problems(reports)
    for line in found:
        print(f"FAIL {line}", file=sys.stderr)
    if found:
        return EXIT_FAILED
    if unsupported and not args.allow_unsupported:
        return EXIT_UNSUPPORTED
    print("ci_check: ok" + (" (some scenarios skipped: unsupported)" if unsupported else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
