"""A reference client: solve an ALTCHA v2 challenge the way the widget does.

Used by the test suite and by the Locust bot simulations, so it depends only on the standard
library and :mod:`dropserver.pow.kdf` (hashlib). It searches counters upward from ``start``
until the derived key starts with ``keyPrefix``; it has no shortcut, which is the point: a
deterministic-mode challenge costs the solver ``counter - start + 1`` KDF runs.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dropserver.pow.kdf import derive_key, password

_UINT32_MAX = 0xFFFF_FFFF


@dataclass(frozen=True, slots=True)
class Solution:
    """A found counter, its key (lowercase hex, as the widget sends it) and the time spent."""

    counter: int
    derived_key: str
    seconds: float


class NoSolutionError(LookupError):
    """No counter in the searched range yields a key with the challenge's prefix."""


def solve(
    challenge: Mapping[str, Any], *, start: int = 0, max_counter: int | None = None
) -> Solution:
    """Search counters ``start, start+1, ...`` (up to ``max_counter``, inclusive, or 2**32-1).

    ``challenge`` is the JSON object as received (``{"parameters": ..., "signature": ...}``).
    Raises :class:`NoSolutionError` when the range is exhausted.
    """
    params = challenge["parameters"]
    algorithm: str = params["algorithm"]
    nonce = bytes.fromhex(params["nonce"])
    salt = bytes.fromhex(params["salt"])
    cost: int = params["cost"]
    key_length: int = params.get("keyLength", 32)
    prefix: str = params["keyPrefix"].lower()
    memory_cost: int | None = params.get("memoryCost")
    parallelism: int | None = params.get("parallelism")
    last = _UINT32_MAX if max_counter is None else min(max_counter, _UINT32_MAX)
    # Compare bytes when the prefix is whole bytes: no hex string per attempt.
    prefix_bytes = bytes.fromhex(prefix) if len(prefix) % 2 == 0 else None
    began = time.perf_counter()
    for counter in range(start, last + 1):
        key = derive_key(
            algorithm,
            password(nonce, counter),
            salt,
            cost,
            key_length,
            memory_cost,
            parallelism,
        )
        if (
            key.startswith(prefix_bytes)
            if prefix_bytes is not None
            else key.hex().startswith(prefix)
        ):
            return Solution(counter, key.hex(), time.perf_counter() - began)
    raise NoSolutionError(f"no counter in [{start}, {last}] matches keyPrefix {prefix!r}")


def payload(challenge: Mapping[str, Any], solution: Solution) -> str:
    """The base64 payload the widget submits: the challenge as received plus the solution.

    ``time`` is in milliseconds, like the widget's ``performance.now()`` difference.
    """
    body = {
        "challenge": {
            "parameters": challenge["parameters"],
            "signature": challenge["signature"],
        },
        "solution": {
            "counter": solution.counter,
            "derivedKey": solution.derived_key,
            "time": round(solution.seconds * 1000, 1),
        },
    }
    # Compact separators, like JSON.stringify (the server does not care, but payloads that
    # look like the widget's make the load tests realistic in size).
    raw = json.dumps(body, separators=(",", ":")).encode()
    return base64.b64encode(raw).decode("ascii")
