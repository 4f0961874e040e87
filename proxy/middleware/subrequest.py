"""Internal subrequests: the one way the Swift API middlewares talk to the rest of the pipeline.

A middleware that needs to read or write other objects (SLO segments, DLO listings, bulk
deletes, copy sources) builds an internal request from the client's environ with `make_env`
(the caller's identity is kept, the request is marked with `swift.source` and a user-agent
suffix, the client's own body, Range and conditional headers are not), sends it to the next app
with `call_app`, and reads the answer as a `SubResponse`. Everything here is shared by all
middlewares so each of them holds only its own protocol:

- paths: native <-> WSGI strings, `/v1/account/container/object` splitting, URL quoting;
- `HttpError`: a Swift-style error response (Swift's reason phrases and default bodies);
- `make_env`, `call_app`, `SubResponse`, `IterReader` (a body iterator read as a file) and
  `BoundedPile` (at most N subrequests in flight, results in submission order);
- the HTTP rules the middlewares apply to bodies they assemble themselves: Range (Swift's
  parsing and anti-abuse limits), preconditions, multipart/byteranges bodies;
- `SegmentStream`: the body of a large object fetched segment by segment, checked as it goes.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import io
import logging
import random
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import eventlet
from webob.headers import EnvironHeaders, ResponseHeaders

WsgiEnv = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[WsgiEnv, StartResponse], Iterable[bytes]]
Body = bytes | Iterable[bytes] | Any | None   # bytes, an iterator of bytes, or a file-like

LOGGER = logging.getLogger("proxy.middleware")

# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------


def str_to_wsgi(text: str) -> str:
    """A native string as PEP 3333 wants it in the environ (UTF-8 bytes as latin-1)."""
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def wsgi_to_str(text: str) -> str:
    return text.encode("latin-1").decode("utf-8", "surrogateescape")


def quote(text: str, safe: str = "/") -> str:
    """URL-quote a native string as Swift does in listings and error reports."""
    return urllib.parse.quote(text.encode("utf-8", "surrogateescape"), safe=safe)


def unquote(text: str) -> str:
    return urllib.parse.unquote(text, errors="surrogateescape")


def is_valid_utf8_name(text: str) -> bool:
    """Swift's check_utf8: no NUL and nothing that was not valid UTF-8 on the wire."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:   # a surrogate-escaped byte: the client sent bad UTF-8
        return False
    return True


@dataclasses.dataclass(frozen=True)
class SwiftPath:
    """`/version/account[/container[/object]]` of a request, as native strings."""

    version: str
    account: str
    container: str | None = None
    obj: str | None = None

    @property
    def account_path(self) -> str:
        return f"/{self.version}/{self.account}"

    def child(self, container_and_object: str) -> str:
        """Full path of `/container/object` (or `container/object`) in this account."""
        return f"{self.account_path}/{container_and_object.lstrip('/')}"

    @property
    def path(self) -> str:
        parts = [self.version, self.account, self.container, self.obj]
        return "/" + "/".join(part for part in parts if part is not None)


def split_swift_path(path: str) -> SwiftPath | None:
    """Parts of a native request path; None when it is not `/version/account[...]`.

    The object part keeps its slashes; a trailing slash after the container is a container
    path, as in Swift's `split_path(path, 3, 4, True)`.
    """
    if not path.startswith("/"):
        return None
    parts = path[1:].split("/", 3)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        return None
    container = parts[2] if len(parts) > 2 and parts[2] else None
    obj = parts[3] if len(parts) > 3 and parts[3] else None
    if container is None and obj is not None:
        return None
    return SwiftPath(parts[0], parts[1], container, obj)


def request_path(env: WsgiEnv) -> str:
    return wsgi_to_str(env.get("SCRIPT_NAME", "") + env.get("PATH_INFO", ""))


def query_params(env: WsgiEnv) -> dict[str, str]:
    """Query parameters, blank ones kept (`?bulk-delete`), the last of a repeated name wins."""
    return dict(urllib.parse.parse_qsl(env.get("QUERY_STRING", ""), keep_blank_values=True))


def request_headers(env: WsgiEnv) -> EnvironHeaders:
    """A case-insensitive, writable view of the request headers in `env`."""
    return EnvironHeaders(env)


