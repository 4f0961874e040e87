"""One account's database: its container rows and totals, as Swift keeps them.

- Container rows (name, put_timestamp, delete_timestamp, object_count, bytes_used, deleted,
  storage_policy_index) arrive from container servers and replication and are merged by
  `merge_container_record` (pure): each of the put and delete timestamps keeps its newest
  value, and the row is deleted when deleted after its last put and empty (Swift's rule).
- Counts (object_count, bytes_used) are a report, not an event: the report with the newer
  `stats_timestamp` (the X-Timestamp the container server sends, or the arrival time) wins,
  so an old report replayed late from an async pending cannot overwrite a newer one. Swift
  keeps whichever arrived last; this is the one place we differ, on purpose.
- Totals (account and per policy) are kept by triggers on insert/delete (rows are replaced,
  never updated), so HEAD is one row read however many containers there are.
- The account is deleted when its status is DELETED (a DELETE, reaped later) or when it was
  deleted after its last PUT and holds no containers.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from common.timestamp import Timestamp
from storage_node.db import (
    EMPTY_HASH,
    ZERO_TIMESTAMP,
    DatabaseBroker,
    is_zero,
    rows_with_names,
)
from storage_node.listing import ListingParams, NameRange, Subdir, list_entries, name_range_sql

DATADIR = "accounts"


@dataclasses.dataclass(frozen=True)
class ContainerRecord:
    """One row of the container table."""

    name: str
    put_timestamp: str
    delete_timestamp: str
    object_count: int
    bytes_used: int
    deleted: int = 0
    storage_policy_index: int = 0
    stats_timestamp: str = ZERO_TIMESTAMP

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.name, self.put_timestamp, self.delete_timestamp, self.object_count,
                self.bytes_used, self.deleted, self.storage_policy_index, self.stats_timestamp)


def container_row_deleted(put_timestamp: str, delete_timestamp: str, object_count: int) -> int:
    return int(Timestamp(delete_timestamp) > Timestamp(put_timestamp) and is_zero(object_count))


def merge_container_record(new: ContainerRecord,
                           existing: ContainerRecord | None) -> ContainerRecord:
    """The row to keep for a container report (see the module docstring for the rules)."""
    put_timestamp, delete_timestamp = new.put_timestamp, new.delete_timestamp
    counts_from, policy_from = new, new
    if existing is not None:
        put_timestamp = max(Timestamp(put_timestamp), Timestamp(existing.put_timestamp)).internal
        delete_timestamp = max(Timestamp(delete_timestamp),
                               Timestamp(existing.delete_timestamp)).internal
        if Timestamp(existing.stats_timestamp) > Timestamp(new.stats_timestamp):
            counts_from = existing
        if Timestamp(existing.put_timestamp) > Timestamp(new.put_timestamp):
            policy_from = existing      # the policy of the newest incarnation
    return ContainerRecord(
        new.name, Timestamp(put_timestamp).internal, Timestamp(delete_timestamp).internal,
        counts_from.object_count, counts_from.bytes_used,
        container_row_deleted(put_timestamp, delete_timestamp, counts_from.object_count),
        policy_from.storage_policy_index, Timestamp(counts_from.stats_timestamp).internal)


@dataclasses.dataclass(frozen=True)
class AccountInfo:
    account: str
    created_at: str
    put_timestamp: str
    delete_timestamp: str
    status: str
    status_changed_at: str
    container_count: int
    object_count: int
    bytes_used: int
    hash: str
    id: str

    @property
    def is_status_deleted(self) -> bool:
        """DELETEd (awaiting the reaper), or deleted after its last PUT."""
        return self.status == "DELETED" or \
            Timestamp(self.delete_timestamp) > Timestamp(self.put_timestamp)

    @property
    def is_deleted(self) -> bool:
        return self.status == "DELETED" or (
            is_zero(self.container_count) and
            Timestamp(self.delete_timestamp) > Timestamp(self.put_timestamp))


_SCHEMA = """
CREATE TABLE container (
    ROWID INTEGER PRIMARY KEY AUTOINCREMENT,   -- replication sync points; never reused
    name TEXT NOT NULL,
    put_timestamp TEXT NOT NULL,
    delete_timestamp TEXT NOT NULL,
    object_count INTEGER NOT NULL,
    bytes_used INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    storage_policy_index INTEGER NOT NULL DEFAULT 0,
    stats_timestamp TEXT NOT NULL
);
CREATE UNIQUE INDEX ix_container_name ON container (name);
-- Listings: live rows in name order; deleted rows are not even in the index.
CREATE INDEX ix_container_listing ON container (name) WHERE deleted = 0;

