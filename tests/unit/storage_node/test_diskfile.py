"""storage_node.diskfile and storage_node.devices on real files in a temp directory."""

from __future__ import annotations

import errno
import hashlib
import os
import struct
import time

import eventlet
import msgpack
import pytest

from common.timestamp import Timestamp
from ring.hashing import HashSecrets, hash_path
from storage_node import diskfile as diskfile_module
from storage_node import ondisk
from storage_node.devices import (
    DeviceFailed,
    DeviceFull,
    DeviceUnavailable,
    DiskIOPool,
    FreeSpaceReserve,
    check_device,
    translate_os_error,
)
from storage_node.diskfile import (
    TRAILER,
    CorruptFile,
    DiskFileCollision,
    DiskFileDeleted,
    DiskFileExpired,
    DiskFileManager,
    DiskFileNotExist,
    DiskFileQuarantined,
    decode_metadata,
    decode_trailer,
    encode_footer,
    read_metadata,
)

SECRETS = HashSecrets(b"prefix", b"suffix")
T1, T2, T3 = (Timestamp(time.time() - 100 + i) for i in range(3))


@pytest.fixture
def devices(tmp_path):
    root = tmp_path / "srv"
    (root / "sda1").mkdir(parents=True)
    (root / "sdb1").mkdir(parents=True)
    return root


@pytest.fixture
def manager(devices):
    return DiskFileManager(str(devices), SECRETS, mount_check=False, io=DiskIOPool(2),
                           disk_chunk_bytes=1024)


def put_object(manager, body: bytes, timestamp: Timestamp, obj: str = "o",
               extra: dict | None = None, policy: int = 0, partition: int = 7):
    df = manager.get_diskfile("sda1", partition, "a", "c", obj, policy)
    writer = df.create(len(body))
    try:
        writer.open()
        for start in range(0, len(body), 1000):
            writer.write(body[start:start + 1000])
        metadata = {"X-Timestamp": timestamp.internal, "Content-Type": "text/plain",
                    "Content-Length": str(writer.bytes_written), "ETag": writer.etag}
        metadata.update(extra or {})
        writer.put(metadata)
    finally:
        writer.close()
    return df


def read_all(df, **kwargs) -> bytes:
    reader = df.open(**kwargs)
    try:
        return b"".join(reader.chunks_all())
    finally:
        reader.close()


# ---- layout and round trip --------------------------------------------------------------------

def test_layout_round_trip_and_invalidation(manager, devices):
    body = os.urandom(5000)
    df = put_object(manager, body, T1)
    name_hash = hash_path("a", "c", "o", SECRETS).hex()
    hash_dir = devices / "sda1" / "objects" / "7" / name_hash[-3:] / name_hash
    assert df.hash_dir == str(hash_dir)
    assert os.listdir(hash_dir) == [T1.internal + ".data"]
    assert (devices / "sda1" / "objects" / "7" / "hashes.invalid").read_text() == \
        name_hash[-3:] + "\n"
    assert os.listdir(devices / "sda1" / "tmp") == []      # nothing left behind
    state = df.read_state()
    assert state.content_length == 5000 and state.etag == hashlib.md5(body).hexdigest()
    assert state.metadata["name"] == "/a/c/o" and state.data_timestamp == T1
    assert read_all(df) == body
    # The file is body + footer: its first bytes are the body, its tail the trailer.
    raw = (hash_dir / (T1.internal + ".data")).read_bytes()
    assert raw[:5000] == body and raw[-TRAILER.size:][:4] == b"RSMD"
    assert read_metadata(str(hash_dir / (T1.internal + ".data")))[0] == 5000


def test_policy_selects_objects_n(manager, devices):
    put_object(manager, b"x", T1, policy=2)
    assert (devices / "sda1" / "objects-2" / "7").is_dir()
    assert not (devices / "sda1" / "objects").exists()


def test_large_metadata_fits_on_this_filesystem(manager, tmp_path):
    """Swift-legal metadata (90 keys, 4 KiB of user meta) plus large sysmeta: far more than
    the ~4 KiB of xattrs ext4 gives a file, stored and read back intact."""
    user_meta = {f"X-Object-Meta-K{i:02d}": "v" * 40 for i in range(90)}     # ~4.1 KiB
    sysmeta = {f"X-Object-Sysmeta-Big{i}": "s" * 8000 for i in range(4)}     # 32 KiB
    df = put_object(manager, b"hello", T1, extra={**user_meta, **sysmeta})
    state = df.read_state()
    for key, value in {**user_meta, **sysmeta}.items():
        assert state.metadata[key] == value
    assert read_all(df) == b"hello"
    blob_size = len(msgpack.packb(state.datafile_metadata))
    assert blob_size > 36_000
    # Why the footer: the same metadata as one xattr is refused by ext4 here.
    xattr = pytest.importorskip("xattr")
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    try:
        xattr.setxattr(str(probe), "user.swift.metadata", msgpack.packb(
            state.datafile_metadata))
    except OSError:
        pass
    else:
        pytest.skip("this filesystem holds large xattrs; the footer is still what is used")