def true_value(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on", "t", "y")


def append_header_value(env: WsgiEnv, name: str, value: str) -> None:
    """Add `value` to a comma-separated request header (Swift's backend hint headers)."""
    headers = request_headers(env)
    current = headers.get(name)
    headers[name] = f"{current},{value}" if current else value


# ---------------------------------------------------------------------------------------------
# Errors as Swift answers them
# ---------------------------------------------------------------------------------------------

# Swift's reason phrases (the status line) and default bodies, for the statuses we answer.
RESPONSE_REASONS: dict[int, tuple[str, str]] = {
    200: ("OK", ""),
    201: ("Created", ""),
    202: ("Accepted", "The request is accepted for processing."),
    204: ("No Content", ""),
    206: ("Partial Content", ""),
    304: ("Not Modified", ""),
    400: ("Bad Request", "The server could not comply with the request since it is either "
          "malformed or otherwise incorrect."),
    401: ("Unauthorized", "This server could not verify that you are authorized to access "
          "the document you requested."),
    403: ("Forbidden", "Access was denied to this resource."),
    404: ("Not Found", "The resource could not be found."),
    405: ("Method Not Allowed", "The method is not allowed for this resource."),
    406: ("Not Acceptable", "The resource is not available in a format acceptable to your "
          "browser."),
    409: ("Conflict", "There was a conflict when trying to complete your request."),
    411: ("Length Required", "Content-Length header required."),
    412: ("Precondition Failed", "A precondition for this request was not met."),
    413: ("Request Entity Too Large", "The body of your request was too large for this "
          "server."),
    416: ("Requested Range Not Satisfiable", "The Range requested is not available."),
    422: ("Unprocessable Entity", "Unable to process the contained instructions"),
    500: ("Internal Error", "The server has either erred or is incapable of performing the "
          "requested operation."),
    502: ("Bad Gateway", "Bad gateway."),
    503: ("Service Unavailable", "The server is currently unavailable. Please try again at a "
          "later time."),
}


def status_line(status_int: int) -> str:
    reason = RESPONSE_REASONS.get(status_int, ("Unknown", ""))[0]
    return f"{status_int} {reason}"


def default_body(status_int: int) -> bytes:
    """Swift's HTML body for a status answered without a body of its own."""
    title, explanation = RESPONSE_REASONS.get(status_int, ("", ""))
    if not explanation:
        return b""
    return f"<html><h1>{title}</h1><p>{explanation}</p></html>".encode()


class HttpError(Exception):
    """An error response: raise it anywhere in a middleware; it is also a WSGI app."""

    def __init__(self, status_int: int, body: str | bytes | None = None,
                 headers: Mapping[str, str] | None = None):
        super().__init__(status_line(status_int))
        self.status_int = status_int
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.headers = dict(headers or {})

    @property
    def status(self) -> str:
        return status_line(self.status_int)

    @property
    def body_text(self) -> str:
        """The body given at raise time ('' if none): what bulk reports as Response Body."""
        return (self.body or b"").decode("utf-8", "replace")

    def __call__(self, env: WsgiEnv, start_response: StartResponse) -> list[bytes]:
        body = self.body if self.body is not None else default_body(self.status_int)
        headers = ResponseHeaders([("Content-Type", "text/html; charset=UTF-8")])
        for name, value in self.headers.items():
            headers[name] = value
        headers["Content-Length"] = str(len(body))
        start_response(self.status, list(headers.items()))
        return [b""] if env.get("REQUEST_METHOD") == "HEAD" else [body]


def respond(start_response: StartResponse, status: str, headers: Iterable[tuple[str, str]],
            body: Iterable[bytes]) -> Iterable[bytes]:
    start_response(status, list(headers))
    return body


# ---------------------------------------------------------------------------------------------
# Building, sending and reading subrequests
# ---------------------------------------------------------------------------------------------

# What an internal request inherits from the client's environ: who the caller is (auth token,
# the auth middleware's authorize callback and remote user, identity keys), server identity and
# per-request caches. Nothing else: the client's body, Range, conditions and query stay behind.
COPIED_ENVIRON_KEYS = frozenset({
    "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_USER",
    "HTTP_HOST", "HTTP_X_AUTH_TOKEN", "HTTP_X_STORAGE_TOKEN", "HTTP_X_USER_ID",
    "HTTP_X_PROJECT_ID", "HTTP_ORIGIN", "HTTP_REFERER", "HTTP_X_TIMESTAMP",
    "wsgi.version", "wsgi.url_scheme", "wsgi.errors", "wsgi.multithread",
    "wsgi.multiprocess", "wsgi.run_once",
    "swift.authorize", "swift.authorize_override", "swift.clean_acl", "reseller_request",
    "swift.cache", "swift.infocache",
    "swift.trans_id", "swift.orig_req_method", "swift.log_info",
})
# Environ keys an auth middleware may set to carry the identity; copied by prefix.
COPIED_ENVIRON_PREFIXES = ("identity.", "keystone.", "ringstack.identity")


def make_env(env: WsgiEnv, *, method: str, path: str, swift_source: str,
             query_string: str = "", headers: Mapping[str, object | None] | None = None,
             body: Body = None, agent_suffix: str = "") -> WsgiEnv:
    """An internal request for `path` (native, unquoted) on behalf of the client of `env`.

    `headers` values of None remove a header the client had (e.g. its token). A `body` is
    bytes, a file-like with `read`, or an iterator of bytes; for the latter two the caller sets
    Content-Length (or Transfer-Encoding: chunked) in `headers`.
    """
    new_env: WsgiEnv = {key: value for key, value in env.items()
                        if key in COPIED_ENVIRON_KEYS or key.startswith(COPIED_ENVIRON_PREFIXES)}
    new_env.update({
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": str_to_wsgi(path),
        "QUERY_STRING": query_string,
        "swift.source": swift_source,
    })
    new_env.setdefault("wsgi.version", (1, 0))
    new_env.setdefault("wsgi.url_scheme", "http")
    new_env.setdefault("wsgi.errors", io.StringIO())
    new_env.setdefault("SERVER_NAME", "localhost")
    new_env.setdefault("SERVER_PORT", "80")
    new_env.setdefault("SERVER_PROTOCOL", "HTTP/1.0")
    agent = env.get("HTTP_USER_AGENT", "")
    new_env["HTTP_USER_AGENT"] = f"{agent} {agent_suffix}".strip() if agent_suffix else agent
    header_view = request_headers(new_env)
    for name, value in (headers or {}).items():
        if value is None:
            header_view.pop(name, None)
        else:
            header_view[name] = str(value)
    if body is None or isinstance(body, bytes):
        data = body or b""
        new_env["wsgi.input"] = io.BytesIO(data)
        if "CONTENT_LENGTH" not in new_env and "HTTP_TRANSFER_ENCODING" not in new_env:
            new_env["CONTENT_LENGTH"] = str(len(data))
    elif hasattr(body, "read"):
        new_env["wsgi.input"] = body
    else:
        new_env["wsgi.input"] = IterReader(body)
    return new_env


class SubResponse:
    """What the next app answered: status, case-insensitive headers, an unread body."""

    def __init__(self, status: str, headers: Iterable[tuple[str, str]], app_iter: Iterable[bytes]):
        self.status = status
        self.headers = ResponseHeaders(list(headers))
        self.app_iter = app_iter

    @property
    def status_int(self) -> int:
        return int(self.status.split(" ", 1)[0])

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_int < 300

    @property
    def etag(self) -> str | None:
        """The ETag without quotes (the proxy sends plain objects' ETags unquoted)."""
        value = self.headers.get("Etag")
        return normalize_etag(value) if value is not None else None

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    def header_true(self, name: str) -> bool:
        return true_value(self.headers.get(name, ""))

    def read(self) -> bytes:
        try:
            return b"".join(self.app_iter)
        finally:
            self.close()

    def close(self) -> None:
        close_if_possible(self.app_iter)

    def passthrough(self, start_response: StartResponse) -> Iterable[bytes]:
        """Hand this response, unchanged, to the client."""
        start_response(self.status, list(self.headers.items()))
        return self.app_iter


def close_if_possible(iterable: object) -> None:
    close = getattr(iterable, "close", None)
    if close is not None:
        close()


class _PrefixedBody:
    """Chunks already pulled from a body, then the rest of it; closing closes the original."""

    def __init__(self, first: list[bytes], rest: Iterator[bytes], original: object):
        self._first = first
        self._rest = rest
        self._original = original

    def __iter__(self) -> Iterator[bytes]:
        yield from self._first
        self._first = []
        yield from self._rest

    def close(self) -> None:
        close_if_possible(self._original)


def call_app(app: WsgiApp, env: WsgiEnv) -> SubResponse:
    """Send an internal request to `app`; the body is left unread for the caller."""
    captured: dict[str, Any] = {}
    written: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]],
                       exc_info: object = None) -> Callable[[bytes], None]:
        captured["status"] = status
        captured["headers"] = headers
        return written.append

    app_iter = app(env, start_response)
    first: list[bytes] = list(written)
    rest = iter(app_iter)
    # Apps that are generators call start_response only when first iterated.
    while "status" not in captured:
        try:
            first.append(next(rest))
        except StopIteration:
            break
    if "status" not in captured:
        raise RuntimeError(f"app gave no response to {env['REQUEST_METHOD']} "
                           f"{env['PATH_INFO']}")
    body: Iterable[bytes] = _PrefixedBody(first, rest, app_iter) if first else app_iter
    return SubResponse(captured["status"], captured["headers"], body)


