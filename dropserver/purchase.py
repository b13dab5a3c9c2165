"""The FCFS purchase: Python prepares the arguments, one Lua script decides and writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dropserver import rehearsal
from dropserver.attempt import Attempt
from dropserver.errors import ApiError, conflict, not_found
from dropserver.lottery import receipt
from dropserver.orders import fresh_order_ids, new_order_id
from dropserver.timefmt import format_ms

# Reply codes of lua/purchase.lua (and of the other gate scripts), by outcome label, which is
# also the metric label.
OK, NOT_OPEN, CLOSED, SOLD_OUT, LIMIT_REACHED, POW_REPLAYED, RATE_LIMITED = 0, 1, 2, 3, 4, 5, 6
IDEMPOTENCY_MISMATCH, NO_DROP, ALREADY_PENDING, PENDING = 7, 8, 9, 10
QUEUE_IDS = 8  # fresh order ids a fair-start purchase brings to serve the queue's head
OUTCOMES = {
    NOT_OPEN: "not_open",
    CLOSED: "closed",
    SOLD_OUT: "sold_out",
    LIMIT_REACHED: "limit_reached",
    POW_REPLAYED: "pow_replayed",
    RATE_LIMITED: "rate_limited",
    IDEMPOTENCY_MISMATCH: "idempotency_mismatch",
    NO_DROP: "not_found",
    ALREADY_PENDING: "already_pending",
    PENDING: "pending",
}


@dataclass(slots=True)  # not frozen: built per request (see Attempt)
class Pending:
    """A fair-start attempt waiting for its turn; the outcome shows in /me."""

    entry_id: str
    receipt: str
    serves_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "status": "pending",
            "entry_id": self.entry_id,
            "receipt": self.receipt,
            "serves_at": format_ms(self.serves_at),
        }


@dataclass(slots=True)  # not frozen: built per request (see Attempt)
class Allocation:
    order_id: str
    serial: int
    status: str
    expires_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "serial": self.serial,
            "status": self.status,
            "expires_at": format_ms(self.expires_at),
        }


async def purchase(attempt: Attempt) -> Allocation | Pending:
    services, drop, keys, buyer = attempt.services, attempt.drop, attempt.keys, attempt.buyer
    limiter_keys, limiter_args = attempt.limiters()
    queue_args: list[str | int] = ["", ""]
    if drop.fair_start_seconds:
        entry_id = rehearsal.new_entry_id(services.settings.rehearsal_seed, drop.id, buyer.person)
        queue_args = [entry_id, receipt(drop.id, entry_id), *fresh_order_ids(drop.id, QUEUE_IDS)]
    reply = await services.batcher.run(
        services.scripts["purchase"],
        [
            keys.meta,
            keys.counts,
            keys.free_serials,
            keys.persons,
            keys.orders,
            keys.holds,
            keys.idempotency,
            keys.events,
            keys.person_orders,
            attempt.ticket_key,
            *limiter_keys,
            keys.entries,
            keys.late,
            keys.draw,
            keys.draw_order,
            keys.ranks,
        ],
        [
            buyer.person,
            buyer.account,
            new_order_id(drop.id),
            attempt.idempotency_field,
            attempt.fingerprint,
            attempt.ticket_expiry_ms,
            *limiter_args,
            *queue_args,
        ],
    )
    code = reply[0]
    metrics = services.metrics
    attempt.count_ticket(code, rate_limited=RATE_LIMITED, replayed=POW_REPLAYED)
    if code == OK:
        status = reply[2].decode()
        metrics.purchases.inc(drop.id, status)
        return Allocation(reply[4].decode(), int(reply[1]), status, int(reply[3]))
    if code == PENDING:
        metrics.purchases.inc(drop.id, "pending")
        return Pending(reply[1].decode(), reply[2].decode(), int(reply[3]))
    metrics.purchases.inc(drop.id, OUTCOMES.get(code, "error"))
    if code == RATE_LIMITED:
        raise services.gate.rate_limited_reply(drop.id, reply)
    raise refusal(code, reply)


def refusal(code: int, reply: list[Any]) -> ApiError:
    if code == NOT_OPEN:
        opens_at = format_ms(int(reply[1]))
        return ApiError(
            425, "not_open", f"the drop opens at {opens_at}", extra={"opens_at": opens_at}
        )
    if code == CLOSED:
        return conflict("closed", "the drop is closed")
    if code == SOLD_OUT:
        return conflict("sold_out", "no units are left")
    if code == LIMIT_REACHED:
        return conflict("limit_reached", f"at most {int(reply[1])} per person")
    if code == ALREADY_PENDING:
        return conflict("already_pending", "this person already waits in the fair-start queue")
    if code == POW_REPLAYED:
        return ApiError(403, "pow_replayed", "this proof-of-work payload was used before")
    if code == IDEMPOTENCY_MISMATCH:
        return ApiError(
            422,
            "idempotency_mismatch",
            "this Idempotency-Key was used for a different request",
        )
    if code == NO_DROP:
        return not_found("no such drop")
    return ApiError(500, "internal", f"unexpected purchase reply {code}")
