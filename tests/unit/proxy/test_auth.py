"""TempAuth: tokens, signed across workers, and tempauth's authorization rules with ACLs."""

from __future__ import annotations

import pytest

from common.config import Config
from proxy.acl import clean_acl, parse_acl, referrer_allowed
from proxy.auth import TempAuth, TokenSigner
from proxy.server import app_factory
from tests.unit.proxy.conftest import get_token
from tests.unit.proxy.fakes import call


def test_get_token(app):
    response = call(app, "/auth/v1.0", headers={"X-Auth-User": "test:tester",
                                                 "X-Auth-Key": "testing"})
    assert response.status_int == 200
    assert response.headers["X-Storage-Url"] == "http://localhost/v1/AUTH_test"
    assert response.headers["X-Auth-Token"] == response.headers["X-Storage-Token"]
    assert response.headers["X-Auth-Token"].startswith("AUTH_tk")
    assert 0 < int(response.headers["X-Auth-Token-Expires"]) <= 86400
    v1 = call(app, "/auth/v1/test/auth", headers={"X-Storage-User": "tester",
                                                  "X-Storage-Pass": "testing"})
    assert v1.status_int == 200


@pytest.mark.parametrize("headers", [
    {"X-Auth-User": "test:tester", "X-Auth-Key": "wrong"},
    {"X-Auth-User": "test:nobody", "X-Auth-Key": "testing"},
    {"X-Auth-User": "tester", "X-Auth-Key": "testing"},
    {},
])
def test_bad_credentials_are_401(app, headers):
    response = call(app, "/auth/v1.0", headers=headers)
    assert response.status_int == 401
    assert "Www-Authenticate" in response.headers


def test_token_use(app, cluster, auth):
    assert call(app, "/v1/AUTH_test/c", "PUT", headers=auth).status_int == 201
    # anonymous: 401; a bad token: 401; someone else's account: 403
    assert call(app, "/v1/AUTH_test/c").status_int == 401
    forged = auth["X-Auth-Token"][:-4] + "0000"
    assert call(app, "/v1/AUTH_test/c", headers={"X-Auth-Token": forged}).status_int == 401
    other = get_token(app, "test2:tester2", "testing2")
    assert call(app, "/v1/AUTH_test/c", headers={"X-Auth-Token": other}).status_int == 403
    assert call(app, "/v1/AUTH_test2/c", "PUT",
                headers={"X-Auth-Token": other}).status_int == 201
    # a reseller admin reaches every account
    admin = get_token(app, "admin:admin", "admin")
    assert call(app, "/v1/AUTH_test/c", "HEAD",
                headers={"X-Auth-Token": admin}).status_int == 204


def test_tokens_validate_in_any_worker_sharing_the_key(cluster, auth):
    other_worker = app_factory(cluster.conf())
    assert call(other_worker, "/v1/AUTH_test", "HEAD", headers=auth).status_int == 204
    other_cluster = app_factory(cluster.conf(token_key="another-key-of-32-bytes-0123456789"))
    assert call(other_cluster, "/v1/AUTH_test", "HEAD", headers=auth).status_int == 401


def test_token_expiry_and_key_rotation():
    now = [1000.0]
    signer = TokenSigner(b"k" * 32, "AUTH_", clock=lambda: now[0])
    token, expires = signer.issue("test:tester", "fp1", 60)
    assert expires == 1060
    assert signer.verify(token, lambda user: "fp1") == ("test:tester", 1060)
    assert signer.verify(token, lambda user: "fp2") is None       # the user's key changed
    assert signer.verify(token, lambda user: None) is None        # the user is gone
    now[0] = 1061
    assert signer.verify(token, lambda user: "fp1") is None       # expired


def test_expired_token_is_401(cluster):
    now = [1_000_000.0]

    def inner(env, start_response):
        start_response("204 No Content", [])
        return [b""]

    conf = cluster.conf(token_life="10")
    auth = TempAuth(inner, conf, clock=lambda: now[0])
    token = call(auth, "/auth/v1.0", headers={"X-Auth-User": "test:tester",
                                             "X-Auth-Key": "testing"}).headers["X-Auth-Token"]
    assert call(auth, "/v1/AUTH_test", headers={"X-Auth-Token": token}).status_int == 204
    now[0] += 11
    assert call(auth, "/v1/AUTH_test", headers={"X-Auth-Token": token}).status_int == 401


