"""Probe: a full device on a real cluster. Node 2's device `sdb2` is its own small tmpfs,
mounted before the cluster starts and then filled to ENOSPC with a ballast file (the shared
disk is never filled).

- PUTs through the proxy still succeed with 3 replicas: the full device answers 507 (checked
  directly on its object server) and a handoff device takes its copy; every object reads back.
- Once the ballast is removed, one object replicator pass per node moves every handoff copy
  home: each object has exactly one .data per primary (sdb2 included), with the right bytes,
  and none is left on a handoff.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from ring import Ring
from tests.probe.conftest import ProbeCluster, probe_cluster

pytestmark = pytest.mark.slow

FULL_NODE = 2
FULL_DEVICE = f"sdb{FULL_NODE}"
TMPFS_BYTES = 32 * 1024 * 1024
STREAMED_BYTES = 150_000        # above the object server's disk chunk: checked before 100
SMALL_BYTES = 10_000            # read whole, then written in one trip to a disk thread
OBJECTS = 24


def mount_tmpfs(path: str, size_bytes: int) -> None:
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", path],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")


def unmount(path: str) -> None:
    for attempt in range(20):
        if not os.path.ismount(path):
            return
        if subprocess.run(["umount", path], capture_output=True).returncode == 0:
            return
        time.sleep(0.5 if attempt < 19 else 0)
    subprocess.run(["umount", "-l", path], check=True)     # busy to the end: detach it


@pytest.fixture(scope="module")
def full_probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProbeCluster]:
    data_dir = str(tmp_path_factory.mktemp("probe-full"))
    device = os.path.join(data_dir, "srv", str(FULL_NODE), FULL_DEVICE)
    os.makedirs(device)
    mount_tmpfs(device, TMPFS_BYTES)
    try:
        with probe_cluster(data_dir, servers_only=True) as running:
            yield running
    finally:
        unmount(device)


def fill(path: str) -> None:
    """Write `path` until the filesystem says ENOSPC (big writes, then ever smaller)."""
    chunk = b"\0" * (1024 * 1024)
    with open(path, "wb", buffering=0) as handle:
        while len(chunk) >= 512:
            try:
                while True:
                    handle.write(chunk)
            except OSError as err:
                assert err.errno == errno.ENOSPC, err
                chunk = chunk[:len(chunk) // 4]


def free_bytes(path: str) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def primaries(probe: ProbeCluster, ring: Ring, container: str, name: str) -> set[str]:
    return {node.device for node in ring.get_nodes(probe.account, container, name)[1]}


def names_on_full_device(probe: ProbeCluster, ring: Ring, container: str, prefix: str,
                         count: int) -> list[str]:
    """`count` object names whose primaries include the full device."""
    names = []
    index = 0
    while len(names) < count:
        name = f"{prefix}-{index:03d}"
        if FULL_DEVICE in primaries(probe, ring, container, name):
            names.append(name)
        index += 1
    return names


def check_handoff_copies(probe: ProbeCluster, ring: Ring, container: str,
                         bodies: dict[str, bytes]) -> None:
    """While the device is full: 3 copies each, none on it, one on a handoff for each object
    the full device is a primary of."""
    for name, body in bodies.items():
        found = probe.data_files(ring, container, name)
        assert FULL_DEVICE not in found, (name, found)
        assert len(found) == 3, (name, found)
        homes = primaries(probe, ring, container, name)
        assert len(set(found) - homes) == 1, (name, sorted(found), sorted(homes))
        for paths in found.values():
            assert len(paths) == 1 and probe.read_body(paths[0]) == body, (name, paths)


def check_home(probe: ProbeCluster, ring: Ring, container: str,
               bodies: dict[str, bytes]) -> None:
    """Exactly one copy per primary, the right bytes, nothing on a handoff."""
    for name, body in bodies.items():
        found = probe.data_files(ring, container, name)
        assert sorted(found) == sorted(primaries(probe, ring, container, name)), (name, found)
        for device, paths in found.items():
            assert len(paths) == 1, (name, device, paths)
            assert probe.read_body(paths[0]) == body, (name, device)


def read_all(probe: ProbeCluster, container: str, bodies: dict[str, bytes]) -> None:
    for name, body in bodies.items():
        status, _, got = probe.swift("GET", f"/{container}/{name}")
        assert status == 200 and got == body, (name, status, len(got))


def fill_device(probe: ProbeCluster) -> str:
    device = os.path.join(probe.layout.devices(FULL_NODE), FULL_DEVICE)
    assert os.path.ismount(device)
    ballast = os.path.join(device, "ballast")
    fill(ballast)
    assert free_bytes(device) < STREAMED_BYTES, free_bytes(device)
    return ballast


def test_small_write_to_a_full_device_goes_to_a_handoff(full_probe):
    """A body small enough for the object server's one-trip write path (read whole, then
    written): the first such PUT after the device filled up must still get 3 copies. Runs
    first in this module: before any 507 has error-limited the full node in the proxy."""
    probe = full_probe
    assert probe.swift("PUT", "/small")[0] in (201, 202)
    ring = probe.object_ring()
    names = names_on_full_device(probe, ring, "small", "tiny", 3)
    bodies = {name: name.encode() + os.urandom(SMALL_BYTES) for name in names}
    ballast = fill_device(probe)
    try:
        for name, body in bodies.items():
            assert probe.swift("PUT", f"/small/{name}", body)[0] == 201, name
        check_handoff_copies(probe, ring, "small", bodies)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(ballast)


def test_writes_go_to_handoffs_and_move_home_when_space_returns(full_probe):
    probe = full_probe
    assert probe.swift("PUT", "/full")[0] in (201, 202)
    ring = probe.object_ring()
    names = names_on_full_device(probe, ring, "full", "big", OBJECTS)
    bodies = {name: name.encode() + os.urandom(STREAMED_BYTES) for name in names}
    ballast = fill_device(probe)
    try:
        # The device itself refuses: 507 from its own object server.
        part, nodes = ring.get_nodes(probe.account, "full", names[0])
        assert FULL_DEVICE in {n.device for n in nodes}
        status, _, _ = probe.direct(FULL_NODE, "PUT", f"/{FULL_DEVICE}/{part}/{probe.account}"
                                    f"/full/{names[0]}", {
                                        "X-Timestamp": f"{time.time():.5f}",
                                        "Content-Type": "application/octet-stream",
                                        "Content-Length": str(STREAMED_BYTES)},
                                    b"x" * STREAMED_BYTES)
        assert status == 507
        assert not probe.data_files(ring, "full", names[0])

        for name, body in bodies.items():
            assert probe.swift("PUT", f"/full/{name}", body)[0] == 201, name
        check_handoff_copies(probe, ring, "full", bodies)
        read_all(probe, "full", bodies)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(ballast)

    probe.replicate([1, 2, 3, 4])
    check_home(probe, ring, "full", bodies)
    read_all(probe, "full", bodies)
