"""One simulated request: tagged by class, counted in the tally, judged for Locust.

Runs inside the Locust process (gevent). Every request carries ``X-Sim-Class`` and a Locust
name ``<class>:<endpoint>``, so Locust's CSV statistics and the server's access log can tell
humans from bots, and every answer lands in :data:`loadtest.tally.TALLY`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from loadtest.crowd import Client
from loadtest.tally import TALLY, error_field, outcome_of

#: Answers that are part of a drop's normal life; anything else is a Locust failure (a
#: broken simulation or a broken server), so Locust's failure count stays meaningful.
EXPECTED_STATUSES = {200, 201, 202, 403, 409, 425, 429}


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any
    retry_after: float | None
    outcome: str

    @property
    def code(self) -> str | None:
        return error_field(self.body, "code")

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def headers_for(cls: str, client: Client, token: str | None) -> dict[str, str]:
    headers = {
        "X-Sim-Class": cls,
        "X-Forwarded-For": client.ip,
        "X-Device-Id": client.device_id,
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def call(
    session: Any,
    cls: str,
    endpoint: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    latency_group: str | None = None,
) -> Answer:
    """Send one request through a Locust FastHttpSession and record its outcome (Locust names
    it ``name`` or ``<cls>:<endpoint>``)."""
    started = time.perf_counter()
    with session.request(
        method,
        path,
        name=name or f"{cls}:{endpoint}",
        headers=headers,
        json=body,
        catch_response=True,
    ) as response:
        status = int(response.status_code or 0)
        try:
            parsed = response.json() if response.content else None
        except Exception:  # a connection error or a body that is not JSON
            parsed = None
        outcome = outcome_of(status, parsed)
        if status in EXPECTED_STATUSES:
            response.success()
        else:
            response.failure(outcome)
        retry_after = _seconds(response.headers.get("Retry-After") if response.headers else None)
    TALLY.add(cls, endpoint, outcome)
    if latency_group is not None:
        TALLY.latency(latency_group, (time.perf_counter() - started) * 1000)
    return Answer(status, parsed, retry_after, outcome)


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
