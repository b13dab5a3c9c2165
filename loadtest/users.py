"""The simulated parties: honest humans and scalper bots, as Locust FastHttpUsers.

Runs inside the Locust process only (it imports Locust and gevent). Each Locust user plays one
*person* from the plan's crowd: its schedule, accounts and addresses come from the plan, so a
run is reproducible from its seed. Users play their part once, then idle until the shape ends
the run.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import gevent
from gevent.pool import Group
from locust import FastHttpUser, constant, task

from loadtest.crowd import BotSpec, Client, HumanSpec
from loadtest.identities import token
from loadtest.plan import PLAN_ENV, Plan
from loadtest.solving import solve_as_browser, solve_native
from loadtest.tally import TALLY
from loadtest.wire import Answer, call, headers_for

HUMAN, BOT = "human", "bot"

#: Refusals after which retrying cannot help, for anyone.
FINAL_CODES = {"limit_reached", "already_entered", "already_pending", "closed", "wrong_mode"}


@cache
def plan() -> Plan:
    return Plan.read(Path(os.environ[PLAN_ENV]))


def token_for(account: str, person: str) -> str:
    p = plan()
    return token(p.platform, p.identity_secret, account=account, person=person)


def sleep_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        gevent.sleep(delay)


def challenge_of(body: Any) -> dict[str, Any] | None:
    """The ALTCHA challenge object in a challenge answer (bare, or under ``"challenge"``)."""
    if isinstance(body, dict):
        if "parameters" in body and "signature" in body:
            return body
        inner = body.get("challenge")
        if isinstance(inner, dict) and "parameters" in inner:
            return inner
    return None


class Party(FastHttpUser):
    """What humans and bots share: the drop's paths and a one-shot script."""

    abstract = True
    wait_time = constant(0)
    cls = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.finished = False

    @property
    def drop_path(self) -> str:
        return f"/v1/drops/{plan().drop_id}"

    @property
    def action(self) -> tuple[str, str]:
        """(endpoint name, path) of buying or entering."""
        if plan().mode == "lottery":
            return "entry", f"{self.drop_path}/entries"
        return "purchase", f"{self.drop_path}/purchase"

    def send(
        self,
        endpoint: str,
        method: str,
        path: str,
        client: Client,
        token: str | None,
        body: Any = None,
    ) -> Answer:
        return call(
            self.client,
            self.cls,
            endpoint,
            method,
            path,
            headers_for(self.cls, client, token),
            body,
        )

    def view(self, client: Client) -> Answer:
        return self.send("view", "GET", self.drop_path, client, None)

    def challenge(self, client: Client, token: str) -> Answer:
        return self.send("challenge", "GET", f"{self.drop_path}/challenge", client, token)

    def act(self, client: Client, token: str, pow_payload: str | None) -> Answer:
        endpoint, path = self.action
        body = {"pow": pow_payload} if pow_payload is not None else {}
        return self.send(endpoint, "POST", path, client, token, body)

    def play(self) -> None:
        raise NotImplementedError

    @task
    def once(self) -> None:
        if self.finished:
            gevent.sleep(1.0)
            return
        try:
            self.play()
        finally:
            self.finished = True


_human_specs: Iterator[HumanSpec] | None = None
_bot_specs: Iterator[BotSpec] | None = None


def _next_human() -> HumanSpec | None:
    global _human_specs
    if _human_specs is None:
        _human_specs = iter(plan().crowd.humans)
    return next(_human_specs, None)


def _next_bot() -> BotSpec | None:
    global _bot_specs
    if _bot_specs is None:
        _bot_specs = iter(plan().crowd.bots)
    return next(_bot_specs, None)


class Human(Party):
    """One person, one account, one device. Opens the page around the opening, waits for the
    countdown, reacts in a few hundred ms, solves the proof of work at browser speed (the
    payload is really solved, at the simulation's small difficulty, then the human sleeps
    what its device would need for the modelled one), buys or enters once, honours
    Retry-After, and gives up after a few failures."""

    cls = HUMAN

    def play(self) -> None:
        spec = _next_human()
        if spec is None:
            return
        p = plan()
        policy = p.human
        client = spec.client
        token = token_for(client.account, spec.person)
        arrive = p.opens_at + spec.arrive_s
        sleep_until(arrive)
        if time.time() - arrive > 0.25:
            TALLY.add(HUMAN, "schedule", "late")
        self.view(client)
        sleep_until(p.opens_at)  # the countdown page
        gevent.sleep(spec.reaction_s)
        failures = not_open = 0
        again: str | None = None  # a payload refused by a rate limit is still unspent
        while failures < policy.max_failures and time.time() < p.end_at:
            pow_payload, again = again, None
            if p.pow and pow_payload is None:
                answer = self.challenge(client, token)
                if answer.status == 425 and not_open < 5:
                    not_open += 1
                    sleep_until(p.opens_at)
                    gevent.sleep(spec.reaction_s)
                    continue
                challenge = challenge_of(answer.body) if answer.status == 200 else None
                if challenge is None:
                    failures += 1
                    self.pause(answer)
                    continue
                pow_payload = self.solve_like_a_browser(spec, challenge)
            answer = self.act(client, token, pow_payload)
            if answer.ok:
                TALLY.add(HUMAN, "result", answer.outcome)
                return
            if answer.code in FINAL_CODES or answer.code == "sold_out":
                TALLY.add(HUMAN, "result", f"stopped {answer.code}")
                return
            if answer.status == 425 and not_open < 5:
                not_open += 1
                sleep_until(p.opens_at)
                continue
            failures += 1
            if answer.status == 429:
                again = pow_payload  # the app resubmits after Retry-After, no new puzzle
            self.pause(answer)
        TALLY.add(HUMAN, "result", "gave up" if failures else "ran out of time")

    def pause(self, answer: Answer) -> None:
        # A polite client: the server's Retry-After when it gives one, else a human pause.
        wait = answer.retry_after
        gevent.sleep(wait if wait is not None else plan().human.error_pause_s)

    def solve_like_a_browser(self, spec: HumanSpec, challenge: dict[str, Any]) -> str | None:
        p = plan()
        solved = solve_as_browser(challenge, spec.device, p.pow_model, p.sim_counter_max)
        if solved is None:
            TALLY.add(HUMAN, "pow", "no_solution")
            return None
        # The phone or laptop would still be working: sleep instead of burning the CPU the
        # load generator shares with the server.
        gevent.sleep(max(0.0, solved.browser_seconds - solved.cpu_seconds))
        return solved.payload


