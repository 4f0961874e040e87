"""Object operations: PutObject, GetObject, HeadObject, DeleteObject, CopyObject, object ACL.

- Bodies stream through untouched; `Content-MD5` becomes the Swift ETag the proxy checks
  (422 -> BadDigest), user metadata `x-amz-meta-*` <-> `X-Object-Meta-*`.
- GET/HEAD: Range passes to Swift (206, 416 -> InvalidRange); conditional headers are judged
  here on the S3 ETag (a multipart object's `<md5>-N`, which Swift does not know) in RFC 7232
  order, as S3 does; `response-*` query parameters override response headers.
- DELETE removes a multipart object's parts too (`multipart-manifest=delete`), and is a 204
  whether or not the key existed, as S3's.
- CopyObject is a Swift PUT with X-Copy-From (the copy middleware), metadata directive COPY or
  REPLACE (X-Fresh-Metadata), copy-source conditionals judged on a HEAD of the source.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping

from common.http_rules import parse_etags, parse_http_date
from proxy.middleware.s3api.bucket import acl_document
from proxy.middleware.s3api.call import S3Call, content_md5_hex
from proxy.middleware.s3api.errors import S3Error, error_for_swift_status
from proxy.middleware.s3api.request import ACCOUNT_RE, client_content_type
from proxy.middleware.s3api.swift import (
    STORED_ENTITY_HEADERS,
    S3Response,
    http_date_to_iso,
    s3_etag,
    swift_metadata_to_s3,
    user_metadata_to_swift,
)
from proxy.middleware.s3api.xml import build_document
from proxy.middleware.subrequest import SubResponse

RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
CONDITIONAL_HEADERS = ("If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since")
MAX_METADATA_BYTES = 2048          # S3's limit on the user metadata of one object
XML_HEADERS = [("Content-Type", "application/xml")]


# ---- shared helpers -------------------------------------------------------------------------

def precondition_status(conditions: Mapping[str, str | None], etag: str,
                        last_modified_s: int | None) -> int | None:
    """412 or 304 per RFC 7232 section 6 (what S3 follows), or None to answer normally.

    `conditions` holds If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since.
    """
    if_match = conditions.get("If-Match")
    if if_match is not None:
        tags = parse_etags(if_match)
        if "*" not in tags and etag not in tags:
            return 412
    elif last_modified_s is not None:
        since = parse_http_date(conditions.get("If-Unmodified-Since"))
        if since is not None and last_modified_s > since:
            return 412
    if_none_match = conditions.get("If-None-Match")
    if if_none_match is not None:
        tags = parse_etags(if_none_match)
        if "*" in tags or etag in tags:
            return 304
    elif last_modified_s is not None:
        since = parse_http_date(conditions.get("If-Modified-Since"))
        if since is not None and last_modified_s <= since:
            return 304
    return None


def object_put_headers(call: S3Call) -> dict[str, str | None]:
    """Swift headers for a new object from the S3 request's entity and metadata headers."""
    headers: dict[str, str | None] = {}
    request_headers = call.headers
    for name in STORED_ENTITY_HEADERS:
        value = request_headers.get(name)
        if value is not None:
            headers[name] = value
    if client_content_type(call.env) is None:
        headers.pop("Content-Type", None)
    metadata = user_metadata_to_swift(request_headers)
    if sum(len(name) - len("X-Object-Meta-") + len(value)
           for name, value in metadata.items()) > MAX_METADATA_BYTES:
        raise S3Error("MetadataTooLarge", details={"MaxSizeAllowed": MAX_METADATA_BYTES})
    headers.update(metadata)
    return headers


def check_storage_class(call: S3Call) -> None:
    storage_class = call.headers.get("x-amz-storage-class")
    if storage_class not in (None, "STANDARD"):
        raise S3Error("InvalidStorageClass", "The storage class you specified is not valid",
                      status=400)
    if call.headers.get("x-amz-server-side-encryption-customer-algorithm"):
        raise S3Error("NotImplemented", "Server-side encryption with customer keys is not "
                      "supported.")


