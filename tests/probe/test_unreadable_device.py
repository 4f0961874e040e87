"""Probe: a device that is gone (unmounted) on a real cluster, then removed from the ring.

Node 2's servers are restarted with `mount_check = true`; its device `sdb2` is a plain
directory, not a mount point, exactly what an unmounted disk leaves behind. So every request
for sdb2 is answered 507 (checked directly on its object server), and:

- reads through the proxy of objects written before still return the right bytes (other
  replicas), and writes and overwrites through the proxy still succeed, 3 copies each, none on
  sdb2;
- after `ringstack-ring-builder object.builder remove --device sdb2`, a rebalance (which writes
  `<data>/etc/object.ring`: the push) and one object replicator pass per node, every object has
  exactly one copy of its newest version on each of its new primaries and none elsewhere in the
  ring; the proxy (which reloads its ring) still serves every object. The files left on the
  "unmounted" sdb2 are never read: node 2's replicator skips the unmounted device too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from ring import Ring
from tests.functional.cluster import REPO
from tests.probe.conftest import ProbeCluster, probe_cluster

pytestmark = pytest.mark.slow

DEAD_NODE = 2
DEAD_DEVICE = f"sdb{DEAD_NODE}"
PROXY_RING_RELOAD_S = 16.0      # the proxy checks its ring files every 15 s


@pytest.fixture(scope="module")
def dead_probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProbeCluster]:
    with probe_cluster(str(tmp_path_factory.mktemp("probe-unmounted")),
                       servers_only=True) as running:
        yield running


def body_for(name: str, version: int) -> bytes:
    # Sizes on both write paths of the object server: read-whole (small) and streamed.
    size = 5_000 if int(name[-1]) % 2 else 120_000
    return f"{name}:v{version}:".encode() + os.urandom(size)


def read_all(probe: ProbeCluster, container: str, bodies: dict[str, bytes]) -> None:
    for name, body in bodies.items():
        status, _, got = probe.swift("GET", f"/{container}/{name}")
        assert status == 200 and got == body, (name, status, len(got))


def copies(probe: ProbeCluster, ring: Ring, container: str, name: str) -> dict[str, list[str]]:
    """The object's .data files on the devices of `ring` (what is on sdb2 does not count:
    it is unmounted)."""
    in_ring = {device.device for device in ring.devices if device is not None}
    return {device: paths for device, paths in probe.data_files(ring, container, name).items()
            if device in in_ring and device != DEAD_DEVICE}


def ring_builder(probe: ProbeCluster, *args: str) -> str:
    result = subprocess.run([sys.executable, os.path.join(REPO, "bin", "ringstack-ring-builder"),
                             os.path.join(probe.etc, "object.builder"), *args],
                            cwd=REPO, env=probe._env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode in (0, 1), result.stdout + result.stderr   # 1: a warning
    return result.stdout


def test_unmounted_device_is_routed_around_and_rebuilt_elsewhere(dead_probe):
    probe = dead_probe
    assert probe.swift("PUT", "/gone")[0] in (201, 202)
    ring = probe.object_ring()
    bodies = {f"old-{index:03d}": body_for(f"old-{index:03d}", 1) for index in range(30)}
    for name, body in bodies.items():
        assert probe.swift("PUT", f"/gone/{name}", body)[0] == 201, name
    on_dead = [name for name in bodies
               if DEAD_DEVICE in probe.data_files(ring, "gone", name)]
    assert len(on_dead) >= 10, on_dead

    # The disk goes away: node 2's servers now check that their device is a mount point.
    for kind in ("object", "container", "account"):
        probe.set_default_option(kind, DEAD_NODE, "mount_check", "true")
        probe.restart_server(kind, DEAD_NODE)
    part = ring.get_part(probe.account, "gone", on_dead[0])
    path = f"/{DEAD_DEVICE}/{part}/{probe.account}/gone/{on_dead[0]}"
    assert probe.direct(DEAD_NODE, "GET", path)[0] == 507
    assert probe.direct(DEAD_NODE, "PUT", path, {
        "X-Timestamp": f"{time.time():.5f}", "Content-Type": "text/plain",
        "Content-Length": "1"}, b"x")[0] == 507

    # Reads are routed around it (twice: both proxy workers), writes land on handoffs.
    read_all(probe, "gone", bodies)
    read_all(probe, "gone", bodies)
    dead_files_before = sorted(
        path for name in bodies for path in probe.data_files(ring, "gone", name).get(
            DEAD_DEVICE, []))
    for index in range(20):
        name = f"new-{index:03d}"
        bodies[name] = body_for(name, 1)
    for name in on_dead[:8]:                    # overwrites: sdb2 keeps a stale version
        bodies[name] = body_for(name, 2)
    for name in [n for n in bodies if n.startswith("new-")] + on_dead[:8]:
        assert probe.swift("PUT", f"/gone/{name}", bodies[name])[0] == 201, name
    read_all(probe, "gone", bodies)
    for name in bodies:
        # Old objects that had a copy on sdb2 now have 2 readable ones; all others have 3
        # (new writes and overwrites: 2 primaries and a handoff standing in for sdb2).
        expected = 2 if name in on_dead[8:] else 3
        found = copies(probe, ring, "gone", name)
        fresh = [device for device, paths in found.items()
                 if probe.read_body(max(paths)) == bodies[name]]
        assert len(fresh) == len(found) == expected, (name, found, fresh)
    assert sorted(path for name in bodies for path in probe.data_files(ring, "gone", name).get(
        DEAD_DEVICE, [])) == dead_files_before, "a write reached the unmounted device"

    # The operator removes the device from the ring and pushes the ring.
    ring_builder(probe, "remove", "--device", DEAD_DEVICE, "--yes")
    ring_builder(probe, "pretend_min_part_hours_passed")
    ring_builder(probe, "rebalance")
    new_ring = probe.object_ring()
    assert sorted(d.device for d in new_ring.devices if d is not None) == \
        sorted(d.device for d in ring.devices if d is not None and d.device != DEAD_DEVICE)

    probe.replicate([1, 2, 3, 4])
    for name, body in bodies.items():
        found = copies(probe, new_ring, "gone", name)
        homes = {n.device for n in new_ring.get_nodes(probe.account, "gone", name)[1]}
        assert sorted(found) == sorted(homes) and len(homes) == 3, (name, found, homes)
        for device, paths in found.items():
            assert len(paths) == 1, (name, device, paths)
            assert probe.read_body(paths[0]) == body, (name, device)
    assert sorted(path for name in bodies for path in probe.data_files(ring, "gone", name).get(
        DEAD_DEVICE, [])) == dead_files_before, "the unmounted device was touched"

    # The proxy picks the new ring up and serves everything from the new primaries.
    time.sleep(PROXY_RING_RELOAD_S)
    read_all(probe, "gone", bodies)
