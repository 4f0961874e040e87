"""Per-partition suffix hashes: what the object replicator compares between replicas.

A partition directory holds up to 4096 suffix directories (`<part>/<suffix>/<hash>/...`).
A suffix's hash is the MD5 of what its hash directories currently hold: for every hash
directory, in name order, its name and the names of its current files (`<timestamp>.data`,
`.ts`, `.meta`, as `storage_node.ondisk` decides), after obsolete files are removed. Two
replicas whose suffix hashes agree hold the same object versions there; only suffixes that
differ are looked at more closely (Swift's scheme, without pickle).

Files, all in the partition directory:

    hashes.msgpack   {suffix: hash or None}; None means "changed, rehash me"
    hashes.invalid   suffixes written since the last consolidation, one per line (appended by
                     every object write: `storage_node.diskfile.invalidate_suffix`)

`hashes.msgpack` is `MAGIC, version (u8), crc32 (u32)` then a msgpack map holding the hashes
and a random generation token; it is replaced whole with `durable.write_durably`. A missing,
truncated or corrupt file just means a full recalculation, never an error.

Cheap invalidation, lazy recomputation: a write only appends its suffix to hashes.invalid;
`get_hashes` folds those lines into the stored hashes (marking the suffixes None), rehashes
only the None suffixes (plus any the caller asks for), and stores the result.

Concurrency. The lock is an `fcntl.flock` on hashes.invalid itself: writers hold it while
they append, `get_hashes` while it reads and truncates the file and while it stores
hashes.msgpack. So an invalidation is never lost between reading the file and truncating it,
and a writer pays one flock, not a second open. Rehashing runs without the lock (it lists
directories, which can take a while); afterwards, under the lock, `get_hashes` stores its
result only if nobody else stored hashes in between (the generation token is unchanged), and
rehashes again when new invalidations arrived meanwhile (Swift re-checks the same way).

Everything here blocks (listdir, flock, fsync): call it on a device's `DiskIOPool` thread.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import struct
import uuid
import zlib
from collections.abc import Iterable, Iterator

import msgpack

from common.timestamp import Timestamp
from storage_node.diskfile import HASHES_INVALID, cleanup_ondisk_files
from storage_node.durable import write_durably

HASHES_FILE = "hashes.msgpack"
MAGIC = b"RSSH"
FORMAT_VERSION = 1
HEADER = struct.Struct(">4sBI")
# Rounds of "rehash, then find that someone changed the partition meanwhile" before we
# store what we have and leave the newest invalidations for the next call.
MAX_ROUNDS = 5
SUFFIX_LENGTH = 3
_HEX = frozenset("0123456789abcdef")

Hashes = dict[str, "str | None"]
Listing = dict[str, list[str]]          # hash -> current file names (sorted)


def is_suffix(name: str) -> bool:
    return len(name) == SUFFIX_LENGTH and set(name) <= _HEX


def parse_suffixes(text: str) -> list[str]:
    """`abc-def-012` (REPLICATE's path segment) -> ['abc', 'def', '012']; ValueError if any
    piece is not a suffix."""
    suffixes = [piece for piece in text.split("-") if piece]
    bad = [s for s in suffixes if not is_suffix(s)]
    if bad:
        raise ValueError(f"not suffixes: {bad}")
    return suffixes


# ---- the lock and the invalidations file ------------------------------------------------------

@contextlib.contextmanager
def locked_invalidations(partition_dir: str) -> Iterator[int]:
    """Hold the partition's lock (flock on hashes.invalid); yields the file's descriptor."""
    fd = os.open(os.path.join(partition_dir, HASHES_INVALID), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)           # releases the flock


def _read_all(fd: int) -> bytes:
    chunks = []
    offset = 0
    while True:
        chunk = os.pread(fd, 65536, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


def _invalid_suffixes(blob: bytes) -> set[str]:
    # A torn line (a crash mid-append) is not a suffix and is dropped: the append comes after
    # the write's rename, and a write whose append never finished was never acknowledged.
    return {line for line in blob.decode("ascii", "replace").split() if is_suffix(line)}


# ---- hashes.msgpack ---------------------------------------------------------------------------

def encode_hashes(hashes: Hashes, generation: str) -> bytes:
    blob = msgpack.packb({"hashes": hashes, "generation": generation}, use_bin_type=True)
    return HEADER.pack(MAGIC, FORMAT_VERSION, zlib.crc32(blob)) + blob


def decode_hashes(data: bytes) -> tuple[Hashes, str] | None:
    """(hashes, generation), or None for anything that is not a good hashes file."""
    if len(data) < HEADER.size:
        return None
    magic, version, crc = HEADER.unpack_from(data)
    blob = data[HEADER.size:]
    if magic != MAGIC or version != FORMAT_VERSION or zlib.crc32(blob) != crc:
        return None
    try:
        payload = msgpack.unpackb(blob, raw=False)
    except (ValueError, msgpack.UnpackException):
        return None
    if not isinstance(payload, dict):
        return None
    hashes, generation = payload.get("hashes"), payload.get("generation")
    if not isinstance(hashes, dict) or not isinstance(generation, str):
        return None
    if not all(is_suffix(k) and (v is None or isinstance(v, str)) for k, v in hashes.items()):
        return None
    return hashes, generation


def read_hashes_file(partition_dir: str) -> tuple[Hashes, str] | None:
    try:
        with open(os.path.join(partition_dir, HASHES_FILE), "rb") as handle:
            return decode_hashes(handle.read())
    except FileNotFoundError:
        return None


def _store(partition_dir: str, hashes: Hashes) -> str:
    generation = uuid.uuid4().hex
    write_durably(os.path.join(partition_dir, HASHES_FILE), encode_hashes(hashes, generation))
    return generation


# ---- hashing one suffix -----------------------------------------------------------------------

def list_suffix(partition_dir: str, suffix: str,
                reclaim_before: Timestamp | None = None) -> Listing:
    """Each hash directory's current file names, after removing its obsolete files (and
    reclaimable tombstones). Empty hash directories (and an empty suffix directory) go."""
    suffix_dir = os.path.join(partition_dir, suffix)
    try:
        names = sorted(os.listdir(suffix_dir))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    listing: Listing = {}
    for name in names:
        hash_dir = os.path.join(suffix_dir, name)
        state = cleanup_ondisk_files(hash_dir, reclaim_before)
        current = [f.name for f in (state.data_file, state.tombstone, state.meta_file) if f]
        if current:
            listing[name] = sorted(current)
    if not listing:
        with contextlib.suppress(OSError):
            os.rmdir(suffix_dir)        # fails (harmlessly) if anything is in it still
    return listing


def hash_listing(listing: Listing) -> str | None:
    """The suffix hash of a listing; None for an empty suffix."""
    if not listing:
        return None
    md5 = hashlib.md5(usedforsecurity=False)
    for name_hash in sorted(listing):
        md5.update(name_hash.encode("ascii", "replace") + b"\n")
        for file_name in listing[name_hash]:
            md5.update(file_name.encode("ascii", "replace") + b"\n")
    return md5.hexdigest()


def hash_suffix(partition_dir: str, suffix: str,
                reclaim_before: Timestamp | None = None) -> str | None:
    return hash_listing(list_suffix(partition_dir, suffix, reclaim_before))


def suffix_dirs(partition_dir: str) -> list[str]:
    try:
        return sorted(name for name in os.listdir(partition_dir) if is_suffix(name))
    except (FileNotFoundError, NotADirectoryError):
        return []


# ---- the public entry point -------------------------------------------------------------------

def get_hashes(partition_dir: str, recalculate: Iterable[str] = (),
               reclaim_before: Timestamp | None = None) -> Hashes:
    """The partition's suffix hashes, with invalidated and `recalculate` suffixes rehashed.

    Empty suffixes are left out. A partition directory that does not exist has no hashes
    (nothing is created). Values are hex MD5s; a None can only come back when the partition
    kept changing for MAX_ROUNDS rounds (the caller treats it as "differs").
    """
    recalculate = set(recalculate)
    hashes: Hashes = {}
    for _ in range(MAX_ROUNDS):
        if not os.path.isdir(partition_dir):
            return {}
        try:
            hashes, generation, invalid = _consolidate(partition_dir)
        except FileNotFoundError:       # the partition was removed under us
            return {}
        for suffix in recalculate | invalid:
            hashes[suffix] = None
        if all(value is not None for value in hashes.values()):
            return hashes                 # nothing changed since the last rehash
        computed = dict(hashes)
        for suffix, value in hashes.items():
            if value is None:
                computed[suffix] = hash_suffix(partition_dir, suffix, reclaim_before)
        computed = {s: v for s, v in computed.items() if v is not None}
        try:
            with locked_invalidations(partition_dir) as fd:
                stored = read_hashes_file(partition_dir)
                if (stored[1] if stored else None) != generation:
                    continue              # another caller stored newer hashes: start over
                generation = _store(partition_dir, computed)
                pending = os.fstat(fd).st_size > 0
        except FileNotFoundError:
            return {}
        hashes = computed
        if not pending:
            return hashes
        recalculate = set()               # the new invalidations come in with _consolidate
    return hashes


def _consolidate(partition_dir: str) -> tuple[Hashes, str | None, set[str]]:
    """Fold hashes.invalid into hashes.msgpack (under the lock) and truncate it.

    Returns (hashes with invalidated suffixes None, the stored generation, suffixes that were
    invalid). With no usable hashes file every suffix directory is marked for rehashing."""
    with locked_invalidations(partition_dir) as fd:
        invalid = _invalid_suffixes(_read_all(fd))
        stored = read_hashes_file(partition_dir)
        if stored is None:
            hashes: Hashes = dict.fromkeys(suffix_dirs(partition_dir))
            generation = None
        else:
            hashes, generation = stored
            if not invalid:
                return hashes, generation, set()
        for suffix in invalid:
            hashes[suffix] = None
        # Stored before truncating: a crash in between loses no invalidation.
        generation = _store(partition_dir, hashes)
        os.ftruncate(fd, 0)
        return hashes, generation, invalid


# ---- removing a partition that has been handed off --------------------------------------------

def remove_files(partition_dir: str, listing_by_suffix: dict[str, Listing]) -> None:
    """Delete exactly the listed files (a handoff's copies its primaries confirmed), then
    whatever directories that leaves empty, and the partition itself once no suffix is left.
    Files written since the listing was taken stay, and their suffixes stay invalidated."""
    for suffix, listing in listing_by_suffix.items():
        suffix_dir = os.path.join(partition_dir, suffix)
        for name_hash, names in listing.items():
            hash_dir = os.path.join(suffix_dir, name_hash)
            for name in names:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(hash_dir, name))
            with contextlib.suppress(OSError):
                os.rmdir(hash_dir)
        with contextlib.suppress(OSError):
            os.rmdir(suffix_dir)
    try:
        with locked_invalidations(partition_dir) as fd:
            if suffix_dirs(partition_dir):
                # Something arrived meanwhile (or was not ours to delete): keep the
                # partition, and make the next pass rehash what we touched.
                lines = "".join(f"{s}\n" for s in listing_by_suffix).encode("ascii")
                os.lseek(fd, 0, os.SEEK_END)
                os.write(fd, lines)
                return
            for name in os.listdir(partition_dir):
                path = os.path.join(partition_dir, name)
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)     # junk, not object data
                else:
                    os.unlink(path)
    except FileNotFoundError:
        return
    try:
        os.rmdir(partition_dir)
    except OSError as err:
        # A writer recreated something in it between our check and now: it stays.
        if err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
            raise
