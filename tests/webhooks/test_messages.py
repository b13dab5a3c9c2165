"""A delivery's body and headers (dropserver.webhooks.messages), checked with the Standard
Webhooks reference verifier that platforms use."""

from __future__ import annotations

import base64
import time

import orjson
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from dropserver.webhooks.messages import Signer, message_of

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
FIELDS = {
    b"type": b"allocated", b"drop": b"d1", b"order": b"d1.abc", b"serial": b"7", b"pid": b"p1",
    b"sub": b"a1", b"status": b"held", b"expires_at": b"1795291200123",
}  # fmt: skip


def test_an_event_becomes_a_standard_webhooks_payload() -> None:
    message = message_of("d1", "1795291000000-3", FIELDS)
    assert message.id == "d1:1795291000000-3"
    assert orjson.loads(message.body) == {
        "type": "allocated",
        "timestamp": "2026-11-21T19:56:40.000Z",
        "data": {
            "drop": "d1", "order": "d1.abc", "serial": 7, "pid": "p1", "sub": "a1",
            "status": "held", "expires_at": "2026-11-21T20:00:00.123Z",
        },
    }  # fmt: skip


def test_no_expiry_is_null_and_unknown_fields_stay_strings() -> None:
    fields = {b"type": b"drawn", b"drop": b"d1", b"entries": b"12", b"digest": b"ab01",
              b"expires_at": b"0"}  # fmt: skip
    data = orjson.loads(message_of("d1", "1-0", fields).body)["data"]
    assert data == {"drop": "d1", "entries": 12, "digest": "ab01", "expires_at": None}


def test_the_signature_verifies_and_binds_body_id_and_time() -> None:
    message = message_of("d1", "1795291000000-0", FIELDS)
    now = time.time()
    headers = Signer(SECRET).headers(message, now)
    assert headers["webhook-id"] == message.id
    assert headers["webhook-timestamp"] == str(int(now))
    version, signature = headers["webhook-signature"].split(",")
    assert version == "v1" and len(base64.b64decode(signature)) == 32
    verifier = Webhook(SECRET)
    assert verifier.verify(message.body, headers)["data"]["serial"] == 7
    with pytest.raises(WebhookVerificationError):
        verifier.verify(message.body.replace(b'"serial":7', b'"serial":8'), headers)
    with pytest.raises(WebhookVerificationError):
        verifier.verify(message.body, {**headers, "webhook-id": "d1:other"})
    with pytest.raises(WebhookVerificationError):  # a captured delivery sent again later
        verifier.verify(message.body, Signer(SECRET).headers(message, now - 600))
    other = "whsec_" + base64.b64encode(b"o" * 32).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(message.body, headers)
