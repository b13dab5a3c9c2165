"""A draw killed mid-way completes correctly when it is run again.

A separate process builds its own app against the test Redis, runs the draw of a lottery drop
prepared here (30,000 entries written straight into Redis, as lua/enter.lua writes them) with
small write batches, and SIGKILLs itself right after a few draw_write batches succeeded: no
``finally``, no cleanup, a half-written draw order and a live lock left behind, as a crash or an
OOM kill would leave them. The test then checks that state, that a second attempt is refused
while the lock lives, lets the lock expire, and draws again through the HTTP API.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from dropserver.app import create_app
from dropserver.config import Settings
from dropserver.draws import LOCK_MS
from dropserver.embedded_redis import EmbeddedRedis
from dropserver.keys import drop_keys
from dropserver.lottery import build_proof, receipt
from tests.helpers import ADMIN, ADMIN_KEY, SECRET, buyer, drop_body, rfc3339

ROOT = Path(__file__).resolve().parent.parent
ENTRIES = 30_000
SUPPLY = 50
KILLED_WRITE_BATCH = 1_000  # the killed process writes 30 batches...
KILL_AFTER = 7  # ...and dies right after the 7th succeeded

# The drawing process. Everything it needs comes from argv; it never returns normally. It counts
# draw_write successes where every reply arrives, in redis-py's connection (whether the draw
# sends its writes through the batcher or on a connection of its own): until the commit, the
# only reply that is exactly [0] is a draw_write that wrote its batch.
DRAWER = textwrap.dedent(
    """
    import asyncio, os, signal, sys

    from aiohttp import web
    from redis.asyncio.connection import AbstractConnection

    from dropserver import draws
    from dropserver.app import create_app
    from dropserver.appkeys import SERVICES
    from dropserver.config import PlatformSettings, RedisSettings, Settings

    url, drop_id, admin_key, secret = sys.argv[1:5]
    write_batch, kill_after = int(sys.argv[5]), int(sys.argv[6])
    draws.WRITE_BATCH = write_batch  # many batches, so the kill lands in the middle
    read_response = AbstractConnection.read_response
    written = 0


    async def read_then_maybe_die(self, *args, **kwargs):
        global written
        reply = await read_response(self, *args, **kwargs)
        if reply == [0]:
            written += 1
            print(f"draw_write batch {written} done", flush=True)
            if written == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
        return reply


    AbstractConnection.read_response = read_then_maybe_die


    async def main() -> None:
        settings = Settings(
            platforms={"acme": PlatformSettings("acme", (admin_key,), secret)},
            redis=RedisSettings(url=url),
        )
        app = create_app(settings, run_background=False)
        runner = web.AppRunner(app)
        await runner.setup()  # the app's services, no HTTP listener
        services = app[SERVICES]
        found = await services.drops.get(drop_id)
        await services.draws.draw(found[0])
        print(f"the draw completed: only {written} draw_write replies were seen", flush=True)
        sys.exit(3)


    asyncio.run(main())
    """
)


@pytest.fixture
async def client(settings: Settings, redis: Redis) -> AsyncIterator[TestClient]:
    """The app without its background loops: the draw runner would otherwise race the test
    for the drop (it draws due drops by itself)."""
    app = create_app(settings, run_background=False)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def load_entries(redis: Redis, drop_id: str, n: int) -> dict[str, str]:
    """n entries written as lua/enter.lua writes them; receipt -> pid."""
    keys = drop_keys(drop_id)
    pid_of: dict[str, str] = {}
    mapping: dict[str, str] = {}
    for i in range(n):
        pid, sub, entry_id = f"person-{i:06d}", f"account-{i:06d}", os.urandom(16).hex()
        r = receipt(drop_id, entry_id)
        mapping[pid] = f"{entry_id} {r} {sub} 1"
        pid_of[r] = pid
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hset(keys.entries, mapping=mapping)
        pipe.hincrby(keys.counts, "entries", n)
        await pipe.execute()
    return pid_of


async def run_killed_drawer(tmp_path: Path, url: str, drop_id: str) -> str:
    script = tmp_path / "drawer.py"
    script.write_text(DRAWER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [url, drop_id, ADMIN_KEY, SECRET, str(KILLED_WRITE_BATCH), str(KILL_AFTER)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    output = out.decode()
    assert proc.returncode == -signal.SIGKILL, f"exit {proc.returncode}:\n{output}"
    return output


async def verify_draw(tmp_path: Path, proof: dict[str, Any], entries: bytes) -> tuple[int, str]:
    """``dropserver verify-draw`` on the published files, as anyone would run it."""
    (tmp_path / "proof.json").write_text(json.dumps(proof))
    (tmp_path / "entries.ndjson").write_bytes(entries)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dropserver",
        "verify-draw",
        str(tmp_path / "proof.json"),
        str(tmp_path / "entries.ndjson"),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_a_draw_killed_mid_way_completes_when_run_again(
    client: TestClient, redis: Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    body = drop_body(mode="lottery", supply=SUPPLY, closes_at=rfc3339(60), claim_seconds=300)
    resp = await client.post("/v1/drops", json=body, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    drop_id: str = (await resp.json())["id"]
    keys = drop_keys(drop_id)
    pid_of = await load_entries(redis, drop_id, ENTRIES)
    # Closing freezes the entries (the draw is due at once instead of at closes_at).
    assert (await client.post(f"/v1/drops/{drop_id}/close", headers=ADMIN)).status == 200

    # 1. The drawing process dies right after its 7th draw_write of 30.
    output = await run_killed_drawer(tmp_path, redis_server.url, drop_id)
    assert f"draw_write batch {KILL_AFTER} done" in output, output

    # 2. What it left: a draw in progress, part of the order written, the lock still held.
    # (One batch more if the drawer keeps a write in flight: it was sent before the reply that
    # triggered the kill was read.)
    assert await redis.hget(keys.draw, "state") == b"drawing"
    # Read in one transaction: a write the process sent just before it died can still be
    # applied between two separate reads.
    async with redis.pipeline(transaction=True) as pipe:
        pipe.lrange(keys.draw_order_tmp, 0, -1)
        pipe.hlen(keys.ranks_tmp)
        partial, ranked = await pipe.execute()
    half = len(partial)
    done = KILL_AFTER * KILLED_WRITE_BATCH
    assert half in (done, done + KILLED_WRITE_BATCH)
    assert ranked == half
    assert not await redis.exists(keys.draw_order, keys.ranks)
    token = await redis.get(keys.draw_lock)
    assert token is not None
    assert 0 < await redis.pttl(keys.draw_lock) <= LOCK_MS

    # 3. While the dead process's lock lives, nobody else may draw (it might be alive and slow).
    busy = await client.post(f"/v1/drops/{drop_id}/draw", headers=ADMIN)
    assert busy.status == 409 and busy.headers["Retry-After"] == "1"
    assert (await busy.json())["error"]["code"] == "draw_in_progress"
    assert await redis.llen(keys.draw_order_tmp) == half  # the refused attempt touched nothing
    assert await redis.get(keys.draw_lock) == token

    # 4. Time passes: the lock is a plain key with a PX lifetime of LOCK_MS (30 s) that nobody
    # renews any more. Shortening that lifetime to 1 ms makes Redis expire it exactly as it
    # would 30 s after the last renewal, without the test waiting 30 s.
    assert await redis.pexpire(keys.draw_lock, 1)
    deadline = time.monotonic() + 5
    while await redis.exists(keys.draw_lock):
        assert time.monotonic() < deadline, "the draw lock did not expire"
        await asyncio.sleep(0.005)

    # 5. The draw is run again, through the API, and completes.
    resp = await client.post(f"/v1/drops/{drop_id}/draw", headers=ADMIN)
    assert resp.status == 200, await resp.text()
    proof: dict[str, Any] = await resp.json()
    assert proof["state"] == "drawn" and proof["entry_count"] == ENTRIES
    order = proof["winners"] + proof["waitlist"]
    assert len(proof["winners"]) == SUPPLY and len(order) == ENTRIES

    # The same draw the killed process was computing: the order is the published algorithm
    # over the same entries and seed, and what the killed process had written is its start.
    seed = bytes.fromhex(proof["seed"])
    assert await redis.hget(keys.meta, "seed") == proof["seed"].encode()
    expected = build_proof(drop_id, seed, list(pid_of), SUPPLY, proof["beacon"])
    assert proof["winners"] == expected.winners and proof["waitlist"] == expected.waitlist
    assert proof["entries_digest"] == expected.entries_digest
    assert partial == [f"{r} {pid_of[r]}".encode() for r in order[:half]]

    # Published state is whole, and nothing of either attempt is left over.
    assert await redis.llen(keys.draw_order) == ENTRIES
    assert await redis.hlen(keys.ranks) == ENTRIES
    last = order[-1]
    assert await redis.hget(keys.ranks, pid_of[last]) == str(ENTRIES - 1).encode()
    assert not await redis.exists(keys.draw_order_tmp, keys.ranks_tmp, keys.draw_lock)

    # The winners got their holds; the queue moved on to the waitlist.
    stats = await (await client.get(f"/v1/drops/{drop_id}/stats", headers=ADMIN)).json()
    assert (stats["held"], stats["remaining"], stats["consistent"]) == (SUPPLY, 0, True)
    for r, result in ((order[0], "won"), (order[SUPPLY], "waitlisted")):
        pid = pid_of[r]
        me = await client.get(
            f"/v1/drops/{drop_id}/me", headers=buyer(pid.replace("person", "account"), pid)
        )
        mine = await me.json()
        assert mine["result"] == result, mine
        assert mine["entry"]["receipt"] == r

    # Drawing again returns the same draw; anyone can check it from the published files.
    again = await client.post(f"/v1/drops/{drop_id}/draw", headers=ADMIN)
    assert await again.json() == proof
    published = await client.get(f"/v1/drops/{drop_id}/proof")
    entries = await client.get(f"/v1/drops/{drop_id}/entries.ndjson")
    assert published.status == 200 and entries.status == 200
    code, verdict = await verify_draw(tmp_path, await published.json(), await entries.read())
    assert code == 0, verdict
    assert verdict.startswith("OK"), verdict
