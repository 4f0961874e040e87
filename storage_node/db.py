"""The sqlite base of container and account databases: one file per container or account.

Owns what both kinds share:
- where a database lives: `<devices>/<device>/<datadir>/<part>/<suffix>/<hash>/<hash>.db`;
- safe creation: the schema is built in a temp file beside the final one, fsynced, then
  hard-linked into place (the link fails if another creator won) and the directory fsynced;
- opening: WAL journal, `application_id` (a container DB opened as an account DB is refused),
  `user_version` schema versioning with forward migrations, busy timeout;
- transactions: writers queue on the hash directory's `.lock` (flock: woken at once, where
  sqlite's busy wait sleeps), then BEGIN IMMEDIATE, so a read is never upgraded to a write
  under contention; corrupt files are quarantined to `<device>/quarantined/<datadir>/`;
- connection reuse: each thread keeps a few idle connections, checked against the file's
  device and inode before reuse (closing the last connection of a WAL database checkpoints
  it and deletes the WAL, which would otherwise cost every request milliseconds);
- the one stat row: created_at, put/delete timestamps, status, status_changed_at, the
  order-independent `hash` of the rows (Swift's chexor), and metadata as JSON
  {name: [value, timestamp]} merged per name newest-wins, as Swift does.
Brokers block: servers run them off the hub with `storage_node.devices.DiskIOPool`.
`container_db` and `account_db` add their tables, triggers, merges and listings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from common.timestamp import Timestamp
from storage_node.durable import fsync_dir

ZERO_TIMESTAMP = Timestamp(0).internal
EMPTY_HASH = "0" * 32
DEFAULT_DB_TIMEOUT_S = 25.0                 # Swift's broker timeout
SQLITE_ARG_LIMIT = 500                      # bound parameters per statement, well under 999
QUARANTINE_DIR = "quarantined"
SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
# Open connections each thread keeps for reuse. Closing the last connection to a WAL database
# checkpoints it and deletes its WAL (milliseconds, with fsyncs), so brokers hand their
# connection back to their thread instead; hot databases then cost one commit per write.
CONNECTIONS_PER_THREAD = 8
# An idle connection older than this is closed (while its file is surely still in place).
IDLE_CONNECTION_TIMEOUT_S = 30.0
# sqlite messages that mean the file itself is bad (Swift's `possibly_quarantine` list, plus
# our own schema checks); anything else is a bug or a transient error, never a quarantine.
_CORRUPTION_MESSAGES = ("database disk image is malformed", "malformed database schema",
                        " is not a database", "disk i/o error", "not a ringstack",
                        "missing row in")

MetadataUpdates = Mapping[str, tuple[str, str]]       # name -> (value, internal timestamp)


class StatInfo(Protocol):
    """What the base needs of a broker's stat-row record (ContainerInfo, AccountInfo)."""

    @property
    def is_deleted(self) -> bool: ...


InfoT = TypeVar("InfoT", bound=StatInfo)


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


@dataclasses.dataclass
class _IdleConnection:
    conn: sqlite3.Connection
    lock_fd: int | None                  # the writers' lock file, open alongside
    file_id: tuple[int, int]             # (st_dev, st_ino) of the file it was opened on
    since: float                          # time.monotonic() when it went idle

    def close(self) -> None:
        _close_quietly(self.conn, self.lock_fd)


class _ThreadConnections(threading.local):
    """This thread's idle connections, least recently used first."""

    def __init__(self) -> None:
        self.idle: OrderedDict[tuple[Any, ...], _IdleConnection] = OrderedDict()


_THREAD_CONNECTIONS = _ThreadConnections()