CREATE TABLE account_stat (
    account TEXT NOT NULL,
    created_at TEXT NOT NULL,
    put_timestamp TEXT NOT NULL,
    delete_timestamp TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT '',
    status_changed_at TEXT NOT NULL,
    container_count INTEGER NOT NULL DEFAULT 0,
    object_count INTEGER NOT NULL DEFAULT 0,
    bytes_used INTEGER NOT NULL DEFAULT 0,
    hash TEXT NOT NULL,
    id TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT ''
);

CREATE TABLE policy_stat (
    storage_policy_index INTEGER PRIMARY KEY,
    container_count INTEGER NOT NULL DEFAULT 0,
    object_count INTEGER NOT NULL DEFAULT 0,
    bytes_used INTEGER NOT NULL DEFAULT 0
);

CREATE TRIGGER container_no_update BEFORE UPDATE ON container
BEGIN
    SELECT RAISE(FAIL, 'UPDATE not allowed; DELETE and INSERT');
END;

CREATE TRIGGER container_insert AFTER INSERT ON container
BEGIN
    UPDATE account_stat
        SET container_count = container_count + (1 - new.deleted),
            object_count = object_count + new.object_count,
            bytes_used = bytes_used + new.bytes_used,
            hash = chexor(hash, new.name, new.put_timestamp || '-' || new.delete_timestamp
                          || '-' || new.object_count || '-' || new.bytes_used);
    INSERT OR IGNORE INTO policy_stat (storage_policy_index)
        VALUES (new.storage_policy_index);
    UPDATE policy_stat
        SET container_count = container_count + (1 - new.deleted),
            object_count = object_count + new.object_count,
            bytes_used = bytes_used + new.bytes_used
        WHERE storage_policy_index = new.storage_policy_index;
END;

CREATE TRIGGER container_delete AFTER DELETE ON container
BEGIN
    UPDATE account_stat
        SET container_count = container_count - (1 - old.deleted),
            object_count = object_count - old.object_count,
            bytes_used = bytes_used - old.bytes_used,
            hash = chexor(hash, old.name, old.put_timestamp || '-' || old.delete_timestamp
                          || '-' || old.object_count || '-' || old.bytes_used);
    UPDATE policy_stat
        SET container_count = container_count - (1 - old.deleted),
            object_count = object_count - old.object_count,
            bytes_used = bytes_used - old.bytes_used
        WHERE storage_policy_index = old.storage_policy_index;
