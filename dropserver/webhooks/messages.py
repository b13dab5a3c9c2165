"""What one webhook delivery sends: the event as JSON, and the Standard Webhooks headers.

The body follows the Standard Webhooks payload shape, ``{"type", "timestamp", "data"}``. The
headers are ``webhook-id`` (the same for every attempt, so a receiver can drop duplicates:
delivery is at least once), ``webhook-timestamp`` (the attempt's time, which the signature
covers, so a captured request cannot be replayed later) and ``webhook-signature``, made by the
``standardwebhooks`` reference library so that platforms can check it with any Standard
Webhooks verifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from standardwebhooks import Webhook

from dropserver.timefmt import format_ms

# Stream fields that hold numbers, and how a platform gets them.
_INTEGERS = frozenset({"serial", "entries"})
_TIMES_MS = frozenset({"expires_at"})  # ms since the epoch, 0 = none: RFC 3339 or null


@dataclass(frozen=True, slots=True)
class Message:
    id: str  # webhook-id: "<drop id>:<stream entry id>"
    body: bytes


def message_of(drop_id: str, entry_id: str, fields: dict[bytes, bytes]) -> Message:
    """The webhook message of one entry of a drop's event stream."""
    data: dict[str, Any] = {}
    kind = ""
    for raw_name, raw_value in fields.items():
        name, value = raw_name.decode(), raw_value.decode()
        if name == "type":
            kind = value
        elif name in _INTEGERS and value.isdigit():
            data[name] = int(value)
        elif name in _TIMES_MS and value.isdigit():
            data[name] = format_ms(int(value))
        else:
            data[name] = value
    created_ms = int(entry_id.split("-", 1)[0])  # a stream entry id is "<ms>-<sequence>"
    body = orjson.dumps({"type": kind, "timestamp": format_ms(created_ms), "data": data})
    return Message(f"{drop_id}:{entry_id}", body)


class Signer:
    """Signs messages with one platform's webhook secret (``whsec_...``)."""

    def __init__(self, secret: str) -> None:
        self._webhook = Webhook(secret)

    def headers(self, message: Message, now: float) -> dict[str, str]:
        sent_at = datetime.fromtimestamp(int(now), UTC)
        return {
            "Content-Type": "application/json",
            "webhook-id": message.id,
            "webhook-timestamp": str(int(now)),
            "webhook-signature": self._webhook.sign(message.id, sent_at, message.body.decode()),
        }
