"""The short text table printed after a run (and by the CI check)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loadtest.report import fmt_json

COLUMNS = (
    ("scenario", 12),
    ("supply", 6),
    ("humans", 6),
    ("bots", 7),
    ("h.units", 7),
    ("b.units", 7),
    ("ratio", 6),
    ("95% CI", 16),
    ("oversold", 8),
    ("extra", 5),
    ("verdict", 0),
)


def row(report: dict[str, Any]) -> list[str]:
    low, high = report["win_rate_ratio_ci95"]
    expected = report.get("meets_expectation")
    verdict = report["verdict"]
    if expected is not None:
        verdict += f" (expected {report['expected']}: {'met' if expected else 'NOT met'})"
    return [
        report["scenario"],
        str(report["supply"]),
        str(report["human_persons"]),
        f"{report['bot_persons']}x{report['accounts_per_bot']}",
        str(report["human_units"]),
        str(report["bot_units"]),
        fmt_json(report["win_rate_ratio"]),
        f"[{fmt_json(low)}, {fmt_json(high)}]",
        str(report["oversold"]),
        str(report["bot_extra_account_wins"]),
        verdict,
    ]


def format_table(reports: Sequence[dict[str, Any]]) -> str:
    lines = [_line([name for name, _ in COLUMNS])]
    lines.extend(_line(row(r)) for r in reports)
    return "\n".join(lines)


def _line(cells: Sequence[str]) -> str:
    return "  ".join(
        cell.ljust(width) if width else cell
        for cell, (_, width) in zip(cells, COLUMNS, strict=True)
    ).rstrip()


def format_requests(report: dict[str, Any]) -> str:
    """One line per class and endpoint: ``human purchase: 201 held=12, 409 sold_out=28``."""
    lines = []
    for cls, endpoints in report.get("requests", {}).items():
        for endpoint, outcomes in endpoints.items():
            parts = ", ".join(f"{outcome}={n}" for outcome, n in outcomes.items())
            lines.append(f"  {cls:<5} {endpoint:<9} {parts}")
    return "\n".join(lines)
