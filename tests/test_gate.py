"""The anti-bot gate over HTTP: proof-of-work tickets, rate limits, nothing to snatch early."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from dropserver.appkeys import SERVICES
from dropserver.config import Settings
from dropserver.drops import parse_drop_spec
from dropserver.gate import Gate, Origin
from dropserver.identity import Buyer
from dropserver.keys import drop_keys
from dropserver.metrics import Metrics
from dropserver.pow import (
    Difficulty,
    PreDerivationPool,
    binding_data,
    derive_key,
    issue_challenge,
    password,
    pre_derive,
)
from dropserver.pow.solver import payload, solve
from dropserver.refusals import RefusalTally
from tests.conftest import POW_SETTINGS
from tests.helpers import buyer, drop_body, rfc3339
from tests.test_purchase import create, stats

SMALL_POW = {"algorithm": "PBKDF2/SHA-256", "cost": 1, "counter_max": 16, "adaptive": False}
NO_LIMITS: dict[str, Any] = {}


async def challenge(client: TestClient, drop_id: str, headers: dict[str, str]) -> dict[str, Any]:
    resp = await client.get(f"/v1/drops/{drop_id}/challenge", headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = await resp.json()
    return body


async def solved(client: TestClient, drop_id: str, headers: dict[str, str]) -> str:
    found = await challenge(client, drop_id, headers)
    return payload(found, solve(found))


async def purchase(
    client: TestClient, drop_id: str, headers: dict[str, str], pow_payload: str | None
) -> tuple[int, dict[str, Any]]:
    body = {} if pow_payload is None else {"pow": pow_payload}
    resp = await client.post(f"/v1/drops/{drop_id}/purchase", json=body, headers=headers)
    return resp.status, await resp.json()


def forge(drop_id: str, *, pid: str, action: str = "buy", ip_prefix: str = "127.0.0.0/24",
          expires_in: int = 300) -> dict[str, Any]:  # fmt: skip
    """A challenge signed with the server's secrets, with whatever binding a test wants."""
    pre = pre_derive(Difficulty.from_config({"cost": 1, "counter_max": 16}))
    return issue_challenge(
        pre,
        hmac_secret=POW_SETTINGS.secret,
        key_signature_secret=POW_SETTINGS.key_signature_secret,
        expires_at=int(time.time()) + expires_in,
        data=binding_data(drop_id=drop_id, pid=pid, action=action, ip_prefix=ip_prefix),
    )


async def test_solve_a_real_challenge_and_buy(client: TestClient) -> None:
    drop_id = await create(client, pow=SMALL_POW)
    headers = buyer("alice")
    found = await challenge(client, drop_id, headers)
    params = found["parameters"]
    assert params["algorithm"] == "PBKDF2/SHA-256" and params["cost"] == 1
    assert params["data"]["drop"] == drop_id and params["data"]["pid"] == "alice"
    assert params["data"]["act"] == "buy" and params["data"]["ipp"] == "127.0.0.0/24"
    assert params["expiresAt"] > time.time() + 200
    status, order = await purchase(client, drop_id, headers, payload(found, solve(found)))
    assert status == 201, order
    assert order["status"] == "held"


async def test_a_person_id_outside_ascii_gets_a_challenge_and_buys(client: TestClient) -> None:
    """The widget can only carry ASCII; a platform's pids may be anything (this was a 500)."""
    drop_id = await create(client, pow=SMALL_POW)
    headers = buyer("zhang", "张伟-1")
    found = await challenge(client, drop_id, headers)
    assert found["parameters"]["data"]["pid"] == "%E5%BC%A0%E4%BC%9F-1"
    base64.b64encode(json.dumps(found, ensure_ascii=False).encode("ascii"))  # what btoa needs
    status, order = await purchase(client, drop_id, headers, payload(found, solve(found)))
    assert status == 201, order
    # Another person whose pid reads like that encoding cannot use the ticket.
    status, body = await purchase(
        client, drop_id, buyer("other", "%E5%BC%A0%E4%BC%9F-1"), payload(found, solve(found))
    )
    assert (status, body["error"]["code"]) == (403, "pow_invalid")


async def test_pow_is_required_on_a_pow_drop(client: TestClient) -> None:
    drop_id = await create(client, pow=SMALL_POW)
    status, body = await purchase(client, drop_id, buyer("a"), None)
    assert (status, body["error"]["code"]) == (403, "pow_invalid")
    assert (await stats(client, drop_id))["held"] == 0


