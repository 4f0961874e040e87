"""Probe: a crash between write and rename never lets a torn object be served.

On a real cluster: an object server is killed (SIGKILL) while a large PUT is streaming into
it through the proxy, so its temp file exists in `<dev>/tmp` and nothing was renamed into a
hash directory. After it restarts:

- GET through the proxy and a direct GET to that object server return the previous version
  (an overwrite) or 404 (a new name), never bytes of the interrupted write;
- every `.data` file on every device has a valid footer and a body matching its ETag;
- the leftover temp file (a partial body without a footer) is in `<dev>/tmp` only, where no
  reader looks, and the object replicator removes it once it is older than `reclaim_age`.

Unit level, real files and real processes: a child process writing through `DiskFileWriter`
is SIGKILLed mid-body, or at the moment of the rename (after the footer and fsync); the
object on disk is still the previous version (or absent), and only a temp file is left.
"""

from __future__ import annotations

import glob
import hashlib
import http.client
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

from common.timestamp import Timestamp
from ring.hashing import HashSecrets, hash_path
from storage_node.diskfile import (
    CorruptFile,
    DiskFileManager,
    DiskFileNotExist,
    read_metadata,
)
from tests.functional.cluster import REPO
from tests.probe.conftest import ProbeCluster, probe_cluster
from tests.probe.test_auditor import daemon_conf, run_daemon

pytestmark = pytest.mark.slow

BIG_BYTES = 8 * 1024 * 1024
SENT_BEFORE_KILL = 2 * 1024 * 1024
WAIT_S = 60.0


@pytest.fixture(scope="module")
def torn_probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProbeCluster]:
    with probe_cluster(str(tmp_path_factory.mktemp("probe-torn")),
                       servers_only=True) as running:
        yield running


# ---- helpers ----------------------------------------------------------------------------------

def temp_files(probe: ProbeCluster, node: int, name_hash: str) -> list[str]:
    return glob.glob(os.path.join(probe.layout.devices(node), f"sdb{node}", "tmp",
                                  f"{name_hash}.*"))


