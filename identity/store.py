"""Identity's persistent state in one sqlite database (WAL): the rows, nothing about HTTP.

Tables: domains, projects, users, roles, assignments (user, project, role), services,
endpoints, ec2_credentials, revoked_tokens (audit ids). Names are unique per domain (roles
globally) and compared case-insensitively, as Keystone on MySQL does. Rows come back as plain
dicts; `extra` holds a resource's free-form attributes (a user's email, ...) as JSON. A
uniqueness violation raises Conflict, a missing row NotFound: the API maps those to 409/404.

Each process keeps one connection; writes are short `BEGIN IMMEDIATE` transactions, and
`busy_timeout` lets several server processes share the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from typing import Any

from identity.errors import Conflict, NotFound

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10000
DEFAULT_DOMAIN_ID = "default"
DEFAULT_DOMAIN_NAME = "Default"

SCHEMA = """
CREATE TABLE IF NOT EXISTS domains (
    id TEXT PRIMARY KEY, name TEXT NOT NULL COLLATE NOCASE UNIQUE,
    description TEXT NOT NULL DEFAULT '', enabled INTEGER NOT NULL DEFAULT 1,
    extra TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS projects (
    id TEXT PRIMARY KEY, name TEXT NOT NULL COLLATE NOCASE,
    domain_id TEXT NOT NULL REFERENCES domains(id),
    description TEXT NOT NULL DEFAULT '', enabled INTEGER NOT NULL DEFAULT 1,
    extra TEXT NOT NULL DEFAULT '{}', UNIQUE (domain_id, name));
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, name TEXT NOT NULL COLLATE NOCASE,
    domain_id TEXT NOT NULL REFERENCES domains(id),
    enabled INTEGER NOT NULL DEFAULT 1, password_hash TEXT,
    default_project_id TEXT, revoked_before REAL NOT NULL DEFAULT 0,
    created_at REAL NOT NULL, extra TEXT NOT NULL DEFAULT '{}', UNIQUE (domain_id, name));
CREATE TABLE IF NOT EXISTS roles (
    id TEXT PRIMARY KEY, name TEXT NOT NULL COLLATE NOCASE UNIQUE,
    description TEXT, extra TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS assignments (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, project_id, role_id));
