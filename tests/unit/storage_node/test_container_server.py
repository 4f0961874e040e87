"""The container server: Swift's protocol driven through WSGI, and live with an account server."""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import threading
import time
from urllib.parse import quote

import eventlet
import eventlet.wsgi
import pytest
import webob

from common.config import Config
from common.timestamp import Timestamp
from ring.builder import RingBuilder
from ring.hashing import HashSecrets, hash_path
from ring.ring import Ring
from storage_node import async_pending
from storage_node.account_server import AccountServer
from storage_node.container_db import ObjectRecord
from storage_node.container_server import ContainerServer
from storage_node.db import DatabaseNotFound
from storage_node.db_server import split_path
from storage_node.row_batcher import RowBatcher, RowUpdate
from storage_node.updater import ObjectUpdater, UpdaterSettings

SECRETS = HashSecrets(b"", b"test-suffix")
CLUSTER_CONF = """\
[ringstack-hash]
path_suffix = test-suffix

[swift-constraints]
max_meta_count = 4

[storage-policy:0]
name = gold

[storage-policy:1]
name = silver
default = yes
"""


def ts(seconds: float) -> str:
    return Timestamp(1700000000 + seconds).internal


def wsgi(text: str) -> str:
    """A header value as a WSGI server hands it over (latin-1 of the UTF-8 bytes)."""
    return text.encode("utf-8").decode("latin-1")


def make_conf(tmp_path, **options) -> Config:
    etc = tmp_path / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "ringstack.conf").write_text(CLUSTER_CONF)
    (tmp_path / "srv" / "sda1").mkdir(parents=True, exist_ok=True)
    values = {"devices": str(tmp_path / "srv"), "mount_check": "false",
              "swift_dir": str(etc), "log_requests": "false",
              "account_update_interval": "0", "conn_timeout": "0.5", "node_timeout": "2"}
    values.update({key: str(value) for key, value in options.items()})
    return Config(values, "test.conf", "container-server")


@pytest.fixture
def app(tmp_path):
    server = ContainerServer(make_conf(tmp_path))
    yield server
    server.pools.shutdown()


def call(app, path: str | bytes, method="GET", headers=None, query=""):
    """Drive the app; `path` is text, or raw bytes to send bytes that are not UTF-8."""
    request = webob.Request.blank("/", method=method, headers=headers or {})
    request.environ["PATH_INFO"] = path.decode("latin-1") if isinstance(path, bytes) \
        else wsgi(path)
    request.environ["QUERY_STRING"] = query
    return request.get_response(app)


def put_container(app, path="/sda1/1/a/c", timestamp=None, **headers):
    headers.setdefault("X-Timestamp", timestamp or ts(1))
    return call(app, path, "PUT", {k.replace("_", "-"): v for k, v in headers.items()})


def put_row(app, name, timestamp, size=10, content_type="text/plain", etag="e",
            path="/sda1/1/a/c", **extra):
    # Object servers always name the policy; 1 is the default one in CLUSTER_CONF.
    headers = {"X-Timestamp": timestamp, "X-Size": str(size), "X-Content-Type": content_type,
               "X-Etag": etag, "X-Backend-Storage-Policy-Index": "1", **extra}
    return call(app, f"{path}/{name}", "PUT", headers)


def db_path(tmp_path, partition, account, container):
    name_hash = hash_path(account, container, secrets=SECRETS).hex()
    return os.path.join(tmp_path, "srv", "sda1", "containers", str(partition), name_hash[-3:],
                        name_hash, name_hash + ".db")


# ---- PUT ---------------------------------------------------------------------------------------

def test_put_creates_then_accepts(tmp_path, app):
    response = put_container(app)
    assert response.status_int == 201
    assert response.headers["X-Backend-Storage-Policy-Index"] == "1"     # the default policy
    assert os.path.exists(db_path(tmp_path, 1, "a", "c"))
    response = put_container(app, timestamp=ts(2))
    assert response.status_int == 202
    assert call(app, "/sda1/1/a/c", "HEAD").headers["X-PUT-Timestamp"] == ts(2)