def test_non_ascii_names_and_values(manager):
    df = manager.get_diskfile("sda1", 1, "AUTH_\u00e9", "c\u2603", "obj/with/\u00fc", 0)
    writer = df.create(None)
    writer.open()
    writer.write(b"data")
    writer.put({"X-Timestamp": T1.internal, "Content-Type": "text/plain",
                "Content-Length": "4", "ETag": writer.etag,
                "X-Object-Meta-Snow": "\u00e2\u0098\u0083"})   # WSGI (latin-1) form of UTF-8
    writer.close()
    state = df.read_state()
    assert state.metadata["name"] == "/AUTH_\u00e9/c\u2603/obj/with/\u00fc"
    assert state.metadata["X-Object-Meta-Snow"] == "\u00e2\u0098\u0083"


# ---- footer format ----------------------------------------------------------------------------

def test_footer_round_trip_and_corruption_detection():
    metadata = {"X-Timestamp": T1.internal, "k": "v"}
    footer = encode_footer(metadata, 10)
    trailer = footer[-TRAILER.size:]
    body_length, meta_length, crc = decode_trailer(trailer, 10 + len(footer))
    assert (body_length, meta_length) == (10, len(footer) - TRAILER.size)
    assert decode_metadata(footer[:meta_length], crc) == metadata
    with pytest.raises(CorruptFile):
        decode_trailer(trailer, 11 + len(footer))                 # size mismatch
    with pytest.raises(CorruptFile):
        decode_trailer(b"XXXX" + trailer[4:], 10 + len(footer))   # bad magic
    with pytest.raises(CorruptFile):
        decode_trailer(trailer[:5] + b"\x00" * 3 + struct.pack(">Q", 2**40) + trailer[16:],
                       10 + len(footer))
    flipped = bytes([footer[0] ^ 1]) + footer[1:meta_length]
    with pytest.raises(CorruptFile):
        decode_metadata(flipped, crc)
    with pytest.raises(TypeError):
        encode_footer({"k": 1}, 0)


# ---- tombstones, fast-POST, cleanup -----------------------------------------------------------

def test_delete_writes_tombstone_and_removes_older_files(manager):
    df = put_object(manager, b"abc", T1)
    df.delete(T2)
    assert os.listdir(df.hash_dir) == [T2.internal + ".ts"]
    with pytest.raises(DiskFileDeleted) as caught:
        df.read_state()
    assert caught.value.timestamp == T2
    _, metadata = read_metadata(os.path.join(df.hash_dir, T2.internal + ".ts"))
    assert metadata == {"X-Timestamp": T2.internal, "name": "/a/c/o"}


def test_newer_put_replaces_older(manager):
    put_object(manager, b"old", T1)
    df = put_object(manager, b"new", T2)
    assert os.listdir(df.hash_dir) == [T2.internal + ".data"]
    assert read_all(df) == b"new"


def test_older_put_after_newer_delete_is_removed_at_once(manager):
    df = manager.get_diskfile("sda1", 7, "a", "c", "o", 0)
    df.delete(T2)
    put_object(manager, b"late", T1)          # a race the server's 409 check lost
    assert os.listdir(df.hash_dir) == [T2.internal + ".ts"]


def test_fast_post_meta(manager):
    df = put_object(manager, b"abc", T1, extra={"X-Object-Meta-A": "1"})
    df.write_metadata({"X-Timestamp": T2.internal, "X-Object-Meta-B": "2"})
    df.write_metadata({"X-Timestamp": T3.internal, "X-Object-Meta-C": "3"})
    assert sorted(os.listdir(df.hash_dir)) == [T1.internal + ".data", T3.internal + ".meta"]
    state = df.read_state()
    assert state.metadata["X-Object-Meta-C"] == "3"
    assert "X-Object-Meta-A" not in state.metadata and "X-Object-Meta-B" not in state.metadata
    assert state.timestamp == T3 and state.data_timestamp == T1
    assert read_all(df) == b"abc"                       # the data was not copied


