"""Objects on disk: where each version lives, its file format, and durable writes and reads.

Layout (Swift's)::

    <devices>/<dev>/objects[-N]/<part>/<suffix>/<hash>/<timestamp>.data|.ts|.meta
    <devices>/<dev>/objects[-N]/<part>/hashes.invalid    suffixes changed since the last rehash
    <devices>/<dev>/tmp/                                 writes in progress, never read
    <devices>/<dev>/quarantined/objects[-N]/<hash>[-<uuid>]/   bad objects moved aside

`hash` is `ring.hash_path(a, c, o, secrets).hex()`, `suffix` its last 3 hex digits, `N` the
storage policy index (none for policy 0). Which files of a hash directory count is decided by
the pure rules in `storage_node.ondisk`.

File format: metadata lives in a footer inside the file, never in xattrs
--------------------------------------------------------------------------
Every `.data`, `.meta` and `.ts` file is::

    [body: body_length bytes][metadata: msgpack map str -> str][trailer: 24 bytes]
    trailer = ">4sB3xQII": magic b"RSMD", format version 1, 3 zero bytes,
              body_length (u64), metadata_length (u32), crc32(metadata) (u32)

`.meta` and `.ts` files have an empty body. A reader takes the last 24 bytes, checks the
magic, the version and that `body_length + metadata_length + 24` is exactly the file size,
reads the metadata and checks its CRC. Anything else is a corrupt file: the hash directory is
quarantined and the object reads as missing, so the proxy goes to another replica.

Why not xattrs, as Swift does: ext4 here gives a file about 4 KiB of xattrs in total, and
Swift's legal metadata (90 user keys, 4096 bytes of user metadata, plus system metadata and
the headers Swift keeps) is larger; Swift answers 503 on such a PUT. A footer has no size
limit from the filesystem, needs no second code path for "small" and "large" metadata, is
written by the same write() and made durable by the same fsync as the body, travels with the
file through any copy or rsync (xattrs are silently dropped by tools without -X), and is
replaced atomically with the file by the rename. The cost is one pread of the file's tail
before a GET or HEAD (the body length comes from the trailer, so the body is never scanned).
The footer sits after the body because a PUT only knows the body's MD5 (the ETag) at its end:
a header would need the metadata before the body arrives.

Durability: a write goes to a temp file in `<dev>/tmp`, is fsync'ed, renamed into the hash
directory (created with each new directory fsync'ed into its parent), and the hash directory
is fsync'ed: an acknowledged write survives a power cut, and a crash before the rename leaves
only a temp file that no reader ever looks at. Then the suffix is appended to
`hashes.invalid` and files made obsolete by the write are removed.

Reads check the body's MD5 against the stored ETag while streaming a whole object; the last
chunk is held back until the check passes, and on a mismatch the hash directory is quarantined
and the stream ends early with an error, so a client never sees wrong bytes with a success.
Objects no bigger than one disk chunk are read and checked before the response starts
(`prefetch_max_bytes`), so those answer a clean 404 instead of a broken stream.

Every blocking call runs through the device's `DiskIOPool` (threads, bounded per device), so
callers on the eventlet hub may call the public methods here directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import logging
import os
import struct
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import msgpack

from common.timestamp import InvalidTimestamp, Timestamp
from ring.hashing import HashSecrets, hash_path
from storage_node import ondisk
from storage_node.devices import DiskIOPool, FreeSpaceReserve, check_device
from storage_node.durable import fsync_dir, makedirs_durable

T = TypeVar("T")

TRAILER = struct.Struct(">4sB3xQII")
TRAILER_MAGIC = b"RSMD"
FORMAT_VERSION = 1
# Far above any legal metadata (~100 headers of at most 8 KiB); a trailer claiming more is
# corrupt, and the bound keeps a bad trailer from making us allocate gigabytes.
MAX_METADATA_BYTES = 4 * 1024 * 1024
TMP_DIR = "tmp"
QUARANTINE_DIR = "quarantined"
HASHES_INVALID = "hashes.invalid"
DEFAULT_DISK_CHUNK_BYTES = 65536
DEFAULT_RECLAIM_AGE_S = 7 * 24 * 3600
EMPTY_ETAG = hashlib.md5(b"", usedforsecurity=False).hexdigest()
# Attempts at listing a hash directory and opening what it names, when a concurrent write
# replaces the files between the two steps.
OPEN_ATTEMPTS = 3


def data_dir_name(policy_index: int) -> str:
    """`objects` for policy 0, `objects-N` for policy N (Swift's names)."""
    return "objects" if policy_index == 0 else f"objects-{policy_index}"


# ---- errors -----------------------------------------------------------------------------------

class DiskFileError(Exception):
    """Base of the object-level errors below (device errors come from storage_node.devices)."""


class DiskFileNotExist(DiskFileError):
    """No object to serve; `timestamp` is set when something newer than nothing is known."""

    def __init__(self, message: str = "", timestamp: Timestamp | None = None):
        super().__init__(message or "object not found")
        self.timestamp = timestamp


class DiskFileDeleted(DiskFileNotExist):
    """The current file is a tombstone (timestamp: when it was deleted)."""


class DiskFileExpired(DiskFileDeleted):
    """The object exists but its X-Delete-At has passed (metadata: what it holds)."""

    def __init__(self, message: str, timestamp: Timestamp, metadata: dict[str, str]):
        super().__init__(message, timestamp)
        self.metadata = metadata


class DiskFileQuarantined(DiskFileNotExist):
    """The object was corrupt and has been moved aside."""


class DiskFileCollision(DiskFileError):
    """The hash directory holds a different name (an MD5 collision, or a misplaced file)."""


class DiskFileStateChanged(DiskFileError):
    """The files kept changing under a reader; the client should retry."""


class CorruptFile(DiskFileError):
    """A file whose footer or body does not check out (internal: leads to quarantine)."""


# ---- the footer format ------------------------------------------------------------------------

def encode_footer(metadata: Mapping[str, str], body_length: int) -> bytes:
    """The metadata and trailer that follow a body of `body_length` bytes."""
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"metadata must map str to str, not {key!r}: {value!r}")
    blob = msgpack.packb(dict(metadata), use_bin_type=True)
    if len(blob) > MAX_METADATA_BYTES:
        raise ValueError(f"metadata of {len(blob)} bytes exceeds {MAX_METADATA_BYTES}")
    return blob + TRAILER.pack(TRAILER_MAGIC, FORMAT_VERSION, body_length, len(blob),
                               zlib.crc32(blob))