async def test_challenge_before_open_is_425_and_nothing_is_addressable(client: TestClient) -> None:
    drop_id = await create(client, pow=SMALL_POW, opens_at=rfc3339(3600))
    resp = await client.get(f"/v1/drops/{drop_id}/challenge", headers=buyer("a"))
    assert resp.status == 425
    error = (await resp.json())["error"]
    assert error["code"] == "not_open" and error["opens_at"].endswith("Z")
    # A ticket forged for the drop (as if its id leaked) still cannot buy before the opening.
    forged = forge(drop_id, pid="a")
    status, body = await purchase(client, drop_id, buyer("a"), payload(forged, solve(forged)))
    assert (status, body["error"]["code"]) == (425, "not_open")
    view = await (await client.get(f"/v1/drops/{drop_id}")).json()
    assert view["status"] == "scheduled"
    assert not {"counters", "orders", "serials"} & set(view)
    me = await (await client.get(f"/v1/drops/{drop_id}/me", headers=buyer("a"))).json()
    assert me["orders"] == []


def _honest_key_for_counter_zero(body: dict[str, Any]) -> None:
    """No work done: counter 0 with its real key (ALTCHA's JS library once let this pass)."""
    params = body["challenge"]["parameters"]
    key = derive_key(
        params["algorithm"],
        password(bytes.fromhex(params["nonce"]), 0),
        bytes.fromhex(params["salt"]),
        params["cost"],
        params["keyLength"],
    )
    body["solution"].update(counter=0, derivedKey=key.hex())


def _tamper(encoded: str, change: Any) -> str:
    body = json.loads(base64.b64decode(encoded))
    change(body)
    return base64.b64encode(json.dumps(body).encode()).decode()


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["challenge"].__setitem__("signature", "00" * 32),
        lambda b: b["challenge"]["parameters"].__setitem__("cost", 2),
        lambda b: b["challenge"]["parameters"]["data"].__setitem__("cid", "x" * 32),
        lambda b: b["challenge"]["parameters"].__setitem__("expiresAt", 4102444800),
        lambda b: b["solution"].__setitem__("derivedKey", "00" * 32),
        _honest_key_for_counter_zero,
    ],
    ids=["signature", "cost", "data", "expiry", "derived-key", "counter-zero"],
)
async def test_tampered_payloads_are_invalid(client: TestClient, change: Any) -> None:
    drop_id = await create(client, pow=SMALL_POW)
    headers = buyer("a")
    good = await solved(client, drop_id, headers)
    status, body = await purchase(client, drop_id, headers, _tamper(good, change))
    assert (status, body["error"]["code"]) == (403, "pow_invalid"), body
    assert (await stats(client, drop_id))["held"] == 0


@pytest.mark.parametrize(
    ("binding", "message"),
    [
        ({"pid": "mallory"}, "pid"),
        ({"action": "enter"}, "act"),
        ({"ip_prefix": "10.0.0.0/24"}, "ipp"),
    ],
)
async def test_tickets_bound_to_someone_else_are_invalid(
    client: TestClient, binding: dict[str, str], message: str
) -> None:
    drop_id = await create(client, pow=SMALL_POW)
    forged = forge(drop_id, **{"pid": "a", **binding})
    status, body = await purchase(client, drop_id, buyer("a"), payload(forged, solve(forged)))
    assert (status, body["error"]["code"]) == (403, "pow_invalid")
    assert message in body["error"]["message"]


async def test_ticket_for_another_drop_is_invalid(client: TestClient) -> None:
    one = await create(client, pow=SMALL_POW)
    two = await create(client, pow=SMALL_POW)
    ticket = await solved(client, one, buyer("a"))
    status, body = await purchase(client, two, buyer("a"), ticket)
    assert (status, body["error"]["code"]) == (403, "pow_invalid")


async def test_expired_and_test_mode_payloads(client: TestClient) -> None:
    drop_id = await create(client, pow=SMALL_POW)
    old = forge(drop_id, pid="a", expires_in=-5)
    status, body = await purchase(client, drop_id, buyer("a"), payload(old, solve(old)))
    assert (status, body["error"]["code"]) == (403, "pow_expired")
    test_mode = base64.b64encode(b'{"challenge":null,"solution":null,"test":true}').decode()
    status, body = await purchase(client, drop_id, buyer("a"), test_mode)
    assert (status, body["error"]["code"]) == (403, "pow_invalid")


