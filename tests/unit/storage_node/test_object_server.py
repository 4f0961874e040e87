"""storage_node.object_server: Swift's object-server protocol, on real files.

Most tests call the WSGI app directly (webob Request.blank); container updates go over real
HTTP to a small container-server stub; a few tests start the real server process
(`ringstack-server object CONF`) on 127.0.0.1 and talk to it with http.client.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import io
import os
import socket
import subprocess
import sys
import threading
import time
import wsgiref.simple_server
from email.utils import formatdate
from urllib.parse import quote

import pytest
from webob import Request

from common.config import Config
from common.http_rules import parse_range as parse_range_header
from common.timestamp import Timestamp
from ring.hashing import HashSecrets, hash_path
from storage_node import async_pending
from storage_node import diskfile as diskfile_module
from storage_node.object_server import ObjectServer, app_factory

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
PATH_SUFFIX = "test-suffix"
SECRETS = HashSecrets(b"", PATH_SUFFIX.encode())


def ts(offset: float = 0.0) -> Timestamp:
    """Distinct, increasing timestamps near now."""
    return Timestamp(time.time() + offset)


# ---- shared fixtures (test_updater imports these) ---------------------------------------------

def write_cluster_conf(swift_dir) -> None:
    swift_dir.mkdir(parents=True, exist_ok=True)
    (swift_dir / "ringstack.conf").write_text(
        f"[ringstack-hash]\npath_suffix = {PATH_SUFFIX}\n\n"
        "[storage-policy:0]\nname = gold\ndefault = yes\n\n"
        "[storage-policy:1]\nname = silver\n")


def server_conf(tmp_path, **overrides) -> Config:
    swift_dir = tmp_path / "etc"
    write_cluster_conf(swift_dir)
    devices = tmp_path / "srv"
    for device in ("sda1", "sdb1"):
        (devices / device).mkdir(parents=True, exist_ok=True)
    values = {"devices": str(devices), "mount_check": "false", "swift_dir": str(swift_dir),
              "disk_chunk_size": "4096", "container_update_timeout": "2",
              "conn_timeout": "0.5", "node_timeout": "2", "log_requests": "false"}
    values.update({k: str(v) for k, v in overrides.items()})
    return Config(values, "test", "object-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ContainerStub:
    """A tiny container server: records object rows sent to it and answers `status`."""

    def __init__(self, port: int | None = None, status: int = 201, delay_s: float = 0.0):
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.status = status
        self.delay_s = delay_s
        self.port = port or free_port()
        self._server: wsgiref.simple_server.WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def app(self, environ, start_response):
        headers = {key[5:].replace("_", "-").title(): value
                   for key, value in environ.items() if key.startswith("HTTP_")}
        self.requests.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], headers))
        if self.delay_s:
            time.sleep(self.delay_s)
        start_response(f"{self.status} Whatever", [("Content-Length", "0")])
        return [b""]

    def start(self) -> ContainerStub:
        class QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
            def log_message(self, *args):
                pass

        self._server = wsgiref.simple_server.make_server("127.0.0.1", self.port, self.app,
                                                         handler_class=QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def container():
    stub = ContainerStub().start()
    yield stub
    stub.stop()


@pytest.fixture
def app(tmp_path):
    return ObjectServer(server_conf(tmp_path))


def call(app, method: str, path: str = "/sda1/0/a/c/o", headers: dict | None = None,
         body: bytes | None = None, environ: dict | None = None):
    request = Request.blank(quote(path), environ=environ or {}, method=method,
                            headers=headers or {})
    if body is not None:
        request.body = body
    return request.get_response(app)


def put(app, body: bytes = b"hello", timestamp: Timestamp | None = None,
        path: str = "/sda1/0/a/c/o", **headers):
    all_headers = {"X-Timestamp": (timestamp or ts()).internal,
                   "Content-Type": "text/plain"}
    all_headers.update({k.replace("_", "-"): v for k, v in headers.items()})
    return call(app, "PUT", path, all_headers, body)


def hash_dir(tmp_path, policy_dir="objects", device="sda1", partition=0, name=("a", "c", "o")):
    name_hash = hash_path(*name, secrets=SECRETS).hex()
    return tmp_path / "srv" / device / policy_dir / str(partition) / name_hash[-3:] / name_hash


# ---- PUT, GET, HEAD ---------------------------------------------------------------------------

def test_put_get_head(app, tmp_path):
    t1 = ts()
    resp = put(app, b"hello world", t1, X_Object_Meta_Color="blue",
               X_Object_Sysmeta_Thing="sys", Content_Disposition="inline",
               X_Object_Transient_Sysmeta_Crypto="t", X_Not_Kept="x")
    etag = hashlib.md5(b"hello world").hexdigest()
    assert resp.status_int == 201
    assert resp.headers["ETag"] == f'"{etag}"'
    assert os.listdir(hash_dir(tmp_path)) == [t1.internal + ".data"]

    resp = call(app, "GET")
    assert resp.status_int == 200 and resp.body == b"hello world"
    assert resp.headers["ETag"] == f'"{etag}"'
    assert resp.headers["Content-Length"] == "11"
    assert resp.headers["Content-Type"] == "text/plain"
    assert resp.headers["X-Object-Meta-Color"] == "blue"
    assert resp.headers["X-Object-Sysmeta-Thing"] == "sys"
    assert resp.headers["X-Object-Transient-Sysmeta-Crypto"] == "t"
    assert resp.headers["Content-Disposition"] == "inline"
    assert "X-Not-Kept" not in resp.headers
    assert resp.headers["X-Timestamp"] == t1.normal
    assert resp.headers["X-Backend-Timestamp"] == t1.internal
    assert resp.headers["X-Backend-Data-Timestamp"] == t1.internal
    assert resp.headers["Last-Modified"] == t1.http_date

    head = call(app, "HEAD")
    assert head.status_int == 200 and head.body == b""
    assert head.headers["Content-Length"] == "11"
    assert head.headers["X-Object-Meta-Color"] == "blue"


def test_put_validation(app):
    resp = call(app, "PUT", headers={"Content-Type": "text/plain"}, body=b"x")
    assert resp.status_int == 400 and b"X-Timestamp" in resp.body
    resp = call(app, "PUT", headers={"Content-Type": "text/plain", "X-Timestamp": "soon"},
                body=b"x")
    assert resp.status_int == 400
    resp = call(app, "PUT", headers={"X-Timestamp": ts().internal}, body=b"x")
    assert resp.status_int == 400 and resp.body == b"No content type"
    resp = call(app, "PUT", headers={"X-Timestamp": ts().internal, "Content-Type": "a/b"})
    assert resp.status_int == 411
    resp = call(app, "PUT", headers={"X-Timestamp": ts().internal, "Content-Type": "a/b"},
                environ={"CONTENT_LENGTH": "abc"})
    assert resp.status_int == 400
    resp = put(app, b"x", X_Delete_At="soon")
    assert resp.status_int == 400 and b"Non-integer" in resp.body
    resp = put(app, b"x", X_Delete_At=str(int(time.time()) - 10))
    assert resp.status_int == 400 and b"in past" in resp.body
    assert call(app, "GET").status_int == 404


def test_put_etag_mismatch_is_422_and_stores_nothing(app, tmp_path):
    tmp_dir = tmp_path / "srv" / "sda1" / "tmp"
    resp = put(app, b"abc", ETag="0" * 32)          # small: checked before any disk write
    assert resp.status_int == 422
    assert call(app, "GET").status_int == 404
    assert not tmp_dir.exists() or os.listdir(tmp_dir) == []
    resp = put(app, BODY, ETag="0" * 32)            # streamed through a temp file
    assert resp.status_int == 422
    assert call(app, "GET").status_int == 404
    assert os.listdir(tmp_dir) == []
    good = hashlib.md5(b"abc").hexdigest()
    assert put(app, b"abc", ETag=f'"{good.upper()}"').status_int == 201


def test_put_chunked(app):
    body = os.urandom(20000)
    request = Request.blank("/sda1/0/a/c/o", method="PUT",
                            headers={"X-Timestamp": ts().internal, "Content-Type": "b/c",
                                     "Transfer-Encoding": "chunked"})
    request.environ["wsgi.input"] = io.BytesIO(body)
    request.environ.pop("CONTENT_LENGTH", None)
    resp = request.get_response(app)
    assert resp.status_int == 201
    assert call(app, "GET").body == body


def test_put_short_body_is_499(app):
    request = Request.blank("/sda1/0/a/c/o", method="PUT",
                            headers={"X-Timestamp": ts().internal, "Content-Type": "b/c"})
    request.environ["wsgi.input"] = io.BytesIO(b"12345")
    request.environ["CONTENT_LENGTH"] = "10"
    assert request.get_response(app).status_int == 499
    assert call(app, "GET").status_int == 404


def test_put_too_large(tmp_path):
    (tmp_path / "etc").mkdir()
    app = ObjectServer(server_conf(tmp_path))
    resp = call(app, "PUT", headers={"X-Timestamp": ts().internal, "Content-Type": "a/b"},
                environ={"CONTENT_LENGTH": str(6 * 1024**3)})
    assert resp.status_int == 413


def test_metadata_limits(app):
    too_many = {f"X-Object-Meta-K{i}": "v" for i in range(91)}
    assert put(app, b"x", **too_many).status_int == 400
    assert put(app, b"x", X_Object_Meta_Big="v" * 257).status_int == 400
    assert put(app, b"x", **{"X-Object-Meta-" + "n" * 129: "v"}).status_int == 400


def test_large_legal_metadata(app):
    """90 keys and ~4 KiB of user metadata plus large sysmeta: 201, and all of it comes back
    (Swift answers 503 here, its xattrs being full)."""
    user_meta = {f"X-Object-Meta-Key{i:02d}": "x" * 40 for i in range(90)}   # 4050 bytes
    sysmeta = {f"X-Object-Sysmeta-Blob{i}": "s" * 8000 for i in range(3)}
    resp = put(app, b"body", **user_meta, **sysmeta)
    assert resp.status_int == 201
    got = call(app, "GET")
    assert got.status_int == 200 and got.body == b"body"
    for key, value in {**user_meta, **sysmeta}.items():
        assert got.headers[key] == value


def test_non_ascii_object_name_and_meta(app, tmp_path):
    name = "/sda1/0/a/c/\u00fcber/\u2603"
    meta = "\u2603".encode().decode("latin-1")          # how WSGI carries UTF-8 headers
    assert put(app, b"x", path=name, X_Object_Meta_Snow=meta).status_int == 201
    resp = call(app, "GET", name)
    assert resp.status_int == 200 and resp.body == b"x"
    assert resp.headers["X-Object-Meta-Snow"] == meta
    assert hash_dir(tmp_path, name=("a", "c", "\u00fcber/\u2603")).is_dir()


# ---- timestamps -------------------------------------------------------------------------------

def test_older_put_is_409(app):
    t1, t2 = ts(), ts(1)
    assert put(app, b"new", t2).status_int == 201
    resp = put(app, b"old", t1)
    assert resp.status_int == 409 and resp.headers["X-Backend-Timestamp"] == t2.internal
    assert put(app, b"same", t2).status_int == 409
    assert call(app, "GET").body == b"new"


def test_older_put_after_newer_delete_is_409(app, tmp_path):
    t1, t2, t3 = ts(), ts(1), ts(2)
    assert put(app, b"v1", t1).status_int == 201
    resp = call(app, "DELETE", headers={"X-Timestamp": t3.internal})
    assert resp.status_int == 204 and resp.headers["X-Backend-Timestamp"] == t3.internal
    assert os.listdir(hash_dir(tmp_path)) == [t3.internal + ".ts"]
    resp = put(app, b"v2", t2)
    assert resp.status_int == 409 and resp.headers["X-Backend-Timestamp"] == t3.internal
    resp = call(app, "GET")
    assert resp.status_int == 404 and resp.headers["X-Backend-Timestamp"] == t3.internal
    head = call(app, "HEAD")
    assert head.status_int == 404 and head.headers["X-Backend-Timestamp"] == t3.internal


def test_delete_missing_is_404_but_tombstone_is_written(app, tmp_path):
    t1, t2 = ts(), ts(1)
    resp = call(app, "DELETE", headers={"X-Timestamp": t2.internal})
    assert resp.status_int == 404 and resp.headers["X-Backend-Timestamp"] == t2.internal
    assert os.listdir(hash_dir(tmp_path)) == [t2.internal + ".ts"]
    assert put(app, b"late", t1).status_int == 409     # the older write loses


def test_delete_older_than_data_is_409(app):
    t1, t2 = ts(), ts(1)
    put(app, b"x", t2)
    resp = call(app, "DELETE", headers={"X-Timestamp": t1.internal})
    assert resp.status_int == 409 and resp.headers["X-Backend-Timestamp"] == t2.internal
    assert call(app, "GET").status_int == 200
    assert call(app, "DELETE").status_int == 400        # X-Timestamp is required


def test_x_if_delete_at(app):
    t1 = ts()
    delete_at = int(t1.seconds) + 1000
    put(app, b"x", t1, X_Delete_At=str(delete_at))
    resp = call(app, "DELETE", headers={"X-Timestamp": ts(1).internal,
                                        "X-If-Delete-At": str(delete_at + 1)})
    assert resp.status_int == 412
    resp = call(app, "DELETE", headers={"X-Timestamp": ts(1).internal,
                                        "X-If-Delete-At": "bogus"})
    assert resp.status_int == 400
    resp = call(app, "DELETE", headers={"X-Timestamp": ts(2).internal,
                                        "X-If-Delete-At": str(delete_at)})
    assert resp.status_int == 204
    resp = call(app, "DELETE", path="/sda1/0/a/c/none",
                headers={"X-Timestamp": ts(3).internal, "X-If-Delete-At": str(delete_at)})
    assert resp.status_int == 404


def test_expired_object_is_404(app):
    t1 = ts(-100)
    assert put(app, b"x", t1, X_Delete_At=str(int(time.time()) + 2)).status_int == 201
    assert call(app, "GET").status_int == 200
    later = {"X-Timestamp": ts(10).internal}
    resp = call(app, "GET", headers=later)
    assert resp.status_int == 404 and resp.headers["X-Backend-Timestamp"] == t1.internal
    assert call(app, "HEAD", headers=later).status_int == 404
    opened = call(app, "GET", headers={**later, "X-Backend-Open-Expired": "true"})
    assert opened.status_int == 200
    assert call(app, "POST", headers=later).status_int == 404


# ---- POST -------------------------------------------------------------------------------------

def test_post_replaces_metadata_without_copying_data(app, tmp_path):
    t1, t2, t3 = ts(), ts(1), ts(2)
    put(app, b"data", t1, X_Object_Meta_A="1", X_Object_Sysmeta_S="keep",
        Content_Disposition="inline")
    resp = call(app, "POST", headers={"X-Timestamp": t2.internal, "X-Object-Meta-B": "2",
                                      "X-Object-Sysmeta-Ignored": "no"})
    assert resp.status_int == 202
    assert resp.headers["X-Backend-Content-Type"] == "text/plain"
    assert resp.headers["X-Object-Sysmeta-S"] == "keep"
    assert sorted(os.listdir(hash_dir(tmp_path))) == [t1.internal + ".data",
                                                     t2.internal + ".meta"]
    got = call(app, "GET")
    assert got.body == b"data" and got.headers["X-Object-Meta-B"] == "2"
    assert "X-Object-Meta-A" not in got.headers and "Content-Disposition" not in got.headers
    assert got.headers["X-Object-Sysmeta-S"] == "keep"
    assert "X-Object-Sysmeta-Ignored" not in got.headers
    assert got.headers["X-Timestamp"] == t2.normal
    assert got.headers["X-Backend-Data-Timestamp"] == t1.internal
    # An older (or equal) POST loses.
    resp = call(app, "POST", headers={"X-Timestamp": t2.internal})
    assert resp.status_int == 409 and resp.headers["X-Backend-Timestamp"] == t2.internal
    # POST changes the content type; a later POST without one keeps it.
    assert call(app, "POST", headers={"X-Timestamp": t3.internal,
                                      "Content-Type": "image/png"}).status_int == 202
    assert call(app, "GET").headers["Content-Type"] == "image/png"
    assert call(app, "POST", headers={"X-Timestamp": ts(3).internal}).status_int == 202
    assert call(app, "HEAD").headers["Content-Type"] == "image/png"
    assert len(os.listdir(hash_dir(tmp_path))) == 2        # older .meta files cleaned up


def test_post_errors(app):
    assert call(app, "POST", headers={"X-Timestamp": ts().internal}).status_int == 404
    t1 = ts()
    put(app, b"x", t1)
    call(app, "DELETE", headers={"X-Timestamp": ts(1).internal})
    resp = call(app, "POST", headers={"X-Timestamp": ts(2).internal})
    assert resp.status_int == 404 and "X-Backend-Timestamp" in resp.headers
    put(app, b"x", ts(3))
    assert call(app, "POST").status_int == 400
    past = {"X-Timestamp": ts(4).internal, "X-Delete-At": str(int(time.time()) - 5)}
    assert call(app, "POST", headers=past).status_int == 400
    too_big = {"X-Timestamp": ts(5).internal, "X-Object-Meta-X": "v" * 300}
    assert call(app, "POST", headers=too_big).status_int == 400


def test_post_sets_and_removes_delete_at(app):
    put(app, b"x", ts())
    # Far enough ahead to be in the future when the POST arrives, and before the GET's ts(5).
    soon = int(time.time()) + 3
    call(app, "POST", headers={"X-Timestamp": ts(0.1).internal, "X-Delete-At": str(soon)})
    assert call(app, "GET", headers={"X-Timestamp": ts(5).internal}).status_int == 404
    call(app, "POST", headers={"X-Timestamp": ts(0.2).internal,
                               "X-Backend-Open-Expired": "true"})
    assert call(app, "GET", headers={"X-Timestamp": ts(5).internal}).status_int == 200


# ---- conditional requests ---------------------------------------------------------------------

def test_conditional_get(app):
    t1 = ts(-3600)
    put(app, b"body", t1)
    etag = hashlib.md5(b"body").hexdigest()
    last_modified = int(t1.seconds) + 1
    past, future = formatdate(last_modified - 100, usegmt=True), \
        formatdate(last_modified + 100, usegmt=True)

    def status(**headers):
        return call(app, "GET", headers={k.replace("_", "-"): v
                                         for k, v in headers.items()}).status_int

    assert status(If_Match=f'"{etag}"') == 200
    assert status(If_Match='"nope"') == 412
    assert status(If_Match="*") == 200
    assert status(If_None_Match=f'"{etag}"') == 304
    assert status(If_None_Match=f'"x", "{etag}"') == 304
    assert status(If_None_Match="*") == 304
    assert status(If_None_Match='"x"') == 200
    assert status(If_Modified_Since=future) == 304
    assert status(If_Modified_Since=past) == 200
    assert status(If_Modified_Since="garbage") == 200
    assert status(If_Unmodified_Since=past) == 412
    assert status(If_Unmodified_Since=future) == 200
    resp = call(app, "GET", headers={"If-None-Match": etag})
    assert resp.status_int == 304 and resp.body == b"" and resp.headers["ETag"] == f'"{etag}"'
    assert call(app, "HEAD", headers={"If-Match": '"nope"'}).status_int == 412
    missing = call(app, "GET", "/sda1/0/a/c/missing", headers={"If-Match": "*"})
    assert missing.status_int == 412
    assert call(app, "GET", "/sda1/0/a/c/missing", headers={"If-Match": '"x"'}).status_int \
        == 404


def test_put_if_none_match(app):
    put(app, b"body", ts())
    assert put(app, b"again", ts(1), If_None_Match="*").status_int == 412
    etag = hashlib.md5(b"body").hexdigest()
    assert put(app, b"again", ts(2), If_None_Match=etag).status_int == 412
    assert put(app, b"again", ts(3), If_None_Match='"other"').status_int == 201
    assert put(app, b"new", ts(4), path="/sda1/0/a/c/new", If_None_Match="*").status_int == 201


# ---- ranges -----------------------------------------------------------------------------------

BODY = bytes(range(256)) * 40           # 10240 bytes: spans several 4 KiB disk chunks


def range_get(app, value: str):
    return call(app, "GET", headers={"Range": value})


def test_single_ranges(app):
    put(app, BODY)
    size = len(BODY)
    for value, (start, stop) in {"bytes=0-4": (0, 5), "bytes=-5": (size - 5, size),
                                 "bytes=10000-": (10000, size),
                                 "bytes=4000-8200": (4000, 8201),
                                 "bytes=10-999999": (10, size),
                                 "bytes=-999999": (0, size)}.items():
        resp = range_get(app, value)
        assert resp.status_int == 206, value
        assert resp.body == BODY[start:stop], value
        assert resp.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{size}"
        assert resp.headers["Content-Length"] == str(stop - start)


def test_unsatisfiable_and_invalid_ranges(app):
    put(app, BODY)
    resp = range_get(app, "bytes=20000-30000")
    assert resp.status_int == 416
    assert resp.headers["Content-Range"] == f"bytes */{len(BODY)}"
    assert range_get(app, "bytes=-0").status_int == 416
    for ignored in ("bytes=5-1", "bytes=a-b", "chars=0-1", "bytes=-", "bytes=1"):
        resp = range_get(app, ignored)
        assert resp.status_int == 200 and resp.body == BODY, ignored
    assert call(app, "HEAD", headers={"Range": "bytes=0-1"}).status_int == 200
    # Egregious: more than two overlapping ranges.
    assert range_get(app, "bytes=0-100,10-110,20-120,30-130").status_int == 416


def test_empty_object_range_is_416(app):
    put(app, b"")
    assert range_get(app, "bytes=0-").status_int == 416
    resp = call(app, "GET")
    assert resp.status_int == 200 and resp.body == b""


def test_multi_range(app):
    put(app, BODY, Content_Type="application/x-thing")
    resp = range_get(app, "bytes=0-9,5000-5009,-3")
    assert resp.status_int == 206
    content_type = resp.headers["Content-Type"]
    assert content_type.startswith("multipart/byteranges;boundary=")
    boundary = content_type.split("boundary=", 1)[1]
    assert int(resp.headers["Content-Length"]) == len(resp.body)
    parts = resp.body.split(f"--{boundary}".encode())
    assert parts[0] == b"" and parts[-1] == b"--"
    expected = [(0, 10), (5000, 5010), (len(BODY) - 3, len(BODY))]
    for part, (start, stop) in zip(parts[1:-1], expected, strict=True):
        head, _, data = part.partition(b"\r\n\r\n")
        assert b"Content-Type: application/x-thing" in head
        assert f"Content-Range: bytes {start}-{stop - 1}/{len(BODY)}".encode() in head
        assert data == BODY[start:stop] + b"\r\n"


def test_parse_range_header():
    assert parse_range_header("bytes=0-1, 5-,-3") == [(0, 1), (5, None), (None, 3)]
    assert parse_range_header("bytes=1-0") is None
    assert parse_range_header("bytes=") is None


def test_ignore_range_if_metadata_present(app):
    put(app, BODY, X_Static_Large_Object="True")
    resp = call(app, "GET", headers={"Range": "bytes=0-1",
                                     "X-Backend-Ignore-Range-If-Metadata-Present":
                                         "X-Static-Large-Object"})
    assert resp.status_int == 200 and resp.body == BODY


# ---- policies, paths, devices -----------------------------------------------------------------

def test_policy_index_selects_directory(app, tmp_path):
    headers = {"X-Backend-Storage-Policy-Index": "1"}
    assert put(app, b"one", **{"X-Backend-Storage-Policy-Index": "1"}).status_int == 201
    assert hash_dir(tmp_path, "objects-1").is_dir()
    assert call(app, "GET", headers=headers).body == b"one"
    assert call(app, "GET").status_int == 404               # policy 0 has nothing
    resp = call(app, "GET", headers={"X-Backend-Storage-Policy-Index": "7"})
    assert resp.status_int == 503
    resp = call(app, "GET", headers={"X-Backend-Storage-Policy-Index": "x"})
    assert resp.status_int == 503


def test_bad_paths_and_methods(app):
    assert call(app, "GET", "/sda1/0/a/c").status_int == 400
    assert call(app, "GET", "/sda1/x/a/c/o").status_int == 400
    assert call(app, "GET", "/sda1/0//c/o").status_int == 400
    assert call(app, "GET", "/../0/a/c/o").status_int == 400
    resp = call(app, "GET", environ={"PATH_INFO": "/sda1/0/a/c/\xff"})
    assert resp.status_int == 412
    assert call(app, "COPY").status_int == 405
    assert call(app, "GET", "/nodev/0/a/c/o").status_int == 507


def test_unmounted_device_is_507(tmp_path, monkeypatch):
    app = ObjectServer(server_conf(tmp_path, mount_check="true"))
    assert put(app, b"x").status_int == 507
    assert call(app, "GET").status_int == 507
    assert call(app, "DELETE", headers={"X-Timestamp": ts().internal}).status_int == 507
    monkeypatch.setattr(os.path, "ismount", lambda path: path.endswith("sda1"))
    assert put(app, b"x").status_int == 201
    assert put(app, b"x", path="/sdb1/0/a/c/o").status_int == 507


def test_enospc_is_507_and_server_stays_up(app, tmp_path, monkeypatch):
    real_write_all = diskfile_module._write_all

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(diskfile_module, "_write_all", full)
    assert put(app, b"will not fit").status_int == 507
    assert call(app, "DELETE", headers={"X-Timestamp": ts().internal}).status_int == 507
    assert os.listdir(tmp_path / "srv" / "sda1" / "tmp") == []   # no leftovers
    monkeypatch.setattr(diskfile_module, "_write_all", real_write_all)
    assert put(app, b"fits now", ts(1)).status_int == 201
    assert call(app, "GET").body == b"fits now"


def test_eio_on_read_is_507(app, monkeypatch):
    put(app, BODY)

    def broken_listdir(path):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "listdir", broken_listdir)
    assert call(app, "GET").status_int == 507
    assert call(app, "HEAD").status_int == 507


def test_unexpected_error_is_500_without_traceback(app, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.manager, "get_diskfile", boom)
    resp = call(app, "GET")
    assert resp.status_int == 500 and b"secret" not in resp.body
    assert b"Traceback" not in resp.body


# ---- quarantine -------------------------------------------------------------------------------

def corrupt_body(tmp_path, offset: int = 0) -> None:
    directory = hash_dir(tmp_path)
    data_file = [n for n in os.listdir(directory) if n.endswith(".data")][0]
    with open(directory / data_file, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


def test_corrupt_small_object_is_404_and_quarantined(app, tmp_path):
    put(app, b"tiny")
    corrupt_body(tmp_path)
    assert call(app, "GET").status_int == 404
    assert (tmp_path / "srv" / "sda1" / "quarantined" / "objects").is_dir()
    assert call(app, "HEAD").status_int == 404


def test_corrupt_large_object_stream_fails(app, tmp_path):
    put(app, BODY)
    corrupt_body(tmp_path, 5)
    request = Request.blank("/sda1/0/a/c/o")
    statuses = []
    app_iter = app(request.environ, lambda status, headers: statuses.append(status))
    assert statuses == ["200 OK"]
    received = b""
    with pytest.raises(diskfile_module.DiskFileQuarantined):
        for chunk in app_iter:
            received += chunk
    app_iter.close()
    assert len(received) < len(BODY)
    assert call(app, "GET").status_int == 404


# ---- container updates ------------------------------------------------------------------------

def update_headers(stub: ContainerStub, policy: str = "0") -> dict[str, str]:
    return {"X-Container-Host": stub.host, "X-Container-Device": "sdc1",
            "X-Container-Partition": "5", "X-Backend-Storage-Policy-Index": policy}


def test_container_updates_on_put_post_delete(app, container, tmp_path):
    t1, t2, t3 = ts(), ts(1), ts(2)
    assert put(app, b"abc", t1, **update_headers(container), X_Trans_Id="tx1").status_int == 201
    method, path, headers = container.requests[-1]
    assert (method, path) == ("PUT", "/sdc1/5/a/c/o")
    assert headers["X-Size"] == "3" and headers["X-Content-Type"] == "text/plain"
    assert headers["X-Etag"] == hashlib.md5(b"abc").hexdigest()
    assert headers["X-Timestamp"] == t1.internal
    assert headers["X-Backend-Storage-Policy-Index"] == "0"
    assert headers["X-Trans-Id"] == "tx1"

    resp = call(app, "POST", headers={"X-Timestamp": t2.internal, "Content-Type": "x/y",
                                      **update_headers(container)})
    assert resp.status_int == 202
    method, path, headers = container.requests[-1]
    assert method == "PUT" and headers["X-Content-Type"] == "x/y"
    assert headers["X-Meta-Timestamp"] == t2.internal and headers["X-Timestamp"] == t1.internal

    resp = call(app, "DELETE", headers={"X-Timestamp": t3.internal,
                                        **update_headers(container)})
    assert resp.status_int == 204
    method, path, headers = container.requests[-1]
    assert (method, path, headers["X-Timestamp"]) == ("DELETE", "/sdc1/5/a/c/o", t3.internal)
    assert async_pending.count(str(tmp_path / "srv" / "sda1")) == 0


def test_container_update_to_several_hosts_and_quoted_names(app):
    first, second = ContainerStub().start(), ContainerStub().start()
    try:
        headers = {"X-Container-Host": f"{first.host},{second.host}",
                   "X-Container-Device": "sdc1,sdd1", "X-Container-Partition": "9"}
        assert put(app, b"x", path="/sda1/0/a/c/o w\u00fc", **headers).status_int == 201
        assert first.requests[-1][1] == "/sdc1/9/a/c/o w\u00fc".encode().decode("latin-1")
        assert second.requests[-1][1].startswith("/sdd1/9/a/c/o w")
    finally:
        first.stop()
        second.stop()


def test_container_down_saves_async_pending(app, tmp_path):
    down = f"127.0.0.1:{free_port()}"
    t1 = ts()
    resp = put(app, b"abc", t1, X_Container_Host=down, X_Container_Device="sdc1",
               X_Container_Partition="5")
    assert resp.status_int == 201
    device_path = str(tmp_path / "srv" / "sda1")
    pending = list(async_pending.iter_pending(device_path))
    assert len(pending) == 1
    name_hash = hash_path("a", "c", "o", secrets=SECRETS).hex()
    assert os.path.basename(pending[0]) == f"{name_hash}-{t1.internal}"
    update = async_pending.load(pending[0])
    assert (update.method, update.path) == ("PUT", "/a/c/o")
    assert update.headers["X-Size"] == "3" and update.headers["X-Timestamp"] == t1.internal
    assert [(t.ip, t.port, t.device, t.partition) for t in update.targets] == [
        ("127.0.0.1", int(down.split(":")[1]), "sdc1", 5)]


def test_failed_and_slow_containers_are_saved_good_ones_not(tmp_path):
    app = ObjectServer(server_conf(tmp_path, container_update_timeout="0.3"))
    good = ContainerStub().start()
    failing = ContainerStub(status=503).start()
    slow = ContainerStub(delay_s=1.5).start()
    try:
        headers = {"X-Container-Host": f"{good.host},{failing.host},{slow.host}",
                   "X-Container-Device": "g,f,s", "X-Container-Partition": "1"}
        started = time.monotonic()
        assert put(app, b"x", **headers).status_int == 201
        assert time.monotonic() - started < 1.2        # did not wait for the slow one
        pending = list(async_pending.iter_pending(str(tmp_path / "srv" / "sda1")))
        assert len(pending) == 1
        assert sorted(t.device for t in async_pending.load(pending[0]).targets) == ["f", "s"]
        assert good.requests and failing.requests
    finally:
        for stub in (good, failing, slow):
            stub.stop()


def test_mismatched_container_headers_send_nothing(app, container, tmp_path):
    resp = put(app, b"x", X_Container_Host=container.host, X_Container_Device="a,b",
               X_Container_Partition="1")
    assert resp.status_int == 201 and container.requests == []
    assert async_pending.count(str(tmp_path / "srv" / "sda1")) == 0


def test_async_pending_save_failure_is_507(app, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "full")

    monkeypatch.setattr(async_pending, "save", full)
    resp = put(app, b"x", X_Container_Host=f"127.0.0.1:{free_port()}",
               X_Container_Device="sdc1", X_Container_Partition="5")
    assert resp.status_int == 507


# ---- the real server over HTTP ----------------------------------------------------------------

@contextlib.contextmanager
def running_server(tmp_path, **overrides):
    """`ringstack-server object CONF` in a child process on a free 127.0.0.1 port."""
    conf = server_conf(tmp_path, **overrides)
    port = free_port()
    conf_path = tmp_path / "object-server.conf"
    lines = ["[DEFAULT]", "bind_ip = 127.0.0.1", f"bind_port = {port}", "workers = 1",
             "log_level = WARNING", "", "[object-server]"]
    lines += [f"{key} = {value}" for key, value in conf.items()]
    conf_path.write_text("\n".join(lines) + "\n")
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    with open(tmp_path / "server.log", "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "common.server_main", "object",
                                    str(conf_path)], cwd=REPO_ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "server.log").read_text()) from None
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def http_request(port: int, method: str, path: str, headers: dict | None = None,
                 body: bytes | None = None, encode_chunked: bool = False):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, quote(path), body=body, headers=headers or {},
                       encode_chunked=encode_chunked)
    response = connection.getresponse()
    return connection, response


def test_real_server_put_get_ranges_and_chunked(tmp_path):
    with running_server(tmp_path) as port:
        body = os.urandom(300_000)
        headers = {"X-Timestamp": ts().internal, "Content-Type": "a/b",
                   "Transfer-Encoding": "chunked"}
        chunks = (body[i:i + 65536] for i in range(0, len(body), 65536))
        connection, resp = http_request(port, "PUT", "/sda1/3/a/c/o", headers, chunks,
                                encode_chunked=True)
        assert resp.status == 201
        assert resp.getheader("ETag") == f'"{hashlib.md5(body).hexdigest()}"'
        connection.close()
        connection, resp = http_request(port, "GET", "/sda1/3/a/c/o")
        assert resp.status == 200 and resp.read() == body
        connection.close()
        connection, resp = http_request(port, "GET", "/sda1/3/a/c/o", {"Range": "bytes=100-199"})
        assert resp.status == 206 and resp.read() == body[100:200]
        connection.close()
        # Large metadata (~12 KiB, a few dozen headers) over the wire.
        meta = {f"X-Object-Meta-M{i}": "m" * 200 for i in range(20)}
        meta.update({f"X-Object-Sysmeta-S{i}": "s" * 4000 for i in range(2)})
        connection, resp = http_request(port, "PUT", "/sda1/3/a/c/meta",
                                {"X-Timestamp": ts().internal, "Content-Type": "a/b",
                                 **meta}, b"m")
        assert resp.status == 201
        connection.close()
        connection, resp = http_request(port, "HEAD", "/sda1/3/a/c/meta")
        assert resp.status == 200
        assert all(resp.getheader(k) == v for k, v in meta.items())
        connection.close()


def test_real_server_corrupt_object_never_completes(tmp_path):
    with running_server(tmp_path) as port:
        body = os.urandom(200_000)
        connection, resp = http_request(port, "PUT", "/sda1/0/a/c/o",
                                {"X-Timestamp": ts().internal, "Content-Type": "a/b"}, body)
        assert resp.status == 201
        connection.close()
        corrupt_body(tmp_path, 150_000)
        connection, resp = http_request(port, "GET", "/sda1/0/a/c/o")
        assert resp.status == 200
        with pytest.raises(http.client.IncompleteRead) as caught:
            resp.read()
        assert len(caught.value.partial) < len(body)
        connection.close()
        connection, resp = http_request(port, "GET", "/sda1/0/a/c/o")
        assert resp.status == 404                       # quarantined; the proxy moves on
        connection.close()
        assert (tmp_path / "srv" / "sda1" / "quarantined" / "objects").is_dir()


def test_app_factory(tmp_path):
    assert isinstance(app_factory(server_conf(tmp_path)), ObjectServer)
    from common.config import ConfigError
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError):
        app_factory(Config({"swift_dir": str(empty)}, "test", "object-server"))
