"""Platform (admin) calls: create, list, close, stats; confirm and cancel orders."""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from dropserver.appkeys import SERVICES
from dropserver.auth import platform_of
from dropserver.drop_store import Counts
from dropserver.drops import Drop, parse_drop_spec
from dropserver.errors import ApiError, conflict, invalid, not_found
from dropserver.http import fingerprint, idempotency_key, json_response, parse_object, read_body
from dropserver.orders import drop_of, order_view
from dropserver.services import Services
from dropserver.timefmt import format_ms


def admin_view(drop: Drop, counts: Counts) -> dict[str, Any]:
    view = drop.spec_json()
    view.update(
        status=drop.status(counts.now),
        created_at=format_ms(drop.created_at),
        closed_at=format_ms(drop.closed_at),
        counters={
            "supply": counts.supply,
            "remaining": counts.remaining,
            "held": counts.held,
            "confirmed": counts.confirmed,
        },
    )
    return view


async def _owned(services: Services, request: web.Request) -> tuple[Drop, Counts]:
    platform = platform_of(request, services)
    fresh = await services.drops.fresh(request.match_info["id"])
    if fresh is None or fresh[0].platform != platform:
        raise not_found("no such drop")
    return fresh


async def create_drop(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    platform = platform_of(request, services)
    raw = await read_body(request)
    body = parse_object(raw)
    key = idempotency_key(request)
    # With an Idempotency-Key the generated id is derived from it, so a retry names the same
    # drop and finds the first one instead of creating a twin.
    generated = (
        "d-" + hashlib.blake2b(f"{platform}\0{key}".encode(), digest_size=8).hexdigest()
        if key
        else None
    )
    drop = parse_drop_spec(body, platform=platform, generated_id=generated)
    created = await services.drops.create(drop, fingerprint(raw) if key else "")
    if created is None:
        existing = await services.drops.fresh(drop.id)
        if key and existing is not None and existing[0].platform == platform:
            first = await services.drops.create_fingerprint(drop.id)
            if first == fingerprint(raw):
                return json_response(admin_view(*existing), 201)
            if first:  # this key created that drop, from another body
                raise ApiError(
                    422,
                    "idempotency_mismatch",
                    "this Idempotency-Key was used for a different request",
                )
        raise conflict("already_exists", f"a drop with id {drop.id!r} exists")
    services.gate.prepare(created)
    fresh = await services.drops.fresh(created.id)
    assert fresh is not None
    return json_response(admin_view(*fresh), 201)


async def list_drops(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    platform = platform_of(request, services)
    views = [
        {**drop.spec_json(), "status": drop.status(counts.now)}
        for drop, counts in await services.drops.of_platform(platform)
    ]
    return json_response({"drops": views})


async def close_drop(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    drop, _ = await _owned(services, request)
    closed_at = await services.drops.close(drop.id)
    if closed_at is not None:
        services.demand.note_closed(drop.id, closed_at)  # other processes learn it by report
    fresh = await services.drops.fresh(drop.id)
    assert fresh is not None
    return json_response(admin_view(*fresh))


async def drop_stats(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    drop, counts = await _owned(services, request)
    return json_response(
        {
            "drop_id": drop.id,
            "status": drop.status(counts.now),
            "supply": counts.supply,
            "remaining": counts.remaining,
            "held": counts.held,
            "confirmed": counts.confirmed,
            "expired": counts.raw.get("expired", 0),
            "cancelled": counts.raw.get("cancelled", 0),
            "entries": counts.raw.get("entries", 0),
            "rejections": counts.rejections,
            # The invariant ops alert on: serials out == units held or sold.
            "consistent": counts.allocated == counts.held + counts.confirmed
            and counts.remaining >= 0,
        }
    )


async def list_orders(request: web.Request) -> web.Response:
    """Every order of a drop, a page at a time: for reconciliation and rehearsal reports."""
    services = request.app[SERVICES]
    drop, _ = await _owned(services, request)
    try:
        cursor = int(request.query.get("cursor", "0"))
        count = int(request.query.get("count", "500"))
    except ValueError as exc:
        raise invalid("cursor and count must be integers") from exc
    if cursor < 0 or not 1 <= count <= 5000:
        raise invalid("cursor must be >= 0 and count in [1, 5000]")
    orders, next_cursor = await services.orders.page(drop.id, cursor, count)
    return json_response(
        {
            "orders": [order_view(o, admin=True) for o in orders],
            "next_cursor": str(next_cursor) if next_cursor else None,
        }
    )


async def confirm_order(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    order_id = await _owned_order(services, request)
    return json_response(order_view(await services.orders.confirm(order_id)))


async def cancel_order(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    order_id = await _owned_order(services, request)
    return json_response(order_view(await services.orders.cancel(order_id)))


async def _owned_order(services: Services, request: web.Request) -> str:
    platform = platform_of(request, services)
    order_id = request.match_info["order_id"]
    drop_id = drop_of(order_id)
    found = await services.drops.get(drop_id) if drop_id else None
    if found is None or found[0].platform != platform:
        raise not_found("no such order")
    return order_id
