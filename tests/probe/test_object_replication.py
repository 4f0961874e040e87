"""Probe: object replication heals a real cluster after a node death and moves data after a
ring change (the all-in-one, real processes, files checked on disk).

- kill -9 an object server during a stream of writes through the proxy: every acknowledged
  object reads back while it is down; after it restarts and every node runs one replicator
  pass, each acknowledged object has exactly its 3 replicas, on its primaries, with the
  right bytes, and no copy is left on a handoff.
- a ring change (a new node in a new zone, rebalance, push the ring): every object stays
  readable throughout; after one replicator pass per node the moved replicas are on their new
  primaries and gone from the old places.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from ring.builder_file import load_builder, save_builder

pytestmark = pytest.mark.slow

WRITES = 60
PROXY_RING_RELOAD_S = 16.0      # the proxy checks its ring files every 15 s


def check_replicas(probe, container: str, bodies: dict[str, bytes]) -> None:
    """Every object: one .data per primary with the right bytes, none anywhere else."""
    ring = probe.object_ring()
    for name, body in bodies.items():
        _, primaries = ring.get_nodes(probe.account, container, name)
        found = probe.data_files(ring, container, name)
        assert sorted(found) == sorted(n.device for n in primaries), (name, found)
        for device, paths in found.items():
            assert len(paths) == 1, (name, device, paths)
            assert probe.read_body(paths[0]) == body, (name, device)


def read_all(probe, container: str, bodies: dict[str, bytes]) -> None:
    for name, body in bodies.items():
        status, _, got = probe.swift("GET", f"/{container}/{name}")
        assert status == 200 and got == body, (name, status)


def test_killed_object_server_is_healed_by_replication(probe):
    assert probe.swift("PUT", "/stream")[0] in (201, 202)
    acknowledged: dict[str, bytes] = {}
    failures: list[str] = []

    def writer() -> None:
        for index in range(WRITES):
            name = f"obj-{index:03d}"
            body = f"{name}:".encode() + os.urandom(1000 + 97 * index)
            try:
                status = probe.swift("PUT", f"/stream/{name}", body)[0]
            except OSError as err:           # not acknowledged: nothing promised
                failures.append(f"{name}: {err}")
                continue
            if status == 201:
                acknowledged[name] = body
            else:
                failures.append(f"{name}: {status}")

    thread = threading.Thread(target=writer)
    thread.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < WRITES // 3 and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    probe.cluster.kill("object-2")              # kill -9, mid-stream
    thread.join(120)
    assert not thread.is_alive()
    assert len(acknowledged) >= WRITES * 0.9, failures
    read_all(probe, "stream", acknowledged)     # while the node is still down

    # Node 2 missed writes (they went to handoffs): it comes back empty-handed for those.
    ring = probe.object_ring()
    missed = [name for name in acknowledged
              if "sdb2" in {n.device for n in ring.get_nodes(probe.account, "stream", name)[1]}
              and "sdb2" not in probe.data_files(ring, "stream", name)]
    assert missed, "no write was routed around the dead node; the test proves nothing"

    port = probe.layout.port("object", 2)
    process = probe.start_server("object", probe.layout.conf_path("object", 2), "object-2",
                                 port)
    with open(os.path.join(probe.layout.run, "object-2.pid"), "w") as handle:
        handle.write(str(process.pid))          # so `ringstack-aio stop` stops it too
    probe.replicate([1, 2, 3, 4])
    check_replicas(probe, "stream", acknowledged)
    read_all(probe, "stream", acknowledged)


def test_ring_change_moves_data_and_keeps_it_readable(probe):
    assert probe.swift("PUT", "/moving")[0] in (201, 202)
    bodies = {f"m-{index:03d}": os.urandom(500 + index) for index in range(40)}
    for name, body in bodies.items():
        assert probe.swift("PUT", f"/moving/{name}", body)[0] == 201
    probe.replicate([1, 2, 3, 4])               # settle anything left from earlier tests
    check_replicas(probe, "moving", bodies)

    # A fifth node in a new zone, with its own object server.
    layout = probe.layout
    port = layout.storage_base_port + 33        # inside the cluster's free port block
    devices = os.path.join(probe.data_dir, "srv", "5")
    os.makedirs(os.path.join(devices, "sdb5"))
    with open(layout.conf_path("object", 1)) as handle:
        conf_text = handle.read()
    conf_text = conf_text.replace(f"bind_port = {layout.port('object', 1)}",
                                  f"bind_port = {port}")
    conf_text = conf_text.replace(f"devices = {layout.devices(1)}", f"devices = {devices}")
    conf_path = layout.conf_path("object", 5)
    with open(conf_path, "w") as handle:
        handle.write(conf_text)
    probe.start_server("object", conf_path, "object-5", port)

    builder_path = os.path.join(probe.etc, "object.builder")
    builder = load_builder(builder_path)
    builder.add_device(region=1, zone=5, ip="127.0.0.1", port=port, device="sdb5",
                       weight=100)
    builder.pretend_min_part_hours_passed()
    builder.rebalance(seed=5)
    builder.validate()
    save_builder(builder, builder_path)
    old_ring = probe.object_ring()
    builder.ring_data().save(os.path.join(probe.etc, "object.ring"))   # the push
    new_ring = probe.object_ring()
    moved = [name for name in bodies
             if {n.device for n in old_ring.get_nodes(probe.account, "moving", name)[1]} !=
             {n.device for n in new_ring.get_nodes(probe.account, "moving", name)[1]}]
    assert moved, "the rebalance moved none of the objects; the test proves nothing"

    # Readable throughout: while the proxy still has the old ring and once it has the new.
    deadline = time.monotonic() + PROXY_RING_RELOAD_S
    while time.monotonic() < deadline:
        read_all(probe, "moving", bodies)
        time.sleep(1.0)

    probe.replicate([1, 2, 3, 4, 5])
    read_all(probe, "moving", bodies)
    check_replicas(probe, "moving", bodies)
    for name in moved:
        assert "sdb5" in probe.data_files(new_ring, "moving", name) or \
            "sdb5" not in {n.device for n in new_ring.get_nodes(probe.account, "moving",
                                                                name)[1]}