CREATE INDEX IF NOT EXISTS assignments_by_project ON assignments (project_id);
CREATE TABLE IF NOT EXISTS services (
    id TEXT PRIMARY KEY, type TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '', enabled INTEGER NOT NULL DEFAULT 1,
    extra TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS endpoints (
    id TEXT PRIMARY KEY, service_id TEXT NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    interface TEXT NOT NULL, url TEXT NOT NULL, region_id TEXT,
    enabled INTEGER NOT NULL DEFAULT 1, extra TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS ec2_credentials (
    access TEXT PRIMARY KEY, secret_sealed TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS ec2_by_user ON ec2_credentials (user_id);
CREATE TABLE IF NOT EXISTS revoked_tokens (
    audit_id TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Columns each table takes from callers (everything else is derived or internal).
COLUMNS = {
    "domains": ("id", "name", "description", "enabled", "extra"),
    "projects": ("id", "name", "domain_id", "description", "enabled", "extra"),
    "users": ("id", "name", "domain_id", "enabled", "password_hash", "default_project_id",
              "revoked_before", "created_at", "extra"),
    "roles": ("id", "name", "description", "extra"),
    "services": ("id", "type", "name", "description", "enabled", "extra"),
    "endpoints": ("id", "service_id", "interface", "url", "region_id", "enabled", "extra"),
}
KIND = {"domains": "domain", "projects": "project", "users": "user", "roles": "role",
        "services": "service", "endpoints": "endpoint"}


def new_id() -> str:
    return uuid.uuid4().hex


def _row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> dict[str, Any]:
    row = {column[0]: value for column, value in zip(cursor.description, values, strict=True)}
    if "extra" in row:
        row["extra"] = json.loads(row["extra"] or "{}")
    if "enabled" in row:
        row["enabled"] = bool(row["enabled"])
    return row


class Store:
    """One sqlite database of identity rows."""

    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        self._db.row_factory = _row
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA foreign_keys = ON")
        # executescript commits on its own; every statement is idempotent (IF NOT EXISTS).
        self._db.executescript(SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)

    def ensure_default_domain(self) -> None:
        """The domain every resource lands in unless told otherwise (Keystone's `default`)."""
        if self.find("domains", id=DEFAULT_DOMAIN_ID) is None:
            # Several processes may start at once: losing the race is fine.
            with contextlib.suppress(Conflict):
                self.insert("domains", {"id": DEFAULT_DOMAIN_ID, "name": DEFAULT_DOMAIN_NAME,
                                        "description": "The default domain"})

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; uniqueness violations become Conflict."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except sqlite3.IntegrityError as err:
            self._db.execute("ROLLBACK")
            raise Conflict(_conflict_message(str(err))) from None
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- generic rows --------------------------------------------------------------------

    def insert(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        values = {key: row[key] for key in COLUMNS[table] if key in row}
        values.setdefault("id", new_id())
        if table == "users":
            values.setdefault("created_at", time.time())
        if "extra" in values:
            values["extra"] = json.dumps(values["extra"])
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self.transaction() as db:
            db.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(values.values()))
        return self.get(table, values["id"])

    def get(self, table: str, row_id: str) -> dict[str, Any]:
        row = self._db.execute(f"SELECT * FROM {table} WHERE id = ?", (row_id,)).fetchone()
        if row is None:
            raise NotFound(f"Could not find {KIND[table]}: {row_id}.")
        return row

    def find(self, table: str, **where: Any) -> dict[str, Any] | None:
        rows = self.select(table, **where)
        return rows[0] if rows else None

    def select(self, table: str, **where: Any) -> list[dict[str, Any]]:
        """Rows whose columns equal the given values (None values are ignored)."""
        where = {key: value for key, value in where.items() if value is not None}
        for key in where:
            if key not in COLUMNS[table]:
                raise ValueError(f"{table} has no column {key}")
        clause = " AND ".join(f"{key} = ?" for key in where) or "1"
        return self._db.execute(f"SELECT * FROM {table} WHERE {clause} ORDER BY rowid",
                                tuple(where.values())).fetchall()

    def update(self, table: str, row_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        values = {key: changes[key] for key in COLUMNS[table] if key in changes and key != "id"}
        if "extra" in values:
            values["extra"] = json.dumps(values["extra"])
        if values:
            assignments = ", ".join(f"{key} = ?" for key in values)
            with self.transaction() as db:
                cursor = db.execute(f"UPDATE {table} SET {assignments} WHERE id = ?",
                                    (*values.values(), row_id))
                if cursor.rowcount == 0:
                    raise NotFound(f"Could not find {KIND[table]}: {row_id}.")
        return self.get(table, row_id)

    def delete(self, table: str, row_id: str) -> None:
        with self.transaction() as db:
            if db.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,)).rowcount == 0:
                raise NotFound(f"Could not find {KIND[table]}: {row_id}.")

    # -- role assignments ----------------------------------------------------------------

    def assign(self, user_id: str, project_id: str, role_id: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO assignments VALUES (?, ?, ?)",
                       (user_id, project_id, role_id))

    def unassign(self, user_id: str, project_id: str, role_id: str) -> bool:
        with self.transaction() as db:
            return db.execute("DELETE FROM assignments WHERE user_id = ? AND project_id = ? "
                              "AND role_id = ?", (user_id, project_id, role_id)).rowcount > 0

    def assignments(self, user_id: str | None = None, project_id: str | None = None,
                    role_id: str | None = None) -> list[dict[str, Any]]:
        where = {"user_id": user_id, "project_id": project_id, "role_id": role_id}
        where = {key: value for key, value in where.items() if value is not None}
        clause = " AND ".join(f"{key} = ?" for key in where) or "1"
        return self._db.execute(f"SELECT * FROM assignments WHERE {clause} ORDER BY rowid",
                                tuple(where.values())).fetchall()

    def roles_on_project(self, user_id: str, project_id: str) -> list[dict[str, Any]]:
        return self._db.execute(
            "SELECT roles.* FROM assignments JOIN roles ON roles.id = assignments.role_id "
            "WHERE user_id = ? AND project_id = ? ORDER BY roles.name",
            (user_id, project_id)).fetchall()

    def projects_of_user(self, user_id: str) -> list[dict[str, Any]]:
        return self._db.execute(
            "SELECT * FROM projects WHERE id IN "
            "(SELECT project_id FROM assignments WHERE user_id = ?) ORDER BY name",
            (user_id,)).fetchall()

    # -- EC2 credentials -----------------------------------------------------------------

    def add_ec2_credential(self, access: str, secret_sealed: str, user_id: str,
                           project_id: str) -> dict[str, Any]:
        with self.transaction() as db:
            db.execute("INSERT INTO ec2_credentials VALUES (?, ?, ?, ?, ?)",
                       (access, secret_sealed, user_id, project_id, time.time()))
        return self.ec2_credential(access)

    def ec2_credential(self, access: str) -> dict[str, Any]:
        row = self._db.execute("SELECT * FROM ec2_credentials WHERE access = ?",
                               (access,)).fetchone()
        if row is None:
            raise NotFound(f"Could not find credential: {access}.")
        return row

    def ec2_credentials(self, user_id: str) -> list[dict[str, Any]]:
        return self._db.execute("SELECT * FROM ec2_credentials WHERE user_id = ? "
                                "ORDER BY created_at", (user_id,)).fetchall()

    def delete_ec2_credential(self, access: str) -> None:
        with self.transaction() as db:
            if db.execute("DELETE FROM ec2_credentials WHERE access = ?",
                          (access,)).rowcount == 0:
                raise NotFound(f"Could not find credential: {access}.")

    # -- revocation ----------------------------------------------------------------------

    def revoke_audit_id(self, audit_id: str, expires_at: float) -> None:
        """Remember a revoked token until it would have expired anyway."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO revoked_tokens VALUES (?, ?)",
                       (audit_id, expires_at))
            db.execute("DELETE FROM revoked_tokens WHERE expires_at < ?", (time.time(),))

    def audit_id_revoked(self, audit_ids: tuple[str, ...]) -> bool:
        marks = ", ".join("?" for _ in audit_ids)
        return self._db.execute(f"SELECT 1 FROM revoked_tokens WHERE audit_id IN ({marks})",
                                audit_ids).fetchone() is not None


def _conflict_message(detail: str) -> str:
    if "UNIQUE" in detail:
        return "Conflict occurred attempting to store a duplicate entry."
    if "FOREIGN KEY" in detail:
        return "The request refers to a resource that does not exist."
    return "Conflict occurred attempting to store the entry."