END;
"""

_INFO_COLUMNS = ("account, created_at, put_timestamp, delete_timestamp, status, "
                 "status_changed_at, container_count, object_count, bytes_used, hash, id")
_RECORD_COLUMNS = ("name, put_timestamp, delete_timestamp, object_count, bytes_used, deleted, "
                   "storage_policy_index, stats_timestamp")
# name, object_count, bytes_used, put_timestamp, storage_policy_index
ContainerRow = tuple[str, int, int, str, int]


class AccountBroker(DatabaseBroker[AccountInfo]):
    """An account database file; see the module docstring for the rules it keeps."""

    db_type = "account"
    application_id = 0x52534131                 # "RSA1"
    schema_version = 1

    def _create_schema(self, conn: sqlite3.Connection, put_timestamp: str, **_: Any) -> None:
        conn.executescript(_SCHEMA)
        conn.execute(
            "INSERT INTO account_stat (account, created_at, put_timestamp, delete_timestamp, "
            "status_changed_at, hash, id) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.account, Timestamp.now().internal, put_timestamp, ZERO_TIMESTAMP,
             put_timestamp, EMPTY_HASH, str(uuid.uuid4())))

    def _info(self, conn: sqlite3.Connection) -> AccountInfo:
        row = conn.execute(f"SELECT {_INFO_COLUMNS} FROM account_stat").fetchone()
        if row is None:
            raise sqlite3.DatabaseError("missing row in account_stat")
        return AccountInfo(*row)

    def get_policy_stats(self) -> dict[int, dict[str, int]]:
        with self._transaction(write=False) as conn:
            return {index: {"container_count": containers, "object_count": objects,
                            "bytes_used": used}
                    for index, containers, objects, used in conn.execute(
                        "SELECT storage_policy_index, container_count, object_count, "
                        "bytes_used FROM policy_stat")}

    def empty(self) -> bool:
        return is_zero(self.get_info().container_count)

    def put_container(self, name: str, put_timestamp: str, delete_timestamp: str,
                      object_count: int, bytes_used: int, storage_policy_index: int = 0,
                      stats_timestamp: str | None = None) -> bool:
        """Merge one container report; True if the row changed."""
        record = ContainerRecord(
            name, Timestamp(put_timestamp).internal, Timestamp(delete_timestamp).internal,
            object_count, bytes_used,
            container_row_deleted(put_timestamp, delete_timestamp, object_count),
            storage_policy_index,
            Timestamp(stats_timestamp or Timestamp.now()).internal)
        return self.merge_items([record]) > 0

    def merge_items(self, records: Iterable[ContainerRecord]) -> int:
        """Merge many rows in one transaction; returns how many rows were written."""
        records = list(records)
        if not records:
            return 0
        with self._transaction(write=True) as conn:
            existing: dict[str, ContainerRecord] = {}
            names = sorted({record.name for record in records})
            for row in rows_with_names(conn, "container", _RECORD_COLUMNS, names):
                existing[row[0]] = ContainerRecord(*row)
            to_write: dict[str, ContainerRecord] = {}
            for record in records:
                base = to_write.get(record.name) or existing.get(record.name)
                merged = merge_container_record(record, base)
                if merged != base:
                    to_write[record.name] = merged
            to_write = {name: record for name, record in to_write.items()
                        if record != existing.get(name)}
            conn.executemany("DELETE FROM container WHERE name = ?",
                             [(name,) for name in to_write if name in existing])
            conn.executemany(f"INSERT INTO container ({_RECORD_COLUMNS}) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             [record.as_tuple() for record in to_write.values()])
            return len(to_write)

    def list_containers(self, params: ListingParams) -> list[ContainerRow | Subdir]:
        """A listing page of live containers (one snapshot for all its fetches)."""
        with self._transaction(write=False) as conn:
            # A cursor, not a list: with a delimiter the walk reads one row of a directory
            # and jumps past it, so the rest of the fetch is never materialised.
            def fetch(name_range: NameRange) -> Iterator[ContainerRow]:
                conditions, args = name_range_sql(name_range, params.allow_reserved)
                where = "".join(" AND " + condition for condition in conditions)
                order = "DESC" if name_range.reverse else "ASC"
                return conn.execute(
                    "SELECT name, object_count, bytes_used, put_timestamp, "
                    f"storage_policy_index FROM container WHERE deleted = 0{where} "
                    f"ORDER BY name {order} LIMIT ?", [*args, name_range.limit])

            return list_entries(fetch, params)

    def get_items_since(self, row_id: int, count: int) -> list[tuple[int, ContainerRecord]]:
        """Rows (live and deleted) after ROWID `row_id`: replication's feed."""
        with self._transaction(write=False) as conn:
            return [(row[0], ContainerRecord(*row[1:])) for row in conn.execute(
                f"SELECT ROWID, {_RECORD_COLUMNS} FROM container WHERE ROWID > ? "
                "ORDER BY ROWID LIMIT ?", (row_id, count))]
