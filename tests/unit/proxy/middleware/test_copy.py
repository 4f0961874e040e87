"""Copy middleware against the in-memory Swift: COPY and X-Copy-From, metadata rules, Swift's
412/400/413 answers, and copying large objects whole or as manifests (through SLO and DLO)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from proxy.middleware import copy, dlo, slo
from proxy.middleware.subrequest import IterReader
from tests.unit.proxy.middleware.fake_swift import FakeSwift, call


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@pytest.fixture
def fake() -> FakeSwift:
    fake = FakeSwift()
    fake.put_object("/v1/a/c/src", b"source body", {
        "Content-Type": "text/plain", "X-Object-Meta-Colour": "red",
        "X-Object-Meta-Size": "big", "X-Object-Sysmeta-Thing": "kept",
        "Content-Disposition": "inline", "X-Delete-At": "9999999999"})
    fake.put_container("a", "dst")
    fake.put_container("b", "c")
    return fake


def make_app(fake: Callable[..., Iterable[bytes]], **conf: str) -> Any:
    """copy -> slo -> dlo -> fake: Swift's order."""
    inner = dlo.filter_factory({"rate_limit_segments_per_sec": "0"})(fake)
    inner = slo.filter_factory({"rate_limit_segments_per_sec": "0"})(inner)
    return copy.filter_factory(conf)(inner)


def test_put_with_copy_from_copies_body_and_metadata(fake: FakeSwift) -> None:
    status, headers, _ = call(make_app(fake), "PUT", "/v1/a/dst/copy",
                              headers={"X-Copy-From": "c/src", "X-Object-Meta-Size": "small"})
    assert status == 201
    stored = fake.get_object("/v1/a/dst/copy")
    assert stored is not None and stored.body == b"source body"
    assert stored.headers["content-type"] == "text/plain"
    assert stored.headers["x-object-meta-colour"] == "red"
    assert stored.headers["x-object-meta-size"] == "small"        # the request wins
    assert stored.headers["x-object-sysmeta-thing"] == "kept"
    assert stored.headers["content-disposition"] == "inline"
    assert stored.headers["x-delete-at"] == "9999999999"
    assert headers["x-copied-from"] == "c/src"
    assert headers["x-copied-from-account"] == "a"
    assert headers["x-copied-from-last-modified"] == \
        fake.get_object("/v1/a/c/src").timestamp.http_date  # type: ignore[union-attr]
    assert headers["x-object-meta-colour"] == "red"


def test_source_is_read_by_a_marked_subrequest_and_verified(fake: FakeSwift) -> None:
    fake.tokens = {"tok"}
    call(make_app(fake), "PUT", "/v1/a/dst/copy",
         headers={"X-Copy-From": "/c/src", "X-Auth-Token": "tok"})
    source_get = next(c for c in fake.calls_for("GET") if c.path == "/v1/a/c/src")
    assert (source_get.swift_source, source_get.headers["x-newest"]) == ("SSC", "true")
    assert source_get.headers["x-auth-token"] == "tok"
    (put,) = fake.calls_for("PUT")
    assert put.headers["etag"] == md5(b"source body")     # the object server checks the bytes
    assert put.headers["content-length"] == str(len(b"source body"))
    assert "x-copy-from" not in put.headers


def test_fresh_metadata_drops_source_user_metadata(fake: FakeSwift) -> None:
    call(make_app(fake), "PUT", "/v1/a/dst/copy",
         headers={"X-Copy-From": "c/src", "X-Fresh-Metadata": "true",
                  "X-Object-Meta-New": "1"})
    stored = fake.get_object("/v1/a/dst/copy")
    assert stored is not None
    assert "x-object-meta-colour" not in stored.headers
    assert stored.headers["x-object-meta-new"] == "1"
    assert stored.headers["x-object-sysmeta-thing"] == "kept"


def test_copy_method_with_destination(fake: FakeSwift) -> None:
    status, headers, _ = call(make_app(fake), "COPY", "/v1/a/c/src",
                              headers={"Destination": "dst/new%20name"})
    assert status == 201
    assert fake.get_object("/v1/a/dst/new name").body == b"source body"  # type: ignore
    assert headers["x-copied-from"] == "c/src"


def test_copy_to_another_account(fake: FakeSwift) -> None:
    status, headers, _ = call(make_app(fake), "COPY", "/v1/a/c/src",
                              headers={"Destination": "/c/o", "Destination-Account": "b"})
    assert status == 201
    assert fake.get_object("/v1/b/c/o").body == b"source body"  # type: ignore[union-attr]
    assert headers["x-copied-from-account"] == "a"


def test_copy_from_another_account(fake: FakeSwift) -> None:
    fake.put_object("/v1/b/c/theirs", b"theirs")
    status, headers, _ = call(make_app(fake), "PUT", "/v1/a/dst/mine",
                              headers={"X-Copy-From": "c/theirs", "X-Copy-From-Account": "b"})
    assert status == 201
    assert fake.get_object("/v1/a/dst/mine").body == b"theirs"  # type: ignore[union-attr]
    assert headers["x-copied-from-account"] == "b"


@pytest.mark.parametrize(("method", "headers", "status", "message"), [
    ("COPY", {}, 412, "Destination header required"),
    ("COPY", {"Destination": "just-a-container"}, 412,
     "Destination header must be of the form <container name>/<object name>"),
    ("COPY", {"Destination": "c/"}, 412,
     "Destination header must be of the form <container name>/<object name>"),
    ("COPY", {"Destination": "c/o", "Destination-Account": "x%2Fy"}, 412,
     "Account name cannot contain slashes"),
    ("PUT", {"X-Copy-From": "nocontainer"}, 412,
     "X-Copy-From header must be of the form <container name>/<object name>"),
    ("PUT", {"X-Copy-From": "c/src", "X-Copy-From-Account": "%2F"}, 412,
     "Account name cannot contain slashes"),
])
def test_malformed_copy_requests(fake: FakeSwift, method: str, headers: dict[str, str],
                                 status: int, message: str) -> None:
    path = "/v1/a/c/src" if method == "COPY" else "/v1/a/dst/x"
    assert call(make_app(fake), method, path, headers=headers)[::2] == (status, message.encode())