def _file_id(path: str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the file at `path`, or None when there is none."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def _close_quietly(conn: sqlite3.Connection, lock_fd: int | None = None) -> None:
    # Safe even when the file was moved away and another database now sits at its path:
    # sqlite (3.22+) skips the close-time checkpoint, and so the deletion of `<path>-wal`
    # and `<path>-shm` by name, when the path no longer leads to the connection's file.
    with contextlib.suppress(sqlite3.Error):
        conn.close()
    _close_quietly_fd(lock_fd)


def _close_quietly_fd(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


class DatabaseBroker(Generic[InfoT]):
    """One container or account database file; not thread-safe, used by one call at a time.

    A broker opens its connection lazily and keeps it until `close()`, so one request's work
    runs on one connection (in one pool thread). Public methods each run one transaction.
    `close()` hands the connection to this thread's idle set for the next broker of the same
    file, which takes it only if the file is still the same one (device and inode: a
    replicated or quarantined file is never reached through an old connection).
    """

    db_type: ClassVar[str] = ""                 # "container" or "account"
    application_id: ClassVar[int] = 0           # PRAGMA application_id marking the kind
    schema_version: ClassVar[int] = 1           # PRAGMA user_version of a current file
    # version -> function upgrading a file from version - 1, run in one transaction.
    migrations: ClassVar[dict[int, Callable[[sqlite3.Connection], None]]] = {}

    def __init__(self, db_file: str, account: str, container: str | None = None,
                 timeout_s: float = DEFAULT_DB_TIMEOUT_S, synchronous: str = "FULL",
                 reuse_connections: bool = True):
        if synchronous.upper() not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}")
        self.db_file = db_file
        self.account = account
        self.container = container
        self.timeout_s = timeout_s
        self.synchronous = synchronous.upper()
        self.reuse_connections = reuse_connections
        self._conn: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._file_id: tuple[int, int] = (0, 0)
        self._reusable = True
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

    @property
    def _cache_key(self) -> tuple[Any, ...]:
        return (self.db_file, type(self), self.synchronous, self.timeout_s)

    def close(self) -> None:
        """Done with the connection: keep it idle for reuse, or close it if it is suspect."""
        conn, self._conn = self._conn, None
        lock_fd, self._lock_fd = self._lock_fd, None
        if conn is None:
            _close_quietly_fd(lock_fd)
            return
        if not (self.reuse_connections and self._reusable) or conn.in_transaction:
            _close_quietly(conn, lock_fd)
            return
        idle = _THREAD_CONNECTIONS.idle
        now = time.monotonic()
        idle[self._cache_key] = _IdleConnection(conn, lock_fd, self._file_id, now)
        idle.move_to_end(self._cache_key)
        while idle:
            oldest = next(iter(idle.values()))
            if len(idle) <= CONNECTIONS_PER_THREAD and \
                    now - oldest.since < IDLE_CONNECTION_TIMEOUT_S:
                break
            idle.popitem(last=False)
            oldest.close()

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
            fsync_dir(self.hash_dir)
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
        idle = _THREAD_CONNECTIONS.idle.pop(self._cache_key, None) \
            if self.reuse_connections else None
        file_id = _file_id(self.db_file)
        if idle is not None:
            if idle.file_id == file_id:
                self._conn, self._lock_fd, self._file_id = idle.conn, idle.lock_fd, file_id
                return idle.conn
            idle.close()                       # moved or replaced since
        if file_id is None:
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
        self._conn, self._file_id, self._reusable = conn, file_id, True
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
            if write:
                self._lock_writers()
            try:
                # IMMEDIATE takes sqlite's write lock up front, so a read-then-write never
                # fails on a lock upgrade.
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
            finally:
                if write and self._lock_fd is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        except sqlite3.DatabaseError as err:
            raise self._translate(err) from err

    def _lock_writers(self) -> None:
        """Queue on `<hash dir>/.lock` (Swift's lock file) before sqlite's write lock.

        Writers in other threads and processes wait in the kernel and are woken the moment
        the lock is free, where sqlite's own busy wait sleeps up to 100 ms between tries;
        that difference is most of a busy container's write throughput.
        """
        if self._lock_fd is None:
            self._lock_fd = os.open(os.path.join(self.hash_dir, ".lock"),
                                    os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

    def _translate(self, err: sqlite3.DatabaseError) -> DatabaseError:
        self._reusable = False             # whatever happened, do not hand this one on
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
        self._reusable = False
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

    def _info(self, conn: sqlite3.Connection) -> InfoT:
        """The stat row as the subclass's info record (ContainerInfo, AccountInfo)."""
        raise NotImplementedError

    def get_info(self) -> InfoT:
        with self._transaction(write=False) as conn:
            return self._info(conn)

    def get_info_and_metadata(self) -> tuple[InfoT, dict[str, list[str]]]:
        """Both from one snapshot (what HEAD and GET answer with)."""
        with self._transaction(write=False) as conn:
            return self._info(conn), self._metadata(conn)

    def is_deleted(self) -> bool:
        """Missing, or its info says deleted (each kind has its own rule for that)."""
        return not self.exists() or self.get_info().is_deleted

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


def rows_with_names(conn: sqlite3.Connection, table: str, columns: str,
                    names: Iterable[str]) -> Iterator[tuple[Any, ...]]:
    """`SELECT columns FROM table WHERE name IN names`, in chunks that stay under sqlite's
    limit on bound parameters (merges read the existing rows of a batch this way)."""
    names = list(names)
    for start in range(0, len(names), SQLITE_ARG_LIMIT):
        chunk = names[start:start + SQLITE_ARG_LIMIT]
        placeholders = ",".join("?" * len(chunk))
        yield from conn.execute(f"SELECT {columns} FROM {table} WHERE name IN ({placeholders})",
                                chunk)


def is_zero(count: object) -> bool:
    """Swift's `zero_like`: no count reported counts as zero."""
    return count in (None, "", 0, "0")
