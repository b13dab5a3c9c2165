"""Request outcomes by simulated class, counted in the Locust process and written as JSON.

Locust's own statistics split requests by name but lump business outcomes together (a 409
``sold_out`` and a 201 are both "successes"), so the simulated users also count every answer
here, keyed ``class|endpoint|outcome`` (outcome: the HTTP status plus the error code, such as
``409 sold_out``; status 0 is a connection error). Latencies are kept as a histogram of whole
milliseconds per key group, mergeable across Locust worker processes.

Pure module: the Locust wiring takes the environment as an argument and imports nothing.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SEP = "|"


class Tally:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.latency_ms: dict[str, Counter[int]] = {}
        self.marks: dict[str, float] = {}  # named moments (Unix seconds), earliest wins

    def mark(self, name: str, moment: float) -> None:
        self.marks[name] = min(moment, self.marks.get(name, moment))

    def add(self, cls: str, endpoint: str, outcome: str, n: int = 1) -> None:
        self.counts[SEP.join((cls, endpoint, outcome))] += n

    def latency(self, group: str, ms: float) -> None:
        hist = self.latency_ms.setdefault(group, Counter())
        hist[bucket_ms(ms)] += 1

    def merge(self, data: Mapping[str, Any]) -> None:
        self.counts.update(data.get("counts", {}))
        for name, moment in data.get("marks", {}).items():
            self.mark(name, float(moment))
        for group, hist in data.get("latency_ms", {}).items():
            mine = self.latency_ms.setdefault(group, Counter())
            mine.update({int(k): v for k, v in hist.items()})

    def snapshot(self, *, clear: bool = False) -> dict[str, Any]:
        data = {
            "counts": dict(self.counts),
            "marks": dict(self.marks),
            "latency_ms": {
                g: {str(k): v for k, v in h.items()} for g, h in self.latency_ms.items()
            },
        }
        if clear:
            self.counts.clear()
            self.latency_ms.clear()
            self.marks.clear()
        return data

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.snapshot(), indent=1, sort_keys=True))


def bucket_ms(ms: float) -> int:
    """Whole ms below 100, then two significant digits (as Locust rounds): bounded buckets."""
    value = max(0, round(ms))
    if value < 100:
        return value
    magnitude: int = 10 ** (len(str(value)) - 2)
    return round(value / magnitude) * magnitude


def percentile(hist: Mapping[int, int], q: float) -> float | None:
    """The smallest bucket at or below which a fraction ``q`` of the samples fall."""
    total = sum(hist.values())
    if total == 0:
        return None
    rank = math.ceil(q * total)
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= rank:
            return float(value)
    return float(max(hist))


def error_field(body: Any, field: str) -> str | None:
    """A field of the contract's error object ``{"error": {"code": ..., "message": ...}}``."""
    error = body.get("error") if isinstance(body, dict) else None
    value = error.get(field) if isinstance(error, dict) else None
    return value if isinstance(value, str) else None


def outcome_of(status: int, body: Any) -> str:
    """``"201"``, ``"409 sold_out"``, ``"0 connection_error"``..."""
    if status == 0:
        return "0 connection_error"
    code = error_field(body, "code")
    if code is None and status in (200, 201, 202) and isinstance(body, dict):
        state = body.get("status")  # "held", "pending", ...
        code = state if isinstance(state, str) else None
    return f"{status} {code}" if code else str(status)


def by_class(counts: Mapping[str, int]) -> dict[str, dict[str, dict[str, int]]]:
    """``{"class|endpoint|outcome": n}`` as ``{class: {endpoint: {outcome: n}}}``."""
    nested: dict[str, dict[str, dict[str, int]]] = {}
    for key, n in sorted(counts.items()):
        cls, endpoint, outcome = key.split(SEP, 2)
        nested.setdefault(cls, {}).setdefault(endpoint, {})[outcome] = n
    return nested


def server_errors(counts: Mapping[str, int]) -> dict[str, int]:
    """Answers per class that no drop rule explains: 5xx and connection errors."""
    errors: dict[str, int] = {}
    for key, n in counts.items():
        cls, _, outcome = key.split(SEP, 2)
        status = outcome.split(" ", 1)[0]
        if status.isdigit() and (int(status) == 0 or int(status) >= 500):
            errors[cls] = errors.get(cls, 0) + n
    return errors


def load(path: Path) -> Tally:
    tally = Tally()
    if path.exists():
        tally.merge(json.loads(path.read_text()))
    return tally


#: The one tally of this process (the Locust users add to it).
TALLY = Tally()


def wire_locust(environment: Any, path: Path) -> None:
    """Ship worker tallies to the master and write the merged tally when Locust quits."""
    events = environment.events

    def on_report_to_master(client_id: str, data: dict[str, Any], **_: Any) -> None:
        data["sim_tally"] = TALLY.snapshot(clear=True)

    def on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
        if "sim_tally" in data:
            TALLY.merge(data["sim_tally"])

    def on_quitting(environment: Any, **_: Any) -> None:
        # Workers have shipped everything to the master; only the master (or a local run)
        # writes the file.
        if type(environment.runner).__name__ != "WorkerRunner":
            TALLY.write(path)

    events.report_to_master.add_listener(on_report_to_master)
    events.worker_report.add_listener(on_worker_report)
    events.quitting.add_listener(on_quitting)
