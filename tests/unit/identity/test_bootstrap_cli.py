"""Bootstrap is idempotent and follows the plan; the CLI rotates keys and reports as JSON."""

from __future__ import annotations

import json
import time

import pytest

from identity import cli
from identity.authentication import InvalidToken
from identity.bootstrap import Bootstrapper, PlanError
from identity.keys import KeyRepository
from tests.unit.identity.conftest import FAST_HASH_COST


def test_a_second_run_changes_nothing_and_a_moved_port_is_updated(api):
    store = api.services.store
    plan = {"users": [{"name": "tester", "password": "testing", "project": "test",
                       "roles": ["member"]}],
            "services": [{"type": "object-store", "name": "swift",
                          "url": "http://swift.example:8080/v1/AUTH_$(project_id)s"}]}
    report = Bootstrapper(store, FAST_HASH_COST).apply(plan)
    assert report.created == [] and report.updated == []
    assert set(report.projects) == {"test"}
    plan["services"][0]["url"] = "http://swift.example:9090/v1/AUTH_$(project_id)s"
    report = Bootstrapper(store, FAST_HASH_COST).apply(plan)
    assert report.updated == [f"{i} endpoint of object-store"
                              for i in ("public", "internal", "admin")]
    assert len(store.select("endpoints")) == 6          # updated in place, not added


def test_a_changed_seed_password_resets_it_and_ends_old_tokens(api):
    old = api.services.authenticator.validate(api.token("tester", "testing", "test"))
    time.sleep(0.01)
    Bootstrapper(api.services.store, FAST_HASH_COST).apply({"users": [{
        "name": "tester", "password": "changed", "project": "test"}]})
    with pytest.raises(InvalidToken):
        api.services.authenticator.validate(old.token)
    assert api.password_auth("tester", "changed", "test").status_int == 201


@pytest.mark.parametrize("plan", [[], {"users": [{"name": "x"}]}, {"users": ["x"]},
                                  {"admin": "x"}, {"services": [{"type": "x"}]},
                                  {"users": [{"name": "x", "project": "p", "password": 5}]}])
def test_bad_plans_are_named(api, plan):
    with pytest.raises(PlanError):
        Bootstrapper(api.services.store, FAST_HASH_COST).apply(plan)


def test_cli_bootstrap_and_rotation(tmp_path, capsys, monkeypatch):
    conf = tmp_path / "identity.conf"
    conf.write_text(f"[identity]\nidentity_dir = {tmp_path}/id\npassword_hash_cost = 1024\n"
                    "max_active_keys = 3\n")
    monkeypatch.delenv(cli.ADMIN_PASSWORD_ENV, raising=False)
    assert cli.main(["bootstrap", "--config", str(conf), "--json",
                     "--public-url", "http://id.example:5000/v3"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert len(first["admin_password"]) >= 16 and "user admin" in first["created"]
    assert cli.main(["bootstrap", "--config", str(conf), "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert "admin_password" not in second and second["created"] == []
    assert second["admin_user_id"] == first["admin_user_id"]

    assert cli.main(["fernet-rotate", "--config", str(conf), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"keys": [0, 1, 2], "primary": 2}
    assert cli.main(["fernet-rotate", "--config", str(conf), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"keys": [0, 2, 3], "primary": 3}
    assert KeyRepository(f"{tmp_path}/id/fernet-keys").indexes() == [0, 2, 3]

    assert cli.main(["bootstrap", "--config", str(tmp_path / "missing.conf")]) == 2
    assert "cannot read" in capsys.readouterr().err
