"""Who takes part in a rehearsal and when: a seeded, reproducible crowd.

Person ids carry the class (``human-<n>``, ``bot-<n>``) so the report can classify the server's
orders without trusting anything the simulation remembers. Every simulated client gets its own
source address (sent as ``X-Forwarded-For``; the generated server config trusts the local
proxy) and device id: humans because they are different people, and bot accounts because real
scalpers rotate residential proxies and device ids per account. That leaves the per-person
identity (``pid``) as the only thing tying a bot's accounts together: the defence under test.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

from loadtest.devices import DEVICE_SECONDS

HUMAN_PREFIX = "human-"
BOT_PREFIX = "bot-"


@dataclass(frozen=True, slots=True)
class Client:
    """One account as it appears on the wire."""

    account: str
    ip: str
    device_id: str


@dataclass(frozen=True, slots=True)
class HumanSpec:
    person: str
    client: Client
    device: str  # a key of DEVICE_SECONDS: how fast its browser solves
    arrive_s: float  # seconds relative to opens_at (negative: waits on the countdown page)
    reaction_s: float  # from seeing the buy button to clicking it


@dataclass(frozen=True, slots=True)
class BotSpec:
    person: str
    clients: tuple[Client, ...]


@dataclass(frozen=True, slots=True)
class Crowd:
    humans: tuple[HumanSpec, ...]
    bots: tuple[BotSpec, ...]

    def to_json(self) -> dict[str, Any]:
        return {"humans": [asdict(h) for h in self.humans], "bots": [asdict(b) for b in self.bots]}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Crowd:
        humans = tuple(HumanSpec(**{**h, "client": Client(**h["client"])}) for h in raw["humans"])
        bots = tuple(
            BotSpec(b["person"], tuple(Client(**c) for c in b["clients"])) for b in raw["bots"]
        )
        return cls(humans, bots)


def human_ip(n: int) -> str:
    # One /24 per human: the server's per-IP limit works on /24 prefixes.
    return f"10.{(n >> 8) & 255}.{n & 255}.10"


def bot_ip(n: int) -> str:
    return f"172.{16 + ((n >> 8) & 15)}.{n & 255}.20"


def make_crowd(
    *,
    humans: int,
    bots: int,
    accounts_per_bot: int,
    arrival_spread_s: float,
    seed: int,
    phone_share: float = 0.5,
) -> Crowd:
    """Humans arrive around the opening (normal, centred a quarter spread after it, clipped to
    ``[-spread/2, spread]``); reaction times are log-normal with a median of 450 ms."""
    rng = random.Random(f"crowd:{seed}")
    devices = sorted(DEVICE_SECONDS)
    assert devices == ["laptop", "phone"]
    human_specs = []
    for n in range(humans):
        arrive = rng.gauss(arrival_spread_s * 0.25, arrival_spread_s * 0.5)
        arrive = min(max(arrive, -arrival_spread_s * 0.5), arrival_spread_s)
        reaction = min(max(rng.lognormvariate(-0.8, 0.4), 0.15), 1.5)
        device = "phone" if rng.random() < phone_share else "laptop"
        person = f"{HUMAN_PREFIX}{n}"
        client = Client(account=person, ip=human_ip(n), device_id=f"dev-{person}")
        human_specs.append(HumanSpec(person, client, device, round(arrive, 3), round(reaction, 3)))
    bot_specs = []
    for n in range(bots):
        person = f"{BOT_PREFIX}{n}"
        clients = tuple(
            Client(
                account=f"{person}-a{k}",
                ip=bot_ip(n * accounts_per_bot + k),
                device_id=f"dev-{person}-a{k}",
            )
            for k in range(accounts_per_bot)
        )
        bot_specs.append(BotSpec(person, clients))
    return Crowd(tuple(human_specs), tuple(bot_specs))


MAX_REACTION_S = 1.5


def latest_human_click(arrival_spread_s: float) -> float:
    """Seconds after opens_at by which every human has clicked (before any proof of work)."""
    return arrival_spread_s + MAX_REACTION_S
