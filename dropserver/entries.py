"""Lottery entries: Python prepares the arguments, one Lua script decides and writes."""

from __future__ import annotations

from dataclasses import dataclass

from dropserver import purchase as codes
from dropserver import rehearsal
from dropserver.attempt import Attempt
from dropserver.errors import conflict
from dropserver.lottery import receipt

ALREADY_ENTERED = 9


@dataclass(frozen=True, slots=True)
class Entry:
    entry_id: str
    receipt: str


async def enter(attempt: Attempt) -> Entry:
    services, drop, keys, buyer = attempt.services, attempt.drop, attempt.keys, attempt.buyer
    limiter_keys, limiter_args = attempt.limiters()
    entry_id = rehearsal.new_entry_id(services.settings.rehearsal_seed, drop.id, buyer.person)
    reply = await services.batcher.run(
        services.scripts["enter"],
        [
            keys.meta,
            keys.counts,
            keys.entries,
            keys.idempotency,
            keys.events,
            attempt.ticket_key,
            *limiter_keys,
        ],
        [
            buyer.person,
            buyer.account,
            entry_id,
            receipt(drop.id, entry_id),
            attempt.idempotency_field,
            attempt.fingerprint,
            attempt.ticket_expiry_ms,
            *limiter_args,
        ],
    )
    code = int(reply[0])
    m = services.metrics
    attempt.count_ticket(code, rate_limited=codes.RATE_LIMITED, replayed=codes.POW_REPLAYED)
    outcome = "entered" if code == codes.OK else _OUTCOMES.get(code, "error")
    m.lottery_entries.inc(drop.id, outcome)
    if code == codes.OK:
        return Entry(reply[1].decode(), reply[2].decode())
    if code == codes.RATE_LIMITED:
        raise services.gate.rate_limited_reply(drop.id, reply)
    if code == ALREADY_ENTERED:
        raise conflict("already_entered", "this person has entered this drop already")
    raise codes.refusal(code, reply)


_OUTCOMES = {**codes.OUTCOMES, ALREADY_ENTERED: "already_entered"}