def subrequest(app: WsgiApp, env: WsgiEnv, **make_env_args: Any) -> SubResponse:
    """`make_env` then `call_app`: one internal request."""
    return call_app(app, make_env(env, **make_env_args))


class IterReader(io.RawIOBase):
    """An iterator of byte chunks read as a file: one response's body as another's input."""

    def __init__(self, chunks: Iterable[bytes]):
        super().__init__()
        self._source = chunks
        self._chunks = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def _fill(self, size_bytes: int) -> None:
        while size_bytes < 0 or len(self._buffer) < size_bytes:
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                return

    def read(self, size: int | None = -1) -> bytes:
        size_bytes = -1 if size is None else size
        self._fill(size_bytes)
        if size_bytes < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size_bytes], self._buffer[size_bytes:]
        return data

    def readline(self, size: int | None = -1) -> bytes:
        while b"\n" not in self._buffer:
            before = len(self._buffer)
            self._fill(before + 1)
            if len(self._buffer) == before:
                break
        end = self._buffer.find(b"\n") + 1 or len(self._buffer)
        if size is not None and size >= 0:
            end = min(end, size)
        data, self._buffer = self._buffer[:end], self._buffer[end:]
        return data

    def close(self) -> None:
        close_if_possible(self._source)
        super().close()