def body_length(call: S3Call) -> int:
    length = call.env.get("CONTENT_LENGTH")
    if not length:
        raise S3Error("MissingContentLength")
    if not length.isdigit():
        raise S3Error("InvalidArgument", "Content-Length is not a number",
                      details={"ArgumentName": "Content-Length", "ArgumentValue": length})
    return int(length)


def no_such_key_or_bucket(call: S3Call) -> S3Error:
    """After a 404 on an object: S3 says which of the two is missing."""
    container = call.swift.status("HEAD", call.bucket)
    if not container.is_success:
        return error_for_swift_status(container.status_int, bucket=call.bucket)
    return S3Error("NoSuchKey", details={"Key": call.key})


def raise_for_write(call: S3Call, response: SubResponse) -> None:
    """The S3 error of a failed object (or part) PUT; the body check's own error first."""
    from proxy.middleware.s3api.auth import body_error
    checked = body_error(call.env)
    if checked is not None:
        raise checked
    if response.status_int == 404:
        raise S3Error("NoSuchBucket", details={"BucketName": call.bucket})
    raise error_for_swift_status(response.status_int, bucket=call.bucket, key=call.key)


# ---- PutObject ------------------------------------------------------------------------------

def put_object(call: S3Call) -> S3Response:
    check_storage_class(call)
    length = body_length(call)
    if length > 5 * 1024 ** 3:
        raise S3Error("EntityTooLarge", details={"ProposedSize": length,
                                                 "MaxSizeAllowed": 5 * 1024 ** 3})
    headers = object_put_headers(call)
    md5_hex = content_md5_hex(call.headers.get("Content-MD5"))
    if md5_hex:
        headers["Etag"] = md5_hex
    if call.headers.get("If-None-Match") == "*":
        headers["If-None-Match"] = "*"
    headers["Content-Length"] = str(length)
    if "Content-Type" not in headers:
        headers["Content-Type"] = None      # let Swift guess from the name, as S3 clients expect
    response = call.swift.request("PUT", call.bucket, call.key, headers=headers,
                                  body=call.env["wsgi.input"])
    response.close()
    if not response.is_success:
        raise_for_write(call, response)
    answer = [("ETag", f'"{response.etag}"')]
    answer.extend((name, value) for name, value in call.headers.items()
                  if name.lower().startswith("x-amz-checksum-"))
    return S3Response(200, answer)


# ---- GetObject / HeadObject -----------------------------------------------------------------

def _response_headers(call: S3Call, response: SubResponse, etag: str) -> list[tuple[str, str]]:
    source = response.headers
    headers = [("ETag", f'"{etag}"'), ("Accept-Ranges", "bytes")]
    for name in ("Content-Length", "Content-Range", "Last-Modified", *STORED_ENTITY_HEADERS):
        value = source.get(name)
        if value is not None:
            headers.append((name, value))
    headers.extend(swift_metadata_to_s3(source.items()))
    if call.auth is not None:
        overridden = {RESPONSE_OVERRIDES[name].lower(): value
                      for name, value in call.params.items() if name in RESPONSE_OVERRIDES}
        headers = [(name, value) for name, value in headers
                   if name.lower() not in overridden]
        headers.extend((RESPONSE_OVERRIDES[name], value) for name, value in call.params.items()
                       if name in RESPONSE_OVERRIDES)
    return headers