def test_put_policies(app):
    assert put_container(app, "/sda1/1/a/p0", X_Backend_Storage_Policy_Index="0").headers[
        "X-Backend-Storage-Policy-Index"] == "0"
    assert put_container(app, "/sda1/1/a/pd", X_Backend_Storage_Policy_Default="0").headers[
        "X-Backend-Storage-Policy-Index"] == "0"
    response = put_container(app, "/sda1/1/a/bad", X_Backend_Storage_Policy_Index="7")
    assert response.status_int == 400 and b"Invalid X-Backend-Storage-Policy-Index" in \
        response.body
    # A live container keeps its policy: asking for another is a conflict.
    response = put_container(app, "/sda1/1/a/p0", timestamp=ts(2),
                             X_Backend_Storage_Policy_Index="1")
    assert response.status_int == 409
    assert response.headers["X-Backend-Storage-Policy-Index"] == "0"
    # Deleted, it may be recreated with another policy (201 again).
    assert call(app, "/sda1/1/a/p0", "DELETE", {"X-Timestamp": ts(3)}).status_int == 204
    response = put_container(app, "/sda1/1/a/p0", timestamp=ts(4),
                             X_Backend_Storage_Policy_Index="1")
    assert response.status_int == 201
    assert response.headers["X-Backend-Storage-Policy-Index"] == "1"
    # A PUT older than a delete leaves the container deleted.
    call(app, "/sda1/1/a/p0", "DELETE", {"X-Timestamp": ts(6)})
    assert put_container(app, "/sda1/1/a/p0", timestamp=ts(5)).status_int == 409


@pytest.mark.parametrize("method, path", [("PUT", "/sda1/1/a/c"), ("POST", "/sda1/1/a/c"),
                                          ("DELETE", "/sda1/1/a/c"),
                                          ("PUT", "/sda1/1/a/c/o"), ("DELETE", "/sda1/1/a/c/o")])
def test_writes_need_a_valid_timestamp(app, method, path):
    response = call(app, path, method)
    assert (response.status_int, response.body) == (400, b"Missing X-Timestamp header")
    response = call(app, path, method, {"X-Timestamp": "yesterday"})
    assert (response.status_int, response.body) == (400, b"Invalid X-Timestamp header")


# ---- HEAD, POST and metadata -------------------------------------------------------------------

def test_head_reports_stats_and_metadata(app):
    put_container(app, X_Container_Meta_Color="blue", X_Container_Read=".r:*",
                  X_Container_Sysmeta_Owner="me", X_Versions_Location="versions",
                  X_Other_Header="dropped")
    put_row(app, "o1", ts(2), size=5)
    put_row(app, "o2", ts(3), size=7)
    response = call(app, "/sda1/1/a/c", "HEAD")
    assert response.status_int == 204
    headers = response.headers
    assert (headers["X-Container-Object-Count"], headers["X-Container-Bytes-Used"]) == ("2",
                                                                                        "12")
    assert headers["X-PUT-Timestamp"] == ts(1)
    assert headers["X-Backend-PUT-Timestamp"] == ts(1)
    assert headers["X-Backend-Storage-Policy-Index"] == "1"
    assert headers["Last-Modified"] == Timestamp(ts(1)).http_date
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Content-Length"] == "0"
    assert (headers["X-Container-Meta-Color"], headers["X-Container-Read"],
            headers["X-Container-Sysmeta-Owner"], headers["X-Versions-Location"]) == (
        "blue", ".r:*", "me", "versions")
    assert "X-Other-Header" not in headers
    assert call(app, "/sda1/1/a/c", "HEAD", {"Accept": "application/json"}).headers[
        "Content-Type"] == "application/json; charset=utf-8"
    response = call(app, "/sda1/1/a/missing", "HEAD")
    assert response.status_int == 404
    assert response.headers["X-Backend-PUT-Timestamp"] == Timestamp(0).internal


def test_post_merges_metadata_newest_wins(app):
    put_container(app, X_Container_Meta_A="1", X_Container_Meta_B="2")
    response = call(app, "/sda1/1/a/c", "POST", {
        "X-Timestamp": ts(3), "X-Container-Meta-A": wsgi("été"), "X-Container-Meta-B": "",
        "X-Container-Write": "AUTH_other"})
    assert response.status_int == 204
    # An older POST loses to what is stored, name by name.
    call(app, "/sda1/1/a/c", "POST", {"X-Timestamp": ts(2), "X-Container-Meta-A": "old",
                                      "X-Container-Meta-C": "3"})
    headers = call(app, "/sda1/1/a/c", "HEAD").headers
    assert headers["X-Container-Meta-A"] == wsgi("été")
    assert "X-Container-Meta-B" not in headers                       # removed by ""
    assert headers["X-Container-Meta-C"] == "3"
    assert headers["X-Container-Write"] == "AUTH_other"
    # A POST moves the put timestamp (Swift), unless told not to.
    assert headers["X-PUT-Timestamp"] == ts(3)
    call(app, "/sda1/1/a/c", "POST", {"X-Timestamp": ts(4), "X-Container-Meta-D": "4",
                                      "X-Backend-No-Timestamp-Update": "true"})
    assert call(app, "/sda1/1/a/c", "HEAD").headers["X-PUT-Timestamp"] == ts(3)


