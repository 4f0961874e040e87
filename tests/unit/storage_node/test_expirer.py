"""storage_node.expirer: the queue rows object servers write for X-Delete-At, and the daemon
that deletes due objects, against real servers on 127.0.0.1 (tests/unit/storage_node/
storage_cluster.py) and the real proxy in front."""

from __future__ import annotations

import json
import logging
import os
import time

import eventlet
import pytest

from common.config import Config, ConfigError
from proxy.controllers.object import expirer_container
from ring.hashing import hash_path
from storage_node import direct_client, recon
from storage_node.expirer import (
    ExpirerSettings,
    ExpiryTask,
    ObjectExpirer,
    parse_queue_entry,
    queue_entry_name,
    queue_targets,
)
from storage_node.updater import ObjectUpdater, UpdaterSettings
from tests.unit.storage_node.storage_cluster import StorageCluster

QUEUE = ".expiring_objects"


@pytest.fixture
def cluster(tmp_path):
    running = StorageCluster(str(tmp_path))
    try:
        yield running
    finally:
        running.stop()


def expirer_for(cluster: StorageCluster, **overrides: str) -> ObjectExpirer:
    conf = cluster.conf(cluster.nodes[0], "object-expirer", **overrides)
    return ObjectExpirer(ExpirerSettings.from_config(conf), logging.getLogger("test-expirer"))


def queue_rows(cluster: StorageCluster) -> dict[str, list[str]]:
    account_ring, container_ring = cluster.ring("account"), cluster.ring("container")
    part, nodes = account_ring.get_nodes(QUEUE)
    containers = direct_client.merged_listing(nodes, part, f"/{QUEUE}") or []
    rows = {}
    for container in containers:
        part, nodes = container_ring.get_nodes(QUEUE, container)
        rows[container] = direct_client.merged_listing(nodes, part, f"/{QUEUE}/{container}")
    return rows