class BoundedPile:
    """Runs calls in green threads, at most `concurrency` at once; results in spawn order."""

    def __init__(self, concurrency: int):
        self.concurrency = max(1, concurrency)
        self._pool = eventlet.GreenPool(self.concurrency)
        self._pending: collections.deque[Any] = collections.deque()

    def spawn(self, func: Callable[..., Any], *args: Any) -> None:
        self._pending.append(self._pool.spawn(func, *args))

    @property
    def full(self) -> bool:
        return len(self._pending) >= self.concurrency

    def __len__(self) -> int:
        return len(self._pending)

    def next_result(self) -> Any:
        """The oldest call's result (its exception, if it raised)."""
        return self._pending.popleft().wait()


def bounded_map(func: Callable[..., Any], arg_tuples: Iterable[tuple[Any, ...]],
                concurrency: int) -> Iterator[Any]:
    """`func(*args)` for each args, `concurrency` at a time, results in input order."""
    pile = BoundedPile(concurrency)
    for args in arg_tuples:
        pile.spawn(func, *args)
        if pile.full:
            yield pile.next_result()
    while len(pile):
        yield pile.next_result()


# ---------------------------------------------------------------------------------------------
# HTTP rules for bodies the middlewares assemble: ETags, preconditions, Range
# ---------------------------------------------------------------------------------------------

MAX_RANGES = 50               # Swift's limits against abusive multi-range requests
MAX_RANGE_OVERLAPS = 2
MAX_NONASCENDING_RANGES = 8