def test_metadata_errors_are_400(app):
    put_container(app)
    too_many = {f"X-Container-Meta-K{i}": "v" for i in range(5)}     # the limit is 4 here
    response = call(app, "/sda1/1/a/c", "POST", {"X-Timestamp": ts(2), **too_many})
    assert (response.status_int, response.body) == (400, b"Too many metadata items; max 4")
    response = put_container(app, "/sda1/1/a/new", **{"X-Container-Meta-K": "\xff\xfe"})
    assert (response.status_int, response.body) == (400, b"Metadata must be valid UTF-8")
    assert call(app, "/sda1/1/a/new", "HEAD").status_int == 404      # nothing was created
    assert call(app, "/sda1/1/a/missing", "POST", {"X-Timestamp": ts(2)}).status_int == 404


# ---- GET ---------------------------------------------------------------------------------------

@pytest.fixture
def listed(app):
    put_container(app)
    for name, when in (("a/1", 2), ("a/2", 3), ("b", 4), ("日本", 5)):
        put_row(app, name, ts(when), size=3, content_type="text/plain", etag="abc")
    return app


def test_get_plain_json_xml(listed):
    response = call(listed, "/sda1/1/a/c")
    assert response.status_int == 200
    assert response.body == "a/1\na/2\nb\n日本\n".encode()
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["X-Container-Object-Count"] == "4"
    response = call(listed, "/sda1/1/a/c", query="format=json&limit=1&marker=b")
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.body == (b'[{"bytes": 3, "hash": "abc", "name": "\\u65e5\\u672c", '
                             b'"content_type": "text/plain", '
                             b'"last_modified": "2023-11-14T22:13:25.000000"}]')
    response = call(listed, "/sda1/1/a/c", headers={"Accept": "application/xml"},
                    query="delimiter=/")
    assert response.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n'
                                    b'<container name="c"><subdir name="a/"><name>a/</name>'
                                    b"</subdir><object><name>b</name>")
    assert call(listed, "/sda1/1/a/c", headers={"Accept": "text/xml"}).headers[
        "Content-Type"] == "text/xml; charset=utf-8"


def test_get_query_parameters(listed):
    def plain(query):
        return call(listed, "/sda1/1/a/c", query=query).body.decode().splitlines()

    assert plain("prefix=a/") == ["a/1", "a/2"]
    assert plain("delimiter=/") == ["a/", "b", "日本"]
    assert plain("path=a") == ["a/1", "a/2"]
    assert plain("reverse=true&limit=2") == ["日本", "b"]
    assert plain("marker=a/1&end_marker=%E6%97%A5") == ["a/2", "b"]
    assert plain("limit=abc") == ["a/1", "a/2", "b", "日本"]       # Swift ignores it


def test_get_empty_and_missing(app):
    put_container(app)
    response = call(app, "/sda1/1/a/c")
    assert (response.status_int, response.body) == (204, b"")
    response = call(app, "/sda1/1/a/c", query="format=json")
    assert (response.status_int, response.body) == (200, b"[]")
    assert call(app, "/sda1/1/a/c", query="format=xml").status_int == 200
    assert call(app, "/sda1/1/a/nope").status_int == 404


@pytest.mark.parametrize("query, headers, status, body", [
    ("limit=10001", {}, 412, b"Maximum limit is 10000"),
    ("prefix=%FF", {}, 400, b'"prefix" parameter not valid UTF-8'),
    ("format=%FF", {}, 400, b'"format" parameter not valid UTF-8'),
    ("", {"Accept": "image/png"}, 406, None),
    ("", {"Accept": "not a type"}, 400, b"Invalid Accept header"),
])
def test_get_bad_parameters(listed, query, headers, status, body):
    response = call(listed, "/sda1/1/a/c", headers=headers, query=query)
    assert response.status_int == status
    if body is not None:
        assert response.body == body