def decode_trailer(trailer: bytes, file_size: int) -> tuple[int, int, int]:
    """(body_length, metadata_length, metadata_crc) from a file's last TRAILER.size bytes."""
    if len(trailer) != TRAILER.size:
        raise CorruptFile(f"file too short for a trailer ({file_size} bytes)")
    magic, version, body_length, metadata_length, crc = TRAILER.unpack(trailer)
    if magic != TRAILER_MAGIC:
        raise CorruptFile("no metadata trailer (bad magic)")
    if version != FORMAT_VERSION:
        raise CorruptFile(f"unknown footer format version {version}")
    if metadata_length > MAX_METADATA_BYTES:
        raise CorruptFile(f"metadata length {metadata_length} out of range")
    if body_length + metadata_length + TRAILER.size != file_size:
        raise CorruptFile(f"trailer sizes ({body_length} + {metadata_length}) do not match "
                          f"the file size {file_size}")
    return body_length, metadata_length, crc


def decode_metadata(blob: bytes, crc: int) -> dict[str, str]:
    if zlib.crc32(blob) != crc:
        raise CorruptFile("metadata checksum mismatch")
    try:
        metadata = msgpack.unpackb(blob, raw=False)
    except (ValueError, msgpack.UnpackException) as err:
        raise CorruptFile(f"undecodable metadata: {err}") from None
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise CorruptFile("metadata is not a map of strings")
    return metadata


