"""storage_node.object_replicator and the REPLICATE verb, against real object servers.

Four real object servers (storage_node.object_server) run in this process on 127.0.0.1, each
with one device in a tmp directory, behind a real ring (3 replicas, 16 partitions). Objects
are written to chosen nodes with backend PUT/POST/DELETE requests, so replicas start out
different; each node's replicator then runs one pass, and the files on disk are compared.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import os
import time

import eventlet
import eventlet.wsgi
import msgpack
import pytest

from common.config import Config
from common.timestamp import Timestamp
from ring import Ring, load_hash_secrets
from ring.builder import RingBuilder
from ring.hashing import hash_path
from storage_node import http_client
from storage_node.diskfile import read_metadata
from storage_node.object_replicator import (
    ObjectReplicator,
    ReplicatorSettings,
    files_to_send,
    replication_headers,
)
from storage_node.object_server import ObjectServer
from storage_node.recon import load_recon_cache


class _NullLog:
    def write(self, *_args) -> None:
        pass


@dataclasses.dataclass
class StorageNode:
    index: int
    port: int
    devices: str
    device: str
    sock: object = None
    thread: object = None

    @property
    def device_path(self) -> str:
        return os.path.join(self.devices, self.device)


class Cluster:
    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.swift_dir = str(tmp_path / "etc")
        os.makedirs(self.swift_dir)
        with open(os.path.join(self.swift_dir, "ringstack.conf"), "w") as handle:
            handle.write("[ringstack-hash]\npath_prefix = pre\npath_suffix = suf\n\n"
                         "[storage-policy:0]\nname = gold\ndefault = yes\n")
        self.secrets = load_hash_secrets(os.path.join(self.swift_dir, "ringstack.conf"))
        socks = [eventlet.listen(("127.0.0.1", 0)) for _ in range(4)]
        builder = RingBuilder(4, 3, 0)
        self.nodes = []
        for index, sock in enumerate(socks):
            port = sock.getsockname()[1]
            builder.add_device(region=1, zone=index + 1, ip="127.0.0.1", port=port,
                               device=f"d{index}", weight=100)
            node = StorageNode(index, port, str(tmp_path / f"node{index}"), f"d{index}", sock)
            os.makedirs(node.device_path)
            self.nodes.append(node)
        builder.rebalance(seed=1)
        builder.ring_data().save(os.path.join(self.swift_dir, "object.ring"))
        self.ring = Ring(os.path.join(self.swift_dir, "object.ring"), self.secrets)
        for node in self.nodes:
            self.start(node)

    def start(self, node: StorageNode) -> None:
        if node.sock is None:
            node.sock = eventlet.listen(("127.0.0.1", node.port))
        conf = Config({"swift_dir": self.swift_dir, "devices": node.devices,
                       "mount_check": "false", "log_requests": "false",
                       "container_update_timeout": "0.5"}, "<test>", "object-server")
        node.thread = eventlet.spawn(eventlet.wsgi.server, node.sock, ObjectServer(conf),
                                     log=_NullLog(), log_output=False)

    def stop(self, node: StorageNode) -> None:
        node.thread.kill()
        node.sock.close()
        node.sock = None

    def close(self) -> None:
        for node in self.nodes:
            if node.sock is not None:
                self.stop(node)

    def node_of(self, ring_node) -> StorageNode:
        return next(n for n in self.nodes if n.port == ring_node.port)

    def placement(self, name: str) -> tuple[int, list[StorageNode], StorageNode]:
        """(partition, primaries, the one node that is not a primary)."""
        part, ring_nodes = self.ring.get_nodes("a", "c", name)
        primaries = [self.node_of(n) for n in ring_nodes]
        [other] = [n for n in self.nodes if n not in primaries]
        return part, primaries, other

    def replicator(self, node: StorageNode, **overrides) -> ObjectReplicator:
        settings = ReplicatorSettings(
            devices=node.devices, mount_check=False, swift_dir=self.swift_dir,
            bind_ip="127.0.0.1", bind_port=node.port, conn_timeout_s=0.5, node_timeout_s=5,
            http_timeout_s=10, recon_cache_path=str(self.tmp_path / f"recon{node.index}"),
            **overrides)
        return ObjectReplicator(settings, logging.getLogger(f"replicator-{node.index}"))

    def request(self, node: StorageNode, method: str, part: int, name: str,
                headers: dict[str, str] | None = None, body: bytes = b"",
                device: str | None = None) -> http_client.HttpResult:
        path = f"/{device or node.device}/{part}/a/c/{name}" if name else \
            f"/{device or node.device}/{part}"
        return http_client.request("127.0.0.1", node.port, method, path, headers or {}, body,
                                   response_timeout_s=10)

    def put(self, node: StorageNode, part: int, name: str, body: bytes,
            timestamp: Timestamp, **headers: str) -> None:
        result = self.request(node, "PUT", part, name, {
            "X-Timestamp": timestamp.internal, "Content-Type": "text/plain",
            **{k.replace("_", "-"): v for k, v in headers.items()}}, body)
        assert result.status == 201, result

    def hash_dir(self, node: StorageNode, part: int, name: str) -> str:
        name_hash = hash_path("a", "c", name, self.secrets).hex()
        return os.path.join(node.device_path, "objects", str(part), name_hash[-3:], name_hash)

    def files(self, node: StorageNode, part: int, name: str) -> list[str]:
        try:
            return sorted(os.listdir(self.hash_dir(node, part, name)))
        except FileNotFoundError:
            return []

    def stored(self, node: StorageNode, part: int, name: str) -> dict[str, tuple]:
        """file name -> (metadata, body) of every file in the object's hash directory."""
        result = {}
        for file_name in self.files(node, part, name):
            path = os.path.join(self.hash_dir(node, part, name), file_name)
            body_length, metadata = read_metadata(path)
            with open(path, "rb") as handle:
                result[file_name] = (metadata, handle.read(body_length))
        return result


