"""An in-memory Swift API, as the proxy answers its clients, for middleware unit tests.

Accounts exist implicitly; containers must be PUT first (an object PUT into a missing
container is a 404, as in Swift). Objects keep the headers Swift's object server keeps (content
type, ETag, user metadata, sysmeta, X-Static-Large-Object, X-Object-Manifest, ...). GET/HEAD
answer Range (one range), If-Match/If-None-Match; container GET lists with prefix, marker,
end_marker, limit and format=json|plain, with Swift's listing rules for large objects
(`swift_bytes` and the container-update etag override).

By default the fake ignores Swift's backend hint headers (X-Backend-Etag-Is-At and
X-Backend-Ignore-Range-If-Metadata-Present), like a proxy core that does not implement them;
`honor_backend_hints=True` makes it behave like Swift's object server. Every request is
recorded in `calls`, and `fail` forces a status for a (method, path).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import mimetypes
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from common.timestamp import Timestamp

STORED_HEADERS = ("content-type", "etag", "x-static-large-object", "x-object-manifest",
                  "x-delete-at", "content-disposition", "content-encoding", "cache-control",
                  "content-language", "expires", "x-robots-tag")
STORED_PREFIXES = ("x-object-meta-", "x-object-sysmeta-", "x-object-transient-sysmeta-")
OVERRIDE_ETAG = "x-object-sysmeta-container-update-override-etag"


@dataclasses.dataclass
class StoredObject:
    body: bytes
    headers: dict[str, str]        # lower-case names
    timestamp: Timestamp

    @property
    def etag(self) -> str:
        return self.headers["etag"]


@dataclasses.dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]        # lower-case names
    swift_source: str | None
    user_agent: str


def _reason(status: int) -> str:
    from http import HTTPStatus
    return HTTPStatus(status).phrase


class FakeSwift:
    """A dict-backed WSGI app speaking enough of the Swift API for the middlewares."""

    def __init__(self, *, listing_limit: int = 10000, honor_backend_hints: bool = False,
                 tokens: set[str] | None = None):
        self.listing_limit = listing_limit
        self.honor_backend_hints = honor_backend_hints
        self.tokens = tokens          # None: no auth; else X-Auth-Token must be one of these
        self.containers: dict[tuple[str, str], dict[str, StoredObject]] = {}
        self.calls: list[Call] = []
        self.fail: dict[tuple[str, str], int] = {}
        self._clock = 1_700_000_000.0

    # --- direct access for tests -------------------------------------------------------------

    def _tick(self) -> Timestamp:
        self._clock += 1.0
        return Timestamp(self._clock)

    def put_container(self, account: str, container: str) -> None:
        self.containers.setdefault((account, container), {})

    def put_object(self, path: str, body: bytes = b"",
                   headers: dict[str, str] | None = None) -> str:
        """Store `body` at /v1/account/container/object (container created); its etag."""
        _, account, container, name = path.split("/", 4)[1:]
        self.put_container(account, container)
        stored = {"content-type": "application/octet-stream",
                  "etag": hashlib.md5(body, usedforsecurity=False).hexdigest()}
        stored.update({key.lower(): value for key, value in (headers or {}).items()})
        self.containers[(account, container)][name] = StoredObject(body, stored, self._tick())
        return stored["etag"]

    def get_object(self, path: str) -> StoredObject | None:
        _, account, container, name = path.split("/", 4)[1:]
        return self.containers.get((account, container), {}).get(name)

    def calls_for(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    # --- WSGI -------------------------------------------------------------------------------

    def __call__(self, env: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = env["REQUEST_METHOD"]
        path = env["PATH_INFO"].encode("latin-1").decode("utf-8", "surrogateescape")
        query = dict(urllib.parse.parse_qsl(env.get("QUERY_STRING", ""),
                                            keep_blank_values=True))
        headers = {key[5:].replace("_", "-").lower(): value for key, value in env.items()
                   if key.startswith("HTTP_")}
        if "CONTENT_TYPE" in env:
            headers["content-type"] = env["CONTENT_TYPE"]
        if "CONTENT_LENGTH" in env:
            headers["content-length"] = env["CONTENT_LENGTH"]
        self.calls.append(Call(method, path, query, headers, env.get("swift.source"),
                               env.get("HTTP_USER_AGENT", "")))
        status, response_headers, body = self._handle(env, method, path, query, headers)
        response_headers = [(name, str(value)) for name, value in response_headers]
        if not any(name.lower() == "content-length" for name, _ in response_headers):
            response_headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} {_reason(status)}", response_headers)
        return [b""] if method == "HEAD" else [body]

    def _handle(self, env: dict[str, Any], method: str, path: str, query: dict[str, str],
                headers: dict[str, str]) -> tuple[int, list[tuple[str, object]], bytes]:
        if (method, path) in self.fail:
            return self.fail[(method, path)], [], b""
        if self.tokens is not None and headers.get("x-auth-token") not in self.tokens:
            return 401, [], b"Unauthorized"
        parts = path[1:].split("/", 3)
        if len(parts) < 2 or parts[0] != "v1":
            return 412, [], b"bad path"
        if len(parts) == 2:
            return 204 if method in ("HEAD", "POST") else 405, [], b""
        account, container = parts[1], parts[2]
        if len(parts) == 3 or not parts[3]:
            return self._container(method, account, container, query)
        return self._object(env, method, account, container, parts[3], headers)

    def _container(self, method: str, account: str, container: str,
                   query: dict[str, str]) -> tuple[int, list[tuple[str, object]], bytes]:
        key = (account, container)
        objects = self.containers.get(key)
        if method == "PUT":
            self.containers.setdefault(key, {})
            return (202 if objects is not None else 201), [], b""
        if objects is None:
            return 404, [], b""
        if method == "DELETE":
            if objects:
                return 409, [], b"There was a conflict when trying to complete your request."
            del self.containers[key]
            return 204, [], b""
        stats = [("X-Container-Object-Count", len(objects)),
                 ("X-Container-Bytes-Used", sum(len(o.body) for o in objects.values()))]
        if method == "HEAD":
            return 204, stats, b""
        if method != "GET":
            return 405, [], b""
        names = sorted(objects, key=lambda name: name.encode("utf-8", "surrogateescape"))
        prefix, marker = query.get("prefix", ""), query.get("marker", "")
        end_marker = query.get("end_marker")
        limit = min(int(query.get("limit", self.listing_limit)), self.listing_limit)
        chosen = [name for name in names if name.startswith(prefix) and name > marker and
                  (end_marker is None or name < end_marker)][:limit]
        if query.get("format") == "json":
            entries = [self._listing_entry(name, objects[name]) for name in chosen]
            body = json.dumps(entries).encode()
            return 200, stats + [("Content-Type", "application/json; charset=utf-8")], body
        body = "".join(name + "\n" for name in chosen).encode()
        return (200 if chosen else 204), stats + [("Content-Type", "text/plain")], body

    @staticmethod
    def _listing_entry(name: str, stored: StoredObject) -> dict[str, object]:
        content_type = stored.headers["content-type"]
        size = len(stored.body)
        if ";" in content_type:       # the container server's swift_bytes rule
            left, right = content_type.rsplit(";", 1)
            if right.strip().startswith("swift_bytes="):
                content_type, size = left, int(right.strip()[len("swift_bytes="):])
        return {"name": name, "hash": stored.headers.get(OVERRIDE_ETAG, stored.etag),
                "bytes": size, "content_type": content_type,
                "last_modified": stored.timestamp.isoformat}

    def _object(self, env: dict[str, Any], method: str, account: str, container: str,
                name: str, headers: dict[str, str]
                ) -> tuple[int, list[tuple[str, object]], bytes]:
        objects = self.containers.get((account, container))
        if objects is None:
            return 404, [], b""
        stored = objects.get(name)
        if method == "PUT":
            return self._put(env, objects, name, headers)
        if stored is None:
            return 404, [], b"<html><h1>Not Found</h1></html>"
        if method == "DELETE":
            del objects[name]
            return 204, [], b""
        if method == "POST":
            kept = {k: v for k, v in stored.headers.items() if not k.startswith("x-object-meta-")}
            kept.update({k: v for k, v in headers.items() if k.startswith("x-object-meta-")})
            stored.headers = kept
            return 202, [], b""
        if method in ("GET", "HEAD"):
            return self._get(stored, headers)
        return 405, [], b""

    def _put(self, env: dict[str, Any], objects: dict[str, StoredObject], name: str,
             headers: dict[str, str]) -> tuple[int, list[tuple[str, object]], bytes]:
        stream = env["wsgi.input"]
        if headers.get("content-length") not in (None, ""):
            body = stream.read(int(headers["content-length"]))
        else:
            body = stream.read()
        if headers.get("if-none-match") == "*" and name in objects:
            return 412, [], b""
        etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
        if headers.get("etag") and headers["etag"].strip('"') != etag:
            return 422, [], b"Unprocessable Entity"
        stored = {key: value for key, value in headers.items()
                  if key in STORED_HEADERS or key.startswith(STORED_PREFIXES)}
        stored["etag"] = etag
        if not stored.get("content-type"):
            stored["content-type"] = mimetypes.guess_type(name)[0] or "application/octet-stream"
        timestamp = self._tick()
        objects[name] = StoredObject(body, stored, timestamp)
        return 201, [("Etag", etag), ("Last-Modified", timestamp.http_date)], b""

    def _get(self, stored: StoredObject, headers: dict[str, str]
             ) -> tuple[int, list[tuple[str, object]], bytes]:
        content_type = stored.headers["content-type"]
        if ";" in content_type and content_type.rsplit(";", 1)[1].strip().startswith(
                "swift_bytes="):
            content_type = content_type.rsplit(";", 1)[0]   # the proxy hides swift_bytes
        out: list[tuple[str, object]] = [
            ("Content-Type", content_type), ("Etag", stored.etag),
            ("Last-Modified", stored.timestamp.http_date),
            ("X-Timestamp", stored.timestamp.normal),
            ("X-Backend-Timestamp", stored.timestamp.internal), ("Accept-Ranges", "bytes")]
        out += [(key.title(), value) for key, value in stored.headers.items()
                if key not in ("content-type", "etag")]
        match_etag = stored.etag
        if self.honor_backend_hints:
            for alternative in headers.get("x-backend-etag-is-at", "").split(","):
                if alternative.strip().lower() in stored.headers:
                    match_etag = stored.headers[alternative.strip().lower()]
                    break
        if_none = {tag.strip().strip('"') for tag in headers.get("if-none-match", "").split(",")}
        if headers.get("if-none-match") and ("*" in if_none or match_etag in if_none):
            return 304, out + [("Content-Length", 0)], b""
        if_match = {tag.strip().strip('"') for tag in headers.get("if-match", "").split(",")}
        if headers.get("if-match") and "*" not in if_match and match_etag not in if_match:
            return 412, out + [("Content-Length", 0)], b""
        body = stored.body
        ignore_range = self.honor_backend_hints and any(
            name.strip().lower() in stored.headers
            for name in headers.get("x-backend-ignore-range-if-metadata-present", "").split(","))
        byte_range = _single_range(headers.get("range"), len(body))
        if byte_range is not None and not ignore_range:
            if byte_range == "unsatisfiable":
                return 416, out + [("Content-Range", f"bytes */{len(body)}")], b""
            start, stop = byte_range
            return 206, out + [("Content-Range", f"bytes {start}-{stop - 1}/{len(body)}")], \
                body[start:stop]
        return 200, out, body


def _single_range(value: str | None, length: int) -> tuple[int, int] | str | None:
    """(start, stop) of a one-range Range header, "unsatisfiable", or None (ignored)."""
    if not value or not value.startswith("bytes=") or "," in value:
        return None
    start_text, _, end_text = value[6:].partition("-")
    if not start_text:
        suffix = int(end_text)
        if suffix and not length:
            return None                  # Swift: the whole (empty) object, 200
        return (max(0, length - suffix), length) if suffix else "unsatisfiable"
    start = int(start_text)
    stop = length if not end_text else min(int(end_text) + 1, length)
    return (start, stop) if start < length else "unsatisfiable"


def call(app: Callable[..., Iterable[bytes]], method: str, path: str, *,
         headers: dict[str, str] | None = None, body: bytes = b"",
         environ: dict[str, Any] | None = None) -> tuple[int, dict[str, str], bytes]:
    """Send one client request to `app`: (status, headers with lower-case names, body)."""
    import io
    path_only, _, query = path.partition("?")
    env: dict[str, Any] = {
        "REQUEST_METHOD": method, "SCRIPT_NAME": "",
        "PATH_INFO": urllib.parse.unquote(path_only).encode("utf-8").decode("latin-1"),
        "QUERY_STRING": query, "SERVER_NAME": "localhost", "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "wsgi.errors": io.StringIO(),
        "CONTENT_LENGTH": str(len(body)), "HTTP_USER_AGENT": "test-client",
    }
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            env[key] = value
        else:
            env["HTTP_" + key] = value
    if env.get("HTTP_TRANSFER_ENCODING") == "chunked":
        env.pop("CONTENT_LENGTH", None)
    env.update(environ or {})
    captured: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]],
                       exc_info: object = None) -> Callable[[bytes], None]:
        captured["status"] = status
        captured["headers"] = response_headers
        return lambda data: None

    app_iter = app(env, start_response)
    try:
        body_out = b"".join(app_iter)
    finally:
        close = getattr(app_iter, "close", None)
        if close:
            close()
    status = int(captured["status"].split()[0])
    return status, {name.lower(): value for name, value in captured["headers"]}, body_out
