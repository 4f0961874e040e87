"""IdentityClient against a real identity server (identity.server in a subprocess on a free
127.0.0.1 port, bootstrapped with the aio's users): tokens, caches, the service token, S3
signatures, and 503-worthy failures. `IdentityServer` and the `identity` fixture are shared
with test_keystone_auth."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from common.aws_sig import derive_v4_signing_key, sign_v2, sign_v4
from common.config import Config, ConfigError
from proxy.identity_client import (
    AuthContext,
    IdentityClient,
    IdentityUnavailable,
    context_from_token,
    identity_client,
    parse_time,
)
from tests.unit.proxy.fakes import free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SERVICE_USER, SERVICE_PASSWORD = "ringstack-proxy", "proxy-secret"
SEED = {
    "admin": {"user": "admin", "password": "admin-secret", "project": "admin"},
    "users": [
        {"name": SERVICE_USER, "password": SERVICE_PASSWORD, "project": "service",
         "roles": ["service"]},
        {"name": "tester", "password": "testing", "project": "test", "roles": ["member"]},
        {"name": "tester3", "password": "testing3", "project": "test", "roles": ["reader"]},
        {"name": "tester2", "password": "testing2", "project": "test2", "roles": ["member"]},
    ],
}


class IdentityServer:
    """`ringstack-server identity` in a subprocess, with admin helpers over its HTTP API."""

    def __init__(self, directory: str, extra_conf: str = ""):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.conf_path = os.path.join(directory, "identity.conf")
        with open(self.conf_path, "w") as conf:
            conf.write(f"[identity]\nbind_ip = 127.0.0.1\nbind_port = {self.port}\n"
                       f"identity_dir = {directory}/identity\npassword_hash_cost = 1024\n"
                       "log_level = WARNING\n" + extra_conf)
        seed_path = os.path.join(directory, "seed.json")
        with open(seed_path, "w") as seed:
            json.dump(SEED, seed)
        env = dict(os.environ, PYTHONPATH=REPO)
        subprocess.run([sys.executable, "-m", "identity.cli", "bootstrap", "--config",
                        self.conf_path, "--seed", seed_path], cwd=REPO, env=env, check=True,
                       capture_output=True)
        self.log_path = os.path.join(directory, "identity.log")
        self._log = open(self.log_path, "w")   # noqa: SIM115 - open for the server's life
        self.process = subprocess.Popen(
            [sys.executable, "-m", "common.server_main", "identity", self.conf_path],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/v3", timeout=1).close()
                break
            except (OSError, urllib.error.URLError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    with open(self.log_path) as log:
                        raise RuntimeError("identity did not start:\n" + log.read()) from None
                time.sleep(0.1)
        self.admin_token = self.issue("admin", "admin-secret", "admin")[0]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def call(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                return response.status, dict(response.headers), json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            return err.code, dict(err.headers), json.loads(raw) if raw else None

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        status, _headers, answer = self.call(method, path, body,
                                             {"X-Auth-Token": self.admin_token})
        assert status < 300, (method, path, status, answer)
        return answer

    def issue(self, user: str, password: str, project: str) -> tuple[str, dict[str, Any]]:
        status, headers, body = self.call("POST", "/v3/auth/tokens", {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}})
        assert status == 201, body
        return headers["X-Subject-Token"], body

    def revoke(self, token: str) -> None:
        status, _headers, _body = self.call("DELETE", "/v3/auth/tokens", headers={
            "X-Auth-Token": self.admin_token, "X-Subject-Token": token})
        assert status == 204

    def user_id(self, name: str) -> str:
        return self.admin("GET", f"/v3/users?name={name}")["users"][0]["id"]

    def project_id(self, name: str) -> str:
        return self.admin("GET", f"/v3/projects?name={name}")["projects"][0]["id"]

    def ec2_credentials(self, user: str, project: str) -> tuple[str, str]:
        answer = self.admin("POST", f"/v3/users/{self.user_id(user)}/credentials/OS-EC2",
                            {"tenant_id": self.project_id(project)})
        return answer["credential"]["access"], answer["credential"]["secret"]


@pytest.fixture(scope="session")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityServer]:
    server = IdentityServer(str(tmp_path_factory.mktemp("identity")))
    try:
        yield server
    finally:
        server.stop()


def make_client(identity: IdentityServer, **kwargs: Any) -> IdentityClient:
    options: dict[str, Any] = {"service_user": SERVICE_USER,
                               "service_password": SERVICE_PASSWORD, "cache_seconds": 30}
    options.update(kwargs)
    return IdentityClient(identity.url, **options)


# ---- pure helpers ---------------------------------------------------------------------------

def test_token_body_parsing():
    assert parse_time("2030-01-01T00:00:00.000000Z") == 1893456000
    assert parse_time("2030-01-01T00:00:00+00:00") == 1893456000
    body = {"token": {"user": {"id": "u", "name": "n"}, "project": {"id": "p", "name": "P"},
                      "roles": [{"id": "1", "name": "Member"}],
                      "expires_at": "2030-01-01T00:00:00Z"}}
    context = context_from_token(body)
    assert context == AuthContext("u", "n", "p", "P", frozenset({"member"}), 1893456000.0)
    assert context.account() == "AUTH_p" and context.account("X_") == "X_p"
    unscoped = context_from_token({"token": {**body["token"], "project": None}})
    assert unscoped is not None and unscoped.project_id == "" and unscoped.roles == frozenset()
    assert context_from_token({"token": {"user": {}}}) is None
    assert context_from_token({}) is None


def test_config():
    with pytest.raises(ConfigError):
        identity_client(Config({}))
    with pytest.raises(ConfigError):
        IdentityClient("ftp://nowhere")
    conf = Config({"identity_url": "http://127.0.0.1:1/v3", "identity_cache_seconds": "5"})
    client = identity_client(conf)
    assert client is identity_client(conf)           # one per process and settings
    assert client.cache_seconds == 5 and client._base_path == ""


def test_unreachable_identity_raises_unavailable():
    client = IdentityClient(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    with pytest.raises(IdentityUnavailable):
        client.validate_token("some-token")
    with pytest.raises(IdentityUnavailable):
        client.password_token("tester", "testing", "test")
    with_service = IdentityClient(f"http://127.0.0.1:{free_port()}", "svc", "pw")
    with pytest.raises(IdentityUnavailable):
        with_service.s3_auth("AK", b"string", "sig")


# ---- against the real identity server -------------------------------------------------------

def test_validate_token_and_cache(identity):
    client = make_client(identity)
    token, body = identity.issue("tester", "testing", "test")
    context = client.validate_token(token)
    assert context is not None
    assert (context.user_name, context.project_name) == ("tester", "test")
    assert context.project_id == body["token"]["project"]["id"]
    assert context.roles == frozenset({"member"})
    assert context.expires_at > time.time()
    calls = client.calls["validate_token"]
    assert client.validate_token(token) == context
    assert client.calls["validate_token"] == calls           # answered from the cache
    # a revoked token stays valid only until its cache entry ends
    identity.revoke(token)
    assert client.validate_token(token) == context
    fresh = make_client(identity)
    assert fresh.validate_token(token) is None


def test_cache_lifetime_is_bounded(identity):
    now = [time.time()]
    client = make_client(identity, cache_seconds=10, clock=lambda: now[0])
    token, _body = identity.issue("tester", "testing", "test")
    assert client.validate_token(token) is not None
    identity.revoke(token)
    now[0] += 11
    assert client.validate_token(token) is None               # asked again: revoked
    # invalid tokens are remembered too (a token never becomes valid)
    calls = client.calls["validate_token"]
    assert client.validate_token("garbage") is None
    assert client.validate_token("garbage") is None
    assert client.calls["validate_token"] == calls + 1


def test_expired_tokens(tmp_path):
    short_lived = IdentityServer(str(tmp_path), "token_expiration = 2\n")
    try:
        client = make_client(short_lived)
        token, _body = short_lived.issue("tester", "testing", "test")
        context = client.validate_token(token)
        assert context is not None and context.expires_at <= time.time() + 2
        time.sleep(max(0.0, context.expires_at - time.time()) + 0.5)
        assert client.validate_token(token) is None        # the cache ends with the token
        assert make_client(short_lived).validate_token(token) is None   # identity agrees
    finally:
        short_lived.stop()


def test_tampered_and_odd_tokens(identity):
    client = make_client(identity)
    token, _body = identity.issue("tester", "testing", "test")
    tampered = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    assert client.validate_token(tampered) is None
    assert client.validate_token("") is None
    assert client.validate_token("x" * 10000) is None
    assert client.validate_token("bad\ntoken") is None


def test_without_service_user_a_token_checks_itself(identity):
    client = IdentityClient(identity.url)
    token, _body = identity.issue("tester2", "testing2", "test2")
    context = client.validate_token(token)
    assert context is not None and context.user_name == "tester2"


def test_service_token_is_reused_and_renewed(identity):
    client = make_client(identity)
    first = client.service_token()
    assert first and client.service_token() == first
    assert client.calls["service_token"] == 1
    # identity revokes it: the next validation gets a 401, fetches a new one and goes on
    identity.revoke(first)
    token, _body = identity.issue("tester", "testing", "test")
    assert client.validate_token(token) is not None
    assert client.calls["service_token"] == 2 and client.service_token() != first


def test_bad_service_credentials_are_unavailable(identity):
    client = make_client(identity, service_password="wrong")
    token, _body = identity.issue("tester", "testing", "test")
    with pytest.raises(IdentityUnavailable):
        client.validate_token(token)


def test_password_token(identity):
    client = make_client(identity)
    issued = client.password_token("tester3", "testing3", "test")
    assert issued is not None
    token, context = issued
    assert context.roles == frozenset({"reader"}) and context.project_name == "test"
    calls = client.calls["validate_token"]
    assert client.validate_token(token) == context           # already known
    assert client.calls["validate_token"] == calls
    assert client.password_token("tester3", "wrong", "test") is None
    assert client.password_token("tester3", "testing3", "test2") is None   # no role there
    assert client.password_token("nobody", "x", "test") is None
    assert client.password_token("", "", "") is None


def _v4_string(date: str, body: bytes = b"request") -> bytes:
    return (f"AWS4-HMAC-SHA256\n{date}T120000Z\n{date}/us-east-1/s3/aws4_request\n"
            f"{hashlib.sha256(body).hexdigest()}").encode()


def test_s3_sigv4_then_local_checks(identity):
    client = make_client(identity)
    access, secret = identity.ec2_credentials("tester", "test")
    date = time.strftime("%Y%m%d", time.gmtime())
    key = derive_v4_signing_key(secret, date, "us-east-1", "s3")
    first = _v4_string(date, b"one")
    auth = client.s3_auth(access, first, sign_v4(key, first))
    assert auth is not None and auth.signing_key == key
    assert auth.context.user_name == "tester" and auth.context.project_name == "test"
    assert client.calls["s3tokens"] == 1
    second = _v4_string(date, b"two")
    again = client.s3_auth(access, second, sign_v4(key, second))
    assert again is not None and again.context == auth.context
    assert client.calls["s3tokens"] == 1                     # checked locally
    # a wrong signature is refused (identity has the last word on mismatches)
    assert client.s3_auth(access, second, "0" * 64) is None
    assert client.calls["s3tokens"] == 2
    assert client.s3_auth("unknown-access", first, sign_v4(key, first)) is None


def test_s3_sigv2_and_unprivileged(identity):
    access, secret = identity.ec2_credentials("tester2", "test2")
    string = b"GET\n\n\nThu, 01 Jan 2030 00:00:00 GMT\n/bucket/key"
    client = make_client(identity)
    auth = client.s3_auth(access, string, sign_v2(secret, string))
    assert auth is not None and auth.signing_key is None
    assert auth.context.project_name == "test2"
    assert client.s3_auth(access, string, sign_v2("wrong", string)) is None
    # without a privileged service user no signing key comes back, so nothing is cached
    plain = IdentityClient(identity.url)
    date = time.strftime("%Y%m%d", time.gmtime())
    v4 = _v4_string(date)
    signature = sign_v4(derive_v4_signing_key(secret, date, "us-east-1", "s3"), v4)
    result = plain.s3_auth(access, v4, signature)
    assert result is not None and result.signing_key is None
    assert plain.s3_auth(access, v4, signature) is not None
    assert plain.calls["s3tokens"] == 2
