"""A purchase or entry attempt that passed every check short of Redis (views/gated.py)."""

from __future__ import annotations

from dataclasses import dataclass

from dropserver.drops import Drop
from dropserver.gate import Origin
from dropserver.identity import Buyer
from dropserver.keys import DropKeys
from dropserver.pow import Ticket
from dropserver.services import Services


# Not frozen: a frozen dataclass's __init__ goes through object.__setattr__ per field, 2.5
# times the cost, and one of these is built per purchase or entry. Nothing assigns to it.
@dataclass(slots=True)
class Attempt:
    services: Services
    buyer: Buyer
    drop: Drop
    keys: DropKeys
    origin: Origin
    ticket: Ticket | None
    idempotency_key: str
    fingerprint: str

    @property
    def idempotency_field(self) -> str:
        """Idempotency keys are per person: two persons may pick the same key."""
        return f"{self.buyer.person}:{self.idempotency_key}" if self.idempotency_key else ""

    @property
    def ticket_key(self) -> str:
        return self.keys.pow_ticket(self.ticket.challenge_id if self.ticket else "-")

    @property
    def ticket_expiry_ms(self) -> int:
        return self.ticket.expires_at * 1000 if self.ticket else 0

    def limiters(self) -> tuple[list[str], list[str | int]]:
        return self.services.gate.limiters(self.drop, self.keys, self.buyer, self.origin)

    def count_ticket(self, code: int, *, rate_limited: int, replayed: int) -> None:
        """A ticket the script judged: accepted, or refused as a replay (a rate-limited
        attempt's ticket was not judged: it may be sent again)."""
        if self.ticket is not None and code != rate_limited:
            outcome = "pow_replayed" if code == replayed else "ok"
            self.services.gate.count_verification(self.drop.id, outcome)
