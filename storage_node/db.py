"""The sqlite base of container and account databases: one file per container or account.

Owns what both kinds share:
- where a database lives: `<devices>/<device>/<datadir>/<part>/<suffix>/<hash>/<hash>.db`;
- safe creation: the schema is built in a temp file beside the final one, fsynced, then
  hard-linked into place (the link fails if another creator won) and the directory fsynced;
- opening: WAL journal, `application_id` (a container DB opened as an account DB is refused),
  `user_version` schema versioning with forward migrations, busy timeout;
- transactions: writes start with BEGIN IMMEDIATE so a read never has to be upgraded to a
  write under contention; corrupt files are quarantined to `<device>/quarantined/<datadir>/`;
- the one stat row: created_at, put/delete timestamps, status, status_changed_at, the
  order-independent `hash` of the rows (Swift's chexor), and metadata as JSON
  {name: [value, timestamp]} merged per name newest-wins, as Swift does;
- running broker calls off the eventlet hub on a bounded per-device pool of real threads.
`container_db` and `account_db` add their tables, triggers, merges and listings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Self, TypeVar

import eventlet.hubs

from common.timestamp import Timestamp

ZERO_TIMESTAMP = Timestamp(0).internal
EMPTY_HASH = "0" * 32
DEFAULT_DB_TIMEOUT_S = 25.0                 # Swift's broker timeout
SQLITE_ARG_LIMIT = 500                      # bound parameters per statement, well under 999
QUARANTINE_DIR = "quarantined"
SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
DEFAULT_THREADS_PER_DEVICE = 4
# sqlite messages that mean the file itself is bad (Swift's `possibly_quarantine` list, plus
# our own schema checks); anything else is a bug or a transient error, never a quarantine.
_CORRUPTION_MESSAGES = ("database disk image is malformed", "malformed database schema",
                        " is not a database", "disk i/o error", "not a ringstack",
                        "missing row in")

T = TypeVar("T")
MetadataUpdates = Mapping[str, tuple[str, str]]       # name -> (value, internal timestamp)


class DatabaseError(Exception):
    """Base of the errors brokers raise on purpose."""


class DatabaseNotFound(DatabaseError):
    """No database file at this path (never created, or reclaimed)."""


class DatabaseAlreadyExists(DatabaseError):
    """`initialize` lost the race: another request created the database first."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot serve now: locked past the timeout, quarantined, or too new."""


class DatabaseFull(DatabaseError):
    """sqlite could not write: the device is full (the server answers 507, as for ENOSPC)."""


class MetadataError(DatabaseError):
    """Metadata over Swift's limits or not UTF-8; the message is Swift's 400 body."""


# ---------------------------------------------------------------------------------------------
# Where databases live


def db_file_path(device_path: str, datadir: str, partition: int | str, name_hash: str) -> str:
    """`<device>/<datadir>/<part>/<suffix>/<hash>/<hash>.db`, the suffix being the hash's tail."""
    return os.path.join(device_path, datadir, str(partition), name_hash[-3:], name_hash,
                        name_hash + ".db")


# ---------------------------------------------------------------------------------------------
# Metadata: pure rules


@dataclasses.dataclass(frozen=True)
class MetadataLimits:
    """Swift's limits on user metadata (X-*-Meta-*); sysmeta is not counted, as in Swift."""

    max_count: int = 90
    max_overall_size: int = 4096


def merge_metadata(current: Mapping[str, Any],
                   updates: MetadataUpdates) -> dict[str, list[str]]:
    """Per name, the value with the newer timestamp wins; an equal timestamp keeps `current`.

    A value of "" is a deletion that still carries its timestamp, so an older set arriving
    later (replication, a slow replica) cannot bring the name back.
    """
    merged = {name: [str(pair[0]), str(pair[1])] for name, pair in current.items()}
    for name, (value, timestamp) in updates.items():
        known = merged.get(name)
        if known is None or Timestamp(timestamp) > Timestamp(known[1]):
            merged[name] = [value, Timestamp(timestamp).internal]
    return merged


def check_metadata_limits(metadata: Mapping[str, Any], limits: MetadataLimits) -> None:
    """Swift's `validate_metadata`: counts and sizes only user metadata that is set."""
    count = size = 0
    for name, pair in metadata.items():
        value = pair[0]
        lowered = name.lower()
        for prefix in ("x-account-meta-", "x-container-meta-"):
            if value and lowered.startswith(prefix):
                count += 1
                size += len(name) - len(prefix) + len(value)
    if count > limits.max_count:
        raise MetadataError(f"Too many metadata items; max {limits.max_count}")
    if size > limits.max_overall_size:
        raise MetadataError(f"Total metadata too large; max {limits.max_overall_size}")


