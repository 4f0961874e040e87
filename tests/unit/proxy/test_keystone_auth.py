"""keystoneauth in the real proxy app (fake storage nodes) against a real identity server:
roles, ACLs, v1 auth, refusals with the right status, and 503 when identity is away."""

from __future__ import annotations

import time

import pytest

from proxy.identity_client import AUTH_CONTEXT_ENV_KEY, AuthContext
from proxy.keystone_auth import KeystoneAuth
from proxy.server import app_factory
from tests.unit.proxy.fakes import call, free_port
from tests.unit.proxy.test_identity_client import SERVICE_PASSWORD, SERVICE_USER
from tests.unit.proxy.test_identity_client import identity as identity_fixture

identity = identity_fixture    # the real identity server fixture, shared

PIPELINE = ("catch_errors gatekeeper healthcheck proxy-logging tempurl keystoneauth copy "
            "container-quotas account-quotas slo dlo proxy")


def proxy_conf(cluster, identity_url, **overrides):
    return cluster.conf(pipeline=PIPELINE, identity_url=identity_url,
                        identity_service_user=SERVICE_USER,
                        identity_service_password=SERVICE_PASSWORD, **overrides)


@pytest.fixture
def app(cluster, identity):
    # no token cache: revocations show at once (the cache itself is test_identity_client's)
    return app_factory(proxy_conf(cluster, identity.url, identity_cache_seconds="0"))


@pytest.fixture(scope="module")
def accounts(identity):
    return {name: f"AUTH_{identity.project_id(name)}" for name in ("test", "test2", "admin")}


def v1_token(app, user, key):
    response = call(app, "/auth/v1.0", headers={"X-Auth-User": user, "X-Auth-Key": key})
    assert response.status_int == 200, response.status
    return response.headers["X-Storage-Url"], {"X-Auth-Token": response.headers["X-Auth-Token"]}


@pytest.fixture
def member(app):
    return v1_token(app, "test:tester", "testing")[1]


@pytest.fixture
def reader(app):
    return v1_token(app, "test:tester3", "testing3")[1]


@pytest.fixture
def other(app):
    return v1_token(app, "test2:tester2", "testing2")[1]


@pytest.fixture
def admin(app):
    return v1_token(app, "admin:admin", "admin-secret")[1]


def test_v1_auth(app, accounts, identity):
    url, auth = v1_token(app, "test:tester", "testing")
    assert url == f"http://localhost/v1/{accounts['test']}"
    response = call(app, "/auth/v1.0", headers={"X-Auth-User": "test:tester",
                                                "X-Auth-Key": "testing"})
    assert 0 < int(response.headers["X-Auth-Token-Expires"]) <= 86400
    assert response.headers["X-Storage-Token"] == response.headers["X-Auth-Token"]
    # the token is identity's own: identity validates it
    status, _headers, _body = identity.call("GET", "/v3/auth/tokens", headers={
        "X-Auth-Token": auth["X-Auth-Token"], "X-Subject-Token": auth["X-Auth-Token"]})
    assert status == 200
    also = call(app, "/auth/v1/test/auth", headers={"X-Storage-User": "tester",
                                                    "X-Storage-Pass": "testing"})
    assert also.status_int == 200


@pytest.mark.parametrize("headers", [
    {"X-Auth-User": "test:tester", "X-Auth-Key": "wrong"},
    {"X-Auth-User": "test:nobody", "X-Auth-Key": "testing"},
    {"X-Auth-User": "test2:tester", "X-Auth-Key": "testing"},     # no role on test2
    {"X-Auth-User": "tester", "X-Auth-Key": "testing"},
    {},
])
def test_v1_auth_refusals_are_401(app, headers):
    response = call(app, "/auth/v1.0", headers=headers)
    assert response.status_int == 401
    assert response.headers["Www-Authenticate"].startswith("Swift realm=")
    assert call(app, "/auth/v1.0", "POST", headers=headers).status_int == 400


def test_member_owns_its_project_account(app, accounts, member):
    base = f"/v1/{accounts['test']}"
    assert call(app, f"{base}/c", "PUT", headers={
        **member, "X-Container-Read": "test2:tester2"}).status_int == 201
    assert call(app, f"{base}/c/o", "PUT", headers=member, body=b"data").status_int == 201
    assert call(app, f"{base}/c/o", headers=member).body == b"data"
    # owners see (and set) ACLs and account metadata
    assert call(app, f"{base}/c", "HEAD", headers=member).headers["X-Container-Read"] == \
        "test2:tester2"
    assert call(app, base, "POST", headers={**member, "X-Account-Meta-Temp-URL-Key": "k"}) \
        .status_int == 204
    assert call(app, base, "HEAD", headers=member).headers["X-Account-Meta-Temp-URL-Key"] == "k"
    # but creating or deleting the account itself is a reseller's job
    assert call(app, base, "DELETE", headers=member).status_int == 403


