"""The plan handed to the Locust process: everything the simulated crowd needs, as JSON.

The orchestrator (``loadtest.fairness``) creates the drop and writes the plan; the Locust
subprocess reads it from the file named by ``LOADTEST_PLAN``. All times are Unix seconds on the
load generator's clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.crowd import Crowd
from loadtest.devices import PowModel

PLAN_ENV = "LOADTEST_PLAN"


@dataclass(frozen=True, slots=True)
class BotPolicy:
    poll_interval_s: float = 0.2  # pre-open reconnaissance, one account at a time
    fire_early_s: float = 0.05  # the first shot goes out this long before opens_at
    retry_pause_s: float = 0.05  # after any error (Retry-After is ignored)
    sold_out_pause_s: float = 0.5  # keeps polling for stock that expiry or cancel returns
    replays_per_challenge: int = 1  # shared or used payloads tried before a fresh challenge


@dataclass(frozen=True, slots=True)
class HumanPolicy:
    max_failures: int = 3  # then the human gives up
    error_pause_s: float = 2.0  # after an error that comes without Retry-After


@dataclass(frozen=True, slots=True)
class Plan:
    url: str
    drop_id: str
    mode: str  # "fcfs" | "lottery"
    pow: bool
    sim_counter_max: int
    pow_model: PowModel
    opens_at: float
    bots_start_at: float
    end_at: float  # users stop; the Locust shape ends the run here
    platform: str
    identity_secret: str
    crowd: Crowd
    tally_path: str
    bot: BotPolicy = BotPolicy()
    human: HumanPolicy = HumanPolicy()

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "drop_id": self.drop_id,
            "mode": self.mode,
            "pow": self.pow,
            "sim_counter_max": self.sim_counter_max,
            "pow_model": self.pow_model.to_json(),
            "opens_at": self.opens_at,
            "bots_start_at": self.bots_start_at,
            "end_at": self.end_at,
            "platform": self.platform,
            "identity_secret": self.identity_secret,
            "crowd": self.crowd.to_json(),
            "tally_path": self.tally_path,
            "bot": {k: getattr(self.bot, k) for k in BotPolicy.__dataclass_fields__},
            "human": {k: getattr(self.human, k) for k in HumanPolicy.__dataclass_fields__},
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Plan:
        return cls(
            url=raw["url"],
            drop_id=raw["drop_id"],
            mode=raw["mode"],
            pow=raw["pow"],
            sim_counter_max=raw["sim_counter_max"],
            pow_model=PowModel(**raw["pow_model"]),
            opens_at=raw["opens_at"],
            bots_start_at=raw["bots_start_at"],
            end_at=raw["end_at"],
            platform=raw["platform"],
            identity_secret=raw["identity_secret"],
            crowd=Crowd.from_json(raw["crowd"]),
            tally_path=raw["tally_path"],
            bot=BotPolicy(**raw["bot"]),
            human=HumanPolicy(**raw["human"]),
        )

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def read(cls, path: Path) -> Plan:
        return cls.from_json(json.loads(path.read_text()))