def wait_for(condition, what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def check_every_data_file(probe: ProbeCluster) -> int:
    """Every .data on every device: a valid footer, a body of Content-Length bytes whose MD5
    is the stored ETag. Returns how many were checked."""
    paths = probe.all_data_files()
    for path in paths:
        try:
            body_length, metadata = read_metadata(path)
        except CorruptFile as err:
            raise AssertionError(f"{path}: bad footer: {err}") from None
        assert int(metadata["Content-Length"]) == body_length, path
        with open(path, "rb") as handle:
            body = handle.read(body_length)
        assert hashlib.md5(body, usedforsecurity=False).hexdigest() == metadata["ETag"], path
    return len(paths)


def interrupted_put(probe: ProbeCluster, name: str, body: bytes) -> tuple[int, str]:
    """Stream `body` to the proxy, SIGKILL the first primary's object server once the write is
    in its temp file, then drop the client connection. Returns (victim node, name hash)."""
    ring = probe.object_ring()
    part, nodes = ring.get_nodes(probe.account, "torn", name)
    victim = int(nodes[0].device.removeprefix("sdb"))
    name_hash = hash_path(probe.account, "torn", name, ring.secrets).hex()
    assert not temp_files(probe, victim, name_hash)
    storage, token = probe.auth()
    connection = http.client.HTTPConnection("127.0.0.1", probe.cluster.proxy_port, timeout=60)
    try:
        connection.putrequest("PUT", f"{storage}/torn/{name}")
        connection.putheader("X-Auth-Token", token)
        connection.putheader("Content-Length", str(len(body)))
        connection.putheader("Content-Type", "application/octet-stream")
        connection.endheaders()
        connection.send(body[:SENT_BEFORE_KILL])
        wait_for(lambda: temp_files(probe, victim, name_hash), "the victim's temp file")
        time.sleep(1.0)                         # let the bytes sent reach the victim's disk
        probe.cluster.kill(f"object-{victim}")  # kill -9: no cleanup runs
    finally:
        connection.close()                      # the client gives up: nothing acknowledged
    return victim, name_hash


def direct_get(probe: ProbeCluster, node: int, name: str) -> tuple[int, bytes]:
    ring = probe.object_ring()
    part = ring.get_part(probe.account, "torn", name)
    status, _, body = probe.direct(node, "GET", f"/sdb{node}/{part}/{probe.account}/torn/{name}")
    return status, body


def check_leftover(probe: ProbeCluster, victim: int, name_hash: str) -> str:
    """The victim's temp file is there, torn (no footer), and only in <dev>/tmp."""
    [leftover] = temp_files(probe, victim, name_hash)
    with pytest.raises(CorruptFile):
        read_metadata(leftover)
    assert os.path.basename(leftover) not in {
        os.path.basename(path) for path in probe.all_data_files()}
    return leftover


# ---- the cluster ------------------------------------------------------------------------------

def test_killed_during_overwrite_serves_the_previous_version(torn_probe):
    probe = torn_probe
    assert probe.swift("PUT", "/torn")[0] in (201, 202)
    old_body = b"old:" + os.urandom(3 * 1024 * 1024)
    assert probe.swift("PUT", "/torn/obj", old_body)[0] == 201

    victim, name_hash = interrupted_put(probe, "obj", b"new:" + os.urandom(BIG_BYTES))
    # The surviving object servers saw the client go away and removed their temp files.
    for node in range(1, probe.layout.nodes + 1):
        if node != victim:
            wait_for(lambda node=node: not temp_files(probe, node, name_hash),
                     f"node {node} to clean its temp file")
    probe.restart_server("object", victim)
    leftover = check_leftover(probe, victim, name_hash)

    for _ in range(4):                          # both proxy workers, shuffled replicas
        status, _, body = probe.swift("GET", "/torn/obj")
        assert status == 200 and body == old_body, (status, len(body))
    status, body = direct_get(probe, victim, "obj")
    assert status == 200 and body == old_body, (status, len(body))
    assert check_every_data_file(probe) >= 3
    assert os.path.exists(leftover)             # still there, still never served


def test_killed_during_first_write_serves_nothing(torn_probe):
    probe = torn_probe
    assert probe.swift("PUT", "/torn")[0] in (201, 202)
    victim, name_hash = interrupted_put(probe, "fresh", b"fresh:" + os.urandom(BIG_BYTES))
    probe.restart_server("object", victim)
    check_leftover(probe, victim, name_hash)
    ring = probe.object_ring()
    for _ in range(4):
        status, _, body = probe.swift("GET", "/torn/fresh")
        assert status == 404, (status, len(body))
    assert direct_get(probe, victim, "fresh")[0] == 404
    assert probe.data_files(ring, "torn", "fresh") == {}
    check_every_data_file(probe)


def test_stale_temp_files_are_cleaned_up(torn_probe):
    probe = torn_probe
    assert probe.swift("PUT", "/torn")[0] in (201, 202)
    victim, name_hash = interrupted_put(probe, "stale", b"stale:" + os.urandom(BIG_BYTES))
    probe.restart_server("object", victim)
    leftover = check_leftover(probe, victim, name_hash)
    old = time.time() - 8 * 24 * 3600           # older than the default reclaim_age (7 days)
    os.utime(leftover, (old, old))
    probe.replicate(list(range(1, probe.layout.nodes + 1)))
    run_daemon(probe, "object-auditor",
               daemon_conf(probe, victim, "object", "object-auditor",
                           "files_per_second = 0\nbytes_per_second = 0\n"))
    assert not os.path.exists(leftover)


# ---- unit level: a real DiskFileWriter in a process that dies ---------------------------------

CHILD = textwrap.dedent("""
    import os, signal, sys
    from ring.hashing import HashSecrets
    from storage_node.diskfile import DiskFileManager
    import storage_node.diskfile as diskfile_module

    root, obj, point = sys.argv[1], sys.argv[2], sys.argv[3]
    manager = DiskFileManager(root, HashSecrets(b"pre", b"suf"), mount_check=False)
    diskfile = manager.get_diskfile("sdb1", 7, "AUTH_a", "c", obj)
    body = b"torn" * 100_000
    writer = diskfile.create(len(body))
    writer.open()
    writer.write(body[:len(body) // 2])
    if point == "mid-body":
        os.kill(os.getpid(), signal.SIGKILL)
    writer.write(body[len(body) // 2:])
    def die(*args):                      # the crash point: footer written and fsynced
        os.kill(os.getpid(), signal.SIGKILL)
    diskfile_module.os.rename = die
    writer.put({"X-Timestamp": sys.argv[4], "Content-Type": "text/plain",
                "Content-Length": str(len(body)), "ETag": writer.etag})
    print("not killed")
""")


def die_while_writing(root: str, obj: str, point: str) -> None:
    result = subprocess.run([sys.executable, "-c", CHILD, root, obj, point,
                             Timestamp.now().internal],
                            cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == -9, result.stdout + result.stderr


@pytest.mark.parametrize("point", ["mid-body", "before-rename"])
def test_writer_killed_before_put_leaves_no_visible_object(tmp_path, point):
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "sdb1"))
    manager = DiskFileManager(root, HashSecrets(b"pre", b"suf"), mount_check=False)
    old = manager.get_diskfile("sdb1", 7, "AUTH_a", "c", "old")
    old_body = os.urandom(200_000)
    old_timestamp = Timestamp.now()
    old.write_whole(old_body, {
        "X-Timestamp": old_timestamp.internal, "Content-Type": "text/plain",
        "Content-Length": str(len(old_body)),
        "ETag": hashlib.md5(old_body, usedforsecurity=False).hexdigest()})

    die_while_writing(root, "old", point)
    die_while_writing(root, "new", point)

    state = old.read_state()
    assert state.data_timestamp == old_timestamp
    reader = old.open()
    try:
        assert b"".join(reader.chunks_all()) == old_body
    finally:
        reader.close()
    assert os.listdir(old.hash_dir) == [f"{old_timestamp.internal}.data"]
    new = manager.get_diskfile("sdb1", 7, "AUTH_a", "c", "new")
    with pytest.raises(DiskFileNotExist):
        new.read_state()
    # Before the rename the hash directory is made (empty) and durable: nothing to read.
    assert not os.path.exists(new.hash_dir) or os.listdir(new.hash_dir) == []
    leftovers = sorted(os.listdir(os.path.join(root, "sdb1", "tmp")))
    assert [name.split(".")[0] for name in leftovers] == sorted([old.name_hash, new.name_hash])
    for name in leftovers:
        path = os.path.join(root, "sdb1", "tmp", name)
        if point == "mid-body":
            with pytest.raises(CorruptFile):
                read_metadata(path)
        else:                                   # complete and durable, just never renamed
            assert read_metadata(path)[0] == 400_000
