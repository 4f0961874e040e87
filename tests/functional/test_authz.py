"""Authorization in a real all-in-one cluster whose proxy runs keystoneauth against the real
identity server: roles, refusals (with no data leaked), container ACLs, quotas, temp URLs,
and the `swift` CLI with v1 and Keystone v3 options.

The aio users: test:tester (member of project test), test:tester3 (reader of test),
test2:tester2 (member of test2), admin:admin (admin)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import subprocess
import time
import uuid
from urllib.parse import quote, urlencode

import pytest

SECRET_BODY = b"the secret contents of project test"


class Http:
    """Plain HTTP to one server of the cluster (no client library in between)."""

    def __init__(self, port: int):
        self.port = port

    def __call__(self, method: str, path: str, headers: dict[str, str] | None = None,
                 body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            conn.close()


@pytest.fixture(scope="module")
def proxy(cluster) -> Http:
    http = Http(cluster.proxy_port)
    status, _headers, body = http("GET", "/info")
    if status != 200 or "keystoneauth" not in json.loads(body):
        pytest.skip("the aio proxy does not run keystoneauth (common.cluster.AIO_PROXY_AUTH)")
    return http


@pytest.fixture(scope="module")
def identity(cluster) -> Http:
    return Http(cluster.identity_port)


def password(cluster, name: str) -> str:
    return cluster.layout().users[name].split()[0]


def v3_token(identity: Http, user: str, secret: str, project: str) -> str:
    status, headers, body = identity("POST", "/v3/auth/tokens", {
        "Content-Type": "application/json"}, json.dumps({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"}, "password": secret}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}).encode())
    assert status == 201, body
    return headers["x-subject-token"]


@pytest.fixture(scope="module")
def tokens(cluster, identity) -> dict[str, dict[str, str]]:
    """X-Auth-Token headers of each aio user, from identity's v3 API."""
    users = {"member": ("tester", "test:tester", "test"),
             "reader": ("tester3", "test:tester3", "test"),
             "other": ("tester2", "test2:tester2", "test2"),
             "admin": ("admin", "admin:admin", "admin")}
    return {role: {"X-Auth-Token": v3_token(identity, user, password(cluster, name), project)}
            for role, (user, name, project) in users.items()}


@pytest.fixture(scope="module")
def test_account(cluster, proxy) -> str:
    return f"/v1/{cluster.account('test')}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_v1_auth_against_identity(cluster, proxy, test_account):
    status, headers, _body = proxy("GET", "/auth/v1.0", {
        "X-Auth-User": "test:tester", "X-Auth-Key": "testing"})
    assert status == 200
    assert headers["x-storage-url"].endswith(test_account)
    status, _headers, _body = proxy("HEAD", test_account, {
        "X-Auth-Token": headers["x-auth-token"]})
    assert status == 204
    for user, key in (("test:tester", "wrong"), ("test:nobody", "testing"), ("tester", "x")):
        status, headers, _body = proxy("GET", "/auth/v1.0", {"X-Auth-User": user,
                                                             "X-Auth-Key": key})
        assert status == 401 and "www-authenticate" in headers


def test_member_reads_and_writes_its_project(proxy, tokens, test_account):
    member = tokens["member"]
    container = f"{test_account}/{unique('own')}"
    assert proxy("PUT", container, member)[0] == 201
    assert proxy("PUT", f"{container}/o", member, b"mine")[0] == 201
    status, _headers, body = proxy("GET", f"{container}/o", member)
    assert (status, body) == (200, b"mine")
    assert proxy("DELETE", f"{container}/o", member)[0] == 204


def test_reader_reads_but_cannot_write(proxy, tokens, test_account):
    container = f"{test_account}/{unique('read')}"
    assert proxy("PUT", container, tokens["member"])[0] == 201
    assert proxy("PUT", f"{container}/o", tokens["member"], b"readable")[0] == 201
    reader = tokens["reader"]
    assert proxy("GET", f"{container}/o", reader)[:3:2] == (200, b"readable")
    assert proxy("GET", container, reader)[0] == 200
    for method, path in (("PUT", "/o"), ("POST", "/o"), ("DELETE", "/o"), ("PUT", "/new")):
        assert proxy(method, container + path, reader, b"x")[0] == 403, (method, path)
    assert proxy("POST", container, {**reader, "X-Container-Read": ".r:*"})[0] == 403
    assert proxy("GET", f"{container}/o", tokens["member"])[2] == b"readable"


def test_other_project_refused_without_leaks(proxy, tokens, test_account):
    container = f"{test_account}/{unique('secret')}"
    assert proxy("PUT", container, tokens["member"])[0] == 201
    assert proxy("PUT", f"{container}/o", tokens["member"], SECRET_BODY)[0] == 201
    for method, path in (("GET", ""), ("HEAD", ""), ("GET", container[len(test_account):]),
                         ("GET", container[len(test_account):] + "/o"),
                         ("PUT", container[len(test_account):] + "/o"),
                         ("DELETE", container[len(test_account):] + "/o")):
        status, headers, body = proxy(method, test_account + path, tokens["other"], b"x")
        assert status == 403, (method, path)
        assert SECRET_BODY not in body and b"secret" not in body
        assert not any(name.startswith(("x-account-", "x-container-")) for name in headers)
    assert proxy("GET", f"{container}/o", tokens["member"])[2] == SECRET_BODY


