"""The reference solver: really searches, finds the secret counter, builds widget payloads."""

from __future__ import annotations

import base64
import json

import pytest

from dropserver.pow import Difficulty, NoSolutionError, Solution, payload, solve
from tests.pow.helpers import SMALL, SMALL_SCRYPT, SMALL_SHA, issue


@pytest.mark.parametrize("difficulty", [SMALL, SMALL_SHA, SMALL_SCRYPT])
def test_finds_the_secret_counter(difficulty: Difficulty) -> None:
    pre, challenge = issue(difficulty)
    solution = solve(challenge)
    assert solution.counter == pre.counter
    assert solution.derived_key == pre.key.hex()
    assert solution.seconds >= 0


def test_start_skips_counters_and_max_counter_bounds_the_search() -> None:
    pre, challenge = issue(SMALL)
    assert solve(challenge, start=pre.counter).counter == pre.counter
    with pytest.raises(NoSolutionError):
        solve(challenge, start=pre.counter + 1, max_counter=pre.counter + 20)
    with pytest.raises(NoSolutionError):
        solve(challenge, max_counter=pre.counter - 1)


def test_payload_is_the_widget_format() -> None:
    _, challenge = issue(SMALL)
    solution = Solution(counter=7, derived_key="ab" * 32, seconds=1.23456)
    raw = base64.b64decode(payload(challenge, solution), validate=True)
    assert b" " not in raw  # compact, like JSON.stringify
    assert json.loads(raw) == {
        "challenge": {
            "parameters": challenge["parameters"],
            "signature": challenge["signature"],
        },
        "solution": {"counter": 7, "derivedKey": "ab" * 32, "time": 1234.6},
    }


def test_payload_drops_extra_challenge_keys() -> None:
    # The widget sends back only parameters and signature (not e.g. "configuration").
    _, challenge = issue(SMALL)
    challenge = {**challenge, "configuration": {"setCookie": {"name": "altcha"}}}
    raw = json.loads(base64.b64decode(payload(challenge, solve(challenge))))
    assert set(raw["challenge"]) == {"parameters", "signature"}
