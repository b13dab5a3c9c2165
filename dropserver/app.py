"""The application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web
from redis.asyncio import Redis, RedisCluster

from dropserver import redis_clients
from dropserver.aof_compaction import AofCompactor
from dropserver.appkeys import SERVICES
from dropserver.background import periodic
from dropserver.batcher import Batcher, ScriptBatcher
from dropserver.cluster_batcher import ClusterScriptBatcher
from dropserver.config import Settings
from dropserver.demand import DemandMeter
from dropserver.draws import DrawRunner
from dropserver.drop_store import DropStore
from dropserver.gate import Gate
from dropserver.identity import BuyerVerifier, PlatformAuthenticator
from dropserver.loop_lag import LoopLagProbe
from dropserver.metrics import Metrics
from dropserver.orders import OrderStore
from dropserver.pow import PreDerivationPool
from dropserver.pow.challenge import derive_puzzle
from dropserver.redis_clock import RedisClock
from dropserver.refusals import RefusalTally
from dropserver.scripts import load_all
from dropserver.services import Services
from dropserver.sweeper import Sweeper
from dropserver.views import setup_routes
from dropserver.webhooks import WebhookDispatcher

# How often refusals decided in the process reach the drops' rejection counts (/stats).
REFUSAL_FLUSH_SECONDS = 1.0
# How often the event loop's lag is sampled (dropserver_event_loop_lag_seconds).
LOOP_LAG_SECONDS = 0.25
# How often the owner of an embedded Redis looks whether its AOF is due for compaction.
AOF_COMPACTION_SECONDS = 10.0


def create_app(
    settings: Settings, *, run_background: bool = True, compact_aof: bool = False
) -> web.Application:
    """Build the app. ``settings.redis.url`` must be set (the CLI starts an embedded Redis and
    fills it in when the configuration names none). ``compact_aof``: this process owns the
    Redis (the embedded one) and compacts its AOF between sales."""
    if settings.redis.url is None:
        raise ValueError("create_app needs settings.redis.url")
    metrics = Metrics()
    app = web.Application(client_max_size=settings.server.max_body_bytes)
    app.cleanup_ctx.append(partial(_services, settings, metrics, run_background, compact_aof))
    setup_routes(app, metrics.requests)
    return app


async def _services(
    settings: Settings,
    metrics: Metrics,
    run_background: bool,
    compact_aof: bool,
    app: web.Application,
) -> AsyncIterator[None]:
    assert settings.redis.url is not None
    redis = redis_clients.connect(settings.redis)
    scripts = load_all()
    batcher = _batcher(settings, redis, metrics)
    await batcher.load(list(scripts.values()))
    drops = DropStore(redis, batcher, scripts, rehearsal_seed=settings.rehearsal_seed)
    pow_pool = PreDerivationPool(
        workers=settings.pow.workers,
        target=settings.pow.pool_target,
        low_water=settings.pow.pool_target // 4,
        # The workers also sign each puzzle's key: one HMAC less per challenge request.
        derive=partial(derive_puzzle, key_signature_secret=settings.pow.key_signature_secret),
        processes=True,  # off the event loop's GIL (see dropserver.pow.pool)
    )
    sweeper = Sweeper(
        redis,
        batcher,
        scripts["expire_holds"],
        drops,
        settings.platforms,
        metrics,
        settings.sweeper,
    )
    clock = RedisClock()
    demand = DemandMeter(
        batcher,
        scripts["demand_report"],
        clock,
        window_seconds=settings.pow.demand_window_seconds,
        drop_levels=settings.pow.demand_levels,
        ip_levels=settings.pow.ip_levels,
    )
    refusals = RefusalTally(redis)
    services = Services(
        settings=settings,
        redis=redis,
        batcher=batcher,
        scripts=scripts,
        drops=drops,
        orders=OrderStore(redis, batcher, scripts),
        buyers=BuyerVerifier(settings.platforms),
        platforms=PlatformAuthenticator(settings.platforms),
        metrics=metrics,
        sweeper=sweeper,
        gate=Gate(settings, pow_pool, metrics, refusals),
        clock=clock,
        demand=demand,
        refusals=refusals,
        draws=DrawRunner(
            redis, batcher, scripts, drops, sweeper, list(settings.platforms), metrics
        ),
    )
    app[SERVICES] = services
    webhooks = WebhookDispatcher(redis, settings.platforms, settings.webhooks, metrics)
    interval = settings.sweeper.interval_seconds
    background = [
        ("hold sweeper", sweeper.sweep_once, interval),
        ("draw runner", services.draws.draw_due, interval),
        ("demand reports", demand.report, settings.pow.demand_report_seconds),
        ("refusal counts", refusals.flush, REFUSAL_FLUSH_SECONDS),
        ("loop lag", LoopLagProbe(metrics.loop_lag, LOOP_LAG_SECONDS).measure, LOOP_LAG_SECONDS),
    ]
    if webhooks.enabled:
        background.append(("webhooks", webhooks.run_once, settings.webhooks.poll_seconds))
    if compact_aof:
        # The embedded Redis, which is never a cluster.
        assert isinstance(redis, Redis), "only a single Redis is compacted"
        background.append(("AOF compaction", AofCompactor(redis).round, AOF_COMPACTION_SECONDS))
    try:
        async with contextlib.AsyncExitStack() as running:
            if run_background:
                for name, work, every in background:
                    await running.enter_async_context(periodic(name, work, every))
            yield
    finally:
        with contextlib.suppress(Exception):  # best effort: Redis may be the reason we stop
            await refusals.flush()
        await webhooks.close()
        await asyncio.to_thread(pow_pool.close)
        await batcher.close()
        await redis_clients.close(redis)


def _batcher(settings: Settings, redis: redis_clients.RedisClient, metrics: Metrics) -> Batcher:
    def batcher(client: Redis) -> ScriptBatcher:
        return ScriptBatcher(
            client,
            max_batch=settings.redis.max_batch,
            max_in_flight=settings.redis.max_in_flight,
            pipelining=settings.redis.pipelining,
            metrics=metrics,
            wait_replicas=settings.redis.wait_replicas,
            wait_timeout_ms=settings.redis.wait_timeout_ms,
        )

    if isinstance(redis, RedisCluster):
        url = settings.redis.url
        assert url is not None
        return ClusterScriptBatcher(
            redis, partial(redis_clients.node_client, url), batcher, metrics
        )
    return batcher(redis)
