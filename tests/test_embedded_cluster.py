"""The local Redis Cluster (dropserver.embedded_cluster): every slot served, replicas attached,
every process stopped on exit."""

from __future__ import annotations

import os
from pathlib import Path

import redis as sync_redis

from dropserver.embedded_cluster import SLOTS, EmbeddedCluster


def test_primaries_cover_every_slot_and_replicas_follow(tmp_path: Path) -> None:
    with EmbeddedCluster(tmp_path, primaries=2, replicas=1) as cluster:
        pids = [node.pid for node in cluster.nodes]
        # Ports and bus ports (+10,000) below the ones the OS hands out, so no other test's
        # free port can be taken by a node starting later.
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
        assert all(node.port + 10_000 < low for node in cluster.nodes)
        with sync_redis.Redis(port=cluster.nodes[0].port) as first:
            info = first.cluster("INFO")
            assert info["cluster_state"] == "ok"
            assert int(info["cluster_slots_assigned"]) == SLOTS
            assert int(info["cluster_size"]) == 2  # primaries serving slots
        for replica in cluster.nodes[2:]:
            with sync_redis.Redis(port=replica.port) as node:
                assert node.info("replication")["role"] == "slave"
    for pid in pids:
        assert pid is not None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"redis-server {pid} still runs after the cluster stopped")
