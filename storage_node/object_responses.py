"""What the object server answers: replies, errors, and the headers and bodies of GET/HEAD.

- `Reply` (a WSGI response with Swift's status lines and default error bodies, from
  `common.http_status`) and `HttpError` (raise it anywhere in request handling to answer at
  once);
- which stored metadata a GET/HEAD returns (`is_object_metadata`, the metadata namespaces)
  and the object's headers (`object_headers_for`);
- applying the request's conditions and Range to an object: `conditional_etag` (the ETag the
  conditions compare with), `ignore_range`, and `range_reply` (206, multipart/byteranges or
  416). The HTTP rules themselves are `common.http_rules`, shared with the proxy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from common.http_rules import (
    content_range,
    multipart_byteranges,
    parse_range,
    ranges_for_length,
    unsatisfiable_content_range,
)
from common.http_status import default_body, status_line
from storage_node.diskfile import DiskFileReader, ObjectState

# The object metadata namespaces: what a PUT/POST stores and a GET/HEAD returns.
USER_META_PREFIX = "x-object-meta-"
SYSMETA_PREFIX = "x-object-sysmeta-"
TRANSIENT_SYSMETA_PREFIX = "x-object-transient-sysmeta-"


# ---- replies and errors -----------------------------------------------------------------------

class Reply:
    """A WSGI response: status, headers, and a body (bytes or an app_iter with close())."""

    def __init__(self, status: int, headers: Mapping[str, str] | None = None,
                 body: bytes | None = None, app_iter: Iterable[bytes] | None = None,
                 content_type: str | None = None):
        self.status = status
        self.headers: dict[str, str] = dict(headers or {})
        self.app_iter = app_iter
        if app_iter is None:
            if body is None:
                body = self._default_body()
                if body:
                    self.headers.setdefault("Content-Type", "text/html; charset=UTF-8")
            elif content_type is None and body:
                content_type = "text/plain"
            self.body = body
            if "Content-Length" not in self.headers:
                self.headers["Content-Length"] = str(len(body))
        if content_type is not None:
            self.headers["Content-Type"] = content_type
        self.headers.setdefault("Content-Type", "text/html; charset=UTF-8")

    def _default_body(self) -> bytes:
        # Swift's storage servers send the HTML body with errors only.
        return default_body(self.status) if self.status >= 400 else b""

    @property
    def status_line(self) -> str:
        return status_line(self.status)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        start_response(self.status_line, list(self.headers.items()))
        if self.app_iter is not None:
            if environ.get("REQUEST_METHOD") == "HEAD":
                _close(self.app_iter)
                return [b""]
            return self.app_iter
        if environ.get("REQUEST_METHOD") == "HEAD":
            return [b""]
        return [self.body]


def _close(app_iter: Iterable[bytes]) -> None:
    close = getattr(app_iter, "close", None)
    if close is not None:
        close()


class HttpError(Exception):
    """Raised by request handling to answer at once with `reply`."""

    def __init__(self, status: int, body: str | None = None,
                 headers: Mapping[str, str] | None = None):
        super().__init__(status, body)
        self.reply = Reply(status, headers, body.encode() if body is not None else None)


def is_object_metadata(key: str, allowed_headers: frozenset[str]) -> bool:
    """Stored metadata a GET/HEAD returns: user meta, sysmeta, transient sysmeta, allowed."""
    lower = key.lower()
    return (lower.startswith(USER_META_PREFIX) and len(lower) > len(USER_META_PREFIX)) or \
        lower.startswith(SYSMETA_PREFIX) or lower.startswith(TRANSIENT_SYSMETA_PREFIX) or \
        lower in allowed_headers


# ---- GET and HEAD answers ----------------------------------------------------------------------

def object_headers_for(state: ObjectState, allowed_headers: frozenset[str]) -> dict[str, str]:
    """The headers a GET/HEAD of the object answers with (before Range is applied)."""
    metadata = state.metadata
    headers = {"Content-Type": metadata.get("Content-Type", "application/octet-stream")}
    for key, value in metadata.items():
        if is_object_metadata(key, allowed_headers):
            headers[key] = value
    if "Content-Encoding" in metadata:
        headers["Content-Encoding"] = metadata["Content-Encoding"]
    headers.update({
        "ETag": f'"{state.etag}"',
        "Last-Modified": state.timestamp.http_date,
        "Content-Length": str(state.content_length),
        "Accept-Ranges": "bytes",
        "X-Timestamp": state.timestamp.normal,
        "X-Backend-Timestamp": state.timestamp.internal,
        "X-Backend-Data-Timestamp": state.data_timestamp.internal,
        # Replicated data is durable once written (EC would differ).
        "X-Backend-Durable-Timestamp": state.data_timestamp.internal,
    })
    return headers


def range_reply(reader: DiskFileReader, state: ObjectState, object_headers: dict[str, str],
                range_header: str) -> Reply | None:
    """206 (single or multipart) or 416; None to ignore the Range header (200)."""
    parsed = parse_range(range_header)
    if parsed is None:
        return None
    size = state.content_length
    ranges = ranges_for_length(parsed, size)
    if not ranges:
        reader.close()
        headers = {key: value for key, value in object_headers.items()
                   if key not in ("Content-Length", "Content-Type")}
        headers["Content-Range"] = unsatisfiable_content_range(size)
        return Reply(416, headers)
    if len(ranges) == 1:
        start, stop = ranges[0]
        object_headers["Content-Range"] = content_range(start, stop, size)
        object_headers["Content-Length"] = str(stop - start)
        return Reply(206, object_headers,
                     app_iter=reader.app_iter(reader.chunks_range(start, stop)))
    content_type, length, chunks = multipart_byteranges(
        ranges, object_headers["Content-Type"], size, reader.chunks_range)
    object_headers["Content-Type"] = content_type
    object_headers["Content-Length"] = str(length)
    return Reply(206, object_headers, app_iter=reader.app_iter(chunks))


def conditional_etag(headers: Mapping[str, str], state: ObjectState) -> str:
    """The ETag conditions compare with: X-Backend-Etag-Is-At names metadata holding it."""
    for key in headers.get("X-Backend-Etag-Is-At", "").split(","):
        key = key.strip()
        for name, value in state.metadata.items():
            if key and name.lower() == key.lower():
                return value.strip('"')
    return state.etag


def ignore_range(headers: Mapping[str, str], metadata: Mapping[str, str]) -> bool:
    """X-Backend-Ignore-Range-If-Metadata-Present: serve the whole body (SLO manifests)."""
    names = {h.strip().lower() for h in
             headers.get("X-Backend-Ignore-Range-If-Metadata-Present", "").split(",")}
    names.discard("")
    return bool(names) and any(key.lower() in names for key in metadata)