@pytest.fixture
def cluster(tmp_path):
    running = Cluster(tmp_path)
    try:
        yield running
    finally:
        running.close()


def ts(offset: float = 0.0) -> Timestamp:
    return Timestamp(time.time() + offset)


# ---- pure rules ---------------------------------------------------------------------------

def test_files_to_send_picks_only_what_the_peer_lacks():
    t1, t2, t3 = (Timestamp(1000 + i).internal for i in range(3))
    assert files_to_send([f"{t1}.data"], []) == [f"{t1}.data"]
    assert files_to_send([f"{t1}.data"], [f"{t1}.data"]) == []
    assert files_to_send([f"{t2}.data"], [f"{t1}.data"]) == [f"{t2}.data"]
    assert files_to_send([f"{t1}.data"], [f"{t2}.data"]) == []
    assert files_to_send([f"{t2}.ts"], [f"{t1}.data"]) == [f"{t2}.ts"]
    assert files_to_send([f"{t1}.data"], [f"{t2}.ts"]) == []
    assert files_to_send([f"{t1}.data", f"{t2}.meta"], []) == [f"{t1}.data", f"{t2}.meta"]
    assert files_to_send([f"{t1}.data", f"{t2}.meta"], [f"{t1}.data"]) == [f"{t2}.meta"]
    assert files_to_send([f"{t1}.data", f"{t3}.meta"], [f"{t1}.data", f"{t2}.meta"]) == \
        [f"{t3}.meta"]
    assert files_to_send([f"{t1}.data", f"{t2}.meta"], [f"{t3}.data"]) == []
    # a POST made after the peer's newer PUT still applies there
    assert files_to_send([f"{t1}.data", f"{t3}.meta"], [f"{t2}.data"]) == [f"{t3}.meta"]
    assert files_to_send([f"{t1}.data", f"{t3}.meta"], [f"{t2}.ts"]) == []
    assert files_to_send([f"{t2}.meta"], []) == []          # an orphan .meta stays put
    assert files_to_send([f"{t1}.ts"], [f"{t1}.data"]) == [f"{t1}.ts"]   # tombstone wins
    assert files_to_send([f"{t1}.data"], [f"{t1}.ts"]) == []


