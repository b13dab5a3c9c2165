"""The server as deployed (dropserver.server): real ``dropserver serve`` processes stopped by real
signals, and what ``serve`` sets up before the server listens."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from dropserver import server
from dropserver.config import Settings
from dropserver.embedded_redis import EmbeddedRedis, free_port
from tests.helpers import ADMIN, ADMIN_KEY, SECRET, buyer, drop_body, rfc3339

SHUTDOWN_TIMEOUT = 10  # seconds the server gives in-flight requests after SIGTERM


def config(tmp_path: Path, redis_url: str, port: int, server_extra: str = "") -> Path:
    path = tmp_path / "dropserver.toml"
    path.write_text(
        f"""
[server]
port = {port}
shutdown_timeout = {SHUTDOWN_TIMEOUT}
{server_extra}
[redis]
url = "{redis_url}"
[pow]
secret = "server-test-pow-secret-0123456789"
key_signature_secret = "server-test-keysig-secret-012345"
[[platforms]]
id = "acme"
api_keys = ["{ADMIN_KEY}"]
identity_hs256_secret = "{SECRET}"
"""
    )
    return path


async def start_server(config_path: Path) -> asyncio.subprocess.Process:
    """A real ``dropserver serve`` process (``python -m dropserver``) on ``config_path``."""
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "dropserver", "serve", "--config", str(config_path)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def wait_until_up(base: str, proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert proc.returncode is None, "the server exited at start"
            try:
                async with session.get(f"{base}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the server did not get ready in 20 s")


async def test_sigterm_finishes_the_request_in_flight(
    tmp_path: Path, redis_server: EmbeddedRedis
) -> None:
    """A purchase that waits for its fair-start turn is in flight when SIGTERM comes: it gets
    its whole answer, new connections are refused, and the process exits cleanly."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = await start_server(config(tmp_path, redis_server.url, port))
    try:
        await wait_until_up(base, proc)
        async with aiohttp.ClientSession() as session:
            body = drop_body(opens_at=rfc3339(-0.5), fair_start_seconds=60)
            async with session.post(f"{base}/v1/drops", json=body, headers=ADMIN) as resp:
                assert resp.status == 201, await resp.text()
                drop_id = (await resp.json())["id"]
            started = time.monotonic()
            # Pending in the fair-start window, the request polls for its turn for 2 s.
            waiting = asyncio.ensure_future(
                session.post(
                    f"{base}/v1/drops/{drop_id}/purchase?wait=2", json={}, headers=buyer("a1")
                )
            )
            await asyncio.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            refused = False
            try:
                async with aiohttp.ClientSession() as fresh:
                    await fresh.get(f"{base}/healthz")
            except aiohttp.ClientConnectionError:
                refused = True
            resp = await waiting
            assert resp.status == 202, await resp.text()
            assert (await resp.json())["status"] == "pending"
            # It waited out its 2 s (the wait ends within one 0.1 s poll of its deadline), not
            # cut short by the SIGTERM at 0.5 s.
            assert time.monotonic() - started >= 1.8
            resp.release()
        assert refused, "a new connection was accepted after SIGTERM"
        assert await asyncio.wait_for(proc.wait(), SHUTDOWN_TIMEOUT + 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.skipif(shutil.which("ss") is None, reason="ss (iproute2) is not installed")
async def test_the_listening_socket_has_the_configured_backlog(
    tmp_path: Path, redis_server: EmbeddedRedis
) -> None:
    """A drop's crowd connects at once: the socket must queue as many connections as
    configured, not aiohttp's default 128 (ss shows a listening socket's backlog as Send-Q)."""
    port = free_port()
    proc = await start_server(config(tmp_path, redis_server.url, port, "backlog = 321"))
    try:
        await wait_until_up(f"http://127.0.0.1:{port}", proc)
        ss = await asyncio.create_subprocess_exec(
            "ss", "-Hltn", f"sport = :{port}", stdout=asyncio.subprocess.PIPE
        )
        listing = (await ss.communicate())[0].decode().split()
        assert listing[0] == "LISTEN" and listing[2] == "321", listing
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), SHUTDOWN_TIMEOUT + 10)


def _descendants(pid: int) -> set[int]:
    """The living processes below ``pid`` (from /proc; zombies count as gone)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if fields[0] not in ("Z", "X"):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _living(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            alive.add(pid)
    return alive


async def test_the_pow_workers_die_with_a_killed_server(
    tmp_path: Path, redis_server: EmbeddedRedis
) -> None:
    """A server killed outright (SIGKILL, out of memory) cannot stop its proof-of-work
    workers; they must notice and exit by themselves, and their forkserver with them."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = await start_server(config(tmp_path, redis_server.url, port))
    try:
        await wait_until_up(base, proc)
        # A drop with proof of work: the pool starts its workers to stock its level.
        body = drop_body(pow={"algorithm": "PBKDF2/SHA-256", "cost": 1, "counter_max": 4})
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{base}/v1/drops", json=body, headers=ADMIN) as resp,
        ):
            assert resp.status == 201, await resp.text()
        deadline = time.monotonic() + 20
        while len(below := _descendants(proc.pid)) < 3:  # the forkserver and 2 workers
            assert time.monotonic() < deadline, f"the pool's workers did not start: {below}"
            await asyncio.sleep(0.1)
    finally:
        proc.kill()
        await proc.wait()
    deadline = time.monotonic() + 10
    try:
        while left := _living(below):
            assert time.monotonic() < deadline, f"processes outlived the killed server: {left}"
            await asyncio.sleep(0.1)
    finally:
        for pid in _living(below):  # a failed run leaves no orphans behind
            os.kill(pid, signal.SIGKILL)


async def test_settle_heap_freezes_start_up_and_collects_young_objects_less_often() -> None:
    before = gc.get_threshold()
    try:
        await server.settle_heap(web.Application())
        assert gc.get_freeze_count() > 10_000  # the modules imported by now, at the least
        assert gc.get_threshold() == (server.YOUNG_COLLECTION_THRESHOLD, *before[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_serve_settles_the_heap_once_the_services_are_built(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    """settle_heap is the last start-up step: after cleanup_ctx's, which builds the services."""
    served: list[web.Application] = []
    monkeypatch.setattr(server.web, "run_app", lambda app, **_: served.append(app))
    server.serve(settings)
    (app,) = served
    assert list(app.on_startup)[-1] is server.settle_heap