def test_old_tombstone_reclaimed_on_cleanup(devices):
    manager = DiskFileManager(str(devices), SECRETS, mount_check=False, reclaim_age_s=10)
    df = manager.get_diskfile("sda1", 7, "a", "c", "o", 0)
    df.delete(Timestamp(time.time() - 3600))
    assert not os.path.exists(df.hash_dir)       # reclaimed, and the empty dir removed


# ---- crashes, torn and corrupt files ----------------------------------------------------------

def test_crash_before_rename_leaves_nothing_served(manager, devices):
    df = manager.get_diskfile("sda1", 7, "a", "c", "o", 0)
    writer = df.create(100)
    writer.open()
    writer.write(b"x" * 100)
    # "Crash": the process dies here, before put(). The temp file stays in tmp/ ...
    assert len(os.listdir(devices / "sda1" / "tmp")) == 1
    # ... and no reader ever sees it.
    with pytest.raises(DiskFileNotExist):
        df.read_state()
    writer.close()                              # a live writer cleans up after itself
    assert os.listdir(devices / "sda1" / "tmp") == []


def test_truncated_data_file_is_quarantined(manager, devices):
    df = put_object(manager, b"x" * 3000, T1)
    path = os.path.join(df.hash_dir, T1.internal + ".data")
    with open(path, "r+b") as handle:
        handle.truncate(2000)                   # a torn file (never from our write path)
    with pytest.raises(DiskFileQuarantined):
        df.read_state()
    quarantined = devices / "sda1" / "quarantined" / "objects" / df.name_hash
    assert os.listdir(quarantined) == [T1.internal + ".data"]
    assert not os.path.exists(df.hash_dir)
    with pytest.raises(DiskFileNotExist):
        df.read_state()


def test_md5_mismatch_quarantines_and_never_completes_the_stream(manager, devices):
    body = os.urandom(4000)                     # four 1 KiB disk chunks
    df = put_object(manager, body, T1)
    path = os.path.join(df.hash_dir, T1.internal + ".data")
    with open(path, "r+b") as handle:           # bit rot in the body, footer intact
        handle.seek(10)
        handle.write(bytes([body[10] ^ 0xFF]))
    reader = df.open()
    received = []
    with pytest.raises(DiskFileQuarantined):
        for chunk in reader.chunks_all():
            received.append(chunk)
    reader.close()
    assert len(b"".join(received)) < len(body)  # the last chunk was held back
    assert os.path.isdir(devices / "sda1" / "quarantined" / "objects" / df.name_hash)
    with pytest.raises(DiskFileNotExist):
        df.read_state()


def test_md5_mismatch_of_small_object_is_caught_at_open(manager):
    df = put_object(manager, b"small body", T1)
    path = os.path.join(df.hash_dir, T1.internal + ".data")
    with open(path, "r+b") as handle:
        handle.write(b"S")
    with pytest.raises(DiskFileQuarantined):
        df.open(prefetch_max_bytes=1024)


def test_range_reads_and_prefetched_reads(manager):
    body = bytes(range(256)) * 20
    df = put_object(manager, body, T1)
    reader = df.open()
    assert b"".join(reader.chunks_range(1000, 3100)) == body[1000:3100]
    reader.close()
    reader = df.open(prefetch_max_bytes=10**6)
    assert b"".join(reader.chunks_range(5, 10)) == body[5:10]
    assert b"".join(reader.chunks_all()) == body
    reader.close()


def test_expired_object(manager):
    df = put_object(manager, b"x", T1, extra={"X-Delete-At": str(int(T2.seconds))})
    with pytest.raises(DiskFileExpired) as caught:
        df.read_state(now=T3)
    assert caught.value.timestamp == T1 and caught.value.metadata["X-Delete-At"]
    assert df.read_state(now=T1).content_length == 1
    assert df.read_state(now=T3, open_expired=True).content_length == 1


def test_collision_detected(manager):
    df = put_object(manager, b"x", T1)
    other = manager.get_diskfile("sda1", 7, "a", "c", "o", 0)
    other.name = "/a/c/other"                  # as if another name hashed here
    with pytest.raises(DiskFileCollision):
        other.read_state()
    assert df.read_state().content_length == 1


# ---- durability: the order of fsyncs and renames ----------------------------------------------

