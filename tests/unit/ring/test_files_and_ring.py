"""Builder and ring files (round trips, corruption, backups) and the runtime Ring reader."""

from __future__ import annotations

import hashlib
import os
import struct

import numpy as np
import pytest

from ring import HashSecrets, Ring, RingData, RingFileError, hash_path, partition_of
from ring.builder import RingBuilder
from ring.builder_file import BACKUP_DIR, builder_from_bytes, load_builder, save_builder
from ring.hashing import load_hash_secrets

SECRETS = HashSecrets(b"pre", b"suf")


def small_builder(replicas: float = 3, part_power: int = 8, regions: int = 2,
                  zones: int = 3, hosts: int = 2) -> RingBuilder:
    builder = RingBuilder(part_power, replicas, 1)
    for region in range(1, regions + 1):
        for zone in range(1, zones + 1):
            for host in range(1, hosts + 1):
                for disk in "ab":
                    builder.add_device(region=region, zone=zone, ip=f"127.{region}.{zone}.{host}",
                                       port=6200, device=f"sd{disk}", weight=100)
    builder.rebalance(seed=7)
    return builder


def test_partition_matches_swifts_definition():
    digest = hashlib.md5(b"pre/AUTH_test/photos/cat.jpg" + b"suf").digest()
    expected = struct.unpack_from(">I", digest)[0] >> (32 - 10)
    assert hash_path("AUTH_test", "photos", "cat.jpg", SECRETS) == digest
    assert partition_of(digest, 10) == expected
    with pytest.raises(ValueError):
        hash_path("a", None, "o")


def test_hash_secrets_from_config(tmp_path):
    conf = tmp_path / "ringstack.conf"
    conf.write_text("[ringstack-hash]\npath_prefix = abc\npath_suffix = xyz\n")
    assert load_hash_secrets(str(conf)) == HashSecrets(b"abc", b"xyz")
    conf.write_text("[ringstack-hash]\n")
    with pytest.raises(Exception, match="path_prefix or path_suffix"):
        load_hash_secrets(str(conf))


def test_builder_file_round_trip_and_backups(tmp_path):
    builder = small_builder()
    builder.remove_device(3)
    path = str(tmp_path / "object.builder")
    save_builder(builder, path)
    loaded = load_builder(path)
    assert loaded.devices == builder.devices and loaded.removed == {3}
    assert np.array_equal(loaded.assignment, builder.assignment)
    assert np.array_equal(loaded.moved_at_hour, builder.moved_at_hour)
    assert (loaded.id, loaded.version, loaded.replicas) == (builder.id, builder.version, 3.0)
    save_builder(loaded, path)
    backups = os.listdir(tmp_path / BACKUP_DIR)
    assert len(backups) == 1 and backups[0].endswith(".object.builder")


