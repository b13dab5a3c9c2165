"""What a purchase and a lottery entry check before their script runs, in one place."""

from __future__ import annotations

import time

from aiohttp import web

from dropserver import purchase as codes
from dropserver.appkeys import SERVICES
from dropserver.attempt import Attempt
from dropserver.auth import admit_buyer, buyer_of
from dropserver.drops import Drop
from dropserver.errors import conflict
from dropserver.http import fingerprint, idempotency_key, only_fields, parse_object, read_body
from dropserver.services import Services
from dropserver.views.common import drop_or_404

_OTHER_CALL = {"fcfs": "this is a lottery drop: enter it at /entries",
               "lottery": "this is a first-come drop: buy at /purchase"}  # fmt: skip


async def admit(request: web.Request, mode: str) -> Attempt:
    """Identity, the drop's rules, the opening (by this process's clock: a shortcut, the script
    decides by Redis's), the body and the proof-of-work ticket: everything short of Redis."""
    services = request.app[SERVICES]
    buyer = buyer_of(request, services)
    drop, keys = await drop_or_404(services, request.match_info["id"])
    admit_buyer(drop, buyer)
    if drop.mode != mode:
        raise conflict("wrong_mode", _OTHER_CALL[mode])
    refuse_before_open(drop, services)
    origin = services.gate.origin(request)
    raw = await read_body(request)
    body = parse_object(raw, allow_empty=True)
    only_fields(body, {"pow"})
    key = idempotency_key(request)
    return Attempt(
        services=services,
        buyer=buyer,
        drop=drop,
        keys=keys,
        origin=origin,
        ticket=services.gate.verify(drop, body, buyer, origin),
        idempotency_key=key,
        # Only a retry under the same key is compared with the first request.
        fingerprint=fingerprint(raw) if key else "",
    )


def refuse_before_open(drop: Drop, services: Services) -> None:
    """425 before the opening, before any work is spent on the request (counted with the
    script's own not_open refusals)."""
    if time.time() * 1000 < drop.opens_at:
        services.refusals.count(drop.id, "not_open")
        raise codes.refusal(codes.NOT_OPEN, [codes.NOT_OPEN, drop.opens_at])
