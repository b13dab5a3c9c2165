"""The API's OpenAPI 3.1 document (``dropserver/openapi.json``), served as stored.

The document is the contract's mirror (API.md), written by hand; tests/test_openapi.py checks
it against the registered routes and the server's answers. It is read and parsed once, at
import (a broken file fails the start, not a request), and served as prepared bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import orjson
from aiohttp import web

DOCUMENT_PATH: Final = Path(__file__).resolve().parent.parent / "openapi.json"
DOCUMENT: Final[dict[str, Any]] = orjson.loads(DOCUMENT_PATH.read_bytes())
_BODY: Final = orjson.dumps(DOCUMENT)


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=_BODY, content_type="application/json")
