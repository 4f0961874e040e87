"""The account server: Swift's account-server protocol driven through WSGI."""

from __future__ import annotations

import json

import pytest
import webob

from common.config import Config
from common.timestamp import Timestamp
from storage_node.account_server import AccountServer

CLUSTER_CONF = """\
[ringstack-hash]
path_prefix = p

[swift-constraints]
account_listing_limit = 100

[storage-policy:0]
name = gold
default = yes

[storage-policy:2]
name = ec
"""
ZERO = Timestamp(0).internal


def ts(seconds: float) -> str:
    return Timestamp(1700000000 + seconds).internal


def wsgi(text: str) -> str:
    return text.encode("utf-8").decode("latin-1")


@pytest.fixture
def app(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "ringstack.conf").write_text(CLUSTER_CONF)
    (tmp_path / "srv" / "sda1").mkdir(parents=True)
    server = AccountServer(Config({"devices": str(tmp_path / "srv"), "mount_check": "false",
                                   "swift_dir": str(tmp_path / "etc"), "log_requests": "no"},
                                  "test.conf", "account-server"))
    yield server
    server.pools.shutdown()


def call(app, path: str | bytes, method="GET", headers=None, query=""):
    request = webob.Request.blank("/", method=method, headers=headers or {})
    request.environ["PATH_INFO"] = path.decode("latin-1") if isinstance(path, bytes) \
        else wsgi(path)
    request.environ["QUERY_STRING"] = query
    return request.get_response(app)


def put_row(app, container, put_timestamp=None, delete_timestamp=ZERO, count=0, used=0,
            policy=0, account="/sda1/0/AUTH_a", **extra):
    headers = {"X-Put-Timestamp": put_timestamp or ts(1), "X-Delete-Timestamp": delete_timestamp,
               "X-Object-Count": str(count), "X-Bytes-Used": str(used),
               "X-Backend-Storage-Policy-Index": str(policy), **extra}
    return call(app, f"{account}/{container}", "PUT", headers)


@pytest.fixture
def account(app):
    assert call(app, "/sda1/0/AUTH_a", "PUT", {"X-Timestamp": ts(1)}).status_int == 201
    return app


def test_put_creates_then_accepts(app):
    assert call(app, "/sda1/0/AUTH_a", "PUT", {"X-Timestamp": ts(1),
                                               "X-Account-Meta-Color": "blue"}).status_int == 201
    assert call(app, "/sda1/0/AUTH_a", "PUT", {"X-Timestamp": ts(2)}).status_int == 202
    headers = call(app, "/sda1/0/AUTH_a", "HEAD").headers
    assert headers["X-PUT-Timestamp"] == ts(2)
    assert headers["X-Account-Meta-Color"] == "blue"
    response = call(app, "/sda1/0/AUTH_b", "PUT")
    assert (response.status_int, response.body) == (400, b"Missing X-Timestamp header")


def test_head_reports_totals_policies_and_metadata(account):
    put_row(account, "c1", count=3, used=30)
    put_row(account, "c2", count=4, used=40, policy=2)
    call(account, "/sda1/0/AUTH_a", "POST", {"X-Timestamp": ts(2),
                                             "X-Account-Meta-Quota": wsgi("ünïcode"),
                                             "X-Account-Sysmeta-Project": "p1"})
    response = call(account, "/sda1/0/AUTH_a", "HEAD")
    assert response.status_int == 204
    headers = response.headers
    assert (headers["X-Account-Container-Count"], headers["X-Account-Object-Count"],
            headers["X-Account-Bytes-Used"]) == ("2", "7", "70")
    assert headers["X-PUT-Timestamp"] == ts(1)
    assert Timestamp(headers["X-Timestamp"]) > Timestamp(ts(1))      # created_at: now
    assert headers["X-Account-Storage-Policy-Gold-Container-Count"] == "1"
    assert headers["X-Account-Storage-Policy-Ec-Bytes-Used"] == "40"
    assert headers["X-Account-Meta-Quota"] == wsgi("ünïcode")
    assert headers["X-Account-Sysmeta-Project"] == "p1"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Content-Length"] == "0"


