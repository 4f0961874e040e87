"""Probe: container database replication on a real cluster. A container server killed (-9)
during a stream of writes misses rows; after it restarts, one
`ringstack-server container-replicator CONF --once` per node brings its database level with
the others: the same rows and the same hash on every replica, read straight from each
container server.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from ring import Ring, load_hash_secrets
from storage_node import direct_client
from tests.probe.test_auditor import daemon_conf, run_daemon

pytestmark = pytest.mark.slow


def backend_listing(node, part: int, account: str, container: str) -> list[str]:
    result = direct_client.request(node.ip, node.port, "GET",
                                   f"/{node.device}/{part}/{account}/{container}",
                                   query="format=json")
    assert result is not None and result.status == 200, result
    return [row["name"] for row in json.loads(result.body)]


def test_container_replica_that_missed_rows_catches_up(probe):
    assert probe.swift("PUT", "/dbrep")[0] in (201, 202)
    ring = Ring(os.path.join(probe.etc, "container.ring"),
                load_hash_secrets(os.path.join(probe.etc, "ringstack.conf")))
    part, nodes = ring.get_nodes(probe.account, "dbrep")
    victim = nodes[0]
    victim_node = int(victim.device.removeprefix("sdb"))
    names = [f"o{i:03d}" for i in range(30)]
    for name in names[:10]:
        assert probe.swift("PUT", f"/dbrep/{name}", b"x")[0] == 201
    probe.cluster.kill(f"container-{victim_node}")
    for name in names[10:]:
        assert probe.swift("PUT", f"/dbrep/{name}", b"y")[0] == 201
    probe.start_server("container", probe.layout.conf_path("container", victim_node),
                       f"container-{victim_node}", victim.port)
    time.sleep(0.5)
    assert backend_listing(victim, part, probe.account, "dbrep") == names[:10]
    for node in range(1, probe.layout.nodes + 1):
        run_daemon(probe, "container-replicator",
                   daemon_conf(probe, node, "container", "container-replicator"))
    for node in nodes:
        assert backend_listing(node, part, probe.account, "dbrep") == names
    heads = [direct_client.request(n.ip, n.port, "HEAD",
                                   f"/{n.device}/{part}/{probe.account}/dbrep") for n in nodes]
    assert {h.headers.get("x-container-object-count") for h in heads if h} == {"30"}
    with open(os.path.join(probe.data_dir, "recon", str(victim_node), "container.recon")) as f:
        assert "replication_last" in json.load(f)