def test_tampered_revoked_and_missing_tokens_are_401(cluster, proxy, identity, tokens,
                                                     test_account):
    token = tokens["member"]["X-Auth-Token"]
    tampered = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    for headers in ({"X-Auth-Token": tampered}, {"X-Auth-Token": "not-a-token"}, {}):
        status, answer_headers, _body = proxy("GET", test_account, headers)
        assert status == 401, headers
        assert "www-authenticate" in answer_headers
    # a token revoked before the proxy ever saw it is refused at once
    fresh = v3_token(identity, "tester", "testing", "test")
    status, _headers, _body = identity("DELETE", "/v3/auth/tokens", {
        "X-Auth-Token": tokens["admin"]["X-Auth-Token"], "X-Subject-Token": fresh})
    assert status == 204
    assert proxy("HEAD", test_account, {"X-Auth-Token": fresh})[0] == 401


def test_public_container_acl(proxy, tokens, test_account):
    container = f"{test_account}/{unique('public')}"
    assert proxy("PUT", container, {**tokens["member"],
                                    "X-Container-Read": ".r:*,.rlistings"})[0] == 201
    assert proxy("PUT", f"{container}/page", tokens["member"], b"hello world")[0] == 201
    status, _headers, body = proxy("GET", f"{container}/page")
    assert (status, body) == (200, b"hello world")
    status, _headers, body = proxy("GET", container)
    assert status == 200 and body.split() == [b"page"]
    assert proxy("PUT", f"{container}/page", None, b"vandal")[0] == 401
    assert proxy("GET", test_account)[0] == 401            # the account is still private
    status, headers, _body = proxy("HEAD", container)
    assert "x-container-read" not in headers               # ACLs are for owners' eyes
    # without .rlistings the objects stay readable but the listing does not
    assert proxy("POST", container, {**tokens["member"], "X-Container-Read": ".r:*"})[0] == 204
    assert proxy("GET", container)[0] == 401
    assert proxy("GET", f"{container}/page")[0] == 200


def test_project_user_acl_grants(cluster, proxy, identity, tokens, test_account):
    container = f"{test_account}/{unique('shared')}"
    assert proxy("PUT", container, tokens["member"])[0] == 201
    assert proxy("PUT", f"{container}/o", tokens["member"], b"shared")[0] == 201
    other = tokens["other"]
    assert proxy("GET", f"{container}/o", other)[0] == 403
    assert proxy("POST", container, {**tokens["member"], "X-Container-Read": "test2:tester2",
                                     "X-Container-Write": "test2:tester2"})[0] == 204
    assert proxy("GET", f"{container}/o", other)[2] == b"shared"
    assert proxy("PUT", f"{container}/from-test2", other, b"hi")[0] == 201
    # still nothing beyond the container
    assert proxy("GET", test_account, other)[0] == 403
    assert proxy("POST", container, {**other, "X-Container-Read": ".r:*"})[0] == 403


def test_account_quota(cluster, proxy, tokens):
    # project test2's account, so the other tests' objects do not count
    account = f"/v1/{cluster.account('test2')}"
    member, admin = tokens["other"], tokens["admin"]
    container = f"{account}/{unique('quota')}"
    assert proxy("PUT", container, member)[0] == 201
    assert proxy("POST", account, {**member, "X-Account-Meta-Quota-Bytes": "1"})[0] == 403
    used = int(proxy("HEAD", account, member)[1].get("x-account-bytes-used", "0"))
    assert proxy("POST", account, {**admin,
                                   "X-Account-Meta-Quota-Bytes": str(used + 100)})[0] == 204
    try:
        assert proxy("HEAD", account, member)[1]["x-account-meta-quota-bytes"] == \
            str(used + 100)
        status, _headers, body = proxy("PUT", f"{container}/big", member, b"x" * 101)
        assert (status, body) == (413, b"Upload exceeds quota.")
        assert proxy("PUT", f"{container}/small", member, b"x" * 10)[0] == 201
        # someone who may not write there hears 403, not about the quota
        assert proxy("PUT", f"{container}/big", tokens["member"], b"x" * 101)[0] == 403
    finally:
        assert proxy("POST", account, {**admin,
                                       "X-Remove-Account-Meta-Quota-Bytes": "1"})[0] == 204
    assert proxy("PUT", f"{container}/big", member, b"x" * 101)[0] == 201