# ---- object rows -------------------------------------------------------------------------------

def test_object_rows(app):
    put_container(app)
    assert put_row(app, "o", ts(2), size=10).status_int == 201
    assert put_row(app, "o", ts(1.5), size=99).status_int == 201          # older: no effect
    assert call(app, "/sda1/1/a/c", "HEAD").headers["X-Container-Bytes-Used"] == "10"
    assert call(app, "/sda1/1/a/c/o", "DELETE", {
        "X-Timestamp": ts(3), "X-Backend-Storage-Policy-Index": "1"}).status_int == 204
    headers = call(app, "/sda1/1/a/c", "HEAD").headers
    assert (headers["X-Container-Object-Count"], headers["X-Container-Bytes-Used"]) == ("0",
                                                                                        "0")
    assert put_row(app, "o", ts(2.5)).status_int == 201       # a late PUT: the delete wins
    assert call(app, "/sda1/1/a/c").status_int == 204
    # Names may contain slashes (the rest of the path is the object name).
    assert put_row(app, "x/y/z", ts(4)).status_int == 201
    assert call(app, "/sda1/1/a/c").body == b"x/y/z\n"


@pytest.mark.parametrize("drop, value, body", [
    ("X-Size", None, b"Missing X-Size header"), ("X-Size", "ten", b"Invalid X-Size header"),
    ("X-Content-Type", None, b"Missing X-Content-Type header"),
    ("X-Etag", None, b"Missing X-Etag header"),
    ("X-Meta-Timestamp", "soon", b"Invalid X-Meta-Timestamp header"),
])
def test_object_row_header_errors(app, drop, value, body):
    put_container(app)
    headers = {"X-Timestamp": ts(2), "X-Size": "1", "X-Content-Type": "t", "X-Etag": "e"}
    if value is None:
        del headers[drop]
    else:
        headers[drop] = value
    response = call(app, "/sda1/1/a/c/o", "PUT", headers)
    assert (response.status_int, response.body) == (400, body)


def test_object_rows_need_the_container_unless_auto_created(app):
    assert put_row(app, "o", ts(2), path="/sda1/1/a/nope").status_int == 404
    assert call(app, "/sda1/1/a/nope/o", "DELETE", {"X-Timestamp": ts(2)}).status_int == 404
    # '.'-accounts (the expirer's) get their containers from the first row, as in Swift.
    assert put_row(app, "o", ts(2), path="/sda1/1/.expiring_objects/1700000000").status_int \
        == 201
    assert call(app, "/sda1/1/.expiring_objects/1700000000").body == b"o\n"


def test_fast_post_row_updates_content_type(app):
    put_container(app)
    put_row(app, "o", ts(2), size=4, content_type="text/plain", etag="e1")
    put_row(app, "o", ts(3), size=4, content_type="image/png", etag="e1",
            **{"X-Content-Type-Timestamp": ts(3), "X-Meta-Timestamp": ts(3)})
    listing = json.loads(call(app, "/sda1/1/a/c", query="format=json").body)
    assert listing == [{"bytes": 4, "hash": "e1", "name": "o", "content_type": "image/png",
                        "last_modified": Timestamp(ts(3)).isoformat}]


def test_listing_of_another_policy(app):
    put_container(app)
    put_row(app, "misplaced", ts(2), **{"X-Backend-Storage-Policy-Index": "0"})
    assert call(app, "/sda1/1/a/c").status_int == 204               # not in policy 1
    response = call(app, "/sda1/1/a/c", headers={"X-Backend-Storage-Policy-Index": "0"})
    assert response.body == b"misplaced\n"
    assert response.headers["X-Backend-Record-Storage-Policy-Index"] == "0"


def test_concurrent_rows_are_group_committed(app):
    put_container(app)
    merged_batches = []
    original = app._merge_rows

    def counting(*args):
        merged_batches.append(len(args[-1]))
        return original(*args)

    app._merge_rows = counting
    pool = eventlet.GreenPool(40)
    statuses = list(pool.imap(lambda i: put_row(app, f"o{i:02d}", ts(2 + i / 100)).status_int,
                              range(40)))
    assert statuses == [201] * 40
    assert call(app, "/sda1/1/a/c", "HEAD").headers["X-Container-Object-Count"] == "40"
    assert sum(merged_batches) == 40 and len(merged_batches) < 40


