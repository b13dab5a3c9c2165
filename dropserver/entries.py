"""Lottery entries: Python prepares the arguments, one Lua script decides and writes."""

from __future__ import annotations

from dataclasses import dataclass

from dropserver import purchase as codes
from dropserver import rehearsal
from dropserver.drops import Drop
from dropserver.errors import conflict
from dropserver.gate import Origin
from dropserver.identity import Buyer
from dropserver.keys import DropKeys
from dropserver.lottery import receipt
from dropserver.pow import Ticket
from dropserver.services import Services

ALREADY_ENTERED = 9


@dataclass(frozen=True, slots=True)
class Entry:
    entry_id: str
    receipt: str


async def enter(
    services: Services,
    drop: Drop,
    keys: DropKeys,
    buyer: Buyer,
    origin: Origin,
    ticket: Ticket | None,
    *,
    idempotency_key: str,
    fingerprint: str,
) -> Entry:
    limiter_keys, limiter_args = services.gate.limiters(drop, keys, buyer, origin)
    entry_id = rehearsal.new_entry_id(services.settings.rehearsal_seed, drop.id, buyer.person)
    reply = await services.batcher.run(
        services.scripts["enter"],
        [
            keys.meta,
            keys.counts,
            keys.entries,
            keys.idempotency,
            keys.events,
            keys.pow_ticket(ticket.challenge_id if ticket else "-"),
            *limiter_keys,
        ],
        [
            buyer.person,
            buyer.account,
            entry_id,
            receipt(drop.id, entry_id),
            f"{buyer.person}:{idempotency_key}" if idempotency_key else "",
            fingerprint,
            ticket.expires_at * 1000 if ticket else 0,
            *limiter_args,
        ],
    )
    code = int(reply[0])
    m = services.metrics
    if ticket is not None and code != codes.RATE_LIMITED:
        services.gate.count_verification(
            drop.id, "pow_replayed" if code == codes.POW_REPLAYED else "ok"
        )
    outcome = "entered" if code == codes.OK else _OUTCOMES.get(code, "error")
    m.child(m.lottery_entries, drop.id, outcome).inc()  # type: ignore[attr-defined]
    if code == codes.OK:
        return Entry(reply[1].decode(), reply[2].decode())
    if code == codes.RATE_LIMITED:
        raise services.gate.rate_limited(drop.id, reply)
    if code == ALREADY_ENTERED:
        raise conflict("already_entered", "this person has entered this drop already")
    raise codes.refusal(code, reply)


_OUTCOMES = {**codes.OUTCOMES, ALREADY_ENTERED: "already_entered"}
