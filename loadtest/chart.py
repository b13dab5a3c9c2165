"""The PNG: units won by class, one group of bars per scenario report in a directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loadtest.report import fmt_json

SCENARIO_ORDER = ("unprotected", "fcfs", "fair-start", "lottery")


def fairness_reports(directory: Path) -> list[dict[str, Any]]:
    """The newest fairness report of each scenario among the JSON files of ``directory``."""
    newest: dict[str, tuple[str, dict[str, Any]]] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(report, dict) or report.get("kind") != "fairness":
            continue
        name, stamp = report.get("scenario"), str(report.get("generated_at", ""))
        if isinstance(name, str) and (name not in newest or stamp >= newest[name][0]):
            newest[name] = (stamp, report)

    def order(name: str) -> tuple[int, str]:
        return (SCENARIO_ORDER.index(name) if name in SCENARIO_ORDER else 99, name)

    return [newest[name][1] for name in sorted(newest, key=order)]


def draw(reports: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: the harness runs headless
    import matplotlib.pyplot as plt

    names = [r["scenario"] for r in reports]
    xs = range(len(reports))
    width = 0.38
    fig, ax = plt.subplots(figsize=(max(5.0, 2.2 * len(reports) + 1.5), 4.2))
    humans = [r["human_units"] for r in reports]
    bots = [r["bot_units"] for r in reports]
    ax.bar([x - width / 2 for x in xs], humans, width, label="humans", color="#3b7dd8")
    ax.bar([x + width / 2 for x in xs], bots, width, label="bots", color="#d8553b")
    for x, r in zip(xs, reports, strict=True):
        top = max(r["human_units"], r["bot_units"], 1)
        low, high = r["win_rate_ratio_ci95"]
        label = (
            f"{r['human_persons']} humans, {r['bot_persons']} bots\n"
            f"ratio {fmt_json(r['win_rate_ratio'])} [{fmt_json(low)}, {fmt_json(high)}]\n"
            f"{r['verdict']}"
        )
        ax.annotate(label, (x, top), xytext=(0, 4), textcoords="offset points",
                    ha="center", va="bottom", fontsize=7.5)  # fmt: skip
    ax.set_xticks(
        list(xs), [f"{n}\nsupply {r['supply']}" for n, r in zip(names, reports, strict=True)]
    )
    ax.set_ylabel("units won")
    ax.set_title("Units won by class", fontsize=11)
    fig.text(0.01, 0.01, "ratio = units per bot person / units per human person; 95% CI",
             fontsize=7, color="#555555")  # fmt: skip
    ax.margins(y=0.35)
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
