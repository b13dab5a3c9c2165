"""Microbenchmark of the request-path costs (not a test: run it by hand).

    .venv/bin/python bench/pow_micro.py

Prints the best-of-7 mean time per call of verify_payload (fast path), issue_challenge and
PreDerivationPool.take, and, for contrast, one KDF run at ALTCHA's recommended settings:
what the request path would pay without the pool.
"""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable
from functools import partial

from dropserver.pow import (
    Difficulty,
    PreDerivationPool,
    binding_data,
    issue_challenge,
    payload,
    pre_derive,
    solve,
    verify_payload,
)

HMAC_SECRET = b"bench-hmac-secret-0123456789abcdef"
KEY_SECRET = b"bench-key-signature-secret-012345"
EXPIRES_AT = 4_000_000_000


def per_call_us(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e6


def main() -> None:
    small = Difficulty(cost=10, counter_max=100)
    pre = pre_derive(small)
    data = binding_data(
        drop_id="drop-1", pid="person-1", action="enter", ip_prefix="203.0.113.0/24"
    )
    challenge = issue_challenge(
        pre,
        hmac_secret=HMAC_SECRET,
        key_signature_secret=KEY_SECRET,
        expires_at=EXPIRES_AT,
        data=data,
    )
    text = payload(challenge, solve(challenge))
    now = float(EXPIRES_AT - 60)

    def verify() -> object:
        return verify_payload(
            text,
            hmac_secret=HMAC_SECRET,
            key_signature_secret=KEY_SECRET,
            now=now,
            allow_slow_path=False,
        )

    def issue() -> object:
        return issue_challenge(
            pre,
            hmac_secret=HMAC_SECRET,
            key_signature_secret=KEY_SECRET,
            expires_at=EXPIRES_AT,
            data=data,
        )

    print(f"payload size: {len(text)} base64 chars")
    print(f"verify_payload (fast path): {per_call_us(verify, 20_000):8.2f} µs")
    print(f"issue_challenge:            {per_call_us(issue, 20_000):8.2f} µs")

    with PreDerivationPool(workers=1, target=20_000, low_water=0) as pool:
        level = Difficulty(cost=1, counter_max=100)
        pool.ensure(level)
        while pool.stock(level) < 20_000:
            time.sleep(0.01)
        print(f"PreDerivationPool.take:     {per_call_us(lambda: pool.take(level), 2_000):8.2f} µs")

    for name, level in (
        ("PBKDF2/SHA-256 cost 5000", Difficulty(cost=5000, counter_max=10_000)),
        ("SHA-256 cost 1000", Difficulty(algorithm="SHA-256", cost=1000, counter_max=5000)),
        ("SCRYPT N=65536 r=8", Difficulty(algorithm="SCRYPT", cost=65536, counter_max=200)),
    ):
        us = per_call_us(partial(pre_derive, level), 3 if "SCRYPT" in name else 50)
        print(f"pre_derive {name:26s} {us / 1000:8.2f} ms  (one KDF: what the pool saves)")


if __name__ == "__main__":
    main()
