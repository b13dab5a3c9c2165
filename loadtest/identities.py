"""Buyer identity tokens, signed as the platform would sign them (``mint_token``)."""

from __future__ import annotations

from functools import cache

from dropserver.config import PlatformSettings
from dropserver.identity import mint_token
from loadtest.server import Deployment

TOKEN_TTL_SECONDS = 4 * 3600


@cache
def _platform(platform: str, secret: str) -> PlatformSettings:
    return PlatformSettings(platform, (), secret)


def token(platform: str, secret: str, *, account: str, person: str) -> str:
    return mint_token(
        _platform(platform, secret), account=account, person=person, ttl_seconds=TOKEN_TTL_SECONDS
    )


def buyer_headers(deployment: Deployment, *, account: str, person: str) -> dict[str, str]:
    bearer = token(deployment.platform, deployment.identity_secret, account=account, person=person)
    return {"Authorization": f"Bearer {bearer}"}
