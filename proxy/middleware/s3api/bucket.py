"""Bucket operations: CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation, the bucket ACL
(canned ACLs mapped onto Swift's container ACLs) and GetBucketVersioning. A bucket is a Swift
container of the caller's account; its listings are `listing`, DeleteObjects `multi_delete`.

Canned ACLs: `private` (no container ACL), `public-read` (`.r:*,.rlistings`: anonymous reads
and listings), `public-read-write` (also `*:*` writes), `authenticated-read` (`*:*` reads).
"""

from __future__ import annotations

from proxy.middleware.s3api.call import S3Call
from proxy.middleware.s3api.errors import S3Error, error_for_swift_status
from proxy.middleware.s3api.request import valid_bucket_name
from proxy.middleware.s3api.swift import S3Response
from proxy.middleware.s3api.xml import XmlError, build_document, parse_xml

CANNED_ACLS: dict[str, tuple[str, str]] = {   # name -> (X-Container-Read, X-Container-Write)
    "private": ("", ""),
    "public-read": (".r:*,.rlistings", ""),
    "public-read-write": (".r:*,.rlistings", "*:*"),
    "authenticated-read": ("*:*", ""),
}
MAX_CREATE_BODY_BYTES = 64 * 1024
XML_HEADERS = [("Content-Type", "application/xml")]


def _acl_headers(call: S3Call) -> dict[str, str]:
    canned = call.headers.get("x-amz-acl")
    if any(name.lower().startswith("x-amz-grant-") for name in call.headers):
        raise S3Error("NotImplemented", "x-amz-grant-* headers are not supported; use a "
                      "canned ACL (x-amz-acl).")
    if canned is None:
        return {}
    if canned not in CANNED_ACLS:
        raise S3Error("InvalidArgument", details={"ArgumentName": "x-amz-acl",
                                                  "ArgumentValue": canned})
    read, write = CANNED_ACLS[canned]
    return {"X-Container-Read": read, "X-Container-Write": write}


def create_bucket(call: S3Call) -> S3Response:
    if call.target.account is not None:
        raise S3Error("InvalidBucketName", details={"BucketName": call.bucket})
    if not valid_bucket_name(call.bucket):
        raise S3Error("InvalidBucketName", details={"BucketName": call.bucket})
    body = call.read_body(MAX_CREATE_BODY_BYTES)
    if body.strip():
        try:
            config = parse_xml(body)
        except XmlError:
            raise S3Error("MalformedXML") from None
        if config.tag != "CreateBucketConfiguration":
            raise S3Error("MalformedXML")
        location = config.child_text("LocationConstraint")
        if location is not None and location.strip() not in ("", call.settings.location):
            raise S3Error("InvalidLocationConstraint", "The specified location-constraint "
                          "is not valid", details={"LocationConstraint": location})
    headers = _acl_headers(call)
    response = call.swift.status("PUT", call.bucket, headers=headers)
    if response.status_int == 202:
        raise S3Error("BucketAlreadyOwnedByYou", details={"BucketName": call.bucket})
    if not response.is_success:
        raise error_for_swift_status(response.status_int, bucket=call.bucket)
    return S3Response(200, [("Location", "/" + call.bucket)])


def delete_bucket(call: S3Call) -> S3Response:
    response = call.swift.status("DELETE", call.bucket)
    if response.status_int == 409:
        raise S3Error("BucketNotEmpty", details={"BucketName": call.bucket})
    if not response.is_success:
        raise error_for_swift_status(response.status_int, bucket=call.bucket)
    # The uploads container goes too when nothing is in flight there (409 keeps it).
    call.swift.status("DELETE", call.segments_container)
    return S3Response(204)


def head_bucket(call: S3Call) -> S3Response:
    call.require_bucket()
    return S3Response(200, [("x-amz-bucket-region", call.settings.location)])


def get_location(call: S3Call) -> S3Response:
    call.require_bucket()
    # us-east-1 answers an empty LocationConstraint, as S3 does
    location = "" if call.settings.location == "us-east-1" else call.settings.location
    body = build_document("LocationConstraint", [])
    if location:
        body = body.replace(b"</LocationConstraint>", location.encode() +
                            b"</LocationConstraint>")
    return S3Response(200, XML_HEADERS, body)


def get_versioning(call: S3Call) -> S3Response:
    call.require_bucket()
    return S3Response(200, XML_HEADERS, build_document("VersioningConfiguration", []))


def acl_document(call: S3Call, container_read: str = "") -> bytes:
    owner = call.owner()
    grants: list[tuple[str, object]] = [("Grant", [
        ("Grantee", [("ID", owner[0][1]), ("DisplayName", owner[1][1])]),
        ("Permission", "FULL_CONTROL")])]
    if ".r:*" in container_read:
        grants.append(("Grant", [
            ("Grantee", [("URI", "http://acs.amazonaws.com/groups/global/AllUsers")]),
            ("Permission", "READ")]))
    body = build_document("AccessControlPolicy", [("Owner", owner),
                                                  ("AccessControlList", grants)])
    # Grantee needs its xsi:type, which S3 clients read to tell users from groups
    body = body.replace(b"<Grantee><ID>", b'<Grantee xmlns:xsi="http://www.w3.org/2001/'
                        b'XMLSchema-instance" xsi:type="CanonicalUser"><ID>')
    return body.replace(b"<Grantee><URI>", b'<Grantee xmlns:xsi="http://www.w3.org/2001/'
                        b'XMLSchema-instance" xsi:type="Group"><URI>')


def get_bucket_acl(call: S3Call) -> S3Response:
    response = call.swift.status("HEAD", call.bucket)
    if not response.is_success:
        raise error_for_swift_status(response.status_int, bucket=call.bucket)
    read = response.headers.get("X-Container-Read", "")
    return S3Response(200, XML_HEADERS, acl_document(call, read))


def put_bucket_acl(call: S3Call) -> S3Response:
    headers = _acl_headers(call)
    if not headers:
        raise S3Error("NotImplemented", "Only canned ACLs (x-amz-acl) are supported.")
    response = call.swift.status("POST", call.bucket, headers=headers)
    if not response.is_success:
        raise error_for_swift_status(response.status_int, bucket=call.bucket)
    return S3Response(200)