def test_container_quotas(proxy, tokens, test_account):
    member = tokens["member"]
    by_bytes = f"{test_account}/{unique('qbytes')}"
    assert proxy("PUT", by_bytes, {**member, "X-Container-Meta-Quota-Bytes": "10"})[0] == 201
    status, _headers, body = proxy("PUT", f"{by_bytes}/big", member, b"x" * 11)
    assert (status, body) == (413, b"Upload exceeds quota.")
    assert proxy("PUT", f"{by_bytes}/fits", member, b"x" * 10)[0] == 201
    by_count = f"{test_account}/{unique('qcount')}"
    assert proxy("PUT", by_count, {**member, "X-Container-Meta-Quota-Count": "1"})[0] == 201
    assert proxy("PUT", f"{by_count}/first", member, b"1")[0] == 201
    assert proxy("PUT", f"{by_count}/second", member, b"2")[0] == 413
    assert proxy("PUT", by_count, {**member, "X-Container-Meta-Quota-Count": "many"})[0] == 400
    # a reader hears 403, as for any write
    assert proxy("PUT", f"{by_count}/second", tokens["reader"], b"2")[0] == 403


def _tempurl(path: str, method: str, key: str, expires: int, digest: str = "sha256") -> str:
    sig = hmac.new(key.encode(), f"{method}\n{expires}\n{path}".encode(),
                   getattr(hashlib, digest)).hexdigest()
    return f"{quote(path)}?{urlencode({'temp_url_sig': sig, 'temp_url_expires': expires})}"


def test_tempurl(proxy, tokens, test_account):
    key = uuid.uuid4().hex
    assert proxy("POST", test_account, {**tokens["member"],
                                        "X-Account-Meta-Temp-URL-Key": key})[0] == 204
    container = f"{test_account}/{unique('temp')}"
    assert proxy("PUT", container, tokens["member"])[0] == 201
    expires = int(time.time() + 300)
    path = f"{container}/via-tempurl"
    assert proxy("PUT", _tempurl(path, "PUT", key, expires, "sha1"), None, b"temp data")[0] == 201
    status, headers, body = proxy("GET", _tempurl(path, "GET", key, expires))
    assert (status, body) == (200, b"temp data")
    assert headers["content-disposition"].startswith('attachment; filename="via-tempurl"')
    # sha512 in its base64 form
    raw = hmac.new(key.encode(), f"GET\n{expires}\n{path}".encode(), hashlib.sha512).digest()
    query = urlencode({"temp_url_sig": "sha512:" + base64.b64encode(raw).decode(),
                       "temp_url_expires": expires})
    assert proxy("GET", f"{path}?{query}")[0] == 200
    refused = (_tempurl(path, "GET", "wrong-key", expires),
               _tempurl(path, "GET", key, int(time.time() - 10)),
               _tempurl(path, "PUT", key, expires),                     # signed for PUT
               _tempurl(f"{container}/other", "GET", key, expires).replace("other",
                                                                           "via-tempurl"))
    for url in refused:
        status, _headers, body = proxy("GET", url)
        assert status == 401, url
        assert body == b"401 Unauthorized: Temp URL invalid\n"
    assert proxy("DELETE", _tempurl(path, "DELETE", key, expires))[0] == 204


def swift_cli(cluster, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["swift", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_swift_cli_v1_and_v3(cluster, proxy, tmp_path):
    v1 = swift_cli(cluster, "stat", env=cluster.swift_env())
    assert v1.returncode == 0, v1.stderr
    assert f"Account: {cluster.account('test')}" in v1.stdout
    env = {k: v for k, v in cluster.swift_env().items() if not k.startswith("ST_")}
    v3_options = ["--auth-version", "3", "--os-auth-url", cluster.identity_url,
                  "--os-username", "tester", "--os-password", "testing",
                  "--os-project-name", "test", "--os-user-domain-name", "Default",
                  "--os-project-domain-name", "Default"]
    stat = swift_cli(cluster, *v3_options, "stat", env=env)
    assert stat.returncode == 0, stat.stderr
    assert f"Account: {cluster.account('test')}" in stat.stdout
    source = tmp_path / "v3.txt"
    source.write_bytes(b"uploaded with keystone v3 options\n")
    container = unique("cli")
    upload = swift_cli(cluster, *v3_options, "upload", container, str(source),
                       "--object-name", "v3.txt", env=env)
    assert upload.returncode == 0, upload.stderr
    listing = swift_cli(cluster, *v3_options, "list", container, env=env)
    assert listing.stdout.split() == ["v3.txt"]
    # the reader's v3 token cannot upload
    reader = [*v3_options]
    reader[reader.index("tester")] = "tester3"
    reader[reader.index("testing")] = "testing3"
    refused = swift_cli(cluster, *reader, "upload", container, str(source), "--object-name",
                        "nope.txt", env=env)
    assert refused.returncode != 0 and "403" in refused.stderr
    bad = [*v3_options]
    bad[bad.index("testing")] = "wrong"
    assert swift_cli(cluster, *bad, "stat", env=env).returncode != 0
