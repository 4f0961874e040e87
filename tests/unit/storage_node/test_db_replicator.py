"""storage_node.db_replicator and storage_node.db_replication_server: container and account
databases brought back in sync between real servers on 127.0.0.1 (real sqlite files)."""

from __future__ import annotations

import json
import logging
import os
import shutil

import pytest

from common.timestamp import Timestamp
from ring.hashing import hash_path
from storage_node import container_replicator, direct_client, recon
from storage_node.account_db import AccountBroker
from storage_node.container_db import ContainerBroker
from storage_node.db import db_file_path
from storage_node.db_replicator import (
    FILE_HEADER,
    KINDS,
    SENDER_ID_HEADER,
    SENDER_MAX_ROW_HEADER,
    DbReplicator,
    ReplicatorSettings,
    replication_info,
)
from tests.unit.storage_node.storage_cluster import StorageCluster

LOG = logging.getLogger("test-db-replicator")


@pytest.fixture
def cluster(tmp_path):
    running = StorageCluster(str(tmp_path))
    try:
        yield running
    finally:
        running.stop()


def replicator(cluster: StorageCluster, index: int, kind: str = "container",
               **overrides: str) -> DbReplicator:
    node = cluster.nodes[index]
    conf = cluster.conf(node, f"{kind}-replicator", bind_ip="127.0.0.1",
                        bind_port=str(node.ports[kind]), **overrides)
    return DbReplicator(KINDS[kind], ReplicatorSettings.from_config(conf, 0), LOG)


def container_copies(cluster: StorageCluster, account: str, container: str
                     ) -> list[tuple[int, str]]:
    """(node index, db file) of every primary copy."""
    part, nodes = cluster.ring("container").get_nodes(account, container)
    name_hash = hash_path(account, container, secrets=cluster.secrets).hex()
    copies = []
    for node in nodes:
        local = cluster.node_of(node.port, "container")
        copies.append((local.index, db_file_path(local.device_path, "containers", part,
                                                 name_hash)))
    return copies


def names_in(db_file: str) -> list[str]:
    with ContainerBroker(db_file, "", "", reuse_connections=False) as broker:
        return sorted(record.name for _row, record in broker.get_items_since(-1, 100000)
                      if not record.deleted)


def put_objects(cluster: StorageCluster, names: list[str]) -> None:
    for name in names:
        assert cluster.request(f"/v1/AUTH_test/c/{name}", "PUT", body=b"x").status_int == 201


def test_a_replica_that_missed_rows_catches_up(cluster):
    assert cluster.request("/v1/AUTH_test/c", "PUT").status_int == 201
    put_objects(cluster, ["a", "b"])
    copies = container_copies(cluster, "AUTH_test", "c")
    lagging_index, lagging_db = copies[0]
    cluster.stop_server("container", lagging_index)
    put_objects(cluster, [f"late{i}" for i in range(5)])
    cluster.start("container", lagging_index)
    assert names_in(lagging_db) == ["a", "b"]
    # The object servers saved async pendings for the replica that was down; replication
    # does not need them: the other replicas push the rows.
    stats = replicator(cluster, copies[1][0]).run_pass()
    assert stats.diff >= 1 and stats.failure == 0
    expected = ["a", "b"] + [f"late{i}" for i in range(5)]
    assert names_in(lagging_db) == expected
    infos = []
    for _index, db_file in copies:
        with ContainerBroker(db_file, "", "", reuse_connections=False) as broker:
            infos.append(broker.get_info())
    assert len({info.hash for info in infos}) == 1
    assert {info.object_count for info in infos} == {7}
    # The next pass finds every peer in sync (hashes match), and writes recon stats.
    again = replicator(cluster, copies[1][0]).run_pass()
    assert again.hashmatch >= 2 and again.diff == 0
    cache = recon.load_recon_cache(os.path.join(cluster.nodes[copies[1][0]].recon_cache,
                                                recon.CONTAINER_RECON))
    assert cache["replication_stats"]["hashmatch"] >= 2 and "replication_last" in cache


def test_a_missing_database_is_sent_whole_and_gets_its_own_id(cluster):
    cluster.request("/v1/AUTH_test/c", "PUT")
    put_objects(cluster, ["x", "y"])
    copies = container_copies(cluster, "AUTH_test", "c")
    _lost_index, lost_db = copies[2]
    shutil.rmtree(os.path.dirname(lost_db))
    stats = replicator(cluster, copies[0][0]).run_pass()
    assert stats.rsync == 1
    assert names_in(lost_db) == ["x", "y"]
    with ContainerBroker(copies[0][1], "", "", reuse_connections=False) as source, \
            ContainerBroker(lost_db, "", "", reuse_connections=False) as copy:
        source_info, copy_info = source.get_info(), copy.get_info()
    assert copy_info.hash == source_info.hash and copy_info.id != source_info.id
    # The server answers from the new file at once.
    listing = cluster.request("/v1/AUTH_test/c?format=json")
    assert [row["name"] for row in json.loads(listing.body)] == ["x", "y"]


def test_far_behind_copy_gets_the_whole_file_merged_with_its_own_rows(cluster):
    cluster.request("/v1/AUTH_test/c", "PUT")
    copies = container_copies(cluster, "AUTH_test", "c")
    behind_index, behind_db = copies[1]
    cluster.stop_server("container", behind_index)
    put_objects(cluster, [f"o{i}" for i in range(10)])
    cluster.start("container", behind_index)
    # A row only the lagging copy has must survive the swap.
    with ContainerBroker(behind_db, "", "", reuse_connections=False) as broker:
        broker.put_object("only-here", Timestamp.now().internal, 1, "text/plain", "e" * 32)
    stats = replicator(cluster, copies[0][0], per_diff="2", max_diffs="1").run_pass()
    assert stats.remote_merge >= 1
    assert names_in(behind_db) == sorted([f"o{i}" for i in range(10)] + ["only-here"])
    # Its own replicator then pushes the extra row back to the others.
    replicator(cluster, behind_index).run_pass()
    assert "only-here" in names_in(copies[0][1])


