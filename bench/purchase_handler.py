"""The purchase handler's own cost, without HTTP: the registered (wrapped) handler called on
mocked requests, 64 at a time as a server under load would run them, against an embedded Redis.

    .venv/bin/python bench/purchase_handler.py [--calls 40000] [--runs 3] [--compare DIR]
        [--cluster]

Prints the server process's CPU microseconds per purchase (the handler, the shared round trips
and the reply; not the HTTP parsing and writing that ``bench_http.py`` adds, nor Redis's own
CPU, which runs in its own process). ``--compare DIR`` alternates the runs with the dropserver
package of another checkout (``git worktree add DIR COMMIT``), so that a change is measured
before and after in one run; ``--cluster`` alternates them with the same checkout on a local
Redis Cluster (the drop on one of its three primaries): what routing by slot costs a call.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

from harness import app_with_drop, settle_heap, use_checkout

ROOT = Path(__file__).resolve().parent.parent
PERSONS = 2_000  # with a limit of 1,000 each: room for 2,000,000 purchases
CONCURRENCY = 64


async def measure(calls: int, prepare_only: bool = False, cluster: bool = False) -> float:
    from aiohttp import streams
    from aiohttp.test_utils import make_mocked_request

    from dropserver.identity import mint_token

    async with app_with_drop(
        supply=10_000_000, per_person_limit=1_000, pow=None, cluster=cluster
    ) as bench:
        app, platform, drop_id = bench.app, bench.platform, bench.drop_id
        tokens = [mint_token(platform, account=f"a{i}", person=f"a{i}") for i in range(PERSONS)]
        handler = next(
            r.handler
            for r in app.router.routes()
            if r.method == "POST" and r.resource and r.resource.canonical.endswith("/purchase")
        )
        loop = asyncio.get_running_loop()

        def request(i: int) -> object:
            payload = streams.StreamReader(protocol=_Protocol(), limit=2**16, loop=loop)
            payload.feed_data(b"{}")
            payload.feed_eof()
            transport = _Transport()
            return make_mocked_request(
                "POST",
                f"/v1/drops/{drop_id}/purchase",
                headers={
                    "Authorization": f"Bearer {tokens[i % PERSONS]}",
                    "Content-Type": "application/json",
                    "Content-Length": "2",
                },
                app=app,
                match_info={"id": drop_id},
                payload=payload,
                # Plain stand-ins instead of aiohttp's mocks: a Mock call costs more
                # than some of what is measured.
                transport=transport,
                protocol=_Peer(transport),
                writer=_Writer(transport),
            )

        async def worker(requests: list[object]) -> None:
            for req in requests:
                response = await handler(req)  # type: ignore[arg-type]
                assert response.status == 201, response.text  # type: ignore[attr-defined]

        async def run(n: int, call: bool = True) -> float:
            requests = [request(i) for i in range(n)]
            await settle_heap(app)
            if not call:  # the baseline of an instruction count (bench/instructions.py)
                return 0.0
            started = time.process_time()
            await asyncio.gather(*(worker(requests[k::CONCURRENCY]) for k in range(CONCURRENCY)))
            return (time.process_time() - started) / n * 1e6

        await run(PERSONS)  # every identity verified once, as the warm-up does over HTTP
        return await run(calls, call=not prepare_only)


class _Transport:
    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default
        )

    def is_closing(self) -> bool:
        return False


class _Peer:
    """The request's protocol, as far as a handler that returns a response asks of it."""

    max_field_size = 8190
    max_line_length = 8190
    max_headers = 128
    peername = ("127.0.0.1", 40000)
    sockname = ("127.0.0.1", 8080)
    ssl_context = None

    def __init__(self, transport: _Transport) -> None:
        self.transport = transport
        self.writer: object = None


class _Writer:
    def __init__(self, transport: _Transport) -> None:
        self.transport = transport


class _Protocol:
    """What a StreamReader asks of its protocol when it is paused or resumed (never here)."""

    _reading_paused = False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self, resume_parser: bool = True) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=40_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare", type=Path, help="another checkout to alternate with")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="also alternate with a local Redis Cluster of three primaries ([redis] cluster)",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one measurement, with the dropserver package of that checkout
        use_checkout(args.child)
        import uvloop

        print(f"{uvloop.run(measure(args.calls, args.prepare_only, args.cluster)):.1f}")
        return 0
    variants = [(ROOT, False)] + ([(ROOT, True)] if args.cluster else [])
    variants += [(args.compare.resolve(), False)] if args.compare else []
    for run in range(args.runs):
        for checkout, cluster in variants:
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(checkout), "--calls", str(args.calls)]
                + (["--cluster"] if cluster else []),
                capture_output=True,
                text=True,
                check=True,
            )
            where = f"{checkout}{' on a Redis Cluster' if cluster else ''}"
            print(f"run {run + 1}, {where}: {out.stdout.strip()} us of CPU per purchase")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