def wait_for(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        eventlet.sleep(0.05)


def object_files(cluster: StorageCluster, name: str) -> list[list[str]]:
    """The file names in the object's hash directory on each primary."""
    account, container, obj = name.split("/", 2)
    ring = cluster.ring("object")
    part, nodes = ring.get_nodes(account, container, obj)
    name_hash = hash_path(account, container, obj, cluster.secrets).hex()
    found = []
    for node in nodes:
        local = cluster.node_of(node.port, "object")
        hash_dir = os.path.join(local.device_path, "objects", str(part), name_hash[-3:],
                                name_hash)
        found.append(sorted(os.listdir(hash_dir)) if os.path.isdir(hash_dir) else [])
    return found


def test_queue_entry_names_round_trip():
    name = queue_entry_name(1700000000, "AUTH_a", "c", "dir/o-1")
    assert name == "1700000000-AUTH_a/c/dir/o-1"
    assert parse_queue_entry("1699999900", name) == ExpiryTask(
        "1699999900", name, 1700000000, "AUTH_a", "c", "dir/o-1")
    for bad in ("nodash", "x-AUTH_a/c/o", "1700000000-AUTH_a/c", "1700000000-a//o"):
        assert parse_queue_entry("1", bad) is None


def test_queue_targets_need_pairs_and_a_partition():
    headers = {"X-Delete-At-Host": "127.0.0.1:1, 127.0.0.2:2", "X-Delete-At-Device": "a,b",
               "X-Delete-At-Partition": "9"}
    assert [(t.ip, t.port, t.device, t.partition) for t in queue_targets(headers)] == [
        ("127.0.0.1", 1, "a", 9), ("127.0.0.2", 2, "b", 9)]
    assert queue_targets({**headers, "X-Delete-At-Partition": ""}) == []
    assert queue_targets({**headers, "X-Delete-At-Device": "a"}) == []


def test_task_outcome_rules(tmp_path):
    settings = ExpirerSettings(reclaim_age_s=100.0)
    decide = ObjectExpirer.task_outcome
    holder = type("E", (), {"settings": settings})()
    young = ExpiryTask("1", "e", 1000, "a", "c", "o")
    old = ExpiryTask("1", "e", 100, "a", "c", "o")
    assert decide(holder, young, [204, 204, 404], 1010) == "expired"
    assert decide(holder, young, [409, 204, None], 1010) == "expired"   # newer object: done
    assert decide(holder, young, [204, None, None], 1010) == "retry"
    assert decide(holder, young, [412, 412, 404], 1010) == "retry"      # maybe a lagging copy
    assert decide(holder, old, [412, 412, 404], 1010) == "stale"
    assert decide(holder, old, [412, None, 404], 1010) == "retry"       # someone did not answer
    with pytest.raises(ConfigError):
        ExpirerSettings.from_config(Config({"processes": "2", "process": "2"}, "<t>", "x"))


def test_expired_object_is_deleted_everywhere_and_its_queue_row_removed(cluster):
    assert cluster.request("/v1/AUTH_test/c", "PUT").status_int == 201
    delete_at = int(time.time()) + 2
    assert cluster.request("/v1/AUTH_test/c/doomed", "PUT", {"X-Delete-At": str(delete_at)},
                           b"bye").status_int == 201
    assert cluster.request("/v1/AUTH_test/c/kept", "PUT", {"X-Delete-After": "3600"},
                           b"stay").status_int == 201
    assert cluster.request("/v1/AUTH_test/c/plain", "PUT", body=b"no expiry").status_int == 201
    # The object servers queued both rows; the container servers told the queue account.
    wait_for(lambda: sum(len(rows or []) for rows in queue_rows(cluster).values()) == 2)
    rows = [row for rows in queue_rows(cluster).values() for row in rows or []]
    assert f"{delete_at:010d}-AUTH_test/c/doomed" in rows

    while time.time() <= delete_at:
        eventlet.sleep(0.1)
    stats = expirer_for(cluster).run_pass()
    assert (stats.tasks, stats.expired, stats.retried, stats.errors) == (1, 1, 0, 0)
    # A tombstone at the delete-at time on every primary, the listing updated, the row gone.
    for names in object_files(cluster, "AUTH_test/c/doomed"):
        assert names and names[-1].endswith(".ts") and names[-1].startswith(str(delete_at))
    listing = json.loads(cluster.request("/v1/AUTH_test/c?format=json").body)
    assert [row["name"] for row in listing] == ["kept", "plain"]
    remaining = [row for rows in queue_rows(cluster).values() for row in rows or []]
    assert len(remaining) == 1 and remaining[0].endswith("AUTH_test/c/kept")
    assert cluster.request("/v1/AUTH_test/c/kept").body == b"stay"
    cache = recon.load_recon_cache(os.path.join(cluster.nodes[0].recon_cache,
                                                recon.OBJECT_RECON))
    assert cache["expired_last_pass"] == 1 and "object_expiration_pass" in cache
    # Nothing is due now: a second pass deletes nothing.
    assert expirer_for(cluster).run_pass().expired == 0


def test_a_changed_delete_at_is_refused_then_the_stale_row_reclaimed(cluster):
    cluster.request("/v1/AUTH_test/c", "PUT")
    # far enough ahead that the POST below still finds the object on a slow machine
    first = int(time.time()) + 3
    assert cluster.request("/v1/AUTH_test/c/o", "PUT", {"X-Delete-At": str(first)},
                           b"data").status_int == 201
    # A POST moves the expiry a day later: the first row no longer matches (412).
    later = first + 86400
    assert cluster.request("/v1/AUTH_test/c/o", "POST",
                           {"X-Delete-At": str(later)}).status_int == 202
    wait_for(lambda: sum(len(rows or []) for rows in queue_rows(cluster).values()) == 2)
    while time.time() <= first:
        eventlet.sleep(0.1)
    stats = expirer_for(cluster).run_pass()
    assert (stats.tasks, stats.expired, stats.retried) == (1, 0, 1)
    assert cluster.request("/v1/AUTH_test/c/o").body == b"data"
    # Once older than reclaim_age, a row every primary refuses is dropped, object untouched.
    stats = expirer_for(cluster, reclaim_age="0").run_pass()
    assert (stats.expired, stats.stale) == (0, 1)
    assert cluster.request("/v1/AUTH_test/c/o").body == b"data"
    remaining = [row for rows in queue_rows(cluster).values() for row in rows or []]
    assert remaining == [f"{later:010d}-AUTH_test/c/o"]


def test_an_unreachable_queue_replica_gets_its_row_from_an_async_pending(cluster):
    cluster.request("/v1/AUTH_test/c", "PUT")
    delete_at = int(time.time()) + 2
    queue_container = expirer_container(delete_at, 86400, "AUTH_test", "c", "o",
                                        cluster.secrets)
    part, nodes = cluster.ring("container").get_nodes(QUEUE, queue_container)
    down = cluster.node_of(nodes[0].port, "container")
    cluster.stop_server("container", down.index)
    try:
        assert cluster.request("/v1/AUTH_test/c/o", "PUT", {"X-Delete-At": str(delete_at)},
                               b"x").status_int == 201
    finally:
        cluster.start("container", down.index)
    pendings = sum(sum(recon.async_pending_counts(n.devices).values()) for n in cluster.nodes)
    assert pendings >= 1
    assert direct_client.merged_listing([nodes[0]], part, f"/{QUEUE}/{queue_container}") \
        is None
    # The updater replays the saved row to the replica that was down.
    for node in cluster.nodes:
        settings = UpdaterSettings(devices=node.devices, mount_check=False)
        ObjectUpdater(settings, logging.getLogger("test-updater")).sweep()
    rows = direct_client.merged_listing([nodes[0]], part, f"/{QUEUE}/{queue_container}")
    assert rows == [f"{delete_at:010d}-AUTH_test/c/o"]
    while time.time() <= delete_at:
        eventlet.sleep(0.1)
    assert expirer_for(cluster).run_pass().expired == 1
    assert cluster.request("/v1/AUTH_test/c/o").status_int == 404