RangeSpec = list[tuple[int | None, int | None]]


def normalize_etag(tag: str | None) -> str | None:
    if tag and len(tag) >= 2 and tag.startswith('"') and tag.endswith('"'):
        return tag[1:-1]
    return tag


def clean_content_type(value: str) -> str:
    """Drop the `;swift_bytes=N` parameter a large object's stored Content-Type carries."""
    if ";" in value:
        left, right = value.rsplit(";", 1)
        if right.lstrip().startswith("swift_bytes="):
            return left
    return value


def _etag_set(value: str) -> set[str]:
    return {normalize_etag(tag.strip()) or "" for tag in value.split(",") if tag.strip()}


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


def precondition_status(env: WsgiEnv, etag: str | None, last_modified: str | None) -> int | None:
    """304 or 412 if the client's conditions fail for an entity with this etag/date, else None.

    Same order as Swift's responses: If-None-Match, If-Match, If-Modified-Since,
    If-Unmodified-Since.
    """
    headers = request_headers(env)
    tag = normalize_etag(etag)
    if tag and headers.get("If-None-Match"):
        tags = _etag_set(headers["If-None-Match"])
        if "*" in tags or tag in tags:
            return 304
    if tag and headers.get("If-Match"):
        tags = _etag_set(headers["If-Match"])
        if "*" not in tags and tag not in tags:
            return 412
    modified = _http_date(last_modified)
    if modified is not None:
        since = _http_date(headers.get("If-Modified-Since"))
        if since is not None and modified <= since:
            return 304
        unmodified_since = _http_date(headers.get("If-Unmodified-Since"))
        if unmodified_since is not None and modified > unmodified_since:
            return 412
    return None


def parse_range(value: str | None) -> RangeSpec | None:
    """Swift's Range parsing; None for a missing or syntactically invalid header (ignored)."""
    if not value:
        return None
    value = value.replace(" ", "")
    if not value.lower().startswith("bytes="):
        return None
    spec: RangeSpec = []
    for item in value[6:].split(","):
        start_text, dash, end_text = item.partition("-")
        if not dash:
            return None
        if start_text and not start_text.isdigit():
            return None
        if end_text and not end_text.isdigit():
            return None
        start = int(start_text) if start_text else None
        end = int(end_text) if end_text else None
        if start is None and end is None:
            return None
        if start is not None and end is not None and end < start:
            return None
        spec.append((start, end))
    return spec


def ranges_for_length(spec: RangeSpec, length: int) -> list[tuple[int, int]]:
    """Half-open (start, stop) byte ranges of `spec` for an entity of `length` bytes.

    [] means nothing is satisfiable (or the set is abusive, as Swift judges it): answer 416.
    """
    ranges: list[tuple[int, int]] = []
    for start, end in spec:
        if start is None:
            assert end is not None
            if end == 0:
                continue
            ranges.append((max(0, length - end), length))
        elif start < length:
            ranges.append((start, length if end is None else min(end + 1, length)))
    if len(ranges) > MAX_RANGES:
        return []
    overlaps = 0
    for index, (start1, stop1) in enumerate(ranges):
        for start2, stop2 in ranges[index + 1:]:
            if (start1 < start2 < stop1 or start1 < stop2 < stop1 or
                    start2 < start1 < stop2 or start2 < stop1 < stop2):
                overlaps += 1
                if overlaps > MAX_RANGE_OVERLAPS:
                    return []
    ascending = all(first <= second for first, second in zip(ranges, ranges[1:], strict=False))
    if not ascending and len(ranges) >= MAX_NONASCENDING_RANGES:
        return []
    return ranges


def content_range(start: int, stop: int, length: int) -> str:
    return f"bytes {start}-{stop - 1}/{length}"


