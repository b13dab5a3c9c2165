"""Buyer calls: the public drop view, purchase, the buyer's own state and orders."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp import web

from dropserver import purchase as purchasing
from dropserver.appkeys import SERVICES
from dropserver.auth import admit_buyer, buyer_of
from dropserver.drop_store import Counts
from dropserver.drops import Drop
from dropserver.errors import conflict, invalid, not_found
from dropserver.http import (
    json_bytes_response,
    json_response,
)
from dropserver.keys import DropKeys
from dropserver.orders import drop_of, order_view, owner_check
from dropserver.services import Services
from dropserver.timefmt import format_ms
from dropserver.views.admin import admin_view
from dropserver.views.common import drop_or_404, platform_for_view
from dropserver.views.gated import admit


def availability(counts: Counts) -> str:
    """Coarse on purpose: buyers (and bots) learn whether to bother, not the exact stock."""
    if counts.remaining <= 0:
        return "sold_out"
    if counts.remaining * 10 <= counts.supply:
        return "low"
    return "available"


def public_view(drop: Drop, counts: Counts) -> dict[str, Any]:
    return {
        "id": drop.id,
        "title": drop.title,
        "mode": drop.mode,
        "status": drop.status(counts.now),
        "opens_at": format_ms(drop.opens_at),
        "closes_at": format_ms(drop.closes_at),
        "supply": drop.supply,
        "per_person_limit": drop.per_person_limit,
        "require_kyc": drop.require_kyc,
        "adult_only": drop.adult_only,
        "availability": availability(counts),
    }


async def get_drop(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    fresh = await services.drops.fresh(request.match_info["id"])
    if fresh is None:
        raise not_found("no such drop")
    drop, counts = fresh
    if platform_for_view(request, services) == drop.platform:
        return json_response(admin_view(drop, counts))
    return json_response(public_view(drop, counts))


async def purchase(request: web.Request) -> web.Response:
    wait = _wait_seconds(request)
    attempt = await admit(request, "fcfs")
    allocation = await purchasing.purchase(attempt)
    if isinstance(allocation, purchasing.Pending):
        served = (
            await _served(attempt.services, attempt.keys, attempt.buyer.person, wait)
            if wait
            else None
        )
        if served is None:
            return json_response(allocation.to_json(), 202)
        allocation = served
    return json_response(allocation.to_json(), 201)


_MAX_WAIT = 30.0
_POLL = 0.1


def _wait_seconds(request: web.Request) -> float:
    """``?wait=N``: a fair-start purchase may wait up to N seconds (30 at most) for its turn."""
    if not request.query_string:  # the usual case: no query to parse
        return 0.0
    raw = request.query.get("wait")
    if raw is None:
        return 0.0
    try:
        wait = float(raw)
    except ValueError as exc:
        raise invalid("wait must be a number of seconds") from exc
    if not 0 <= wait <= _MAX_WAIT:
        raise invalid(f"wait must be between 0 and {_MAX_WAIT:g} seconds")
    return wait


async def _served(
    services: Services, keys: DropKeys, person: str, wait: float
) -> purchasing.Allocation | None:
    """The person's order once the queue reaches them, or None when ``wait`` runs out."""
    deadline = time.monotonic() + wait
    while True:
        ids: bytes | None = await services.redis.hget(keys.person_orders, person)  # type: ignore[assignment]
        if ids:
            raw = await services.redis.hget(keys.orders, ids.split()[-1].decode())
            if raw:
                order = orjson.loads(raw)
                return purchasing.Allocation(
                    order["order_id"], order["serial"], order["status"], order["expires_at"]
                )
        if time.monotonic() + _POLL > deadline:
            return None
        await asyncio.sleep(_POLL)


