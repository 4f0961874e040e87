"""The S3 layer's one way to the Swift API: subrequests on the caller's account, and the
response type every S3 handler returns.

`SwiftAccount` sends requests to the rest of the pipeline (keystoneauth, copy, slo, ..., the
proxy) through `proxy.middleware.subrequest`, on behalf of the S3 caller: the AuthContext the
signature proved goes into each subrequest's environ, so keystoneauth authorizes it as that
user (nothing for an anonymous caller: the container ACLs decide).
Also here: the Swift <-> S3 mapping of object headers (user metadata, the S3 ETag of a
multipart object) shared by the object and multipart handlers.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping
from typing import Any

from proxy.identity_client import AUTH_CONTEXT_ENV_KEY, AuthContext
from proxy.middleware.subrequest import Body, SubResponse, WsgiApp, WsgiEnv, call_app, make_env

SWIFT_SOURCE = "S3"
AGENT_SUFFIX = "S3API"
SYSMETA_S3_ETAG = "X-Object-Sysmeta-S3api-Etag"
SYSMETA_UPLOAD_ID = "X-Object-Sysmeta-S3api-Upload-Id"
OVERRIDE_ETAG = "X-Object-Sysmeta-Container-Update-Override-Etag"
# Headers S3 stores with an object and gives back on GET/HEAD, unchanged in Swift.
STORED_ENTITY_HEADERS = ("Content-Type", "Content-Encoding", "Content-Disposition",
                         "Cache-Control", "Expires", "Content-Language")
SWIFT_USER_META = "x-object-meta-"
S3_USER_META = "x-amz-meta-"


@dataclasses.dataclass
class S3Response:
    """What an S3 handler answers: status, headers and body (bytes or an iterable)."""

    status_int: int
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    body: bytes | Iterable[bytes] = b""


class SwiftAccount:
    """Subrequests on one Swift account on behalf of one S3 caller."""

    def __init__(self, app: WsgiApp, env: WsgiEnv, account: str, context: AuthContext | None,
                 api_version: str = "v1"):
        self.app = app
        self.env = env
        self.account = account
        self.context = context
        self.account_path = f"/{api_version}/{account}"

    def path(self, container: str | None = None, obj: str | None = None) -> str:
        parts = [self.account_path] + [part for part in (container, obj) if part is not None]
        return "/".join(parts)

    def make_env(self, method: str, container: str | None = None, obj: str | None = None, *,
                 query: str = "", headers: Mapping[str, object | None] | None = None,
                 body: Body = None) -> WsgiEnv:
        env = make_env(self.env, method=method, path=self.path(container, obj),
                       swift_source=SWIFT_SOURCE, query_string=query,
                       headers=dict(headers or {}), body=body, agent_suffix=AGENT_SUFFIX)
        # keystoneauth authorizes with this: the caller proved it with a signature
        env.pop("HTTP_X_AUTH_TOKEN", None)
        env.pop("HTTP_X_STORAGE_TOKEN", None)
        if self.context is not None:
            env[AUTH_CONTEXT_ENV_KEY] = self.context
        return env

    def request(self, method: str, container: str | None = None, obj: str | None = None, *,
                query: str = "", headers: Mapping[str, object | None] | None = None,
                body: Body = None) -> SubResponse:
        return call_app(self.app, self.make_env(method, container, obj, query=query,
                                                headers=headers, body=body))

    def status(self, method: str, container: str | None = None, obj: str | None = None,
               **kwargs: Any) -> SubResponse:
        """A request whose body does not matter: read and closed at once."""
        response = self.request(method, container, obj, **kwargs)
        response.close()
        return response


# ---- object headers between the two APIs -----------------------------------------------------

def s3_etag(headers: Mapping[str, str]) -> str:
    """The ETag S3 shows for an object: a multipart upload's `<md5 of md5s>-N`, else the MD5."""
    if str(headers.get("X-Static-Large-Object", "")).lower() == "true":
        stored = headers.get(SYSMETA_S3_ETAG)
        if stored:
            return stored
    etag = headers.get("Etag") or ""
    return etag[1:-1] if len(etag) >= 2 and etag.startswith('"') else etag


def user_metadata_to_swift(headers: Mapping[str, str]) -> dict[str, str]:
    """x-amz-meta-* request headers as X-Object-Meta-* (names are case-insensitive in S3)."""
    return {f"X-Object-Meta-{name[len(S3_USER_META):]}": value
            for name, value in headers.items() if name.lower().startswith(S3_USER_META)}


def swift_metadata_to_s3(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(f"x-amz-meta-{name[len(SWIFT_USER_META):].lower()}", value)
            for name, value in headers if name.lower().startswith(SWIFT_USER_META)]


def http_date_to_iso(value: str | None) -> str:
    """`Last-Modified` (HTTP date) as S3's XML timestamps (`2024-01-31T12:00:00.000Z`)."""
    import email.utils
    try:
        parsed = email.utils.parsedate_to_datetime(value or "")
        return parsed.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    except (TypeError, ValueError, IndexError):
        return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def listing_time_to_iso(value: str | None) -> str:
    """A Swift listing's `last_modified` (`2024-01-31T12:00:00.123456`) as S3's XML time."""
    if not value:
        return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    seconds, _, fraction = value.partition(".")
    return f"{seconds}.{(fraction + '000')[:3]}Z"
