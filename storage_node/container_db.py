"""One container's database: its object rows, counts, policy and state, as Swift keeps them.

- Object rows (name, created_at, size, content_type, etag, deleted, storage_policy_index) are
  merged by timestamp with Swift's rules (`merge_object_record`, pure): the data timestamp
  decides size/etag/deleted, the content-type and metadata timestamps (from fast POSTs) decide
  the content type and last-modified; a DELETE is a tombstone row (deleted=1) kept so an older
  PUT arriving late, or a replica that missed the delete, cannot resurrect the object.
- Counts live in `policy_stat` (per storage policy, maintained by triggers on insert/delete;
  rows are never updated in place), so the container's numbers are those of its own policy
  and objects misplaced in another policy stay visible to the reconciler.
- Listings are index range scans: a partial index on (storage_policy_index, name) over live
  rows answers every `list_entries` fetch in name order without a sort, whatever the size.
- The container is deleted when its delete timestamp is newer than its put timestamp and it
  holds no objects (Swift's rule); a recreate may change its policy, an update may not (409).
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from common.timestamp import TICKS_PER_SECOND, Timestamp
from storage_node.db import (
    EMPTY_HASH,
    ZERO_TIMESTAMP,
    DatabaseBroker,
    DatabaseError,
    is_zero,
    rows_with_names,
)
from storage_node.listing import (
    ListingParams,
    NameRange,
    Subdir,
    extract_swift_bytes,
    list_entries,
    name_range_sql,
)

DATADIR = "containers"
# created_at as encode_timestamps writes it: a fixed-width timestamp, then non-zero deltas.
_CANONICAL_CREATED_AT = re.compile(r"\d{10}\.\d{5}(_[0-9a-f]{16})?([+-][1-9a-f][0-9a-f]*){0,2}")
DELETED_CONTENT_TYPE = "application/deleted"
DELETED_ETAG = "noetag"


class ContainerPolicyConflict(DatabaseError):
    """A PUT naming a policy other than the existing container's (Swift's 409)."""

    def __init__(self, current_policy_index: int):
        super().__init__(f"container has storage policy {current_policy_index}")
        self.current_policy_index = current_policy_index


class ContainerStillDeleted(DatabaseError):
    """A PUT older than the container's delete: it stays deleted (Swift's 409)."""


class ContainerNotEmpty(DatabaseError):
    """DELETE of a container that still lists objects (Swift's 409)."""


# ---------------------------------------------------------------------------------------------
# Pure rules


def _timestamp_from_ticks(ticks: int) -> Timestamp:
    return Timestamp(f"{ticks // TICKS_PER_SECOND}.{ticks % TICKS_PER_SECOND:05d}")


def encode_timestamps(data: Timestamp, content_type: Timestamp | None = None,
                      meta: Timestamp | None = None) -> str:
    """Swift's `encode_timestamps`: `<data>[<+/-ctype delta>[<+/-meta delta>]]`, hex ticks.

    Three timestamps share the one created_at column, so rows stay in Swift's format.
    """
    text = data.internal
    if content_type is None:
        return text
    content_type_delta = content_type.ticks - data.ticks
    explicit = content_type_delta != 0
    meta_delta = 0
    if meta is not None:
        meta_delta = meta.ticks - content_type.ticks
        explicit = explicit or meta_delta != 0
    if explicit:
        text += f"{content_type_delta:+x}"
        if meta is not None:
            text += f"{meta_delta:+x}"
    return text


def decode_timestamps(encoded: str) -> tuple[Timestamp, Timestamp, Timestamp]:
    """(data, content-type, metadata) timestamps of a created_at value."""
    parts: list[str] = []
    signs: list[int] = []
    for positive in encoded.split("+"):
        negatives = positive.split("-")
        parts.extend(negatives)
        signs.extend([1] + [-1] * (len(negatives) - 1))
    data = content_type = meta = Timestamp(parts[0])
    if len(parts) > 1:
        delta = signs[1] * int(parts[1], 16)
        if delta:
            content_type = meta = _timestamp_from_ticks(data.ticks + delta)
    if len(parts) > 2:
        delta = signs[2] * int(parts[2], 16)
        if delta:
            meta = _timestamp_from_ticks(content_type.ticks + delta)
    return data, content_type, meta


def update_created_at(timestamp: str, content_type_timestamp: str | None = None,
                      meta_timestamp: str | None = None) -> str:
    """created_at for an update from an object server (X-Timestamp, and for a fast POST
    X-Content-Type-Timestamp / X-Meta-Timestamp)."""
    data, content_type, meta = decode_timestamps(timestamp)
    if content_type_timestamp:
        content_type = meta = Timestamp(content_type_timestamp)
    if meta_timestamp:
        meta = Timestamp(meta_timestamp)
    return encode_timestamps(data, content_type, meta)


@dataclasses.dataclass(frozen=True)
class ObjectRecord:
    """One row of the object table (created_at in Swift's encoded form)."""

    name: str
    created_at: str
    size: int
    content_type: str
    etag: str
    deleted: int = 0
    storage_policy_index: int = 0

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.name, self.created_at, self.size, self.content_type, self.etag,
                self.deleted, self.storage_policy_index)