async def test_a_payload_works_once(client: TestClient) -> None:
    drop_id = await create(client, pow=SMALL_POW, per_person_limit=5)
    headers = buyer("a")
    ticket = await solved(client, drop_id, headers)
    assert (await purchase(client, drop_id, headers, ticket))[0] == 201
    status, body = await purchase(client, drop_id, headers, ticket)
    assert (status, body["error"]["code"]) == (403, "pow_replayed")
    assert (await stats(client, drop_id))["held"] == 1


async def test_concurrent_replays_from_many_connections_succeed_exactly_once(
    client: TestClient,
) -> None:
    drop_id = await create(client, pow=SMALL_POW, per_person_limit=50, supply=50)
    headers = buyer("a")
    ticket = await solved(client, drop_id, headers)
    results = await asyncio.gather(*(purchase(client, drop_id, headers, ticket) for _ in range(40)))
    codes = sorted(status for status, _ in results)
    assert codes.count(201) == 1
    assert codes.count(403) == 39
    assert all(b["error"]["code"] == "pow_replayed" for s, b in results if s == 403)
    assert (await stats(client, drop_id))["held"] == 1


async def test_a_refused_attempt_spends_its_ticket(client: TestClient) -> None:
    drop_id = await create(client, pow=SMALL_POW, supply=1)
    first = await solved(client, drop_id, buyer("a"))
    assert (await purchase(client, drop_id, buyer("a"), first))[0] == 201
    headers = buyer("b")
    ticket = await solved(client, drop_id, headers)
    status, body = await purchase(client, drop_id, headers, ticket)
    assert (status, body["error"]["code"]) == (409, "sold_out")
    status, body = await purchase(client, drop_id, headers, ticket)
    assert (status, body["error"]["code"]) == (403, "pow_replayed")


async def test_pow_off_drop_needs_no_payload_and_has_no_challenge(client: TestClient) -> None:
    drop_id = await create(client, pow=None)
    assert (await purchase(client, drop_id, buyer("a"), None))[0] == 201
    resp = await client.get(f"/v1/drops/{drop_id}/challenge", headers=buyer("b"))
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "pow_disabled"


async def test_challenge_requires_identity(client: TestClient) -> None:
    drop_id = await create(client, pow=SMALL_POW)
    resp = await client.get(f"/v1/drops/{drop_id}/challenge")
    assert resp.status == 401


# --- rate limits -------------------------------------------------------------------------------


async def test_person_rate_limit_on_purchases(client: TestClient) -> None:
    limits = {"person": {"rate": 0.5, "burst": 2}}
    drop_id = await create(client, pow=None, per_person_limit=10, rate_limits=limits)
    statuses = []
    for account in ("a1", "a2", "a3"):  # three accounts, one person
        resp = await client.post(
            f"/v1/drops/{drop_id}/purchase", json={}, headers=buyer(account, "same")
        )
        statuses.append(resp.status)
    assert statuses == [201, 201, 429]
    error = (await resp.json())["error"]
    assert error["code"] == "rate_limited" and error["kind"] == "person"
    assert resp.headers["Retry-After"] == "2"
    assert resp.headers["RateLimit-Limit"] == "2"
    assert resp.headers["RateLimit-Remaining"] == "0"
    assert (await stats(client, drop_id))["held"] == 2
    other = await client.post(f"/v1/drops/{drop_id}/purchase", json={}, headers=buyer("x"))
    assert other.status == 201  # another person is not affected


async def test_waiting_retry_after_is_admitted(client: TestClient) -> None:
    limits = {"person": {"rate": 2, "burst": 1}}
    drop_id = await create(client, pow=None, per_person_limit=10, rate_limits=limits)
    headers = buyer("a")
    assert (await client.post(f"/v1/drops/{drop_id}/purchase", headers=headers)).status == 201
    refused = await client.post(f"/v1/drops/{drop_id}/purchase", headers=headers)
    assert refused.status == 429
    await asyncio.sleep(int(refused.headers["Retry-After"]))
    assert (await client.post(f"/v1/drops/{drop_id}/purchase", headers=headers)).status == 201


