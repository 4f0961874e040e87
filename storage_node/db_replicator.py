"""Container and account database replication (Swift's db_replicator), sender side.

Sections `[container-replicator]` and `[account-replicator]` (thin modules
`container_replicator` / `account_replicator` name the kind). Every `interval` seconds each
database on the node's devices is compared with its other replicas (the ring's primaries for
its partition) through `REPLICATE /<dev>/<part>/<hash>` on their servers
(`storage_node.db_replication_server` answers):

1. `sync`: send this copy's replication info (max ROWID, the rows' order-independent hash,
   its id, timestamps, metadata). The peer merges the put/delete timestamps and metadata
   (newest wins per name) and answers with its own info and its *sync point* for us: the
   highest of our ROWIDs it is known to hold. A 404 means the peer has no such database.
2. Equal hashes: nothing to send. Otherwise, if we are at most `per_diff * max_diffs` rows
   ahead of the sync point, send the rows after it in batches of `per_diff` (`merge_items`,
   merged by timestamp on the peer, so replays and reorders are harmless) and then record
   the new sync point on both sides (the peer's incoming, our outgoing).
3. The peer lacks the database, or is too far behind: send the whole file (a consistent
   snapshot made with sqlite's backup API) in one request; the peer installs it as its copy
   (`complete`), or merges its own rows into the received copy and swaps it in (`merge`).
   A received copy gets a new id of its own, with an incoming sync point for the sender's id.

A database on a device that is not one of its partition's primaries (a handoff) is pushed
to every primary and removed once all of them have it. Deleted databases older than
`reclaim_age` are removed, and container tombstone rows older than that are reclaimed.

Sync points live in a table this module adds to each database on first use
(`ringstack_sync`: remote id, direction, ROWID), so they travel with the file, as Swift's
incoming_sync/outgoing_sync tables do.

Stats go to the recon cache (`container.recon` / `account.recon`): `replication_time`,
`replication_last`, and `replication_stats` (attempted, success, failure, no_change, hashmatch,
rsync, diff, diff_capped, remove, remote_merge, empty ...).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import eventlet

from common.config import Config
from common.timestamp import Timestamp
from ring.ring import Node, Ring
from storage_node import direct_client, recon
from storage_node.account_db import DATADIR as ACCOUNT_DATADIR
from storage_node.account_db import AccountBroker, ContainerRecord
from storage_node.cluster_config import DEFAULT_SWIFT_DIR, ClusterConfig
from storage_node.container_db import DATADIR as CONTAINER_DATADIR
from storage_node.container_db import ContainerBroker, ObjectRecord
from storage_node.db import DatabaseBroker, DatabaseError, db_file_path
from storage_node.db_auditor import iter_db_files
from storage_node.devices import DeviceUnavailable, check_device

SYNC_TABLE = "ringstack_sync"
INCOMING, OUTGOING = "incoming", "outgoing"
FILE_HEADER = "X-Backend-Replicate-File"          # "complete" or "merge": the body is a DB
SENDER_ID_HEADER = "X-Backend-Replicate-Sender-Id"
SENDER_MAX_ROW_HEADER = "X-Backend-Replicate-Sender-Max-Row"
TMP_DIR = "tmp"


@dataclasses.dataclass(frozen=True)
class DbKind:
    """What differs between container and account replication."""

    name: str                           # "container" or "account"
    datadir: str
    broker_class: type[DatabaseBroker[Any]]
    record_class: type[Any]             # ObjectRecord or ContainerRecord
    recon_file: str


KINDS = {
    "container": DbKind("container", CONTAINER_DATADIR, ContainerBroker, ObjectRecord,
                        recon.CONTAINER_RECON),
    "account": DbKind("account", ACCOUNT_DATADIR, AccountBroker, ContainerRecord,
                      recon.ACCOUNT_RECON),
}


def kind_of_datadir(datadir: str) -> DbKind:
    return next(kind for kind in KINDS.values() if kind.datadir == datadir)


# ---- what replication reads and writes in a database ---------------------------------------------
# Brokers own their tables; these helpers add the sync-point table and the few statements
# replication needs, inside the broker's own write transaction (its writer lock included).

def open_broker(kind: DbKind, db_file: str) -> DatabaseBroker[Any]:
    # Names are only used to create a database; replication never creates through a broker.
    return kind.broker_class(db_file, account="", container="", reuse_connections=False)


@contextlib.contextmanager
def _write(broker: DatabaseBroker[Any]) -> Iterator[sqlite3.Connection]:
    with broker._transaction(write=True) as conn:      # noqa: SLF001 - see the note above
        conn.execute(f"CREATE TABLE IF NOT EXISTS {SYNC_TABLE} (remote_id TEXT NOT NULL, "
                     "direction TEXT NOT NULL, sync_point INTEGER NOT NULL, "
                     "updated_at TEXT NOT NULL, PRIMARY KEY (remote_id, direction))")
        yield conn


def replication_info(kind: DbKind, broker: DatabaseBroker[Any]) -> dict[str, Any]:
    """What `sync` sends: the stat row's identity, timestamps, hash, metadata and max row."""
    with broker._transaction(write=False) as conn:      # noqa: SLF001
        row = conn.execute(
            f"SELECT id, hash, created_at, put_timestamp, delete_timestamp, status, "
            f"metadata FROM {broker.stat_table}").fetchone()
        table = "object" if kind.name == "container" else "container"
        max_row = conn.execute(f"SELECT coalesce(max(ROWID), -1) FROM {table}").fetchone()[0]
        count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return {"id": row[0], "hash": row[1], "created_at": row[2], "put_timestamp": row[3],
            "delete_timestamp": row[4], "status": row[5],
            "metadata": json.loads(row[6]) if row[6] else {}, "max_row": max_row,
            "count": count}


