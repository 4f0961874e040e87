"""SigV2 (AWS signature version 2, HMAC-SHA1) for S3: the credential and the string to sign.

Header form: `Authorization: AWS <access>:<base64 signature>`; query form (presigned):
`AWSAccessKeyId`, `Signature`, `Expires` (unix time, which takes the Date line's place).
String to sign: `VERB\\nContent-MD5\\nContent-Type\\nDate\\n` + the x-amz-* headers (lower
case, sorted, `name:value\\n`) + the canonical resource (`/bucket/key` as sent, plus the
sub-resources S3 signs, sorted). An `x-amz-date` header empties the Date line.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Mapping

from proxy.middleware.s3api.errors import S3Error

SIGNED_SUB_RESOURCES = frozenset({
    "accelerate", "acl", "analytics", "cors", "delete", "encryption", "intelligent-tiering",
    "inventory", "legal-hold", "lifecycle", "location", "logging", "metrics", "notification",
    "object-lock", "ownershipControls", "partNumber", "policy", "publicAccessBlock",
    "replication", "requestPayment", "response-cache-control", "response-content-disposition",
    "response-content-encoding", "response-content-language", "response-content-type",
    "response-expires", "restore", "retention", "select", "select-type", "tagging",
    "torrent", "uploadId", "uploads", "versionId", "versioning", "versions", "website",
})


@dataclasses.dataclass(frozen=True)
class V2Credential:
    access_key: str
    signature: str
    presigned: bool = False
    expires: int | None = None        # presigned: unix time


def parse_authorization_header(value: str) -> V2Credential:
    _, _, rest = value.partition(" ")
    access, sep, signature = rest.strip().rpartition(":")
    if not sep or not access or not signature:
        raise S3Error("InvalidArgument", "AWS authorization header is invalid. Expected "
                      "AwsAccessKeyId:signature", details={"ArgumentName": "Authorization"})
    return V2Credential(access, signature)


def parse_presigned_query(params: Mapping[str, str]) -> V2Credential:
    access = params.get("AWSAccessKeyId", "")
    signature = params.get("Signature", "")
    expires = params.get("Expires", "")
    if not access or not signature or not expires:
        raise S3Error("AccessDenied", "Query-string authentication requires the Signature, "
                      "Expires and AWSAccessKeyId parameters")
    if not expires.isdigit():
        raise S3Error("AccessDenied", "Invalid date (should be seconds since epoch): "
                      + expires)
    return V2Credential(access, signature, presigned=True, expires=int(expires))


def canonical_resource(raw_path: str, query_string: str, host_bucket: str | None) -> str:
    """The path as the client sent it (with `/bucket` first for virtual-host style) and the
    signed sub-resources of the query."""
    resource = (f"/{host_bucket}" if host_bucket else "") + (raw_path or "/")
    signed = []
    for item in query_string.split("&"):
        name, sep, value = item.partition("=")
        name = urllib.parse.unquote(name)
        if name in SIGNED_SUB_RESOURCES:
            signed.append((name, urllib.parse.unquote(value) if sep and value else None))
    if signed:
        signed.sort(key=lambda pair: pair[0])
        resource += "?" + "&".join(name if value is None else f"{name}={value}"
                                   for name, value in signed)
    return resource


def string_to_sign(method: str, headers: Mapping[str, str], resource: str,
                   date_line: str) -> bytes:
    """`headers`: the request headers by lower-case name."""
    amz = sorted((name, value) for name, value in headers.items() if name.startswith("x-amz-"))
    amz_lines = "".join(f"{name}:{value.strip()}\n" for name, value in amz)
    text = (f"{method}\n{headers.get('content-md5', '').strip()}\n"
            f"{headers.get('content-type', '').strip()}\n{date_line}\n{amz_lines}{resource}")
    return text.encode("utf-8", "surrogateescape")
