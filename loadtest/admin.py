"""The platform's side of a rehearsal over HTTP: create the drop, confirm holds, read results.

Blocking stdlib HTTP on purpose: the orchestrator is a plain script (no gevent, no event
loop), and these calls are few.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from loadtest.server import Deployment
from loadtest.tally import error_field


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def code(self) -> str | None:
        return error_field(self.body, "code")

    @property
    def message(self) -> str:
        return error_field(self.body, "message") or ""


class ServerError(RuntimeError):
    pass


def request(
    url: str,
    method: str = "GET",
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Reply:
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Accept": "application/json", **(headers or {})}
    if data is not None:
        all_headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            raw, status, got = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        raw, status, got = exc.read(), exc.code, dict(exc.headers)
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return Reply(status, parsed, got)


class Admin:
    def __init__(self, deployment: Deployment) -> None:
        self.url = deployment.url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {deployment.api_key}"}

    def call(self, method: str, path: str, body: Any = None) -> Reply:
        return request(f"{self.url}{path}", method, body=body, headers=self.headers)

    def expect(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        reply = self.call(method, path, body)
        if reply.status != status:
            raise ServerError(f"{method} {path}: {reply.status} {reply.body}")
        return reply.body

    def create_drop(self, spec: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self.expect("POST", "/v1/drops", spec, 201)
        return created

    def stats(self, drop_id: str) -> dict[str, Any]:
        stats: dict[str, Any] = self.expect("GET", f"/v1/drops/{drop_id}/stats")
        return stats

    def orders(self, drop_id: str, page: int = 1000) -> list[dict[str, Any]]:
        """Every order page by page (HSCAN pages may repeat an order: the caller dedupes)."""
        found: list[dict[str, Any]] = []
        cursor = "0"
        while True:
            body = self.expect("GET", f"/v1/drops/{drop_id}/orders?cursor={cursor}&count={page}")
            found.extend(body["orders"])
            cursor = body.get("next_cursor")
            if not cursor or cursor == "0":
                return found

    def confirm_holds(self, drop_id: str) -> dict[str, int]:
        """Confirm every held order, as the platform does once payment succeeds."""
        outcomes: dict[str, int] = {}
        seen: set[str] = set()
        for order in self.orders(drop_id):
            if order["status"] != "held" or order["order_id"] in seen:
                continue
            seen.add(order["order_id"])
            reply = self.call("POST", f"/v1/orders/{order['order_id']}/confirm")
            key = str(reply.status) if reply.status == 200 else f"{reply.status} {reply.code}"
            outcomes[key] = outcomes.get(key, 0) + 1
        return outcomes

    def wait_drawn(self, drop_id: str, timeout: float) -> bool:
        """Once due (a lottery's closes_at, the end of a fair start's window): wait for the
        draw that runs by itself, then ask for it explicitly."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._drawn(drop_id):
                return True
            time.sleep(0.5)
        reply = self.call("POST", f"/v1/drops/{drop_id}/draw")
        if reply.status == 200 or reply.code in ("already_drawn",):
            return True
        return self._drawn(drop_id)

    def _drawn(self, drop_id: str) -> bool:
        reply = self.call("GET", f"/v1/drops/{drop_id}/proof")
        body = reply.body if reply.status == 200 and isinstance(reply.body, dict) else {}
        return body.get("state") == "drawn" or bool(body.get("seed"))
