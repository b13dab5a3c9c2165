"""Proof-of-work tickets: ALTCHA v2 challenges in deterministic mode, with key signatures.

Pure CPU (no Redis, no aiohttp). The request path only signs (one HMAC) and verifies (two);
every KDF runs ahead of time in :class:`PreDerivationPool`. Replay and binding checks belong
to the caller: burn ``Ticket.challenge_id`` atomically in Redis, and call
:func:`check_binding` with the request's drop, person, action and IP prefix.
"""

from dropserver.pow.canonical import canonical_json
from dropserver.pow.challenge import (
    DATA_ACTION,
    DATA_CHALLENGE_ID,
    DATA_DROP,
    DATA_IP_PREFIX,
    DATA_PID,
    MAX_PAYLOAD_CHARS,
    POW_EXPIRED,
    POW_INVALID,
    BoundIssuer,
    PowCode,
    PowError,
    Puzzle,
    Ticket,
    binding_data,
    binding_pid,
    check_binding,
    derive_puzzle,
    issue_challenge,
    issue_challenge_json,
    new_challenge_id,
    verify_payload,
)
from dropserver.pow.difficulty import Difficulty, PreDerived, pre_derive
from dropserver.pow.kdf import ALGORITHMS, PBKDF2_SHA256, SCRYPT, SHA256, derive_key, password
from dropserver.pow.pool import PreDerivationPool
from dropserver.pow.solver import NoSolutionError, Solution, payload, solve

__all__ = [
    "ALGORITHMS",
    "DATA_ACTION",
    "DATA_CHALLENGE_ID",
    "DATA_DROP",
    "DATA_IP_PREFIX",
    "DATA_PID",
    "MAX_PAYLOAD_CHARS",
    "PBKDF2_SHA256",
    "POW_EXPIRED",
    "POW_INVALID",
    "SCRYPT",
    "SHA256",
    "BoundIssuer",
    "Difficulty",
    "NoSolutionError",
    "PowCode",
    "PowError",
    "PreDerivationPool",
    "PreDerived",
    "Puzzle",
    "Solution",
    "Ticket",
    "binding_data",
    "binding_pid",
    "canonical_json",
    "check_binding",
    "derive_key",
    "derive_puzzle",
    "issue_challenge",
    "issue_challenge_json",
    "new_challenge_id",
    "password",
    "payload",
    "pre_derive",
    "solve",
    "verify_payload",
]