def read_footer(fd: int) -> tuple[int, dict[str, str]]:
    """(body_length, metadata) of an open file. Blocking."""
    file_size = os.fstat(fd).st_size
    if file_size < TRAILER.size:
        raise CorruptFile(f"file too short for a trailer ({file_size} bytes)")
    trailer = os.pread(fd, TRAILER.size, file_size - TRAILER.size)
    body_length, metadata_length, crc = decode_trailer(trailer, file_size)
    blob = os.pread(fd, metadata_length, body_length)
    if len(blob) != metadata_length:
        raise CorruptFile("short read of metadata")
    return body_length, decode_metadata(blob, crc)


def read_metadata(path: str) -> tuple[int, dict[str, str]]:
    """(body_length, metadata) of a .data/.meta/.ts file, for tools (auditor, replicator)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return read_footer(fd)
    finally:
        os.close(fd)


# ---- filesystem steps (fsync discipline: storage_node.durable) -----------------------------------

def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def invalidate_suffix(partition_dir: str, suffix: str) -> None:
    """Tell the replicator a suffix changed: one O_APPEND line, under an flock on the file.

    The lock is the one `storage_node.suffix_hashes` holds while it reads and truncates the
    file: without it a line appended between that read and the truncate would be lost."""
    fd = os.open(os.path.join(partition_dir, HASHES_INVALID),
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)      # released by close()
        os.write(fd, suffix.encode("ascii") + b"\n")
    finally:
        os.close(fd)


def quarantine_hash_dir(device_path: str, datadir: str, hash_dir: str, partition_dir: str,
                        suffix: str, reason: str, logger: logging.Logger) -> str | None:
    """Move a hash directory to `<dev>/quarantined/<datadir>/` (a uuid suffix when the name is
    taken), fsync both directories and invalidate the suffix so the replicator restores it;
    None if the directory is already gone. Works from the path alone, so the auditor can
    quarantine files whose footer (and so whose object name) is unreadable."""
    root = os.path.join(device_path, QUARANTINE_DIR, datadir)
    os.makedirs(root, exist_ok=True)
    destination = os.path.join(root, os.path.basename(hash_dir))
    try:
        os.rename(hash_dir, destination)
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
        destination = f"{destination}-{uuid.uuid4().hex}"
        os.rename(hash_dir, destination)
    fsync_dir(root)
    fsync_dir(os.path.dirname(hash_dir))
    invalidate_suffix(partition_dir, suffix)
    logger.error("quarantined %s to %s: %s", hash_dir, destination, reason)
    return destination


def cleanup_ondisk_files(hash_dir: str,
                         reclaim_before: Timestamp | None = None) -> ondisk.OnDiskState:
    """Remove a hash directory's obsolete files (and the directory once empty). Blocking."""
    try:
        names = os.listdir(hash_dir)
    except (FileNotFoundError, NotADirectoryError):
        return ondisk.OnDiskState()
    state = ondisk.get_ondisk_files(names, reclaim_before)
    for name in state.obsolete:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(hash_dir, name))
    if len(state.obsolete) == len(names):
        # Empty now; a writer racing us recreates the directory (see DiskFileWriter).
        with contextlib.suppress(OSError):
            os.rmdir(hash_dir)
    return state


# ---- object state -----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ObjectState:
    """What an object is, read from its current .data and .meta."""

    metadata: dict[str, str]                 # merged: what the object server serves
    datafile_metadata: dict[str, str]
    metafile_metadata: dict[str, str]        # {} without a .meta
    data_timestamp: Timestamp
    timestamp: Timestamp                     # the newest that counts (.meta's when present)
    content_type_timestamp: Timestamp
    content_length: int
    etag: str


