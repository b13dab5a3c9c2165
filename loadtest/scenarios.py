"""The rehearsal scenarios: what drop the platform creates and what the crowd looks like.

Each scenario is a drop configuration plus a timeline. The sale window (a lottery's entry
window, a fair start's randomized window) is sized the way a platform should size it: long
enough for a human who arrives late in the crowd, reacts slowly and solves the proof of work on
a low-end phone. Nothing here depends on how the bots behave.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from loadtest.crowd import latest_human_click
from loadtest.devices import PowModel, slowest_seconds

Expectation = Literal["bots_win", "fair"]

#: Simulated difficulty on the server: a few ms for the project's solver.
SIM_POW: dict[str, Any] = {
    "algorithm": "PBKDF2/SHA-256",
    "cost": 5,
    "counter_max": 100,
    "adaptive": False,
}

#: Per-person, per-IP-prefix and per-device limits of the protected scenarios. A human makes a
#: handful of requests in a whole drop, so only clients that hammer ever meet them.
RATE_LIMITS: dict[str, Any] = {
    "person": {"rate": 1, "burst": 4},
    "ip": {"rate": 5, "burst": 10},
    "device": {"rate": 1, "burst": 4},
}

#: Capabilities the scenarios may need from the server (probed before a run).
POW = "proof-of-work challenges (GET /v1/drops/{id}/challenge, enforced on purchase)"
RATE = "rate limits (429 rate_limited with Retry-After)"
LOTTERY = "lottery entries and draw (POST /v1/drops/{id}/entries, /draw)"
FAIR_START = "fair start (fcfs purchases in the first fair_start_seconds answered 202 pending)"


@dataclass(frozen=True, slots=True)
class Size:
    humans: int
    bots: int
    accounts_per_bot: int
    supply: int

    @property
    def persons(self) -> int:
        return self.humans + self.bots


@dataclass(frozen=True, slots=True)
class Timing:
    lead_s: float  # drop creation to opens_at: Locust starts and spawns meanwhile
    arrival_spread_s: float  # humans arrive in [-spread/2, spread] seconds around opens_at
    bot_pre_open_s: float  # bots start polling this long before opens_at
    tail_s: float  # after the window: last retries, fair-start serving, the draw


QUICK = Timing(lead_s=6.0, arrival_spread_s=4.0, bot_pre_open_s=2.0, tail_s=3.0)
FULL = Timing(lead_s=10.0, arrival_spread_s=12.0, bot_pre_open_s=5.0, tail_s=5.0)
QUICK_SIZE = Size(humans=40, bots=10, accounts_per_bot=10, supply=20)
FULL_SIZE = Size(humans=200, bots=50, accounts_per_bot=10, supply=100)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    mode: Literal["fcfs", "lottery"]
    pow: bool
    rate_limits: bool
    fair_start: bool
    per_account_limit: bool  # the unprotected baseline limits accounts, not persons
    expectation: Expectation | None
    requires: tuple[str, ...]

    def window_s(self, timing: Timing, model: PowModel) -> float:
        """Seconds from opens_at until every human has sent its purchase or entry."""
        human_pow = slowest_seconds(model) if self.pow else 0.0
        return math.ceil(latest_human_click(timing.arrival_spread_s) + human_pow + 1.0)

    def drop_spec(
        self, *, drop_id: str, opens_at: str, closes_at: str | None, window_s: float, size: Size
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "id": drop_id,
            "title": f"rehearsal {self.name}",
            "supply": size.supply,
            "mode": self.mode,
            "opens_at": opens_at,
            # Long enough that no hold expires before the platform (the harness) confirms it.
            "hold_seconds": 3600,
            "per_person_limit": size.accounts_per_bot if self.per_account_limit else 1,
            "pow": dict(SIM_POW) if self.pow else None,
        }
        if closes_at is not None:
            spec["closes_at"] = closes_at
        if self.mode == "lottery":
            spec["claim_seconds"] = 3600
        if self.rate_limits:
            spec["rate_limits"] = RATE_LIMITS
        if self.fair_start:
            spec["fair_start_seconds"] = int(window_s)
        return spec


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="unprotected",
            description=(
                "FCFS with no defences: no proof of work, no rate limits, and a limit per "
                "account rather than per person (per_person_limit = accounts per bot, so every "
                "bot account may buy once, as on a platform that cannot tie accounts to people)"
            ),
            mode="fcfs",
            pow=False,
            rate_limits=False,
            fair_start=False,
            per_account_limit=True,
            expectation="bots_win",
            requires=(),
        ),
        Scenario(
            name="fcfs",
            description="FCFS with proof of work, rate limits and one unit per person",
            mode="fcfs",
            pow=True,
            rate_limits=True,
            fair_start=False,
            per_account_limit=False,
            # Proof of work and limits stop replays and extra accounts, not speed at open.
            expectation=None,
            requires=(POW, RATE),
        ),
        Scenario(
            name="fair-start",
            description=(
                "FCFS with proof of work, rate limits, one unit per person and a randomized "
                "opening window (fair_start_seconds) covering a slow phone's proof of work"
            ),
            mode="fcfs",
            pow=True,
            rate_limits=True,
            fair_start=True,
            per_account_limit=False,
            expectation="fair",
            requires=(POW, RATE, FAIR_START),
        ),
        Scenario(
            name="lottery",
            description=(
                "lottery: entries with proof of work and rate limits during a window covering "
                "a slow phone's proof of work, one entry per person, then the draw"
            ),
            mode="lottery",
            pow=True,
            rate_limits=True,
            fair_start=False,
            per_account_limit=False,
            expectation="fair",
            requires=(POW, RATE, LOTTERY),
        ),
    )
}


def default_supply(humans: int, bots: int) -> int:
    """Two units for every five persons: scarce, as a drop is, but not a token handful."""
    return max(1, round((humans + bots) * 0.4))