def test_metadata_and_delete_timestamps_replicate(cluster):
    cluster.request("/v1/AUTH_test/c", "PUT")
    copies = container_copies(cluster, "AUTH_test", "c")
    part, nodes = cluster.ring("container").get_nodes("AUTH_test", "c")
    first = next(node for node in nodes if cluster.node_of(node.port, "container").index ==
                 copies[0][0])
    result = direct_client.node_request(first, part, "POST", "/AUTH_test/c", headers={
        "X-Timestamp": Timestamp.now().internal, "X-Container-Meta-Color": "blue"})
    assert result is not None and result.status == 204
    replicator(cluster, copies[0][0]).run_pass()
    for _index, db_file in copies:
        with ContainerBroker(db_file, "", "", reuse_connections=False) as broker:
            assert broker.get_metadata()["X-Container-Meta-Color"][0] == "blue"
    # A DELETE that reached one replica only.
    deleted_at = Timestamp.now().internal
    result = direct_client.node_request(first, part, "DELETE", "/AUTH_test/c",
                                        headers={"X-Timestamp": deleted_at})
    assert result is not None and result.status == 204
    replicator(cluster, copies[0][0]).run_pass()
    for _index, db_file in copies:
        with ContainerBroker(db_file, "", "", reuse_connections=False) as broker:
            assert broker.get_info().delete_timestamp == deleted_at and broker.is_deleted()


def test_a_handoff_copy_is_pushed_home_then_removed(cluster):
    cluster.request("/v1/AUTH_test/c", "PUT")
    put_objects(cluster, ["p"])
    copies = container_copies(cluster, "AUTH_test", "c")
    primary_indexes = {index for index, _ in copies}
    [handoff_index] = set(range(4)) - primary_indexes
    handoff = cluster.nodes[handoff_index]
    relative = os.path.relpath(copies[0][1], cluster.nodes[copies[0][0]].device_path)
    handoff_db = os.path.join(handoff.device_path, relative)
    os.makedirs(os.path.dirname(handoff_db))
    shutil.copy(copies[0][1], handoff_db)
    with ContainerBroker(handoff_db, "", "", reuse_connections=False) as broker:
        broker.put_object("from-handoff", Timestamp.now().internal, 3, "text/plain",
                          "f" * 32)
    stats = replicator(cluster, handoff_index).run_pass()
    assert stats.remove == 1 and not os.path.exists(handoff_db)
    for _index, db_file in copies:
        assert names_in(db_file) == ["from-handoff", "p"]


def test_account_databases_replicate_too(cluster):
    cluster.request("/v1/AUTH_test/c1", "PUT")
    cluster.request("/v1/AUTH_test/c2", "PUT")
    part, nodes = cluster.ring("account").get_nodes("AUTH_test")
    name_hash = hash_path("AUTH_test", secrets=cluster.secrets).hex()
    holders = [cluster.node_of(node.port, "account") for node in nodes]
    lost = db_file_path(holders[0].device_path, "accounts", part, name_hash)
    shutil.rmtree(os.path.dirname(lost))
    stats = replicator(cluster, holders[1].index, "account").run_pass()
    assert stats.rsync == 1
    with AccountBroker(lost, "", reuse_connections=False) as broker:
        assert broker.get_info().container_count == 2
        assert replication_info(KINDS["account"], broker)["count"] == 2


def test_received_files_are_checked(cluster):
    cluster.request("/v1/AUTH_test/c", "PUT")
    copies = container_copies(cluster, "AUTH_test", "c")
    part, nodes = cluster.ring("container").get_nodes("AUTH_test", "c")
    name_hash = hash_path("AUTH_test", "c", secrets=cluster.secrets).hex()
    with open(copies[0][1], "rb") as handle:
        good = handle.read()
    headers = {FILE_HEADER: "complete", SENDER_ID_HEADER: "x", SENDER_MAX_ROW_HEADER: "0"}
    wrong_hash = hash_path("AUTH_test", "other", secrets=cluster.secrets).hex()
    result = direct_client.node_request(nodes[0], part, "REPLICATE", f"/{wrong_hash}",
                                        body=good, headers=headers)
    assert result is not None and result.status == 422
    result = direct_client.node_request(nodes[0], part, "REPLICATE", f"/{name_hash}",
                                        body=b"SQLite format 3\x00" + b"\x00" * 200,
                                        headers=headers)
    assert result is not None and result.status == 422
    result = direct_client.node_request(nodes[0], part, "REPLICATE", f"/{name_hash}",
                                        body=b'{"op": "nope", "args": {}}')
    assert result is not None and result.status == 400
    # Nothing was left behind in the device's tmp directory.
    tmp_dir = os.path.join(cluster.node_of(nodes[0].port, "container").device_path, "tmp")
    assert not os.path.isdir(tmp_dir) or os.listdir(tmp_dir) == []


def test_daemon_entry_point_runs_once(cluster):
    cluster.request("/v1/AUTH_test/c", "PUT")
    node = cluster.nodes[0]
    conf = cluster.conf(node, container_replicator.SECTION, bind_ip="127.0.0.1",
                        bind_port=str(node.ports["container"]))
    assert container_replicator.run_daemon(conf, LOG, once=True) == 0
    cache = recon.load_recon_cache(os.path.join(node.recon_cache, recon.CONTAINER_RECON))
    assert "replication_time" in cache