def _object_state(datafile_metadata: dict[str, str], metafile_metadata: dict[str, str] | None,
                  body_length: int) -> ObjectState:
    try:
        data_timestamp = Timestamp(datafile_metadata["X-Timestamp"])
        content_length = int(datafile_metadata["Content-Length"])
        etag = datafile_metadata["ETag"]
    except (KeyError, ValueError, InvalidTimestamp) as err:
        raise CorruptFile(f"data file metadata incomplete: {err!r}") from None
    if content_length != body_length:
        raise CorruptFile(f"Content-Length {content_length} != body length {body_length}")
    merged = ondisk.merge_metadata(datafile_metadata, metafile_metadata)
    try:
        timestamp = Timestamp(merged["X-Timestamp"])
        ctype_timestamp = Timestamp(merged.get("Content-Type-Timestamp") or data_timestamp)
    except (KeyError, InvalidTimestamp) as err:
        raise CorruptFile(f"meta file metadata incomplete: {err!r}") from None
    return ObjectState(merged, dict(datafile_metadata), dict(metafile_metadata or {}),
                       data_timestamp, timestamp, ctype_timestamp, content_length, etag)


# ---- the manager: one per server --------------------------------------------------------------

class DiskFileManager:
    """Finds devices and object files; holds what every DiskFile shares."""

    def __init__(self, devices_root: str, secrets: HashSecrets, *, mount_check: bool = True,
                 io: DiskIOPool | None = None,
                 disk_chunk_bytes: int = DEFAULT_DISK_CHUNK_BYTES,
                 reclaim_age_s: float = DEFAULT_RECLAIM_AGE_S,
                 reserve: FreeSpaceReserve = FreeSpaceReserve(),
                 logger: logging.Logger | None = None):
        self.devices_root = devices_root
        self.secrets = secrets
        self.mount_check = mount_check
        self.io = io or DiskIOPool(0)
        self.disk_chunk_bytes = disk_chunk_bytes
        self.reclaim_age_s = reclaim_age_s
        self.reserve = reserve
        self.logger = logger or logging.getLogger("diskfile")

    def device_path(self, device: str) -> str:
        """The device's directory; DeviceUnavailable when unmounted (mount_check) or absent."""
        return check_device(self.devices_root, device, self.mount_check)

    def reclaim_before(self) -> Timestamp:
        return Timestamp(max(0.0, time.time() - self.reclaim_age_s))

    def get_diskfile(self, device: str, partition: int, account: str, container: str,
                     obj: str, policy_index: int = 0) -> DiskFile:
        return DiskFile(self, device, self.device_path(device), partition, account, container,
                        obj, policy_index)


