"""storage_node.suffix_hashes: suffix hashes over real object files written by diskfile.

Objects are written with the real `DiskFileManager` into a device in a tmp directory, so the
invalidations come from the real write path; concurrency tests use real threads and flocks.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from common.timestamp import Timestamp
from ring.hashing import HashSecrets
from storage_node import diskfile as diskfile_module
from storage_node import suffix_hashes
from storage_node.diskfile import DiskFileManager
from storage_node.suffix_hashes import (
    HASHES_FILE,
    decode_hashes,
    encode_hashes,
    get_hashes,
    hash_listing,
    list_suffix,
    locked_invalidations,
    parse_suffixes,
    remove_files,
)

SECRETS = HashSecrets(b"", b"suffix-test")
PARTITION = 7


@pytest.fixture
def manager(tmp_path):
    (tmp_path / "sda").mkdir()
    return DiskFileManager(str(tmp_path), SECRETS, mount_check=False)


def partition_dir(manager) -> str:
    return os.path.join(manager.devices_root, "sda", "objects", str(PARTITION))


def put(manager, name: str, body: bytes = b"x", timestamp: Timestamp | None = None):
    diskfile = manager.get_diskfile("sda", PARTITION, "a", "c", name)
    timestamp = timestamp or Timestamp.now()
    diskfile.write_whole(body, {"X-Timestamp": timestamp.internal,
                                "Content-Type": "text/plain",
                                "Content-Length": str(len(body)),
                                "ETag": hashlib.md5(body).hexdigest()})
    return diskfile


def fresh_hashes(part_dir: str) -> dict[str, str]:
    """What a full recalculation from the files gives (the oracle)."""
    result = {}
    for suffix in suffix_hashes.suffix_dirs(part_dir):
        value = hash_listing(list_suffix(part_dir, suffix))
        if value is not None:
            result[suffix] = value
    return result


def test_hashes_cover_every_suffix_and_match_a_full_recalculation(manager):
    diskfiles = [put(manager, f"o{i}") for i in range(20)]
    part_dir = partition_dir(manager)
    hashes = get_hashes(part_dir)
    assert set(hashes) == {d.suffix for d in diskfiles}
    assert hashes == fresh_hashes(part_dir)
    # consumed: the invalidations are folded into the stored file
    assert os.path.getsize(os.path.join(part_dir, diskfile_module.HASHES_INVALID)) == 0
    assert os.path.exists(os.path.join(part_dir, HASHES_FILE))
    assert get_hashes(part_dir) == hashes


def test_a_write_changes_only_its_suffix_hash(manager):
    first = put(manager, "one")
    second = put(manager, "two")
    assert first.suffix != second.suffix
    part_dir = partition_dir(manager)
    before = get_hashes(part_dir)
    put(manager, "two", b"new body")
    with open(os.path.join(part_dir, diskfile_module.HASHES_INVALID)) as handle:
        assert handle.read().split() == [second.suffix]
    after = get_hashes(part_dir)
    assert after[first.suffix] == before[first.suffix]
    assert after[second.suffix] != before[second.suffix]
    assert after == fresh_hashes(part_dir)


def test_rehash_is_lazy_unless_asked(manager):
    diskfile = put(manager, "o")
    part_dir = partition_dir(manager)
    before = get_hashes(part_dir)
    # A change nobody announced (an operator's cp, a quarantine elsewhere): the cached hash
    # stands until the suffix is named for recalculation, as REPLICATE with suffixes does.
    sneaky = Timestamp.now().internal + ".ts"
    with open(os.path.join(diskfile.hash_dir, sneaky), "wb") as handle:
        handle.write(diskfile_module.encode_footer({"X-Timestamp": sneaky[:-3]}, 0))
    assert get_hashes(part_dir) == before
    recalculated = get_hashes(part_dir, [diskfile.suffix])
    assert recalculated[diskfile.suffix] != before[diskfile.suffix]
    assert os.listdir(diskfile.hash_dir) == [sneaky]      # the .data became obsolete


@pytest.mark.parametrize("damage", [b"", b"RSSH\x01garbage", b"not a hashes file at all"])
def test_missing_or_corrupt_hashes_file_means_full_recalculation(manager, damage):
    for i in range(5):
        put(manager, f"o{i}")
    part_dir = partition_dir(manager)
    good = get_hashes(part_dir)
    with open(os.path.join(part_dir, HASHES_FILE), "wb") as handle:
        handle.write(damage)
    assert get_hashes(part_dir) == good
    os.unlink(os.path.join(part_dir, HASHES_FILE))
    assert get_hashes(part_dir) == good


def test_hashes_file_format_round_trips_and_rejects_bit_flips():
    data = encode_hashes({"abc": "0" * 32, "def": None}, "gen")
    assert decode_hashes(data) == ({"abc": "0" * 32, "def": None}, "gen")
    flipped = bytearray(data)
    flipped[-1] ^= 1
    assert decode_hashes(bytes(flipped)) is None
    assert decode_hashes(data[:5]) is None


def test_missing_partition_has_no_hashes_and_is_not_created(manager):
    part_dir = partition_dir(manager)
    assert get_hashes(part_dir) == {}
    assert not os.path.exists(part_dir)


def test_obsolete_files_and_reclaimable_tombstones_are_cleaned(manager):
    old = Timestamp(time.time() - 1000)
    diskfile = put(manager, "gone", timestamp=old)
    diskfile.delete(Timestamp(time.time() - 500))
    keep = put(manager, "kept")
    part_dir = partition_dir(manager)
    # The tombstone is older than reclaim_before: it and its suffix disappear.
    hashes = get_hashes(part_dir, reclaim_before=Timestamp(time.time() - 100))
    assert not os.path.exists(diskfile.hash_dir)
    assert keep.suffix in hashes
    if diskfile.suffix != keep.suffix:
        assert diskfile.suffix not in hashes
        assert not os.path.exists(os.path.dirname(diskfile.hash_dir))


def test_parse_suffixes():
    assert parse_suffixes("abc-012-fff") == ["abc", "012", "fff"]
    for bad in ("abcd", "xyz", "ab-cd", "ABC"):
        with pytest.raises(ValueError):
            parse_suffixes(bad)


def test_writers_wait_for_the_lock_so_no_invalidation_is_lost(manager):
    put(manager, "o")
    part_dir = partition_dir(manager)
    get_hashes(part_dir)
    invalid_path = os.path.join(part_dir, diskfile_module.HASHES_INVALID)
    appended = threading.Event()

    def invalidate():
        diskfile_module.invalidate_suffix(part_dir, "abc")
        appended.set()

    with locked_invalidations(part_dir):
        writer = threading.Thread(target=invalidate)
        writer.start()
        assert not appended.wait(0.3)            # blocked on our flock
        assert os.path.getsize(invalid_path) == 0
    writer.join(5)
    assert appended.is_set()
    with open(invalid_path) as handle:
        assert handle.read() == "abc\n"


def test_concurrent_writes_and_rehashes_converge(manager):
    """Writers (the real diskfile path) and several get_hashes callers race; afterwards the
    stored hashes, folded with what is still invalid, equal a full recalculation."""
    part_dir = partition_dir(manager)
    put(manager, "seed")
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            count = 0
            while not stop.is_set():
                put(manager, f"w{index}-{count % 40}", os.urandom(8))
                count += 1
        except BaseException as err:      # surfaced below
            errors.append(err)

    def hasher() -> None:
        try:
            while not stop.is_set():
                get_hashes(part_dir)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    threads += [threading.Thread(target=hasher) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    stop.set()
    for thread in threads:
        thread.join(10)
    assert not errors
    assert get_hashes(part_dir) == fresh_hashes(part_dir)


def test_remove_files_deletes_only_what_was_listed(manager):
    first = put(manager, "first")
    part_dir = partition_dir(manager)
    snapshot = {first.suffix: list_suffix(part_dir, first.suffix)}
    later = put(manager, "later")            # arrives after the listing
    remove_files(part_dir, snapshot)
    assert not os.path.exists(first.hash_dir)
    assert os.listdir(later.hash_dir)
    assert later.suffix in get_hashes(part_dir)
    remove_files(part_dir, {later.suffix: list_suffix(part_dir, later.suffix)})
    assert not os.path.exists(part_dir)
