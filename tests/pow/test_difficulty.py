"""Difficulty validation and pre-derivation."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from dropserver.pow import Difficulty, derive_key, password, pre_derive


def test_defaults_and_hashable() -> None:
    d = Difficulty(cost=5000, counter_max=10_000)
    assert d.algorithm == "PBKDF2/SHA-256"
    assert d.key_length == 32
    assert d.memory_cost is None and d.parallelism is None
    assert {d: 1}[Difficulty(cost=5000, counter_max=10_000)] == 1
    assert d != Difficulty(cost=5000, counter_max=10_001)


def test_scrypt_effective_parameters() -> None:
    d = Difficulty(algorithm="SCRYPT", cost=16, counter_max=10)
    assert (d.scrypt_r, d.scrypt_p) == (8, 1)
    d = Difficulty(algorithm="SCRYPT", cost=16, counter_max=10, memory_cost=2, parallelism=3)
    assert (d.scrypt_r, d.scrypt_p) == (2, 3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"algorithm": "ARGON2ID", "cost": 1, "counter_max": 10}, "algorithm"),
        ({"cost": 0, "counter_max": 10}, "cost"),
        ({"cost": 2_000_000, "counter_max": 10}, "cost"),
        ({"cost": True, "counter_max": 10}, "cost must be an integer"),
        ({"cost": 10, "counter_max": 1}, "counter_max"),
        ({"cost": 10, "counter_max": 10**9}, "counter_max"),
        ({"cost": 10, "counter_max": 10.0}, "counter_max must be an integer"),
        ({"cost": 10, "counter_max": 10, "key_length": 8}, "key_length"),
        ({"cost": 10, "counter_max": 10, "key_length": 65}, "key_length"),
        ({"algorithm": "SHA-256", "cost": 10, "counter_max": 10, "key_length": 33}, "key_length"),
        ({"cost": 10, "counter_max": 10, "memory_cost": 8}, "only apply to SCRYPT"),
        ({"cost": 10, "counter_max": 10, "parallelism": 1}, "only apply to SCRYPT"),
        ({"algorithm": "SCRYPT", "cost": 1000, "counter_max": 10}, "power of 2"),
        ({"algorithm": "SCRYPT", "cost": 1, "counter_max": 10}, "power of 2"),
        ({"algorithm": "SCRYPT", "cost": 16, "counter_max": 10, "memory_cost": 0}, "memory_cost"),
        ({"algorithm": "SCRYPT", "cost": 16, "counter_max": 10, "parallelism": 99}, "parallel"),
        (
            {"algorithm": "SCRYPT", "cost": 2**18, "counter_max": 10, "memory_cost": 16},
            "MiB",
        ),
    ],
)
def test_validation(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Difficulty(**kwargs)


def test_from_config() -> None:
    assert Difficulty.from_config({"cost": 5000, "counter_max": 10_000}) == Difficulty(
        cost=5000, counter_max=10_000
    )
    raw = {"algorithm": "SCRYPT", "cost": 65536, "counter_max": 200, "memory_cost": 8}
    assert Difficulty.from_config(raw) == Difficulty(
        algorithm="SCRYPT", cost=65536, counter_max=200, memory_cost=8
    )


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"cost": 10}, "missing required key 'counter_max'"),
        ({"counter_max": 10}, "missing required key 'cost'"),
        ({"cost": 10, "counter_max": 10, "iterations": 3}, "unknown keys"),
        ({"cost": "10", "counter_max": 10}, "cost must be an integer"),
        ({"cost": 10, "counter_max": False}, "counter_max must be an integer"),
        ({"algorithm": 1, "cost": 10, "counter_max": 10}, "algorithm must be a string"),
    ],
)
def test_from_config_refuses(raw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Difficulty.from_config(raw)


def test_pre_derive_counter_range_and_key() -> None:
    d = Difficulty(cost=1, counter_max=9)  # counters 4..9
    seen: Counter[int] = Counter()
    for _ in range(300):
        pre = pre_derive(d)
        seen[pre.counter] += 1
        assert len(pre.nonce) == 16 and len(pre.salt) == 16
    assert set(seen) == set(range(4, 10))
    pre = pre_derive(Difficulty(algorithm="SCRYPT", cost=16, counter_max=10, memory_cost=1))
    assert pre.key == derive_key(
        "SCRYPT", password(pre.nonce, pre.counter), pre.salt, 16, 32, 1, None
    )


def test_pre_derived_repr_hides_the_answer() -> None:
    pre = pre_derive(Difficulty(cost=1, counter_max=10))
    assert pre.key.hex() not in repr(pre)
    assert f"counter={pre.counter}" not in repr(pre)
