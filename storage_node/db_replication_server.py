"""The receiving side of database replication: `REPLICATE /<dev>/<part>/<hash>`.

The container and account servers (`storage_node.db_server.DbServer`) hand REPLICATE
requests here. Two shapes (the sender is `storage_node.db_replicator`):

- A JSON body `{"op": ..., "args": ...}`:
  - `sync` (args: the sender's replication info): 404 when there is no database here;
    otherwise merge the sender's timestamps and metadata and answer with this copy's info
    plus `point`, this copy's incoming sync point for the sender's id.
  - `merge_items` (args: items as row lists, source_id, source_point): merge the rows by
    timestamp (`merge_items` of the broker) and move the incoming sync point for
    source_id to source_point. 202.
- A whole database as the body, with `X-Backend-Replicate-File: complete|merge`,
  `X-Backend-Replicate-Sender-Id` and `-Sender-Max-Row`: the file is written to `<dev>/tmp`,
  checked (sqlite quick_check, the right kind of database, the right names for this hash),
  given a new id of its own and an incoming sync point for the sender, then:
  `complete` moves it into place if there is still no database here (else merges like
  `merge`); `merge` first merges this copy's rows, timestamps and metadata into it, then
  swaps it in. Writers queue on the database's lock while the swap happens. 201/202 with
  the new copy's info.
Work runs on the device's sqlite threads (`DbServer.run_db`); errors map to statuses in
`DbServer.__call__` (DatabaseError -> 503, DeviceUnavailable -> 507, ...).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import tempfile
from typing import TYPE_CHECKING, Any

import webob

from storage_node.db import DatabaseBroker, DatabaseNotFound, DatabaseUnavailable
from storage_node.db_replicator import (
    FILE_HEADER,
    INCOMING,
    SENDER_ID_HEADER,
    SENDER_MAX_ROW_HEADER,
    TMP_DIR,
    DbKind,
    get_sync_point,
    kind_of_datadir,
    merge_remote_info,
    open_broker,
    replication_info,
    set_new_id,
    set_sync_points,
)
from storage_node.db_server import HttpError, parse_request_path, reply
from storage_node.durable import fsync_dir

if TYPE_CHECKING:
    from storage_node.db_server import DbServer

UPLOAD_CHUNK_BYTES = 1 << 20
MAX_JSON_BYTES = 256 * 1024 * 1024
MERGE_BATCH_ROWS = 1000


def handle_replicate(server: DbServer, request: webob.Request) -> webob.Response:
    """The REPLICATE request handler (see the module docstring)."""
    parts = parse_request_path(request.environ, 3, 3)
    device, partition, name_hash = (str(part) for part in parts)
    if len(name_hash) != 32 or any(c not in "0123456789abcdef" for c in name_hash):
        raise HttpError(400, f"Invalid hash: {name_hash}")
    device_path = server.check_device(device)
    kind = kind_of_datadir(server.datadir)
    db_file = os.path.join(device_path, server.datadir, partition, name_hash[-3:], name_hash,
                           name_hash + ".db")
    mode = request.headers.get(FILE_HEADER)
    if mode is not None:
        if mode not in ("complete", "merge"):
            raise HttpError(400, f"Invalid {FILE_HEADER}")
        sender_id = request.headers.get(SENDER_ID_HEADER, "")
        max_row_text = request.headers.get(SENDER_MAX_ROW_HEADER, "-1").strip()
        if not sender_id or not max_row_text.lstrip("-").isdigit():
            raise HttpError(400, "Missing sender id or max row")
        tmp_path = _receive_file(request, os.path.join(device_path, TMP_DIR))
        try:
            status, info = server.run_db(device, _install, server, kind, db_file, tmp_path,
                                         name_hash, mode, sender_id, int(max_row_text))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_path)
        return _json(status, info)
    if (request.content_length or 0) > MAX_JSON_BYTES:
        raise HttpError(413)
    try:
        message = json.loads(request.body)
        op, args = message["op"], message["args"]
    except (ValueError, KeyError, TypeError):
        raise HttpError(400, "Invalid REPLICATE body") from None
    if op == "sync":
        return _json(200, server.run_db(device, _sync, kind, db_file, args))
    if op == "merge_items":
        server.run_db(device, _merge_items, kind, db_file, args)
        return reply(202)
    raise HttpError(400, f"Unknown REPLICATE op {op!r}")


def _json(status: int, body: Any) -> webob.Response:
    return reply(status, body=json.dumps(body).encode("utf-8"),
                 content_type="application/json")


def _sync(kind: DbKind, db_file: str, remote: dict[str, Any]) -> dict[str, Any]:
    if not os.path.exists(db_file):
        raise DatabaseNotFound(db_file)
    with open_broker(kind, db_file) as broker:
        merge_remote_info(broker, remote)
        info = replication_info(kind, broker)
        info["point"] = get_sync_point(broker, remote["id"], INCOMING)
        return info


def _merge_items(kind: DbKind, db_file: str, args: dict[str, Any]) -> None:
    if not os.path.exists(db_file):
        raise DatabaseNotFound(db_file)
    records = [kind.record_class(*row) for row in args["items"]]
    with open_broker(kind, db_file) as broker:
        broker.merge_items(records)  # type: ignore[attr-defined]
        set_sync_points(broker, {args["source_id"]: int(args["source_point"])}, INCOMING)


def _receive_file(request: webob.Request, tmp_dir: str) -> str:
    """Stream the body to a temp file in `<dev>/tmp` (never read whole into memory)."""
    os.makedirs(tmp_dir, exist_ok=True)
    fd, path = tempfile.mkstemp(dir=tmp_dir, suffix=".db.incoming")
    try:
        with os.fdopen(fd, "wb") as handle:
            stream = request.body_file
            remaining = request.content_length
            while remaining is None or remaining > 0:
                want = UPLOAD_CHUNK_BYTES if remaining is None else \
                    min(UPLOAD_CHUNK_BYTES, remaining)
                chunk = stream.read(want)
                if not chunk:
                    break
                handle.write(chunk)
                if remaining is not None:
                    remaining -= len(chunk)
            if remaining:
                raise HttpError(499)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(path)
        raise
    return path


def _check_received(server: DbServer, kind: DbKind, broker: DatabaseBroker[Any],
                    name_hash: str) -> None:
    problems = broker.integrity_check()
    if problems:
        raise HttpError(422, "received database is damaged: " + "; ".join(problems))
    info = broker.get_info()
    container = getattr(info, "container", None)
    if server.name_hash(info.account, container) != name_hash:
        raise HttpError(422, "received database belongs elsewhere")


def _install(server: DbServer, kind: DbKind, db_file: str, tmp_path: str, name_hash: str,
             mode: str, sender_id: str, sender_max_row: int) -> tuple[int, dict[str, Any]]:
    received = open_broker(kind, tmp_path)
    try:
        try:
            _check_received(server, kind, received, name_hash)
        except DatabaseUnavailable as err:
            raise HttpError(422, f"received database is unreadable: {err}") from None
        set_new_id(received, sender_id, sender_max_row)
        received.close()
        hash_dir = os.path.dirname(db_file)
        os.makedirs(hash_dir, exist_ok=True)
        lock_fd = os.open(os.path.join(hash_dir, ".lock"),
                          os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            # Writers of the current copy queue here while its rows move into the new one.
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            existed = os.path.exists(db_file)
            if existed:
                _merge_local_into(kind, db_file, received)
            _checkpoint(tmp_path)
            os.rename(tmp_path, db_file)
            for suffix in ("-wal", "-shm"):
                # The old copy's WAL must not be replayed into the new file.
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(db_file + suffix)
            fsync_dir(hash_dir)
        finally:
            os.close(lock_fd)
        with open_broker(kind, db_file) as installed:
            return (202 if existed else 201), replication_info(kind, installed)
    finally:
        received.close()


def _merge_local_into(kind: DbKind, db_file: str, received: DatabaseBroker[Any]) -> None:
    """Every row, timestamp and metadata of the current copy into the received one.

    Runs with the hash directory's writer lock held by the caller, so it reads the current
    copy through a plain connection (a broker would wait for that same lock).
    """
    table = "object" if kind.name == "container" else "container"
    current = sqlite3.connect(db_file, timeout=received.timeout_s)
    try:
        columns = [row[1] for row in current.execute(f"PRAGMA table_info({table})")
                   if row[1].lower() != "rowid"]
        stat_row = current.execute(
            "SELECT id, hash, created_at, put_timestamp, delete_timestamp, status, metadata "
            f"FROM {received.stat_table}").fetchone()
        last = -1
        while True:
            rows = current.execute(
                f"SELECT ROWID, {', '.join(columns)} FROM {table} WHERE ROWID > ? "
                "ORDER BY ROWID LIMIT ?", (last, MERGE_BATCH_ROWS)).fetchall()
            if not rows:
                break
            received.merge_items(  # type: ignore[attr-defined]
                [kind.record_class(*row[1:]) for row in rows])
            last = rows[-1][0]
    finally:
        current.close()
    merge_remote_info(received, {
        "created_at": stat_row[2], "put_timestamp": stat_row[3],
        "delete_timestamp": stat_row[4], "status": stat_row[5],
        "metadata": json.loads(stat_row[6]) if stat_row[6] else {}})
    received.close()


def _checkpoint(path: str) -> None:
    """Fold the received file's WAL into it, so one file holds everything before the rename."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path + suffix)