def get_object(call: S3Call) -> S3Response:
    if "partNumber" in call.params:
        raise S3Error("NotImplemented", "GetObject by partNumber is not supported.")
    if any(name in call.params for name in RESPONSE_OVERRIDES) and call.auth is None:
        raise S3Error("InvalidRequest", "Request specific response headers cannot be used "
                      "for anonymous GET requests.")
    method = call.env["REQUEST_METHOD"]
    conditions = {name: call.headers.get(name) for name in CONDITIONAL_HEADERS}
    # Conditions are judged here on the S3 ETag; Swift would judge a multipart object on its
    # own (SLO) ETag.
    headers: dict[str, str | None] = dict.fromkeys(CONDITIONAL_HEADERS)
    byte_range = call.headers.get("Range")
    if byte_range:
        headers["Range"] = byte_range
    response = call.swift.request(method, call.bucket, call.key, headers=headers)
    status = response.status_int
    if status == 416:
        response.close()
        total = response.headers.get("Content-Range", "").rpartition("/")[2]
        raise S3Error("InvalidRange", details={"RangeRequested": byte_range or "",
                                               "ActualObjectSize": total})
    if not response.is_success:
        response.close()
        if status == 404:
            raise no_such_key_or_bucket(call)
        raise error_for_swift_status(status, bucket=call.bucket, key=call.key)
    etag = s3_etag(response.headers)
    failed = precondition_status(conditions, etag,
                                 parse_http_date(response.headers.get("Last-Modified")))
    if failed is not None:
        response.close()
        if failed == 412:
            raise S3Error("PreconditionFailed", details={"Condition": "If-Match"})
        headers_304 = [("ETag", f'"{etag}"')]
        if response.headers.get("Last-Modified"):
            headers_304.append(("Last-Modified", response.headers["Last-Modified"]))
        return S3Response(304, headers_304)
    answer_headers = _response_headers(call, response, etag)
    if method == "HEAD":
        response.close()
        return S3Response(status, answer_headers)
    return S3Response(status, answer_headers, response.app_iter)


# ---- DeleteObject ---------------------------------------------------------------------------

def delete_key(call: S3Call, key: str) -> S3Error | None:
    """Delete one key (a multipart object with its parts); None when done or already gone."""
    head = call.swift.status("HEAD", call.bucket, key)
    if head.status_int == 404:
        return None
    if not head.is_success:
        return error_for_swift_status(head.status_int, bucket=call.bucket, key=key)
    if head.header_true("X-Static-Large-Object"):
        response = call.swift.request("DELETE", call.bucket, key,
                                      query="multipart-manifest=delete",
                                      headers={"Accept": "application/json"})
        body = response.read()
        if not response.is_success:
            return error_for_swift_status(response.status_int, bucket=call.bucket, key=key)
        try:
            report = json.loads(body or b"{}")
        except ValueError:
            report = {}
        status_text = str(report.get("Response Status", "200"))
        if not status_text.startswith(("2", "404")):
            return error_for_swift_status(int(status_text[:3]) if status_text[:3].isdigit()
                                          else 500, bucket=call.bucket, key=key)
        return None
    response = call.swift.status("DELETE", call.bucket, key)
    if response.is_success or response.status_int == 404:
        return None
    return error_for_swift_status(response.status_int, bucket=call.bucket, key=key)


def delete_object(call: S3Call) -> S3Response:
    error = delete_key(call, call.key)
    if error is not None:
        raise error
    container = call.swift.status("HEAD", call.bucket)
    if container.status_int == 404:
        raise S3Error("NoSuchBucket", details={"BucketName": call.bucket})
    return S3Response(204)


# ---- CopyObject -----------------------------------------------------------------------------

def parse_copy_source(value: str) -> tuple[str | None, str, str]:
    """(account, bucket, key) of x-amz-copy-source (`[/]bucket/key[?versionId=...]`)."""
    path, _, query = value.partition("?")
    if query:
        version = urllib.parse.parse_qs(query).get("versionId", [""])[0]
        if version not in ("", "null"):
            raise S3Error("NotImplemented", "Object versions are not supported.")
    path = urllib.parse.unquote(path).lstrip("/")
    bucket, _, key = path.partition("/")
    account = None
    if ":" in bucket:
        account, _, bucket = bucket.partition(":")
        if not ACCOUNT_RE.match(account):
            raise S3Error("InvalidArgument", "Invalid copy source account",
                          details={"ArgumentName": "x-amz-copy-source"})
    if not bucket or not key:
        raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: "
                      "sourcebucket/sourcekey", details={"ArgumentName": "x-amz-copy-source",
                                                         "ArgumentValue": value})
    return account, bucket, key