def test_public_read_acl(cluster, app, auth):
    call(app, "/v1/AUTH_test/pub", "PUT", headers={**auth, "X-Container-Read": ".r:*"})
    call(app, "/v1/AUTH_test/pub/o", "PUT", headers=auth, body=b"for everyone")
    response = call(app, "/v1/AUTH_test/pub/o")
    assert response.status_int == 200 and response.body == b"for everyone"
    assert call(app, "/v1/AUTH_test/pub").status_int == 401          # no listings
    assert call(app, "/v1/AUTH_test/pub/o", "PUT", body=b"x").status_int == 401
    call(app, "/v1/AUTH_test/pub", "POST", headers={**auth, "X-Container-Read": ".r:*,.rlistings"})
    assert call(app, "/v1/AUTH_test/pub").status_int in (200, 204)
    # anonymous clients never see the ACL itself
    assert "X-Container-Read" not in call(app, "/v1/AUTH_test/pub", "HEAD").headers
    assert call(app, "/v1/AUTH_test/pub", "HEAD",
                headers=auth).headers["X-Container-Read"] == ".r:*,.rlistings"
    # a private container stays private
    call(app, "/v1/AUTH_test/private", "PUT", headers=auth)
    call(app, "/v1/AUTH_test/private/o", "PUT", headers=auth, body=b"secret")
    assert call(app, "/v1/AUTH_test/private/o").status_int == 401


def test_user_acls(cluster, app, auth):
    tester2 = {"X-Auth-Token": get_token(app, "test:tester2", "testing2")}
    call(app, "/v1/AUTH_test/shared", "PUT", headers=auth)
    call(app, "/v1/AUTH_test/shared/o", "PUT", headers=auth, body=b"data")
    # a plain user of the account gets nothing without an ACL
    assert call(app, "/v1/AUTH_test", headers=tester2).status_int == 403
    assert call(app, "/v1/AUTH_test/shared/o", headers=tester2).status_int == 403
    call(app, "/v1/AUTH_test/shared", "POST", headers={**auth, "X-Container-Read": "test:tester2"})
    assert call(app, "/v1/AUTH_test/shared/o", headers=tester2).body == b"data"
    assert call(app, "/v1/AUTH_test/shared/o", "PUT", headers=tester2,
                body=b"x").status_int == 403
    call(app, "/v1/AUTH_test/shared", "POST", headers={**auth, "X-Container-Write": "test"})
    assert call(app, "/v1/AUTH_test/shared/o", "PUT", headers=tester2,
                body=b"x").status_int == 201
    # and cannot change the ACLs (owner-only headers are dropped)
    assert call(app, "/v1/AUTH_test/shared", "POST",
                headers={**tester2, "X-Container-Read": ".r:*"}).status_int == 403


def test_invalid_acls_are_400(app, auth):
    response = call(app, "/v1/AUTH_test/c", "PUT", headers={**auth, "X-Container-Write": ".r:*"})
    assert response.status_int == 400
    assert response.body.startswith(b"Referrers not allowed in write ACL")


def test_acl_helpers():
    assert clean_acl("x-container-read", " .ref:*.example.com , bob, .rlistings") == \
        ".r:.example.com,bob,.rlistings"
    with pytest.raises(ValueError, match="Unknown designator"):
        clean_acl("x-container-read", ".x:y")
    assert parse_acl(".r:*,test:tester") == (["*"], ["test:tester"])
    assert referrer_allowed("http://www.example.com/page", [".example.com"])
    assert not referrer_allowed("http://www.example.com/", ["*", "-www.example.com"])
    assert not referrer_allowed(None, [".example.com"])


def test_users_from_config_lines(cluster):
    conf = Config({"swift_dir": cluster.swift_dir, "token_key": "x" * 32,
                   "user_acct_alice": "secret .admin https://cdn.example.com/v1/AUTH_acct"},
                  "<test>", "filter:tempauth")
    auth = TempAuth(lambda env, start_response: [], conf)
    user = auth.users["acct:alice"]
    assert (user.key, user.groups, user.account_id) == ("secret", [".admin"], "AUTH_acct")
    response = call(auth, "/auth/v1.0", headers={"X-Auth-User": "acct:alice",
                                                 "X-Auth-Key": "secret"})
    assert response.headers["X-Storage-Url"] == "https://cdn.example.com/v1/AUTH_acct"