def test_copy_with_a_body_is_400(fake: FakeSwift) -> None:
    status, _, text = call(make_app(fake), "PUT", "/v1/a/dst/x", body=b"data",
                           headers={"X-Copy-From": "c/src"})
    assert (status, text) == (400, b"Copy requests require a zero byte body")


def test_missing_source_answers_404(fake: FakeSwift) -> None:
    assert call(make_app(fake), "PUT", "/v1/a/dst/x", headers={"X-Copy-From": "c/nope"})[0] \
        == 404
    assert fake.get_object("/v1/a/dst/x") is None


def test_failed_source_condition_is_the_answer(fake: FakeSwift) -> None:
    status, _, _ = call(make_app(fake), "PUT", "/v1/a/dst/x",
                        headers={"X-Copy-From": "c/src", "If-Match": '"other"'})
    assert status == 412


def test_source_too_big_is_413(fake: FakeSwift) -> None:
    status, _, _ = call(make_app(fake, max_file_size="5"), "PUT", "/v1/a/dst/x",
                        headers={"X-Copy-From": "c/src"})
    assert status == 413


def test_ranged_copy_copies_the_range_without_etag(fake: FakeSwift) -> None:
    call(make_app(fake), "PUT", "/v1/a/dst/part",
         headers={"X-Copy-From": "c/src", "Range": "bytes=0-5"})
    assert fake.get_object("/v1/a/dst/part").body == b"source"  # type: ignore[union-attr]
    (put,) = fake.calls_for("PUT")
    assert "etag" not in put.headers and "range" not in put.headers


# --- large objects ---------------------------------------------------------------------------


@pytest.fixture
def with_slo(fake: FakeSwift) -> FakeSwift:
    fake.put_object("/v1/a/seg/1", b"1111")
    fake.put_object("/v1/a/seg/2", b"22")
    app = make_app(fake)
    status, _, _ = call(app, "PUT", "/v1/a/c/slo?multipart-manifest=put",
                        body=json.dumps([{"path": "/seg/1"}, {"path": "/seg/2"}]).encode(),
                        headers={"Content-Type": "video/mp4", "X-Object-Meta-Kind": "slo"})
    assert status == 201
    return fake


def test_copying_an_slo_copies_its_content(with_slo: FakeSwift) -> None:
    status, _, _ = call(make_app(with_slo), "PUT", "/v1/a/dst/flat",
                        headers={"X-Copy-From": "c/slo"})
    assert status == 201
    stored = with_slo.get_object("/v1/a/dst/flat")
    assert stored is not None and stored.body == b"111122"
    assert "x-static-large-object" not in stored.headers
    assert not [h for h in stored.headers if h.startswith("x-object-sysmeta-slo")]
    assert stored.headers["content-type"] == "video/mp4"
    assert stored.headers["x-object-meta-kind"] == "slo"


def test_copying_an_slo_manifest_makes_a_new_slo(with_slo: FakeSwift) -> None:
    app = make_app(with_slo)
    status, headers, _ = call(app, "COPY", "/v1/a/c/slo?multipart-manifest=get",
                              headers={"Destination": "dst/slo2"})
    assert status == 201
    original = call(app, "HEAD", "/v1/a/c/slo")[1]
    assert headers["etag"] == original["etag"]          # SLO answered the PUT
    stored = with_slo.get_object("/v1/a/dst/slo2")
    assert stored is not None and stored.headers["x-static-large-object"] == "True"
    assert stored.headers["content-type"] == "video/mp4;swift_bytes=6"
    assert call(app, "GET", "/v1/a/dst/slo2")[2] == b"111122"


def test_copying_a_dlo(fake: FakeSwift) -> None:
    fake.put_object("/v1/a/segs/p/1", b"ab")
    fake.put_object("/v1/a/segs/p/2", b"cd")
    fake.put_object("/v1/a/c/dlo", b"", {"X-Object-Manifest": "segs/p/"})
    app = make_app(fake)
    call(app, "PUT", "/v1/a/dst/flat", headers={"X-Copy-From": "c/dlo"})
    flat = fake.get_object("/v1/a/dst/flat")
    assert flat is not None and flat.body == b"abcd"
    assert "x-object-manifest" not in flat.headers
    call(app, "PUT", "/v1/a/dst/manifest?multipart-manifest=get",
         headers={"X-Copy-From": "c/dlo"})
    manifest = fake.get_object("/v1/a/dst/manifest")
    assert manifest is not None and manifest.body == b""
    assert manifest.headers["x-object-manifest"] == "segs/p/"
    assert call(app, "GET", "/v1/a/dst/manifest")[2] == b"abcd"


def test_options_advertises_copy() -> None:
    def options_app(env: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Allow", "GET, PUT"), ("Content-Length", "0")])
        return [b""]

    _, headers, _ = call(make_app(options_app), "OPTIONS", "/v1/a/c/o")
    assert headers["allow"] == "GET, PUT, COPY"


def test_iter_reader_reads_chunks_as_a_file() -> None:
    reader = IterReader(iter([b"ab", b"c\nde", b"", b"f\n", b"g"]))
    assert reader.read(1) == b"a"
    assert reader.readline() == b"bc\n"
    assert reader.read(3) == b"def"
    assert reader.readline() == b"\n"
    assert reader.read() == b"g"
    assert reader.read(5) == b""
