"""One S3 request being served: what it addresses, who sent it, and the Swift account it acts on.

Handlers (service, bucket, obj, multi_delete, multipart, listing) take an `S3Call` and return
an `S3Response` or raise `S3Error`; they share the few lookups every area needs (does the
bucket exist, the caller as S3's Owner, bounded reading of an XML body).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
from typing import Any

from proxy.identity_client import S3Auth
from proxy.middleware.s3api.errors import S3Error, error_for_swift_status
from proxy.middleware.s3api.request import S3Target
from proxy.middleware.s3api.settings import S3Settings
from proxy.middleware.s3api.swift import SwiftAccount
from proxy.middleware.s3api.xml import Node, XmlError, parse_xml
from proxy.middleware.subrequest import WsgiEnv, request_headers


@dataclasses.dataclass
class S3Call:
    env: WsgiEnv
    target: S3Target
    settings: S3Settings
    swift: SwiftAccount
    auth: S3Auth | None
    request_id: str

    @property
    def headers(self) -> Any:
        return request_headers(self.env)

    @property
    def params(self) -> dict[str, str]:
        return self.target.params

    @property
    def bucket(self) -> str:
        assert self.target.bucket is not None
        return self.target.bucket

    @property
    def key(self) -> str:
        assert self.target.key is not None
        return self.target.key

    @property
    def segments_container(self) -> str:
        return self.bucket + self.settings.segments_suffix

    def owner(self) -> list[tuple[str, object]]:
        """S3's `<Owner>` of this account: the project id and name when known."""
        context = self.auth.context if self.auth else None
        if context is not None and self.swift.account == \
                context.account(self.settings.reseller_prefix):
            return [("ID", context.project_id), ("DisplayName", context.project_name)]
        account_id = self.swift.account.removeprefix(self.settings.reseller_prefix)
        return [("ID", account_id), ("DisplayName", account_id)]

    def require_bucket(self) -> None:
        """NoSuchBucket (or AccessDenied) unless the bucket's container can be seen."""
        response = self.swift.status("HEAD", self.bucket)
        if not response.is_success:
            raise error_for_swift_status(response.status_int, bucket=self.bucket)

    def read_body(self, limit_bytes: int) -> bytes:
        """The whole (small) request body; MaxMessageLengthExceeded past `limit_bytes`."""
        length = self.env.get("CONTENT_LENGTH")
        if length and length.isdigit() and int(length) > limit_bytes:
            raise S3Error("MaxMessageLengthExceeded", details={"MaxMessageLengthBytes":
                                                               limit_bytes})
        body = self.env["wsgi.input"].read(limit_bytes + 1)
        if len(body) > limit_bytes:
            raise S3Error("MaxMessageLengthExceeded", details={"MaxMessageLengthBytes":
                                                               limit_bytes})
        return body

    def read_xml(self, root: str, limit_bytes: int) -> Node:
        body = self.read_body(limit_bytes)
        check_content_md5(self.headers.get("Content-MD5"), body)
        try:
            node = parse_xml(body)
        except XmlError:
            raise S3Error("MalformedXML") from None
        if node.tag != root:
            raise S3Error("MalformedXML")
        return node


def content_md5_hex(value: str | None) -> str | None:
    """The hex MD5 of a Content-MD5 header; InvalidDigest when it is not 16 base64 bytes."""
    if value is None:
        return None
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise S3Error("InvalidDigest", details={"Content-MD5": value}) from None
    if len(digest) != 16:
        raise S3Error("InvalidDigest", details={"Content-MD5": value})
    return digest.hex()


def check_content_md5(value: str | None, body: bytes) -> None:
    expected = content_md5_hex(value)
    if expected is not None and hashlib.md5(body, usedforsecurity=False).hexdigest() != expected:
        raise S3Error("BadDigest", details={"ExpectedDigest": value})