def multipart_byteranges(ranges: list[tuple[int, int]], content_type: str, length: int,
                         open_range: Callable[[int, int], Iterable[bytes]]
                         ) -> tuple[str, int, Iterator[bytes]]:
    """A multipart/byteranges body: (its Content-Type, its exact length, its chunks)."""
    boundary = f"{random.getrandbits(128):032x}"
    heads = [(f"--{boundary}\r\nContent-Type: {content_type}\r\n"
              f"Content-Range: {content_range(start, stop, length)}\r\n\r\n").encode()
             for start, stop in ranges]
    tail = f"--{boundary}--".encode()
    # each part: its head, its bytes, then CRLF; then the closing boundary
    total = sum(len(head) + (stop - start) + 2
                for head, (start, stop) in zip(heads, ranges, strict=True)) + len(tail)

    def chunks() -> Iterator[bytes]:
        for head, (start, stop) in zip(heads, ranges, strict=True):
            yield head
            yield from open_range(start, stop)
            yield b"\r\n"
        yield tail

    return f"multipart/byteranges;boundary={boundary}", total, chunks()


def sliced(chunks: Iterable[bytes], start: int, stop: int) -> Iterator[bytes]:
    """Bytes [start, stop) of a stream of chunks."""
    position = 0
    try:
        for chunk in chunks:
            end = position + len(chunk)
            if end > start and position < stop:
                yield chunk[max(0, start - position):min(len(chunk), stop - position)]
            position = end
            if position >= stop:
                break
    finally:
        close_if_possible(chunks)


# ---------------------------------------------------------------------------------------------
# Large-object bodies: segments fetched one after another
# ---------------------------------------------------------------------------------------------


class SegmentError(Exception):
    """A segment is missing or no longer what the manifest says: the body cannot be served."""


class ListingError(Exception):
    """The list of segments (a sub-manifest, a container listing) could not be read."""


@dataclasses.dataclass(frozen=True)
class SegmentPiece:
    """Bytes [first_byte, last_byte] (inclusive; None = to the end) of one segment object.

    `etag`/`size` are what the manifest recorded for the whole object, checked on fetch;
    `data` is an inline (SLO data) segment served from memory instead of a path.
    """

    path: str = ""
    first_byte: int = 0
    last_byte: int | None = None
    etag: str | None = None
    size: int | None = None
    data: bytes | None = None

    @property
    def whole_object(self) -> bool:
        return self.first_byte == 0 and (
            self.last_byte is None or (self.size is not None and self.last_byte == self.size - 1))

    @property
    def length(self) -> int | None:
        if self.last_byte is None:
            return None if self.size is None else self.size - self.first_byte
        return self.last_byte - self.first_byte + 1


def rate_limited(pieces: Iterable[SegmentPiece], *, after_segments: int, per_second: float,
                 applies: Callable[[SegmentPiece], bool] = lambda piece: True
                 ) -> Iterator[SegmentPiece]:
    """Swift's segment rate limit: after `after_segments`, at most `per_second` pieces/s.

    It keeps a manifest of many tiny segments from turning one GET into a flood of
    backend requests; 0 per second disables it.
    """
    allowance = after_segments
    next_allowed = 0.0
    for piece in pieces:
        if per_second > 0 and applies(piece):
            if allowance > 0:
                allowance -= 1
            else:
                now = time.monotonic()
                if next_allowed > now:
                    eventlet.sleep(next_allowed - now)
                next_allowed = max(now, next_allowed) + 1.0 / per_second
        yield piece


