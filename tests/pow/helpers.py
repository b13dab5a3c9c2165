"""Shared helpers for the proof-of-work tests: small difficulties, secrets, payload surgery."""

from __future__ import annotations

import base64
import hmac
from typing import Any

import orjson

from dropserver.pow import (
    Difficulty,
    PreDerived,
    binding_data,
    canonical_json,
    issue_challenge,
    payload,
    pre_derive,
    solve,
)

HMAC_SECRET = b"test-hmac-secret-0123456789abcdef"
KEY_SECRET = b"test-key-signature-secret-0123456"
EXPIRES_AT = 1_900_000_000
NOW = EXPIRES_AT - 60.0

# Small on purpose: the whole pow suite must stay fast.
SMALL = Difficulty(cost=10, counter_max=60)
SMALL_SHA = Difficulty(algorithm="SHA-256", cost=5, counter_max=60)
SMALL_SCRYPT = Difficulty(algorithm="SCRYPT", cost=16, counter_max=40, memory_cost=2)

DATA = binding_data(drop_id="drop-1", pid="person-1", action="enter", ip_prefix="203.0.113.0/24")


def issue(
    difficulty: Difficulty = SMALL,
    *,
    expires_at: int = EXPIRES_AT,
    data: dict[str, str] | None = None,
) -> tuple[PreDerived, dict[str, Any]]:
    pre = pre_derive(difficulty)
    challenge = issue_challenge(
        pre,
        hmac_secret=HMAC_SECRET,
        key_signature_secret=KEY_SECRET,
        expires_at=expires_at,
        data=dict(DATA) if data is None else data,
    )
    return pre, challenge


def solved(challenge: dict[str, Any]) -> str:
    return payload(challenge, solve(challenge))


def encode(obj: object) -> str:
    return base64.b64encode(orjson.dumps(obj)).decode()


def decode(text: str) -> Any:
    return orjson.loads(base64.b64decode(text))


def sign(params: dict[str, Any], secret: bytes = HMAC_SECRET) -> dict[str, Any]:
    """A challenge object over arbitrary parameters, validly signed (for shape tests).

    Signs orjson's sorted bytes, as the verifier computes them, so that even values our
    canonical_json refuses (floats) can carry a valid signature and reach the shape checks.
    """
    signature = hmac.new(secret, orjson.dumps(params, option=orjson.OPT_SORT_KEYS), "sha256")
    return {"parameters": params, "signature": signature.hexdigest()}


def sign_canonical(params: dict[str, Any], secret: bytes = HMAC_SECRET) -> dict[str, Any]:
    """Sign with canonical_json, as issue_challenge does."""
    signature = hmac.new(secret, canonical_json(params), "sha256").hexdigest()
    return {"parameters": params, "signature": signature}
