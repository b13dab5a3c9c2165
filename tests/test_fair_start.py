"""Fair start: arrivals in the first N seconds are simultaneous and served in a drawn order."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from dropserver.lottery import build_proof
from tests.helpers import ADMIN, buyer, rfc3339
from tests.test_lottery_flow import me
from tests.test_purchase import create, stats


async def fair_drop(client: TestClient, **overrides: Any) -> str:
    # A 2 s window (opened 0.2 s ago) leaves the test's arrivals well inside it.
    return await create(client, opens_at=rfc3339(-0.2), fair_start_seconds=2, **overrides)


async def buy(client: TestClient, drop_id: str, account: str, **params: Any) -> Any:
    resp = await client.post(
        f"/v1/drops/{drop_id}/purchase", json={}, headers=buyer(account), params=params
    )
    return resp.status, await resp.json()


async def drawn(client: TestClient, drop_id: str) -> dict[str, Any]:
    for _ in range(100):  # the window ends within 2 s; the runner checks every 50 ms
        proof: dict[str, Any] = await (await client.get(f"/v1/drops/{drop_id}/proof")).json()
        if proof["state"] == "drawn":
            return proof
        await asyncio.sleep(0.05)
    raise AssertionError("the fair-start draw did not run")


async def test_window_arrivals_are_served_in_the_drawn_order(client: TestClient) -> None:
    drop_id = await fair_drop(client, supply=3)
    receipts = {}
    for i in range(6):
        status, body = await buy(client, drop_id, f"p{i}")
        assert status == 202 and body["status"] == "pending", body
        receipts[body["receipt"]] = f"p{i}"
    again = await client.post(
        f"/v1/drops/{drop_id}/purchase", headers=buyer("second-account", "p0")
    )
    assert again.status == 409 and (await again.json())["error"]["code"] == "already_pending"

    proof = await drawn(client, drop_id)
    assert proof["entry_count"] == 6
    expected = build_proof(drop_id, bytes.fromhex(proof["seed"]), list(receipts), 3)
    assert proof["winners"] == expected.winners  # the published, verifiable order
    order = [receipts[r] for r in expected.winners + expected.waitlist]
    for _ in range(40):
        if (await stats(client, drop_id))["held"] == 3:
            break
        await asyncio.sleep(0.05)
    for person in order[:3]:
        assert (await me(client, drop_id, person))["result"] == "won"
    for person in order[3:]:
        assert (await me(client, drop_id, person))["result"] == "waitlisted"


async def test_later_arrivals_queue_behind_the_window(client: TestClient) -> None:
    drop_id = await fair_drop(client, supply=2)
    receipts = {}
    for i in range(3):
        _, body = await buy(client, drop_id, f"early{i}")
        receipts[body["receipt"]] = f"early{i}"
    proof = await drawn(client, drop_id)
    early = [receipts[r] for r in proof["winners"] + proof["waitlist"]]

    status, body = await buy(client, drop_id, "late")  # the queue still has early2 waiting
    assert status == 202 and body["status"] == "pending"
    assert (await me(client, drop_id, "late"))["result"] == "waitlisted"

    # Units coming back go to the window's arrivals first, then to the late one.
    for person, next_in_line in ((early[0], early[2]), (early[1], "late")):
        order_id = (await me(client, drop_id, person))["orders"][0]["order_id"]
        assert (await client.post(f"/v1/orders/{order_id}/cancel", headers=ADMIN)).status == 200
        assert (await me(client, drop_id, next_in_line))["result"] == "won"


async def test_after_the_queue_is_served_it_is_plain_first_come(client: TestClient) -> None:
    drop_id = await fair_drop(client, supply=5)
    await buy(client, drop_id, "early")
    await drawn(client, drop_id)
    for _ in range(40):
        if (await me(client, drop_id, "early"))["result"] == "won":
            break
        await asyncio.sleep(0.05)
    status, body = await buy(client, drop_id, "later")
    assert status == 201 and body["status"] == "held"


async def test_a_purchase_can_wait_for_its_turn(client: TestClient) -> None:
    drop_id = await fair_drop(client, supply=5)
    status, body = await buy(client, drop_id, "patient", wait=3)
    assert status == 201 and body["status"] == "held", body
    status, body = await buy(client, drop_id, "x", wait="soon")
    assert status == 400
