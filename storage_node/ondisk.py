"""Object state from a hash directory's file names, and how .data and .meta metadata merge.

Pure functions, no I/O: the disk layer lists a directory, these rules say what it holds.

A hash directory holds files named `<timestamp>.<ext>` (timestamp in `Timestamp.internal`
form): `.data` (an object version), `.ts` (a tombstone: deleted at that time) and `.meta`
(metadata POSTed after the data, "fast-POST"). Swift's rules (`get_ondisk_files`) decide:

- the newest `.data` or `.ts` is current; at equal timestamps the tombstone wins (a delete and
  a write at the same instant resolve to deleted, as Swift's reverse name sort does);
- every `.data` and `.ts` older than the current one is obsolete;
- a `.meta` counts only if it is newer than the current `.data`: the newest such `.meta` is the
  meta file, every other `.meta` is obsolete; with a tombstone current, every `.meta` is
  obsolete (metadata for a deleted object is no use);
- a `.meta` with no `.data` or `.ts` at all (it can arrive first by replication) is kept: the
  newest one is reported, older ones are obsolete;
- with `reclaim_before` set, a current tombstone older than it is obsolete too (tombstones
  only need to live long enough for every replica to hear of the delete), as are orphaned
  `.meta` files older than it;
- names that are not `<timestamp>.<ext>` are "unexpected": reported, never removed here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from common.timestamp import InvalidTimestamp, Timestamp

DATA_EXT = ".data"
TOMBSTONE_EXT = ".ts"
META_EXT = ".meta"
KNOWN_EXTS = (DATA_EXT, TOMBSTONE_EXT, META_EXT)

# Metadata a .meta file never replaces: what the bytes of the .data are, and system metadata
# (x-object-sysmeta-*) that only a PUT may set. Mirrors Swift's RESERVED_DATAFILE_META and
# DATAFILE_SYSTEM_META.
DATAFILE_ONLY_KEYS = frozenset({"content-length", "etag", "deleted", "name",
                                "x-static-large-object"})
OBJECT_SYSMETA_PREFIX = "x-object-sysmeta-"


@dataclasses.dataclass(frozen=True, order=True)
class OnDiskFile:
    """One parsed file name."""

    timestamp: Timestamp
    ext: str
    name: str


def parse_file_name(name: str) -> OnDiskFile | None:
    """`<timestamp>.<ext>` -> OnDiskFile; None for anything else (temp files, junk)."""
    for ext in KNOWN_EXTS:
        if name.endswith(ext):
            stem = name[:-len(ext)]
            try:
                timestamp = Timestamp(stem)
            except InvalidTimestamp:
                return None
            # Only the canonical spelling counts: two names for one instant would make
            # "newest" ambiguous.
            if timestamp.internal != stem:
                return None
            return OnDiskFile(timestamp, ext, name)
    return None


def file_name(timestamp: Timestamp, ext: str) -> str:
    if ext not in KNOWN_EXTS:
        raise ValueError(f"unknown extension {ext!r}")
    return timestamp.internal + ext


@dataclasses.dataclass(frozen=True)
class OnDiskState:
    """What a hash directory holds, by the rules above."""

    data_file: OnDiskFile | None = None
    tombstone: OnDiskFile | None = None
    meta_file: OnDiskFile | None = None
    obsolete: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()

    @property
    def exists(self) -> bool:
        """True when there is object data to serve (a current .data)."""
        return self.data_file is not None

    @property
    def deleted(self) -> bool:
        return self.tombstone is not None

    @property
    def current(self) -> OnDiskFile | None:
        return self.data_file or self.tombstone

    @property
    def timestamp(self) -> Timestamp | None:
        """The newest timestamp that counts: the meta file's, else the current file's."""
        if self.meta_file is not None and self.data_file is not None:
            return self.meta_file.timestamp
        current = self.current
        return current.timestamp if current else None


# At one timestamp the tombstone sorts first ("newest"), then .meta, then .data, as in Swift.
_EXT_RANK = {TOMBSTONE_EXT: 2, META_EXT: 1, DATA_EXT: 0}


def get_ondisk_files(names: Iterable[str],
                     reclaim_before: Timestamp | None = None) -> OnDiskState:
    """Classify a hash directory's file names (see the module docstring for the rules)."""
    files: list[OnDiskFile] = []
    unexpected: list[str] = []
    for name in names:
        parsed = parse_file_name(name)
        if parsed is None:
            unexpected.append(name)
        else:
            files.append(parsed)
    files.sort(key=lambda f: (f.timestamp, _EXT_RANK[f.ext]), reverse=True)

    current: OnDiskFile | None = None
    newer_metas: list[OnDiskFile] = []       # newest first, all newer than `current`
    obsolete: list[str] = []
    for item in files:
        if current is not None:
            obsolete.append(item.name)       # older than (or tied and losing to) current
        elif item.ext == META_EXT:
            newer_metas.append(item)
        else:
            current = item

    meta_file: OnDiskFile | None = None
    if current is None or current.ext == DATA_EXT:
        # A .meta at the data's own timestamp was sorted before it but is not newer than it.
        live_metas = [m for m in newer_metas
                      if current is None or m.timestamp > current.timestamp]
        obsolete.extend(m.name for m in newer_metas if m not in live_metas)
        if live_metas:
            meta_file, older = live_metas[0], live_metas[1:]
            obsolete.extend(m.name for m in older)
        if current is None and meta_file is not None and reclaim_before is not None \
                and meta_file.timestamp < reclaim_before:
            obsolete.append(meta_file.name)
            meta_file = None
    else:
        obsolete.extend(m.name for m in newer_metas)

    data_file = tombstone = None
    if current is not None and current.ext == DATA_EXT:
        data_file = current
    elif current is not None:
        if reclaim_before is not None and current.timestamp < reclaim_before:
            obsolete.append(current.name)
        else:
            tombstone = current
    return OnDiskState(data_file, tombstone, meta_file, tuple(obsolete), tuple(unexpected))