async def test_ip_prefix_and_device_limits(client: TestClient) -> None:
    limits = {"ip": {"rate": 0.1, "burst": 3}, "device": {"rate": 0.1, "burst": 1}}
    drop_id = await create(client, pow=None, rate_limits=limits)
    device = {"X-Device-Id": "phone-1"}
    assert (
        await client.post(f"/v1/drops/{drop_id}/purchase", headers={**buyer("a"), **device})
    ).status == 201
    resp = await client.post(f"/v1/drops/{drop_id}/purchase", headers={**buyer("b"), **device})
    assert resp.status == 429 and (await resp.json())["error"]["kind"] == "device"
    # Different persons and no device: the /24 allows a burst of 3 in all.
    codes = [
        (await client.post(f"/v1/drops/{drop_id}/purchase", headers=buyer(p))).status
        for p in ("c", "d", "e")
    ]
    assert codes == [201, 201, 429]
    bad = await client.post(
        f"/v1/drops/{drop_id}/purchase", headers={**buyer("f"), "X-Device-Id": "x" * 200}
    )
    assert bad.status == 400


async def test_challenge_endpoint_is_rate_limited(client: TestClient) -> None:
    limits = {"person": {"rate": 0.1, "burst": 2}}
    drop_id = await create(client, pow=SMALL_POW, rate_limits=limits)
    codes = [
        (await client.get(f"/v1/drops/{drop_id}/challenge", headers=buyer("a"))).status
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]


async def test_rate_limited_purchase_keeps_its_ticket(client: TestClient) -> None:
    limits = {"person": {"rate": 2, "burst": 2}}
    drop_id = await create(client, pow=SMALL_POW, per_person_limit=5, rate_limits=limits)
    headers = buyer("a")
    first, second = await solved(client, drop_id, headers), await solved(client, drop_id, headers)
    await asyncio.sleep(1.0)  # refill after the two challenges
    assert (await purchase(client, drop_id, headers, first))[0] == 201
    assert (await purchase(client, drop_id, headers, "x"))[0] == 403  # invalid: not charged
    status, body = await purchase(client, drop_id, headers, first)
    assert body["error"]["code"] == "pow_replayed"  # a replay is charged: the bucket is empty
    status, body = await purchase(client, drop_id, headers, second)
    assert status == 429
    await asyncio.sleep(0.6)
    assert (await purchase(client, drop_id, headers, second))[0] == 201


# --- adaptive difficulty -----------------------------------------------------------------------


def work(found: dict[str, Any]) -> int:
    """The counter a solver must reach: the work a challenge really costs (base: 8..16)."""
    return solve(found).counter


async def difficulty_gauge(client: TestClient, drop_id: str) -> float:
    text = await (await client.get("/metrics")).text()
    prefix = f'dropserver_pow_difficulty{{drop="{drop_id}"}}'
    return float(next(line for line in text.splitlines() if line.startswith(prefix)).split()[-1])


async def test_difficulty_rises_under_load_and_falls_after(client: TestClient) -> None:
    drop_id = await create(client, pow={**SMALL_POW, "adaptive": True})
    assert work(await challenge(client, drop_id, buyer("p0"))) <= 16

    # 60 identified persons at once: over 40/s, then over 80/s, in the 0.5 s window.
    crowd = await asyncio.gather(
        *(challenge(client, drop_id, buyer(f"p{i}")) for i in range(1, 61))
    )
    assert max(work(c) for c in crowd) > 32  # level 2: counters in [32, 64]
    assert await difficulty_gauge(client, drop_id) > 16

    await asyncio.sleep(2.0)  # four windows of quiet: the decaying rate is back under 40/s
    assert work(await challenge(client, drop_id, buyer("late"))) <= 16
    assert await difficulty_gauge(client, drop_id) == 16


async def test_challenges_are_served_when_the_stock_runs_out(client: TestClient) -> None:
    """The tests' pool keeps 8 puzzles a level: 30 challenges at once drain it, and the rest
    are derived for their requests. Each is a real, distinct, solvable challenge."""
    drop_id = await create(client, pow=SMALL_POW)
    pool = client.app[SERVICES].gate._pool
    misses = pool.misses
    crowd = await asyncio.gather(*(challenge(client, drop_id, buyer(f"p{i}")) for i in range(30)))
    assert pool.misses > misses
    assert len({c["parameters"]["data"]["cid"] for c in crowd}) == 30
    headers = buyer("p29")
    status, _ = await purchase(client, drop_id, headers, payload(crowd[-1], solve(crowd[-1])))
    assert status == 201