def test_replication_headers_carry_the_exact_metadata():
    metadata = {"name": "/a/c/o", "X-Timestamp": "1000.00000", "Content-Type": "x/y",
                "Content-Length": "3", "ETag": "e" * 32, "X-Object-Meta-A": "b",
                "X-Object-Sysmeta-S": "t", "X-Delete-At": "2000", "Content-Encoding": "gzip"}
    headers = replication_headers(metadata, ".data", 1)
    assert headers["X-Backend-Replication"] == "True"
    assert headers["X-Backend-Storage-Policy-Index"] == "1"
    assert headers["ETag"] == "e" * 32 and headers["Content-Type"] == "x/y"
    assert headers["X-Object-Meta-A"] == "b" and headers["X-Object-Sysmeta-S"] == "t"
    assert set(headers["X-Backend-Replication-Headers"].split()) == {"x-delete-at",
                                                                     "content-encoding"}
    assert "name" not in headers and "Content-Length" not in headers
    assert replication_headers({"name": "/a/c/o", "X-Timestamp": "5.00000"}, ".ts", 0) == {
        "X-Timestamp": "5.00000", "X-Backend-Replication": "True",
        "X-Backend-Storage-Policy-Index": "0"}


# ---- the REPLICATE verb -------------------------------------------------------------------

def test_replicate_returns_hashes_and_lists_named_suffixes(cluster):
    part, [first, *_], _ = cluster.placement("o")
    timestamp = ts()
    cluster.put(first, part, "o", b"abc", timestamp)
    suffix = hash_path("a", "c", "o", cluster.secrets).hex()[-3:]
    result = cluster.request(first, "REPLICATE", part, "")
    assert result.status == 200
    body = msgpack.unpackb(result.body)
    assert list(body["hashes"]) == [suffix] and body["files"] == {}
    assert http_client.request("127.0.0.1", first.port, "REPLICATE",
                               f"/{first.device}/{part}/{suffix}/extra", {}).status == 400
    listed = http_client.request("127.0.0.1", first.port, "REPLICATE",
                                 f"/{first.device}/{part}/{suffix}-fff", {})
    body = msgpack.unpackb(listed.body)
    name_hash = hash_path("a", "c", "o", cluster.secrets).hex()
    assert body["files"] == {suffix: {name_hash: [f"{timestamp.internal}.data"]}, "fff": {}}
    bad = http_client.request("127.0.0.1", first.port, "REPLICATE",
                              f"/{first.device}/{part}/xyz", {})
    assert bad.status == 400
    assert http_client.request("127.0.0.1", first.port, "REPLICATE", f"/nodev/{part}",
                               {}).status == 507
    assert http_client.request("127.0.0.1", first.port, "REPLICATE", f"/{first.device}/{part}",
                               {"X-Backend-Storage-Policy-Index": "9"}).status == 503
    empty_part = next(p for p in range(16)
                      if not os.path.exists(os.path.join(first.device_path, "objects", str(p))))
    empty = http_client.request("127.0.0.1", first.port, "REPLICATE",
                                f"/{first.device}/{empty_part}", {})
    assert empty.status == 200 and msgpack.unpackb(empty.body)["hashes"] == {}
    assert not os.path.exists(os.path.join(first.device_path, "objects", str(empty_part)))
    assert cluster.request(first, "PATCH", part, "o").status == 405


def test_replication_requests_send_no_container_update(cluster):
    part, [first, second, _], _ = cluster.placement("o")
    unreachable = {"X-Container-Host": "127.0.0.1:1", "X-Container-Device": "d",
                   "X-Container-Partition": "1"}
    cluster.put(first, part, "o", b"abc", ts(), **unreachable)
    # The control: an ordinary write whose container is unreachable saves an async pending.
    assert glob.glob(os.path.join(first.device_path, "async_pending", "*", "*"))
    cluster.put(second, part, "o", b"abc", ts(), X_Backend_Replication="True", **unreachable)
    assert not os.path.exists(os.path.join(second.device_path, "async_pending"))


# ---- primary partitions -------------------------------------------------------------------

