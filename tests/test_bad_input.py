"""Bad input gets a clear 4xx JSON error and changes nothing."""

from __future__ import annotations

import time

import jwt
import pytest
from aiohttp.test_utils import TestClient

from tests.helpers import ADMIN, OTHER_SECRET, SECRET, buyer, drop_body, token
from tests.test_purchase import create, stats


async def error_of(resp: object) -> tuple[int, str]:
    body = await resp.json()  # type: ignore[attr-defined]
    return resp.status, body["error"]["code"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"supply": "10"}, "supply"),
        ({"supply": 0}, "supply"),
        ({"supply": True}, "supply"),
        ({"mode": "auction"}, "mode"),
        ({"opens_at": "tomorrow"}, "opens_at"),
        ({"opens_at": "2026-11-21T20:00:00"}, "zone"),
        ({"opens_at": ...}, "opens_at"),
        ({"title": ""}, "title"),
        ({"per_person_limit": 0}, "per_person_limit"),
        ({"hold_seconds": -1}, "hold_seconds"),
        ({"id": "UPPER"}, "id"),
        ({"colour": "red"}, "unknown field"),
        ({"pow": {"cost": "high"}}, "pow"),
        ({"pow": {"algorithm": "MD5"}}, "pow"),
        ({"pow": {"surprise": 1}}, "pow"),
        ({"rate_limits": {"person": {"rate": -1, "burst": 1}}}, "rate_limits"),
        ({"rate_limits": {"planet": {"rate": 1, "burst": 1}}}, "rate_limits"),
        ({"mode": "lottery"}, "closes_at"),
        ({"closes_at": "2000-01-01T00:00:00Z"}, "closes_at"),
    ],
)
async def test_create_drop_validation(
    client: TestClient, body: dict[str, object], needle: str
) -> None:
    resp = await client.post("/v1/drops", json=drop_body(**body), headers=ADMIN)
    status, code = await error_of(resp)
    assert (status, code) == (400, "invalid_request")
    assert needle in (await resp.json())["error"]["message"]
    listing = await (await client.get("/v1/drops", headers=ADMIN)).json()
    assert listing["drops"] == []


