"""Orders: ids, reading, and the platform's confirm and cancel."""

from __future__ import annotations

from typing import Any

import orjson

from dropserver.batcher import Batcher
from dropserver.drops import DROP_ID
from dropserver.errors import ApiError, conflict, not_found
from dropserver.ids import random_hex128
from dropserver.keys import DropKeys, drop_keys
from dropserver.redis_clients import RedisClient
from dropserver.scripts import Script
from dropserver.timefmt import format_ms


def new_order_id(drop_id: str) -> str:
    """128 random bits, prefixed by the drop so the order is found without a global index
    (which would break the one-hash-tag-per-drop rule on Redis Cluster)."""
    return f"{drop_id}.{random_hex128()}"


def drop_of(order_id: str) -> str | None:
    drop_id, dot, token = order_id.rpartition(".")
    if not dot or len(token) != 32 or not DROP_ID.fullmatch(drop_id):
        return None
    return drop_id


def order_view(order: dict[str, Any], *, admin: bool = False) -> dict[str, Any]:
    view = {
        "order_id": order["order_id"],
        "drop_id": order["drop_id"],
        "serial": order["serial"],
        "status": order["status"],
        "account": order["sub"],
        "created_at": format_ms(order["created_at"]),
        "expires_at": format_ms(order.get("expires_at") or 0),
    }
    if order.get("confirmed_at"):
        view["confirmed_at"] = format_ms(order["confirmed_at"])
    if order.get("ended_at"):
        view["ended_at"] = format_ms(order["ended_at"])
    if admin:
        view["person"] = order["pid"]
    return view


def order_script_keys(keys: DropKeys) -> list[str]:
    """KEYS of the scripts that end holds (confirm, cancel, expire): ending a hold may pass
    the unit down a drawn queue, so they need the draw's keys too."""
    return [
        keys.counts, keys.free_serials, keys.persons, keys.orders, keys.holds, keys.events,
        keys.person_orders, keys.meta, keys.draw, keys.draw_order, keys.entries,
    ]  # fmt: skip


def fresh_order_ids(drop_id: str, count: int) -> list[str]:
    return [new_order_id(drop_id) for _ in range(count)]


class OrderStore:
    def __init__(self, redis: RedisClient, batcher: Batcher, scripts: dict[str, Script]) -> None:
        self._redis = redis
        self._batcher = batcher
        self._confirm = scripts["confirm_order"]
        self._cancel = scripts["cancel_order"]

    async def get(self, order_id: str) -> dict[str, Any] | None:
        drop_id = drop_of(order_id)
        if drop_id is None:
            return None
        raw = await self._redis.hget(drop_keys(drop_id).orders, order_id)
        if raw is None:
            return None
        order: dict[str, Any] = orjson.loads(raw)
        return order

    async def page(self, drop_id: str, cursor: int, count: int) -> tuple[list[dict[str, Any]], int]:
        """One page of a drop's orders (HSCAN: bounded work per call, stable under writes)."""
        next_cursor, found = await self._redis.hscan(drop_keys(drop_id).orders, cursor, count=count)
        assert isinstance(found, dict)
        return [orjson.loads(raw) for raw in found.values()], int(next_cursor)

    async def confirm(self, order_id: str) -> dict[str, Any]:
        reply = await self._run(self._confirm, order_id)
        code = reply[0]
        order: dict[str, Any] = orjson.loads(reply[1])
        if code == 0:
            return order
        if code == 2:
            raise conflict(
                "hold_expired",
                "the hold expired before payment was confirmed",
                order=order_view(order),
            )
        raise conflict("not_held", f"the order is {order['status']}", order=order_view(order))

    async def cancel(self, order_id: str) -> dict[str, Any]:
        reply = await self._run(self._cancel, order_id)
        order: dict[str, Any] = orjson.loads(reply[1])
        if reply[0] == 0:
            return order
        raise conflict("not_held", f"the order is {order['status']}", order=order_view(order))

    async def _run(self, script: Script, order_id: str) -> list[Any]:
        drop_id = drop_of(order_id)
        if drop_id is None:
            raise not_found("no such order")
        reply: list[Any] = await self._batcher.run(
            script, order_script_keys(drop_keys(drop_id)), [order_id, new_order_id(drop_id)]
        )
        if reply[0] == 3:
            raise not_found("no such order")
        return reply


def owner_check(order: dict[str, Any], person: str) -> None:
    if order["pid"] != person:
        # Not 403: whether an order id exists is nobody else's business.
        raise ApiError(404, "not_found", "no such order")