def test_write_is_fsynced_before_rename_and_directory_after(manager, monkeypatch):
    events = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        events.append(("fsync", "dir" if os.path.isdir(target) else os.path.basename(target)))
        return real_fsync(fd)

    def rename(src, dst):
        events.append(("rename", os.path.basename(dst)))
        return real_rename(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    put_object(manager, b"durable", T1)
    rename_at = events.index(("rename", T1.internal + ".data"))
    file_fsyncs = [i for i, (kind, what) in enumerate(events)
                   if kind == "fsync" and what.endswith(".tmp")]
    assert file_fsyncs and max(file_fsyncs) < rename_at
    # New directories (partition, suffix, hash) were fsynced into their parents before the
    # rename, and the hash directory after it.
    assert sum(1 for kind, what in events[:rename_at] if what == "dir") >= 3
    assert ("fsync", "dir") in events[rename_at + 1:]


# ---- device errors ----------------------------------------------------------------------------

def test_enospc_while_writing_is_device_full_and_cleans_up(manager, devices, monkeypatch):
    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(diskfile_module, "_write_all", full)
    df = manager.get_diskfile("sda1", 7, "a", "c", "o", 0)
    writer = df.create(10)
    writer.open()
    with pytest.raises(DeviceFull):
        writer.write(b"0123456789")
    writer.close()
    assert os.listdir(devices / "sda1" / "tmp") == []


def test_free_space_reserve(devices):
    assert FreeSpaceReserve.parse("") == FreeSpaceReserve()
    assert FreeSpaceReserve.parse("2%").percent_min == 2.0
    assert FreeSpaceReserve.parse("1048576").bytes_min == 1048576
    with pytest.raises(ValueError):
        FreeSpaceReserve.parse("-1")
    manager = DiskFileManager(str(devices), SECRETS, mount_check=False,
                              reserve=FreeSpaceReserve(bytes_min=1 << 62))
    with pytest.raises(DeviceFull):
        manager.get_diskfile("sda1", 7, "a", "c", "o", 0).create(1).open()


def test_translate_os_error():
    assert isinstance(translate_os_error(OSError(errno.ENOSPC, "x"), "d"), DeviceFull)
    assert isinstance(translate_os_error(OSError(errno.EDQUOT, "x"), "d"), DeviceFull)
    assert isinstance(translate_os_error(OSError(errno.EIO, "x"), "d"), DeviceFailed)
    assert isinstance(translate_os_error(OSError(errno.EROFS, "x"), "d"), DeviceFailed)
    assert translate_os_error(OSError(errno.ENOENT, "x"), "d") is None


def test_mount_check(devices, monkeypatch):
    with pytest.raises(DeviceUnavailable):
        check_device(str(devices), "sda1", mount_check=True)      # a plain directory
    with pytest.raises(DeviceUnavailable):
        check_device(str(devices), "nope", mount_check=False)
    assert check_device(str(devices), "sda1", mount_check=False).endswith("sda1")
    monkeypatch.setattr(os.path, "ismount", lambda path: True)
    assert check_device(str(devices), "sda1", mount_check=True).endswith("sda1")


def test_io_pool_bounds_each_device_and_keeps_the_hub_free():
    pool = DiskIOPool(2)
    running: dict[str, int] = {"sda": 0, "sdb": 0}
    peak: dict[str, int] = {"sda": 0, "sdb": 0}
    hub_ticks = []

    def blocking(device):
        running[device] += 1
        peak[device] = max(peak[device], running[device])
        time.sleep(0.05)                        # a real blocking call, in a thread
        running[device] -= 1

    def ticker():
        for _ in range(10):
            hub_ticks.append(time.monotonic())
            eventlet.sleep(0.01)

    threads = [eventlet.spawn(pool.run, dev, blocking, dev)
               for dev in ("sda",) * 6 + ("sdb",) * 2]
    tick_thread = eventlet.spawn(ticker)
    for thread in threads:
        thread.wait()
    tick_thread.wait()
    assert peak == {"sda": 2, "sdb": 2}
    assert len(hub_ticks) == 10                 # the hub kept running meanwhile


def test_io_pool_translates_errors_inline_too():
    def failing():
        raise OSError(errno.EIO, "boom")

    with pytest.raises(DeviceFailed):
        DiskIOPool(0).run("sda", failing)
    with pytest.raises(DeviceFailed):
        DiskIOPool(1).run("sda", failing)


def test_orphan_meta_alone_is_not_an_object(manager):
    df = manager.get_diskfile("sda1", 7, "a", "c", "o", 0)
    df.write_metadata({"X-Timestamp": T1.internal})
    assert ondisk.get_ondisk_files(os.listdir(df.hash_dir)).meta_file is not None
    with pytest.raises(DiskFileNotExist):
        df.read_state()
