"""account-quotas and container-quotas through the real proxy app (fake storage nodes, tempauth):
who may set quotas, 413 past them, and the auth answer before any quota answer."""

from __future__ import annotations

import pytest

from proxy.middleware.quota_rules import over_limit, parse_limit, valid_limit_header
from proxy.server import app_factory
from tests.unit.proxy.conftest import get_token
from tests.unit.proxy.fakes import call

PIPELINE = ("catch_errors gatekeeper healthcheck proxy-logging tempauth copy container-quotas "
            "account-quotas slo dlo proxy")


@pytest.fixture
def app(cluster):
    return app_factory(cluster.conf(pipeline=PIPELINE))


@pytest.fixture
def owner(app):
    return {"X-Auth-Token": get_token(app)}


@pytest.fixture
def reseller(app):
    return {"X-Auth-Token": get_token(app, "admin:admin", "admin")}


def put(app, path, headers, body=b"", **kwargs):
    return call(app, path, "PUT", headers=headers, body=body, **kwargs)


def test_rules():
    assert parse_limit("10") == 10 and parse_limit(" 0 ") == 0
    assert parse_limit(None) is None and parse_limit("") is None and parse_limit("-1") is None
    assert parse_limit("ten") is None
    assert valid_limit_header(None) and valid_limit_header("") and valid_limit_header("5")
    assert not valid_limit_header("-5") and not valid_limit_header("1.5")
    assert not over_limit(None, 10**12, 10**12)
    assert not over_limit(10, "4", 6) and over_limit(10, "4", 7)
    assert over_limit(0, None, 1) and not over_limit(0, None, 0)


def test_only_reseller_admins_set_account_quota(app, owner, reseller):
    post = {"X-Account-Meta-Quota-Bytes": "100"}
    assert call(app, "/v1/AUTH_test", "POST", headers={**owner, **post}).status_int == 403
    assert call(app, "/v1/AUTH_test", "POST",
                headers={**owner, "X-Remove-Account-Meta-Quota-Bytes": "x"}).status_int == 403
    assert call(app, "/v1/AUTH_test", "POST",
                headers={**reseller, "X-Account-Meta-Quota-Bytes": "lots"}).status_int == 400
    assert call(app, "/v1/AUTH_test", "POST", headers={**reseller, **post}).status_int == 204
    head = call(app, "/v1/AUTH_test", "HEAD", headers=owner)
    assert head.headers["X-Account-Meta-Quota-Bytes"] == "100"   # owners see it
    # other account metadata stays the owner's business
    assert call(app, "/v1/AUTH_test", "POST",
                headers={**owner, "X-Account-Meta-Color": "blue"}).status_int == 204


def test_account_quota_refuses_oversize_put(app, owner, reseller):
    # (the fake account servers report 0 bytes used: the PUT's own size decides here)
    assert put(app, "/v1/AUTH_test/c", owner).status_int == 201
    assert put(app, "/v1/AUTH_test/c/six", owner, b"x" * 6).status_int == 201
    assert call(app, "/v1/AUTH_test", "POST",
                headers={**reseller, "X-Account-Meta-Quota-Bytes": "5"}).status_int == 204
    response = put(app, "/v1/AUTH_test/c/big", owner, b"x" * 6)
    assert response.status_int == 413
    assert response.body == b"Upload exceeds quota."
    assert put(app, "/v1/AUTH_test/c/fits", owner, b"x" * 5).status_int == 201
    # a copy counts as a PUT of the source's size, whichever way it is asked for
    assert call(app, "/v1/AUTH_test/c/six", "COPY",
                headers={**owner, "Destination": "c/copy"}).status_int == 413
    assert put(app, "/v1/AUTH_test/c/copy", {**owner, "X-Copy-From": "c/six"}).status_int == 413
    # anonymous and unauthorized callers get the auth answer, never the quota's
    assert put(app, "/v1/AUTH_test/c/big", {}, b"x" * 6).status_int == 401
    other = {"X-Auth-Token": get_token(app, "test2:tester2", "testing2")}
    assert put(app, "/v1/AUTH_test/c/big", other, b"x" * 6).status_int == 403
    # reads, deletes and POSTs still work; without the quota the PUT goes through
    assert call(app, "/v1/AUTH_test/c/six", headers=owner).body == b"x" * 6
    assert call(app, "/v1/AUTH_test/c/six", "POST",
                headers={**owner, "X-Object-Meta-A": "b"}).status_int == 202
    assert call(app, "/v1/AUTH_test/c/six", "DELETE", headers=owner).status_int == 204
    assert call(app, "/v1/AUTH_test", "POST",
                headers={**reseller, "X-Remove-Account-Meta-Quota-Bytes": "1"}).status_int == 204
    assert put(app, "/v1/AUTH_test/c/big", owner, b"x" * 6).status_int == 201


def test_container_quota_values_are_checked(app, owner):
    assert put(app, "/v1/AUTH_test/q", {**owner, "X-Container-Meta-Quota-Bytes": "x"}) \
        .status_int == 400
    response = call(app, "/v1/AUTH_test/q", "POST",
                    headers={**owner, "X-Container-Meta-Quota-Count": "-1"})
    assert response.status_int == 400 and b"Invalid count quota." in response.body
    assert put(app, "/v1/AUTH_test/q", {**owner, "X-Container-Meta-Quota-Bytes": "10",
                                        "X-Container-Meta-Quota-Count": "2"}).status_int == 201


def test_container_quotas_refuse_uploads_past_them(cluster, app, owner):
    assert put(app, "/v1/AUTH_test/q", {**owner, "X-Container-Meta-Quota-Bytes": "10",
                                        "X-Container-Meta-Quota-Count": "2"}).status_int == 201
    assert put(app, "/v1/AUTH_test/q/a", owner, b"12345678").status_int == 201
    _set_container_usage(cluster, "/AUTH_test/q", used=8, count=1)
    response = put(app, "/v1/AUTH_test/q/b", owner, b"123")
    assert (response.status_int, response.body) == (413, b"Upload exceeds quota.")
    assert put(app, "/v1/AUTH_test/q/b", owner, b"12").status_int == 201
    _set_container_usage(cluster, "/AUTH_test/q", used=10, count=2)
    assert put(app, "/v1/AUTH_test/q/c", owner, b"").status_int == 413      # count
    assert put(app, "/v1/AUTH_test/q/c", {}, b"").status_int == 401          # auth first
    # an ACL writer gets the quota answer like the owner
    assert call(app, "/v1/AUTH_test/q", "POST",
                headers={**owner, "X-Container-Write": "test2:tester2"}).status_int == 204
    other = {"X-Auth-Token": get_token(app, "test2:tester2", "testing2")}
    assert put(app, "/v1/AUTH_test/q/c", other, b"").status_int == 413
    # the owner lifts the count quota (Swift: whoever may POST the container)
    assert call(app, "/v1/AUTH_test/q", "POST",
                headers={**owner, "X-Remove-Container-Meta-Quota-Count": "1"}).status_int == 204
    assert put(app, "/v1/AUTH_test/q/c", owner, b"").status_int == 201


def _set_container_usage(cluster, path, used, count):
    """What the container servers report (the fake object servers send no updates)."""
    for server in cluster.containers:
        if path in server.store:
            server.rows[path] = {f"o{i}": {"bytes": used // count if i else
                                           used - used // count * (count - 1)}
                                 for i in range(count)}
