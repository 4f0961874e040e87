"""DLO middleware against the in-memory Swift: listing-driven assembly, ETag and length rules,
Range, conditions, paging through long listings, and X-Object-Manifest validation."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from proxy import info
from proxy.middleware import dlo
from proxy.middleware import segments as subrequest
from proxy.middleware.segments import SegmentError, SegmentPiece, rate_limited
from tests.unit.proxy.middleware.fake_swift import FakeSwift, call

SEGMENTS = [b"one-", b"two-", b"three-", b"four"]
WHOLE = b"".join(SEGMENTS)


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


DLO_ETAG = f'"{md5("".join(md5(s) for s in SEGMENTS).encode())}"'


@pytest.fixture(params=[False, True], ids=["plain-backend", "swift-hints"])
def fake(request: pytest.FixtureRequest) -> FakeSwift:
    fake = FakeSwift(honor_backend_hints=request.param)
    for index, data in enumerate(SEGMENTS):
        fake.put_object(f"/v1/a/c_segments/big/{index:08d}", data)
    fake.put_object("/v1/a/c_segments/other/00000000", b"not me")
    fake.put_object("/v1/a/c/big", b"", {"X-Object-Manifest": "c_segments/big/"})
    return fake


def make_app(fake: Callable[..., Iterable[bytes]], **conf: str) -> dlo.DynamicLargeObject:
    return dlo.filter_factory({"rate_limit_segments_per_sec": "0", **conf})(fake)


def test_get_concatenates_listing_in_order(fake: FakeSwift) -> None:
    status, headers, body = call(make_app(fake), "GET", "/v1/a/c/big")
    assert (status, body) == (200, WHOLE)
    assert headers["etag"] == DLO_ETAG
    assert headers["content-length"] == str(len(WHOLE))
    assert headers["x-object-manifest"] == "c_segments/big/"


def test_head_has_the_same_headers_and_no_segment_reads(fake: FakeSwift) -> None:
    fake.calls.clear()
    status, headers, body = call(make_app(fake), "HEAD", "/v1/a/c/big")
    assert (status, body) == (200, b"")
    assert (headers["etag"], headers["content-length"]) == (DLO_ETAG, str(len(WHOLE)))
    assert [c.method for c in fake.calls] == ["HEAD", "GET"]     # manifest, listing


def test_subrequests_are_marked_and_read_plain_objects(fake: FakeSwift) -> None:
    fake.calls.clear()
    call(make_app(fake), "GET", "/v1/a/c/big")
    listing, *segments = fake.calls[1:]
    assert listing.path == "/v1/a/c_segments"
    assert listing.query == {"format": "json", "prefix": "big/"}
    assert all(c.query == {"multipart-manifest": "get"} for c in segments)
    assert {c.swift_source for c in fake.calls[1:]} == {"DLO"}
    assert {c.user_agent for c in fake.calls[1:]} == {"test-client DLO MultipartGET"}


def test_quoted_manifest_value_as_swiftclient_sends_it(fake: FakeSwift) -> None:
    fake.put_object("/v1/a/my segs/big file/0", b"xy")
    fake.put_object("/v1/a/c/spaced", b"", {"X-Object-Manifest": "my%20segs/big%20file/"})
    assert call(make_app(fake), "GET", "/v1/a/c/spaced")[2] == b"xy"


@pytest.mark.parametrize(("byte_range", "start", "stop"), [
    ("bytes=0-0", 0, 1), ("bytes=2-9", 2, 10), ("bytes=-6", 12, 18), ("bytes=10-", 10, 18),
    ("bytes=5-500", 5, 18)])
def test_single_range(fake: FakeSwift, byte_range: str, start: int, stop: int) -> None:
    status, headers, body = call(make_app(fake), "GET", "/v1/a/c/big",
                                 headers={"Range": byte_range})
    assert (status, body) == (206, WHOLE[start:stop])
    assert headers["content-range"] == f"bytes {start}-{stop - 1}/{len(WHOLE)}"
    assert headers["content-length"] == str(stop - start)


def test_range_requests_only_needed_segment_bytes(fake: FakeSwift) -> None:
    fake.calls.clear()
    call(make_app(fake), "GET", "/v1/a/c/big", headers={"Range": "bytes=5-9"})
    assert [(c.path, c.headers.get("range")) for c in fake.calls[2:]] == [
        ("/v1/a/c_segments/big/00000001", "bytes=1-"),
        ("/v1/a/c_segments/big/00000002", "bytes=0-1")]


def test_multiple_ranges_are_ignored(fake: FakeSwift) -> None:
    status, _, body = call(make_app(fake), "GET", "/v1/a/c/big",
                           headers={"Range": "bytes=0-1,4-5"})
    assert (status, body) == (200, WHOLE)


def test_unsatisfiable_range_is_416(fake: FakeSwift) -> None:
    status, headers, _ = call(make_app(fake), "GET", "/v1/a/c/big",
                              headers={"Range": "bytes=100-200"})
    assert status == 416
    assert headers["content-range"] == f"bytes */{len(WHOLE)}"


@pytest.mark.parametrize(("headers", "expected"), [
    ({"If-None-Match": DLO_ETAG}, 304), ({"If-Match": DLO_ETAG}, 200),
    ({"If-Match": '"nope"'}, 412), ({"If-None-Match": '"nope"'}, 200),
    ({"If-Match": DLO_ETAG, "Range": "bytes=0-2"}, 206)])
def test_conditions_use_the_dlo_etag(fake: FakeSwift, headers: dict[str, str],
                                     expected: int) -> None:
    status, _, body = call(make_app(fake), "GET", "/v1/a/c/big", headers=headers)
    assert status == expected
    if expected in (304, 412):
        assert body == b""


def test_backend_answers_without_manifest_headers_are_probed(fake: FakeSwift) -> None:
    """A backend that answers a Range on the tiny manifest with a bare 416 still works."""
    def bare_errors(env: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def filtered(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            if status.startswith(("416", "412", "304")):
                headers = [h for h in headers if h[0].lower() != "x-object-manifest"]
            return start_response(status, headers, *exc)
        return fake(env, filtered)

    status, _, body = call(make_app(bare_errors), "GET", "/v1/a/c/big",
                           headers={"Range": "bytes=1-2"})
    assert (status, body) == (206, WHOLE[1:3])


def test_paging_through_long_listings() -> None:
    fake = FakeSwift(listing_limit=3)
    pieces = [bytes([65 + i]) * 2 for i in range(7)]
    for index, data in enumerate(pieces):
        fake.put_object(f"/v1/a/segs/p/{index:02d}", data)
    fake.put_object("/v1/a/c/big", b"", {"X-Object-Manifest": "segs/p/"})
    app = make_app(fake, container_listing_limit="3")
    status, headers, body = call(app, "GET", "/v1/a/c/big")
    assert (status, body) == (200, b"".join(pieces))
    # the whole length and ETag are unknown from one page: chunked, the manifest's own ETag
    assert "content-length" not in headers
    assert headers["etag"] == md5(b"")
    listings = [c for c in fake.calls if c.path == "/v1/a/segs"]
    assert [c.query.get("marker") for c in listings] == [None, "p/02", "p/05"]
    # a range inside the first page is honoured; one beyond it is ignored
    status, _, body = call(app, "GET", "/v1/a/c/big", headers={"Range": "bytes=1-3"})
    assert (status, body) == (206, b"".join(pieces)[1:4])
    status, _, body = call(app, "GET", "/v1/a/c/big", headers={"Range": "bytes=8-9"})
    assert (status, body) == (200, b"".join(pieces))


def test_missing_container_answers_its_404(fake: FakeSwift) -> None:
    fake.put_object("/v1/a/c/orphan", b"", {"X-Object-Manifest": "gone/x"})
    assert call(make_app(fake), "GET", "/v1/a/c/orphan")[0] == 404
    assert call(make_app(fake), "HEAD", "/v1/a/c/orphan")[:3:2] == (404, b"")


def test_empty_listing_is_an_empty_object(fake: FakeSwift) -> None:
    fake.put_object("/v1/a/c/empty", b"", {"X-Object-Manifest": "c_segments/none/"})
    status, headers, body = call(make_app(fake), "GET", "/v1/a/c/empty")
    assert (status, body, headers["etag"]) == (200, b"", f'"{md5(b"")}"')
    assert call(make_app(fake), "GET", "/v1/a/c/empty",
                headers={"Range": "bytes=-5"})[0] == 200


def test_missing_first_segment_is_409(fake: FakeSwift) -> None:
    fake.fail[("GET", "/v1/a/c_segments/big/00000000")] = 404
    assert call(make_app(fake), "GET", "/v1/a/c/big")[0] == 409


def test_missing_later_segment_cuts_the_body(fake: FakeSwift) -> None:
    fake.fail[("GET", "/v1/a/c_segments/big/00000002")] = 503
    with pytest.raises(SegmentError, match="got 503"):
        call(make_app(fake), "GET", "/v1/a/c/big")


def test_manifest_get_returns_the_manifest_object(fake: FakeSwift) -> None:
    status, headers, body = call(make_app(fake), "GET", "/v1/a/c/big?multipart-manifest=get")
    assert (status, body, headers["etag"]) == (200, b"", md5(b""))


def test_plain_objects_pass_through(fake: FakeSwift) -> None:
    status, _, body = call(make_app(fake), "GET", "/v1/a/c_segments/big/00000002",
                           headers={"Range": "bytes=1-2"})
    assert (status, body) == (206, b"hr")


@pytest.mark.parametrize("value", ["c_segments", "c_segments/", "/c_segments/big",
                                   "c/p?x", "c/p&x", "c//p"])
def test_put_rejects_malformed_manifest_header(fake: FakeSwift, value: str) -> None:
    status, _, body = call(make_app(fake), "PUT", "/v1/a/c/new",
                           headers={"X-Object-Manifest": value})
    assert (status, body) == (400, b"X-Object-Manifest must be in the format container/prefix")


def test_put_with_valid_manifest_header_passes(fake: FakeSwift) -> None:
    status, _, _ = call(make_app(fake), "PUT", "/v1/a/c/new",
                        headers={"X-Object-Manifest": "c_segments/big/"})
    assert status == 201
    assert call(make_app(fake), "GET", "/v1/a/c/new")[2] == WHOLE


def test_rate_limit_sleeps_after_the_first_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    sleeps: list[float] = []

    def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(subrequest.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(subrequest.eventlet, "sleep", fake_sleep)
    pieces = [SegmentPiece(path=str(i)) for i in range(5)]
    assert list(rate_limited(pieces, after_segments=2, per_second=0)) == pieces
    assert sleeps == []
    # two free, then one every 1/4 s: the 4th and 5th wait
    assert list(rate_limited(pieces, after_segments=2, per_second=4)) == pieces
    assert sleeps == [0.25, 0.25]


def test_filter_factory_registers_info() -> None:
    info.unregister_swift_info("dlo")
    dlo.filter_factory({"max_get_time": "600"})
    assert info.get_swift_info()["dlo"] == {"max_get_time": 600}
