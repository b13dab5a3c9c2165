"""Lottery drops end to end: entries, the draw, claims, the waitlist, and the public proof."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from dropserver.keys import drop_keys
from dropserver.lottery import build_proof
from dropserver.lottery.verify import main as verify_main
from tests.helpers import ADMIN, buyer, rfc3339
from tests.test_purchase import create, stats


async def lottery(client: TestClient, closes_in: float = 60, **overrides: Any) -> str:
    return await create(
        client, mode="lottery", closes_at=rfc3339(closes_in), claim_seconds=300, **overrides
    )


async def enter(client: TestClient, drop_id: str, account: str, person: str | None = None) -> Any:
    resp = await client.post(
        f"/v1/drops/{drop_id}/entries", json={}, headers=buyer(account, person)
    )
    return resp.status, await resp.json()


async def close_and_draw(client: TestClient, drop_id: str) -> dict[str, Any]:
    assert (await client.post(f"/v1/drops/{drop_id}/close", headers=ADMIN)).status == 200
    resp = await client.post(f"/v1/drops/{drop_id}/draw", headers=ADMIN)
    assert resp.status == 200, await resp.text()
    proof: dict[str, Any] = await resp.json()
    return proof


async def me(client: TestClient, drop_id: str, person: str) -> dict[str, Any]:
    result: dict[str, Any] = await (
        await client.get(f"/v1/drops/{drop_id}/me", headers=buyer(person))
    ).json()
    return result


async def test_commitment_is_published_before_any_entry(client: TestClient) -> None:
    drop_id = await lottery(client)
    proof = await (await client.get(f"/v1/drops/{drop_id}/proof")).json()
    assert proof["state"] == "pending"
    assert len(proof["commitment"]) == 64 and proof["seed"] is None
    assert proof["winners"] == [] and proof["waitlist"] == []
    assert (await client.get(f"/v1/drops/{drop_id}/entries.ndjson")).status == 409


async def test_one_entry_per_person_across_accounts(client: TestClient) -> None:
    drop_id = await lottery(client)
    status, entry = await enter(client, drop_id, "acct-1", "person")
    assert status == 202 and len(entry["entry_id"]) == 32 and len(entry["receipt"]) == 64
    status, body = await enter(client, drop_id, "acct-2", "person")
    assert (status, body["error"]["code"]) == (409, "already_entered")
    assert (await stats(client, drop_id))["entries"] == 1
    mine = await me(client, drop_id, "person")
    assert mine["entry"]["receipt"] == entry["receipt"] and mine["result"] == "pending"
    purchase = await client.post(f"/v1/drops/{drop_id}/purchase", headers=buyer("x"))
    assert (await purchase.json())["error"]["code"] == "wrong_mode"


async def test_draw_is_refused_before_close(client: TestClient) -> None:
    drop_id = await lottery(client)
    await enter(client, drop_id, "a")
    resp = await client.post(f"/v1/drops/{drop_id}/draw", headers=ADMIN)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "not_closed"
    assert (await (await client.get(f"/v1/drops/{drop_id}/proof")).json())["seed"] is None


async def test_entries_after_close_are_refused(client: TestClient) -> None:
    drop_id = await lottery(client)
    await client.post(f"/v1/drops/{drop_id}/close", headers=ADMIN)
    status, body = await enter(client, drop_id, "late")
    assert (status, body["error"]["code"]) == (409, "closed")


async def test_draw_winners_hold_units_and_anyone_can_verify(
    client: TestClient, tmp_path: Path
) -> None:
    drop_id = await lottery(client, supply=3)
    receipts = {}
    for i in range(10):
        status, entry = await enter(client, drop_id, f"p{i}")
        assert status == 202
        receipts[entry["receipt"]] = f"p{i}"
    proof = await close_and_draw(client, drop_id)
    assert proof["state"] == "drawn" and proof["entry_count"] == 10
    assert len(proof["winners"]) == 3 and len(proof["waitlist"]) == 7
    assert set(proof["winners"] + proof["waitlist"]) == set(receipts)

    again = await client.post(f"/v1/drops/{drop_id}/draw", headers=ADMIN)
    assert await again.json() == proof  # drawing twice returns the same draw

    winners = [receipts[r] for r in proof["winners"]]
    for person in winners:
        mine = await me(client, drop_id, person)
        assert mine["result"] == "won" and mine["orders"][0]["status"] == "held"
    assert (await me(client, drop_id, receipts[proof["waitlist"][0]]))["result"] == "waitlisted"
    s = await stats(client, drop_id)
    assert (s["held"], s["remaining"], s["consistent"]) == (3, 0, True)

    # The published files alone recompute the draw.
    (tmp_path / "proof.json").write_text(json.dumps(proof))
    entries = await client.get(f"/v1/drops/{drop_id}/entries.ndjson")
    assert entries.headers["Content-Type"] == "application/x-ndjson"
    (tmp_path / "entries.ndjson").write_bytes(await entries.read())
    assert verify_main([str(tmp_path / "proof.json"), str(tmp_path / "entries.ndjson")]) == 0
    proof["winners"][0], proof["waitlist"][0] = proof["waitlist"][0], proof["winners"][0]
    (tmp_path / "proof.json").write_text(json.dumps(proof))
    assert verify_main([str(tmp_path / "proof.json"), str(tmp_path / "entries.ndjson")]) == 1


async def test_lapsed_claims_pass_down_the_waitlist_in_order(client: TestClient) -> None:
    drop_id = await create(client, mode="lottery", closes_at=rfc3339(60), claim_seconds=1, supply=2)
    receipts = {}
    for i in range(6):
        _, entry = await enter(client, drop_id, f"p{i}")
        receipts[entry["receipt"]] = f"p{i}"
    proof = await close_and_draw(client, drop_id)
    order = [receipts[r] for r in proof["winners"] + proof["waitlist"]]
    first, second, third, fourth = order[:4]

    # The first winner claims (the platform confirms); the second lets the claim lapse.
    order_id = (await me(client, drop_id, first))["orders"][0]["order_id"]
    assert (await client.post(f"/v1/orders/{order_id}/confirm", headers=ADMIN)).status == 200
    for _ in range(60):
        if (await me(client, drop_id, third))["result"] == "won":
            break
        await asyncio.sleep(0.05)
    assert (await me(client, drop_id, third))["result"] == "won"
    assert (await me(client, drop_id, second))["result"] == "lost"
    assert (await me(client, drop_id, fourth))["result"] == "waitlisted"
    s = await stats(client, drop_id)
    assert (s["confirmed"], s["held"], s["expired"], s["consistent"]) == (1, 1, 1, True)

    # Cancelling a claim passes the unit on at once.
    third_order = (await me(client, drop_id, third))["orders"][0]["order_id"]
    assert (await client.post(f"/v1/orders/{third_order}/cancel", headers=ADMIN)).status == 200
    assert (await me(client, drop_id, fourth))["result"] == "won"


async def test_the_draw_runs_by_itself_at_close(client: TestClient) -> None:
    drop_id = await lottery(client, closes_in=1.0, supply=1)
    await enter(client, drop_id, "only")
    for _ in range(80):
        proof = await (await client.get(f"/v1/drops/{drop_id}/proof")).json()
        if proof["state"] == "drawn":
            break
        await asyncio.sleep(0.05)
    assert proof["state"] == "drawn" and proof["entry_count"] == 1
    assert (await me(client, drop_id, "only"))["result"] == "won"


async def test_empty_lottery_draws_cleanly(client: TestClient) -> None:
    drop_id = await lottery(client)
    proof = await close_and_draw(client, drop_id)
    assert proof["entry_count"] == 0 and proof["winners"] == []
    assert (await client.get(f"/v1/drops/{drop_id}/entries.ndjson")).status == 200


async def test_the_draw_matches_the_published_algorithm(client: TestClient, redis: Redis) -> None:
    drop_id = await lottery(client, supply=2, beacon="block-123")
    receipts = []
    for i in range(7):
        receipts.append((await enter(client, drop_id, f"p{i}"))[1]["receipt"])
    proof = await close_and_draw(client, drop_id)
    seed = bytes.fromhex(proof["seed"])
    expected = build_proof(drop_id, seed, receipts, 2, "block-123")
    assert proof["winners"] == expected.winners and proof["waitlist"] == expected.waitlist
    assert await redis.hget(drop_keys(drop_id).meta, "seed") == proof["seed"].encode()