class ScalperBot(Party):
    """One person with many accounts (same ``pid``, different ``sub``). Polls the drop, its
    challenge and its purchase before the opening, fires from every account just before and
    at the opening instant, solves proofs of work at native speed, shares and replays solved
    payloads across its accounts, ignores Retry-After and retries on every error."""

    cls = BOT
    concurrency = 32  # HTTP pool size; the locustfile raises it to the accounts per bot

    def play(self) -> None:
        spec = _next_bot()
        if spec is None:
            return
        p = plan()
        tokens = {c.account: token_for(c.account, spec.person) for c in spec.clients}
        stock: list[str] = []  # payloads solved by any account of this person
        sleep_until(p.bots_start_at)
        if time.time() - p.bots_start_at > 0.25:
            TALLY.add(BOT, "schedule", "late")
        fire_at = p.opens_at - p.bot.fire_early_s
        self.reconnoitre(spec, tokens, stock, fire_at)
        sleep_until(fire_at)
        self.polling_stock = False  # set once any account sees sold_out: the person knows
        group = Group()
        for client in spec.clients:
            group.spawn(self.account_loop, client, tokens[client.account], stock)
        group.join()

    def reconnoitre(
        self, spec: BotSpec, tokens: dict[str, str], stock: list[str], until: float
    ) -> None:
        """Before the opening: look for anything addressable, and stockpile challenges if
        the server hands them out early."""
        p = plan()
        accounts = itertools.cycle(spec.clients)
        while time.time() + p.bot.poll_interval_s < until:
            client = next(accounts)
            token = tokens[client.account]
            self.view(client)
            if p.pow:
                answer = self.challenge(client, token)
                challenge = challenge_of(answer.body) if answer.status == 200 else None
                if challenge is not None:
                    solved = self.solve_native(challenge)
                    if solved is not None:
                        stock.append(solved)
            self.act(client, token, stock[-1] if stock else None)
            gevent.sleep(p.bot.poll_interval_s)

    def account_loop(self, client: Client, token: str, stock: list[str]) -> None:
        p = plan()
        policy = p.bot
        tried: set[str] = set()
        again: str | None = None  # a payload the server may not have consumed (429, 5xx)
        replays = 0
        first_shot = True
        while time.time() < p.end_at:
            pow_payload: str | None = None
            if p.pow:
                untried = [s for s in reversed(stock) if s not in tried]
                if again is not None:
                    pow_payload, again = again, None
                elif untried and replays < policy.replays_per_challenge:
                    pow_payload = untried[0]
                    replays += 1
                else:
                    answer = self.challenge(client, token)
                    challenge = challenge_of(answer.body) if answer.status == 200 else None
                    if challenge is None:
                        self.pause(answer, first_shot)
                        first_shot = False
                        continue
                    pow_payload = self.solve_native(challenge)
                    if pow_payload is None:
                        continue
                    stock.append(pow_payload)
                    replays = 0
                tried.add(pow_payload)
            answer = self.act(client, token, pow_payload)
            if answer.ok:
                TALLY.add(BOT, "result", answer.outcome)
                return
            if answer.code in FINAL_CODES:
                TALLY.add(BOT, "result", f"stopped {answer.code}")
                return
            if answer.status in (0, 429) or answer.status >= 500:
                again = pow_payload
            self.pause(answer, first_shot)
            first_shot = False
        TALLY.add(BOT, "result", "ran out of time")

    def pause(self, answer: Answer, first_shot: bool) -> None:
        p = plan()
        if answer.status == 425:
            # Too early: the next shot goes out at the opening instant exactly.
            if first_shot or time.time() < p.opens_at:
                sleep_until(p.opens_at)
            else:
                gevent.sleep(p.bot.retry_pause_s)
        elif answer.code == "sold_out" or self.polling_stock:
            # Sold out: from now on only watch for stock that expiry or a cancel returns.
            self.polling_stock = True
            gevent.sleep(p.bot.sold_out_pause_s)
        else:
            gevent.sleep(p.bot.retry_pause_s)  # Retry-After is for the polite

    def solve_native(self, challenge: dict[str, Any]) -> str | None:
        solved = solve_native(challenge)
        if solved is None:
            TALLY.add(BOT, "pow", "no_solution")
            return None
        return solved.payload
