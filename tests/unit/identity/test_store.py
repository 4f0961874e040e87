"""The sqlite store: rows, uniqueness per domain (case-insensitive), cascades, revocations."""

from __future__ import annotations

import os
import time

import pytest

from identity.errors import Conflict, NotFound
from identity.store import DEFAULT_DOMAIN_ID, Store


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store(str(tmp_path / "db" / "identity.sqlite"))
    store.ensure_default_domain()
    yield store
    store.close()


def test_database_is_private_and_wal(store):
    assert os.stat(store.path).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(store.path)).st_mode & 0o777 == 0o700
    assert store._db.execute("PRAGMA journal_mode").fetchone()["journal_mode"] == "wal"


def test_names_are_unique_per_domain_and_case_insensitive(store):
    other = store.insert("domains", {"name": "other"})
    store.insert("projects", {"name": "demo", "domain_id": DEFAULT_DOMAIN_ID})
    with pytest.raises(Conflict):
        store.insert("projects", {"name": "DEMO", "domain_id": DEFAULT_DOMAIN_ID})
    store.insert("projects", {"name": "demo", "domain_id": other["id"]})
    assert store.find("projects", name="Demo", domain_id=DEFAULT_DOMAIN_ID)["name"] == "demo"
    assert store.find("domains", name="DEFAULT")["id"] == DEFAULT_DOMAIN_ID
    store.insert("roles", {"name": "member"})
    with pytest.raises(Conflict):
        store.insert("roles", {"name": "Member"})


def test_get_update_delete_and_missing_rows(store):
    user = store.insert("users", {"name": "u", "domain_id": DEFAULT_DOMAIN_ID,
                                  "extra": {"email": "u@example.com"}})
    assert user["enabled"] is True and user["extra"] == {"email": "u@example.com"}
    assert store.update("users", user["id"], {"enabled": False})["enabled"] is False
    store.delete("users", user["id"])
    for action in (lambda: store.get("users", user["id"]),
                   lambda: store.update("users", user["id"], {"name": "x"}),
                   lambda: store.delete("users", user["id"])):
        with pytest.raises(NotFound):
            action()
    with pytest.raises(ValueError):
        store.select("users", password="nope")


def test_deleting_a_user_project_or_role_removes_its_assignments_and_credentials(store):
    user = store.insert("users", {"name": "u", "domain_id": DEFAULT_DOMAIN_ID})
    project = store.insert("projects", {"name": "p", "domain_id": DEFAULT_DOMAIN_ID})
    role = store.insert("roles", {"name": "member"})
    store.assign(user["id"], project["id"], role["id"])
    store.assign(user["id"], project["id"], role["id"])          # idempotent
    assert [r["name"] for r in store.roles_on_project(user["id"], project["id"])] == ["member"]
    store.add_ec2_credential("AK", "sealed", user["id"], project["id"])
    store.delete("projects", project["id"])
    assert store.assignments(user_id=user["id"]) == []
    with pytest.raises(NotFound):
        store.ec2_credential("AK")
    with pytest.raises(Conflict):     # an assignment to a project that does not exist
        store.assign(user["id"], "missing", role["id"])


def test_revoked_audit_ids_are_remembered_until_they_expire(store):
    store.revoke_audit_id("old", time.time() - 1)
    store.revoke_audit_id("live", time.time() + 60)       # also purges "old"
    assert store.audit_id_revoked(("live",))
    assert store.audit_id_revoked(("other", "live"))
    assert not store.audit_id_revoked(("old",))
    assert not store.audit_id_revoked(("other",))
