"""Locust entry point of a fairness rehearsal: ``LOADTEST_PLAN=plan.json locust -f ...``.

Started by ``python -m loadtest.fairness`` (see there). The shape spawns the whole crowd at
once, well before the opening: every user then waits for its own moment in the plan (a bot's
pre-open polling, a human's arrival), which keeps the arrival pattern exact and reproducible
instead of depending on Locust's spawn pacing. The shape ends the run at the plan's end.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from locust import LoadTestShape, events

from loadtest.tally import wire_locust
from loadtest.users import Human, ScalperBot, plan

Human.fixed_count = len(plan().crowd.humans)
ScalperBot.fixed_count = len(plan().crowd.bots)
ScalperBot.concurrency = max((len(b.clients) for b in plan().crowd.bots), default=1) + 2


class DropShape(LoadTestShape):
    def tick(self) -> tuple[int, float, list[type]] | None:
        if time.time() >= plan().end_at:
            return None
        classes: list[type] = [c for c in (Human, ScalperBot) if c.fixed_count > 0]
        users = Human.fixed_count + ScalperBot.fixed_count
        return users, max(users, 1), classes


@events.init.add_listener  # type: ignore[untyped-decorator]
def _on_init(environment: Any, **_: Any) -> None:
    wire_locust(environment, Path(plan().tally_path))
