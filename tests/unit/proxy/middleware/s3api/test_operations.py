"""The S3 operations against the real proxy stack and storage nodes, signed by botocore:
buckets, objects (metadata, Content-MD5, ranges, conditions, copy), listings v1/v2,
DeleteObjects, multipart uploads stored as SLOs, ACLs and roles, the same objects through the
Swift API, and S3 errors (never a 500) for bad input."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.parse

import pytest
from webob import Request

from tests.unit.proxy.middleware.s3api.conftest import (
    ACCESS,
    OTHER_ACCESS,
    OTHER_SECRET,
    READER_ACCESS,
    READER_SECRET,
    SECRET,
)
from tests.unit.proxy.middleware.s3api.harness import send, sign, swift
from tests.unit.proxy.middleware.s3api.xml_helpers import error_code, text, texts

MIB = 1024 * 1024
TOKEN = f"token-{ACCESS}"


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.fixture(scope="module")
def s3(stack):
    def request(method: str, path: str, *, query: str = "", body: bytes = b"",
                headers: dict[str, str] | None = None, access: str = ACCESS,
                secret: str = SECRET, kind: str = "v4"):
        return send(stack.app, sign(method, path, access, secret, query=query, body=body,
                                    headers=headers, kind=kind))
    return request


# ---- buckets --------------------------------------------------------------------------------

def test_bucket_life_cycle(s3) -> None:
    assert s3("PUT", "/life").status_int == 200
    again = s3("PUT", "/life")
    assert again.status_int == 409 and error_code(again.body) == "BucketAlreadyOwnedByYou"
    assert s3("HEAD", "/life").status_int == 200
    assert "life" in texts(s3("GET", "/").body, "Buckets", "Bucket", "Name")
    location = s3("GET", "/life", query="location")
    assert location.status_int == 200 and b"<LocationConstraint" in location.body
    assert s3("PUT", "/life/k", body=b"x").status_int == 200
    busy = s3("DELETE", "/life")
    assert busy.status_int == 409 and error_code(busy.body) == "BucketNotEmpty"
    assert s3("DELETE", "/life/k").status_int == 204
    assert s3("DELETE", "/life").status_int == 204
    missing = s3("HEAD", "/life")
    assert missing.status_int == 404 and missing.body == b""
    assert error_code(s3("DELETE", "/life").body) == "NoSuchBucket"
    assert error_code(s3("GET", "/life").body) == "NoSuchBucket"


@pytest.mark.parametrize("name", ["ab", "UpperCase", "under_score", "192.168.1.1", "a..b",
                                  "-start", "x" * 64])
def test_invalid_bucket_names(s3, name: str) -> None:
    got = s3("PUT", f"/{name}")
    assert got.status_int == 400 and error_code(got.body) == "InvalidBucketName"


def test_create_bucket_location_constraint(s3) -> None:
    good = b"<CreateBucketConfiguration><LocationConstraint>us-east-1</LocationConstraint>" \
           b"</CreateBucketConfiguration>"
    assert s3("PUT", "/located", body=good).status_int == 200
    bad = good.replace(b"us-east-1", b"mars-north-1")
    got = s3("PUT", "/located2", body=bad)
    assert got.status_int == 400 and error_code(got.body) == "InvalidLocationConstraint"
    got = s3("PUT", "/located3", body=b"<not xml")
    assert got.status_int == 400 and error_code(got.body) == "MalformedXML"


def test_xml_entities_refused(s3) -> None:
    evil = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;">]><CreateBucketConfiguration>'
            b'<LocationConstraint>&lol2;</LocationConstraint></CreateBucketConfiguration>')
    got = s3("PUT", "/entities", body=evil)
    assert got.status_int == 400 and error_code(got.body) == "MalformedXML"


# ---- objects --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def objects(s3) -> str:
    assert s3("PUT", "/objs").status_int == 200
    return "objs"


def test_put_get_head_with_metadata(s3, objects: str) -> None:
    body = b"hello, world"
    put = s3("PUT", "/objs/dir/hello.txt", body=body,
             headers={"x-amz-meta-Color": "blue", "Content-Type": "text/x-hello",
                      "Content-Disposition": "inline", "Content-MD5": md5_b64(body)})
    assert put.status_int == 200 and put.headers["ETag"] == f'"{md5_hex(body)}"'
    got = s3("GET", "/objs/dir/hello.txt")
    assert got.body == body and got.headers["Content-Type"] == "text/x-hello"
    assert got.headers["x-amz-meta-color"] == "blue"
    assert got.headers["Content-Disposition"] == "inline"
    head = s3("HEAD", "/objs/dir/hello.txt")
    assert head.status_int == 200 and head.body == b""
    assert head.headers["Content-Length"] == str(len(body))
    overridden = s3("GET", "/objs/dir/hello.txt", query="response-content-type=text%2Fplain")
    assert overridden.headers["Content-Type"] == "text/plain"


def test_content_md5_checked(s3, objects: str) -> None:
    bad = s3("PUT", "/objs/md5", body=b"abc", headers={"Content-MD5": md5_b64(b"abd")})
    assert bad.status_int == 400 and error_code(bad.body) == "BadDigest"
    assert s3("HEAD", "/objs/md5").status_int == 404
    invalid = s3("PUT", "/objs/md5", body=b"abc", headers={"Content-MD5": "not-base64!"})
    assert invalid.status_int == 400 and error_code(invalid.body) == "InvalidDigest"


def test_missing_key_and_bucket(s3, objects: str) -> None:
    got = s3("GET", "/objs/nope")
    assert got.status_int == 404 and error_code(got.body) == "NoSuchKey"
    assert text(got.body, "Resource") == "/objs/nope"
    got = s3("GET", "/nobucket/nope")
    assert got.status_int == 404 and error_code(got.body) == "NoSuchBucket"
    put = s3("PUT", "/nobucket/nope", body=b"x")
    assert put.status_int == 404 and error_code(put.body) == "NoSuchBucket"
    assert s3("DELETE", "/objs/never-there").status_int == 204


def test_ranges(s3, objects: str) -> None:
    data = bytes(range(100))
    s3("PUT", "/objs/ranged", body=data)
    part = s3("GET", "/objs/ranged", headers={"Range": "bytes=10-19"})
    assert part.status_int == 206 and part.body == data[10:20]
    assert part.headers["Content-Range"] == "bytes 10-19/100"
    suffix = s3("GET", "/objs/ranged", headers={"Range": "bytes=-5"})
    assert suffix.body == data[-5:]
    bad = s3("GET", "/objs/ranged", headers={"Range": "bytes=200-300"})
    assert bad.status_int == 416 and error_code(bad.body) == "InvalidRange"


def test_conditional_requests(s3, objects: str) -> None:
    data = b"conditional"
    s3("PUT", "/objs/cond", body=data)
    etag = f'"{md5_hex(data)}"'
    assert s3("GET", "/objs/cond", headers={"If-Match": etag}).status_int == 200
    failed = s3("GET", "/objs/cond", headers={"If-Match": '"other"'})
    assert failed.status_int == 412 and error_code(failed.body) == "PreconditionFailed"
    not_modified = s3("GET", "/objs/cond", headers={"If-None-Match": etag})
    assert not_modified.status_int == 304 and not_modified.body == b""
    assert s3("GET", "/objs/cond", headers={
        "If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}).status_int == 200
    assert s3("GET", "/objs/cond", headers={
        "If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}).status_int == 412
    # S3 (RFC 7232): If-Match true wins over a false If-Unmodified-Since
    assert s3("GET", "/objs/cond", headers={
        "If-Match": etag, "If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}
    ).status_int == 200
    exists = s3("PUT", "/objs/cond", body=b"x", headers={"If-None-Match": "*"})
    assert exists.status_int == 412


def test_copy_object(s3, objects: str) -> None:
    s3("PUT", "/objs/source", body=b"copy me", headers={"x-amz-meta-a": "1",
                                                        "Content-Type": "text/x-a"})
    copied = s3("PUT", "/objs/copy1", headers={"x-amz-copy-source": "/objs/source"})
    assert copied.status_int == 200, copied.body
    assert text(copied.body, "ETag") == f'"{md5_hex(b"copy me")}"'
    got = s3("GET", "/objs/copy1")
    assert got.body == b"copy me" and got.headers["x-amz-meta-a"] == "1"
    replaced = s3("PUT", "/objs/copy2", headers={
        "x-amz-copy-source": "objs/source", "x-amz-metadata-directive": "REPLACE",
        "x-amz-meta-b": "2", "Content-Type": "text/x-b"})
    assert replaced.status_int == 200
    got = s3("HEAD", "/objs/copy2")
    assert got.headers.get("x-amz-meta-b") == "2" and "x-amz-meta-a" not in got.headers
    assert got.headers["Content-Type"] == "text/x-b"
    itself = s3("PUT", "/objs/source", headers={"x-amz-copy-source": "/objs/source"})
    assert itself.status_int == 400 and error_code(itself.body) == "InvalidRequest"
    failed = s3("PUT", "/objs/copy3", headers={"x-amz-copy-source": "/objs/source",
                                               "x-amz-copy-source-if-match": '"nope"'})
    assert failed.status_int == 412 and error_code(failed.body) == "PreconditionFailed"
    missing = s3("PUT", "/objs/copy3", headers={"x-amz-copy-source": "/objs/missing"})
    assert missing.status_int == 404 and error_code(missing.body) == "NoSuchKey"
    bad = s3("PUT", "/objs/copy3", headers={"x-amz-copy-source": "/objs/source",
                                            "x-amz-metadata-directive": "MERGE"})
    assert bad.status_int == 400 and error_code(bad.body) == "InvalidArgument"


def test_same_object_through_both_apis(stack, s3, objects: str) -> None:
    s3("PUT", "/objs/both", body=b"via s3", headers={"x-amz-meta-k": "v"})
    got = swift(stack.app, "/v1/AUTH_projalice/objs/both", token=TOKEN)
    assert got.body == b"via s3" and got.headers["X-Object-Meta-K"] == "v"
    assert swift(stack.app, "/v1/AUTH_projalice/objs/from-swift", "PUT", token=TOKEN,
                 headers={"X-Object-Meta-Z": "y"}, body=b"via swift").status_int == 201
    got = s3("GET", "/objs/from-swift")
    assert got.body == b"via swift" and got.headers["x-amz-meta-z"] == "y"


# ---- listings -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def listed(s3) -> list[str]:
    assert s3("PUT", "/listing").status_int == 200
    keys = ["a", "b/1", "b/2", "c d+e", "c/x/1", "d", "é"]
    for key in keys:
        assert s3("PUT", f"/listing/{key}", body=key.encode()).status_int == 200
    return keys


def test_list_objects_v1(s3, listed: list[str]) -> None:
    body = s3("GET", "/listing").body
    assert texts(body, "Contents", "Key") == listed
    assert text(body, "IsTruncated") == "false"
    assert texts(body, "Contents", "Size")[0] == "1"
    page = s3("GET", "/listing", query="max-keys=2&delimiter=%2F").body
    assert texts(page, "Contents", "Key") == ["a"]
    assert texts(page, "CommonPrefixes", "Prefix") == ["b/"]
    assert text(page, "IsTruncated") == "true" and text(page, "NextMarker") == "b/"
    rest = s3("GET", "/listing", query="marker=b%2F&delimiter=%2F").body
    assert texts(rest, "Contents", "Key") == ["c d+e", "d", "é"]
    assert texts(rest, "CommonPrefixes", "Prefix") == ["c/"]
    prefixed = s3("GET", "/listing", query="prefix=b%2F").body
    assert texts(prefixed, "Contents", "Key") == ["b/1", "b/2"]


def test_list_objects_v2(s3, listed: list[str]) -> None:
    seen: list[str] = []
    token = None
    for _ in range(10):
        query = "list-type=2&max-keys=3" + (
            f"&continuation-token={urllib.parse.quote(token)}" if token else "")
        body = s3("GET", "/listing", query=query).body
        seen += texts(body, "Contents", "Key")
        assert int(text(body, "KeyCount") or 0) <= 3
        token = text(body, "NextContinuationToken")
        if text(body, "IsTruncated") == "false":
            assert token is None
            break
    assert seen == listed
    after = s3("GET", "/listing", query="list-type=2&start-after=c%2Fx%2F1").body
    assert texts(after, "Contents", "Key") == ["d", "é"]
    assert text(after, "StartAfter") == "c/x/1"
    owned = s3("GET", "/listing", query="list-type=2&fetch-owner=true&max-keys=1").body
    assert text(owned, "Contents", "Owner", "ID") == "projalice"
    assert text(s3("GET", "/listing", query="list-type=2").body, "Contents", "Owner") is None


def test_list_url_encoding_and_bad_arguments(s3, listed: list[str]) -> None:
    body = s3("GET", "/listing", query="encoding-type=url").body
    keys = texts(body, "Contents", "Key")
    assert "c%20d%2Be" in keys and "%C3%A9" in keys
    assert [urllib.parse.unquote_plus(key) for key in keys] == listed
    for query in ("max-keys=-1", "max-keys=ten", "encoding-type=base64",
                  "list-type=2&continuation-token=%21%21"):
        got = s3("GET", "/listing", query=query)
        assert got.status_int == 400 and error_code(got.body) == "InvalidArgument", query


# ---- DeleteObjects --------------------------------------------------------------------------

def delete_document(keys: list[str], quiet: bool = False) -> bytes:
    items = "".join(f"<Object><Key>{key}</Key></Object>" for key in keys)
    return (f"<Delete>{'<Quiet>true</Quiet>' if quiet else ''}{items}</Delete>").encode()


def test_delete_objects(s3) -> None:
    s3("PUT", "/multidel")
    for key in ("k1", "k2", "k3"):
        s3("PUT", f"/multidel/{key}", body=b"x")
    body = delete_document(["k1", "k2", "never"])
    got = s3("POST", "/multidel", query="delete", body=body,
             headers={"Content-MD5": md5_b64(body)})
    assert got.status_int == 200, got.body
    assert sorted(texts(got.body, "Deleted", "Key")) == ["k1", "k2", "never"]
    assert s3("HEAD", "/multidel/k1").status_int == 404
    quiet = delete_document(["k3"], quiet=True)
    got = s3("POST", "/multidel", query="delete", body=quiet,
             headers={"Content-MD5": md5_b64(quiet)})
    assert got.status_int == 200 and texts(got.body, "Deleted", "Key") == []
    assert s3("HEAD", "/multidel/k3").status_int == 404
    no_md5 = s3("POST", "/multidel", query="delete", body=body)
    assert no_md5.status_int == 400 and error_code(no_md5.body) == "InvalidRequest"
    wrong_md5 = s3("POST", "/multidel", query="delete", body=body,
                   headers={"Content-MD5": md5_b64(b"other")})
    assert wrong_md5.status_int == 400 and error_code(wrong_md5.body) == "BadDigest"
    for bad in (b"<Delete></Delete>", b"<Delete><Object></Object></Delete>", b"junk",
                delete_document([f"k{i}" for i in range(1001)])):
        got = s3("POST", "/multidel", query="delete", body=bad,
                 headers={"Content-MD5": md5_b64(bad)})
        assert got.status_int == 400 and error_code(got.body) == "MalformedXML"


# ---- multipart uploads ----------------------------------------------------------------------

def start_upload(s3, key: str, headers: dict[str, str] | None = None) -> str:
    got = s3("POST", f"/mpu/{key}", query="uploads", headers=headers)
    assert got.status_int == 200, got.body
    upload_id = text(got.body, "UploadId")
    assert upload_id
    return upload_id


def upload(s3, key: str, upload_id: str, number: int, data: bytes) -> str:
    got = s3("PUT", f"/mpu/{key}", query=f"partNumber={number}&uploadId={upload_id}",
             body=data)
    assert got.status_int == 200, got.body
    return got.headers["ETag"]


def complete_document(parts: list[tuple[int, str]]) -> bytes:
    return ("<CompleteMultipartUpload>" + "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>" for n, etag in parts)
        + "</CompleteMultipartUpload>").encode()


@pytest.fixture(scope="module")
def mpu_bucket(s3) -> str:
    assert s3("PUT", "/mpu").status_int == 200
    return "mpu"


def test_multipart_upload_whole_flow(stack, s3, mpu_bucket: str) -> None:
    part1, part2 = b"1" * (5 * MIB), b"the end"
    upload_id = start_upload(s3, "big.bin", {"x-amz-meta-kind": "large",
                                             "Content-Type": "application/x-big"})
    etag1 = upload(s3, "big.bin", upload_id, 1, part1)
    etag2 = upload(s3, "big.bin", upload_id, 2, part2)
    upload(s3, "big.bin", upload_id, 3, b"never used")
    parts = s3("GET", "/mpu/big.bin", query=f"uploadId={upload_id}")
    assert texts(parts.body, "Part", "PartNumber") == ["1", "2", "3"]
    uploads = s3("GET", "/mpu", query="uploads")
    assert (text(uploads.body, "Upload", "Key"), text(uploads.body, "Upload", "UploadId")) == \
        ("big.bin", upload_id)
    document = complete_document([(1, etag1), (2, etag2)])
    done = s3("POST", "/mpu/big.bin", query=f"uploadId={upload_id}", body=document)
    assert done.status_int == 200, done.body
    expected = hashlib.md5(hashlib.md5(part1).digest() + hashlib.md5(part2).digest()
                           ).hexdigest() + "-2"
    assert text(done.body, "ETag") == f'"{expected}"'
    got = s3("GET", "/mpu/big.bin")
    assert got.body == part1 + part2 and got.headers["ETag"] == f'"{expected}"'
    assert got.headers["x-amz-meta-kind"] == "large"
    assert got.headers["Content-Type"] == "application/x-big"
    assert s3("GET", "/mpu/big.bin", headers={"If-Match": f'"{expected}"'}).status_int == 200
    assert s3("GET", "/mpu/big.bin", headers={"If-None-Match": f'"{expected}"'}
              ).status_int == 304
    ranged = s3("GET", "/mpu/big.bin", headers={"Range": f"bytes={5 * MIB - 2}-{5 * MIB + 2}"})
    assert ranged.status_int == 206 and ranged.body == b"11the"
    listing = s3("GET", "/mpu", query="list-type=2").body
    assert texts(listing, "Contents", "ETag") == [f'"{expected}"']
    assert texts(listing, "Contents", "Size") == [str(len(part1 + part2))]
    through_swift = swift(stack.app, "/v1/AUTH_projalice/mpu/big.bin", token=TOKEN)
    assert through_swift.body == part1 + part2
    # the upload is gone (the unused part too); a retried Complete answers the same
    assert error_code(s3("GET", "/mpu/big.bin", query=f"uploadId={upload_id}").body) == \
        "NoSuchUpload"
    again = s3("POST", "/mpu/big.bin", query=f"uploadId={upload_id}", body=document)
    assert again.status_int == 200 and text(again.body, "ETag") == f'"{expected}"'
    segments = json.loads(swift(stack.app, "/v1/AUTH_projalice/mpu+segments?format=json",
                                token=TOKEN).body)
    assert len(segments) == 2
    # deleting the object deletes its parts
    assert s3("DELETE", "/mpu/big.bin").status_int == 204
    assert swift(stack.app, "/v1/AUTH_projalice/mpu+segments?format=json", token=TOKEN
                 ).body in (b"[]", b"")
    assert "mpu+segments" not in texts(s3("GET", "/").body, "Buckets", "Bucket", "Name")


def test_multipart_refusals(s3, mpu_bucket: str) -> None:
    upload_id = start_upload(s3, "bad.bin")
    small = upload(s3, "bad.bin", upload_id, 1, b"small")
    last = upload(s3, "bad.bin", upload_id, 2, b"last")
    cases = [
        (complete_document([(1, small), (2, last)]), "EntityTooSmall"),
        (complete_document([(2, last), (1, small)]), "InvalidPartOrder"),
        (complete_document([(1, '"' + "0" * 32 + '"')]), "InvalidPart"),
        (complete_document([(7, small)]), "InvalidPart"),
        (b"<CompleteMultipartUpload></CompleteMultipartUpload>", "MalformedXML"),
        (b"<oops", "MalformedXML"),
    ]
    for document, code in cases:
        got = s3("POST", "/mpu/bad.bin", query=f"uploadId={upload_id}", body=document)
        assert got.status_int == 400 and error_code(got.body) == code, (document, got.body)
    for number in ("0", "10001", "x"):
        got = s3("PUT", "/mpu/bad.bin", query=f"partNumber={number}&uploadId={upload_id}",
                 body=b"x")
        assert got.status_int == 400 and error_code(got.body) == "InvalidArgument"
    # a single small part is a valid upload
    done = s3("POST", "/mpu/bad.bin", query=f"uploadId={upload_id}",
              body=complete_document([(2, last)]))
    assert done.status_int == 200 and s3("GET", "/mpu/bad.bin").body == b"last"
    aborted = start_upload(s3, "aborted.bin")
    upload(s3, "aborted.bin", aborted, 1, b"x")
    assert s3("DELETE", "/mpu/aborted.bin", query=f"uploadId={aborted}").status_int == 204
    for method, query in (("DELETE", f"uploadId={aborted}"),
                          ("PUT", f"partNumber=1&uploadId={aborted}"),
                          ("GET", f"uploadId={aborted}"), ("GET", "uploadId=..%2F..%2Fetc")):
        got = s3(method, "/mpu/aborted.bin", query=query, body=b"x" if method == "PUT" else b"")
        assert got.status_int == 404 and error_code(got.body) == "NoSuchUpload"


def test_upload_part_copy_with_range(s3, mpu_bucket: str) -> None:
    source = bytes(range(256)) * 40
    s3("PUT", "/mpu/copysource", body=source)
    upload_id = start_upload(s3, "assembled")
    got = s3("PUT", "/mpu/assembled", query=f"partNumber=1&uploadId={upload_id}",
             headers={"x-amz-copy-source": "/mpu/copysource",
                      "x-amz-copy-source-range": "bytes=100-1099"})
    assert got.status_int == 200, got.body
    etag = text(got.body, "ETag")
    assert etag == f'"{md5_hex(source[100:1100])}"'
    bad = s3("PUT", "/mpu/assembled", query=f"partNumber=2&uploadId={upload_id}",
             headers={"x-amz-copy-source": "/mpu/copysource",
                      "x-amz-copy-source-range": f"bytes=0-{len(source)}"})
    assert bad.status_int == 416 and error_code(bad.body) == "InvalidRange"
    done = s3("POST", "/mpu/assembled", query=f"uploadId={upload_id}",
              body=complete_document([(1, etag or "")]))
    assert done.status_int == 200
    assert s3("GET", "/mpu/assembled").body == source[100:1100]


# ---- authorization --------------------------------------------------------------------------

def test_reader_role_cannot_write(s3, objects: str) -> None:
    s3("PUT", "/objs/readable", body=b"r")
    read = s3("GET", "/objs/readable", access=READER_ACCESS, secret=READER_SECRET)
    assert read.status_int == 200 and read.body == b"r"
    write = s3("PUT", "/objs/readable", body=b"w", access=READER_ACCESS, secret=READER_SECRET)
    assert write.status_int == 403 and error_code(write.body) == "AccessDenied"
    assert s3("GET", "/objs/readable").body == b"r"


def test_public_bucket_and_anonymous_access(stack, s3) -> None:
    assert s3("PUT", "/public", headers={"x-amz-acl": "public-read"}).status_int == 200
    s3("PUT", "/public/open", body=b"for all")
    s3("PUT", "/private")
    s3("PUT", "/private/closed", body=b"not for all")
    anonymous = Request.blank("/projalice:public/open").get_response(stack.app)
    assert anonymous.status_int == 200 and anonymous.body == b"for all"
    listing = Request.blank("/projalice:public").get_response(stack.app)
    assert texts(listing.body, "Contents", "Key") == ["open"]
    refused = Request.blank("/projalice:private/closed").get_response(stack.app)
    assert refused.status_int == 403 and error_code(refused.body) == "AccessDenied"
    assert b"not for all" not in refused.body
    no_account = Request.blank("/public/open").get_response(stack.app)
    assert no_account.status_int == 403
    bob = s3("GET", "/projalice:public/open", access=OTHER_ACCESS, secret=OTHER_SECRET)
    assert bob.body == b"for all"
    acl = s3("GET", "/public", query="acl")
    assert b"AllUsers" in acl.body and b"FULL_CONTROL" in acl.body


# ---- bad input: S3 errors, never a 500 ------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "query", "code"), [
    ("PATCH", "/objs/x", "", "MethodNotAllowed"),
    ("POST", "/objs", "", "MethodNotAllowed"),
    ("PUT", "/", "", "MethodNotAllowed"),
    ("GET", "/objs", "cors", "NotImplemented"),
    ("GET", "/objs/x", "versionId=123", "NotImplemented"),
    ("PUT", "/objs/x", "tagging", "NotImplemented"),
])
def test_unsupported_requests(s3, objects: str, method: str, path: str, query: str,
                              code: str) -> None:
    got = s3(method, path, query=query)
    assert error_code(got.body) == code and got.status_int in (405, 501)


def test_garbage_never_500(stack, s3, objects: str) -> None:
    requests = [
        Request.blank("/objs/x", headers={"Authorization": "AWS4-HMAC-SHA256 garbage"}),
        Request.blank("/objs/x", headers={"Authorization": "AWS nocolon"}),
        Request.blank("/objs/x", headers={"Authorization": "Bearer abc"}),
        Request.blank("/objs/x?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a/b"),
        Request.blank("/objs/x?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2F20200101"
                      "%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=bad&X-Amz-Expires=10&"
                      "X-Amz-SignedHeaders=host&X-Amz-Signature=00"),
        Request.blank("/objs/x?AWSAccessKeyId=a&Signature=b&Expires=soon"),
        Request.blank("/objs/x", headers={"Authorization": "AWS a:b", "Date": "yesterday"}),
        Request.blank("/a%00b/x"),
        Request.blank("/projalice:objs/" + "k" * 1100),
        Request.blank("/bad:acc:ount/x"),
    ]
    for req in requests:
        got = req.get_response(stack.app)
        assert 400 <= got.status_int < 500, (req.url, got.status, got.body)
        assert got.body == b"" or error_code(got.body), got.body
    chunk = s3("PUT", "/objs/x", headers={"x-amz-copy-source": "/"})
    assert chunk.status_int == 400