def merge_object_record(new: ObjectRecord,
                        existing: ObjectRecord | None) -> ObjectRecord | None:
    """Swift's `update_new_item_from_existing`: the row to store, or None if `existing` wins.

    Each of the three timestamps is compared on its own; the newer side supplies that part
    (data: size, etag, deleted and swift_bytes; content type; metadata time). An equal
    timestamp keeps the existing part, so replaying an update changes nothing.
    """
    if existing is None:
        if _CANONICAL_CREATED_AT.fullmatch(new.created_at):
            return new           # the common case (every new name), kept cheap
        data, content_type_time, meta = decode_timestamps(new.created_at)
        return dataclasses.replace(new, created_at=encode_timestamps(data, content_type_time,
                                                                     meta))
    data, content_type_time, meta = decode_timestamps(new.created_at)
    old_data, old_content_type_time, old_meta = decode_timestamps(existing.created_at)
    content_type, swift_bytes = extract_swift_bytes(new.content_type)
    old_content_type, old_swift_bytes = extract_swift_bytes(existing.content_type)
    size, etag, deleted = new.size, new.etag, new.deleted
    newer = [True, True, True]
    if old_data >= data:
        size, etag, deleted, swift_bytes = (existing.size, existing.etag, existing.deleted,
                                            old_swift_bytes)
        data = old_data
        newer[0] = False
    if old_content_type_time >= content_type_time:
        content_type, content_type_time = old_content_type, old_content_type_time
        newer[1] = False
    if old_meta >= meta:
        meta = old_meta
        newer[2] = False
    if not any(newer):
        return None
    if swift_bytes:
        content_type += f";swift_bytes={swift_bytes}"
    return ObjectRecord(new.name, encode_timestamps(data, content_type_time, meta), size,
                        content_type, etag, deleted, new.storage_policy_index)


@dataclasses.dataclass(frozen=True)
class ContainerInfo:
    """The container's stat row with its policy's counts."""

    account: str
    container: str
    created_at: str
    put_timestamp: str
    delete_timestamp: str
    status: str
    status_changed_at: str
    object_count: int
    bytes_used: int
    storage_policy_index: int
    hash: str
    id: str
    reported_put_timestamp: str
    reported_delete_timestamp: str
    reported_object_count: int
    reported_bytes_used: int

    @property
    def is_deleted(self) -> bool:
        return container_is_deleted(self.object_count, self.put_timestamp,
                                    self.delete_timestamp)

    @property
    def needs_report(self) -> bool:
        """Whether the account has not yet heard these numbers and timestamps."""
        return (self.put_timestamp, self.delete_timestamp, self.object_count,
                self.bytes_used) != (self.reported_put_timestamp,
                                     self.reported_delete_timestamp,
                                     self.reported_object_count, self.reported_bytes_used)


def container_is_deleted(object_count: object, put_timestamp: str,
                         delete_timestamp: str) -> bool:
    """Swift's rule: deleted after the last PUT, and empty."""
    return is_zero(object_count) and Timestamp(delete_timestamp) > Timestamp(put_timestamp)


# ---------------------------------------------------------------------------------------------
# The broker

