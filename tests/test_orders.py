"""Holds: confirm, cancel, expiry, and the stock invariant through all of them."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from dropserver.keys import drop_keys
from tests.helpers import ADMIN, OTHER_ADMIN_KEY, buyer
from tests.test_purchase import create, stats


async def buy(client: TestClient, drop_id: str, account: str) -> dict[str, object]:
    resp = await client.post(f"/v1/drops/{drop_id}/purchase", headers=buyer(account))
    assert resp.status == 201, await resp.text()
    order: dict[str, object] = await resp.json()
    return order


async def test_confirm_makes_the_hold_final(client: TestClient) -> None:
    drop_id = await create(client, supply=2)
    order = await buy(client, drop_id, "a")
    resp = await client.post(f"/v1/orders/{order['order_id']}/confirm", headers=ADMIN)
    assert resp.status == 200
    assert (await resp.json())["status"] == "confirmed"
    again = await client.post(f"/v1/orders/{order['order_id']}/confirm", headers=ADMIN)
    assert again.status == 200  # idempotent
    s = await stats(client, drop_id)
    assert (s["remaining"], s["held"], s["confirmed"]) == (1, 0, 1)
    cancel = await client.post(f"/v1/orders/{order['order_id']}/cancel", headers=ADMIN)
    assert cancel.status == 409 and (await cancel.json())["error"]["code"] == "not_held"


async def test_cancel_returns_the_unit_and_the_person_may_buy_again(client: TestClient) -> None:
    drop_id = await create(client, supply=1)
    order = await buy(client, drop_id, "a")
    resp = await client.post(f"/v1/orders/{order['order_id']}/cancel", headers=ADMIN)
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    s = await stats(client, drop_id)
    assert (s["remaining"], s["held"], s["cancelled"], s["consistent"]) == (1, 0, 1, True)
    again = await buy(client, drop_id, "a")
    assert again["serial"] == order["serial"]  # the returned serial is reused
    confirm = await client.post(f"/v1/orders/{order['order_id']}/confirm", headers=ADMIN)
    assert confirm.status == 409


async def test_holds_expire_and_stock_returns(client: TestClient, redis: Redis) -> None:
    drop_id = await create(client, supply=3, hold_seconds=1)
    orders = [await buy(client, drop_id, f"a{i}") for i in range(3)]
    refused = await client.post(f"/v1/drops/{drop_id}/purchase", headers=buyer("late"))
    assert (await refused.json())["error"]["code"] == "sold_out"
    # The sweeper runs every 50 ms in tests; wait past the 1 s hold.
    for _ in range(60):
        s = await stats(client, drop_id)
        if s["remaining"] == 3:
            break
        await asyncio.sleep(0.05)
    assert (s["remaining"], s["held"], s["expired"], s["consistent"]) == (3, 0, 3, True)
    late = await client.post(f"/v1/drops/{drop_id}/purchase", headers=buyer("late"))
    assert late.status == 201
    expired = await client.get(f"/v1/orders/{orders[0]['order_id']}", headers=ADMIN)
    assert (await expired.json())["status"] == "expired"
    events = await redis.xrange(drop_keys(drop_id).events)
    types = [fields[b"type"] for _, fields in events]
    assert types.count(b"allocated") == 4 and types.count(b"expired") == 3


async def test_confirm_after_expiry_is_refused_even_before_the_sweeper(
    client: TestClient, redis: Redis
) -> None:
    drop_id = await create(client, supply=1, hold_seconds=1)
    order = await buy(client, drop_id, "a")
    # Make the stored order due now, the way time would; its place in the sweeper's index is
    # left in the future so that only the confirmation can notice.
    raw = await redis.hget(drop_keys(drop_id).orders, str(order["order_id"]))
    assert raw is not None
    await redis.hset(
        drop_keys(drop_id).orders,
        str(order["order_id"]),
        raw.replace(b'"expires_at":', b'"expires_at":1,"x":'),
    )
    resp = await client.post(f"/v1/orders/{order['order_id']}/confirm", headers=ADMIN)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "hold_expired"
    s = await stats(client, drop_id)
    assert (s["remaining"], s["held"], s["confirmed"]) == (1, 0, 0)


async def test_other_platform_cannot_touch_orders(client: TestClient) -> None:
    drop_id = await create(client)
    order = await buy(client, drop_id, "a")
    other = {"Authorization": f"Bearer {OTHER_ADMIN_KEY}"}
    resp = await client.post(f"/v1/orders/{order['order_id']}/confirm", headers=other)
    assert resp.status == 404
    assert (await stats(client, drop_id))["held"] == 1


async def test_unknown_order_ids(client: TestClient) -> None:
    for order_id in ("nope", "x.y", "missing-drop." + "0" * 32):
        resp = await client.post(f"/v1/orders/{order_id}/confirm", headers=ADMIN)
        assert resp.status == 404, order_id
        assert (await resp.json())["error"]["code"] == "not_found"


async def test_admin_lists_every_order_page_by_page(client: TestClient) -> None:
    drop_id = await create(client, supply=30, hold_seconds=0)
    bought = {str((await buy(client, drop_id, f"a{i}"))["order_id"]) for i in range(25)}
    seen: list[dict[str, object]] = []
    cursor = "0"
    while cursor is not None:
        resp = await client.get(
            f"/v1/drops/{drop_id}/orders", params={"cursor": cursor, "count": 7}, headers=ADMIN
        )
        assert resp.status == 200
        page = await resp.json()
        seen.extend(page["orders"])
        cursor = page["next_cursor"]
    assert {o["order_id"] for o in seen} == bought
    assert {o["person"] for o in seen} == {f"a{i}" for i in range(25)}
    bad = await client.get(f"/v1/drops/{drop_id}/orders", params={"count": "x"}, headers=ADMIN)
    assert bad.status == 400
    anonymous = await client.get(f"/v1/drops/{drop_id}/orders")
    assert anonymous.status == 401