async def challenge(request: web.Request) -> web.Response:
    """A proof-of-work challenge bound to this drop, person, action and IP prefix.

    Answered without Redis: issuing writes nothing shared, so the opening and closing are
    judged by Redis's clock as last observed, the limits by this process's limiters, and the
    demand is counted here and reported in the background (dropserver.demand). The purchase
    or entry script that consumes the ticket checks all of it again, atomically."""
    services = request.app[SERVICES]
    buyer = buyer_of(request, services)
    drop_id = request.match_info["id"]
    found = services.drops.cached(drop_id) or await drop_or_404(services, drop_id)
    drop = found[0]
    admit_buyer(drop, buyer)
    if drop.pow is None:
        raise conflict("pow_disabled", "this drop takes no proof of work: send {} instead")
    now = services.clock.now_ms()
    if now < drop.opens_at:
        raise purchasing.refusal(purchasing.NOT_OPEN, [purchasing.NOT_OPEN, drop.opens_at])
    if services.demand.closed_at(drop.id) or 0 < drop.closes_at <= now:
        raise purchasing.refusal(purchasing.CLOSED, [purchasing.CLOSED])
    gate = services.gate
    origin = gate.origin(request)
    limits = gate.check_challenge_limits(drop, buyer, origin)
    if limits.limited:
        raise gate.rate_limited(drop.id, limits)
    level = services.demand.hit(drop.id, origin.ip_prefix)
    body = gate.issue(drop, buyer, origin, level) or await gate.issue_derived(
        drop, buyer, origin, level
    )
    return json_bytes_response(body, headers=_NO_STORE)


_NO_STORE = {"Cache-Control": "no-store"}


async def me(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    buyer = buyer_of(request, services)
    drop, keys = await drop_or_404(services, request.match_info["id"])
    if buyer.platform != drop.platform:
        raise not_found("no such drop")
    async with services.redis.pipeline(transaction=True) as pipe:
        pipe.hget(keys.person_orders, buyer.person)
        pipe.hget(keys.entries, buyer.person)
        pipe.hmget(keys.draw, "state", "next")
        pipe.hget(keys.ranks, buyer.person)
        pipe.hget(keys.counts, "confirmed")
        ids, entry, (state, next_index), rank, confirmed = await pipe.execute()
    orders = []
    if ids:
        raws = await services.redis.hmget(keys.orders, ids.decode().split())
        orders = [order_view(orjson.loads(r)) for r in raws if r]
    units = sum(o["status"] in ("held", "confirmed") for o in orders)
    view: dict[str, Any] = {
        "drop_id": drop.id,
        "person": buyer.person,
        "orders": orders,
        "units": units,
        "limit": drop.per_person_limit,
    }
    if drop.has_draw:
        view["entry"] = None
        view["result"] = None
        if entry:
            entry_id, receipt, _, _ = entry.decode().split(" ")
            view["entry"] = {"entry_id": entry_id, "receipt": receipt}
            sold_out = int(confirmed or 0) >= drop.supply
            view["result"] = draw_result(
                drawn=state == b"drawn",
                has_unit=units > 0,
                rank=None if rank is None else int(rank),
                next_index=int(next_index or 0),
                sold_out=sold_out,
            )
    return json_response(view)


def draw_result(
    *, drawn: bool, has_unit: bool, rank: int | None, next_index: int, sold_out: bool
) -> str:
    """pending before the draw; won with a unit; waitlisted while the queue may still reach
    this person; lost once it went past them (a claim that lapsed) or nothing can come back."""
    if not drawn:
        return "pending"
    if has_unit:
        return "won"
    if rank is not None and rank >= next_index and not sold_out:
        return "waitlisted"
    return "lost"


async def get_order(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    order_id = request.match_info["order_id"]
    platform = platform_for_view(request, services)
    # Who is asking is settled before the lookup: an unknown id and someone else's order
    # must look the same (404), and no answer may depend on existence without credentials.
    person = None if platform is not None else buyer_of(request, services).person
    order = await services.orders.get(order_id)
    if order is None:
        raise not_found("no such order")
    drop_id = drop_of(order_id)
    found = await services.drops.get(drop_id) if drop_id else None
    if found is None:
        raise not_found("no such order")
    if person is not None:
        owner_check(order, person)
    elif platform != found[0].platform:
        raise not_found("no such order")
    return json_response(order_view(order))