def test_row_batcher_hands_over_and_shares_outcomes():
    committed = []

    def run_db(_device, merge, updates):
        eventlet.sleep(0.01)                  # the sqlite thread at work
        merge(updates)

    def merge(updates):
        if any(update.record.name == "bad" for update in updates):
            raise DatabaseNotFound("gone")
        committed.append([update.record.name for update in updates])

    batcher = RowBatcher(run_db, batch_rows_max=3)

    def submit(name):
        update = RowUpdate(ObjectRecord(name, ts(1), 0, "t", "e"), False, Timestamp(ts(1)))
        try:
            batcher.submit("sda1", "db", merge, update)
        except DatabaseNotFound:
            return "404"
        return "ok"

    pool = eventlet.GreenPool()
    first = pool.spawn(submit, "a")
    eventlet.sleep(0)                          # "a" is being committed alone
    rest = [pool.spawn(submit, name) for name in ["b", "c", "d", "e", "bad", "f"]]
    outcomes = [first.wait()] + [thread.wait() for thread in rest]
    # a alone; then at most 3 at a time, in arrival order; "bad" fails only its own batch.
    assert committed == [["a"], ["b", "c", "d"]]
    assert outcomes == ["ok", "ok", "ok", "ok", "404", "404", "404"]
    assert not batcher._queues and not batcher._flushing


# ---- DELETE ------------------------------------------------------------------------------------

def test_delete_container(app):
    assert call(app, "/sda1/1/a/c", "DELETE", {"X-Timestamp": ts(1)}).status_int == 404
    put_container(app)
    put_row(app, "o", ts(2))
    assert call(app, "/sda1/1/a/c", "DELETE", {"X-Timestamp": ts(3)}).status_int == 409
    call(app, "/sda1/1/a/c/o", "DELETE", {"X-Timestamp": ts(3),
                                          "X-Backend-Storage-Policy-Index": "1"})
    assert call(app, "/sda1/1/a/c", "DELETE", {"X-Timestamp": ts(0.5)}).status_int == 409
    assert call(app, "/sda1/1/a/c", "DELETE", {"X-Timestamp": ts(4)}).status_int == 204
    assert call(app, "/sda1/1/a/c", "DELETE", {"X-Timestamp": ts(5)}).status_int == 404
    response = call(app, "/sda1/1/a/c", "HEAD")
    assert response.status_int == 404
    assert response.headers["X-Backend-DELETE-Timestamp"] == ts(5)
    assert "X-Container-Object-Count" not in response.headers
    assert call(app, "/sda1/1/a/c").status_int == 404
    assert call(app, "/sda1/1/a/c", "POST", {"X-Timestamp": ts(6)}).status_int == 404


# ---- malformed requests and devices ------------------------------------------------------------

@pytest.mark.parametrize("method, path, status", [
    ("GET", "/sda1", 400), ("GET", "/sda1/1", 400), ("GET", "/sda1/1/a", 400),
    ("GET", "/sda1/1//c", 400), ("GET", "/sda1/x/a/c", 400), ("GET", "/../1/a/c", 400),
    ("POST", "/sda1/1/a/c/o", 400),
    ("GET", b"/sda1/1/a/\xff", 412), ("PUT", b"/sda1/1/a/c/\xc3", 412),
    ("GET", "/sda1/1/" + "a" * 257 + "/c", 400),
    ("GET", "/sda1/1/a/" + "é" * 129, 400),                  # 258 bytes
    ("PUT", "/sda1/1/a/c/" + "o" * 1025, 400),
    ("GET", "/sda1/1/a/c\x00x", 400), ("GET", "/sda1/1/a\x00/c", 400),
    ("PATCH", "/sda1/1/a/c", 405), ("REPLICATE", "/sda1/1/a/c", 400),
])
def test_malformed_requests_get_swifts_4xx(app, method, path, status):
    response = call(app, path, method, {"X-Timestamp": ts(1), "X-Size": "1",
                                        "X-Content-Type": "t", "X-Etag": "e"})
    assert response.status_int == status, response.body


def test_name_length_messages(app):
    response = call(app, "/sda1/1/a/" + "c" * 300)
    assert response.body == b"Container name length of 300 longer than 256"
    response = call(app, "/sda1/1/" + "a" * 257 + "/c")
    assert response.body == b"Account name length of 257 longer than 256"