_SCHEMA = """
CREATE TABLE object (
    ROWID INTEGER PRIMARY KEY AUTOINCREMENT,   -- replication sync points; never reused
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    etag TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    storage_policy_index INTEGER NOT NULL DEFAULT 0
);
-- Merges find a name's rows (any policy); one row per (name, policy).
CREATE UNIQUE INDEX ix_object_name_policy ON object (name, storage_policy_index);
-- Listings: live rows of one policy in name order, tombstones not even in the index.
CREATE INDEX ix_object_listing ON object (storage_policy_index, name) WHERE deleted = 0;

CREATE TABLE policy_stat (
    storage_policy_index INTEGER PRIMARY KEY,
    object_count INTEGER NOT NULL DEFAULT 0,
    bytes_used INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE container_stat (
    account TEXT NOT NULL,
    container TEXT NOT NULL,
    created_at TEXT NOT NULL,
    put_timestamp TEXT NOT NULL,
    delete_timestamp TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT '',
    status_changed_at TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '',
    hash TEXT NOT NULL,
    id TEXT NOT NULL,
    storage_policy_index INTEGER NOT NULL,
    reported_put_timestamp TEXT NOT NULL,
    reported_delete_timestamp TEXT NOT NULL,
    reported_object_count INTEGER NOT NULL DEFAULT 0,
    reported_bytes_used INTEGER NOT NULL DEFAULT 0
);

-- Rows change by DELETE + INSERT only, so these two triggers keep every count exact.
CREATE TRIGGER object_no_update BEFORE UPDATE ON object
BEGIN
    SELECT RAISE(FAIL, 'UPDATE not allowed; DELETE and INSERT');
END;

CREATE TRIGGER object_insert AFTER INSERT ON object
BEGIN
    INSERT OR IGNORE INTO policy_stat (storage_policy_index)
        VALUES (new.storage_policy_index);
    UPDATE policy_stat
        SET object_count = object_count + (1 - new.deleted),
            bytes_used = bytes_used + new.size
        WHERE storage_policy_index = new.storage_policy_index;
    UPDATE container_stat SET hash = chexor(hash, new.name, new.created_at);
END;

CREATE TRIGGER object_delete AFTER DELETE ON object
BEGIN
    UPDATE policy_stat
        SET object_count = object_count - (1 - old.deleted),
            bytes_used = bytes_used - old.size
        WHERE storage_policy_index = old.storage_policy_index;
    UPDATE container_stat SET hash = chexor(hash, old.name, old.created_at);
END;
"""

_INFO_QUERY = """
SELECT cs.account, cs.container, cs.created_at, cs.put_timestamp, cs.delete_timestamp,
       cs.status, cs.status_changed_at,
       coalesce(ps.object_count, 0), coalesce(ps.bytes_used, 0),
       cs.storage_policy_index, cs.hash, cs.id,
       cs.reported_put_timestamp, cs.reported_delete_timestamp,
       cs.reported_object_count, cs.reported_bytes_used
FROM container_stat cs LEFT JOIN policy_stat ps
    ON ps.storage_policy_index = cs.storage_policy_index
"""

_RECORD_COLUMNS = "name, created_at, size, content_type, etag, deleted, storage_policy_index"
ObjectRow = tuple[str, str, int, str, str]      # name, created_at, size, content_type, etag


