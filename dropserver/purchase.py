"""The FCFS purchase: Python prepares the arguments, one Lua script decides and writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dropserver.errors import ApiError, conflict, not_found
from dropserver.identity import Buyer
from dropserver.keys import DropKeys
from dropserver.orders import new_order_id
from dropserver.services import Services
from dropserver.timefmt import format_ms

# Reply codes of lua/purchase.lua, by outcome label (also the metric label).
OK, NOT_OPEN, CLOSED, SOLD_OUT, LIMIT_REACHED = 0, 1, 2, 3, 4
IDEMPOTENCY_MISMATCH, NO_DROP = 7, 8
OUTCOMES = {
    NOT_OPEN: "not_open",
    CLOSED: "closed",
    SOLD_OUT: "sold_out",
    LIMIT_REACHED: "limit_reached",
    IDEMPOTENCY_MISMATCH: "idempotency_mismatch",
    NO_DROP: "not_found",
}


@dataclass(frozen=True, slots=True)
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


async def purchase(
    services: Services,
    drop_id: str,
    keys: DropKeys,
    buyer: Buyer,
    *,
    idempotency_key: str,
    fingerprint: str,
) -> Allocation:
    script = services.scripts["purchase"]
    reply = await services.batcher.run(
        script,
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
        ],
        [
            buyer.person,
            buyer.account,
            new_order_id(drop_id),
            f"{buyer.person}:{idempotency_key}" if idempotency_key else "",
            fingerprint,
        ],
    )
    code = reply[0]
    metrics = services.metrics
    if code == OK:
        status = reply[2].decode()
        metrics.child(metrics.purchases, drop_id, status).inc()  # type: ignore[attr-defined]
        return Allocation(reply[4].decode(), int(reply[1]), status, int(reply[3]))
    outcome = OUTCOMES.get(code, "error")
    metrics.child(metrics.purchases, drop_id, outcome).inc()  # type: ignore[attr-defined]
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
    if code == IDEMPOTENCY_MISMATCH:
        return ApiError(
            422,
            "idempotency_mismatch",
            "this Idempotency-Key was used for a different request",
        )
    if code == NO_DROP:
        return not_found("no such drop")
    return ApiError(500, "internal", f"unexpected purchase reply {code}")
