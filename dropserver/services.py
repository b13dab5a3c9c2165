"""What the handlers share, built once per app by the factory."""

from __future__ import annotations

from dataclasses import dataclass

from dropserver.batcher import Batcher
from dropserver.config import Settings
from dropserver.demand import DemandMeter
from dropserver.draws import DrawRunner
from dropserver.drop_store import DropStore
from dropserver.gate import Gate
from dropserver.identity import BuyerVerifier, PlatformAuthenticator
from dropserver.metrics import Metrics
from dropserver.orders import OrderStore
from dropserver.redis_clients import RedisClient
from dropserver.redis_clock import RedisClock
from dropserver.refusals import RefusalTally
from dropserver.scripts import Script
from dropserver.sweeper import Sweeper


@dataclass(slots=True)
class Services:
    settings: Settings
    redis: RedisClient
    batcher: Batcher
    scripts: dict[str, Script]
    drops: DropStore
    orders: OrderStore
    buyers: BuyerVerifier
    platforms: PlatformAuthenticator
    metrics: Metrics
    sweeper: Sweeper
    gate: Gate
    clock: RedisClock
    demand: DemandMeter
    refusals: RefusalTally
    draws: DrawRunner
