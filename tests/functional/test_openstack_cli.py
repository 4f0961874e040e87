"""The real `openstack` CLI (python-openstackclient) against real identity servers: the aio's
(admin from its openrc) and a small one of our own with a 2-second token lifetime.

Refusals are checked twice: the CLI fails, and identity's own validation answers 404.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.functional.cluster import REPO, free_port_block

CLI_TIMEOUT_S = 120


def openstack_binary() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "openstack")
    found = beside if os.path.exists(beside) else shutil.which("openstack")
    if not found:
        pytest.fail("the openstack CLI is missing: pip install -e .[test]")
    return found


def openstack(env: dict[str, str], *args: str, check: bool = True) -> Any:
    """Run `openstack ARGS -f json`; the parsed output (or the CompletedProcess if not
    check)."""
    result = subprocess.run([openstack_binary(), *args], env=env, capture_output=True,
                            text=True, timeout=CLI_TIMEOUT_S)
    if not check:
        return result
    assert result.returncode == 0, f"openstack {' '.join(args)}: {result.stderr}"
    return json.loads(result.stdout) if result.stdout.strip() else None


def validate(identity_url: str, caller: str, subject: str) -> int:
    """The status identity gives GET /v3/auth/tokens for `subject`."""
    request = urllib.request.Request(f"{identity_url}/auth/tokens", headers={
        "X-Auth-Token": caller, "X-Subject-Token": subject})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def with_user(env: dict[str, str], user: str, password: str, project: str) -> dict[str, str]:
    return dict(env, OS_USERNAME=user, OS_PASSWORD=password, OS_PROJECT_NAME=project)


def with_token(env: dict[str, str], token: str, project_id: str) -> dict[str, str]:
    """Authenticate by an existing token (keystoneauth's `token` plugin)."""
    env = {k: v for k, v in env.items()
           if k not in ("OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME",
                        "OS_USER_DOMAIN_NAME")}
    env.update(OS_AUTH_TYPE="token", OS_TOKEN=token, OS_PROJECT_ID=project_id)
    env.pop("OS_PROJECT_DOMAIN_NAME", None)
    return env


def tampered(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1:]


def test_admin_workflow_with_the_openstack_cli(cluster):
    env = cluster.openstack_env()
    token = openstack(env, "token", "issue", "-f", "json")
    admin_token = token["id"]
    assert token["project_id"] == cluster.layout().project_ids["admin"]
    assert validate(cluster.identity_url, admin_token, admin_token) == 200

    catalog = {entry["Type"]: entry for entry in
               openstack(env, "catalog", "list", "-f", "json")}
    assert set(catalog) >= {"identity", "object-store"}
    object_store = [e for e in catalog["object-store"]["Endpoints"]
                    if e["interface"] == "public"]
    assert object_store[0]["url"] == \
        f"http://127.0.0.1:{cluster.proxy_port}/v1/AUTH_{token['project_id']}"

    project = openstack(env, "project", "create", "cli-demo", "-f", "json")
    assert project["name"] == "cli-demo" and project["domain_id"] == "default"
    user = openstack(env, "user", "create", "--password", "first-pw", "--project", "cli-demo",
                     "--email", "carol@example.com", "carol", "-f", "json")
    assert user["name"] == "carol" and user["enabled"] is True
    assert openstack(env, "role", "add", "--project", "cli-demo", "--user", "carol",
                     "member") is None
    assignments = openstack(env, "role", "assignment", "list", "--project", "cli-demo",
                            "--names", "-f", "json")
    assert [(a["Role"], a["User"], a["Project"]) for a in assignments] == \
        [("member", "carol@Default", "cli-demo@Default")]
    by_id = openstack(env, "role", "assignment", "list", "--user", "carol", "-f", "json")
    assert [a["Project"] for a in by_id] == [project["id"]]

    carol = with_user(env, "carol", "first-pw", "cli-demo")
    credential = openstack(carol, "ec2", "credentials", "create", "-f", "json")
    assert credential["project_id"] == project["id"] and credential["user_id"] == user["id"]
    listed = openstack(carol, "ec2", "credentials", "list", "-f", "json")
    assert [(c["Access"], c["Secret"]) for c in listed] == \
        [(credential["access"], credential["secret"])]
    assert len(openstack(env, "ec2", "credentials", "list", "--user", "carol",
                         "-f", "json")) == 1
    refused = openstack(carol, "user", "list", check=False)
    assert refused.returncode != 0 and "403" in refused.stderr

    # A password change (by the user, with the old password) ends every earlier token.
    carol_token = openstack(carol, "token", "issue", "-f", "json")["id"]
    assert validate(cluster.identity_url, admin_token, carol_token) == 200
    assert openstack(carol, "user", "password", "set", "--original-password", "first-pw",
                     "--password", "second-pw") is None
    assert validate(cluster.identity_url, admin_token, carol_token) == 404
    assert openstack(with_token(env, carol_token, project["id"]), "token", "issue",
                     check=False).returncode != 0
    old_password = openstack(carol, "token", "issue", check=False)
    assert old_password.returncode != 0 and "401" in old_password.stderr
    carol = with_user(env, "carol", "second-pw", "cli-demo")
    carol_token = openstack(carol, "token", "issue", "-f", "json")["id"]

    # Disabling the user: the old token is refused, and so is the password.
    openstack(env, "user", "set", "--disable", "carol")
    assert validate(cluster.identity_url, admin_token, carol_token) == 404
    assert openstack(carol, "token", "issue", check=False).returncode != 0
    assert openstack(with_token(env, carol_token, project["id"]), "token", "issue",
                     check=False).returncode != 0
    openstack(env, "user", "set", "--enable", "carol")
    assert validate(cluster.identity_url, admin_token, carol_token) == 404   # stays revoked
    assert openstack(carol, "token", "issue", "-f", "json")["user_id"] == user["id"]

    # A tampered token: refused by the CLI (401) and by validation (404).
    forged = tampered(admin_token)
    assert validate(cluster.identity_url, admin_token, forged) == 404
    assert validate(cluster.identity_url, forged, admin_token) == 401
    failed = openstack(with_token(env, forged, token["project_id"]), "project", "list",
                       check=False)
    assert failed.returncode != 0 and "401" in failed.stderr


def test_the_aio_users_exist_in_identity_with_their_roles(cluster):
    env = cluster.openstack_env()
    assignments = openstack(env, "role", "assignment", "list", "--names", "-f", "json")
    seen = {(a["User"], a["Project"], a["Role"]) for a in assignments}
    assert {("tester@Default", "test@Default", "member"),
            ("tester3@Default", "test@Default", "reader"),
            ("tester2@Default", "test2@Default", "member"),
            ("admin@Default", "admin@Default", "admin"),
            ("ringstack-proxy@Default", "service@Default", "service")} <= seen
    tester = openstack(with_user(env, "tester", "testing", "test"), "token", "issue",
                       "-f", "json")
    assert tester["project_id"] == cluster.layout().project_ids["test"]


class ShortLivedIdentity:
    """`ringstack-server identity` with 2-second tokens, bootstrapped by the real CLI."""

    TOKEN_LIFE_S = 2

    def __init__(self, directory: str):
        self.port = free_port_block(1)
        self.url = f"http://127.0.0.1:{self.port}/v3"
        self.conf = os.path.join(directory, "identity.conf")
        with open(self.conf, "w") as handle:
            handle.write(f"[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {self.port}\n"
                         f"[identity]\nidentity_dir = {directory}/identity\n"
                         f"token_expiration = {self.TOKEN_LIFE_S}\n")
        self.env = dict(os.environ, PYTHONPATH=REPO,
                        RINGSTACK_IDENTITY_ADMIN_PASSWORD="short-admin-pw")
        subprocess.run([sys.executable, "-m", "identity.cli", "bootstrap", "--config",
                        self.conf, "--public-url", self.url], env=self.env, check=True,
                       capture_output=True, timeout=60)
        self.log = open(os.path.join(directory, "identity.log"), "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "common.server_main", "identity", self.conf],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not self._refuses_bad_tokens():
            assert self.process.poll() is None, "identity exited at start"
            assert time.monotonic() < deadline, "identity did not start"
            time.sleep(0.1)

    def _refuses_bad_tokens(self) -> bool:
        try:
            return validate(self.url, "x", "x") == 401
        except OSError:      # not listening yet
            return False

    def cli_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ST_"))}
        env.update(OS_AUTH_URL=self.url, OS_IDENTITY_API_VERSION="3", OS_USERNAME="admin",
                   OS_PASSWORD="short-admin-pw", OS_PROJECT_NAME="admin",
                   OS_USER_DOMAIN_NAME="Default", OS_PROJECT_DOMAIN_NAME="Default")
        return env

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture
def short_lived_identity(tmp_path) -> Iterator[ShortLivedIdentity]:
    server = ShortLivedIdentity(str(tmp_path))
    yield server
    server.stop()


def test_expired_tokens_are_refused(short_lived_identity):
    env = short_lived_identity.cli_env()
    issued = openstack(env, "token", "issue", "-f", "json")
    assert validate(short_lived_identity.url, issued["id"], issued["id"]) == 200
    time.sleep(ShortLivedIdentity.TOKEN_LIFE_S + 0.5)
    fresh = openstack(env, "token", "issue", "-f", "json")["id"]
    assert validate(short_lived_identity.url, fresh, issued["id"]) == 404
    assert validate(short_lived_identity.url, issued["id"], fresh) == 401
    failed = openstack(with_token(env, issued["id"], issued["project_id"]), "project", "list",
                       check=False)
    assert failed.returncode != 0 and "401" in failed.stderr