def merge_metadata(datafile_metadata: Mapping[str, str],
                   metafile_metadata: Mapping[str, str] | None) -> dict[str, str]:
    """The object's metadata: the .meta's, over the .data's bytes-describing and system keys.

    A POST replaces all user metadata and the allowed headers (Content-Disposition,
    X-Delete-At, ...), so only the .data's reserved and sysmeta keys survive beneath it.
    Content-Type comes from the .meta only if its Content-Type-Timestamp is newer than the
    data (a POST that changed it); otherwise the .data's Content-Type stands.
    """
    if not metafile_metadata:
        return dict(datafile_metadata)
    merged = dict(metafile_metadata)
    for key, value in datafile_metadata.items():
        lower = key.lower()
        if lower in DATAFILE_ONLY_KEYS or lower.startswith(OBJECT_SYSMETA_PREFIX):
            merged[key] = value
    data_timestamp = Timestamp(datafile_metadata["X-Timestamp"])
    ctype_timestamp_text = metafile_metadata.get("Content-Type-Timestamp")
    ctype_from_meta = False
    if ctype_timestamp_text and "Content-Type" in metafile_metadata:
        try:
            ctype_from_meta = Timestamp(ctype_timestamp_text) > data_timestamp
        except InvalidTimestamp:
            ctype_from_meta = False
    if not ctype_from_meta:
        merged.pop("Content-Type-Timestamp", None)
        if "Content-Type" in datafile_metadata:
            merged["Content-Type"] = datafile_metadata["Content-Type"]
    return merged


def delete_at_of(metadata: Mapping[str, str]) -> int | None:
    """The X-Delete-At of stored metadata as whole seconds; None when absent or unreadable."""
    value = metadata.get("X-Delete-At")
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def is_expired(metadata: Mapping[str, str], now: Timestamp) -> bool:
    """True once X-Delete-At has passed (Swift: delete_at <= now)."""
    delete_at = delete_at_of(metadata)
    return delete_at is not None and delete_at <= now.seconds
