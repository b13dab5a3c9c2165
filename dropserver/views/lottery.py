"""Lottery calls: enter, draw (admin), and the published proof and entry list."""

from __future__ import annotations

from aiohttp import web

from dropserver.appkeys import SERVICES
from dropserver.auth import platform_of
from dropserver.draws import DrawRefused
from dropserver.entries import enter
from dropserver.errors import ApiError, conflict, not_found
from dropserver.http import (
    json_response,
)
from dropserver.proofs import draw_state, drawn_receipts, entries_ndjson, proof
from dropserver.timefmt import format_ms
from dropserver.views.common import drop_or_404
from dropserver.views.gated import admit


async def create_entry(request: web.Request) -> web.Response:
    entry = await enter(await admit(request, "lottery"))
    return json_response({"entry_id": entry.entry_id, "receipt": entry.receipt}, 202)


async def run_draw(request: web.Request) -> web.Response:
    """Draw now (it also runs by itself when due). Drawn already: the same proof again."""
    services = request.app[SERVICES]
    platform = platform_of(request, services)
    found = await services.drops.get(request.match_info["id"])
    if found is None or found[0].platform != platform or not found[0].has_draw:
        raise not_found("no such drop with a draw")
    drop, keys = found
    try:
        await services.draws.draw(drop)
    except DrawRefused as refused:
        if refused.code == 1:
            due = format_ms(refused.due_at)
            raise conflict("not_closed", f"entries are open until {due}", due_at=due) from None
        if refused.code == 3:
            raise ApiError(
                409, "draw_in_progress", "the draw is running", headers={"Retry-After": "1"}
            ) from None
        if refused.code != 2:
            raise not_found("no such drop with a draw") from None
    return json_response(await proof(services.redis, drop, keys))


async def get_proof(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    drop, keys = await drop_or_404(services, request.match_info["id"])
    if not drop.has_draw:
        raise not_found("this drop has no draw")
    return json_response(await proof(services.redis, drop, keys))


async def get_entries(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    drop, keys = await drop_or_404(services, request.match_info["id"])
    state = await draw_state(services.redis, keys)
    if not drop.has_draw or state.get("state") != "drawn":
        raise conflict("not_drawn", "the entry list is published with the draw")
    receipts = await drawn_receipts(services.redis, keys, int(state["count"]))
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    for chunk in entries_ndjson(receipts):
        await response.write(chunk)
    await response.write_eof()
    return response
