"""Solving challenges for the simulated parties, with the project's own solver.

Pure CPU, no gevent: the Locust users call these and do the sleeping themselves, and the unit
tests check the payloads against the project's verifier.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dropserver.pow.solver import NoSolutionError, Solution, payload, solve
from loadtest.devices import PowModel, browser_seconds, modelled_counter


@dataclass(frozen=True, slots=True)
class Solved:
    payload: str
    counter: int
    cpu_seconds: float  # what solving really took here
    browser_seconds: float  # what the simulated device would have taken (0 for a bot)


def solve_native(challenge: Mapping[str, Any]) -> Solved | None:
    """A bot: solve at native speed, report the real time."""
    try:
        solution = solve(challenge)
    except NoSolutionError:
        return None
    return Solved(payload(challenge, solution), solution.counter, solution.seconds, 0.0)


def solve_as_browser(
    challenge: Mapping[str, Any], device: str, model: PowModel, sim_counter_max: int
) -> Solved | None:
    """A human: solve for real (small simulated difficulty), and work out how long the
    device would have needed for the modelled one. The payload reports the browser's time,
    as the widget does."""
    try:
        solution = solve(challenge)
    except NoSolutionError:
        return None
    counter = modelled_counter(solution.counter, sim_counter_max, model)
    browser = browser_seconds(device, model, counter)
    reported = Solution(solution.counter, solution.derived_key, browser)
    return Solved(payload(challenge, reported), solution.counter, solution.seconds, browser)