def test_reader_reads_but_does_not_write(app, accounts, member, reader):
    base = f"/v1/{accounts['test']}"
    assert call(app, f"{base}/r", "PUT", headers={
        **member, "X-Container-Read": "x:y"}).status_int == 201
    assert call(app, f"{base}/r/o", "PUT", headers=member, body=b"read me").status_int == 201
    assert call(app, f"{base}/r/o", headers=reader).body == b"read me"
    assert call(app, base, headers=reader).status_int in (200, 204)
    head = call(app, f"{base}/r", "HEAD", headers=reader)
    assert head.status_int == 204 and "X-Container-Read" not in head.headers   # not an owner
    for method, path in (("PUT", "/r/o"), ("POST", "/r/o"), ("DELETE", "/r/o"),
                         ("PUT", "/r2"), ("POST", "/r"), ("POST", "")):
        response = call(app, base + path, method, headers=reader, body=b"x")
        assert response.status_int == 403, (method, path)
    assert call(app, f"{base}/r/o", headers=member).body == b"read me"


def test_other_project_is_refused_without_leaking(app, accounts, member, other):
    base = f"/v1/{accounts['test']}"
    assert call(app, f"{base}/private", "PUT", headers=member).status_int == 201
    assert call(app, f"{base}/private/secret", "PUT", headers=member,
                body=b"top secret").status_int == 201
    for method, path in (("GET", ""), ("HEAD", ""), ("GET", "/private"),
                         ("GET", "/private/secret"), ("HEAD", "/private/secret"),
                         ("PUT", "/private/x"), ("DELETE", "/private/secret"),
                         ("POST", "/private"), ("PUT", "/new")):
        response = call(app, base + path, method, headers=other)
        assert response.status_int == 403, (method, path)
        assert b"top secret" not in response.body and b"secret" not in response.body
        assert "X-Container-Object-Count" not in response.headers
    # its own account works
    assert call(app, f"/v1/{accounts['test2']}/mine", "PUT", headers=other).status_int == 201


def test_anonymous_tampered_and_revoked_tokens(app, accounts, identity, member):
    path = f"/v1/{accounts['test']}"
    response = call(app, path)
    assert response.status_int == 401
    assert response.headers["Www-Authenticate"] == f'Keystone uri="{identity.url}"'
    token = member["X-Auth-Token"]
    tampered = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    for bad in (tampered, "nonsense", token + "x"):
        response = call(app, path, headers={"X-Auth-Token": bad})
        assert response.status_int == 401, bad
        assert response.headers["Www-Authenticate"].startswith("Keystone uri=")
    assert call(app, path, "HEAD", headers=member).status_int == 204
    identity.revoke(token)
    assert call(app, path, "HEAD", headers=member).status_int == 401
    # /info needs no token, and a bad one does not spoil it
    assert call(app, "/info", headers={"X-Auth-Token": "nonsense"}).status_int == 200


def test_admin_is_reseller(app, accounts, admin, member):
    base = f"/v1/{accounts['test']}"
    assert call(app, f"{base}/adm", "PUT", headers=admin).status_int == 201
    assert call(app, f"{base}/adm", "POST", headers={
        **admin, "X-Container-Read": ".r:*"}).status_int == 204
    assert call(app, f"{base}/adm", "HEAD", headers=admin).headers["X-Container-Read"] == ".r:*"
    # only a reseller may set the account quota
    quota = {"X-Account-Meta-Quota-Bytes": "1000"}
    assert call(app, base, "POST", headers={**member, **quota}).status_int == 403
    assert call(app, base, "POST", headers={**admin, **quota}).status_int == 204
    assert call(app, base, "HEAD", headers=member).headers["X-Account-Meta-Quota-Bytes"] == \
        "1000"


