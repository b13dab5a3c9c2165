"""KDF outputs must equal the altcha library's, byte for byte, for all three algorithms."""

from __future__ import annotations

import secrets
import struct

import pytest
from altcha import v2 as altcha_v2

from dropserver.pow.kdf import ALGORITHMS, derive_key, password, scrypt_maxmem


def _lib_params(
    algorithm: str,
    cost: int,
    key_length: int,
    memory_cost: int | None = None,
    parallelism: int | None = None,
) -> altcha_v2.ChallengeParameters:
    return altcha_v2.ChallengeParameters(
        algorithm=algorithm,
        nonce="00",
        salt="00",
        cost=cost,
        key_length=key_length,
        memory_cost=memory_cost,
        parallelism=parallelism,
    )


@pytest.mark.parametrize("counter", [0, 1, 255, 256, 65_537, 2**32 - 1])
def test_password_is_nonce_then_uint32_be(counter: int) -> None:
    nonce = secrets.token_bytes(16)
    assert password(nonce, counter) == nonce + struct.pack(">I", counter)
    assert password(nonce, counter) == altcha_v2._make_password(nonce, counter)


@pytest.mark.parametrize("counter", [-1, 2**32])
def test_password_refuses_counters_outside_uint32(counter: int) -> None:
    with pytest.raises(ValueError, match="counter"):
        password(b"n", counter)


@pytest.mark.parametrize(("cost", "key_length"), [(1, 32), (10, 32), (50, 16), (20, 64), (7, 48)])
def test_pbkdf2_matches_altcha(cost: int, key_length: int) -> None:
    for counter in (0, 1, 123, 99_999):
        pw, salt = password(secrets.token_bytes(16), counter), secrets.token_bytes(16)
        ours = derive_key("PBKDF2/SHA-256", pw, salt, cost, key_length)
        theirs = altcha_v2.derive_key_pbkdf2(
            _lib_params("PBKDF2/SHA-256", cost, key_length), salt, pw
        )
        assert ours == theirs
        assert len(ours) == key_length


@pytest.mark.parametrize(("cost", "key_length"), [(1, 32), (2, 32), (7, 16), (50, 32), (3, 20)])
def test_iterated_sha256_matches_altcha(cost: int, key_length: int) -> None:
    for counter in (0, 5, 70_000):
        pw, salt = password(secrets.token_bytes(16), counter), secrets.token_bytes(16)
        ours = derive_key("SHA-256", pw, salt, cost, key_length)
        theirs = altcha_v2.derive_key_sha(_lib_params("SHA-256", cost, key_length), salt, pw)
        assert ours == theirs
        assert len(ours) == key_length


@pytest.mark.parametrize(
    ("cost", "memory_cost", "parallelism"),
    [(16, None, None), (16, 1, 1), (64, 2, 2), (1024, 8, 1), (256, 4, None)],
)
def test_scrypt_matches_altcha(cost: int, memory_cost: int | None, parallelism: int | None) -> None:
    pw, salt = password(secrets.token_bytes(16), 42), secrets.token_bytes(16)
    ours = derive_key("SCRYPT", pw, salt, cost, 32, memory_cost, parallelism)
    theirs = altcha_v2.derive_key_scrypt(
        _lib_params("SCRYPT", cost, 32, memory_cost, parallelism), salt, pw
    )
    assert ours == theirs


def test_scrypt_defaults_are_r8_p1() -> None:
    pw, salt = b"password", b"salt"
    assert derive_key("SCRYPT", pw, salt, 16, 32) == derive_key("SCRYPT", pw, salt, 16, 32, 8, 1)


def test_sha256_iteration_definition() -> None:
    """Spelled out: H(salt || password), then H(previous) cost-1 times, truncated."""
    import hashlib

    pw, salt = b"pw", b"salt"
    expected = hashlib.sha256(salt + pw).digest()
    for _ in range(2):
        expected = hashlib.sha256(expected).digest()
    assert derive_key("SHA-256", pw, salt, 3, 32) == expected
    assert derive_key("SHA-256", pw, salt, 3, 10) == expected[:10]


def test_scrypt_maxmem_covers_64_mib_parameters() -> None:
    # hashlib's default cap is 32 MiB; N=65536, r=8 needs 64 MiB.
    assert scrypt_maxmem(65_536, 8, 1) > 128 * 65_536 * 8
    assert scrypt_maxmem(2**20, 32, 16) <= 2**31 - 1


@pytest.mark.parametrize(
    ("algorithm", "cost", "key_length", "match"),
    [
        ("ARGON2ID", 1, 32, "unsupported algorithm"),
        ("PBKDF2/SHA-512", 1, 32, "unsupported algorithm"),
        ("PBKDF2/SHA-256", 0, 32, "cost"),
        ("PBKDF2/SHA-256", 1, 0, "key_length"),
        ("SHA-256", 1, 33, "at most 32"),
    ],
)
def test_derive_key_refuses_bad_parameters(
    algorithm: str, cost: int, key_length: int, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        derive_key(algorithm, b"pw", b"salt", cost, key_length)


def test_algorithm_names_are_the_wire_names() -> None:
    assert {"PBKDF2/SHA-256", "SHA-256", "SCRYPT"} == ALGORITHMS
