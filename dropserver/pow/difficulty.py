"""Difficulty levels and pre-derived (deterministic-mode) puzzles.

In ALTCHA's deterministic mode the server picks a secret counter, derives the key once and
publishes half of it as ``keyPrefix``: the client must find exactly that counter, so the work
is fixed by the server instead of left to luck. That one KDF per challenge is the expensive
part of issuing, so it is done ahead of time (:func:`pre_derive`, run by
:class:`dropserver.pow.pool.PreDerivationPool`) and the request path only signs.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Final

from dropserver.pow.kdf import (
    ALGORITHMS,
    PBKDF2_SHA256,
    SCRYPT,
    SCRYPT_DEFAULT_P,
    SCRYPT_DEFAULT_R,
    SHA256,
    derive_key,
    password,
)

NONCE_BYTES: Final = 16
SALT_BYTES: Final = 16

# Upper bounds keep a typo in the config from making challenges unsolvable on a phone or
# making the pool burn minutes of CPU per challenge. ALTCHA's recommended settings are far
# below them (PBKDF2 cost 5000 with counters up to 10k; SHA cost 1000; scrypt N=2**16..2**17).
MAX_COST: Final = {PBKDF2_SHA256: 1_000_000, SHA256: 1_000_000, SCRYPT: 2**18}
MAX_COUNTER: Final = 10_000_000
MIN_KEY_LENGTH: Final = 16  # keyPrefix is half the key: at least 8 bytes (64 bits) to match.
MAX_KEY_LENGTH: Final = 64
MAX_SCRYPT_R: Final = 32
MAX_SCRYPT_P: Final = 16
MAX_SCRYPT_MEMORY: Final = 256 << 20  # 128*N*r*p bytes per KDF run, on server and client.


@dataclass(frozen=True, slots=True, kw_only=True)
class Difficulty:
    """One difficulty level: KDF parameters plus the range of the secret counter.

    Immutable and hashable: it is the key of the pre-derivation pool. Validated on
    construction, so an invalid level cannot exist. ``memory_cost`` (scrypt ``r``) and
    ``parallelism`` (scrypt ``p``) are only allowed for ``SCRYPT``; ``None`` means 8 and 1.
    """

    algorithm: str = PBKDF2_SHA256
    cost: int
    counter_max: int
    key_length: int = 32
    memory_cost: int | None = None
    parallelism: int | None = None

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(
                f"difficulty.algorithm must be one of {sorted(ALGORITHMS)}, got {self.algorithm!r}"
            )
        _check_int("cost", self.cost, 1, MAX_COST[self.algorithm])
        _check_int("counter_max", self.counter_max, 2, MAX_COUNTER)
        max_key = 32 if self.algorithm == SHA256 else MAX_KEY_LENGTH
        _check_int("key_length", self.key_length, MIN_KEY_LENGTH, max_key)
        if self.algorithm != SCRYPT:
            if self.memory_cost is not None or self.parallelism is not None:
                raise ValueError(
                    f"difficulty.memory_cost/parallelism only apply to SCRYPT, not {self.algorithm}"
                )
            return
        if self.cost < 2 or self.cost & (self.cost - 1):
            raise ValueError(
                f"difficulty.cost (scrypt N) must be a power of 2 >= 2, got {self.cost}"
            )
        if self.memory_cost is not None:
            _check_int("memory_cost", self.memory_cost, 1, MAX_SCRYPT_R)
        if self.parallelism is not None:
            _check_int("parallelism", self.parallelism, 1, MAX_SCRYPT_P)
        memory = 128 * self.cost * self.scrypt_r * self.scrypt_p
        if memory > MAX_SCRYPT_MEMORY:
            raise ValueError(
                f"difficulty: scrypt needs {memory >> 20} MiB per run "
                f"(128*N*r*p); the limit is {MAX_SCRYPT_MEMORY >> 20} MiB"
            )

    @property
    def scrypt_r(self) -> int:
        return SCRYPT_DEFAULT_R if self.memory_cost is None else self.memory_cost

    @property
    def scrypt_p(self) -> int:
        return SCRYPT_DEFAULT_P if self.parallelism is None else self.parallelism

    @property
    def counter_min(self) -> int:
        """Lowest secret counter: the client always does at least half the maximum work."""
        return self.counter_max // 2

    @classmethod
    def from_config(cls, raw: Mapping[str, object]) -> Difficulty:
        """Build a level from untrusted config input (a TOML table, a JSON admin request).

        Keys are the field names; unknown keys, missing ``cost``/``counter_max`` and
        non-integer values (bools included) raise ``ValueError`` with a clear message.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"difficulty: unknown keys {unknown}; allowed: {sorted(known)}")
        for required in ("cost", "counter_max"):
            if required not in raw:
                raise ValueError(f"difficulty: missing required key {required!r}")
        algorithm = raw.get("algorithm", PBKDF2_SHA256)
        if not isinstance(algorithm, str):
            raise ValueError("difficulty.algorithm must be a string")
        ints: dict[str, int | None] = {}
        for name in ("cost", "counter_max", "key_length", "memory_cost", "parallelism"):
            if name not in raw:
                continue
            value = raw[name]
            if value is None and name in ("memory_cost", "parallelism"):
                ints[name] = None
                continue
            if type(value) is not int:
                raise ValueError(f"difficulty.{name} must be an integer, got {value!r}")
            ints[name] = value
        cost = ints["cost"]
        counter_max = ints["counter_max"]
        assert cost is not None and counter_max is not None
        key_length = ints.get("key_length")
        return cls(
            algorithm=algorithm,
            cost=cost,
            counter_max=counter_max,
            key_length=32 if key_length is None else key_length,
            memory_cost=ints.get("memory_cost"),
            parallelism=ints.get("parallelism"),
        )


def _check_int(name: str, value: object, low: int, high: int) -> None:
    # type() rather than isinstance(): True is an int to Python but not a cost to us.
    if type(value) is not int:
        raise ValueError(f"difficulty.{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"difficulty.{name} must be in [{low}, {high}], got {value}")


@dataclass(frozen=True, slots=True)
class PreDerived:
    """A puzzle solved ahead of time: the secret counter and its key. Single use.

    ``repr`` hides the secret counter and key: they are the answer to a challenge.
    """

    nonce: bytes
    salt: bytes
    counter: int
    key: bytes
    difficulty: Difficulty

    def __repr__(self) -> str:
        return f"PreDerived(nonce={self.nonce.hex()}, difficulty={self.difficulty!r})"


def pre_derive(difficulty: Difficulty) -> PreDerived:
    """Draw a fresh nonce, salt and secret counter, and run the KDF once (the slow part).

    The counter is uniform in ``[counter_max // 2, counter_max]``: the client's expected work
    is ``0.75 * counter_max`` KDF runs with little spread, not a geometric lottery.
    """
    nonce = secrets.token_bytes(NONCE_BYTES)
    salt = secrets.token_bytes(SALT_BYTES)
    low = difficulty.counter_min
    counter = low + secrets.randbelow(difficulty.counter_max - low + 1)
    key = derive_key(
        difficulty.algorithm,
        password(nonce, counter),
        salt,
        difficulty.cost,
        difficulty.key_length,
        difficulty.memory_cost,
        difficulty.parallelism,
    )
    return PreDerived(nonce=nonce, salt=salt, counter=counter, key=key, difficulty=difficulty)