def test_public_container_acl(app, accounts, member):
    base = f"/v1/{accounts['test']}/public"
    assert call(app, base, "PUT", headers={**member, "X-Container-Read": ".r:*"}) \
        .status_int == 201
    assert call(app, f"{base}/page", "PUT", headers=member, body=b"hi all").status_int == 201
    assert call(app, f"{base}/page").body == b"hi all"
    assert call(app, base).status_int == 401                  # no listing without .rlistings
    assert call(app, f"{base}/page", "PUT", body=b"vandal").status_int == 401
    assert call(app, base, "POST", headers={
        **member, "X-Container-Read": ".r:*,.rlistings"}).status_int == 204
    assert call(app, base).status_int in (200, 204)                # listed
    assert call(app, f"/v1/{accounts['test']}").status_int == 401   # the account is not public
    # referrer restrictions
    assert call(app, base, "POST", headers={
        **member, "X-Container-Read": ".r:.example.com"}).status_int == 204
    assert call(app, f"{base}/page",
                headers={"Referer": "http://www.example.com/x"}).status_int == 200
    assert call(app, f"{base}/page", headers={"Referer": "http://evil.org/"}).status_int == 401
    # referrers are not allowed in write ACLs
    assert call(app, base, "POST", headers={
        **member, "X-Container-Write": ".r:*"}).status_int == 400


@pytest.mark.parametrize("acl", ["{test2_id}:{tester2_id}", "test2:tester2", "{test2_id}:*",
                                 "*:{tester2_id}", "*:*", "test2:*"])
def test_user_acls_grant_other_projects(app, accounts, identity, member, other, acl):
    acl = acl.format(test2_id=identity.project_id("test2"),
                     tester2_id=identity.user_id("tester2"))
    base = f"/v1/{accounts['test']}/shared"
    assert call(app, base, "PUT", headers={**member, "X-Container-Read": acl,
                                           "X-Container-Write": acl}).status_int in (201, 202)
    assert call(app, f"{base}/o", "PUT", headers=member, body=b"shared").status_int == 201
    assert call(app, f"{base}/o", headers=other).body == b"shared"
    assert call(app, base, headers=other).status_int in (200, 204)     # listed
    assert call(app, f"{base}/from-other", "PUT", headers=other, body=b"x").status_int == 201
    # an ACL is about objects and listings, not the container's metadata or the account
    assert call(app, base, "POST", headers={**other, "X-Container-Read": "*:*"}).status_int == 403
    assert call(app, f"/v1/{accounts['test']}", headers=other).status_int == 403


def test_acl_for_someone_else_does_not_grant(app, accounts, member, other):
    base = f"/v1/{accounts['test']}/narrow"
    assert call(app, base, "PUT", headers={
        **member, "X-Container-Read": "test:tester3,test2:someone"}).status_int == 201
    assert call(app, base, headers=other).status_int == 403


def test_context_from_the_s3_layer_is_trusted(app, accounts, identity):
    project_id = identity.project_id("test")
    context = AuthContext("uid", "tester", project_id, "test", frozenset({"member"}),
                          time.time() + 60)
    environ = {AUTH_CONTEXT_ENV_KEY: context}
    base = f"/v1/{accounts['test']}/bys3"
    assert call(app, base, "PUT", environ=environ).status_int == 201
    foreign = {AUTH_CONTEXT_ENV_KEY: AuthContext("uid", "x", "elsewhere", "x",
                                                 frozenset({"member"}), time.time() + 60)}
    assert call(app, base, environ=foreign).status_int == 403


def test_identity_unreachable_is_503(cluster, accounts):
    app = app_factory(proxy_conf(cluster, f"http://127.0.0.1:{free_port()}",
                                 identity_timeout="2"))
    response = call(app, f"/v1/{accounts['test']}", headers={"X-Auth-Token": "some-token"})
    assert response.status_int == 503
    v1 = call(app, "/auth/v1.0", headers={"X-Auth-User": "test:tester", "X-Auth-Key": "x"})
    assert v1.status_int == 503
    # anonymous requests need no identity
    assert call(app, f"/v1/{accounts['test']}").status_int == 401


def test_acl_principals():
    context = AuthContext("uid", "uname", "pid", "pname", frozenset({"member"}), 0)
    principals = KeystoneAuth.acl_principals(context)
    assert {"pid:uid", "pname:uname", "pid:*", "*:uid", "*:*", "member"} <= set(principals)
    assert KeystoneAuth.acl_principals(None) == []


def test_identity_headers_from_clients_are_not_believed(app, accounts, identity, other):
    spoofed = {"X-Identity-Status": "Confirmed", "X-Roles": "admin,member",
               "X-Project-Id": identity.project_id("test"), "X-User-Id": "x"}
    assert call(app, f"/v1/{accounts['test']}", headers=spoofed).status_int == 401
    assert call(app, f"/v1/{accounts['test']}", headers={**other, **spoofed}).status_int == 403