@pytest.mark.parametrize("raw", [b"{", b"[1,2]", b'"text"', b"", b"\xff\xfe"])
async def test_malformed_json(client: TestClient, raw: bytes) -> None:
    resp = await client.post(
        "/v1/drops", data=raw, headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert await error_of(resp) == (400, "invalid_request")


async def test_purchase_body_rules(client: TestClient) -> None:
    drop_id = await create(client)
    for raw in (b"{", b"[]", b'{"pow": "x", "extra": 1}'):
        resp = await client.post(f"/v1/drops/{drop_id}/purchase", data=raw, headers=buyer("a"))
        assert await error_of(resp) == (400, "invalid_request"), raw
    assert (await stats(client, drop_id))["held"] == 0


async def test_payload_too_large(client: TestClient) -> None:
    drop_id = await create(client)
    resp = await client.post(
        f"/v1/drops/{drop_id}/purchase",
        data=b'{"pow": "' + b"a" * (70 * 1024) + b'"}',
        headers=buyer("a"),
    )
    assert await error_of(resp) == (413, "payload_too_large")
    assert (await stats(client, drop_id))["held"] == 0


def _forged() -> str:
    return token("a", secret="not-the-platform-secret-0123456789abcdef")


def _expired() -> str:
    return token("a", ttl=-60)


def _unknown_issuer() -> str:
    return token("a", issuer="nobody")


def _no_pid() -> str:
    claims = {"iss": "acme", "sub": "a", "exp": int(time.time()) + 60}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def _none_alg() -> str:
    claims = {"iss": "acme", "sub": "a", "pid": "a", "exp": int(time.time()) + 60}
    return jwt.encode(claims, None, algorithm="none")


def _other_platform_secret() -> str:
    return token("a", secret=OTHER_SECRET)


@pytest.mark.parametrize(
    "make", [_forged, _expired, _unknown_issuer, _no_pid, _none_alg, _other_platform_secret]
)
async def test_bad_tokens_are_refused(client: TestClient, make: object) -> None:
    drop_id = await create(client)
    bad = make()  # type: ignore[operator]
    resp = await client.post(
        f"/v1/drops/{drop_id}/purchase", headers={"Authorization": f"Bearer {bad}"}
    )
    assert await error_of(resp) == (401, "unauthorized")
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert (await stats(client, drop_id))["held"] == 0


async def test_missing_token_and_wrong_api_key(client: TestClient) -> None:
    drop_id = await create(client)
    resp = await client.post(f"/v1/drops/{drop_id}/purchase")
    assert await error_of(resp) == (401, "unauthorized")
    wrong = {"Authorization": "Bearer acme-admin-key-0000000000000002"}
    resp = await client.post("/v1/drops", json=drop_body(), headers=wrong)
    assert await error_of(resp) == (401, "unauthorized")
    resp = await client.post(f"/v1/drops/{drop_id}/close", headers=wrong)
    assert await error_of(resp) == (401, "unauthorized")
    # A buyer's token is not an API key.
    resp = await client.post("/v1/drops", json=drop_body(), headers=buyer("a"))
    assert await error_of(resp) == (401, "unauthorized")
    assert (await stats(client, drop_id))["status"] == "open"


async def test_unknown_routes_and_methods_are_json(client: TestClient) -> None:
    assert await error_of(await client.get("/v1/nothing")) == (404, "not_found")
    resp = await client.delete("/v1/drops")
    assert await error_of(resp) == (405, "method_not_allowed")
    assert set(resp.headers["Allow"].split(",")) == {"GET", "HEAD", "POST"}
    resp = await client.get("/v1/drops/x/purchase")
    assert await error_of(resp) == (405, "method_not_allowed")
    assert resp.headers["Allow"] == "POST"
    assert await error_of(await client.get("/v1/drops/nope")) == (404, "not_found")
    text = await (await client.get("/metrics")).text()
    assert 'dropserver_http_requests_total{method="DELETE",route="unmatched",status="405"}' in text
    resp = await client.post("/v1/drops/nope/purchase", headers=buyer("a"))
    assert await error_of(resp) == (404, "not_found")


async def test_bad_idempotency_key(client: TestClient) -> None:
    drop_id = await create(client)
    resp = await client.post(
        f"/v1/drops/{drop_id}/purchase", headers={**buyer("a"), "Idempotency-Key": "x" * 300}
    )
    assert await error_of(resp) == (400, "invalid_request")
    assert (await stats(client, drop_id))["held"] == 0


async def test_duplicate_drop_id_and_idempotent_create(client: TestClient) -> None:
    first = await client.post("/v1/drops", json=drop_body(id="same"), headers=ADMIN)
    assert first.status == 201
    clash = await client.post("/v1/drops", json=drop_body(id="same", title="x"), headers=ADMIN)
    assert await error_of(clash) == (409, "already_exists")

    body = drop_body(title="Generated id")
    headers = {**ADMIN, "Idempotency-Key": "create-1"}
    one = await client.post("/v1/drops", json=body, headers=headers)
    two = await client.post("/v1/drops", json=body, headers=headers)
    assert one.status == two.status == 201
    assert (await one.json())["id"] == (await two.json())["id"]
    listing = await (await client.get("/v1/drops", headers=ADMIN)).json()
    assert len(listing["drops"]) == 2
    # The same key with another body is refused, and the first drop stays as it was.
    changed = await client.post("/v1/drops", json={**body, "supply": 1}, headers=headers)
    assert await error_of(changed) == (422, "idempotency_mismatch")
    first = await (await client.get(f"/v1/drops/{(await one.json())['id']}", headers=ADMIN)).json()
    assert first["supply"] == body["supply"]
