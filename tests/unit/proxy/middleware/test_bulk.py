"""Bulk middleware against the in-memory Swift: bulk delete (report formats, limits, failures)
and archive extraction; plus Accept negotiation and what subrequests inherit."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from proxy import info
from proxy.middleware import bulk
from proxy.middleware.subrequest import make_env
from tests.unit.proxy.middleware.fake_swift import FakeSwift, call


@pytest.fixture
def fake() -> FakeSwift:
    fake = FakeSwift()
    fake.put_object("/v1/a/c/o1", b"1")
    fake.put_object("/v1/a/c/o 2", b"2")
    fake.put_object("/v1/a/c/\u2603", b"3")
    fake.put_container("a", "empty")
    return fake


def make_app(fake: FakeSwift, **conf: str) -> bulk.Bulk:
    return bulk.filter_factory(conf)(fake)


def bulk_delete(app: bulk.Bulk, body: str, accept: str = "application/json",
                method: str = "POST", **headers: str) -> tuple[int, dict[str, str], bytes]:
    return call(app, method, "/v1/a?bulk-delete", body=body.encode(),
                headers={"Accept": accept, "Content-Type": "text/plain", **headers})


def test_deletes_objects_then_containers(fake: FakeSwift) -> None:
    body = "/empty\n/c/o1\n/c/o%202\nc/%E2%98%83\n/c\n"
    status, headers, text = bulk_delete(make_app(fake), body)
    assert (status, headers["content-type"]) == (200, "application/json")
    assert json.loads(text) == {"Response Status": "200 OK", "Response Body": "",
                                "Number Deleted": 5, "Number Not Found": 0, "Errors": []}
    assert [c.path for c in fake.calls_for("DELETE")][-2:] == ["/v1/a/empty", "/v1/a/c"]
    assert fake.containers == {}


def test_not_found_is_counted_not_failed(fake: FakeSwift) -> None:
    _, _, text = bulk_delete(make_app(fake), "/c/o1\n/c/nope\n/nocontainer")
    report = json.loads(text)
    assert (report["Number Deleted"], report["Number Not Found"]) == (1, 2)
    assert report["Response Status"] == "200 OK"


def test_failures_are_listed_with_the_subrequest_status(fake: FakeSwift) -> None:
    _, _, text = bulk_delete(make_app(fake), "/c\n/c/o1")   # c still holds two more
    report = json.loads(text)
    assert report["Errors"] == [["/c", "409 Conflict"]]
    assert report["Response Status"] == "400 Bad Request"
    assert report["Number Deleted"] == 1


def test_server_errors_make_it_502(fake: FakeSwift) -> None:
    fake.fail[("DELETE", "/v1/a/c/o1")] = 503
    report = json.loads(bulk_delete(make_app(fake), "/c/o1\n/c/o%202")[2])
    assert report["Errors"] == [["/c/o1", "503 Service Unavailable"]]
    assert report["Response Status"] == "502 Bad Gateway"


def test_unauthorized_deletes_are_reported(fake: FakeSwift) -> None:
    fake.tokens = {"good"}
    report = json.loads(bulk_delete(make_app(fake), "/c/o1", **{"X-Auth-Token": "bad"})[2])
    assert report["Errors"] == [["/c/o1", "401 Unauthorized"]]


def test_plain_text_report(fake: FakeSwift) -> None:
    status, headers, text = bulk_delete(make_app(fake), "/c/o1\n/c/nope\n/c", accept="")
    assert headers["content-type"] == "text/plain"
    assert text.decode() == ("Number Deleted: 1\nNumber Not Found: 1\nResponse Body: \n"
                             "Response Status: 400 Bad Request\nErrors:\n/c, 409 Conflict\n")


def test_xml_report(fake: FakeSwift) -> None:
    _, headers, text = bulk_delete(make_app(fake), "/c/o1\n/c", accept="application/xml")
    assert headers["content-type"] == "application/xml"
    assert text.decode() == (
        "<delete>\n<number_deleted>1</number_deleted>\n"
        "<number_not_found>0</number_not_found>\n<response_body></response_body>\n"
        "<response_status>400 Bad Request</response_status>\n<errors>\n"
        "<object><name>/c</name><status>409 Conflict</status></object>\n</errors>\n</delete>\n")


def test_bad_accept_is_reported_as_406(fake: FakeSwift) -> None:
    _, _, text = bulk_delete(make_app(fake), "/c/o1", accept="image/png")
    assert "Response Status: 406 Not Acceptable" in text.decode()
    assert fake.get_object("/v1/a/c/o1") is not None


def test_body_must_be_plain_text(fake: FakeSwift) -> None:
    _, _, text = bulk_delete(make_app(fake), "/c/o1", **{"Content-Type": "application/json"})
    assert json.loads(text)["Response Status"] == "406 Not Acceptable"


def test_too_many_names_is_413(fake: FakeSwift) -> None:
    report = json.loads(bulk_delete(make_app(fake, max_deletes_per_request="2"),
                                    "/c/a\n/c/b\n/c/c\n")[2])
    assert (report["Response Status"], report["Response Body"]) == (
        "413 Request Entity Too Large", "Maximum Bulk Deletes: 2 per request")
    assert not fake.calls_for("DELETE")


def test_stops_after_max_failed_deletes(fake: FakeSwift) -> None:
    for name in ("x1", "x2", "x3"):
        fake.fail[("DELETE", f"/v1/a/c/{name}")] = 500
    report = json.loads(bulk_delete(make_app(fake, max_failed_deletes="2",
                                             delete_concurrency="1"),
                                    "/c/x1\n/c/x2\n/c/x3\n/c/o1")[2])
    assert (report["Response Status"], report["Response Body"]) == (
        "400 Bad Request", "Max delete failures exceeded")
    assert len(report["Errors"]) == 2
    assert fake.get_object("/v1/a/c/o1") is not None


def test_empty_body_is_an_invalid_bulk_delete(fake: FakeSwift) -> None:
    report = json.loads(bulk_delete(make_app(fake), "\n\n")[2])
    assert (report["Response Status"], report["Response Body"]) == (
        "400 Bad Request", "Invalid bulk delete.")


def test_missing_length_is_411(fake: FakeSwift) -> None:
    _, _, text = call(make_app(fake), "POST", "/v1/a?bulk-delete",
                      headers={"Accept": "application/json"}, environ={"CONTENT_LENGTH": ""})
    assert json.loads(text)["Response Status"] == "411 Length Required"


def test_invalid_utf8_names_are_412(fake: FakeSwift) -> None:
    report = json.loads(bulk_delete(make_app(fake), "/c/%FF\n/c/o1")[2])
    assert report["Errors"] == [["/c/%FF", "412 Precondition Failed"]]
    assert report["Number Deleted"] == 1


def test_delete_method_also_works_and_get_passes_through(fake: FakeSwift) -> None:
    assert json.loads(bulk_delete(make_app(fake), "/c/o1", method="DELETE")[2])[
        "Number Deleted"] == 1
    assert call(make_app(fake), "GET", "/v1/a/c?bulk-delete&format=json")[0] == 200


def test_subrequests_carry_identity_and_source(fake: FakeSwift) -> None:
    fake.tokens = {"tok"}
    environ = {"REMOTE_USER": "a:user", "swift.authorize": print, "HTTP_X_CUSTOM": "no"}
    call(make_app(fake), "POST", "/v1/a?bulk-delete", body=b"/c/o1",
         headers={"X-Auth-Token": "tok", "Range": "bytes=0-1"}, environ=environ)
    (delete,) = fake.calls_for("DELETE")
    assert (delete.swift_source, delete.user_agent) == ("BD", "test-client BulkDelete")
    assert delete.headers["x-auth-token"] == "tok"
    assert "range" not in delete.headers and "x-custom" not in delete.headers
    sub_env = make_env({**environ, "REQUEST_METHOD": "POST"}, method="DELETE", path="/v1/a/c/o",
                       swift_source="BD")
    assert sub_env["REMOTE_USER"] == "a:user" and sub_env["swift.authorize"] is print


def test_heartbeat_whitespace_before_the_report(fake: FakeSwift) -> None:
    _, _, text = bulk_delete(make_app(fake, yield_frequency="0", delete_concurrency="1"),
                             "/c/o1\n/c/o%202\n/c/nope")
    assert text.startswith(b" ") and b"\r\n\r\n" in text
    assert json.loads(text)["Number Deleted"] == 2


@pytest.mark.parametrize(("accept", "expected"), [
    (None, "text/plain"), ("*/*", "text/plain"), ("application/json", "application/json"),
    ("text/xml;q=0.9, application/json", "application/json"), ("text/*", "text/plain"),
    ("application/*;q=0.5, text/xml", "text/xml"), ("image/png", None)])
def test_best_match(accept: str | None, expected: str | None) -> None:
    assert bulk.best_match(accept, bulk.ACCEPTABLE_FORMATS) == expected


def test_best_match_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        bulk.best_match("not a type", bulk.ACCEPTABLE_FORMATS)


# --- extract archive -------------------------------------------------------------------------


def make_tar(files: dict[str, bytes], compression: str = "",
             pax: dict[str, dict[str, str]] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(mode="w:" + compression, fileobj=buffer,
                      format=tarfile.PAX_FORMAT) as archive:
        for name, data in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            member.pax_headers = (pax or {}).get(name, {})
            archive.addfile(member, io.BytesIO(data))
        directory = tarfile.TarInfo("somedir")
        directory.type = tarfile.DIRTYPE
        archive.addfile(directory)                           # not a file: skipped
    return buffer.getvalue()


@pytest.mark.parametrize(("param", "compression"), [("tar", ""), ("tar.gz", "gz"),
                                                    ("tar.bz2", "bz2")])
def test_extract_creates_containers_and_objects(param: str, compression: str) -> None:
    fake = FakeSwift()
    archive = make_tar({"c1/a.txt": b"A", "./c2/d/b": b"BB", "top-level": b"ignored"},
                       compression)
    status, _, text = call(make_app(fake), "PUT", f"/v1/a?extract-archive={param}",
                           body=archive, headers={"Accept": "application/json"})
    assert status == 200
    assert json.loads(text) == {"Response Status": "201 Created", "Response Body": "",
                                "Number Files Created": 2, "Errors": []}
    assert fake.get_object("/v1/a/c1/a.txt").body == b"A"  # type: ignore[union-attr]
    assert fake.get_object("/v1/a/c2/d/b").body == b"BB"  # type: ignore[union-attr]
    assert {c.swift_source for c in fake.calls} == {"EA"}


def test_extract_below_a_container_path_with_metadata() -> None:
    fake = FakeSwift()
    fake.put_container("a", "c")
    archive = make_tar({"f.txt": b"x"}, pax={"f.txt": {
        "SCHILY.xattr.user.mime_type": "text/x-special",
        "SCHILY.xattr.user.meta.colour": "blue", "SCHILY.xattr.user.other": "dropped"}})
    status, _, text = call(make_app(fake), "PUT", "/v1/a/c/dir?extract-archive=tar",
                           body=archive, headers={"X-Object-Meta-Batch": "7"})
    assert "Number Files Created: 1" in text.decode()
    stored = fake.get_object("/v1/a/c/dir/f.txt")
    assert stored is not None
    assert stored.headers["content-type"] == "text/x-special"
    assert stored.headers["x-object-meta-colour"] == "blue"
    assert stored.headers["x-object-meta-batch"] == "7"


def test_extract_reports_bad_archives_and_formats(fake: FakeSwift) -> None:
    app = make_app(fake)
    status, _, text = call(app, "PUT", "/v1/a?extract-archive=zip", body=b"x")
    assert (status, text) == (400, b"Unsupported archive format")
    _, _, text = call(app, "PUT", "/v1/a/c?extract-archive=tar.gz", body=b"not gzip",
                      headers={"Accept": "application/json"})
    report = json.loads(text)
    assert report["Response Status"] == "400 Bad Request"
    assert report["Response Body"].startswith("Invalid Tar File: ")
    _, _, text = call(app, "PUT", "/v1/a?extract-archive=tar", body=make_tar({"top": b"x"}),
                      headers={"Accept": "application/json"})
    assert json.loads(text)["Response Body"] == "Invalid Tar File: No Valid Files"


def test_extract_failed_puts_are_listed(fake: FakeSwift) -> None:
    fake.fail[("PUT", "/v1/a/c/bad")] = 503
    _, _, text = call(make_app(fake), "PUT", "/v1/a?extract-archive=tar",
                      body=make_tar({"c/good": b"1", "c/bad": b"2"}),
                      headers={"Accept": "application/json"})
    report = json.loads(text)
    assert report["Errors"] == [["c/bad", "503 Service Unavailable"]]
    assert (report["Response Status"], report["Number Files Created"]) == ("502 Bad Gateway", 1)


def test_filter_factory_registers_info() -> None:
    info.unregister_swift_info("bulk_delete")
    info.unregister_swift_info("bulk_upload")
    bulk.filter_factory({"max_deletes_per_request": "50"})
    sections = info.get_swift_info()
    assert sections["bulk_delete"] == {"max_deletes_per_request": 50, "max_failed_deletes": 1000}
    assert sections["bulk_upload"] == {"max_containers_per_extraction": 10000,
                                       "max_failed_extractions": 1000}
