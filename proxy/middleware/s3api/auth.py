"""Who sent an S3 request: checking its SigV4 or SigV2 signature (header or presigned query).

`authenticate` reads the credential, checks the request's time (RequestTimeTooSkewed beyond
`allowable_clock_skew`; presigned URLs: expiry), builds the string to sign, and asks the
authenticator (identity, through proxy.identity_client; in tests a table of secrets) whose
signature it is. It also puts the body checks in place: a signed payload's SHA-256 and
declared checksums (`payload.VerifiedInput`), or the aws-chunked decoder with per-chunk
signatures (`chunked.AwsChunkedInput`). A request with no S3 credential at all is anonymous
(None): Swift's ACLs then decide.
"""

from __future__ import annotations

import calendar
import email.utils
import logging
import re
import time
from typing import Any, Protocol

from proxy.identity_client import IdentityUnavailable, S3Auth
from proxy.middleware.s3api import sigv2, sigv4
from proxy.middleware.s3api.chunked import AwsChunkedInput, ChunkSigner
from proxy.middleware.s3api.errors import S3Error
from proxy.middleware.s3api.payload import VerifiedInput, declared_checksums
from proxy.middleware.s3api.request import S3Target, client_content_type, virtual_host_bucket
from proxy.middleware.s3api.settings import S3Settings
from proxy.middleware.subrequest import WsgiEnv, request_headers, request_path

LOGGER = logging.getLogger("ringstack.proxy.s3api")
SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
STREAMING_VARIANTS = (sigv4.STREAMING_PAYLOAD, sigv4.STREAMING_PAYLOAD_TRAILER,
                      sigv4.STREAMING_UNSIGNED_TRAILER)
BODY_CHECK_ENV_KEY = "ringstack.s3api.body_check"


class S3Authenticator(Protocol):
    """proxy.identity_client.IdentityClient's `s3_auth`, or anything answering the same."""

    def s3_auth(self, access: str, string_to_sign: bytes,
                signature: str) -> S3Auth | None: ...


def _iso_time(text: str) -> float | None:
    """`YYYYMMDDTHHMMSSZ` (X-Amz-Date) as unix time; by hand, since strptime costs ~5% of a
    small GET's proxy CPU."""
    if len(text) != 16 or text[8] != "T" or text[15] != "Z" or \
            not (text[:8] + text[9:15]).isdigit():
        return None
    fields = (int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]),
              int(text[11:13]), int(text[13:15]))
    year, month, day, hour, minute, second = fields
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1] and
            hour <= 23 and minute <= 59 and second <= 60):
        return None
    return float(calendar.timegm((*fields, 0, 0, 0)))


def _http_time(text: str) -> float | None:
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.timestamp() if parsed is not None else None


