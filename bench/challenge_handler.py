"""The challenge handler's own cost, without HTTP: calls the registered (wrapped) handler on
mocked requests in a loop, against an embedded Redis.

    .venv/bin/python bench/challenge_handler.py [--calls 20000]

Prints microseconds per call; what the bench_http.py figure adds on top is aiohttp serving
the request. bench/instructions.py runs it under callgrind to count instructions instead.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from harness import app_with_drop, settle_heap, stocked, use_checkout

ROOT = Path(__file__).resolve().parent.parent
POW = {"algorithm": "PBKDF2/SHA-256", "cost": 1, "counter_max": 4, "adaptive": False}


async def measure(calls: int, prepare_only: bool = False) -> float:
    from aiohttp.test_utils import make_mocked_request

    from dropserver.identity import mint_token

    # Twice what the calls take: the stock then never falls below the pool's low water mark
    # (a quarter of the target), so no refill runs in the pool's workers while the handler is
    # measured. A refill took the GIL from the loop, and callgrind counted its KDF work too.
    stock = 2 * (calls + 100) + 1000
    async with app_with_drop(supply=10, per_person_limit=1, pow=POW, pool_target=stock) as bench:
        app, platform, drop_id = bench.app, bench.platform, bench.drop_id
        await stocked(app, POW, stock)
        token = mint_token(platform, account="a", person="a")
        handler = next(
            r.handler
            for r in app.router.routes()
            if r.method == "GET" and r.resource and r.resource.canonical.endswith("/challenge")
        )
        requests = [
            make_mocked_request(
                "GET",
                f"/v1/drops/{drop_id}/challenge",
                headers={"Authorization": f"Bearer {token}"},
                app=app,
                match_info={"id": drop_id},
            )
            for _ in range(calls + 100)
        ]
        for request in requests[:100]:  # identity cache, first demand entries
            assert (await handler(request)).status == 200
        await settle_heap(app)
        if prepare_only:  # the baseline of an instruction count (bench/instructions.py)
            return 0.0
        started = time.perf_counter()
        for request in requests[100:]:
            await handler(request)
        return (time.perf_counter() - started) / calls * 1e6


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    use_checkout(args.child or ROOT)
    per_call = asyncio.run(measure(args.calls, args.prepare_only))
    if args.child:
        print(f"{per_call:.1f}")
    else:
        print(f"challenge handler: {per_call:.1f} us per call")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
