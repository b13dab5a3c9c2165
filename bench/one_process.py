"""The challenge's served cost, taken apart in one process: the bare route, the real challenge
and lean stand-ins for it are routes of one dropserver app, driven in turn by wrk.

    .venv/bin/python bench/one_process.py [--rounds 3] [--duration 5] [--only NAME ...]

bench_http.py compares servers run a minute apart; on a machine whose speed drifts by a fifth
within minutes, differences of a few percent drown. Here every route is served by the same
process (same heap, same pool stock, same caches), each route right after a run of the bare
route, for ``--rounds`` rounds; the table shows each route's median rate and the median ratio
of its pairs.

The routes:

- ``bare``: a GET route on a static path answering a fixed 100-byte body, nothing else.
- ``shape: ...``: the bare route's answer (or a fixed 500-byte challenge) on a static path,
  and on a path with a parameter (the second of two candidates, as the challenge is), with and
  without dropserver's metrics wrapper: what routing and the answer's size cost.
- ``lean N``: a stand-in for the challenge handler built up step by step (take a puzzle and
  format the challenge; then the identity; the opening checks; the origin; the demand count;
  the HMAC signature), the real pieces called as the handler calls them. Each is registered one
  candidate deeper under ``/lean/{id}/`` than the one before, as aiohttp tries a prefix's
  routes in the order they were added; ``lean 5, static path`` is the last step with no
  candidate before it.
- ``challenge``: the real handler at ``/v1/drops/{id}/challenge``.

The stand-ins leave out what the real handler does besides (limits, metrics, the pool's
refill logic, the adaptive level): they are a floor, not a replacement. Requests carry one of
2,000 identity tokens (bench/requests.lua), as in bench_http.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from aiohttp import ClientSession, web  # noqa: E402

from dropserver import purchase as purchasing  # noqa: E402
from dropserver.app import create_app  # noqa: E402
from dropserver.appkeys import SERVICES  # noqa: E402
from dropserver.auth import buyer_of  # noqa: E402
from dropserver.config import PlatformSettings, PowSettings, RedisSettings, Settings  # noqa: E402
from dropserver.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from dropserver.errors import not_found  # noqa: E402
from dropserver.identity import mint_token  # noqa: E402
from dropserver.instrument import instrumented  # noqa: E402
from dropserver.pow import Difficulty, Puzzle, derive_puzzle  # noqa: E402
from dropserver.pow.challenge import _hmac_sha256_hex  # noqa: E402
from dropserver.request_stats import RequestStats  # noqa: E402

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
POW = {"algorithm": "PBKDF2/SHA-256", "cost": 1, "counter_max": 4, "adaptive": False}
PLATFORM = PlatformSettings("b", ("k" * 32,), "s" * 40)
PERSONS = 2_000
SMALL = orjson.dumps({"order_id": "x" * 40, "serial": 1, "status": "held", "expires_at": None})
CHALLENGE_SHAPED = orjson.dumps(
    {
        "parameters": {
            "algorithm": "PBKDF2/SHA-256", "cost": 1,
            "data": {"act": "buy", "cid": "c" * 22, "drop": "d" * 18, "ipp": "127.0.0.0/24",
                     "pid": "a1"},
            "expiresAt": 1_800_000_000, "keyLength": 32, "keyPrefix": "a" * 32,
            "keySignature": "b" * 64, "nonce": "c" * 32, "salt": "d" * 32,
        },
        "signature": "e" * 64,
    }
)  # fmt: skip
NO_STORE = {"Cache-Control": "no-store"}
LEAN_STEPS = ("the challenge, unsigned", "+ identity", "+ opening checks", "+ origin",
              "+ demand count", "+ HMAC")  # fmt: skip


async def bare(request: web.Request) -> web.Response:
    return web.Response(body=SMALL, content_type="application/json")


async def challenge_shaped(request: web.Request) -> web.Response:
    return web.Response(body=CHALLENGE_SHAPED, content_type="application/json", headers=NO_STORE)


def lean(step: int, puzzles: deque[Puzzle], drop_id: str) -> Handler:
    """The challenge handler's work up to ``step`` (see LEAN_STEPS)."""

    async def handler(request: web.Request) -> web.Response:
        services = request.app[SERVICES]
        found = services.drops.cached(drop_id)
        assert found is not None
        drop = found[0]
        pid = "a0"
        if step >= 1:
            buyer = buyer_of(request, services)
            if buyer.platform != drop.platform:
                raise not_found("no such drop")
            pid = buyer.person
        now = time.time() * 1000
        if step >= 2:
            now = services.clock.now_ms()
            if now < drop.opens_at:
                raise purchasing.refusal(purchasing.NOT_OPEN, [purchasing.NOT_OPEN, drop.opens_at])
            if services.demand.closed_at(drop_id) or 0 < drop.closes_at <= now:
                raise purchasing.refusal(purchasing.CLOSED, [purchasing.CLOSED])
        prefix = "127.0.0.0/24"
        if step >= 3:
            prefix = services.gate.origin(request).ip_prefix
        if step >= 4:
            services.demand.hit(drop_id, prefix)
        puzzle = puzzles.popleft()
        puzzles.append(puzzle)  # a stand-in: puzzles go round, the real pool's are used once
        head, tail, cid = puzzle
        canonical = b'%b{"act":"buy","cid":"%b","drop":"%b","ipp":"%b","pid":"%b"},' % (
            head, cid.encode(), drop_id.encode(), prefix.encode(), pid.encode()
        ) + b'"expiresAt":%d,%b' % (int(now // 1000) + 300, tail)  # fmt: skip
        signature = "0" * 64
        if step >= 5:
            signature = _hmac_sha256_hex(services.settings.pow.secret, canonical)
        body = b'{"parameters":%b,"signature":"%b"}' % (canonical, signature.encode())
        return web.Response(body=body, content_type="application/json", headers=NO_STORE)

    return handler


class Late:
    """A handler whose drop id is known only once the app runs (routes come before)."""

    def __init__(self) -> None:
        self.target: Handler | None = None

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        assert self.target is not None
        return await self.target(request)


async def wrk(url: str, lines: Path, seconds: int) -> float:
    env = {**os.environ, "BENCH_REQUESTS": str(lines), "BENCH_OFFSET": "0"}
    process = await asyncio.create_subprocess_exec(
        "wrk", "-t1", "-c64", f"-d{seconds}s", "-s", str(ROOT / "bench" / "requests.lua"), url,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await process.communicate()
    for line in out.decode().splitlines():
        if line.startswith("BENCH rps="):
            return float(line.split()[1].split("=")[1])
    raise RuntimeError(f"no rate from wrk: {out.decode()[-500:]}")


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="routes whose name contains these (and bare)")
    args = parser.parse_args()
    stock = min(1_000_000, 30_000 * (2 + args.duration * args.rounds) * 4 // 3)
    stats = RequestStats()
    puzzles: deque[Puzzle] = deque()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp)) as redis:
        settings = Settings(
            platforms={"b": PLATFORM},
            redis=RedisSettings(url=redis.url),
            pow=PowSettings(pool_target=stock),
        )
        app = create_app(settings)
        router = app.router
        late: dict[str, Late] = {}
        routes: list[tuple[str, str]] = [("bare", "/bare")]
        router.add_get("/bare", bare)
        router.add_get("/shape/static", challenge_shaped)
        # Each shape with a parameter is the second of two candidates of its own prefix, as
        # the challenge is of /v1/drops (after the purchase).
        for prefix, handler in (
            ("/s1", bare),
            ("/s2", instrumented(bare, "/s2", stats)),
            ("/s3", instrumented(challenge_shaped, "/s3", stats)),
        ):
            router.add_get(f"{prefix}/{{id}}/first", bare)
            router.add_get(f"{prefix}/{{id}}/second", handler)
        routes += [
            ("shape: static path, 500-byte challenge", "/shape/static"),
            ("shape: parameter", "/s1/DROP/second"),
            ("shape: parameter, wrapper", "/s2/DROP/second"),
            ("shape: parameter, wrapper, 500-byte challenge", "/s3/DROP/second"),
        ]
        for step, name in enumerate(LEAN_STEPS):
            late[f"lean {step}"] = Late()
            router.add_get(f"/lean/{{id}}/{step}", instrumented(late[f"lean {step}"], "/l", stats))
            routes.append((f"lean {step}: {name}", f"/lean/DROP/{step}"))
        late["lean static"] = Late()
        router.add_get("/lean-static", instrumented(late["lean static"], "/l", stats))
        routes += [
            ("lean 5, static path", "/lean-static"),
            ("challenge", "/v1/drops/DROP/challenge"),
        ]
        if args.only:
            routes = routes[:1] + [r for r in routes[1:] if any(o in r[0] for o in args.only)]

        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
        base = f"http://127.0.0.1:{port}"
        try:
            async with ClientSession() as session:
                spec = {
                    "title": "x",
                    "supply": 10_000_000,
                    "mode": "fcfs",
                    "per_person_limit": 100,
                    "opens_at": "2020-01-01T00:00:00Z",
                    "pow": POW,
                }
                resp = await session.post(
                    f"{base}/v1/drops", json=spec, headers={"Authorization": f"Bearer {'k' * 32}"}
                )  # fmt: skip
                drop_id = (await resp.json())["id"]
                level = Difficulty.from_config(
                    {k: POW[k] for k in ("algorithm", "cost", "counter_max")}
                )
                puzzles.extend(
                    derive_puzzle(level, settings.pow.key_signature_secret) for _ in range(100_000)
                )
                for step in range(len(LEAN_STEPS)):
                    late[f"lean {step}"].target = lean(step, puzzles, drop_id)
                late["lean static"].target = lean(len(LEAN_STEPS) - 1, puzzles, drop_id)
                pool = app[SERVICES].gate._pool

                def stocked() -> None:  # the drop's creation started the stock
                    while pool.stock(level) < stock - 1:
                        time.sleep(0.2)

                await asyncio.to_thread(stocked)
                await session.get(f"{base}/v1/drops/{drop_id}/challenge")  # the drop is cached
            tokens = [mint_token(PLATFORM, account=f"a{i}", person=f"a{i}") for i in range(PERSONS)]
            files: list[tuple[str, Path]] = []
            for name, path in routes:
                lines = Path(tmp) / f"{len(files)}.lines"
                full = path.replace("DROP", drop_id)
                lines.write_text("".join(f"GET\t{full}\t{t}\t\n" for t in tokens))
                files.append((name, lines))
                await wrk(base, lines, 1)  # warm-up: the identity cache, first entries
            # Each route right after a run of the bare route: the ratio of the pair, so that
            # the machine's drift over a round counts for less.
            ratios: dict[str, list[float]] = {name: [] for name, _ in files[1:]}
            rates: dict[str, list[float]] = {name: [] for name, _ in files}
            for _ in range(args.rounds):
                for name, lines in files[1:]:
                    bare_rate = await wrk(base, files[0][1], args.duration)
                    rate = await wrk(base, lines, args.duration)
                    rates["bare"].append(bare_rate)
                    rates[name].append(rate)
                    ratios[name].append(rate / bare_rate)
        finally:
            await runner.cleanup()
    print(f"{'route':<48} {'req/s':>8} {'served us':>9} {'ratio':>6}   pairs")
    for name, values in rates.items():
        median = statistics.median(values)
        pairs = ratios.get(name, [])
        shown = " / ".join(f"{r:.2f}" for r in pairs)
        ratio = f"{statistics.median(pairs):.2f}" if pairs else "1.00"
        print(f"{name:<48} {median:>8,.0f} {1e6 / median:>9.1f} {ratio:>6}   {shown}")
    return 0


if __name__ == "__main__":
    import uvloop

    raise SystemExit(uvloop.run(main()))