async def test_anonymous_floods_do_not_raise_difficulty(client: TestClient) -> None:
    adaptive = {**SMALL_POW, "adaptive": True}
    drop_id = await create(client, pow=adaptive)
    floods = await asyncio.gather(
        *(client.get(f"/v1/drops/{drop_id}/challenge") for _ in range(100))
    )
    assert {r.status for r in floods} == {401}
    assert work(await challenge(client, drop_id, buyer("honest"))) <= 16
    assert await difficulty_gauge(client, drop_id) == 16


async def test_metrics_count_the_gate(client: TestClient) -> None:
    drop_id = await create(client, pow=SMALL_POW)
    headers = buyer("a")
    ticket = await solved(client, drop_id, headers)
    await purchase(client, drop_id, headers, ticket)
    await purchase(client, drop_id, headers, ticket)
    text = await (await client.get("/metrics")).text()
    assert f'dropserver_pow_challenges_issued_total{{drop="{drop_id}"}} 1.0' in text
    assert f'dropserver_pow_verifications_total{{drop="{drop_id}",outcome="ok"}} 1.0' in text
    assert (
        f'dropserver_pow_verifications_total{{drop="{drop_id}",outcome="pow_replayed"}} 1.0' in text
    )


@pytest.mark.parametrize("device", [None, "dev-1"])
@pytest.mark.parametrize(
    "limits", [{}, {"person": {"rate": 5, "burst": 5}, "device": {"rate": 2, "burst": 1}}]
)
def test_limiter_keys_and_args(
    settings: Settings, limits: dict[str, Any], device: str | None
) -> None:
    """Each kind's key and ARGV triple: off as (0, 0, 0) without a limit, or without a device
    id; the device key names the device, or "-"."""
    drop = parse_drop_spec(
        drop_body(rate_limits=limits, pow=None), platform="acme", generated_id="d-limits"
    )
    keys = drop_keys(drop.id)
    person_p1 = Buyer("acme", "a1", "p1", True, True, time.time() + 60)
    with PreDerivationPool(workers=1) as pool:
        gate = Gate(settings, pool, Metrics(), RefusalTally(Redis()))
        plans = [
            gate.limiters(drop, keys, person_p1, Origin("203.0.113.0/24", device))
            for _ in range(2)  # the second call is served from the per-drop plan
        ]
    for key_list, args in plans:
        assert key_list == [
            keys.limiter("person", "p1"),
            keys.limiter("ip", "203.0.113.0/24"),
            keys.limiter("device", device or "-"),
        ]
        person = [200_000, 5, 1] if limits else [0, 0, 0]
        on_device = [500_000, 1, 1] if limits and device else [0, 0, 0]
        assert args == [*person, 0, 0, 0, *on_device]


def resend_every_purchase(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every purchase script call runs twice with the same arguments and the second reply is
    the one answered: what the batcher does when a connection drops after Redis ran a batch."""
    services = client.app[SERVICES]
    batcher, script = services.batcher, services.scripts["purchase"]
    run = batcher.run

    async def twice(called: Any, keys: Any, args: Any) -> Any:
        if called is script:
            await run(called, keys, args)
        return await run(called, keys, args)

    monkeypatch.setattr(batcher, "run", twice)


async def test_a_purchase_sent_again_after_a_lost_reply_gets_its_first_answer(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop_id = await create(client, pow=SMALL_POW, per_person_limit=5)
    resend_every_purchase(client, monkeypatch)
    headers = buyer("a")
    status, order = await purchase(client, drop_id, headers, await solved(client, drop_id, headers))
    assert status == 201 and order["status"] == "held", order
    assert (await stats(client, drop_id))["held"] == 1


async def test_a_fair_start_purchase_sent_again_after_a_lost_reply_stays_pending(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A window long enough that no draw runs during the test: the attempt stays pending.
    drop_id = await create(client, pow=SMALL_POW, opens_at=rfc3339(-0.2), fair_start_seconds=30)
    resend_every_purchase(client, monkeypatch)
    headers = buyer("a")
    status, body = await purchase(client, drop_id, headers, await solved(client, drop_id, headers))
    assert status == 202 and body["status"] == "pending", body
    counts = await client.app[SERVICES].redis.hgetall(drop_keys(drop_id).counts)
    assert int(counts[b"entries"]) == 1
    assert b"rej:pow_replayed" not in counts
