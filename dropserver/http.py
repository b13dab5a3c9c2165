"""Request and response helpers shared by the views: strict JSON in, orjson out."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from dropserver.errors import ApiError, invalid

_JSON = "application/json"


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type=_JSON, headers=headers)


def json_bytes_response(
    body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A response whose JSON body is already serialised."""
    return web.Response(body=body, status=status, content_type=_JSON, headers=headers)


async def read_body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise ApiError(413, "payload_too_large", "the request body is too large") from exc


def parse_object(body: bytes, *, allow_empty: bool = False) -> dict[str, Any]:
    if not body.strip():
        if allow_empty:
            return {}
        raise invalid("a JSON object body is required")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"malformed JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise invalid("the body must be a JSON object")
    return value


async def read_object(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    return parse_object(await read_body(request), allow_empty=allow_empty)


def only_fields(body: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise invalid(f"unknown field(s): {', '.join(unknown)}")


def idempotency_key(request: web.Request) -> str:
    """The Idempotency-Key header, or "" when absent."""
    key = request.headers.get("Idempotency-Key", "")
    if key and (len(key) > 255 or any(not 0x21 <= ord(c) <= 0x7E for c in key)):
        raise invalid("Idempotency-Key must be at most 255 visible ASCII characters")
    return key


def fingerprint(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()
