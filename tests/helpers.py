"""Shared test data and small helpers (identities, drop bodies, time)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import jwt

ADMIN_KEY = "acme-admin-key-0000000000000001"
OTHER_ADMIN_KEY = "other-admin-key-000000000000001"
SECRET = "acme-identity-secret-0123456789-abcdef"
OTHER_SECRET = "other-identity-secret-0123456789-abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def rfc3339(offset_seconds: float) -> str:
    """A time ``offset_seconds`` from now."""
    moment = datetime.fromtimestamp(time.time() + offset_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def token(
    account: str,
    person: str | None = None,
    *,
    kyc: bool = True,
    adult: bool = True,
    ttl: int = 3600,
    issuer: str = "acme",
    secret: str = SECRET,
    **extra: Any,
) -> str:
    claims = {
        "iss": issuer,
        "sub": account,
        "pid": person or account,
        "kyc": kyc,
        "adult": adult,
        "exp": int(time.time()) + ttl,
        **extra,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def buyer(account: str, person: str | None = None, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(account, person, **kwargs)}"}


def drop_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Test drop",
        "supply": 10,
        "mode": "fcfs",
        "opens_at": rfc3339(-1),
        "pow": None,
        "hold_seconds": 300,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}