def test_update_pushes_data_meta_and_tombstones_with_exact_metadata(cluster):
    part, primaries, _ = cluster.placement("big")
    first, second, third = primaries
    body = os.urandom(3 * 1024 * 1024 + 17)       # above a disk chunk: streamed both ways
    data_ts = ts()
    cluster.put(first, part, "big", body, data_ts, Content_Type="text/x-special",
                X_Object_Meta_Color="blue", X_Object_Sysmeta_Secret="s3",
                X_Object_Transient_Sysmeta_T="t", X_Delete_At=str(int(time.time()) + 3600),
                Content_Encoding="gzip")
    meta_ts = ts(1)
    posted = cluster.request(first, "POST", part, "big", {
        "X-Timestamp": meta_ts.internal, "X-Object-Meta-Color": "red",
        "Content-Type": "text/y"})
    assert posted.status == 202
    # A second object in the same partition: every node has v1, only `first` saw its delete.
    name = next(f"gone{i}" for i in range(1000)
                if cluster.ring.get_nodes("a", "c", f"gone{i}")[0] == part)
    for node in primaries:
        cluster.put(node, part, name, b"v1", data_ts)
    deleted_ts = ts(2)
    assert cluster.request(first, "DELETE", part, name,
                           {"X-Timestamp": deleted_ts.internal}).status == 204
    assert cluster.files(first, part, name) == [f"{deleted_ts.internal}.ts"]

    stats = cluster.replicator(first).run_once()
    assert stats.failure == 0 and stats.push_failures == 0
    assert stats.files_pushed == 6            # (.data + .meta + .ts) x 2 peers
    want = cluster.stored(first, part, "big")
    assert sorted(want) == [f"{data_ts.internal}.data", f"{meta_ts.internal}.meta"]
    # The POST replaced user metadata and allowed headers; sysmeta stays with the .data.
    assert want[f"{data_ts.internal}.data"][0]["Content-Encoding"] == "gzip"
    assert want[f"{data_ts.internal}.data"][0]["X-Object-Sysmeta-Secret"] == "s3"

    def get(node):
        return http_client.request("127.0.0.1", node.port, "GET",
                                   f"/{node.device}/{part}/a/c/big", {},
                                   max_body_bytes=len(body) + 1)

    original = get(first)
    for peer in (second, third):
        assert cluster.stored(peer, part, "big") == want
        assert cluster.files(peer, part, name) == [f"{deleted_ts.internal}.ts"]
        got = get(peer)
        assert got.status == 200 and got.body == body
        assert got.headers["content-type"] == "text/y"
        assert got.headers["x-object-meta-color"] == "red"
        assert {k: v for k, v in got.headers.items() if k != "date"} == \
            {k: v for k, v in original.headers.items() if k != "date"}

    again = cluster.replicator(first).run_once()
    assert again.files_pushed == 0 and again.hashmatch == 2 and again.failure == 0
    recon = load_recon_cache(cluster.replicator(first).settings.recon_file)
    assert recon["partitions_behind"] == 0
    assert recon["replication_stats"]["hashmatch"] == 2
    assert recon["object_replication_last"] >= data_ts.seconds
    assert recon["replication_stats"]["last_success"] is not None


def test_newer_versions_win_in_both_directions(cluster):
    part, [first, second, third], _ = cluster.placement("o")
    old_ts, new_ts = ts(), ts(1)
    cluster.put(first, part, "o", b"old", old_ts)
    cluster.put(second, part, "o", b"new", new_ts)
    stats = cluster.replicator(first).run_once()
    assert stats.push_failures == 0
    assert cluster.files(second, part, "o") == [f"{new_ts.internal}.data"]   # 409: kept
    assert cluster.files(third, part, "o") == [f"{old_ts.internal}.data"]
    cluster.replicator(second).run_once()
    for node in (first, second, third):
        assert cluster.files(node, part, "o") == [f"{new_ts.internal}.data"]
        assert cluster.stored(node, part, "o")[f"{new_ts.internal}.data"][1] == b"new"