def test_missing_or_unmounted_device_is_507(tmp_path):
    server = ContainerServer(make_conf(tmp_path))
    assert call(server, "/sdz9/1/a/c", "HEAD").status_int == 507
    assert put_container(server, "/sd%20a/1/a/c").status_int == 507
    mounted = ContainerServer(make_conf(tmp_path, mount_check="true"))
    # sda1 is a plain directory, not a mount point.
    assert put_container(mounted).status_int == 507
    assert call(mounted, "/sda1/1/a/c").status_int == 507


def test_corrupt_database_is_quarantined_and_answers_503(tmp_path, app):
    put_container(app)
    path = db_path(tmp_path, 1, "a", "c")
    with open(path, "r+b") as handle:
        handle.write(b"\x00garbage" * 512)
    # A fresh server (its threads hold no open connection to the file) finds the damage.
    restarted = ContainerServer(make_conf(tmp_path))
    assert call(restarted, "/sda1/1/a/c", "HEAD").status_int == 503
    assert not os.path.exists(path)
    assert os.listdir(tmp_path / "srv" / "sda1" / "quarantined" / "containers")
    assert call(restarted, "/sda1/1/a/c", "HEAD").status_int == 404
    restarted.pools.shutdown()


def test_split_path_as_swift():
    assert split_path("/d/p/a", 3) == ["d", "p", "a"]
    assert split_path("/d/p/a/c", 3, 4) == ["d", "p", "a", "c"]
    assert split_path("/d/p/a", 3, 4) == ["d", "p", "a", None]
    assert split_path("/d/p/a/c/o/x", 4, 5, True) == ["d", "p", "a", "c", "o/x"]
    assert split_path("/d/p/a/c/", 4, 5, True) == ["d", "p", "a", "c", ""]
    for bad in ("d/p/a", "/d/p", "/d//a", "/d/p/a/c/x"):
        with pytest.raises(ValueError, match="Invalid path"):
            split_path(bad, 3, 4)


# ---- account updates ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pending_files(tmp_path):
    return list(async_pending.iter_pending(str(tmp_path / "srv" / "sda1")))


def test_account_headers_must_pair_up(app):
    response = put_container(app, X_Account_Host="127.0.0.1:1,127.0.0.1:2",
                             X_Account_Device="sda1", X_Account_Partition="3")
    assert response.status_int == 400
    response = put_container(app, X_Account_Host="nonsense", X_Account_Device="sda1",
                             X_Account_Partition="3")
    assert response.status_int == 400


def test_unreachable_account_server_gets_an_async_pending(tmp_path, app):
    port = free_port()                       # nothing listens there
    response = put_container(app, X_Account_Host=f"127.0.0.1:{port}",
                             X_Account_Device="sdb1", X_Account_Partition="9",
                             X_Trans_Id="tx1")
    assert response.status_int == 201       # the container exists; the update will follow
    [path] = pending_files(tmp_path)
    name_hash = hash_path("a", "c", secrets=SECRETS).hex()
    assert os.path.basename(path).startswith(name_hash + "-")
    update = async_pending.load(path)
    assert (update.method, update.path) == ("PUT", "/a/c")
    assert update.targets == [async_pending.Target("127.0.0.1", port, "sdb1", 9)]
    assert update.headers["X-Put-Timestamp"] == ts(1)
    assert update.headers["X-Delete-Timestamp"] == Timestamp(0).internal
    assert (update.headers["X-Object-Count"], update.headers["X-Bytes-Used"]) == ("0", "0")
    assert update.headers["X-Backend-Storage-Policy-Index"] == "1"
    assert update.headers["X-Trans-Id"] == "tx1"
    # The DELETE's update is saved too (a newer file for the same container).
    time.sleep(0.01)
    assert call(app, "/sda1/1/a/c", "DELETE", {
        "X-Timestamp": ts(2), "X-Account-Host": f"127.0.0.1:{port}",
        "X-Account-Device": "sdb1", "X-Account-Partition": "9"}).status_int == 204
    updates = [async_pending.load(p) for p in pending_files(tmp_path)]
    assert {u.headers["X-Delete-Timestamp"] for u in updates} == {Timestamp(0).internal,
                                                                 ts(2)}


# ---- live servers ------------------------------------------------------------------------------

class _NullLog:
    def write(self, _text: str) -> None:
        pass


