"""Resolving the caller of a request: a buyer (identity JWT) or a platform (API key)."""

from __future__ import annotations

from aiohttp import web

from dropserver.drops import Drop
from dropserver.errors import forbidden, not_found, unauthorized
from dropserver.identity import Buyer, bearer
from dropserver.services import Services


def buyer_of(request: web.Request, services: Services) -> Buyer:
    token = bearer(request.headers.get("Authorization"))
    if token is None:
        raise unauthorized("an identity token (Authorization: Bearer <JWT>) is required")
    return services.buyers.verify(token)


def platform_of(request: web.Request, services: Services) -> str:
    key = bearer(request.headers.get("Authorization"))
    platform = services.platforms.platform_for(key) if key else None
    if platform is None:
        raise unauthorized("a platform API key (Authorization: Bearer <key>) is required")
    return platform


def admit_buyer(drop: Drop, buyer: Buyer) -> None:
    """The identity rules of a drop, checked before anything touches Redis."""
    if buyer.platform != drop.platform:
        raise not_found("no such drop")
    if drop.require_kyc and not buyer.kyc:
        raise forbidden("kyc_required", "this drop is for real-name verified buyers only")
    if drop.adult_only and not buyer.adult:
        raise forbidden("adult_only", "this drop is for adults only")
