"""Talking to storage nodes: green HTTP connections, node iteration, and request helpers.

- `BackendConnection`: `eventlet.green.http.client` with Swift's `Expect: 100-continue`
  handshake (`getexpect`), so an object server can refuse a PUT (507, 409, 412) before the body
  is sent and the proxy can move to a handoff.
- `NodeIter`: a partition's primaries, then its handoffs from `Ring.get_more_nodes`, skipping
  error-limited nodes, at most `request_node_count` nodes in all.
- `Backend`: opens requests with the connect timeout, waits for answers with the node timeout,
  and reports failures to the `ErrorLimiter`. Body streams are guarded by one `StallWatchdog`
  per request (see proxy.watchdog), never by per-chunk timers.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Iterator, Mapping
from urllib.parse import quote

import eventlet
from eventlet.green.http import client as http_client

from proxy.error_limiter import ErrorLimiter, node_name
from proxy.settings import ProxySettings, node_count_for
from ring import Node, Ring

# Connection-level headers that describe one hop and must never be forwarded to another.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade", "expect", "host", "content-length"})
# What a socket, a parser or a timeout raises when a storage node misbehaves.
NETWORK_ERRORS = (OSError, http_client.HTTPException)


class BackendError(Exception):
    """A storage node could not be reached or did not answer in time."""


class ConnectTimeout(BackendError):
    pass


class NodeTimeout(BackendError):
    pass


class BackendResponse(http_client.HTTPResponse):
    """An HTTP response that can also read a lone `100 Continue` (Swift's bufferedhttp)."""

    def expect_response(self) -> None:
        version, status, reason = self._read_status()
        if status != http_client.CONTINUE:
            # A final answer instead of 100: let begin() parse it as the response.
            self._read_status = lambda: (version, status, reason)  # type: ignore[method-assign]
            self.begin()
            return
        self.status = status
        self.reason = reason.strip()
        self.version = 11
        self.msg = http_client.parse_headers(self.fp)   # the (empty) header block of a 100


class BackendConnection(http_client.HTTPConnection):
    response_class = BackendResponse

    def __init__(self, node: Node):
        super().__init__(node.ip, node.port)
        self.node = node

    def getexpect(self) -> BackendResponse:
        """The interim answer to `Expect: 100-continue`: 100, or a final status."""
        response = BackendResponse(self.sock, method=self._method)
        response.expect_response()
        return response


@dataclasses.dataclass
class NodeAnswer:
    """A complete (small-bodied) answer from one storage node."""

    node: Node
    status: int
    reason: str
    headers: dict[str, str]       # lower-case names
    body: bytes


def backend_path(node: Node, part: int, path: str) -> str:
    """Swift's storage path `/<device>/<partition>/<account>/<container>/<object>`, quoted."""
    return quote(f"/{node.device}/{part}{path}")


def response_headers(response: http_client.HTTPResponse) -> dict[str, str]:
    return {name.lower(): value for name, value in response.getheaders()}


class NodeIter:
    """Primaries then handoffs, skipping error-limited nodes, `node_count` nodes at most.

    The skipped nodes come last, once the ring has no healthy node left to offer: a node that
    failed recently may well be back (a restarted server stays limited for the whole
    suppression interval), and trying it beats answering 503 with too few nodes.

    Not a generator: several greenthreads of one request may pull from one iterator (a PUT's
    connections replacing failed primaries), and there is no I/O inside `__next__`.
    """

    def __init__(self, ring: Ring, part: int, limiter: ErrorLimiter, node_count: int,
                 shuffle_primaries: bool = False, logger: logging.Logger | None = None,
                 log_handoffs: bool = False):
        self.ring = ring
        self.part = part
        self.limiter = limiter
        self.primaries = list(ring.get_part_nodes(part))
        if shuffle_primaries:
            random.shuffle(self.primaries)
        self.node_count = max(node_count, len(self.primaries))
        self.logger = logger or logging.getLogger("ringstack.proxy")
        self.log_handoffs = log_handoffs
        self._primary_index = 0
        self._handoffs: Iterator[Node] | None = None
        self._skipped: list[Node] = []
        self.yielded = 0
        self.handoffs_used = 0

    def __iter__(self) -> NodeIter:
        return self

    def __next__(self) -> Node:
        while self.yielded < self.node_count:
            if self._primary_index < len(self.primaries):
                node = self.primaries[self._primary_index]
                self._primary_index += 1
            else:
                if self._handoffs is None:
                    self._handoffs = self.ring.get_more_nodes(self.part)
                node = next(self._handoffs, None)
                if node is None:                # no more devices in the ring
                    if not self._skipped:
                        raise StopIteration
                    self.yielded += 1
                    return self._skipped.pop(0)
                if self.limiter.is_limited(node):
                    self._skipped.append(node)
                    continue
                self.handoffs_used += 1
                if self.log_handoffs:
                    self.logger.warning("handoff requested (%d): %s", self.handoffs_used,
                                        node_name(node))
                self.yielded += 1
                return node
            if self.limiter.is_limited(node):
                self._skipped.append(node)
                continue
            self.yielded += 1
            return node
        raise StopIteration


class Backend:
    """Requests to storage nodes with the proxy's timeouts and error accounting."""

    def __init__(self, settings: ProxySettings, limiter: ErrorLimiter, logger: logging.Logger):
        self.settings = settings
        self.limiter = limiter
        self.logger = logger

    def iter_nodes(self, ring: Ring, part: int, for_read: bool = False) -> NodeIter:
        replicas = len(ring.get_part_nodes(part))
        return NodeIter(ring, part, self.limiter,
                        node_count_for(self.settings.request_node_count, replicas),
                        shuffle_primaries=for_read and self.settings.sorting_method == "shuffle",
                        logger=self.logger, log_handoffs=self.settings.log_handoffs)

    def open(self, node: Node, part: int, method: str, path: str, headers: Mapping[str, str],
             query_string: str = "") -> BackendConnection:
        """Connect to `node` and send the request line and headers (no body yet)."""
        target = backend_path(node, part, path) + (f"?{query_string}" if query_string else "")
        timeout = eventlet.Timeout(self.settings.conn_timeout_s,
                                   ConnectTimeout(f"connect timeout to {node_name(node)}"))
        conn = BackendConnection(node)
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, str(value))
            conn.endheaders()
        except BaseException:
            conn.close()
            raise
        finally:
            timeout.cancel()
        return conn

    def get_response(self, conn: BackendConnection) -> BackendResponse:
        with eventlet.Timeout(self.settings.node_timeout_s,
                              NodeTimeout(f"node timeout from {node_name(conn.node)}")):
            return conn.getresponse()

    def request(self, node: Node, part: int, method: str, path: str,
                headers: Mapping[str, str], query_string: str = "",
                body: bytes = b"") -> NodeAnswer | None:
        """One complete request; None (and the error recorded) when the node failed us."""
        headers = dict(headers)
        if body or method in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        conn = None
        try:
            conn = self.open(node, part, method, path, headers, query_string)
            if body:
                conn.send(body)
            with eventlet.Timeout(self.settings.node_timeout_s,
                                  NodeTimeout(f"node timeout from {node_name(node)}")):
                response = conn.getresponse()
                data = response.read()
        except (BackendError, *NETWORK_ERRORS) as err:
            self.limiter.record_error(node, f"ERROR {method} {path}: {err or type(err).__name__}")
            return None
        finally:
            if conn is not None:
                conn.close()
        answer = NodeAnswer(node, response.status, response.reason, response_headers(response),
                            data)
        self.check_status(answer.node, answer.status, f"{method} {path}")
        return answer

    def check_status(self, node: Node, status: int, what: str) -> None:
        """Count a storage node's 5xx against it; a 507 limits it at once."""
        if status == 507:
            self.limiter.limit(node, f"ERROR Insufficient Storage ({what})")
        elif status >= 500:
            self.limiter.record_error(node, f"ERROR {status} from storage node re: {what}")
        else:
            self.limiter.record_success(node)