def get_sync_point(broker: DatabaseBroker[Any], remote_id: str, direction: str) -> int:
    with _write(broker) as conn:
        row = conn.execute(f"SELECT sync_point FROM {SYNC_TABLE} WHERE remote_id = ? AND "
                           "direction = ?", (remote_id, direction)).fetchone()
    return int(row[0]) if row else -1


def set_sync_points(broker: DatabaseBroker[Any], points: dict[str, int],
                    direction: str) -> None:
    """Move sync points forward (never back: a late message must not undo progress)."""
    now = Timestamp.now().internal
    with _write(broker) as conn:
        for remote_id, point in points.items():
            conn.execute(
                f"INSERT INTO {SYNC_TABLE} (remote_id, direction, sync_point, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (remote_id, direction) DO UPDATE SET "
                "sync_point = max(sync_point, excluded.sync_point), updated_at = ?",
                (remote_id, direction, int(point), now, now))


def all_sync_points(broker: DatabaseBroker[Any], direction: str) -> dict[str, int]:
    with _write(broker) as conn:
        return dict(conn.execute(f"SELECT remote_id, sync_point FROM {SYNC_TABLE} "
                                 "WHERE direction = ?", (direction,)).fetchall())


def merge_remote_info(broker: DatabaseBroker[Any], info: dict[str, Any]) -> None:
    """Merge a peer's timestamps (earliest created, latest put and delete) and metadata."""
    broker.update_metadata({name: (str(pair[0]), str(pair[1]))
                            for name, pair in (info.get("metadata") or {}).items()})
    with _write(broker) as conn:
        table = broker.stat_table
        conn.execute(f"UPDATE {table} SET created_at = ? WHERE created_at > ?",
                     (info["created_at"], info["created_at"]))
        conn.execute(f"UPDATE {table} SET put_timestamp = ? WHERE put_timestamp < ?",
                     (info["put_timestamp"], info["put_timestamp"]))
        conn.execute(f"UPDATE {table} SET delete_timestamp = ? WHERE delete_timestamp < ?",
                     (info["delete_timestamp"], info["delete_timestamp"]))
        if info.get("status") == "DELETED":
            # An account DELETEd (awaiting the reaper) stays deleted unless PUT after it.
            conn.execute(f"UPDATE {table} SET status = 'DELETED', status_changed_at = ? "
                         "WHERE put_timestamp <= delete_timestamp AND status != 'DELETED'",
                         (info["delete_timestamp"],))


