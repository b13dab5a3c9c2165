"""Locust entry point of the throughput run: every purchase is a new buyer (new person).

Started by ``python -m loadtest.throughput`` (see there), usually with ``--processes N``. The
shape steps the number of closed-loop buyers up; each buyer purchases back to back. Counts and
latencies go to the tally under the wall-clock second each request started in; the shape (on
the master) marks when each step began.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from functools import cache
from pathlib import Path
from typing import Any

from locust import FastHttpUser, LoadTestShape, constant, events, task

from loadtest.capacity import CLS, second_key
from loadtest.crowd import Client
from loadtest.identities import token
from loadtest.plan import PLAN_ENV
from loadtest.solving import solve_native
from loadtest.tally import TALLY, wire_locust
from loadtest.wire import call, headers_for


@cache
def plan() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(Path(os.environ[PLAN_ENV]).read_text())
    return loaded


_serial = itertools.count()


class Buyer(FastHttpUser):
    wait_time = constant(0)

    @task
    def buy(self) -> None:
        p = plan()
        n = next(_serial)
        person = f"tp-{os.getpid()}-{n}"
        # A fresh address per buyer: nothing but the server's own capacity should limit.
        ip = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
        client = Client(account=person, ip=ip, device_id=f"dev-{person}")
        bearer = token(p["platform"], p["identity_secret"], account=person, person=person)
        headers = headers_for(CLS, client, bearer)
        path = f"/v1/drops/{p['drop_id']}"
        body: dict[str, Any] = {}
        if p["pow"]:
            # The buyer's whole way in: challenge, solve (native, small difficulty), purchase.
            # A failed challenge counts as an error of the second it started in.
            second = second_key(time.time())
            answer = call(self.client, "challenge", second, "GET", f"{path}/challenge", headers,
                          name="buyer:challenge")  # fmt: skip
            solved = solve_native(answer.body) if answer.status == 200 else None
            if solved is None:
                TALLY.add(CLS, second, f"challenge {answer.outcome}")
                return
            body = {"pow": solved.payload}
        second = second_key(time.time())
        call(
            self.client,
            CLS,
            second,
            "POST",
            f"{path}/purchase",
            headers,
            body,
            name="buyer:purchase",
            latency_group=second,
        )


class Steps(LoadTestShape):
    def tick(self) -> tuple[int, float] | None:
        elapsed: float = self.get_run_time()  # type: ignore[no-untyped-call]
        start = 0.0
        for i, (users, seconds) in enumerate(plan()["steps"]):
            if elapsed < start + seconds:
                TALLY.mark(f"step{i}", time.time() - (elapsed - start))
                return users, float(users)
            start += seconds
        TALLY.mark("end", time.time() - (elapsed - start))
        return None


@events.init.add_listener  # type: ignore[untyped-decorator]
def _on_init(environment: Any, **_: Any) -> None:
    wire_locust(environment, Path(plan()["tally_path"]))
