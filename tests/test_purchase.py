"""FCFS purchases end to end through HTTP against a real Redis."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from aiohttp.test_utils import TestClient

from tests.helpers import ADMIN, buyer, drop_body, rfc3339


async def create(client: TestClient, **overrides: object) -> str:
    resp = await client.post("/v1/drops", json=drop_body(**overrides), headers=ADMIN)
    assert resp.status == 201, await resp.text()
    drop_id: str = (await resp.json())["id"]
    return drop_id


async def stats(client: TestClient, drop_id: str) -> dict[str, object]:
    resp = await client.get(f"/v1/drops/{drop_id}/stats", headers=ADMIN)
    assert resp.status == 200
    result: dict[str, object] = await resp.json()
    return result


async def test_purchase_holds_a_unit(client: TestClient) -> None:
    drop_id = await create(client, supply=3)
    resp = await client.post(f"/v1/drops/{drop_id}/purchase", json={}, headers=buyer("a1"))
    assert resp.status == 201
    order = await resp.json()
    assert order["status"] == "held"
    assert order["serial"] == 1
    assert order["expires_at"].endswith("Z")
    assert order["order_id"].startswith(f"{drop_id}.") and len(order["order_id"]) > 32
    s = await stats(client, drop_id)
    assert (s["remaining"], s["held"], s["confirmed"], s["consistent"]) == (2, 1, 0, True)


async def test_contention_1000_attempts_500_persons_2_accounts_100_units(
    client: TestClient,
) -> None:
    drop_id = await create(client, supply=100)
    attempts = [(f"p{p}", f"p{p}-acct{a}") for p in range(500) for a in range(2)]
    random.Random(7).shuffle(attempts)

    async def attempt(person: str, account: str) -> tuple[str, int, dict[str, object]]:
        resp = await client.post(
            f"/v1/drops/{drop_id}/purchase", json={}, headers=buyer(account, person)
        )
        return person, resp.status, await resp.json()

    results = await asyncio.gather(*(attempt(p, a) for p, a in attempts))
    won = [(person, body) for person, status, body in results if status == 201]
    assert len(won) == 100
    assert max(Counter(person for person, _ in won).values()) == 1  # nobody above the limit
    serials = sorted(int(body["serial"]) for _, body in won)  # type: ignore[call-overload]
    assert serials == list(range(1, 101))  # unique, 1..supply
    refusals = Counter(
        body["error"]["code"]  # type: ignore[index]
        for _, status, body in results
        if status != 201
    )
    assert set(refusals) <= {"sold_out", "limit_reached"}
    assert sum(refusals.values()) == 900
    s = await stats(client, drop_id)
    assert (s["remaining"], s["held"], s["consistent"]) == (0, 100, True)


async def test_per_person_limit_counts_persons_not_accounts(client: TestClient) -> None:
    drop_id = await create(client, supply=10, per_person_limit=2)
    codes = []
    for account in ("a", "b", "c"):
        resp = await client.post(
            f"/v1/drops/{drop_id}/purchase", json={}, headers=buyer(account, "same-person")
        )
        codes.append(resp.status)
    assert codes == [201, 201, 409]
    assert (await resp.json())["error"]["code"] == "limit_reached"


async def test_sold_out(client: TestClient) -> None:
    drop_id = await create(client, supply=1)
    first = await client.post(f"/v1/drops/{drop_id}/purchase", headers=buyer("a"))
    second = await client.post(f"/v1/drops/{drop_id}/purchase", headers=buyer("b"))
    assert first.status == 201
    assert second.status == 409
    assert (await second.json())["error"]["code"] == "sold_out"


async def test_not_open_before_opens_at(client: TestClient) -> None:
    drop_id = await create(client, opens_at=rfc3339(3600))
    resp = await client.post(f"/v1/drops/{drop_id}/purchase", headers=buyer("a"))
    assert resp.status == 425
    error = (await resp.json())["error"]
    assert error["code"] == "not_open"
    assert error["opens_at"].endswith("Z")
    assert (await stats(client, drop_id))["held"] == 0


async def test_closed_after_close_and_after_closes_at(client: TestClient) -> None:
    drop_id = await create(client)
    assert (await client.post(f"/v1/drops/{drop_id}/close", headers=ADMIN)).status == 200
    resp = await client.post(f"/v1/drops/{drop_id}/purchase", headers=buyer("a"))
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "closed"

    ended = await create(client, opens_at=rfc3339(-10), closes_at=rfc3339(-5))
    resp = await client.post(f"/v1/drops/{ended}/purchase", headers=buyer("a"))
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "closed"


async def test_hold_seconds_zero_is_final_at_once(client: TestClient) -> None:
    drop_id = await create(client, hold_seconds=0)
    resp = await client.post(f"/v1/drops/{drop_id}/purchase", headers=buyer("a"))
    order = await resp.json()
    assert order["status"] == "confirmed"
    assert order["expires_at"] is None
    s = await stats(client, drop_id)
    assert (s["held"], s["confirmed"]) == (0, 1)


async def test_idempotent_retry_returns_first_answer(client: TestClient) -> None:
    drop_id = await create(client, supply=5, per_person_limit=5)
    headers = {**buyer("a"), "Idempotency-Key": "k-1"}
    first = await client.post(f"/v1/drops/{drop_id}/purchase", json={}, headers=headers)
    again = await client.post(f"/v1/drops/{drop_id}/purchase", json={}, headers=headers)
    assert first.status == again.status == 201
    assert await first.json() == await again.json()
    assert (await stats(client, drop_id))["held"] == 1  # the retry changed nothing

    # The same key on a different request is refused and changes nothing.
    other = await client.post(f"/v1/drops/{drop_id}/purchase", json={"pow": "x"}, headers=headers)
    assert other.status == 422
    assert (await other.json())["error"]["code"] == "idempotency_mismatch"
    assert (await stats(client, drop_id))["held"] == 1


async def test_idempotent_retry_of_a_refusal_repeats_it(client: TestClient) -> None:
    drop_id = await create(client, supply=1)
    await client.post(f"/v1/drops/{drop_id}/purchase", headers=buyer("a"))
    headers = {**buyer("b"), "Idempotency-Key": "k-2"}
    first = await client.post(f"/v1/drops/{drop_id}/purchase", headers=headers)
    assert first.status == 409
    again = await client.post(f"/v1/drops/{drop_id}/purchase", headers=headers)
    assert await again.json() == await first.json()


async def test_kyc_and_adult_rules(client: TestClient) -> None:
    drop_id = await create(client, adult_only=True)
    resp = await client.post(f"/v1/drops/{drop_id}/purchase", headers=buyer("a", kyc=False))
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "kyc_required"
    resp = await client.post(f"/v1/drops/{drop_id}/purchase", headers=buyer("b", adult=False))
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "adult_only"
    assert (await stats(client, drop_id))["held"] == 0

    open_drop = await create(client, require_kyc=False)
    resp = await client.post(f"/v1/drops/{open_drop}/purchase", headers=buyer("c", kyc=False))
    assert resp.status == 201


async def test_me_and_order_views(client: TestClient) -> None:
    drop_id = await create(client, per_person_limit=2)
    one = await (
        await client.post(f"/v1/drops/{drop_id}/purchase", headers=buyer("a1", "p"))
    ).json()
    two = await (
        await client.post(f"/v1/drops/{drop_id}/purchase", headers=buyer("a2", "p"))
    ).json()
    me = await (await client.get(f"/v1/drops/{drop_id}/me", headers=buyer("a1", "p"))).json()
    assert [o["order_id"] for o in me["orders"]] == [one["order_id"], two["order_id"]]
    assert me["units"] == 2

    mine = await client.get(f"/v1/orders/{one['order_id']}", headers=buyer("a2", "p"))
    assert mine.status == 200 and (await mine.json())["serial"] == one["serial"]
    theirs = await client.get(f"/v1/orders/{one['order_id']}", headers=buyer("x", "stranger"))
    assert theirs.status == 404
    admin = await client.get(f"/v1/orders/{one['order_id']}", headers=ADMIN)
    assert admin.status == 200


async def test_public_view_is_coarse(client: TestClient) -> None:
    drop_id = await create(client, supply=10)
    view = await (await client.get(f"/v1/drops/{drop_id}")).json()
    assert view["availability"] == "available"
    assert view["status"] == "open"
    assert "counters" not in view and "remaining" not in view
    admin = await (await client.get(f"/v1/drops/{drop_id}", headers=ADMIN)).json()
    assert admin["counters"] == {"supply": 10, "remaining": 10, "held": 0, "confirmed": 0}
