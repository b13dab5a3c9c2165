"""The Redis clients of a server process (dropserver.redis_clients)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis, RedisCluster

from dropserver.config import RedisSettings
from dropserver.redis_clients import close, connect, node_client, node_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://10.0.0.1:7000", "redis://10.0.0.2:7001"),
        ("redis://10.0.0.1:7000/0", "redis://10.0.0.2:7001"),
        ("rediss://app:s3cret@node-a:7000/0?ssl_cert_reqs=none",
         "rediss://app:s3cret@10.0.0.2:7001?ssl_cert_reqs=none"),
        ("redis://:pw@node-a", "redis://:pw@10.0.0.2:7001"),
    ],
)  # fmt: skip
def test_node_url_keeps_credentials_and_options(url: str, expected: str) -> None:
    """A cluster announces its primaries by address; each is reached as the first node was."""
    assert node_url(url, "10.0.0.2", 7001) == expected


def test_node_url_of_an_ipv6_primary() -> None:
    assert node_url("redis://pw@[::1]:7000", "fd00::2", 7001) == "redis://pw@[fd00::2]:7001"


async def test_connect_makes_the_client_the_settings_ask_for() -> None:
    single = connect(RedisSettings(url="redis://127.0.0.1:6390/0"))
    cluster = connect(RedisSettings(url="redis://127.0.0.1:6390", cluster=True))
    node = node_client("rediss://u:p@127.0.0.1:6390", "127.0.0.2", 7002)
    try:
        assert type(single) is Redis and type(cluster) is RedisCluster
        kwargs = node.connection_pool.connection_kwargs
        assert (kwargs["host"], kwargs["port"], kwargs["username"], kwargs["password"]) == (
            "127.0.0.2", 7002, "u", "p",
        )  # fmt: skip
    finally:
        for client in (single, cluster, node):
            await close(client)  # nothing was connected: closing must not fail either


def test_connect_needs_a_url() -> None:
    with pytest.raises(ValueError, match="url"):
        connect(RedisSettings())
