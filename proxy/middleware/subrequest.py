"""Internal subrequests: the one way the Swift API middlewares talk to the rest of the pipeline.

A middleware that needs to read or write other objects (SLO segments, DLO listings, bulk
deletes, copy sources) builds an internal request from the client's environ with `make_env`
(the caller's identity is kept, the request is marked with `swift.source` and a user-agent
suffix, the client's own body, Range and conditional headers are not), sends it to the next app
with `call_app`, and reads the answer as a `SubResponse`. Everything here is shared by all
middlewares so each of them holds only its own protocol:

- paths: native <-> WSGI strings, `/v1/account/container/object` splitting, URL quoting;
- `HttpError`: a Swift-style error response (reason phrases and default bodies from
  `common.http_status`);
- `make_env`, `call_app`, `SubResponse`, `IterReader` (a body iterator read as a file) and
  `BoundedPile` (at most N subrequests in flight, results in submission order).
Large-object bodies built from such requests are `proxy.middleware.segments`.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import logging
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import eventlet
from webob.headers import EnvironHeaders, ResponseHeaders

from common.config import is_true
from common.http_rules import normalize_etag
from common.http_status import default_body, status_line

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


def append_header_value(env: WsgiEnv, name: str, value: str) -> None:
    """Add `value` to a comma-separated request header (Swift's backend hint headers)."""
    headers = request_headers(env)
    current = headers.get(name)
    headers[name] = f"{current},{value}" if current else value


# ---------------------------------------------------------------------------------------------
# Errors as Swift answers them
# ---------------------------------------------------------------------------------------------

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
    "swift.cache", "swift.infocache", "ringstack.auth_context",
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
        return is_true(self.headers.get(name, ""))

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