def test_get_listing_formats(account):
    put_row(account, "photos", count=2, used=20)
    put_row(account, "zeta", count=0, used=0, policy=2)
    put_row(account, "日記", count=1, used=1, policy=9)            # a policy we do not know
    response = call(account, "/sda1/0/AUTH_a", query="format=json")
    assert response.status_int == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["X-Account-Container-Count"] == "3"
    assert json.loads(response.body) == [
        {"name": "photos", "count": 2, "bytes": 20,
         "last_modified": "2023-11-14T22:13:21.000000", "storage_policy": "gold"},
        {"name": "zeta", "count": 0, "bytes": 0,
         "last_modified": "2023-11-14T22:13:21.000000", "storage_policy": "ec"},
        {"name": "日記", "count": 1, "bytes": 1, "last_modified": "2023-11-14T22:13:21.000000"}]
    assert b"\\u65e5\\u8a18" in response.body                     # ASCII JSON, as Swift
    assert call(account, "/sda1/0/AUTH_a").body == "photos\nzeta\n日記\n".encode()
    body = call(account, "/sda1/0/AUTH_a", headers={"Accept": "application/xml"}).body
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<account name="AUTH_a">\n'
                           b"<container><name>photos</name><count>2</count><bytes>20</bytes>")
    assert call(account, "/sda1/0/AUTH_a", query="prefix=p&format=json").body.count(
        b'"name"') == 1
    assert call(account, "/sda1/0/AUTH_a", query="delimiter=o&limit=1").body == b"pho\n"
    assert call(account, "/sda1/0/AUTH_a", query="reverse=yes&limit=1").body == \
        "日記\n".encode()
    assert call(account, "/sda1/0/AUTH_a", query="marker=photos&end_marker=%E6%97%A5").body == \
        b"zeta\n"


def test_get_empty_account(account):
    assert call(account, "/sda1/0/AUTH_a").status_int == 204
    response = call(account, "/sda1/0/AUTH_a", query="format=json")
    assert (response.status_int, response.body) == (200, b"[]")
    assert call(account, "/sda1/0/AUTH_a", query="format=xml").body == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<account name="AUTH_a">\n</account>')


@pytest.mark.parametrize("query, status", [("limit=101", 412), ("limit=abc", 200),
                                           ("marker=%FF", 400)])
def test_get_parameters(account, query, status):
    put_row(account, "c")
    assert call(account, "/sda1/0/AUTH_a", query=query).status_int == status


def test_container_rows(account):
    assert put_row(account, "c", count=1, used=5).status_int == 201
    assert put_row(account, "c", put_timestamp=ts(1), delete_timestamp=ts(2)).status_int == 204
    assert call(account, "/sda1/0/AUTH_a").status_int == 204          # deleted: not listed
    assert put_row(account, "c", put_timestamp=ts(3), delete_timestamp=ts(2)).status_int == 201
    assert call(account, "/sda1/0/AUTH_a").body == b"c\n"
    # Rows for an account that is missing (or deleted) are refused...
    assert put_row(account, "c", account="/sda1/0/AUTH_nobody").status_int == 404
    # ...unless it is a '.'-account (the expirer's), created on demand as in Swift.
    assert put_row(account, "1700000000", account="/sda1/0/.expiring_objects").status_int \
        == 201


def test_newest_report_wins(account):
    put_row(account, "c", count=10, used=100, **{"X-Timestamp": ts(20)})
    put_row(account, "c", count=1, used=1, **{"X-Timestamp": ts(15)})     # a late replay
    assert call(account, "/sda1/0/AUTH_a", "HEAD").headers["X-Account-Object-Count"] == "10"
    put_row(account, "c", count=12, used=120, **{"X-Timestamp": ts(25)})
    assert call(account, "/sda1/0/AUTH_a", "HEAD").headers["X-Account-Object-Count"] == "12"