@pytest.mark.parametrize("damage", ["magic", "flip", "truncate", "empty"])
def test_corrupt_files_are_refused(tmp_path, damage):
    builder = small_builder()
    for blob, loader in ((builder.ring_data().to_bytes(), RingData.from_bytes),
                         (open_builder_bytes(builder), builder_from_bytes)):
        data = bytearray(blob)
        if damage == "magic":
            data[0:2] = b"XX"
        elif damage == "flip":
            data[len(data) // 2] ^= 0xFF
        elif damage == "truncate":
            data = data[: len(data) - 100]
        else:
            data = bytearray()
        with pytest.raises(RingFileError):
            loader(bytes(data), "damaged")


def open_builder_bytes(builder: RingBuilder) -> bytes:
    from ring.builder_file import builder_to_bytes
    return builder_to_bytes(builder)


def test_ring_file_round_trip_and_size(tmp_path):
    builder = small_builder()
    path = str(tmp_path / "object.ring")
    builder.ring_data().save(path)
    data = RingData.load(path)
    assert data.replica_count == 3.0 and data.part_power == 8
    for row, expected in zip(data.replica2part2dev, builder.assignment, strict=True):
        assert row.dtype == np.uint16 and np.array_equal(row, expected)
    assert os.path.getsize(path) < 3 * 256 * 2 + 4096


def test_ring_lookups_follow_the_assignment(tmp_path):
    builder = small_builder()
    path = str(tmp_path / "object.ring")
    builder.ring_data().save(path)
    ring = Ring(path, SECRETS)
    for name in ("a", "b", "c", "ünïcode", "x" * 1000):
        part, nodes = ring.get_nodes("AUTH_t", "cont", name)
        assert part == partition_of(hash_path("AUTH_t", "cont", name, SECRETS), 8)
        assert [n.id for n in nodes] == builder.assignment[:, part].tolist()
        assert [n.index for n in nodes] == [0, 1, 2]
    assert ring.get_part("AUTH_t") == partition_of(hash_path("AUTH_t", secrets=SECRETS), 8)


def test_fractional_replicas_give_some_partitions_more_nodes(tmp_path):
    builder = small_builder(replicas=2.5)
    path = str(tmp_path / "object.ring")
    builder.ring_data().save(path)
    ring = Ring(path, SECRETS)
    counts = [len(ring.get_part_nodes(part)) for part in range(ring.partition_count)]
    assert counts.count(3) == 128 and counts.count(2) == 128
    assert ring.replica_count == 2.5


def test_handoffs_visit_new_regions_then_zones_then_hosts(tmp_path):
    builder = small_builder(replicas=2, regions=3, zones=2, hosts=2)
    path = str(tmp_path / "object.ring")
    builder.ring_data().save(path)
    ring = Ring(path, SECRETS)
    for part in range(0, 256, 17):
        primaries = ring.get_part_nodes(part)
        handoffs = list(ring.get_more_nodes(part))
        assert handoffs == list(ring.get_more_nodes(part))          # deterministic
        ids = [n.id for n in primaries + handoffs]
        assert sorted(ids) == sorted(builder.devices)                # every device once
        regions = {n.region for n in primaries}
        zones = {(n.region, n.zone) for n in primaries}
        hosts = {(n.region, n.zone, n.ip) for n in primaries}
        kinds = []
        for node in handoffs:
            if node.region not in regions:
                kinds.append(0)
            elif (node.region, node.zone) not in zones:
                kinds.append(1)
            elif (node.region, node.zone, node.ip) not in hosts:
                kinds.append(2)
            else:
                kinds.append(3)
            regions.add(node.region)
            zones.add((node.region, node.zone))
            hosts.add((node.region, node.zone, node.ip))
        assert kinds == sorted(kinds), kinds          # new regions, then zones, then hosts
        assert kinds[0] == 0 and 1 in kinds and 2 in kinds
        first = handoffs[0]
        assert first.region not in {n.region for n in primaries}
        assert [n.index for n in handoffs] == list(range(2, 2 + len(handoffs)))
        assert all(n.handoff for n in handoffs)


def test_handoff_load_follows_weight(tmp_path):
    builder = RingBuilder(10, 1, 1)
    for n, weight in enumerate([100, 100, 300]):
        builder.add_device(region=1, zone=n, ip="127.0.0.1", port=6200 + n, device="sd",
                           weight=weight)
    builder.rebalance(seed=1)
    path = str(tmp_path / "r.ring")
    builder.ring_data().save(path)
    ring = Ring(path, SECRETS)
    first = [next(ring.get_more_nodes(p)).id for p in range(ring.partition_count)
             if ring.get_part_nodes(p)[0].id == 0]
    share = first.count(2) / len(first)
    assert 0.65 < share < 0.85      # device 2 holds 3/4 of the other devices' weight


def test_ring_reloads_when_the_file_changes(tmp_path):
    builder = small_builder()
    path = str(tmp_path / "object.ring")
    builder.ring_data().save(path)
    ring = Ring(path, SECRETS, reload_interval_s=0)
    version = ring.version
    builder.set_weight(0, 0)
    builder.pretend_min_part_hours_passed()
    builder.rebalance(seed=8)
    builder.ring_data().save(path)
    ring.get_nodes("a", "c", "o")
    assert ring.version != version
    assert all(n.id != 0 for p in range(256) for n in ring.get_part_nodes(p))
    # A damaged replacement is ignored: the ring keeps serving the last good one.
    with open(path, "r+b") as handle:
        handle.seek(50)
        handle.write(b"garbage")
    assert ring.maybe_reload() is False
    assert ring.get_nodes("a", "c", "o")[1]


def test_missing_ring_file_is_a_clear_error(tmp_path):
    with pytest.raises(RingFileError, match="No such file"):
        Ring(str(tmp_path / "absent.ring"))
