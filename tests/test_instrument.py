"""Errors as the contract's JSON: what the route wrapper makes of each kind of failure."""

from __future__ import annotations

import orjson
from aiohttp.test_utils import make_mocked_request
from redis.exceptions import ConnectionError, ResponseError

from dropserver.errors import conflict
from dropserver.instrument import error_response


def rendered(exc: Exception) -> tuple[int, str, str | None]:
    response = error_response(make_mocked_request("POST", "/v1/drops/x/purchase"), exc)
    assert response.body is not None and isinstance(response.body, bytes)
    code = orjson.loads(response.body)["error"]["code"]
    return response.status, code, response.headers.get("Retry-After")


def test_api_errors_keep_their_status_and_code() -> None:
    assert rendered(conflict("sold_out", "gone"))[:2] == (409, "sold_out")


def test_redis_away_is_503_with_retry_after() -> None:
    assert rendered(ConnectionError("refused")) == (503, "unavailable", "1")


def test_a_script_error_is_a_500_not_an_outage() -> None:
    assert rendered(ResponseError("BADARGS count")) == (500, "internal", None)


def test_anything_else_is_500() -> None:
    assert rendered(KeyError("x")) == (500, "internal", None)
