"""What an S3 request addresses: bucket and key (path-style or virtual-host-style), its query
and sub-resources, and whether a request is S3 at all.

- Path-style: `/<bucket>/<key>`; virtual-host-style: `Host: <bucket>.<storage_domain>` with the
  key as the whole path. The bucket may name another Swift account as `<account>:<bucket>`
  (Ceph RGW's tenant syntax), which is how an anonymous client reaches a public container.
- `is_s3_request` tells S3 from Swift traffic: anything signed the S3 way, anything addressed
  virtual-host style, and any path that is not the Swift API's own (`/v1/...`, `/auth/...`,
  `/info`, ...) is S3.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse

from proxy.middleware.s3api.errors import S3Error
from proxy.middleware.s3api.settings import S3Settings
from proxy.middleware.subrequest import WsgiEnv, request_path

SWIFT_FIRST_SEGMENTS = frozenset({"v1", "v1.0", "auth", "info", "healthcheck", "crossdomain.xml",
                                  "v3", "v2.0"})
MAX_KEY_BYTES = 1024
# S3's bucket naming rules (lower case, digits, dots and hyphens, 3 to 63, no IP address form);
# upper case and underscores were once allowed in us-east-1 and are still readable there.
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
LEGACY_BUCKET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{1,254}$")
IP_RE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
ACCOUNT_RE = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")


def has_s3_signature(env: WsgiEnv) -> bool:
    authorization = env.get("HTTP_AUTHORIZATION", "")
    if authorization.startswith(("AWS4-HMAC-SHA256 ", "AWS ")):
        return True
    query = env.get("QUERY_STRING", "")
    return "X-Amz-Credential=" in query or "AWSAccessKeyId=" in query


def virtual_host_bucket(env: WsgiEnv, settings: S3Settings) -> str | None:
    """The bucket named by the Host header under a storage domain, else None."""
    if not settings.storage_domains:
        return None
    host = (env.get("HTTP_HOST") or "").lower()
    host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    for domain in settings.storage_domains:
        if host.endswith("." + domain) and len(host) > len(domain) + 1:
            return host[:-len(domain) - 1]
    return None


def is_s3_request(env: WsgiEnv, settings: S3Settings) -> bool:
    if has_s3_signature(env) or virtual_host_bucket(env, settings) is not None:
        return True
    path = env.get("PATH_INFO", "")
    first = path.lstrip("/").split("/", 1)[0]
    return first not in SWIFT_FIRST_SEGMENTS


def valid_bucket_name(name: str, dns_compliant: bool = True) -> bool:
    """S3's rules for a new bucket (dns_compliant) or an existing one (the legacy rules)."""
    if IP_RE.match(name) or ".." in name or ".-" in name or "-." in name:
        return False
    return bool((BUCKET_RE if dns_compliant else LEGACY_BUCKET_RE).match(name))


@dataclasses.dataclass
class S3Target:
    """The bucket and key a request addresses (native strings), and its query."""

    method: str
    bucket: str | None
    key: str | None
    account: str | None          # from `<account>:<bucket>`; None means the caller's own
    params: dict[str, str]
    resource: str                # `/bucket/key` as errors report it

    def sub_resource(self, *names: str) -> bool:
        return any(name in self.params for name in names)


def parse_query(query_string: str) -> dict[str, str]:
    """The query as S3 reads it: blank values kept, the first of a repeated name wins."""
    params: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(query_string, keep_blank_values=True):
        params.setdefault(name, value)
    return params


def parse_target(env: WsgiEnv, settings: S3Settings) -> S3Target:
    method = env["REQUEST_METHOD"]
    try:
        path = request_path(env)
        params = parse_query(env.get("QUERY_STRING", ""))
    except UnicodeError:
        raise S3Error("InvalidURI") from None
    host_bucket = virtual_host_bucket(env, settings)
    if host_bucket is not None:
        bucket: str | None = host_bucket
        key = path[1:] if path.startswith("/") else path
    else:
        parts = path.lstrip("/").split("/", 1)
        bucket = parts[0] or None
        key = parts[1] if len(parts) > 1 else ""
    key_or_none = key or None
    account = None
    if bucket and ":" in bucket:
        account, _, bucket = bucket.partition(":")
        if not ACCOUNT_RE.match(account) or not bucket:
            raise S3Error("InvalidBucketName", details={"BucketName": f"{account}:{bucket}"})
    resource = "/" + "/".join(part for part in (bucket, key_or_none) if part)
    for text in (bucket, key_or_none):
        if text is not None:
            try:
                encoded = text.encode("utf-8")
            except UnicodeEncodeError:
                raise S3Error("InvalidURI") from None
            if b"\x00" in encoded:
                raise S3Error("InvalidURI")
    if key_or_none is not None and len(key_or_none.encode("utf-8")) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", details={"Size": len(key_or_none.encode()),
                                                  "MaxSizeAllowed": MAX_KEY_BYTES})
    if bucket is not None and not valid_bucket_name(bucket, dns_compliant=False):
        raise S3Error("InvalidBucketName", details={"BucketName": bucket})
    return S3Target(method, bucket, key_or_none, account, params, resource)


def client_content_type(env: WsgiEnv) -> str | None:
    """The Content-Type the client sent, or None: eventlet.wsgi fills CONTENT_TYPE with
    `text/plain` when there was none, which would change a SigV2 string to sign and the
    stored type of an object; its `headers_raw` tell the two apart."""
    raw = env.get("headers_raw")
    if raw is not None and not any(name.lower() == "content-type" for name, _ in raw):
        return None
    return env.get("CONTENT_TYPE") or None