class DiskFile:
    """One object name on one device: read its state, open it, write, POST or delete it."""

    def __init__(self, manager: DiskFileManager, device: str, device_path: str, partition: int,
                 account: str, container: str, obj: str, policy_index: int = 0):
        self.manager = manager
        self.device = device
        self.device_path = device_path
        self.partition = partition
        self.policy_index = policy_index
        self.name = f"/{account}/{container}/{obj}"
        self.name_hash = hash_path(account, container, obj, manager.secrets).hex()
        self.suffix = self.name_hash[-3:]
        self.datadir = data_dir_name(policy_index)
        self.partition_dir = os.path.join(device_path, self.datadir, str(partition))
        self.hash_dir = os.path.join(self.partition_dir, self.suffix, self.name_hash)
        self.tmp_dir = os.path.join(device_path, TMP_DIR)

    def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return self.manager.io.run(self.device, fn, *args)

    # ---- reading ------------------------------------------------------------------------------

    def read_state(self, now: Timestamp | None = None,
                   open_expired: bool = False) -> ObjectState:
        """The object's state (metadata only, body untouched). Raises DiskFileNotExist & co."""
        state, fd, _ = self._run(self._load, now, open_expired, False, -1)
        assert fd is None
        return state

    def open(self, now: Timestamp | None = None, open_expired: bool = False,
             prefetch_max_bytes: int = -1) -> DiskFileReader:
        """Open the object for reading. Bodies up to `prefetch_max_bytes` are read and checked
        against their ETag here (a mismatch quarantines and raises DiskFileQuarantined)."""
        state, fd, prefetched = self._run(self._load, now, open_expired, True,
                                          prefetch_max_bytes)
        assert fd is not None
        return DiskFileReader(self, fd, state, prefetched)

    def _load(self, now: Timestamp | None, open_expired: bool, keep_open: bool,
              prefetch_max_bytes: int) -> tuple[ObjectState, int | None, bytes | None]:
        for _ in range(OPEN_ATTEMPTS):
            loaded = self._load_once(now, open_expired, keep_open, prefetch_max_bytes)
            if loaded is not None:
                return loaded
        raise DiskFileStateChanged(f"{self.hash_dir}: files changed while opening")

    def _load_once(self, now: Timestamp | None, open_expired: bool, keep_open: bool,
                   prefetch_max_bytes: int
                   ) -> tuple[ObjectState, int | None, bytes | None] | None:
        """One attempt; None when a file named by the listing vanished (retry)."""
        try:
            names = os.listdir(self.hash_dir)
        except (FileNotFoundError, NotADirectoryError):
            raise DiskFileNotExist() from None
        files = ondisk.get_ondisk_files(names)
        if files.tombstone is not None:
            raise DiskFileDeleted("deleted", files.tombstone.timestamp)
        if files.data_file is None:
            raise DiskFileNotExist()
        try:
            fd = os.open(os.path.join(self.hash_dir, files.data_file.name), os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                body_length, datafile_metadata = read_footer(fd)
                metafile_metadata = None
                if files.meta_file is not None:
                    metafile_metadata = read_metadata(
                        os.path.join(self.hash_dir, files.meta_file.name))[1]
                state = _object_state(datafile_metadata, metafile_metadata, body_length)
            except CorruptFile as err:
                self._quarantine(str(err))
                raise DiskFileQuarantined(str(err)) from None
            if state.metadata.get("name") != self.name:
                raise DiskFileCollision(f"{self.hash_dir} holds {state.metadata.get('name')!r},"
                                        f" not {self.name!r}")
            if not open_expired and ondisk.is_expired(state.metadata, now or Timestamp.now()):
                raise DiskFileExpired("expired", state.timestamp, state.metadata)
            prefetched = None
            if keep_open and state.content_length <= prefetch_max_bytes:
                prefetched = self._read_verified(fd, state)
            if keep_open:
                return state, fd, prefetched
            os.close(fd)
            return state, None, None
        except FileNotFoundError:
            os.close(fd)           # the .meta went away under us: list again
            return None
        except BaseException:
            os.close(fd)
            raise

    def _read_verified(self, fd: int, state: ObjectState) -> bytes:
        body = os.pread(fd, state.content_length, 0)
        actual = hashlib.md5(body, usedforsecurity=False).hexdigest()
        if len(body) != state.content_length or actual != state.etag:
            reason = f"ETag mismatch: stored {state.etag}, body {actual}"
            self._quarantine(reason)
            raise DiskFileQuarantined(reason)
        return body

    # ---- writing ------------------------------------------------------------------------------

    def create(self, size: int | None = None) -> DiskFileWriter:
        """A writer for a new .data; `size` (when known) is preallocated and checked against
        the free-space reserve before any byte is written."""
        return DiskFileWriter(self, size)

    def check_room(self, size: int) -> None:
        """DeviceFull unless the device can take a `size`-byte object. Inline, not in the
        disk pool: statvfs reads counters the kernel keeps in memory, and a small PUT calls
        this before it takes the body, so a full device still answers 507 in time for the
        proxy to send the body to a handoff."""
        self.manager.reserve.check(self.device_path, self.device, size, require_room=True)

    def write_whole(self, body: bytes, metadata: Mapping[str, str],
                    ext: str = ondisk.DATA_EXT) -> None:
        """Write a body already in memory and commit it, in one trip to a disk thread (small
        objects; the caller has checked the body against its ETag)."""
        self._run(self._write_whole, body, dict(metadata), ext)

    def write_metadata(self, metadata: Mapping[str, str]) -> None:
        """Fast-POST: write `<X-Timestamp>.meta` holding `metadata` (no data is copied)."""
        self._run(self._write_whole, b"", dict(metadata), ondisk.META_EXT)

    def delete(self, timestamp: Timestamp) -> None:
        """Write the tombstone `<timestamp>.ts`; older files become obsolete and are removed."""
        self._run(self._write_whole, b"", {"X-Timestamp": timestamp.internal},
                  ondisk.TOMBSTONE_EXT)

    def _write_whole(self, body: bytes, metadata: dict[str, str], ext: str) -> None:
        writer = DiskFileWriter(self, len(body))
        try:
            writer.open_blocking()
            if body:
                writer.write_blocking(body)
            if ext == ondisk.DATA_EXT and metadata.get("ETag") != writer.etag:
                raise ValueError("write_whole: metadata ETag does not match the body")
            writer.put_blocking(metadata, ext)
        finally:
            writer.close_blocking()

    # ---- quarantine ---------------------------------------------------------------------------

    def quarantine(self, reason: str) -> str | None:
        return self._run(self._quarantine, reason)

    def _quarantine(self, reason: str) -> str | None:
        """Move the whole hash directory aside; None if someone else already did."""
        return quarantine_hash_dir(self.device_path, self.datadir, self.hash_dir,
                                   self.partition_dir, self.suffix, reason,
                                   self.manager.logger)


class DiskFileWriter:
    """Streams one new file into `<dev>/tmp`, then `put()` makes it the object durably.

    Call `open()`, `write()` per chunk, `put(metadata)`; always `close()` (it removes the temp
    file of a write that was never put). `etag` and `bytes_written` describe the body so far.
    """

    def __init__(self, diskfile: DiskFile, size: int | None):
        self.diskfile = diskfile
        self.size = size
        self.bytes_written = 0
        self._hasher = hashlib.md5(usedforsecurity=False)
        self._fd: int | None = None
        self._tmp_path: str | None = None
        self._committed = False

    @property
    def etag(self) -> str:
        return self._hasher.hexdigest()

    def open(self) -> None:
        self.diskfile._run(self.open_blocking)

    def write(self, chunk: bytes) -> None:
        self.diskfile._run(self.write_blocking, chunk)

    def put(self, metadata: Mapping[str, str], ext: str = ondisk.DATA_EXT) -> None:
        self.diskfile._run(self.put_blocking, dict(metadata), ext)

    def close(self) -> None:
        if self._fd is None and (self._committed or self._tmp_path is None):
            return
        try:
            self.diskfile._run(self.close_blocking)
        except Exception as err:     # cleanup must not mask the request's own outcome
            self.diskfile.manager.logger.warning("cannot clean up %s: %s", self._tmp_path, err)

    # The blocking halves (run in the device's thread pool).

    def open_blocking(self) -> None:
        df = self.diskfile
        os.makedirs(df.tmp_dir, exist_ok=True)
        df.manager.reserve.check(df.tmp_dir, df.device, self.size or 0)
        self._fd, self._tmp_path = tempfile.mkstemp(dir=df.tmp_dir, prefix=df.name_hash + ".",
                                                    suffix=".tmp")
        if self.size:
            try:
                os.posix_fallocate(self._fd, 0, self.size)
            except OSError as err:
                # Filesystems without fallocate are fine; a full disk is not.
                if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise

    def write_blocking(self, chunk: bytes) -> None:
        assert self._fd is not None, "open() first"
        _write_all(self._fd, chunk)
        self._hasher.update(chunk)
        self.bytes_written += len(chunk)

    def put_blocking(self, metadata: dict[str, str], ext: str) -> None:
        assert self._fd is not None and self._tmp_path is not None, "open() first"
        df = self.diskfile
        metadata["name"] = df.name
        timestamp = Timestamp(metadata["X-Timestamp"])
        _write_all(self._fd, encode_footer(metadata, self.bytes_written))
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        target = os.path.join(df.hash_dir, ondisk.file_name(timestamp, ext))
        for attempt in range(2):
            makedirs_durable(df.hash_dir)
            try:
                os.rename(self._tmp_path, target)
                break
            except FileNotFoundError:
                # A cleanup removed the (then empty) hash directory between the two steps.
                if attempt:
                    raise
        self._committed = True
        fsync_dir(df.hash_dir)
        invalidate_suffix(df.partition_dir, df.suffix)
        cleanup_ondisk_files(df.hash_dir, df.manager.reclaim_before())

    def close_blocking(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if not self._committed and self._tmp_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp_path)
            self._tmp_path = None


class DiskFileReader:
    """An open object: its state and its body, read in disk chunks through the device pool."""

    def __init__(self, diskfile: DiskFile, fd: int, state: ObjectState,
                 prefetched: bytes | None):
        self.diskfile = diskfile
        self.state = state
        self._fd: int | None = fd
        self._prefetched = prefetched
        self.chunk_bytes = diskfile.manager.disk_chunk_bytes

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _read_chunk(self, offset: int, length: int, hasher: Any) -> bytes:
        assert self._fd is not None, "reader is closed"
        data = os.pread(self._fd, length, offset)
        if len(data) != length:
            raise CorruptFile(f"short read at {offset}: {len(data)} of {length} bytes")
        if hasher is not None:
            hasher.update(data)
        return data

    def _fail(self, reason: str) -> DiskFileQuarantined:
        self.diskfile.quarantine(reason)
        return DiskFileQuarantined(reason)

    def chunks_all(self) -> Iterator[bytes]:
        """The whole body, checked against the ETag: the last chunk is released only after
        the check passes, so a bad body ends in an exception, never in a complete response."""
        if self._prefetched is not None:
            if self._prefetched:
                yield self._prefetched
            return
        size, etag = self.state.content_length, self.state.etag
        if size == 0:
            if etag != EMPTY_ETAG:
                raise self._fail(f"ETag mismatch: stored {etag}, body {EMPTY_ETAG}")
            return
        hasher = hashlib.md5(usedforsecurity=False)
        offset = 0
        while offset < size:
            length = min(self.chunk_bytes, size - offset)
            try:
                chunk = self.diskfile._run(self._read_chunk, offset, length, hasher)
            except CorruptFile as err:
                raise self._fail(str(err)) from None
            offset += length
            if offset >= size and hasher.hexdigest() != etag:
                raise self._fail(f"ETag mismatch: stored {etag}, body {hasher.hexdigest()}")
            yield chunk

    def chunks_range(self, start: int, stop: int) -> Iterator[bytes]:
        """Bytes [start, stop) of the body (not checked: only a whole read can be)."""
        if self._prefetched is not None:
            if stop > start:
                yield self._prefetched[start:stop]
            return
        offset = start
        while offset < stop:
            length = min(self.chunk_bytes, stop - offset)
            try:
                chunk = self.diskfile._run(self._read_chunk, offset, length, None)
            except CorruptFile as err:
                raise self._fail(str(err)) from None
            offset += length
            yield chunk

    def app_iter(self, chunks: Iterator[bytes]) -> BodyIterator:
        """A WSGI body over `chunks` that closes this reader when the server is done."""
        return BodyIterator(chunks, self.close)


class BodyIterator:
    """A WSGI app_iter: iterates a generator, and on close() stops it and runs `on_close`."""

    def __init__(self, chunks: Iterator[bytes], on_close: Callable[[], None]):
        self._chunks = chunks
        self._on_close = on_close

    def __iter__(self) -> BodyIterator:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        try:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        finally:
            self._on_close()
