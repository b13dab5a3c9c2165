"""The Redis clients of a server process: one Redis, or the primaries of a Redis Cluster.

Every key of a drop carries the drop's hash tag, so on a cluster a drop lives on one primary and
each of its commands, pipelines and transactions stays on that primary; drops spread over the
primaries. Plain commands go through redis-py's cluster client, which routes and follows
redirections itself. The script calls of the hot path go through our own pipelines, one set per
primary (:mod:`dropserver.cluster_batcher`), on clients made by :func:`node_client`.
"""

from __future__ import annotations

from typing import TypeAlias
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from dropserver.config import RedisSettings

RedisClient: TypeAlias = Redis | RedisCluster

# Connections per server (per primary on a cluster): the batches in flight plus the other
# callers (sweeper, draws, webhooks, admin calls).
MAX_CONNECTIONS = 64


def _retry() -> Retry:
    # Every script is safe to resend after a lost reply (each is idempotent or deduplicated by
    # a request-chosen id), so connection errors are retried: a Redis restart or failover costs
    # a short pause, not failed purchases. (from_url sets no retry policy by default.)
    return Retry(ExponentialBackoff(cap=0.5, base=0.01), 6)


def single_client(url: str) -> Redis:
    # A blocking pool: under a surge a request waits for a connection instead of failing.
    pool = BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=5, retry=_retry()
    )
    return Redis(connection_pool=pool)


def connect(settings: RedisSettings) -> RedisClient:
    """The client for plain commands: a cluster client when ``settings.cluster``."""
    if settings.url is None:
        raise ValueError("connect needs settings.url")
    if settings.cluster:
        return RedisCluster.from_url(settings.url, max_connections=MAX_CONNECTIONS, retry=_retry())
    return single_client(settings.url)


def node_url(url: str, host: str, port: int) -> str:
    """``url`` (a cluster node's, with its credentials and options) pointed at another node."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    netloc = f"{credentials}@{address}" if credentials else address
    return urlunsplit((parts.scheme, netloc, "", parts.query, ""))


def node_client(url: str, host: str, port: int) -> Redis:
    """A client of one cluster primary, configured like the cluster's own connections."""
    return single_client(node_url(url, host, port))


async def close(client: RedisClient) -> None:
    if isinstance(client, RedisCluster):
        await client.aclose()
    else:
        # A client built on an explicit pool does not close the pool by itself.
        await client.aclose(close_connection_pool=True)
