"""Fixtures: a real redis-server on a free port (started here, never assumed), and clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from dropserver.embedded_redis import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(Path(tmp_path_factory.mktemp("redis")))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis(redis_server: EmbeddedRedis) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


# --- the application -------------------------------------------------------------------------

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from dropserver.app import create_app  # noqa: E402
from dropserver.config import (  # noqa: E402
    PlatformSettings,
    PowSettings,
    RedisSettings,
    Settings,
    SweeperSettings,
)
from tests.helpers import ADMIN_KEY, OTHER_ADMIN_KEY, OTHER_SECRET, SECRET  # noqa: E402

# Known secrets, so tests can also forge what an attacker would; low demand thresholds and a
# short window, so adaptive difficulty can be driven by a test in well under a second.
POW_SETTINGS = PowSettings(
    secret=b"test-pow-secret-0123456789abcdef",
    key_signature_secret=b"test-keysig-secret-0123456789abc",
    pool_target=8,
    demand_levels=(40.0, 80.0),
    ip_levels=(1000.0,),
    demand_window_seconds=0.5,
)


@pytest.fixture
def settings(redis_server: EmbeddedRedis) -> Settings:
    return Settings(
        platforms={
            "acme": PlatformSettings("acme", (ADMIN_KEY,), SECRET),
            "other": PlatformSettings("other", (OTHER_ADMIN_KEY,), OTHER_SECRET),
        },
        redis=RedisSettings(url=redis_server.url),
        sweeper=SweeperSettings(interval_seconds=0.05),
        pow=POW_SETTINGS,
    )


@pytest.fixture
async def client(settings: Settings, redis: Redis) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client