def test_a_primary_that_is_down_is_covered_by_a_handoff(cluster):
    part, [first, second, third], handoff = cluster.placement("o")
    timestamp = ts()
    cluster.put(first, part, "o", b"abc", timestamp)
    cluster.stop(second)
    replicator = cluster.replicator(first)
    stats = replicator.run_once()
    assert stats.node_failures >= 1 and stats.handoff_syncs >= 1
    assert cluster.files(third, part, "o") == [f"{timestamp.internal}.data"]
    assert cluster.files(handoff, part, "o") == [f"{timestamp.internal}.data"]
    assert load_recon_cache(replicator.settings.recon_file)["partitions_behind"] >= 1

    # The primary comes back; the handoff's copy goes home and leaves the handoff.
    cluster.start(second)
    cluster.replicator(handoff).run_once()
    assert cluster.files(second, part, "o") == [f"{timestamp.internal}.data"]
    assert not os.path.exists(os.path.join(handoff.device_path, "objects", str(part)))


def test_a_corrupt_local_copy_is_refused_not_spread(cluster):
    part, [first, second, third], _ = cluster.placement("o")
    body = b"precious bytes"
    cluster.put(first, part, "o", body, ts())
    [data_file] = glob.glob(os.path.join(cluster.hash_dir(first, part, "o"), "*.data"))
    with open(data_file, "r+b") as handle:
        handle.write(b"X")
    stats = cluster.replicator(first).run_once()
    assert stats.push_failures == 2 and stats.failure == 1
    assert cluster.files(second, part, "o") == [] and cluster.files(third, part, "o") == []


# ---- handoff partitions -------------------------------------------------------------------

def test_handoff_partition_goes_home_and_is_removed(cluster):
    part, primaries, handoff = cluster.placement("o")
    timestamp = ts()
    cluster.put(handoff, part, "o", b"handed off", timestamp)
    replicator = cluster.replicator(handoff)
    stats = replicator.run_once()
    assert stats.failure == 0 and stats.remove == 1 and stats.files_pushed == 3
    for node in primaries:
        assert cluster.stored(node, part, "o")[f"{timestamp.internal}.data"][1] == b"handed off"
    assert not os.path.exists(os.path.join(handoff.device_path, "objects", str(part)))
    recon = load_recon_cache(replicator.settings.recon_file)
    assert recon["partitions_behind"] == 0 and recon["replication_stats"]["remove"] == 1
    with open(replicator.settings.recon_file) as handle:
        assert json.load(handle)["object_replication_time"] >= 0


def test_handoff_is_kept_until_every_primary_has_it(cluster):
    part, [first, second, third], handoff = cluster.placement("o")
    timestamp = ts()
    cluster.put(handoff, part, "o", b"data", timestamp)
    unmounted = second.device_path + ".away"
    os.rename(second.device_path, unmounted)          # the primary answers 507
    replicator = cluster.replicator(handoff)
    stats = replicator.run_once()
    assert stats.remove == 0 and stats.handoffs_remaining == 1
    assert cluster.files(first, part, "o") == [f"{timestamp.internal}.data"]
    assert cluster.files(third, part, "o") == [f"{timestamp.internal}.data"]
    assert cluster.files(handoff, part, "o") == [f"{timestamp.internal}.data"]
    assert load_recon_cache(replicator.settings.recon_file)["partitions_behind"] == 1

    os.rename(unmounted, second.device_path)
    stats = replicator.run_once()
    assert stats.remove == 1 and stats.handoffs_remaining == 0
    assert cluster.files(second, part, "o") == [f"{timestamp.internal}.data"]
    assert load_recon_cache(replicator.settings.recon_file)["partitions_behind"] == 0


def test_rate_limit_spaces_pushes(cluster):
    part, _, handoff = cluster.placement("o")
    names = [f"o{i}" for i in range(400)
             if cluster.ring.get_nodes("a", "c", f"o{i}")[0] == part][:4]
    for name in names:
        cluster.put(handoff, part, name, b"x", ts())
    began = time.monotonic()
    stats = cluster.replicator(handoff, files_per_second=20.0).run_once()
    # 12 pushes at 20/s: at least 11 intervals of 50 ms.
    assert stats.files_pushed == 3 * len(names)
    assert time.monotonic() - began >= (3 * len(names) - 1) / 20.0 - 0.01
