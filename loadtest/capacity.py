"""Throughput figures from a stepped load: rate, errors and latency per step, and the peak.

Pure module. The Locust users count every purchase under the wall-clock second it started in
(``buyer|s<unix second>|<outcome>``, latency group ``s<unix second>``); the shape marks when each
step began (``step<i>``, and ``end``). A step's figures use its whole seconds after a warm-up,
so ramp-up and the previous step's tail do not blur them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from loadtest.tally import SEP, Tally, percentile

CLS = "buyer"
SUCCESS = "201"


def second_key(moment: float) -> str:
    return f"s{int(moment)}"


@dataclass(frozen=True, slots=True)
class StepFigures:
    step: int
    users: int
    seconds: int
    purchases: int
    errors: int  # anything but a 201
    rate_per_s: float
    error_rate: float
    p50_ms: float | None
    p99_ms: float | None
    outcomes: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def step_figures(tally: Tally, users: Sequence[int], warmup_s: float) -> list[StepFigures]:
    by_second: dict[int, Counter[str]] = {}
    for key, n in tally.counts.items():
        cls, second, outcome = key.split(SEP, 2)
        if cls == CLS and second.startswith("s"):
            by_second.setdefault(int(second[1:]), Counter())[outcome] += n
    figures = []
    for i, count in enumerate(users):
        start, stop = tally.marks.get(f"step{i}"), tally.marks.get(f"step{i + 1}")
        if stop is None:
            stop = tally.marks.get("end")
        if start is None or stop is None:
            continue
        seconds = range(math.ceil(start + warmup_s), math.floor(stop))
        outcomes: Counter[str] = Counter()
        latency: Counter[int] = Counter()
        for s in seconds:
            outcomes.update(by_second.get(s, {}))
            latency.update(tally.latency_ms.get(f"s{s}", {}))
        total = sum(outcomes.values())
        ok = sum(n for outcome, n in outcomes.items() if outcome.split(" ")[0] == SUCCESS)
        n_seconds = len(seconds)
        figures.append(
            StepFigures(
                step=i,
                users=count,
                seconds=n_seconds,
                purchases=ok,
                errors=total - ok,
                rate_per_s=round(ok / n_seconds, 1) if n_seconds else 0.0,
                error_rate=round((total - ok) / total, 4) if total else 0.0,
                p50_ms=percentile(latency, 0.50),
                p99_ms=percentile(latency, 0.99),
                outcomes=dict(sorted(outcomes.items())),
            )
        )
    return figures


def peak(
    figures: Sequence[StepFigures], *, max_error_rate: float, p99_slo_ms: float | None
) -> StepFigures | None:
    """The step with the highest purchase rate whose errors (and p99, given an SLO) stay
    within bounds."""
    good = [
        f
        for f in figures
        if f.seconds > 0
        and f.purchases > 0
        and f.error_rate <= max_error_rate
        and (p99_slo_ms is None or (f.p99_ms is not None and f.p99_ms <= p99_slo_ms))
    ]
    return max(good, key=lambda f: f.rate_per_s, default=None)


def still_rising(figures: Sequence[StepFigures], best: StepFigures | None) -> bool:
    """True when the best step is the last and it beat the one before by over 10%: more
    buyers would probably buy faster, so the peak was not found."""
    if best is None or len(figures) < 2 or best is not figures[-1]:
        return False
    return best.rate_per_s > 1.1 * figures[-2].rate_per_s


def client_purchases(counts: Mapping[str, int]) -> int:
    """Every 201 the clients saw, all steps together."""
    total = 0
    for key, n in counts.items():
        cls, _, outcome = key.split(SEP, 2)
        if cls == CLS and outcome.split(" ")[0] == SUCCESS:
            total += n
    return total