def set_new_id(broker: DatabaseBroker[Any], remote_id: str, remote_max_row: int) -> None:
    """A copy received whole: give it its own id, and remember it holds the sender's rows."""
    with _write(broker) as conn:
        conn.execute(f"UPDATE {broker.stat_table} SET id = ?", (str(uuid.uuid4()),))
        # The sync points copied from the sender describe the sender, not this copy.
        conn.execute(f"DELETE FROM {SYNC_TABLE}")
    set_sync_points(broker, {remote_id: remote_max_row}, INCOMING)


def snapshot(broker: DatabaseBroker[Any], tmp_dir: str) -> str:
    """A consistent copy of the database in `tmp_dir` (sqlite's online backup), for sending."""
    os.makedirs(tmp_dir, exist_ok=True)
    fd, path = tempfile.mkstemp(dir=tmp_dir, suffix=".db.snapshot")
    os.close(fd)
    source = sqlite3.connect(broker.db_file, timeout=broker.timeout_s)
    try:
        target = sqlite3.connect(path)
        try:
            source.backup(target)
        finally:
            target.close()
    except BaseException:
        os.unlink(path)
        raise
    finally:
        source.close()
    return path


# ---- the daemon --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ReplicatorSettings:
    devices: str = "/srv/node"
    mount_check: bool = True
    swift_dir: str = DEFAULT_SWIFT_DIR
    bind_ip: str = "0.0.0.0"
    bind_port: int = 0
    interval_s: float = 30.0
    concurrency: int = 8
    per_diff: int = 1000
    max_diffs: int = 100
    reclaim_age_s: float = 7 * 24 * 3600.0
    conn_timeout_s: float = 0.5
    node_timeout_s: float = 10.0
    recon_cache_path: str = "/srv/recon"

    @classmethod
    def from_config(cls, conf: Config, default_port: int) -> ReplicatorSettings:
        return cls(
            devices=conf.get_str("devices", cls.devices),
            mount_check=conf.get_bool("mount_check", cls.mount_check),
            swift_dir=conf.get_str("swift_dir", cls.swift_dir),
            bind_ip=conf.get_str("bind_ip", cls.bind_ip),
            bind_port=conf.get_int("bind_port", default_port, minimum=0),
            interval_s=conf.get_float("interval", cls.interval_s, minimum=0.0),
            concurrency=conf.get_int("concurrency", cls.concurrency, minimum=1),
            per_diff=conf.get_int("per_diff", cls.per_diff, minimum=1),
            max_diffs=conf.get_int("max_diffs", cls.max_diffs, minimum=1),
            reclaim_age_s=conf.get_float("reclaim_age", cls.reclaim_age_s, minimum=0.0),
            conn_timeout_s=conf.get_float("conn_timeout", cls.conn_timeout_s, minimum=0.01),
            node_timeout_s=conf.get_float("node_timeout", cls.node_timeout_s, minimum=0.01),
            recon_cache_path=recon.recon_cache_path(conf))


@dataclasses.dataclass
class ReplicationStats:
    attempted: int = 0        # databases looked at
    success: int = 0          # peer exchanges that ended in sync
    failure: int = 0          # peer exchanges that failed (no answer, error status)
    no_change: int = 0        # peers already holding every row (hash match or up to date)
    hashmatch: int = 0
    rsync: int = 0            # whole files sent
    remote_merge: int = 0     # whole files sent to merge into an existing copy
    diff: int = 0             # row batches sent
    diff_capped: int = 0      # peers still behind after max_diffs batches
    remove: int = 0           # handoff or reclaimed databases removed
    reclaimed_rows: int = 0
    empty: int = 0            # databases skipped as unreadable or missing


