"""How long a human's browser takes to solve a proof of work, from ALTCHA's published benchmarks.

The simulation runs the server with SMALL difficulties so that really solving a challenge costs
a few milliseconds (every payload a human sends is genuine). The human then sleeps the time
its device would have needed for the difficulty a production drop would use (the *modelled*
difficulty), instead of burning the CPU the load generator shares with the server.

Reference (shared/reference/proof-of-work.md, section 6): ALTCHA v2 PBKDF2/SHA-256 with cost
5000 and a secret counter between 5,000 and 10,000 (about 7,500 KDF runs on average) takes
about 1.6 s in Chrome on a MacBook and about 9.5 s on a Galaxy A14. We assume time is
proportional to cost * counter (each counter tried is one KDF of ``cost`` iterations).

The found counter is mapped from the simulated range onto the modelled one, so a human whose
challenge happened to have a high counter also waits longer, as in a browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: Work of ALTCHA's benchmark: PBKDF2 cost 5000 times a mean counter of 7,500.
REFERENCE_WORK: Final = 5000 * 7500

#: Seconds each device needs for REFERENCE_WORK (ALTCHA v2 PBKDF2/SHA-256 benchmarks).
DEVICE_SECONDS: Final[dict[str, float]] = {
    "laptop": 1.6,  # MacBook, Chrome, 8 workers
    "phone": 9.5,  # Galaxy A14, 4 workers
}


@dataclass(frozen=True, slots=True)
class PowModel:
    """The production difficulty a simulated drop stands for (PBKDF2/SHA-256)."""

    cost: int = 5000
    counter_max: int = 10_000

    def to_json(self) -> dict[str, int]:
        return {"cost": self.cost, "counter_max": self.counter_max}


def modelled_counter(solved_counter: int, sim_counter_max: int, model: PowModel) -> float:
    """The counter a browser would have searched up to, on the modelled difficulty's scale."""
    if sim_counter_max <= 0:
        raise ValueError("sim_counter_max must be positive")
    return solved_counter * model.counter_max / sim_counter_max


def browser_seconds(device: str, model: PowModel, counter: float) -> float:
    """Seconds ``device`` needs to reach ``counter`` with the modelled cost."""
    return DEVICE_SECONDS[device] * model.cost * counter / REFERENCE_WORK


def slowest_seconds(model: PowModel) -> float:
    """The worst case: the slowest device and the highest counter the model allows."""
    return max(DEVICE_SECONDS.values()) * model.cost * model.counter_max / REFERENCE_WORK