@pytest.mark.parametrize("header, value", [
    ("X-Put-Timestamp", None), ("X-Put-Timestamp", "nope"), ("X-Delete-Timestamp", None),
    ("X-Object-Count", None), ("X-Object-Count", "-1"), ("X-Bytes-Used", "lots"),
    ("X-Backend-Storage-Policy-Index", "x"), ("X-Timestamp", "later"),
])
def test_container_row_header_errors(account, header, value):
    headers = {"X-Put-Timestamp": ts(1), "X-Delete-Timestamp": ZERO, "X-Object-Count": "0",
               "X-Bytes-Used": "0"}
    if value is None:
        headers.pop(header)
    else:
        headers[header] = value
    assert call(account, "/sda1/0/AUTH_a/c", "PUT", headers).status_int == 400


def test_post_metadata(account):
    assert call(account, "/sda1/0/AUTH_a", "POST", {
        "X-Timestamp": ts(2), "X-Account-Meta-A": "1", "X-Account-Meta-B": "2"}).status_int \
        == 204
    call(account, "/sda1/0/AUTH_a", "POST", {"X-Timestamp": ts(3), "X-Account-Meta-B": ""})
    call(account, "/sda1/0/AUTH_a", "POST", {"X-Timestamp": ts(1.5), "X-Account-Meta-A": "0"})
    headers = call(account, "/sda1/0/AUTH_a", "HEAD").headers
    assert headers["X-Account-Meta-A"] == "1" and "X-Account-Meta-B" not in headers
    assert call(account, "/sda1/0/AUTH_nobody", "POST", {"X-Timestamp": ts(2)}).status_int \
        == 404
    response = call(account, "/sda1/0/AUTH_a", "POST", {"X-Timestamp": ts(4), **{
        f"X-Account-Meta-K{i}": "v" for i in range(91)}})
    assert (response.status_int, response.body) == (400, b"Too many metadata items; max 90")


def test_delete_marks_the_account_deleted(account):
    put_row(account, "c", count=1, used=1)
    response = call(account, "/sda1/0/AUTH_a", "DELETE", {"X-Timestamp": ts(5)})
    assert response.status_int == 204
    assert response.headers["X-Account-Status"] == "Deleted"
    for method in ("HEAD", "GET"):
        response = call(account, "/sda1/0/AUTH_a", method)
        assert response.status_int == 404
        assert response.headers["X-Account-Status"] == "Deleted"
    response = call(account, "/sda1/0/AUTH_a", "PUT", {"X-Timestamp": ts(6)})
    assert (response.status_int, response.body) == (403, b"Recently deleted")
    assert call(account, "/sda1/0/AUTH_a", "DELETE", {"X-Timestamp": ts(7)}).status_int == 404
    assert call(account, "/sda1/0/AUTH_a", "POST", {"X-Timestamp": ts(7)}).status_int == 404
    assert put_row(account, "c2").status_int == 404
    # The container servers' reaper-time updates may still land with the override.
    assert put_row(account, "c2", **{"X-Account-Override-Deleted": "yes"}).status_int == 201
    missing = call(account, "/sda1/0/AUTH_nobody", "DELETE", {"X-Timestamp": ts(1)})
    assert missing.status_int == 404 and "X-Account-Status" not in missing.headers


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/sda1/0", 400), ("GET", "/sda1/0/a/c", 400), ("HEAD", "/sda1/zero/a", 400),
    ("GET", b"/sda1/0/\xff\xfe", 412), ("PUT", "/sda1/0/" + "a" * 300, 400),
    ("PUT", "/sda1/0/a/" + "c" * 300, 400), ("DELETE", "/sda1/0/a\x00b", 400),
    ("COPY", "/sda1/0/a", 405), ("GET", "/sdz/0/a", 507), ("PUT", "/sdz/0/a", 507),
])
def test_malformed_requests_get_swifts_4xx(app, method, path, status):
    response = call(app, path, method, {"X-Timestamp": ts(1)})
    assert response.status_int == status, response.body
