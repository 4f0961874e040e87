"""SLO middleware against the in-memory Swift: manifest PUT validation, GET/HEAD assembly with
ranges and conditions, nested manifests, manifest GET/DELETE, and Swift's error answers."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from common.http_rules import parse_range, ranges_for_length
from proxy import info
from proxy.middleware import dlo, register_info, slo
from proxy.middleware.segments import SegmentError
from tests.unit.proxy.middleware.fake_swift import FakeSwift, call

SEG1, SEG2, SEG3 = b"aaaa", b"bbbbbb", b"cc"
WHOLE = SEG1 + SEG2 + SEG3


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@pytest.fixture(params=[False, True], ids=["plain-backend", "swift-hints"])
def fake(request: pytest.FixtureRequest) -> FakeSwift:
    fake = FakeSwift(honor_backend_hints=request.param)
    fake.put_object("/v1/a/seg/1", SEG1)
    fake.put_object("/v1/a/seg/2", SEG2)
    fake.put_object("/v1/a/seg/3", SEG3, {"Content-Type": "text/plain"})
    fake.put_container("a", "c")
    return fake


def make_app(fake: FakeSwift, **conf: str) -> slo.StaticLargeObject:
    settings = {"rate_limit_segments_per_sec": "0", **conf}
    return slo.filter_factory(settings)(dlo.filter_factory({})(fake))


def manifest(*paths: str, with_checks: bool = True) -> bytes:
    body = {"/seg/1": SEG1, "/seg/2": SEG2, "/seg/3": SEG3}
    return json.dumps([
        {"path": path, "etag": md5(body[path]), "size_bytes": len(body[path])}
        if with_checks else {"path": path} for path in paths]).encode()


def put_manifest(app: object, name: str = "big", body: bytes | None = None,
                 **kwargs: object) -> tuple[int, dict[str, str], bytes]:
    body = manifest("/seg/1", "/seg/2", "/seg/3") if body is None else body
    return call(app, "PUT", f"/v1/a/c/{name}?multipart-manifest=put", body=body,
                **kwargs)  # type: ignore[arg-type]


SLO_ETAG = md5((md5(SEG1) + md5(SEG2) + md5(SEG3)).encode())


# --- PUT ------------------------------------------------------------------------------------


def test_put_stores_manifest_with_swift_headers(fake: FakeSwift) -> None:
    app = make_app(fake)
    status, headers, _ = put_manifest(app)
    assert status == 201
    assert headers["etag"] == f'"{SLO_ETAG}"'
    stored = fake.get_object("/v1/a/c/big")
    assert stored is not None
    assert stored.headers["x-static-large-object"] == "True"
    assert stored.headers["x-object-sysmeta-slo-etag"] == SLO_ETAG
    assert stored.headers["x-object-sysmeta-slo-size"] == str(len(WHOLE))
    assert stored.headers["content-type"] == f"application/octet-stream;swift_bytes={len(WHOLE)}"
    assert stored.etag == md5(stored.body)     # the JSON's own MD5 is the manifest's ETag
    segments = json.loads(stored.body)
    assert [s["name"] for s in segments] == ["/seg/1", "/seg/2", "/seg/3"]
    assert segments[2] == {"name": "/seg/3", "bytes": 2, "hash": md5(SEG3),
                           "content_type": "text/plain",
                           "last_modified": segments[2]["last_modified"]}
    assert segments[2]["last_modified"].endswith(".000000")


def test_put_without_etag_and_size_fills_them_in(fake: FakeSwift) -> None:
    status, headers, _ = put_manifest(make_app(fake), body=manifest("/seg/1", "/seg/2",
                                                                    with_checks=False))
    assert status == 201
    segments = json.loads(fake.get_object("/v1/a/c/big").body)  # type: ignore[union-attr]
    assert [(s["hash"], s["bytes"]) for s in segments] == [(md5(SEG1), 4), (md5(SEG2), 6)]


def test_listing_shows_large_object_size_and_slo_etag(fake: FakeSwift) -> None:
    app = make_app(fake)
    put_manifest(app)
    status, _, body = call(app, "GET", "/v1/a/c?format=json")
    assert status == 200
    (entry,) = json.loads(body)
    assert entry["bytes"] == len(WHOLE)
    assert entry["slo_etag"] == f'"{SLO_ETAG}"'
    assert entry["hash"] == fake.get_object("/v1/a/c/big").etag  # type: ignore[union-attr]


def test_put_with_matching_client_etag(fake: FakeSwift) -> None:
    assert put_manifest(make_app(fake), headers={"Etag": f'"{SLO_ETAG}"'})[0] == 201


def test_put_with_wrong_client_etag_is_422(fake: FakeSwift) -> None:
    status, _, _ = put_manifest(make_app(fake), headers={"Etag": "0" * 32})
    assert status == 422
    assert fake.get_object("/v1/a/c/big") is None


def test_put_heads_every_segment_through_slo_with_token(fake: FakeSwift) -> None:
    fake.tokens = {"secret"}
    app = make_app(fake)
    put_manifest(app, headers={"X-Auth-Token": "secret"})
    heads = fake.calls_for("HEAD")
    assert sorted(c.path for c in heads) == ["/v1/a/seg/1", "/v1/a/seg/2", "/v1/a/seg/3"]
    for head in heads:
        assert head.swift_source == "SLO"
        assert head.user_agent == "test-client SLO MultipartPUT"
        assert head.headers["x-auth-token"] == "secret"
        assert head.query == {}


@pytest.mark.parametrize(("body", "message"), [
    (b"not json", "Manifest must be valid JSON.\n"),
    (b'{"path": "/seg/1"}', "Manifest must be a list.\n"),
    (b"[1]", "Index 0: not a JSON object\n"),
    (b'[{"etag": "x"}]', "Index 0: expected keys to include one of 'data' or 'path'\n"),
    (b'[{"path": "/seg/1", "zz": 1, "aa": 2}]', 'Index 0: extraneous keys "aa", "zz"\n'),
    (b'[{"path": 5}]', 'Index 0: "path" must be a string\n'),
    (b'[{"path": "/seg/1", "etag": 5}]',
     'Index 0: "etag" must be a string or null (if provided)\n'),
    (b'[{"path": "/seg"}]', "Index 0: path does not refer to an object. Path must be of the "
     "form /container/object.\n"),
    (b'[{"path": "/seg/1", "size_bytes": "x"}]', "Index 0: invalid size_bytes\n"),
    (b'[{"path": "/seg/1", "size_bytes": 0}, {"path": "/seg/2"}]',
     "Index 0: too small; each segment must be at least 1 byte.\n"),
    (b'[{"path": "/c/big"}]', "Index 0: manifest must not include itself as a segment\n"),
    (b'[{"path": "/seg/1", "range": "x"}]', "Index 0: invalid range\n"),
    (b'[{"path": "/seg/1", "range": "0-1,2-3"}]',
     "Index 0: multiple ranges (only one allowed)\n"),
    (b'[{"path": "/seg/1", "size_bytes": 4, "range": "10-"}]',
     "Index 0: unsatisfiable range\n"),
    (b'[{"data": "!!"}]', "Index 0: data must be valid base64\n"
     "Inline data segments require at least one object-backed segment.\n"),
    (b'[{"data": "YQ=="}]',
     "Inline data segments require at least one object-backed segment.\n"),
])
def test_put_rejects_bad_manifests_with_swifts_messages(fake: FakeSwift, body: bytes,
                                                          message: str) -> None:
    status, headers, text = put_manifest(make_app(fake), body=body)
    assert (status, text.decode()) == (400, message)
    assert not fake.calls_for("HEAD")


def test_put_reports_every_bad_segment(fake: FakeSwift) -> None:
    body = json.dumps([
        {"path": "/seg/missing"},
        {"path": "/seg/1", "etag": "0" * 32},
        {"path": "/seg/2", "size_bytes": 99},
        {"path": "/seg/3", "range": "5-9"},
    ]).encode()
    status, headers, text = put_manifest(make_app(fake), body=body)
    assert status == 400
    assert headers["content-type"] == "text/plain"
    assert text.decode() == ("Errors:\n/seg/missing, 404 Not Found\n/seg/1, Etag Mismatch\n"
                             "/seg/2, Size Mismatch\n/seg/3, Unsatisfiable Range\n")
    assert fake.get_object("/v1/a/c/big") is None


def test_put_errors_as_json_when_accepted(fake: FakeSwift) -> None:
    body = json.dumps([{"path": "/seg/missing"}]).encode()
    status, headers, text = put_manifest(make_app(fake), body=body,
                                         headers={"Accept": "application/json"})
    assert status == 400
    assert json.loads(text) == {"Errors": [["/seg/missing", "404 Not Found"]]}


def test_put_too_many_segments_is_413(fake: FakeSwift) -> None:
    status, _, text = put_manifest(make_app(fake, max_manifest_segments="2"))
    assert (status, text) == (413, b"Number of object-backed segments must be <= 2")


def test_put_too_big_manifest_is_413(fake: FakeSwift) -> None:
    status, _, text = put_manifest(make_app(fake, max_manifest_size="10"))
    assert (status, text) == (413, b"Manifest File > 10 bytes")


def test_put_without_length_is_411(fake: FakeSwift) -> None:
    status, _, _ = put_manifest(make_app(fake), environ={"CONTENT_LENGTH": ""})
    assert status == 411


def test_put_chunked_is_accepted(fake: FakeSwift) -> None:
    status, _, _ = put_manifest(make_app(fake), headers={"Transfer-Encoding": "chunked"})
    assert status == 201


def test_put_with_copy_from_is_405(fake: FakeSwift) -> None:
    status, _, text = put_manifest(make_app(fake), headers={"X-Copy-From": "seg/1"})
    assert (status, text) == (405, b"Multipart Manifest PUTs cannot be COPY requests")


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_slo_header_is_reserved(fake: FakeSwift, method: str) -> None:
    status, _, text = call(make_app(fake), method, "/v1/a/c/obj",
                           headers={"X-Static-Large-Object": "True"})
    assert status == 400
    assert text.startswith(b"X-Static-Large-Object is a reserved header.")


def test_put_heartbeat_answers_202_then_report(fake: FakeSwift) -> None:
    status, headers, text = call(make_app(fake, yield_frequency="0"), "PUT",
                                 "/v1/a/c/big?multipart-manifest=put&heartbeat=on",
                                 body=manifest("/seg/1", "/seg/2", "/seg/3"),
                                 headers={"Accept": "application/json"})
    assert status == 202
    assert headers["content-type"] == "application/json"
    assert text.startswith(b" ")
    report = json.loads(text)
    assert report["Response Status"] == "201 Created"
    assert report["Etag"] == f'"{SLO_ETAG}"'
    assert report["Errors"] == []


def test_put_heartbeat_reports_failures(fake: FakeSwift) -> None:
    status, _, text = call(make_app(fake), "PUT",
                           "/v1/a/c/big?multipart-manifest=put&heartbeat=on",
                           body=json.dumps([{"path": "/seg/nope"}]).encode())
    assert status == 202
    assert text.decode().strip().splitlines() == [
        "Response Body: Bad Request",
        "The server could not comply with the request since it is either malformed or "
        "otherwise incorrect.",
        "Response Status: 400 Bad Request", "Errors:", "/seg/nope, 404 Not Found"]


# --- GET / HEAD -------------------------------------------------------------------------------


def test_get_streams_segments_with_large_object_headers(fake: FakeSwift) -> None:
    app = make_app(fake)
    put_manifest(app)
    status, headers, body = call(app, "GET", "/v1/a/c/big")
    assert (status, body) == (200, WHOLE)
    assert headers["etag"] == f'"{SLO_ETAG}"'
    assert headers["content-length"] == str(len(WHOLE))
    assert headers["x-static-large-object"] == "True"
    assert headers["content-type"] == "application/octet-stream"
    assert headers["x-manifest-etag"] == fake.get_object("/v1/a/c/big").etag  # type: ignore
    segment_gets = [c for c in fake.calls_for("GET") if c.path.startswith("/v1/a/seg/")]
    assert [c.query for c in segment_gets] == [{"multipart-manifest": "get"}] * 3
    assert {c.swift_source for c in segment_gets} == {"SLO"}


def test_head_uses_sysmeta_without_reading_segments(fake: FakeSwift) -> None:
    app = make_app(fake)
    put_manifest(app)
    fake.calls.clear()
    status, headers, body = call(app, "HEAD", "/v1/a/c/big")
    assert (status, body) == (200, b"")
    assert headers["content-length"] == str(len(WHOLE))
    assert headers["etag"] == f'"{SLO_ETAG}"'
    assert [c.method for c in fake.calls] == ["HEAD"]


@pytest.mark.parametrize("byte_range", ["bytes=0-0", "bytes=2-5", "bytes=3-11", "bytes=-3",
                                        "bytes=9-", "bytes=4-9", "bytes=0-100"])
def test_single_range_across_segments(fake: FakeSwift, byte_range: str) -> None:
    app = make_app(fake)
    put_manifest(app)
    status, headers, body = call(app, "GET", "/v1/a/c/big", headers={"Range": byte_range})
    ((start, stop),) = ranges_for_length(parse_range(byte_range) or [], len(WHOLE))
    assert status == 206
    assert body == WHOLE[start:stop]
    assert headers["content-range"] == f"bytes {start}-{stop - 1}/{len(WHOLE)}"
    assert headers["content-length"] == str(stop - start)


def test_range_fetches_only_needed_segments(fake: FakeSwift) -> None:
    app = make_app(fake)
    put_manifest(app)
    fake.calls.clear()
    call(app, "GET", "/v1/a/c/big", headers={"Range": "bytes=5-6"})
    segment_gets = [c for c in fake.calls_for("GET") if c.path.startswith("/v1/a/seg/")]
    assert [(c.path, c.headers.get("range")) for c in segment_gets] == [
        ("/v1/a/seg/2", "bytes=1-2")]


def test_unsatisfiable_range_is_416(fake: FakeSwift) -> None:
    app = make_app(fake)
    put_manifest(app)
    status, headers, _ = call(app, "GET", "/v1/a/c/big", headers={"Range": "bytes=50-"})
    assert status == 416
    assert headers["content-range"] == f"bytes */{len(WHOLE)}"


def test_invalid_range_is_ignored(fake: FakeSwift) -> None:
    app = make_app(fake)
    put_manifest(app)
    status, _, body = call(app, "GET", "/v1/a/c/big", headers={"Range": "bytes=5-3"})
    assert (status, body) == (200, WHOLE)


def test_multiple_ranges_answer_multipart(fake: FakeSwift) -> None:
    app = make_app(fake)
    put_manifest(app)
    status, headers, body = call(app, "GET", "/v1/a/c/big",
                                 headers={"Range": "bytes=0-1,5-10"})
    assert status == 206
    content_type, _, boundary = headers["content-type"].partition(";boundary=")
    assert content_type == "multipart/byteranges"
    assert int(headers["content-length"]) == len(body)
    parts = body.split(f"--{boundary}".encode())
    assert parts[0] == b"" and parts[-1] == b"--"
    assert parts[1] == (b"\r\nContent-Type: application/octet-stream\r\n"
                        b"Content-Range: bytes 0-1/12\r\n\r\naa\r\n")
    assert parts[2].endswith(b"Content-Range: bytes 5-10/12\r\n\r\n" + WHOLE[5:11] + b"\r\n")


@pytest.mark.parametrize(("headers", "expected"), [
    ({"If-Match": f'"{SLO_ETAG}"'}, 200),
    ({"If-Match": "nope"}, 412),
    ({"If-Match": "*"}, 200),
    ({"If-None-Match": SLO_ETAG}, 304),
    ({"If-None-Match": "other"}, 200),
    ({"If-Modified-Since": "Tue, 01 Jan 2999 00:00:00 GMT"}, 304),
    ({"If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}, 412),
    ({"If-Match": SLO_ETAG, "Range": "bytes=0-1"}, 206),
])
def test_conditions_are_judged_on_the_large_object(fake: FakeSwift, headers: dict[str, str],
                                                    expected: int) -> None:
    app = make_app(fake)
    put_manifest(app)
    status, response_headers, body = call(app, "GET", "/v1/a/c/big", headers=headers)
    assert status == expected
    if expected in (304, 412):
        assert body == b""
        assert response_headers["etag"] == f'"{SLO_ETAG}"'


def test_condition_on_manifest_etag_does_not_match_large_object(fake: FakeSwift) -> None:
    app = make_app(fake)
    put_manifest(app)
    manifest_etag = fake.get_object("/v1/a/c/big").etag  # type: ignore[union-attr]
    assert call(app, "GET", "/v1/a/c/big", headers={"If-Match": manifest_etag})[0] == 412
    assert call(app, "HEAD", "/v1/a/c/big", headers={"If-Match": manifest_etag})[0] == 412


def test_backend_honouring_hints_saves_the_refetch() -> None:
    fake = FakeSwift(honor_backend_hints=True)
    fake.put_object("/v1/a/seg/1", SEG1)
    fake.put_container("a", "c")
    app = make_app(fake)
    put_manifest(app, body=manifest("/seg/1"))
    fake.calls.clear()
    call(app, "GET", "/v1/a/c/big", headers={"Range": "bytes=1-2"})
    assert [c.path for c in fake.calls] == ["/v1/a/c/big", "/v1/a/seg/1"]


def test_get_of_plain_object_passes_through(fake: FakeSwift) -> None:
    status, headers, body = call(make_app(fake), "GET", "/v1/a/seg/2",
                                 headers={"Range": "bytes=1-2"})
    assert (status, body) == (206, SEG2[1:3])


def test_manifest_get_returns_stored_json(fake: FakeSwift) -> None:
    app = make_app(fake)
    put_manifest(app)
    status, headers, body = call(app, "GET", "/v1/a/c/big?multipart-manifest=get")
    assert status == 200
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert body == fake.get_object("/v1/a/c/big").body  # type: ignore[union-attr]


def test_manifest_get_raw_is_the_put_form(fake: FakeSwift) -> None:
    app = make_app(fake)
    put_manifest(app, headers={"Content-Type": "video/mp4"})
    status, headers, body = call(app, "GET", "/v1/a/c/big?multipart-manifest=get&format=raw")
    assert status == 200
    assert headers["content-type"] == "video/mp4"
    assert headers["etag"] == md5(body)
    assert json.loads(body) == json.loads(manifest("/seg/1", "/seg/2", "/seg/3"))


def test_missing_first_segment_is_409(fake: FakeSwift) -> None:
    app = make_app(fake)
    put_manifest(app)
    del fake.containers[("a", "seg")]["1"]
    status, _, _ = call(app, "GET", "/v1/a/c/big")
    assert status == 409


def test_changed_first_segment_is_409(fake: FakeSwift) -> None:
    app = make_app(fake)
    put_manifest(app)
    fake.put_object("/v1/a/seg/1", b"AAAA")
    assert call(app, "GET", "/v1/a/c/big")[0] == 409


def test_missing_later_segment_cuts_the_body(fake: FakeSwift) -> None:
    app = make_app(fake)
    put_manifest(app)
    del fake.containers[("a", "seg")]["3"]
    with pytest.raises(SegmentError, match="got 404 while retrieving /v1/a/seg/3"):
        call(app, "GET", "/v1/a/c/big")


def test_empty_manifest_is_an_empty_object(fake: FakeSwift) -> None:
    app = make_app(fake)
    assert put_manifest(app, body=b"[]")[0] == 201
    status, headers, body = call(app, "GET", "/v1/a/c/big")
    assert (status, body, headers["etag"]) == (200, b"", f'"{md5(b"")}"')


# --- segment kinds -------------------------------------------------------------------------


def test_ranged_segments(fake: FakeSwift) -> None:
    app = make_app(fake)
    body = json.dumps([{"path": "/seg/2", "range": "1-2"}, {"path": "/seg/1", "range": "-1"},
                       {"path": "/seg/3", "range": "0-"}]).encode()
    status, headers, _ = put_manifest(app, body=body)
    assert status == 201
    expected_etag = md5(f"{md5(SEG2)}:1-2;{md5(SEG1)}:3-3;".encode() + md5(SEG3).encode())
    assert headers["etag"] == f'"{expected_etag}"'
    stored = json.loads(fake.get_object("/v1/a/c/big").body)  # type: ignore[union-attr]
    assert [s.get("range") for s in stored] == ["1-2", "3-3", None]   # whole object: no range
    status, headers, data = call(app, "GET", "/v1/a/c/big")
    assert data == SEG2[1:3] + SEG1[3:] + SEG3
    assert headers["content-length"] == "5"
    ranged = call(app, "GET", "/v1/a/c/big", headers={"Range": "bytes=1-3"})[2]
    assert ranged == (SEG2[1:3] + SEG1[3:] + SEG3)[1:4]


def test_inline_data_segments(fake: FakeSwift) -> None:
    app = make_app(fake)
    body = json.dumps([{"data": base64.b64encode(b"<<").decode()}, {"path": "/seg/1"},
                       {"data": base64.b64encode(b">>").decode().rstrip("=")}]).encode()
    status, headers, _ = put_manifest(app, body=body)
    assert status == 201
    assert headers["etag"] == f'"{md5((md5(b"<<") + md5(SEG1) + md5(b">>")).encode())}"'
    assert call(app, "GET", "/v1/a/c/big")[2] == b"<<" + SEG1 + b">>"
    assert call(app, "GET", "/v1/a/c/big", headers={"Range": "bytes=1-4"})[2] == b"<aaa"


def test_nested_manifests(fake: FakeSwift) -> None:
    app = make_app(fake)
    put_manifest(app, "inner", manifest("/seg/2", "/seg/3"))
    inner_etag = call(app, "HEAD", "/v1/a/c/inner")[1]["etag"].strip('"')
    outer = json.dumps([{"path": "/seg/1"}, {"path": "/c/inner", "etag": inner_etag,
                                             "size_bytes": 8}]).encode()
    assert put_manifest(app, "outer", outer)[0] == 201
    stored = json.loads(fake.get_object("/v1/a/c/outer").body)  # type: ignore[union-attr]
    assert stored[1]["sub_slo"] is True and stored[1]["bytes"] == 8
    assert call(app, "GET", "/v1/a/c/outer")[2] == WHOLE
    fake.calls.clear()
    status, _, body = call(app, "GET", "/v1/a/c/outer", headers={"Range": "bytes=0-1"})
    assert (status, body) == (206, b"aa")
    assert "/v1/a/c/inner" not in [c.path for c in fake.calls]   # not needed, not fetched
    assert call(app, "GET", "/v1/a/c/outer", headers={"Range": "bytes=7-10"})[2] == WHOLE[7:11]


@pytest.mark.parametrize(("levels", "expected"), [(10, 200), (11, 409)])
def test_nesting_depth_limit(fake: FakeSwift, levels: int, expected: int) -> None:
    app = make_app(fake)
    put_manifest(app, "level1", manifest("/seg/1"))
    for level in range(2, levels + 1):
        body = json.dumps([{"path": f"/c/level{level - 1}"}]).encode()
        assert put_manifest(app, f"level{level}", body)[0] == 201
    status, _, body = call(app, "GET", f"/v1/a/c/level{levels}")
    assert status == expected
    if expected == 200:
        assert body == SEG1


def test_zero_byte_last_segment_is_allowed(fake: FakeSwift) -> None:
    fake.put_object("/v1/a/seg/empty", b"")
    app = make_app(fake)
    body = json.dumps([{"path": "/seg/1"}, {"path": "/seg/empty"}]).encode()
    assert put_manifest(app, body=body)[0] == 201
    bad = json.dumps([{"path": "/seg/empty"}, {"path": "/seg/1"}]).encode()
    status, _, text = put_manifest(app, "bad", bad)
    assert (status, text) == (400, b"Errors:\n/seg/empty, Too small; each segment must be at "
                                   b"least 1 byte.\n")


# --- DELETE ?multipart-manifest=delete -------------------------------------------------------


def test_delete_removes_segments_then_manifest(fake: FakeSwift) -> None:
    app = make_app(fake)
    put_manifest(app, "inner", manifest("/seg/2", "/seg/3"))
    put_manifest(app, "outer", json.dumps([{"path": "/seg/1"}, {"path": "/c/inner"}]).encode())
    status, headers, body = call(app, "DELETE", "/v1/a/c/outer?multipart-manifest=delete",
                                 headers={"Accept": "application/json"})
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"Response Status": "200 OK", "Response Body": "",
                                "Number Deleted": 5, "Number Not Found": 0, "Errors": []}
    assert fake.containers[("a", "seg")] == {} and fake.containers[("a", "c")] == {}
    order = [c.path for c in fake.calls_for("DELETE")].index
    # each manifest goes after its own segments (Swift's queue order)
    assert order("/v1/a/c/outer") > order("/v1/a/seg/1")
    assert order("/v1/a/c/inner") > max(order("/v1/a/seg/2"), order("/v1/a/seg/3"))
    assert {c.swift_source for c in fake.calls_for("DELETE")} == {"SLO"}


def test_delete_of_plain_object_reports_not_an_slo(fake: FakeSwift) -> None:
    status, _, body = call(make_app(fake), "DELETE", "/v1/a/seg/1?multipart-manifest=delete")
    assert status == 200
    assert body.decode() == ("Number Deleted: 0\nNumber Not Found: 0\nResponse Body: \n"
                             "Response Status: 400 Bad Request\nErrors:\n"
                             "/seg/1, Not an SLO manifest\n")
    assert fake.get_object("/v1/a/seg/1") is not None


def test_delete_of_missing_manifest_counts_not_found(fake: FakeSwift) -> None:
    _, _, body = call(make_app(fake), "DELETE", "/v1/a/c/nope?multipart-manifest=delete",
                      headers={"Accept": "application/json"})
    report = json.loads(body)
    assert (report["Number Not Found"], report["Response Status"]) == (1, "200 OK")


def test_plain_delete_keeps_segments(fake: FakeSwift) -> None:
    app = make_app(fake)
    put_manifest(app)
    assert call(app, "DELETE", "/v1/a/c/big")[0] == 204
    assert len(fake.containers[("a", "seg")]) == 3


# --- helpers and registration ----------------------------------------------------------------


def test_filter_factory_registers_info() -> None:
    info.unregister_swift_info("slo")
    slo.filter_factory({"max_manifest_segments": "500"})
    assert info.get_swift_info()["slo"] == {
        "max_manifest_segments": 500, "max_manifest_size": 8 * 1024 * 1024,
        "yield_frequency": 10, "min_segment_size": 1, "allow_async_delete": False}


def test_register_info_without_proxy_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "proxy.info", None)
    assert register_info("slo", max_manifest_segments=1) is False


def test_iter_pieces_maps_byte_ranges_onto_segments() -> None:
    segments = slo.parse_stored_manifest(json.dumps([
        {"name": "/s/1", "bytes": 4, "hash": "h1"},
        {"name": "/s/2", "bytes": 10, "hash": "h2", "range": "2-7"},
        {"data": base64.b64encode(b"xyz").decode()}]).encode())
    pieces = list(slo.iter_pieces(segments, 3, 12, account_path="/v1/a",
                                  fetch_submanifest=lambda name: [], manifest_name="m"))
    assert [(p.path, p.first_byte, p.last_byte, p.data) for p in pieces] == [
        ("/v1/a/s/1", 3, 3, None), ("/v1/a/s/2", 2, 7, None), ("", 0, 2, b"xyz")]