class SegmentStream:
    """The body of a large object: each piece GET in turn, checked, bytes passed through.

    `prime()` fetches up to the first byte so a missing first segment becomes a 409 before
    the response starts (Swift's validate_first_segment); after that a bad segment can only
    end the response early, so the error is logged and raised to make the server drop the
    connection, and the client sees a short body rather than a wrong one.
    """

    def __init__(self, env: WsgiEnv, app: WsgiApp, pieces: Iterable[SegmentPiece], *,
                 name: str, swift_source: str, agent_suffix: str, max_get_time_s: float,
                 expected_length: int | None = None, logger: logging.Logger = LOGGER):
        self.env = env
        self.app = app
        self.pieces = pieces
        self.name = name
        self.swift_source = swift_source
        self.agent_suffix = agent_suffix
        self.max_get_time_s = max_get_time_s
        self.expected_length = expected_length
        self.logger = logger
        self._current: SubResponse | None = None
        self._chunks = self._counted()
        self._peeked: list[bytes] = []
        self._primed = False

    def _fetch(self, piece: SegmentPiece) -> SubResponse:
        headers: dict[str, object | None] = {}
        if not piece.whole_object:
            last = "" if piece.last_byte is None else str(piece.last_byte)
            headers["Range"] = f"bytes={piece.first_byte}-{last}"
        # multipart-manifest=get: the segment is read as the plain object it is, so its ETag
        # is its MD5 and can be checked (sub-manifests are expanded by the listing instead).
        response = subrequest(self.app, self.env, method="GET", path=piece.path,
                              query_string="multipart-manifest=get", headers=headers,
                              swift_source=self.swift_source, agent_suffix=self.agent_suffix)
        if not response.is_success:
            response.close()
            raise SegmentError(f"While processing manifest {self.name}, got "
                               f"{response.status_int} while retrieving {piece.path}")
        size_mismatch = (piece.size is not None and piece.whole_object and
                         response.content_length != piece.size)
        if (piece.etag and response.etag != piece.etag) or size_mismatch:
            response.close()
            raise SegmentError(
                f"Object segment no longer valid: {piece.path} etag: {response.etag} != "
                f"{piece.etag} or {response.content_length} != {piece.size}.")
        return response

    def _piece_bytes(self, piece: SegmentPiece) -> Iterator[bytes]:
        if piece.data is not None:
            stop = len(piece.data) if piece.last_byte is None else piece.last_byte + 1
            yield piece.data[piece.first_byte:stop]
            return
        response = self._fetch(piece)
        self._current = response
        body: Iterable[bytes] = response.app_iter
        if response.status_int == 200 and not piece.whole_object:
            # The backend ignored our Range; cut the piece out ourselves.
            stop = (response.content_length or 0) if piece.last_byte is None \
                else piece.last_byte + 1
            body = sliced(body, piece.first_byte, stop)
        digest = hashlib.md5(usedforsecurity=False) \
            if response.etag and piece.whole_object and response.status_int == 200 else None
        try:
            for chunk in body:
                if digest is not None:
                    digest.update(chunk)
                yield chunk
        finally:
            response.close()
            self._current = None
        if digest is not None and digest.hexdigest() != response.etag:
            raise SegmentError(f"Bad MD5 checksum in {self.name} for {piece.path}: headers had "
                               f"{response.etag}, but object MD5 was actually "
                               f"{digest.hexdigest()}")

    def _counted(self) -> Iterator[bytes]:
        started = time.monotonic()
        bytes_left = self.expected_length
        for piece in self.pieces:
            for chunk in self._piece_bytes(piece):
                if bytes_left is not None:
                    if len(chunk) > bytes_left:
                        yield chunk[:bytes_left]
                        raise SegmentError(f"Too many bytes for {self.name}; truncating in "
                                           f"{piece.path or 'data segment'} with "
                                           f"{len(chunk) - bytes_left} bytes left")
                    bytes_left -= len(chunk)
                yield chunk
                if time.monotonic() - started > self.max_get_time_s:
                    raise SegmentError(f"While processing manifest {self.name}, max LO GET "
                                       f"time of {self.max_get_time_s:g}s exceeded")
        if bytes_left:
            raise SegmentError(f"Expected another {bytes_left} bytes for {self.name}; "
                               "closing connection")

    def prime(self) -> None:
        """Fetch the first chunk now; raises SegmentError/ListingError if it cannot be had."""
        if self._primed:
            return
        self._primed = True
        with contextlib.suppress(StopIteration):
            self._peeked.append(next(self._chunks))

    def __iter__(self) -> Iterator[bytes]:
        self._primed = True
        yield from self._peeked
        self._peeked = []
        try:
            yield from self._chunks
        except (SegmentError, ListingError) as err:
            self.logger.error("%s", err)
            raise

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
        self._chunks.close()


def prime_or_conflict(stream: SegmentStream) -> None:
    """Fetch a large object's first bytes; 409 (before anything is sent) if they cannot be."""
    try:
        stream.prime()
    except (SegmentError, ListingError) as err:
        stream.logger.error("%s", err)
        stream.close()
        raise HttpError(409) from None


def range_not_satisfiable(length: int) -> HttpError:
    return HttpError(416, headers={"Content-Range": f"bytes */{length}",
                                   "Accept-Ranges": "bytes"})
