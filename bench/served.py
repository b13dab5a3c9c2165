"""Whole requests served by aiohttp in process: raw HTTP bytes in, response bytes out, with no
sockets and no load generator. What it measures is everything the server's Python does for a
request: parsing, routing, the handler, and writing the response. The kernel's share and wrk's
are left out.

    .venv/bin/python bench/served.py [--target bare|challenge|purchase|pow-purchase]
        [--calls 20000]

``bare`` is bench/bare_server.py's route. ``challenge``, ``purchase`` and ``pow-purchase``
(a purchase with a fresh solved ticket) go through dropserver's app, against an embedded
Redis. Each connection is a stand-in transport fed one request at a time with keep-alive;
``--connections`` of them run at once (64, as in bench_http.py, so that purchases share round
trips). Prints CPU microseconds per request.
bench/instructions.py runs it under callgrind (``served-*`` targets) to count instructions
instead, which does not drift with the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any, ClassVar

import orjson
from harness import app_with_drop, settle_heap, stocked, use_checkout

ROOT = Path(__file__).resolve().parent.parent
PERSONS = 2_000
POW = {"algorithm": "PBKDF2/SHA-256", "cost": 1, "counter_max": 4, "adaptive": False}
TARGETS = ("bare", "challenge", "purchase", "pow-purchase")


class Sink(asyncio.Transport):
    """A connection's transport: keeps nothing, and wakes the connection's driver once a
    whole response has been written (aiohttp writes a small response in one call)."""

    statuses: ClassVar[dict[bytes, int]] = {}  # status code -> responses, all connections

    def __init__(self) -> None:
        super().__init__()
        self.written: asyncio.Future[None] | None = None

    def write(self, data: Any) -> None:
        if self.written is not None and not self.written.done():
            status = bytes(data[9:12])
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.written.set_result(None)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


def raw_request(method: str, path: str, token: str | None, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if body or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def drive(server: Any, requests: list[list[bytes]]) -> None:
    """Serve each list of requests on a connection of its own, all connections at once.
    ``server`` is the started app's ``web.Server``, which makes a protocol per connection."""
    loop = asyncio.get_running_loop()

    async def connection(raws: list[bytes]) -> None:
        protocol = server()
        sink = Sink()
        protocol.connection_made(sink)
        for raw in raws:
            sink.written = loop.create_future()
            protocol.data_received(raw)
            await sink.written
        protocol.connection_lost(None)

    await asyncio.gather(*(connection(raws) for raws in requests))


def split(raws: list[bytes], connections: int) -> list[list[bytes]]:
    return [raws[i::connections] for i in range(connections)]


async def measure(target: str, calls: int, connections: int, prepare_only: bool) -> float:
    warm = PERSONS  # every identity token is verified (and cached) before the measured calls
    if target == "bare":
        from aiohttp import web
        from aiohttp.test_utils import TestServer
        from bare_server import bare

        app = web.Application()
        app.router.add_get("/bare", bare)
        raws = [raw_request("GET", "/bare", None)] * (calls + warm)
        async with TestServer(app) as test_server:
            return await timed(test_server, raws, connections, warm, prepare_only)

    from dropserver.identity import mint_token

    pow = POW if target in ("challenge", "pow-purchase") else None
    stock = 2 * (calls + warm) + 1000  # no refill while measuring (see challenge_handler.py)
    async with app_with_drop(
        supply=10_000_000, per_person_limit=1_000, pow=pow, pool_target=stock
    ) as bench:
        tokens = [
            mint_token(bench.platform, account=f"a{i}", person=f"a{i}") for i in range(PERSONS)
        ]
        if target == "pow-purchase":
            bodies = pow_bodies(bench, [f"a{i % PERSONS}" for i in range(calls + warm)])
            raws = [
                raw_request(
                    "POST", f"/v1/drops/{bench.drop_id}/purchase", tokens[i % PERSONS], body
                )
                for i, body in enumerate(bodies)
            ]
        elif pow is not None:
            await stocked(bench.app, pow, stock)
            raws = [
                raw_request("GET", f"/v1/drops/{bench.drop_id}/challenge", tokens[i % PERSONS])
                for i in range(calls + warm)
            ]
        else:
            raws = [
                raw_request(
                    "POST", f"/v1/drops/{bench.drop_id}/purchase", tokens[i % PERSONS], b"{}"
                )
                for i in range(calls + warm)
            ]
        return await timed(bench.client.server, raws, connections, warm, prepare_only)


def pow_bodies(bench: Any, persons: list[str]) -> list[bytes]:
    """A purchase body per person, each with a fresh solved ticket bound to that person (the
    server's secrets; the peer's /24, as Sink reports it)."""
    from dropserver.appkeys import SERVICES
    from dropserver.pow import binding_data, issue_challenge, payload, pre_derive, solve
    from dropserver.pow.difficulty import Difficulty

    level = Difficulty.from_config({k: POW[k] for k in ("algorithm", "cost", "counter_max")})
    secrets = bench.app[SERVICES].settings.pow
    expires_at = int(time.time()) + 3600
    bodies = []
    for person in persons:
        challenge = issue_challenge(
            pre_derive(level),  # a puzzle per ticket: a ticket is single use
            hmac_secret=secrets.secret,
            key_signature_secret=secrets.key_signature_secret,
            expires_at=expires_at,
            data=binding_data(
                drop_id=bench.drop_id, pid=person, action="buy", ip_prefix="127.0.0.0/24"
            ),
        )
        bodies.append(orjson.dumps({"pow": payload(challenge, solve(challenge))}))
    return bodies


async def timed(
    test_server: Any, raws: list[bytes], connections: int, warm: int, prepare_only: bool
) -> float:
    # The test server's own web.Server (its app started once): connections made here never
    # touch its socket. (Another AppRunner would start the app, and its services, again.)
    server = test_server.runner.server
    await drive(server, split(raws[:warm], connections))  # identity cache, first entries
    await settle_heap(test_server.app)
    if prepare_only:
        return 0.0
    measured = raws[warm:]
    Sink.statuses.clear()
    started = time.process_time()
    await drive(server, split(measured, connections))
    elapsed = time.process_time() - started
    if set(Sink.statuses) - {b"200", b"201"}:
        raise RuntimeError(f"responses other than 200 and 201: {Sink.statuses}")
    return elapsed / len(measured) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", choices=TARGETS, default="bare")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    use_checkout(args.child or ROOT)
    import uvloop

    per_call = uvloop.run(measure(args.target, args.calls, args.connections, args.prepare_only))
    print(
        f"{per_call:.1f}" if args.child else f"{args.target} served: {per_call:.1f} us per request"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
