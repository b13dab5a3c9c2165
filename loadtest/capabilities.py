"""Does the server under test do what a scenario needs? Probed on throwaway drops.

A scenario that needs a missing feature fails with "server does not support X yet" instead of
producing a report that looks like a result. Each probe creates its own small drop (id
``lt-probe-...``) and closes it afterwards.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from loadtest import scenarios
from loadtest.admin import Admin, Reply, request
from loadtest.identities import buyer_headers
from loadtest.server import Deployment


class Unsupported(RuntimeError):
    pass


def rfc3339(moment: float) -> str:
    return (
        datetime.fromtimestamp(moment, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _route_missing(reply: Reply) -> bool:
    # aiohttp's router answers an unknown path with 404 "Not Found" (a missing drop says
    # "no such drop"), and a known path with another method with 405.
    return reply.status == 405 or (reply.status == 404 and reply.message != "no such drop")


class Prober:
    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.admin = Admin(deployment)

    def _drop(self, **spec: object) -> str:
        drop_id = f"lt-probe-{secrets.token_hex(4)}"
        body = {
            "id": drop_id,
            "title": "rehearsal capability probe",
            "supply": 5,
            "mode": "fcfs",
            "opens_at": rfc3339(time.time() - 1),
            "hold_seconds": 60,
            "pow": None,
            **spec,
        }
        self.admin.create_drop(body)
        return drop_id

    def _buyer(
        self, drop_id: str, path: str, method: str, n: int = 0, body: object = None
    ) -> Reply:
        d = self.deployment
        person = f"probe-{drop_id}-{n}"
        return request(
            f"{d.url}/v1/drops/{drop_id}{path}",
            method,
            body=body,
            headers=buyer_headers(d, account=person, person=person),
        )

    def pow(self) -> None:
        drop_id = self._drop(pow=dict(scenarios.SIM_POW))
        try:
            reply = self._buyer(drop_id, "/challenge", "GET")
            if _route_missing(reply):
                raise Unsupported("GET /v1/drops/{id}/challenge is not served")
            if reply.status != 200:
                raise Unsupported(f"challenge answered {reply.status} {reply.body}")
            reply = self._buyer(drop_id, "/purchase", "POST", body={})
            if reply.status in (200, 201, 202):
                raise Unsupported("a purchase without proof of work was accepted on a pow drop")
        finally:
            self.admin.call("POST", f"/v1/drops/{drop_id}/close")

    def rate_limits(self) -> None:
        drop_id = self._drop(
            pow=dict(scenarios.SIM_POW),
            rate_limits={"person": {"rate": 0.01, "burst": 1}},
        )
        try:
            for path, method, body in (
                ("/challenge", "GET", None),
                ("/purchase", "POST", {}),
            ):
                for _ in range(3):
                    reply = self._buyer(drop_id, path, method, body=body)
                    if reply.status == 429:
                        if "Retry-After" not in reply.headers:
                            raise Unsupported("429 rate_limited came without Retry-After")
                        return
            raise Unsupported("3 quick requests of one person with burst 1 were never refused")
        finally:
            self.admin.call("POST", f"/v1/drops/{drop_id}/close")

    def lottery(self) -> None:
        now = time.time()
        drop_id = self._drop(
            mode="lottery", opens_at=rfc3339(now - 1), closes_at=rfc3339(now + 600)
        )
        try:
            reply = self._buyer(drop_id, "/entries", "POST", body={})
            if _route_missing(reply):
                raise Unsupported("POST /v1/drops/{id}/entries is not served")
            if reply.status != 202:
                raise Unsupported(f"a lottery entry answered {reply.status} {reply.body}")
            reply = self.admin.call("POST", f"/v1/drops/{drop_id}/draw")
            if _route_missing(reply):
                raise Unsupported("POST /v1/drops/{id}/draw is not served")
        finally:
            self.admin.call("POST", f"/v1/drops/{drop_id}/close")

    def fair_start(self) -> None:
        drop_id = self._drop(fair_start_seconds=60)
        try:
            reply = self._buyer(drop_id, "/purchase", "POST", body={})
            if reply.status == 201:
                raise Unsupported(
                    "a purchase inside the fair-start window was allocated at once (201), "
                    "not queued as pending (202)"
                )
            if reply.status != 202:
                raise Unsupported(
                    f"a purchase inside the window answered {reply.status} {reply.body}"
                )
        finally:
            self.admin.call("POST", f"/v1/drops/{drop_id}/close")


def check(deployment: Deployment, needs: Iterable[str]) -> None:
    """Raise :class:`Unsupported` naming every missing capability."""
    prober = Prober(deployment)
    probes: dict[str, Callable[[], None]] = {
        scenarios.POW: prober.pow,
        scenarios.RATE: prober.rate_limits,
        scenarios.LOTTERY: prober.lottery,
        scenarios.FAIR_START: prober.fair_start,
    }
    missing = []
    for need in needs:
        try:
            probes[need]()
        except Unsupported as exc:
            missing.append(f"server does not support {need} yet: {exc}")
    if missing:
        raise Unsupported("\n  ".join(missing))
