"""Lookups every handler module needs."""

from __future__ import annotations

from aiohttp import web

from dropserver.drops import Drop
from dropserver.errors import not_found
from dropserver.keys import DropKeys
from dropserver.services import Services


async def drop_or_404(services: Services, drop_id: str) -> tuple[Drop, DropKeys]:
    found = await services.drops.get(drop_id)
    if found is None:
        raise not_found("no such drop")
    return found


def platform_for_view(request: web.Request, services: Services) -> str | None:
    """The platform when the caller presents an API key, else None (a buyer or anyone)."""
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        return None
    return services.platforms.platform_for(auth[7:].strip())
