"""AWS request-signing primitives shared by the S3 API (proxy) and identity's s3tokens check.

Only the keyed hashes live here: how a request becomes a string to sign is the S3 layer's
business (proxy.middleware.s3api), and which secret belongs to an access key is identity's.
- SigV4: the signing key is derived from the secret for one date/region/service scope, so a
  holder of the derived key can check signatures of that scope only (and no other day's).
- SigV2: the secret itself signs (HMAC-SHA1, base64).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

V4_ALGORITHM = "AWS4-HMAC-SHA256"
V4_CHUNK_ALGORITHM = "AWS4-HMAC-SHA256-PAYLOAD"     # aws-chunked uploads, one per chunk
V4_TERMINATOR = "aws4_request"


def derive_v4_signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The SigV4 key for `date` (YYYYMMDD), `region` and `service` (e.g. s3)."""
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, V4_TERMINATOR):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def sign_v4(signing_key: bytes, string_to_sign: bytes) -> str:
    """The hex SigV4 signature of `string_to_sign` under a derived key."""
    return hmac.new(signing_key, string_to_sign, hashlib.sha256).hexdigest()


def sign_v2(secret: str, string_to_sign: bytes) -> str:
    """The base64 SigV2 (HMAC-SHA1) signature of `string_to_sign`."""
    return base64.b64encode(hmac.new(secret.encode(), string_to_sign,
                                     hashlib.sha1).digest()).decode()


def v4_scope(string_to_sign: bytes) -> tuple[str, str, str] | None:
    """(date, region, service) of a SigV4 string to sign (request or chunk), else None.

    Both kinds read `<algorithm>\\n<amz date>\\n<date>/<region>/<service>/aws4_request\\n...`.
    """
    lines = string_to_sign.split(b"\n")
    if len(lines) < 4 or lines[0].decode("latin-1") not in (V4_ALGORITHM, V4_CHUNK_ALGORITHM):
        return None
    try:
        date, region, service, terminator = lines[2].decode().split("/")
    except (UnicodeDecodeError, ValueError):
        return None
    if terminator != V4_TERMINATOR or len(date) != 8 or not date.isdigit():
        return None
    return date, region, service


def signatures_match(expected: str, given: str) -> bool:
    """Constant-time comparison of two signatures (hex or base64 text)."""
    return hmac.compare_digest(expected.encode(), given.encode())