def chexor(old_hash: str, name: str, timestamp: str) -> str:
    """Swift's running hash of a table: XOR of md5("name-timestamp") over its rows.

    XOR makes it independent of row order, so two replicas with the same rows have the same
    hash however the rows arrived; replication compares it before comparing rows.
    """
    new_hash = hashlib.md5(f"{name}-{timestamp}".encode("utf-8", "surrogatepass"),
                           usedforsecurity=False).hexdigest()
    return f"{int(old_hash, 16) ^ int(new_hash, 16):032x}"


# ---------------------------------------------------------------------------------------------
# The broker base


class DatabaseBroker:
    """One container or account database file; not thread-safe, used by one call at a time.

    A broker opens its connection lazily and keeps it until `close()`, so one request's work
    runs on one connection (in one pool thread). Public methods each run one transaction.
    """

    db_type: ClassVar[str] = ""                 # "container" or "account"
    application_id: ClassVar[int] = 0           # PRAGMA application_id marking the kind
    schema_version: ClassVar[int] = 1           # PRAGMA user_version of a current file
    # version -> function upgrading a file from version - 1, run in one transaction.
    migrations: ClassVar[dict[int, Callable[[sqlite3.Connection], None]]] = {}

    def __init__(self, db_file: str, account: str, container: str | None = None,
                 timeout_s: float = DEFAULT_DB_TIMEOUT_S, synchronous: str = "FULL"):
        if synchronous.upper() not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}")
        self.db_file = db_file
        self.account = account
        self.container = container
        self.timeout_s = timeout_s
        self.synchronous = synchronous.upper()
        self._conn: sqlite3.Connection | None = None
        self._transaction_kind: str | None = None

    @property
    def stat_table(self) -> str:
        return f"{self.db_type}_stat"

    @property
    def hash_dir(self) -> str:
        return os.path.dirname(self.db_file)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def exists(self) -> bool:
        return os.path.exists(self.db_file)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    # -- creation ----------------------------------------------------------------------------

    def _create_schema(self, conn: sqlite3.Connection, put_timestamp: str,
                       **kwargs: Any) -> None:
        """Create the kind's tables and its stat row (subclasses)."""
        raise NotImplementedError

    def initialize(self, put_timestamp: str, **kwargs: Any) -> None:
        """Create the database; DatabaseAlreadyExists if it is already there.

        The schema is built in a temp file (fast, unsynced), which is then fsynced and
        hard-linked to the final name: a crash leaves either no database or a whole one, and
        two concurrent creators cannot both succeed.
        """
        os.makedirs(self.hash_dir, exist_ok=True)
        if self.exists():
            raise DatabaseAlreadyExists(self.db_file)
        fd, tmp_path = tempfile.mkstemp(suffix=".tmp", dir=self.hash_dir)
        os.close(fd)
        try:
            self._build(tmp_path, put_timestamp, **kwargs)
            with open(tmp_path, "rb+") as handle:
                os.fsync(handle.fileno())
            try:
                os.link(tmp_path, self.db_file)
            except FileExistsError:
                raise DatabaseAlreadyExists(self.db_file) from None
            _fsync_dir(self.hash_dir)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_path)

    def _build(self, tmp_path: str, put_timestamp: str, **kwargs: Any) -> None:
        """The schema and stat row in a private temp file (fast: it is fsynced once after)."""
        try:
            conn = sqlite3.connect(tmp_path, isolation_level=None)
            try:
                conn.create_function("chexor", 3, chexor, deterministic=True)
                conn.execute("PRAGMA synchronous = OFF")       # one fsync at the end instead
                conn.execute("PRAGMA journal_mode = MEMORY")
                # Autocommit statements: nobody else sees this file until it is linked in,
                # so atomicity comes from the link, not from a transaction.
                self._create_schema(conn, Timestamp(put_timestamp).internal, **kwargs)
                conn.execute(f"PRAGMA application_id = {int(self.application_id)}")
                conn.execute(f"PRAGMA user_version = {int(self.schema_version)}")
                conn.execute("PRAGMA journal_mode = WAL")        # persistent in the header
            finally:
                conn.close()
        except sqlite3.DatabaseError as err:
            if "database or disk is full" in str(err).lower():
                raise DatabaseFull(f"{self.db_file}: {err}") from err
            raise

    # -- connections and transactions --------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        if not self.exists():
            raise DatabaseNotFound(self.db_file)
        conn = sqlite3.connect(self.db_file, timeout=self.timeout_s, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.create_function("chexor", 3, chexor, deterministic=True)
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            self._check_schema(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        application_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if application_id != self.application_id:
            raise sqlite3.DatabaseError(
                f"not a ringstack {self.db_type} database (application_id {application_id:#x})")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > self.schema_version:
            # A newer ringstack wrote this file: refuse rather than misread it.
            raise DatabaseUnavailable(f"{self.db_file}: schema version {version} is newer "
                                      f"than this server's {self.schema_version}")
        while version < self.schema_version:
            version += 1
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute("PRAGMA user_version").fetchone()[0] < version:
                    self.migrations[version](conn)
                    conn.execute(f"PRAGMA user_version = {version}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _transaction(self, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction; nested calls join the outer one (a write may not nest in a read)."""
        kind = "write" if write else "read"
        if self._transaction_kind is not None:
            if write and self._transaction_kind == "read":
                raise RuntimeError("a write cannot join a read transaction")
            yield self._connect()
            return
        try:
            conn = self._connect()
            # IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so a
            # read-then-write never fails on a lock upgrade.
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            self._transaction_kind = kind
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._transaction_kind = None
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as err:
            raise self._translate(err) from err

    def _translate(self, err: sqlite3.DatabaseError) -> DatabaseError:
        text = str(err).lower()
        if "database or disk is full" in text:
            return DatabaseFull(f"{self.db_file}: {err}")
        if isinstance(err, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            return DatabaseUnavailable(f"{self.db_file}: {err}")
        if any(message in text for message in _CORRUPTION_MESSAGES):
            where = self.quarantine(str(err))
            return DatabaseUnavailable(f"{self.db_file}: quarantined to {where}: {err}")
        return DatabaseUnavailable(f"{self.db_file}: {err}")

    def quarantine(self, reason: str) -> str:
        """Move this database's directory aside (Swift's layout); returns where it went.

        The replicator recreates the database from another replica; the quarantined copy is
        kept for an operator.
        """
        self.close()
        hash_dir = self.hash_dir
        datadir_path = os.path.dirname(os.path.dirname(os.path.dirname(hash_dir)))
        device_path, datadir = os.path.split(datadir_path)
        target_dir = os.path.join(device_path, QUARANTINE_DIR, datadir)
        os.makedirs(target_dir, exist_ok=True)
        target = os.path.join(target_dir, os.path.basename(hash_dir))
        if os.path.exists(target):
            target += "-" + uuid.uuid4().hex
        with contextlib.suppress(FileNotFoundError):
            os.rename(hash_dir, target)
            with open(os.path.join(target, "QUARANTINE_REASON"), "w") as handle:
                handle.write(reason + "\n")
        return target

    # -- the stat row ------------------------------------------------------------------------

    def _stat_row(self, conn: sqlite3.Connection) -> dict[str, Any]:
        cursor = conn.execute(f"SELECT * FROM {self.stat_table}")
        row = cursor.fetchone()
        if row is None:
            raise sqlite3.DatabaseError(f"missing row in {self.stat_table}")
        return dict(zip([column[0] for column in cursor.description], row, strict=True))

    def get_metadata(self) -> dict[str, list[str]]:
        """All metadata, including deletions: {name: [value ("" = deleted), timestamp]}."""
        with self._transaction(write=False) as conn:
            return self._metadata(conn)

    def _metadata(self, conn: sqlite3.Connection) -> dict[str, list[str]]:
        text = conn.execute(f"SELECT metadata FROM {self.stat_table}").fetchone()[0]
        return json.loads(text) if text else {}

    def update_metadata(self, updates: MetadataUpdates,
                        limits: MetadataLimits | None = None) -> None:
        """Merge per name, newest wins; MetadataError (nothing written) if over `limits`."""
        if not updates:
            return
        with self._transaction(write=True) as conn:
            merged = merge_metadata(self._metadata(conn), updates)
            if limits is not None:
                check_metadata_limits(merged, limits)
            conn.execute(f"UPDATE {self.stat_table} SET metadata = ?",
                         (json.dumps(merged, ensure_ascii=False),))

    def update_put_timestamp(self, timestamp: str) -> None:
        """Move put_timestamp forward only."""
        with self._transaction(write=True) as conn:
            self._update_put_timestamp(conn, timestamp)

    def _update_put_timestamp(self, conn: sqlite3.Connection, timestamp: str) -> None:
        # Internal timestamps are fixed width, so text order is time order.
        internal = Timestamp(timestamp).internal
        conn.execute(f"UPDATE {self.stat_table} SET put_timestamp = ? WHERE put_timestamp < ?",
                     (internal, internal))

    def _update_status_changed_at(self, conn: sqlite3.Connection, timestamp: str) -> None:
        internal = Timestamp(timestamp).internal
        conn.execute(f"UPDATE {self.stat_table} SET status_changed_at = ? "
                     "WHERE status_changed_at < ?", (internal, internal))

    def _mark_deleted(self, conn: sqlite3.Connection, timestamp: str) -> None:
        """Swift's `delete_db`: clear the metadata, then record the delete timestamp."""
        internal = Timestamp(timestamp).internal
        current = self._metadata(conn)
        cleared = merge_metadata(current, {name: ("", internal) for name in current})
        conn.execute(f"UPDATE {self.stat_table} SET metadata = ?",
                     (json.dumps(cleared, ensure_ascii=False),))
        conn.execute(f"UPDATE {self.stat_table} SET delete_timestamp = ?, status = 'DELETED', "
                     "status_changed_at = ? WHERE delete_timestamp < ?",
                     (internal, internal, internal))

    def delete_db(self, timestamp: str) -> None:
        with self._transaction(write=True) as conn:
            self._mark_deleted(conn, timestamp)

    # -- integrity ---------------------------------------------------------------------------

    def integrity_check(self) -> list[str]:
        """Problems found by sqlite's quick_check and the schema checks ([] when sound).

        For auditors; it does not quarantine by itself.
        """
        try:
            with self._transaction(write=False) as conn:
                problems = [row[0] for row in conn.execute("PRAGMA quick_check")
                            if row[0] != "ok"]
                self._stat_row(conn)
                return problems
        except DatabaseUnavailable as err:
            return [str(err)]


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_zero(count: object) -> bool:
    """Swift's `zero_like`: no count reported counts as zero."""
    return count in (None, "", 0, "0")


# ---------------------------------------------------------------------------------------------
# Running broker calls off the hub


class BlockingPool:
    """A bounded set of real threads for blocking calls, awaited without blocking the hub.

    The calling green thread waits on a pipe the worker writes to when done; the wait is on
    the caller's own hub, so several hubs in several OS threads (tests run servers that way)
    can share nothing and still work, which eventlet.tpool's single trampoline does not allow.
    """

    def __init__(self, max_threads: int, name: str = "db"):
        self._executor = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix=name)

    def run(self, func: Callable[..., T], *args: Any) -> T:
        read_fd, write_fd = os.pipe()
        outcome: list[tuple[bool, Any]] = []

        def call() -> None:
            try:
                outcome.append((True, func(*args)))
            except BaseException as err:        # handed to the waiting green thread
                outcome.append((False, err))
            finally:
                # The waiter may be gone (killed by a timeout): then the pipe is broken.
                with contextlib.suppress(OSError):
                    os.write(write_fd, b"\0")
                os.close(write_fd)

        try:
            self._executor.submit(call)
        except BaseException:
            os.close(write_fd)
            os.close(read_fd)
            raise
        try:
            eventlet.hubs.trampoline(read_fd, read=True)
        finally:
            os.close(read_fd)
        succeeded, value = outcome[0]
        if not succeeded:
            raise value
        return value

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)


class DevicePools:
    """One BlockingPool per device, so a slow disk only stalls requests for that disk."""

    def __init__(self, threads_per_device: int = DEFAULT_THREADS_PER_DEVICE):
        self.threads_per_device = threads_per_device
        self._pools: dict[str, BlockingPool] = {}
        self._lock = threading.Lock()

    def run(self, device: str, func: Callable[..., T], *args: Any) -> T:
        pool = self._pools.get(device)
        if pool is None:
            with self._lock:
                pool = self._pools.setdefault(
                    device, BlockingPool(self.threads_per_device, f"db-{device}"))
        return pool.run(func, *args)

    def shutdown(self) -> None:
        for pool in self._pools.values():
            pool.shutdown()