def _check_skew(request_time: float, now: float, settings: S3Settings) -> None:
    if abs(request_time - now) > settings.allowable_clock_skew_s:
        raise S3Error("RequestTimeTooSkewed", details={
            "RequestTime": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(request_time)),
            "ServerTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "MaxAllowedSkewMilliseconds": settings.allowable_clock_skew_s * 1000})


def _header_lookup(env: WsgiEnv) -> Any:
    headers = request_headers(env)

    def value(name: str) -> str | None:
        if name == "content-length":
            return env.get("CONTENT_LENGTH")
        if name == "content-type":
            return client_content_type(env)
        return headers.get(name)
    return value


def _ask(authenticator: S3Authenticator, access: str, string_to_sign: bytes,
         signature: str) -> S3Auth | None:
    try:
        return authenticator.s3_auth(access, string_to_sign, signature)
    except IdentityUnavailable as err:
        LOGGER.error("S3 authentication failed: %s", err)
        raise S3Error("ServiceUnavailable", "The identity service is unavailable.") from None


def _signature_mismatch(access: str, string_to_sign: bytes, signature: str,
                        canonical: str | None = None) -> S3Error:
    details: dict[str, object] = {"AWSAccessKeyId": access,
                                  "StringToSign": string_to_sign.decode("utf-8", "replace"),
                                  "SignatureProvided": signature}
    if canonical is not None:
        details["CanonicalRequest"] = canonical
    return S3Error("SignatureDoesNotMatch", details=details)


def authenticate(env: WsgiEnv, target: S3Target, settings: S3Settings,
                 authenticator: S3Authenticator, now: float) -> S3Auth | None:
    """The signer of the request (None: anonymous); raises S3Error when refused."""
    authorization = env.get("HTTP_AUTHORIZATION", "")
    params = target.params
    if authorization.startswith("AWS4-HMAC-SHA256"):
        if "X-Amz-Credential" in params:
            raise S3Error("InvalidArgument", "Only one auth mechanism allowed; only the "
                          "X-Amz-Algorithm query parameter or the Authorization header "
                          "should be specified")
        return _v4(env, target, settings, authenticator, now,
                   sigv4.parse_authorization_header(authorization))
    if "X-Amz-Credential" in params or "X-Amz-Algorithm" in params:
        return _v4(env, target, settings, authenticator, now,
                   sigv4.parse_presigned_query(params))
    if authorization.startswith("AWS "):
        return _v2(env, target, settings, authenticator, now,
                   sigv2.parse_authorization_header(authorization))
    if "AWSAccessKeyId" in params or "Signature" in params:
        return _v2(env, target, settings, authenticator, now,
                   sigv2.parse_presigned_query(params))
    if authorization:
        raise S3Error("AccessDenied", "Unsupported Authorization header")
    return None


# ---- SigV4 ----------------------------------------------------------------------------------

def _v4(env: WsgiEnv, target: S3Target, settings: S3Settings,
        authenticator: S3Authenticator, now: float,
        credential: sigv4.V4Credential) -> S3Auth:
    headers = request_headers(env)
    malformed = "AuthorizationQueryParametersError" if credential.presigned else \
        "AuthorizationHeaderMalformed"
    if credential.presigned:
        amz_date = credential.amz_date
        request_time = _iso_time(amz_date)
        if request_time is None:
            raise S3Error(malformed, "X-Amz-Date must be in the ISO8601 Long Format")
        assert credential.expires_s is not None
        if credential.expires_s > settings.max_presigned_expiry_s:
            raise S3Error(malformed, "X-Amz-Expires must be less than a week (in seconds) "
                          f"that is; {settings.max_presigned_expiry_s}")
        if request_time > now + settings.allowable_clock_skew_s:
            raise S3Error("AccessDenied", "Request is not valid yet")
        if now > request_time + credential.expires_s:
            raise S3Error("AccessDenied", "Request has expired", details={
                "X-Amz-Expires": credential.expires_s,
                "Expires": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                         time.gmtime(request_time + credential.expires_s)),
                "ServerTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))})
        payload_hash = headers.get("x-amz-content-sha256") or sigv4.UNSIGNED_PAYLOAD
    else:
        amz_date = headers.get("x-amz-date") or ""
        request_time = _iso_time(amz_date) if amz_date else None
        if request_time is None:
            date_header = headers.get("Date") or ""
            request_time = _iso_time(date_header) or _http_time(date_header)
            amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(request_time)) \
                if request_time is not None and not amz_date else amz_date
        if request_time is None:
            raise S3Error("AccessDenied", "AWS authentication requires a valid Date or "
                          "x-amz-date header")
        _check_skew(request_time, now, settings)
        payload_hash = headers.get("x-amz-content-sha256") or ""
        if not payload_hash:
            raise S3Error("InvalidRequest", "Missing required header for this request: "
                          "x-amz-content-sha256")
    if payload_hash not in (sigv4.UNSIGNED_PAYLOAD, *STREAMING_VARIANTS) and \
            not SHA256_RE.match(payload_hash):
        raise S3Error("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                      "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or a valid sha256 value.",
                      details={"ArgumentName": "x-amz-content-sha256",
                               "ArgumentValue": payload_hash})
    if credential.date != amz_date[:8]:
        raise S3Error(malformed, f"Invalid credential date \"{credential.date}\". This date "
                      "is not the same as X-Amz-Date: \"" + amz_date[:8] + "\".")
    if credential.region != settings.location:
        raise S3Error(malformed, f"The authorization header is malformed; the region "
                      f"'{credential.region}' is wrong; expecting '{settings.location}'",
                      details={"Region": settings.location})
    if credential.service != "s3":
        raise S3Error(malformed, f"The authorization header is malformed; incorrect "
                      f"service \"{credential.service}\". This endpoint belongs to \"s3\".")
    if "host" not in credential.signed_headers:
        raise S3Error(malformed if credential.presigned else "AccessDenied",
                      "Host must be a signed header")
    canonical = sigv4.canonical_request(
        env["REQUEST_METHOD"], request_path(env), env.get("QUERY_STRING", ""),
        credential.signed_headers, _header_lookup(env), payload_hash, credential.presigned)
    to_sign = sigv4.string_to_sign(amz_date, credential.scope, canonical)
    result = _ask(authenticator, credential.access_key, to_sign, credential.signature)
    if result is None:
        raise _signature_mismatch(credential.access_key, to_sign, credential.signature,
                                  canonical)
    _install_body_checks(env, payload_hash, result, credential, amz_date)
    return result


def _install_body_checks(env: WsgiEnv, payload_hash: str, result: S3Auth,
                         credential: sigv4.V4Credential, amz_date: str) -> None:
    headers = request_headers(env)
    checksums = declared_checksums(headers)
    if payload_hash in STREAMING_VARIANTS:
        decoded = headers.get("x-amz-decoded-content-length", "")
        if not decoded.isdigit():
            raise S3Error("MissingContentLength", "You must provide the "
                          "x-amz-decoded-content-length header with aws-chunked uploads.")
        signer = None
        if payload_hash != sigv4.STREAMING_UNSIGNED_TRAILER:
            if result.signing_key is None:
                raise S3Error("NotImplemented", "Chunk signatures cannot be checked for "
                              "this credential.")
            signer = ChunkSigner(result.signing_key, amz_date, credential.scope,
                                 credential.signature)
        trailer_names = tuple(name for name in (headers.get("x-amz-trailer") or "").split(",")
                              if name.strip())
        body = AwsChunkedInput(env["wsgi.input"], int(decoded), signer, trailer_names,
                               signed_trailer=payload_hash == sigv4.STREAMING_PAYLOAD_TRAILER)
        if checksums:
            wrapped: Any = VerifiedInput(body, int(decoded), checksums=checksums)
        else:
            wrapped = body
        env["wsgi.input"] = wrapped
        env["CONTENT_LENGTH"] = decoded
        env.pop("HTTP_TRANSFER_ENCODING", None)
        encodings = [part.strip() for part in (headers.get("Content-Encoding") or "").split(",")
                     if part.strip() and part.strip() != "aws-chunked"]
        if encodings:
            headers["Content-Encoding"] = ", ".join(encodings)
        else:
            headers.pop("Content-Encoding", None)
        env[BODY_CHECK_ENV_KEY] = [body, wrapped]
        return
    sha256 = payload_hash if SHA256_RE.match(payload_hash) else None
    _install_plain_checks(env, sha256, checksums)


def _install_plain_checks(env: WsgiEnv, sha256: str | None, checksums: dict[str, str]) -> None:
    if sha256 is None and not checksums:
        return
    length_text = env.get("CONTENT_LENGTH") or ""
    if not length_text.isdigit():
        if env.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
            raise S3Error("MissingContentLength")
        length_text = "0"
    length = int(length_text)
    checker = VerifiedInput(env["wsgi.input"], length, sha256, checksums)
    if length == 0:
        checker.finish()      # nothing will be read: check the empty body now
        return
    env["wsgi.input"] = checker
    env[BODY_CHECK_ENV_KEY] = [checker]


def body_error(env: WsgiEnv) -> S3Error | None:
    """The body check that failed while the proxy read the request body, if any."""
    for checker in env.get(BODY_CHECK_ENV_KEY, ()):
        if checker.error is not None:
            return checker.error
    return None


# ---- SigV2 ----------------------------------------------------------------------------------

def _v2(env: WsgiEnv, target: S3Target, settings: S3Settings,
        authenticator: S3Authenticator, now: float,
        credential: sigv2.V2Credential) -> S3Auth:
    headers = request_headers(env)
    if credential.presigned:
        assert credential.expires is not None
        if now > credential.expires:
            raise S3Error("AccessDenied", "Request has expired", details={
                "Expires": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(credential.expires)),
                "ServerTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))})
        date_line = str(credential.expires)
    else:
        amz_date = headers.get("x-amz-date")
        date_text = amz_date or headers.get("Date") or ""
        request_time = _http_time(date_text) or _iso_time(date_text)
        if request_time is None:
            raise S3Error("AccessDenied", "AWS authentication requires a valid Date or "
                          "x-amz-date header")
        _check_skew(request_time, now, settings)
        date_line = "" if amz_date else date_text
    lower_headers = {name.lower(): value for name, value in headers.items()}
    lower_headers.pop("content-type", None)
    content_type = client_content_type(env)
    if content_type is not None:
        lower_headers["content-type"] = content_type
    raw_path = env.get("RAW_PATH_INFO") or sigv4.canonical_uri(request_path(env))
    raw_path = raw_path.split("?", 1)[0]
    if target.key is None:
        # a bucket's resource is `/bucket/` whether or not the path ends in a slash (boto,
        # boto3 and s3cmd all sign it so)
        raw_path = raw_path.rstrip("/") + "/"
    resource = sigv2.canonical_resource(raw_path, env.get("QUERY_STRING", ""),
                                        virtual_host_bucket(env, settings))
    to_sign = sigv2.string_to_sign(env["REQUEST_METHOD"], lower_headers, resource, date_line)
    result = _ask(authenticator, credential.access_key, to_sign, credential.signature)
    if result is None:
        raise _signature_mismatch(credential.access_key, to_sign, credential.signature)
    _install_plain_checks(env, None, declared_checksums(headers))
    return result
