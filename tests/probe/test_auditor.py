"""Probe: bit rot on a real cluster. Bytes flipped in one replica's .data file: GET through the
proxy still returns the right bytes (the object server checks the MD5 while streaming and the
proxy reads another replica); `ringstack-server object-auditor CONF --once` quarantines a bad
copy nobody has read; one object replicator pass per node puts a good copy back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.functional.cluster import REPO

pytestmark = pytest.mark.slow


def daemon_conf(probe, node: int, server_kind: str, section: str, options: str = "") -> str:
    """The server's [DEFAULT] of `node` (devices, swift_dir) plus the daemon's section, with
    the node's own recon cache directory."""
    with open(probe.layout.conf_path(server_kind, node)) as handle:
        default = handle.read().split(f"\n[{server_kind}-server]")[0]
    path = os.path.join(probe.etc, section, f"{node}.conf")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(default.rstrip() + f"\n\n[{section}]\n{options}"
                     f"recon_cache_path = {recon_dir(probe, node)}\n")
    return path


def recon_dir(probe, node: int) -> str:
    return os.path.join(probe.data_dir, "recon", str(node))


def run_daemon(probe, daemon: str, conf: str) -> str:
    result = subprocess.run([sys.executable, os.path.join(REPO, "bin", "ringstack-server"),
                             daemon, conf, "--once"], cwd=REPO, env=probe._env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def node_of_device(device: str) -> int:
    return int(device.removeprefix("sdb"))


def flip(path: str, offset: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


def test_flipped_bytes_are_served_right_quarantined_and_restored(probe):
    assert probe.swift("PUT", "/rot")[0] in (201, 202)
    read_body, quiet_body = os.urandom(300_000), os.urandom(200_000)
    assert probe.swift("PUT", "/rot/read", read_body)[0] == 201
    assert probe.swift("PUT", "/rot/quiet", quiet_body)[0] == 201
    ring = probe.object_ring()

    # A copy read by clients: every GET still returns the right bytes.
    read_files = probe.data_files(ring, "rot", "read")
    assert len(read_files) == 3
    for paths in read_files.values():
        flip(paths[0], 1234)
        break
    for _ in range(3):
        status, _headers, body = probe.swift("GET", "/rot/read")
        assert status == 200 and body == read_body

    # A copy nobody reads: the auditor finds it.
    quiet_files = probe.data_files(ring, "rot", "quiet")
    device, [bad_path] = sorted(quiet_files.items())[0]
    flip(bad_path, 99_999)
    node = node_of_device(device)
    run_daemon(probe, "object-auditor",
               daemon_conf(probe, node, "object", "object-auditor",
                           "files_per_second = 0\nbytes_per_second = 0\n"))
    name_hash = os.path.basename(os.path.dirname(bad_path))
    quarantine = os.path.join(probe.layout.devices(node), device, "quarantined", "objects")
    assert any(entry.startswith(name_hash) for entry in os.listdir(quarantine))
    assert not os.path.exists(bad_path)
    with open(os.path.join(recon_dir(probe, node), "object.recon")) as handle:
        stats = json.load(handle)["object_auditor_stats"]
    assert stats["quarantined"] >= 1 and stats["devices"][device]["quarantined"] >= 1
    status, _headers, body = probe.swift("GET", "/rot/quiet")
    assert status == 200 and body == quiet_body

    # Replication puts three good copies back for both objects.
    probe.replicate(list(range(1, probe.layout.nodes + 1)))
    for name, body in (("read", read_body), ("quiet", quiet_body)):
        found = probe.data_files(ring, "rot", name)
        assert len(found) == 3, (name, found)
        for paths in found.values():
            assert probe.read_body(paths[0]) == body
