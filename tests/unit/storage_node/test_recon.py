"""storage_node.recon (cache files, the /recon endpoint) and storage_node.recon_cli
(`ringstack-recon` and its dispersion report) against real servers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import threading

import pytest

from ring import Ring
from ring.builder import RingBuilder
from ring.hashing import hash_path
from storage_node import direct_client, recon, recon_cli
from tests.unit.storage_node.storage_cluster import StorageCluster


@pytest.fixture
def cluster(tmp_path):
    running = StorageCluster(str(tmp_path))
    try:
        yield running
    finally:
        running.stop()


def get(node, metric: str):
    result = direct_client.request("127.0.0.1", node.ports["object"], "GET", f"/recon/{metric}")
    assert result is not None
    return result.status, json.loads(result.body)


def test_dump_merges_nested_keys_and_none_removes(tmp_path):
    cache = str(tmp_path / "recon")
    assert recon.dump_recon_cache(cache, "object.recon", {"a": {"x": 1, "y": 2}, "b": 1})
    assert recon.dump_recon_cache(cache, "object.recon", {"a": {"y": 3}, "b": None, "c": "z"})
    path = os.path.join(cache, "object.recon")
    assert recon.load_recon_cache(path) == {"a": {"x": 1, "y": 3}, "c": "z"}
    # Only the cache file and its lock are left: no temp files from the atomic writes.
    assert sorted(os.listdir(cache)) == ["object.recon", "object.recon.lock"]
    with open(path, "w") as handle:
        handle.write("{not json")
    assert recon.load_recon_cache(path) == {}
    assert recon.load_recon_cache(str(tmp_path / "missing")) == {}


def test_concurrent_writers_lose_no_keys(tmp_path):
    cache = str(tmp_path / "recon")

    def writer(index: int) -> None:
        for round_ in range(20):
            recon.dump_recon_cache(cache, "object.recon", {f"w{index}": round_})

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert recon.load_recon_cache(os.path.join(cache, "object.recon")) == {
        f"w{i}": 19 for i in range(4)}


def test_unwritable_cache_is_reported_not_raised(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert recon.dump_recon_cache(str(blocker / "recon"), "object.recon", {"a": 1}) is False


def test_endpoint_answers_from_caches_and_devices(cluster):
    node = cluster.nodes[1]
    # What the object replicator (another module) writes; the endpoint passes it through.
    recon.dump_recon_cache(node.recon_cache, recon.OBJECT_RECON, {
        "object_replication_time": 12.5, "object_replication_last": 1700000000.0,
        "replication_stats": {"attempted": 64}, "partitions_behind": 3})
    recon.dump_recon_cache(node.recon_cache, recon.CONTAINER_RECON,
                           {"replication_time": 1.5, "replication_last": 1700000001.0})
    status, body = get(node, "replication/object")
    assert status == 200 and body["partitions_behind"] == 3
    assert body["object_replication_time"] == 12.5
    assert get(node, "replication/container")[1]["replication_time"] == 1.5
    os.makedirs(os.path.join(node.device_path, "async_pending", "abc"))
    for name in ("h1-1", "h2-2"):
        open(os.path.join(node.device_path, "async_pending", "abc", name), "w").close()
    os.makedirs(os.path.join(node.device_path, "quarantined", "objects", "deadbeef"))
    os.makedirs(os.path.join(node.device_path, "quarantined", "containers", "cafe"))
    assert get(node, "async")[1] == {"async_pending": 2, "devices": {node.device: 2}}
    quarantined = get(node, "quarantined")[1]
    assert (quarantined["objects"], quarantined["containers"], quarantined["accounts"]) == \
        (1, 1, 0)
    [usage] = get(node, "diskusage")[1]
    assert usage["device"] == node.device and usage["mounted"]
    assert 0 < usage["used"] <= usage["size"]
    md5s = get(node, "ringmd5")[1]
    assert set(md5s) == {"account.ring", "container.ring", "object.ring"}
    assert md5s["object.ring"] == recon.file_md5(os.path.join(cluster.swift_dir,
                                                              "object.ring"))
    assert get(node, "nonsense")[0] == 404
    assert get(node, "replication/bogus")[0] == 404
    # The object server still serves objects next to it.
    assert cluster.request("/v1/AUTH_test/c", "PUT").status_int == 201


def test_ring_agreement_flags_the_odd_node():
    report = {"n1": {"ringmd5": {"object.ring": "aaa"}},
              "n2": {"ringmd5": {"object.ring": "aaa"}},
              "n3": {"ringmd5": {"object.ring": "bbb"}},
              "n4": {"ringmd5": None}}
    agreement = recon_cli.ring_agreement(report, {})
    assert agreement["object.ring"]["expected"] == "aaa"
    assert agreement["object.ring"]["mismatched"] == ["n3"]
    against_local = recon_cli.ring_agreement(report, {"object.ring": "bbb"})
    assert against_local["object.ring"]["mismatched"] == ["n1", "n2"]


def test_cli_report_and_json(cluster, capsys):
    recon.dump_recon_cache(cluster.nodes[0].recon_cache, recon.OBJECT_RECON, {
        "object_auditor_stats": {"files_processed": 7, "bytes_processed": 70,
                                 "quarantined": 1, "errors": 0, "last_pass": 1.0}})
    assert recon_cli.main(["--swift-dir", cluster.swift_dir]) == 0
    text = capsys.readouterr().out
    assert "4 storage nodes, 4 answering" in text
    assert "object.ring: all answering nodes agree" in text
    assert recon_cli.main(["--swift-dir", cluster.swift_dir, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    host = f"127.0.0.1:{cluster.nodes[0].ports['object']}"
    assert data["nodes"][host]["auditor/object"]["object_auditor_stats"]["files_processed"] \
        == 7
    assert all(not r["mismatched"] for r in data["rings"].values())


def test_cli_flags_a_ring_that_differs_and_a_node_that_is_down(cluster, capsys, tmp_path):
    other = tmp_path / "other-etc"
    shutil.copytree(cluster.swift_dir, other)
    # The same devices, assigned differently: another ring file than the nodes run.
    ring = cluster.ring("object")
    builder = RingBuilder(6, 3, 0)
    for device in ring.devices:
        builder.add_device(region=1, zone=device.zone, ip=device.ip, port=device.port,
                           device=device.device, weight=50)
    builder.rebalance(seed=7)
    builder.ring_data().save(str(other / "object.ring"))
    cluster.stop_server("object", 3)
    assert recon_cli.main(["--swift-dir", str(other), "--timeout", "1"]) == 1
    text = capsys.readouterr().out
    assert "4 storage nodes, 3 answering" in text
    assert f"127.0.0.1:{cluster.nodes[3].ports['object']}: no answer" in text
    assert "!! object.ring: 3 node(s) differ" in text


def test_dispersion_reports_missing_replicas(cluster, capsys):
    cluster.request("/v1/AUTH_test/c", "PUT")
    for index in range(12):
        assert cluster.request(f"/v1/AUTH_test/c/o{index}", "PUT",
                               body=b"x").status_int == 201
    report = recon_cli.dispersion(cluster.swift_dir, "AUTH_test", 100, 5.0)
    assert report["objects"]["all_replicas"] == report["objects"]["sampled"] >= 8
    assert report["containers"] == {"sampled": 1, "all_replicas": 1, "percent": 100.0}
    # Remove one replica of o0 from its first primary's disk.
    ring: Ring = cluster.ring("object")
    part, nodes = ring.get_nodes("AUTH_test", "c", "o0")
    name_hash = hash_path("AUTH_test", "c", "o0", cluster.secrets).hex()
    node = cluster.node_of(nodes[0].port, "object")
    shutil.rmtree(os.path.join(node.device_path, "objects", str(part), name_hash[-3:],
                               name_hash))
    report = recon_cli.dispersion(cluster.swift_dir, "AUTH_test", 100, 5.0)
    assert report["objects"]["all_replicas"] == report["objects"]["sampled"] - 1
    assert report["objects"]["missing 1"] == 1
    assert recon_cli.main(["dispersion", "--account", "AUTH_test", "--swift-dir",
                           cluster.swift_dir]) == 1
    assert "have every replica" in capsys.readouterr().out