class ContainerBroker(DatabaseBroker[ContainerInfo]):
    """A container database file; see the module docstring for the rules it keeps."""

    db_type = "container"
    application_id = 0x52534331                 # "RSC1"
    schema_version = 1

    def _create_schema(self, conn: sqlite3.Connection, put_timestamp: str,
                       storage_policy_index: int = 0, **_: Any) -> None:
        if self.container is None:
            raise ValueError("a container database needs a container name")
        conn.executescript(_SCHEMA)
        conn.execute("INSERT INTO policy_stat (storage_policy_index) VALUES (?)",
                     (storage_policy_index,))
        conn.execute(
            "INSERT INTO container_stat (account, container, created_at, put_timestamp, "
            "delete_timestamp, status_changed_at, hash, id, storage_policy_index, "
            "reported_put_timestamp, reported_delete_timestamp) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.account, self.container, Timestamp.now().internal, put_timestamp,
             ZERO_TIMESTAMP, put_timestamp, EMPTY_HASH, str(uuid.uuid4()),
             storage_policy_index, ZERO_TIMESTAMP, ZERO_TIMESTAMP))

    # -- state -------------------------------------------------------------------------------

    def _info(self, conn: sqlite3.Connection) -> ContainerInfo:
        row = conn.execute(_INFO_QUERY).fetchone()
        if row is None:
            raise sqlite3.DatabaseError("missing row in container_stat")
        return ContainerInfo(*row)

    def _empty(self, conn: sqlite3.Connection) -> bool:
        # Every policy counts: misplaced objects still make the container non-empty.
        return is_zero(conn.execute("SELECT max(object_count) FROM policy_stat").fetchone()[0])

    def empty(self) -> bool:
        with self._transaction(write=False) as conn:
            return self._empty(conn)

    def get_policy_stats(self) -> dict[int, dict[str, int]]:
        with self._transaction(write=False) as conn:
            return {index: {"object_count": count, "bytes_used": used}
                    for index, count, used in conn.execute(
                        "SELECT storage_policy_index, object_count, bytes_used "
                        "FROM policy_stat")}

    def update_or_recreate(self, put_timestamp: str, new_policy_index: int,
                           requested_policy_index: int | None) -> bool:
        """A PUT on an existing database (Swift's `_update_or_create`); True if recreated.

        A deleted container takes the new policy; a live one keeps its own, and a PUT naming
        another is ContainerPolicyConflict. A PUT older than the delete leaves the container
        deleted: ContainerStillDeleted.
        """
        with self._transaction(write=True) as conn:
            info = self._info(conn)
            recreated = info.is_deleted
            if recreated:
                if new_policy_index != info.storage_policy_index:
                    conn.execute("INSERT OR IGNORE INTO policy_stat (storage_policy_index) "
                                 "VALUES (?)", (new_policy_index,))
                    conn.execute("UPDATE container_stat SET storage_policy_index = ?",
                                 (new_policy_index,))
                    self._update_status_changed_at(conn, put_timestamp)
            elif requested_policy_index is not None and \
                    requested_policy_index != info.storage_policy_index:
                raise ContainerPolicyConflict(info.storage_policy_index)
            self._update_put_timestamp(conn, put_timestamp)
            if self._info(conn).is_deleted:
                raise ContainerStillDeleted(self.db_file)
            if recreated:
                conn.execute("UPDATE container_stat SET status = ''")
                self._update_status_changed_at(conn, put_timestamp)
            return recreated

    def delete_container(self, timestamp: str) -> tuple[bool, bool]:
        """Mark the container deleted if empty: (existed before, deleted now).

        Raises ContainerNotEmpty; "not deleted now" means the DELETE was older than the last
        PUT (Swift answers 409). The delete timestamp is kept either way, as in Swift.
        """
        with self._transaction(write=True) as conn:
            if not self._empty(conn):
                raise ContainerNotEmpty(self.db_file)
            before = self._info(conn)
            existed = Timestamp(before.put_timestamp) > Timestamp(0) and not before.is_deleted
            self._mark_deleted(conn, timestamp)
            return existed, self._info(conn).is_deleted

    def reported(self, info: ContainerInfo) -> None:
        """Record what the account servers have accepted (the container updater's sweep
        skips containers whose numbers match)."""
        with self._transaction(write=True) as conn:
            conn.execute("UPDATE container_stat SET reported_put_timestamp = ?, "
                         "reported_delete_timestamp = ?, reported_object_count = ?, "
                         "reported_bytes_used = ?",
                         (info.put_timestamp, info.delete_timestamp, info.object_count,
                          info.bytes_used))

    # -- object rows -------------------------------------------------------------------------

    def put_object(self, name: str, timestamp: str, size: int, content_type: str, etag: str,
                   deleted: int = 0, storage_policy_index: int = 0,
                   content_type_timestamp: str | None = None,
                   meta_timestamp: str | None = None) -> bool:
        """Merge one object update; True if it changed the row."""
        created_at = update_created_at(timestamp, content_type_timestamp, meta_timestamp)
        record = ObjectRecord(name, created_at, size, content_type, etag, deleted,
                              storage_policy_index)
        return self.merge_items([record]) > 0

    def delete_object(self, name: str, timestamp: str, storage_policy_index: int = 0) -> bool:
        """Merge a tombstone row; True if it changed the row."""
        return self.put_object(name, timestamp, 0, DELETED_CONTENT_TYPE, DELETED_ETAG,
                               deleted=1, storage_policy_index=storage_policy_index)

    def merge_items(self, records: Iterable[ObjectRecord]) -> int:
        """Merge many rows in one transaction (updates, replication, bulk loads).

        Returns how many rows were written. Existing rows are read in chunks by name, merged
        with `merge_object_record`, then replaced (DELETE + INSERT, so the triggers see both).
        """
        records = list(records)
        if not records:
            return 0
        with self._transaction(write=True) as conn:
            existing: dict[tuple[str, int], ObjectRecord] = {}
            names = sorted({record.name for record in records})
            for row in rows_with_names(conn, "object", _RECORD_COLUMNS, names):
                existing[(row[0], row[6])] = ObjectRecord(*row)
            to_write: dict[tuple[str, int], ObjectRecord] = {}
            for record in records:
                key = (record.name, record.storage_policy_index)
                merged = merge_object_record(record, to_write.get(key) or existing.get(key))
                if merged is not None:
                    to_write[key] = merged
            conn.executemany("DELETE FROM object WHERE name = ? AND storage_policy_index = ?",
                             [key for key in to_write if key in existing])
            conn.executemany(f"INSERT INTO object ({_RECORD_COLUMNS}) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)",
                             [record.as_tuple() for record in to_write.values()])
            return len(to_write)

    def list_objects(self, params: ListingParams,
                     storage_policy_index: int) -> list[ObjectRow | Subdir]:
        """A listing page: (name, created_at, size, content_type, etag) rows and Subdirs.

        All fetches of one page read one snapshot.
        """
        with self._transaction(write=False) as conn:
            # A cursor, not a list: with a delimiter the walk reads one row of a directory
            # and jumps past it, so the rest of the fetch is never materialised.
            def fetch(name_range: NameRange) -> Iterator[ObjectRow]:
                conditions, args = name_range_sql(name_range, params.allow_reserved)
                where = "".join(" AND " + condition for condition in conditions)
                order = "DESC" if name_range.reverse else "ASC"
                # `deleted = 0` is written out so sqlite can use the partial index.
                return conn.execute(
                    "SELECT name, created_at, size, content_type, etag FROM object "
                    f"WHERE deleted = 0 AND storage_policy_index = ?{where} "
                    f"ORDER BY name {order} LIMIT ?",
                    [storage_policy_index, *args, name_range.limit])

            return list_entries(fetch, params)

    def get_items_since(self, row_id: int, count: int) -> list[tuple[int, ObjectRecord]]:
        """Rows (live and tombstones, every policy) after ROWID `row_id`: replication's feed."""
        with self._transaction(write=False) as conn:
            return [(row[0], ObjectRecord(*row[1:])) for row in conn.execute(
                f"SELECT ROWID, {_RECORD_COLUMNS} FROM object WHERE ROWID > ? "
                "ORDER BY ROWID LIMIT ?", (row_id, count))]

    def get_max_row(self) -> int:
        with self._transaction(write=False) as conn:
            return conn.execute("SELECT coalesce(max(ROWID), -1) FROM object").fetchone()[0]

    def reclaim_tombstones(self, older_than: str) -> int:
        """Drop tombstone rows older than `older_than` (after the reclaim age, when every
        replica has seen them); returns how many went."""
        cutoff = Timestamp(older_than)
        with self._transaction(write=True) as conn:
            doomed: Sequence[tuple[str, int]] = [
                (name, policy) for name, created_at, policy in conn.execute(
                    "SELECT name, created_at, storage_policy_index FROM object "
                    "WHERE deleted = 1")
                if decode_timestamps(created_at)[0] < cutoff]
            conn.executemany("DELETE FROM object WHERE name = ? AND storage_policy_index = ?",
                             doomed)
            return len(doomed)
