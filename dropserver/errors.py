"""The API's error shape: HTTP status + ``{"error": {"code", "message"}}``.

Handlers raise :class:`ApiError`; dropserver.instrument renders it. Codes are the contract's
(API.md); messages are for humans and may change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        error.update(self.extra)
        return {"error": error}


def invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


def not_found(what: str = "not found") -> ApiError:
    return ApiError(404, "not_found", what)


def unauthorized(message: str = "missing or invalid credentials") -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def forbidden(code: str, message: str) -> ApiError:
    return ApiError(403, code, message)


def conflict(code: str, message: str, **extra: Any) -> ApiError:
    return ApiError(409, code, message, extra=extra)
