"""What a drop's draw publishes: the proof (commitment before, everything after) and the
entry list, read from Redis in bounded batches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dropserver.drops import Drop
from dropserver.keys import DropKeys
from dropserver.lottery import ALGORITHM, format_entries
from dropserver.redis_clients import RedisClient
from dropserver.timefmt import format_ms

_RANGE = 10_000  # draw-order items per LRANGE


async def draw_state(redis: RedisClient, keys: DropKeys) -> dict[str, str]:
    raw: dict[bytes, bytes] = await redis.hgetall(keys.draw)  # type: ignore[assignment]
    return {k.decode(): v.decode() for k, v in raw.items()}


async def drawn_receipts(redis: RedisClient, keys: DropKeys, count: int) -> list[str]:
    """The drawn part of the draw order (fair-start arrivals after the window excluded)."""
    receipts: list[str] = []
    for start in range(0, count, _RANGE):
        items: list[bytes] = await redis.lrange(  # type: ignore[assignment]
            keys.draw_order, start, min(start + _RANGE, count) - 1
        )
        receipts.extend(item.split(b" ", 1)[0].decode() for item in items)
    return receipts


async def proof(redis: RedisClient, drop: Drop, keys: DropKeys) -> dict[str, Any]:
    state = await draw_state(redis, keys)
    body: dict[str, Any] = {
        "drop_id": drop.id,
        "algorithm": ALGORITHM,
        "commitment": drop.commitment,
        "seed": None,
        "entries_digest": None,
        "entry_count": None,
        "beacon": drop.beacon,
        "supply": drop.supply,
        "winners": [],
        "waitlist": [],
        "drawn_at": None,
        "state": "drawn" if state.get("state") == "drawn" else "pending",
    }
    if body["state"] == "drawn":
        count = int(state["count"])
        order = await drawn_receipts(redis, keys, count)
        body.update(
            seed=state["seed"],
            entries_digest=state["digest"],
            entry_count=count,
            winners=order[: drop.supply],
            waitlist=order[drop.supply :],
            drawn_at=format_ms(int(state["drawn_at"])),
        )
    return body


def entries_ndjson(receipts: list[str]) -> Iterator[bytes]:
    """The published entry list: every drawn receipt, one JSON line each, in canonical order."""
    return format_entries(sorted(receipts))