class DbReplicator:
    """One kind's replication over every local device (see the module docstring)."""

    def __init__(self, kind: DbKind, settings: ReplicatorSettings, logger: logging.Logger):
        self.kind = kind
        self.settings = settings
        self.logger = logger
        self.cluster = ClusterConfig.load(settings.swift_dir)
        self.ring = Ring(os.path.join(settings.swift_dir, f"{kind.name}.ring"),
                         self.cluster.secrets)
        self._timeouts = {"conn_timeout_s": settings.conn_timeout_s,
                          "node_timeout_s": settings.node_timeout_s, "logger": logger}

    def _is_local(self, node: Node, local_devices: set[str]) -> bool:
        ip_matches = self.settings.bind_ip in ("0.0.0.0", "::", node.ip) or \
            node.replication_ip == self.settings.bind_ip
        return node.port == self.settings.bind_port and ip_matches and \
            node.device in local_devices

    def run_pass(self) -> ReplicationStats:
        began = time.time()
        stats = ReplicationStats()
        self.ring.maybe_reload()
        local_devices = set(recon.list_devices(self.settings.devices))
        pool = eventlet.GreenPool(self.settings.concurrency)
        for device in sorted(local_devices):
            try:
                device_path = check_device(self.settings.devices, device,
                                           self.settings.mount_check)
            except DeviceUnavailable as err:
                self.logger.warning("%s replicator skipping %s", self.kind.name, err)
                continue
            for db_file in iter_db_files(device_path, self.kind.datadir):
                partition = int(db_file.split(os.sep)[-4])
                pool.spawn_n(self._replicate_safely, device, device_path, partition, db_file,
                             local_devices, stats)
        pool.waitall()
        elapsed = time.time() - began
        self.logger.info("%s replication pass: %d databases, %d in sync, %d failed, "
                         "%d rsyncs, %d diffs, %d removed in %.2fs", self.kind.name,
                         stats.attempted, stats.success, stats.failure, stats.rsync,
                         stats.diff, stats.remove, elapsed)
        recon.dump_recon_cache(self.settings.recon_cache_path, self.kind.recon_file, {
            "replication_time": round(elapsed, 3), "replication_last": time.time(),
            "replication_stats": {**dataclasses.asdict(stats), "start": began}}, self.logger)
        return stats

    def _replicate_safely(self, *args: Any) -> None:
        try:
            self.replicate_db(*args)
        except Exception:
            self.logger.exception("%s replication of %s failed", self.kind.name, args[3])
            args[-1].failure += 1

    def replicate_db(self, device: str, device_path: str, partition: int, db_file: str,
                     local_devices: set[str], stats: ReplicationStats) -> None:
        stats.attempted += 1
        broker = open_broker(self.kind, db_file)
        try:
            try:
                info = replication_info(self.kind, broker)
                if self._reclaim(broker, info, stats):
                    return
            except DatabaseError as err:
                self.logger.warning("%s replicator cannot read %s: %s", self.kind.name,
                                    db_file, err)
                stats.empty += 1
                return
            primaries = self.ring.get_part_nodes(partition)
            is_primary = any(node.device == device and self._is_local(node, local_devices)
                             for node in primaries)
            peers = [node for node in primaries if not self._is_local(node, local_devices)]
            name_hash = os.path.basename(os.path.dirname(db_file))
            results = [self.replicate_to(broker, info, node, partition, name_hash, stats)
                       for node in peers]
        finally:
            broker.close()
        if not is_primary and peers and all(results):
            # A handoff copy every primary now holds: it has done its job.
            shutil.rmtree(os.path.dirname(db_file), ignore_errors=True)
            stats.remove += 1

    def _reclaim(self, broker: DatabaseBroker[Any], info: dict[str, Any],
                 stats: ReplicationStats) -> bool:
        """Drop old tombstone rows; remove the database if deleted long ago (True)."""
        cutoff = Timestamp(max(0.0, time.time() - self.settings.reclaim_age_s))
        if isinstance(broker, ContainerBroker):
            stats.reclaimed_rows += broker.reclaim_tombstones(cutoff.internal)
        if broker.is_deleted() and Timestamp(info["delete_timestamp"]) < cutoff:
            broker.close()
            shutil.rmtree(os.path.dirname(broker.db_file), ignore_errors=True)
            stats.remove += 1
            return True
        return False

    def _replicate_op(self, node: Node, partition: int, name_hash: str, op: str,
                      args: Any) -> direct_client.HttpResult | None:
        body = json.dumps({"op": op, "args": args}).encode("utf-8")
        return direct_client.node_request(node, partition, "REPLICATE", f"/{name_hash}",
                                          headers={"Content-Type": "application/json"},
                                          body=body, **self._timeouts)

    def replicate_to(self, broker: DatabaseBroker[Any], info: dict[str, Any], node: Node,
                     partition: int, name_hash: str, stats: ReplicationStats) -> bool:
        """Bring one peer up to date; True when it holds every row we have."""
        result = self._replicate_op(node, partition, name_hash, "sync", info)
        if result is None or result.status == 507 or result.status >= 500:
            stats.failure += 1
            return False
        if result.status == 404:
            return self._send_file(broker, info, node, partition, name_hash, "complete", stats)
        if not 200 <= result.status < 300:
            stats.failure += 1
            return False
        remote = json.loads(result.body)
        if remote["hash"] == info["hash"]:
            stats.hashmatch += 1
            stats.no_change += 1
            stats.success += 1
            set_sync_points(broker, {remote["id"]: info["max_row"]}, OUTGOING)
            return True
        point = int(remote.get("point", -1))
        behind = info["max_row"] - point
        if behind > self.settings.per_diff * self.settings.max_diffs:
            return self._send_file(broker, info, node, partition, name_hash, "merge", stats)
        return self._send_rows(broker, info, remote, point, node, partition, name_hash, stats)

    def _send_rows(self, broker: DatabaseBroker[Any], info: dict[str, Any],
                   remote: dict[str, Any], point: int, node: Node, partition: int,
                   name_hash: str, stats: ReplicationStats) -> bool:
        batches = 0
        while batches < self.settings.max_diffs:
            rows = broker.get_items_since(point, self.settings.per_diff)  # type: ignore[attr-defined]
            if not rows:
                break
            result = self._replicate_op(node, partition, name_hash, "merge_items", {
                "items": [list(record.as_tuple()) for _row_id, record in rows],
                "source_id": info["id"], "source_point": rows[-1][0]})
            if result is None or not 200 <= result.status < 300:
                stats.failure += 1
                return False
            point = rows[-1][0]
            batches += 1
            stats.diff += 1
        if batches == 0:
            stats.no_change += 1
        set_sync_points(broker, {remote["id"]: point}, OUTGOING)
        if point < info["max_row"]:
            stats.diff_capped += 1
            return False
        stats.success += 1
        return True

    def _send_file(self, broker: DatabaseBroker[Any], info: dict[str, Any], node: Node,
                   partition: int, name_hash: str, mode: str, stats: ReplicationStats) -> bool:
        device_path = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.dirname(broker.db_file)))))
        path = snapshot(broker, os.path.join(device_path, TMP_DIR))
        try:
            with open(path, "rb") as handle:
                body = handle.read()
        finally:
            os.unlink(path)
        result = direct_client.node_request(
            node, partition, "REPLICATE", f"/{name_hash}", body=body,
            headers={FILE_HEADER: mode, SENDER_ID_HEADER: info["id"],
                     SENDER_MAX_ROW_HEADER: str(info["max_row"]),
                     "Content-Type": "application/octet-stream"}, **self._timeouts)
        if result is None or not 200 <= result.status < 300:
            stats.failure += 1
            return False
        if mode == "merge":
            stats.remote_merge += 1
        else:
            stats.rsync += 1
        stats.success += 1
        remote = json.loads(result.body) if result.body else {}
        if remote.get("id"):
            set_sync_points(broker, {remote["id"]: info["max_row"]}, OUTGOING)
        return True


def local_db_path(device_path: str, kind: DbKind, partition: int | str, name_hash: str) -> str:
    return db_file_path(device_path, kind.datadir, partition, name_hash)


def run_replicator(kind_name: str, default_port: int, conf: Config, logger: logging.Logger,
                   once: bool) -> int:
    """The daemon loop shared by container_replicator and account_replicator."""
    settings = ReplicatorSettings.from_config(conf, default_port)
    replicator = DbReplicator(KINDS[kind_name], settings, logger)
    while True:
        began = time.monotonic()
        replicator.run_pass()
        if once:
            return 0
        eventlet.sleep(max(0.0, settings.interval_s - (time.monotonic() - began)))