class LiveServer:
    """A WSGI app served by eventlet in its own OS thread (its own hub), on 127.0.0.1."""

    def __init__(self, app, port: int = 0):
        self.app = app
        self.port = port
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "server did not start"

    def _serve(self) -> None:
        listener = eventlet.listen(("127.0.0.1", self.port))
        self.port = listener.getsockname()[1]
        server = eventlet.spawn(eventlet.wsgi.server, listener, self.app, log=_NullLog(),
                                log_output=False)
        self._ready.set()
        while not self._stop.is_set():
            eventlet.sleep(0.02)
        server.kill()
        listener.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def request(self, method: str, path: str, headers: dict[str, str] | None = None
                ) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        path, mark, query = path.partition("?")
        connection.request(method, quote(path) + mark + query, headers=headers or {})
        response = connection.getresponse()
        response.body = response.read()
        connection.close()
        return response


def write_account_ring(swift_dir, port: int) -> None:
    builder = RingBuilder(4, 1, 1)
    builder.add_device(region=1, zone=1, ip="127.0.0.1", port=port, device="sda1", weight=1)
    builder.rebalance(seed=1)
    builder.ring_data().save(os.path.join(swift_dir, "account.ring"))


def wait_for(predicate, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_live_container_server_reports_to_a_live_account_server(tmp_path):
    conf = make_conf(tmp_path, account_update_interval="0.1")
    account = LiveServer(AccountServer(make_conf(tmp_path)))
    container = LiveServer(ContainerServer(conf))
    try:
        write_account_ring(tmp_path / "etc", account.port)
        account_partition = Ring(str(tmp_path / "etc" / "account.ring"),
                                 SECRETS).get_part("AUTH_t")
        assert account.request("PUT", f"/sda1/{account_partition}/AUTH_t",
                               {"X-Timestamp": ts(1)}).status == 201
        account_headers = {"X-Account-Host": f"127.0.0.1:{account.port}",
                           "X-Account-Device": "sda1",
                           "X-Account-Partition": str(account_partition)}
        # The container PUT reaches the account at once...
        assert container.request("PUT", "/sda1/5/AUTH_t/photos",
                                 {"X-Timestamp": ts(2), **account_headers}).status == 201
        listing = json.loads(account.request("GET", f"/sda1/{account_partition}/AUTH_t"
                                             "?format=json").body)
        assert [(c["name"], c["count"], c["bytes"]) for c in listing] == [("photos", 0, 0)]

        # ...and object rows reach it within account_update_interval, through the ring.
        for index, size in enumerate((100, 200, 300)):
            assert container.request("PUT", f"/sda1/5/AUTH_t/photos/img{index}.jpg", {
                "X-Timestamp": ts(3 + index), "X-Size": str(size),
                "X-Content-Type": "image/jpeg", "X-Etag": "e",
                "X-Backend-Storage-Policy-Index": "1"}).status == 201

        def account_stats():
            headers = account.request("HEAD", f"/sda1/{account_partition}/AUTH_t").headers
            stats = (headers["X-Account-Container-Count"], headers["X-Account-Object-Count"],
                     headers["X-Account-Bytes-Used"])
            return stats if stats == ("1", "3", "600") else None

        wait_for(account_stats)
        head = account.request("HEAD", f"/sda1/{account_partition}/AUTH_t")
        assert head.headers["X-Account-Storage-Policy-Silver-Object-Count"] == "3"
        assert not pending_files(tmp_path)

        # With the account server down, the next update is saved, not lost...
        account.stop()
        assert container.request("PUT", "/sda1/5/AUTH_t/music",
                                 {"X-Timestamp": ts(10), **account_headers}).status == 201
        [pending] = pending_files(tmp_path)
        assert async_pending.load(pending).path == "/AUTH_t/music"
        # ...and the updater delivers it once the account server is back.
        account = LiveServer(account.app, port=account.port)
        stats = ObjectUpdater(UpdaterSettings(devices=str(tmp_path / "srv"), mount_check=False,
                                              objects_per_second=0),
                              logging.getLogger("test")).sweep()
        assert stats.delivered == 1 and not pending_files(tmp_path)
        listing = json.loads(account.request("GET", f"/sda1/{account_partition}/AUTH_t"
                                             "?format=json").body)
        assert [c["name"] for c in listing] == ["music", "photos"]
    finally:
        account.stop()
        container.stop()