def copy_source_conditions(call: S3Call) -> dict[str, str | None]:
    return {name: call.headers.get(f"x-amz-copy-source-{name.lower()}")
            for name in CONDITIONAL_HEADERS}


def head_copy_source(call: S3Call, account: str | None, bucket: str, key: str) -> SubResponse:
    """HEAD of the copy source, its conditionals checked (all failures are 412 for a copy)."""
    from proxy.middleware.s3api.swift import SwiftAccount
    swift = call.swift if account is None else SwiftAccount(
        call.swift.app, call.env, account, call.swift.context)
    head = swift.status("HEAD", bucket, key)
    if head.status_int == 404:
        raise S3Error("NoSuchKey", details={"Key": key})
    if not head.is_success:
        raise error_for_swift_status(head.status_int, bucket=bucket, key=key)
    conditions = copy_source_conditions(call)
    if any(value is not None for value in conditions.values()):
        failed = precondition_status(conditions, s3_etag(head.headers),
                                     parse_http_date(head.headers.get("Last-Modified")))
        if failed is not None:
            raise S3Error("PreconditionFailed", details={"Condition": "x-amz-copy-source-If"})
    return head


def copy_from_headers(account: str | None, bucket: str, key: str) -> dict[str, str | None]:
    headers: dict[str, str | None] = {
        "X-Copy-From": f"/{urllib.parse.quote(bucket)}/{urllib.parse.quote(key)}",
        "Content-Length": "0",
    }
    if account is not None:
        headers["X-Copy-From-Account"] = account
    return headers


def copy_object(call: S3Call) -> S3Response:
    check_storage_class(call)
    account, bucket, key = parse_copy_source(call.headers["x-amz-copy-source"])
    directive = (call.headers.get("x-amz-metadata-directive") or "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", "Unknown metadata directive.",
                      details={"ArgumentName": "x-amz-metadata-directive",
                               "ArgumentValue": directive})
    same_object = account in (None, call.swift.account) and bucket == call.bucket and \
        key == call.key
    if same_object and directive == "COPY":
        raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to "
                      "copy an object to itself without changing the object's metadata, "
                      "storage class, website redirect location or encryption attributes.")
    head = head_copy_source(call, account, bucket, key)
    headers = copy_from_headers(account, bucket, key)
    if directive == "REPLACE":
        headers.update(object_put_headers(call))
        headers["X-Fresh-Metadata"] = "true"
    if (head.content_length or 0) > 5 * 1024 ** 3:
        raise S3Error("InvalidRequest", "The specified copy source is larger than the maximum "
                      "allowable size for a copy source: 5368709120")
    response = call.swift.status("PUT", call.bucket, call.key, headers=headers)
    if not response.is_success:
        if response.status_int == 404:
            raise S3Error("NoSuchBucket", details={"BucketName": call.bucket})
        raise error_for_swift_status(response.status_int, bucket=call.bucket, key=call.key)
    body = build_document("CopyObjectResult", [
        ("LastModified", http_date_to_iso(response.headers.get("Last-Modified"))),
        ("ETag", f'"{response.etag}"')])
    return S3Response(200, XML_HEADERS, body)


# ---- object ACL -----------------------------------------------------------------------------

def get_object_acl(call: S3Call) -> S3Response:
    head = call.swift.status("HEAD", call.bucket, call.key)
    if head.status_int == 404:
        raise no_such_key_or_bucket(call)
    if not head.is_success:
        raise error_for_swift_status(head.status_int, bucket=call.bucket, key=call.key)
    return S3Response(200, XML_HEADERS, acl_document(call))


def put_object_acl(call: S3Call) -> S3Response:
    canned = call.headers.get("x-amz-acl")
    if canned not in (None, "private"):
        raise S3Error("NotImplemented", "Object ACLs follow their bucket's; only the canned "
                      "ACL 'private' is accepted on an object.")
    head = call.swift.status("HEAD", call.bucket, call.key)
    if not head.is_success:
        raise no_such_key_or_bucket(call) if head.status_int == 404 else \
            error_for_swift_status(head.status_int, bucket=call.bucket, key=call.key)
    return S3Response(200)
