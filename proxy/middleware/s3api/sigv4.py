"""SigV4 for S3: reading the credential (Authorization header or presigned query), and building
the canonical request and the string to sign, byte for byte as AWS defines them.

Pure functions over strings: no environ, no clock, no secret. The keyed hash itself is
`common.aws_sig`; the checks of date, expiry and payload hash are `auth`.
Canonical URI: the path URI-encoded once (S3 does not normalise `.`/`..` or double-encode);
canonical query: every name and value URI-encoded and sorted (the presigned signature left
out); canonical headers: the signed ones, lower-cased, values trimmed with inner runs of
spaces folded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import urllib.parse
from collections.abc import Callable

from common.aws_sig import V4_ALGORITHM, V4_CHUNK_ALGORITHM, V4_TERMINATOR
from proxy.middleware.s3api.errors import S3Error

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_PAYLOAD_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
AMZ_DATE_RE = re.compile(r"^\d{8}T\d{6}Z$")
_SPACES = re.compile(r" +")


@dataclasses.dataclass(frozen=True)
class V4Credential:
    """What a SigV4 request says about its signature."""

    access_key: str
    date: str                    # YYYYMMDD of the scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    presigned: bool = False
    amz_date: str = ""           # presigned: X-Amz-Date (a header request reads its header)
    expires_s: int | None = None  # presigned: X-Amz-Expires

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{V4_TERMINATOR}"


def _parse_credential(text: str, error_code: str) -> tuple[str, str, str, str]:
    parts = text.split("/")
    if len(parts) != 5 or parts[4] != V4_TERMINATOR or not parts[0]:
        raise S3Error(error_code, f"Error parsing the X-Amz-Credential parameter; the "
                      f"Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/"
                      f"SERVICE/{V4_TERMINATOR}\".")
    access, date, region, service = parts[:4]
    if len(date) != 8 or not date.isdigit():
        raise S3Error(error_code, f"Invalid credential date \"{date}\". This date is not in "
                      "the correct format.")
    return access, date, region, service


def parse_authorization_header(value: str) -> V4Credential:
    """`AWS4-HMAC-SHA256 Credential=.../s3/aws4_request, SignedHeaders=a;b, Signature=hex`."""
    algorithm, _, rest = value.partition(" ")
    if algorithm != V4_ALGORITHM:
        raise S3Error("AuthorizationHeaderMalformed",
                      f"Unsupported authorization algorithm {algorithm!r}")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, field_value = item.strip().partition("=")
        if sep:
            fields[name] = field_value
    missing = [name for name in ("Credential", "SignedHeaders", "Signature")
               if not fields.get(name)]
    if missing:
        raise S3Error("AuthorizationHeaderMalformed",
                      f"The authorization header is malformed; missing {', '.join(missing)}.")
    access, date, region, service = _parse_credential(fields["Credential"],
                                                      "AuthorizationHeaderMalformed")
    return V4Credential(access, date, region, service,
                        tuple(fields["SignedHeaders"].lower().split(";")), fields["Signature"])


def parse_presigned_query(params: dict[str, str]) -> V4Credential:
    """The X-Amz-* query parameters of a presigned URL."""
    error = "AuthorizationQueryParametersError"
    if params.get("X-Amz-Algorithm") != V4_ALGORITHM:
        raise S3Error(error, "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
    missing = [name for name in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                                 "X-Amz-SignedHeaders", "X-Amz-Signature")
               if not params.get(name)]
    if missing:
        raise S3Error(error, "Query-string authentication version 4 requires the "
                      "X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, "
                      "X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
    access, date, region, service = _parse_credential(params["X-Amz-Credential"], error)
    expires_text = params["X-Amz-Expires"]
    if not expires_text.isdigit():
        raise S3Error(error, "X-Amz-Expires should be a number")
    if not AMZ_DATE_RE.match(params["X-Amz-Date"]):
        raise S3Error(error, "X-Amz-Date must be in the ISO8601 Long Format "
                      "\"yyyyMMdd'T'HHmmss'Z'\"")
    return V4Credential(access, date, region, service,
                        tuple(params["X-Amz-SignedHeaders"].lower().split(";")),
                        params["X-Amz-Signature"], presigned=True,
                        amz_date=params["X-Amz-Date"], expires_s=int(expires_text))


def uri_encode(text: str, safe: str) -> str:
    return urllib.parse.quote(text.encode("utf-8", "surrogateescape"), safe=safe)


def canonical_uri(path: str) -> str:
    """The decoded request path encoded the one way AWS does (`/` and `~` kept)."""
    return uri_encode(path or "/", safe="/~")


def canonical_query(query_string: str, exclude: tuple[str, ...] = ()) -> str:
    pairs = []
    for item in query_string.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        name = urllib.parse.unquote(name, errors="surrogateescape")
        if name in exclude:
            continue
        value = urllib.parse.unquote(value, errors="surrogateescape")
        pairs.append((uri_encode(name, safe="-_.~"), uri_encode(value, safe="-_.~")))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def canonical_headers(signed_headers: tuple[str, ...],
                      header_value: Callable[[str], str | None]) -> str:
    lines = []
    for name in signed_headers:
        value = header_value(name)
        if value is None:
            raise S3Error("SignatureDoesNotMatch",
                          f"The signed header {name!r} is missing from the request.")
        lines.append(f"{name}:{_SPACES.sub(' ', value.strip())}\n")
    return "".join(lines)


def canonical_request(method: str, path: str, query_string: str,
                      signed_headers: tuple[str, ...],
                      header_value: Callable[[str], str | None], payload_hash: str,
                      presigned: bool = False) -> str:
    query = canonical_query(query_string, ("X-Amz-Signature",) if presigned else ())
    return "\n".join([method, canonical_uri(path), query,
                      canonical_headers(signed_headers, header_value),
                      ";".join(signed_headers), payload_hash])


def string_to_sign(amz_date: str, scope: str, request: str) -> bytes:
    digest = hashlib.sha256(request.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{V4_ALGORITHM}\n{amz_date}\n{scope}\n{digest}".encode()


def chunk_string_to_sign(amz_date: str, scope: str, previous_signature: str,
                         chunk_sha256: str) -> bytes:
    """The string an aws-chunked chunk's signature covers (chained to the previous one)."""
    return (f"{V4_CHUNK_ALGORITHM}\n{amz_date}\n{scope}\n{previous_signature}\n"
            f"{EMPTY_SHA256}\n{chunk_sha256}").encode()


def trailer_string_to_sign(amz_date: str, scope: str, previous_signature: str,
                           trailer_sha256: str) -> bytes:
    return (f"AWS4-HMAC-SHA256-TRAILER\n{amz_date}\n{scope}\n{previous_signature}\n"
            f"{trailer_sha256}").encode()
