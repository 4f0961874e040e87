"""Fake storage nodes and a fake cluster for proxy tests.

`FakeStorageServer` is a small WSGI app speaking enough of Swift's backend protocol (objects,
containers, accounts; X-Timestamp ordering, tombstones, Range, ETag checks, 100-continue through
eventlet.wsgi) with its data in dicts, served by eventlet on a free 127.0.0.1 port. Faults on
demand: `stop()` (connection refused), `status_override` (answer every request with e.g. 503 or
507), `truncate_gets` (object bodies stop half-way, as a node that found an MD5 mismatch),
`stall_gets_s` (object bodies pause half-way), `corrupt_gets` (a bad byte is sent before
the node notices and breaks off, as a node checking the MD5 only at the end),
`hang_s` (answer late), `put_final_status` (take a PUT's body, then fail it).
`FakeCluster` runs four of each kind, builds real rings for them with `RingBuilder`
(3 replicas, 4 devices in 4 zones, part power 6) and writes a swift_dir.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
from typing import Any
from urllib.parse import parse_qs

import eventlet
import eventlet.wsgi
from webob import Request

from common.config import Config
from common.timestamp import Timestamp
from ring.builder import RingBuilder


class _NullLog:
    def write(self, *_: Any) -> None:
        pass


def _respond(start_response: Any, status: int, headers: dict[str, str] | None = None,
             body: bytes = b"") -> list[bytes]:
    headers = dict(headers or {})
    headers.setdefault("Content-Length", str(len(body)))
    reasons = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
               206: "Partial Content", 404: "Not Found", 409: "Conflict",
               412: "Precondition Failed", 416: "Requested Range Not Satisfiable",
               422: "Unprocessable Entity", 499: "Client Disconnect", 503: "Service Unavailable",
               507: "Insufficient Storage"}
    start_response(f"{status} {reasons.get(status, 'Status')}", list(headers.items()))
    return [body]


def parse_range(value: str, length: int) -> tuple[int, int] | None:
    """A single byte range as (first, last), or None when unsatisfiable."""
    spec = value.split("=", 1)[1].strip()
    first_text, _, last_text = spec.partition("-")
    if not first_text:
        suffix = int(last_text)
        return (max(0, length - suffix), length - 1) if suffix and length else None
    first = int(first_text)
    last = min(int(last_text), length - 1) if last_text else length - 1
    return (first, last) if first < length and first <= last else None


class FakeStorageServer:
    def __init__(self, kind: str):
        assert kind in ("object", "container", "account")
        self.kind = kind
        self.store: dict[str, dict[str, Any]] = {}      # path -> record
        self.rows: dict[str, dict[str, dict[str, Any]]] = {}  # parent path -> child rows
        self.requests: list[tuple[str, str, dict[str, str], str]] = []
        self.status_override: int | None = None
        self.put_final_status: int | None = None      # answer PUTs so after reading the body
        self.truncate_gets = False
        self.stall_gets_s = 0.0           # object bodies pause half-way for this long
        self.corrupt_gets = False         # a flipped byte early on, then the body breaks off
        self.hang_s = 0.0
        self.port = 0
        self._sock: Any = None
        self._thread: Any = None

    # ---- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        sock = eventlet.listen(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._thread = eventlet.spawn(eventlet.wsgi.server, sock, self, log=_NullLog(),
                                      log_output=False, debug=False)

    def stop(self) -> None:
        """Refuse connections from now on (like a dead node)."""
        if self._thread is not None:
            self._thread.kill()
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def up(self) -> bool:
        return self._sock is not None

    def requests_for(self, method: str) -> list[tuple[str, str, dict[str, str], str]]:
        return [r for r in self.requests if r[0] == method]

    # ---- WSGI -------------------------------------------------------------------------------

    def __call__(self, env: dict[str, Any], start_response: Any) -> Any:
        req = Request(env)
        path = env["PATH_INFO"].encode("latin-1").decode("utf-8")
        self.requests.append((req.method, path, dict(req.headers), req.query_string))
        if self.hang_s:
            eventlet.sleep(self.hang_s)
        if self.status_override is not None:
            return _respond(start_response, self.status_override)
        _empty, _device, _part, rest = path.split("/", 3)
        name = "/" + rest
        depth = len(rest.split("/", 2))
        handler = {
            ("object", 3): self.object_request,
            ("container", 2): self.container_request,
            ("container", 3): self.container_row,
            ("account", 1): self.account_request,
            ("account", 2): self.account_row,
        }.get((self.kind, depth))
        if handler is None:
            return _respond(start_response, 400)
        return handler(req, name, start_response)

    # ---- objects ----------------------------------------------------------------------------

    def object_request(self, req: Request, name: str, start_response: Any) -> Any:
        record = self.store.get(name)
        live = record is not None and not record.get("deleted")
        if req.method in ("GET", "HEAD"):
            if not live:
                headers = {"X-Backend-Timestamp": record["timestamp"].internal} if record else {}
                return _respond(start_response, 404, headers)
            return self._object_get(req, record, start_response)
        timestamp = Timestamp(req.headers["X-Timestamp"])
        if req.method == "PUT":
            if req.headers.get("If-None-Match") == "*" and live:
                return _respond(start_response, 412)
            if record is not None and record["timestamp"] >= timestamp:
                return _respond(start_response, 409,
                                {"X-Backend-Timestamp": record["timestamp"].internal})
            body = req.environ["wsgi.input"].read()
            if self.put_final_status is not None:
                return _respond(start_response, self.put_final_status)
            length = req.headers.get("Content-Length")
            if length is not None and len(body) != int(length):
                return _respond(start_response, 499)
            etag = hashlib.md5(body).hexdigest()
            if req.headers.get("ETag") and req.headers["ETag"].strip('"') != etag:
                return _respond(start_response, 422)
            meta = {k: v for k, v in req.headers.items()
                    if k.lower().startswith("x-object-meta-") or k.lower() in (
                        "content-type", "x-delete-at")}
            self.store[name] = {"timestamp": timestamp, "body": body, "etag": etag,
                                "meta": meta}
            return _respond(start_response, 201, {"ETag": etag})
        if req.method == "DELETE":
            if record is not None and record["timestamp"] >= timestamp:
                return _respond(start_response, 409)
            self.store[name] = {"timestamp": timestamp, "deleted": True}
            return _respond(start_response, 204 if live else 404)
        if req.method == "POST":
            if not live:
                return _respond(start_response, 404)
            record["meta"] = {k: v for k, v in record["meta"].items()
                              if not k.lower().startswith("x-object-meta-")}
            record["meta"].update({k: v for k, v in req.headers.items()
                                   if k.lower().startswith("x-object-meta-")})
            return _respond(start_response, 202)
        return _respond(start_response, 405)

    def _object_get(self, req: Request, record: dict[str, Any], start_response: Any) -> Any:
        body = record["body"]
        headers = {"ETag": record["etag"], "X-Timestamp": record["timestamp"].normal,
                   "X-Backend-Timestamp": record["timestamp"].internal,
                   "Last-Modified": record["timestamp"].http_date, **record["meta"]}
        status = 200
        if req.headers.get("Range"):
            span = parse_range(req.headers["Range"], len(body))
            if span is None:
                headers["Content-Range"] = f"bytes */{len(body)}"
                return _respond(start_response, 416, headers)
            first, last = span
            headers["Content-Range"] = f"bytes {first}-{last}/{len(body)}"
            body = body[first:last + 1]
            status = 206
        headers["Content-Length"] = str(len(body))
        if req.method == "HEAD":
            start_response(f"{status} OK", list(headers.items()))
            return [b""]
        if self.truncate_gets and len(body) > 1:
            start_response(f"{status} OK", list(headers.items()))
            return self._truncated(body)
        if self.corrupt_gets and len(body) > 1:
            start_response(f"{status} OK", list(headers.items()))
            bad = bytes([body[0] ^ 0xFF]) + body[1:len(body) // 2]
            return self._truncated(bad + body[len(body) // 2:])
        if self.stall_gets_s and len(body) > 1:
            start_response(f"{status} OK", list(headers.items()))
            return self._stalled(body, self.stall_gets_s)
        start_response(f"{status} OK", list(headers.items()))
        return [body]

    @staticmethod
    def _truncated(body: bytes) -> Any:
        yield body[:len(body) // 2]
        raise OSError("simulated MD5 mismatch: dropping the connection")

    @staticmethod
    def _stalled(body: bytes, pause_s: float) -> Any:
        yield body[:len(body) // 2]
        eventlet.sleep(pause_s)
        yield body[len(body) // 2:]

    # ---- containers and accounts ------------------------------------------------------------

    def _db_request(self, req: Request, name: str, start_response: Any, kind: str) -> Any:
        record = self.store.get(name)
        prefix = f"x-{kind}-meta-"
        if req.method == "PUT":
            timestamp = req.headers.get("X-Timestamp")
            if record is None:
                record = self.store[name] = {
                    "timestamp": timestamp, "meta": {},
                    "policy": req.headers.get("X-Backend-Storage-Policy-Index", "0")}
                status = 201
            else:
                status = 202
            self._update_meta(record, req, prefix)
            return _respond(start_response, status)
        if record is None:
            return _respond(start_response, 404)
        if req.method == "POST":
            self._update_meta(record, req, prefix)
            return _respond(start_response, 204)
        if req.method == "DELETE":
            if self.rows.get(name):
                return _respond(start_response, 409)
            del self.store[name]
            return _respond(start_response, 204)
        rows = self.rows.get(name, {})
        headers = {"X-Timestamp": record["timestamp"], "X-Put-Timestamp": record["timestamp"],
                   **record["meta"]}
        if kind == "container":
            headers.update({"X-Backend-Storage-Policy-Index": record["policy"],
                            "X-Container-Object-Count": str(len(rows)),
                            "X-Container-Bytes-Used": str(sum(r.get("bytes", 0)
                                                              for r in rows.values()))})
        else:
            headers.update({"X-Account-Container-Count": str(len(rows)),
                            "X-Account-Object-Count": "0", "X-Account-Bytes-Used": "0"})
        if req.method == "HEAD":
            return _respond(start_response, 204, headers)
        query = parse_qs(req.query_string)
        prefix_filter = query.get("prefix", [""])[0]
        names = sorted(n for n in rows if n.startswith(prefix_filter))
        if query.get("format", [""])[0] == "json":
            body = json.dumps([{"name": n, **rows[n]} for n in names]).encode()
            headers["Content-Type"] = "application/json; charset=utf-8"
        else:
            body = "".join(n + "\n" for n in names).encode()
            headers["Content-Type"] = "text/plain; charset=utf-8"
        return _respond(start_response, 200 if names else 204, headers, body if names else b"")

    @staticmethod
    def _update_meta(record: dict[str, Any], req: Request, prefix: str) -> None:
        for key, value in req.headers.items():
            lower = key.lower()
            if lower.startswith(prefix) or lower in ("x-container-read", "x-container-write"):
                if value:
                    record["meta"][key] = value
                else:
                    record["meta"].pop(key, None)

    def container_request(self, req: Request, name: str, start_response: Any) -> Any:
        return self._db_request(req, name, start_response, "container")

    def account_request(self, req: Request, name: str, start_response: Any) -> Any:
        return self._db_request(req, name, start_response, "account")

    def _row(self, req: Request, name: str, start_response: Any) -> Any:
        parent, child = name.rsplit("/", 1)
        if req.method == "PUT":
            self.rows.setdefault(parent, {})[child] = {
                "bytes": int(req.headers.get("X-Size", 0)),
                "hash": req.headers.get("X-Etag", ""),
                "content_type": req.headers.get("X-Content-Type", "")}
            return _respond(start_response, 201)
        if req.method == "DELETE":
            self.rows.get(parent, {}).pop(child, None)
            return _respond(start_response, 204)
        return _respond(start_response, 405)

    container_row = _row
    account_row = _row


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeCluster:
    """Four fake servers of each kind, real rings for them, and a swift_dir."""

    USERS = {
        "user_test_tester": "testing .admin",
        "user_test_tester2": "testing2",
        "user_test2_tester2": "testing2 .admin",
        "user_admin_admin": "admin .reseller_admin",
    }

    def __init__(self, swift_dir: str, nodes_per_ring: int = 4, replicas: int = 3,
                 part_power: int = 6):
        self.swift_dir = swift_dir
        self.servers: dict[str, list[FakeStorageServer]] = {}
        for kind in ("object", "container", "account"):
            self.servers[kind] = [FakeStorageServer(kind) for _ in range(nodes_per_ring)]
            for server in self.servers[kind]:
                server.start()
        self.servers["object-1"] = self.servers["object"]
        for kind, filename in (("object", "object.ring"), ("object", "object-1.ring"),
                               ("container", "container.ring"), ("account", "account.ring")):
            builder = RingBuilder(part_power, replicas, 0)
            for index, server in enumerate(self.servers[kind]):
                builder.add_device(region=1, zone=index + 1, ip="127.0.0.1", port=server.port,
                                   device=f"sd{chr(ord('a') + index)}", weight=100)
            builder.rebalance(seed=1)
            builder.ring_data().save(os.path.join(swift_dir, filename))
        with open(os.path.join(swift_dir, "ringstack.conf"), "w") as conf:
            conf.write("[ringstack-hash]\npath_prefix = pre\npath_suffix = suf\n\n"
                       "[storage-policy:0]\nname = gold\ndefault = yes\n\n"
                       "[storage-policy:1]\nname = silver\n")

    @property
    def objects(self) -> list[FakeStorageServer]:
        return self.servers["object"]

    @property
    def containers(self) -> list[FakeStorageServer]:
        return self.servers["container"]

    @property
    def accounts(self) -> list[FakeStorageServer]:
        return self.servers["account"]

    def server_for(self, kind: str, port: int) -> FakeStorageServer:
        return next(s for s in self.servers[kind] if s.port == port)

    def conf(self, **overrides: str) -> Config:
        values = {
            "swift_dir": self.swift_dir, "conn_timeout": "0.5", "node_timeout": "2",
            "recoverable_node_timeout": "1",
            "pipeline": "catch_errors gatekeeper healthcheck proxy-logging tempauth proxy",
            "token_key": "0123456789abcdef0123456789abcdef", **self.USERS}
        values.update(overrides)
        return Config(values, "<test>", "proxy-server")

    def stop(self) -> None:
        for kind in ("object", "container", "account"):
            for server in self.servers[kind]:
                server.stop()


def call(app: Any, path: str, method: str = "GET", headers: dict[str, str] | None = None,
         body: bytes | None = None, chunked: bool = False, environ: dict[str, Any] | None = None):
    """One request straight into a WSGI app; returns the webob Response (body collected)."""
    env = dict(environ or {})
    req = Request.blank(path, environ={"REQUEST_METHOD": method, **env},
                        headers=headers or {})
    if body is not None:
        req.environ["wsgi.input"] = io.BytesIO(body)
        if chunked:
            req.environ.pop("CONTENT_LENGTH", None)
            req.environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        else:
            req.environ["CONTENT_LENGTH"] = str(len(body))
    return req.get_response(app)
