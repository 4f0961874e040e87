"""The object PUT fan-out: one body streamed to every object-ring primary at once.

1. Connect: one greenthread per primary pulls nodes from a shared `NodeIter`, so a primary that
   refuses, times out, or answers `Expect: 100-continue` with 507/5xx is replaced by the next
   handoff. A final answer instead of 100 (409: a newer version exists, 412: If-None-Match)
   ends that node's part early.
2. Stream: the client's body is read once and queued to each connection; each connection has
   its own sender greenthread (bounded queue, one `StallWatchdog`). A sender that fails drops
   out; when fewer than a quorum remain the PUT ends in 503. The proxy does not hash the body:
   every object server computes the MD5 anyway and checks it against the client's ETag (passed
   on) before it commits, so a body that arrived wrong is never stored (422); a second MD5 here
   would cost the proxy ~40% of its CPU on large objects for no extra safety.
3. Answer: each node's final status is read with the node timeout; the nodes' ETags must agree
   (with the client's ETag when it sent one, else with each other): a node that stored other
   bytes than the majority counts as failed; the quorum vote decides the client's status.
Closing the connections early (client gone, body too large) leaves the object servers with a
short body, which they discard.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

import eventlet
from eventlet.queue import Queue

from proxy.backend import (
    NETWORK_ERRORS,
    Backend,
    BackendConnection,
    BackendError,
    BackendResponse,
    NodeIter,
    NodeTimeout,
    response_headers,
)
from proxy.error_limiter import node_name
from proxy.errors import (
    Accepted,
    ClientDisconnect,
    PreconditionFailed,
    RequestEntityTooLarge,
    RequestTimeout,
    ServiceUnavailable,
)
from proxy.quorum import choose_response, quorum_size
from proxy.watchdog import StallWatchdog, StreamStalled
from ring import Node

LOGGER = logging.getLogger("ringstack.proxy")
MIN_PIECE_BYTES = 65536
_END = object()


@dataclasses.dataclass
class PutResult:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    etag: str                  # the MD5 the object servers agreed on ("" if none answered)


class PutConnection:
    """One object server receiving the body, fed through a bounded queue by its own sender."""

    def __init__(self, backend: Backend, node: Node, conn: BackendConnection, chunked: bool,
                 final: BackendResponse | None = None, final_body: bytes = b""):
        self.backend = backend
        self.node = node
        self.conn = conn
        self.chunked = chunked
        self.final = final              # an answer received instead of 100 Continue
        self.final_body = final_body
        self.failed = False
        self._queue: Queue = Queue(backend.settings.put_queue_depth)
        self._sender: Any = None

    def start(self) -> None:
        self._sender = eventlet.spawn(self._send_all)

    def send(self, chunk: bytes) -> None:
        if not self.failed:
            self._queue.put(chunk)

    def finish(self) -> None:
        """Queue the end of the body and wait until the sender is done with it."""
        if self._sender is None:
            return
        self._queue.put(_END)
        self._sender.wait()

    def _send_all(self) -> None:
        watchdog = StallWatchdog(self.backend.settings.node_timeout_s,
                                 f"PUT to {node_name(self.node)}")
        try:
            while True:
                chunk = self._queue.get()
                if self.failed:
                    if chunk is _END:
                        return
                    continue            # keep draining so the reader never blocks on us
                if chunk is _END:
                    data = b"0\r\n\r\n" if self.chunked else b""
                elif self.chunked:
                    data = b"%x\r\n%s\r\n" % (len(chunk), chunk)
                else:
                    data = chunk
                if data:
                    try:
                        watchdog.arm()
                        try:
                            self.conn.send(data)
                        finally:
                            watchdog.disarm()
                    except (StreamStalled, *NETWORK_ERRORS) as err:
                        self.fail(f"ERROR sending object data: {err or type(err).__name__}")
                if chunk is _END:
                    return
        finally:
            watchdog.cancel()

    def fail(self, why: str) -> None:
        if not self.failed:
            self.failed = True
            self.backend.limiter.record_error(self.node, why)
            self.conn.close()

    def close(self) -> None:
        """Drop the connection (an unfinished body is discarded by the object server) and
        stop the sender if it is still waiting for chunks."""
        if self._sender is not None and not self._sender.dead:
            self._sender.kill()
        self.conn.close()

    def get_answer(self) -> tuple[int, str, dict[str, str], bytes]:
        """The node's final status (503 if it failed or did not answer in time)."""
        if self.final is not None:
            return (self.final.status, self.final.reason, response_headers(self.final),
                    self.final_body)
        if self.failed:
            return (503, "", {}, b"")
        try:
            with eventlet.Timeout(self.backend.settings.node_timeout_s,
                                  NodeTimeout(f"no PUT answer from {node_name(self.node)}")):
                response = self.conn.getresponse()
                body = response.read()
        except (BackendError, *NETWORK_ERRORS) as err:
            self.fail(f"ERROR getting PUT answer: {err or type(err).__name__}")
            return (503, "", {}, b"")
        finally:
            self.conn.close()
        self.backend.check_status(self.node, response.status, "object PUT")
        return (response.status, response.reason, response_headers(response), body)


def connect_put_node(backend: Backend, node_iter: NodeIter, path: str,
                     headers: Mapping[str, str], chunked: bool,
                     expect_continue: bool) -> PutConnection | None:
    """A connection to the next node of `node_iter` that will take the body (or answered)."""
    part = node_iter.part
    for node in node_iter:
        conn = None
        try:
            conn = backend.open(node, part, "PUT", path, headers)
            if not expect_continue:
                return PutConnection(backend, node, conn, chunked)
            with eventlet.Timeout(backend.settings.node_timeout_s,
                                  NodeTimeout(f"no 100-continue from {node_name(node)}")):
                expect = conn.getexpect()
                if expect.status == 100:
                    return PutConnection(backend, node, conn, chunked)
                body = expect.read()
        except (BackendError, *NETWORK_ERRORS) as err:
            if conn is not None:
                conn.close()
            backend.limiter.record_error(node, f"ERROR Expect: 100-continue on {path}: "
                                               f"{err or type(err).__name__}")
            continue
        conn.close()
        if expect.status >= 500:
            backend.check_status(node, expect.status, f"Expect: 100-continue on {path}")
            continue
        return PutConnection(backend, node, conn, chunked, final=expect, final_body=body)
    return None


class ObjectPut:
    """One object PUT over the primaries of `node_iter` (handoffs standing in for failures)."""

    def __init__(self, backend: Backend, node_iter: NodeIter, path: str,
                 headers_list: list[dict[str, str]], length: int | None, max_file_size: int,
                 client_etag: str | None, if_none_match_star: bool):
        self.backend = backend
        self.node_iter = node_iter
        self.path = path
        self.headers_list = headers_list
        self.length = length                  # None: chunked
        self.max_file_size = max_file_size
        self.client_etag = client_etag
        self.if_none_match_star = if_none_match_star
        self.replicas = len(headers_list)
        self.quorum = quorum_size(self.replicas)
        self.connections: list[PutConnection] = []

    def run(self, body_input: Any, client_chunk_bytes: int) -> PutResult:
        try:
            self._connect()
            self._transfer(body_input, self.piece_bytes(client_chunk_bytes))
            return self._answers()
        finally:
            for connection in self.connections:
                connection.close()

    def piece_bytes(self, most: int) -> int:
        """How much to read from the client and send on at a time: a sixteenth of the body
        (at least 64 KiB, at most `most`), so small bodies reach the object servers in time
        to overlap their disk work, and large ones go in few, large sends (measured: 1 MiB
        PUTs -6% with 256 KiB pieces, 64 MiB PUTs +20% with them)."""
        if self.length is None:
            return most
        return min(most, max(MIN_PIECE_BYTES, self.length // 16))

    def _connect(self) -> None:
        chunked = self.length is None
        expect = chunked or bool(self.length)
        pile = eventlet.GreenPile(self.replicas)
        for headers in self.headers_list:
            headers = dict(headers)
            if chunked:
                headers["Transfer-Encoding"] = "chunked"
            else:
                headers["Content-Length"] = str(self.length)
            if expect:
                headers["Expect"] = "100-continue"
            pile.spawn(connect_put_node, self.backend, self.node_iter, self.path, headers,
                       chunked, expect)
        self.connections = [c for c in pile if c is not None]
        finals = [c.final.status for c in self.connections if c.final is not None]
        if self.if_none_match_star and 412 in finals:
            raise PreconditionFailed()
        if 409 in finals:
            # a newer version is already stored: this write has lost, which is not an error
            raise Accepted()
        if len(self.connections) < self.quorum:
            LOGGER.error("Object PUT returning 503, %d/%d required connections",
                         len(self.connections), self.quorum)
            raise ServiceUnavailable()

    def _live(self) -> list[PutConnection]:
        return [c for c in self.connections if c.final is None and not c.failed]

    def _transfer(self, body_input: Any, client_chunk_bytes: int) -> None:
        """Stream the body to every live connection, then end it (chunked: the terminator);
        a short or overlong body closes the connections instead, so no node commits it."""
        receivers = self._live()
        for connection in receivers:
            connection.start()
        received = 0
        while self.length is None or received < self.length:
            want = client_chunk_bytes if self.length is None else \
                min(client_chunk_bytes, self.length - received)
            try:
                chunk = body_input.read(want)
            except TimeoutError:
                raise RequestTimeout() from None
            except (OSError, ValueError) as err:
                LOGGER.info("client disconnected during object PUT: %s", err)
                raise ClientDisconnect() from None
            if not chunk:
                break
            received += len(chunk)
            if received > self.max_file_size:
                raise RequestEntityTooLarge("Your request is too large.")
            self._send(receivers, chunk)
        if self.length is not None and received < self.length:
            LOGGER.info("client disconnected without sending enough data (%d of %d bytes)",
                        received, self.length)
            raise ClientDisconnect()
        for connection in receivers:
            connection.finish()
        if len(self._live()) < self.quorum:
            LOGGER.error("Object PUT returning 503, %d/%d connections finished the body",
                         len(self._live()), self.quorum)
            raise ServiceUnavailable()

    def _send(self, receivers: list[PutConnection], chunk: bytes) -> None:
        for connection in receivers:
            connection.send(chunk)
        if len(self._live()) < self.quorum:
            LOGGER.error("Object PUT exceptions during send, %d/%d required connections",
                         len(self._live()), self.quorum)
            raise ServiceUnavailable()

    def _answers(self) -> PutResult:
        pile = eventlet.GreenPile(max(1, len(self.connections)))
        for connection in self.connections:
            pile.spawn(connection.get_answer)
        answers = list(pile)
        etag = self._agreed_etag(answers)
        statuses: list[int] = []
        for index, (connection, (status, reason, headers, body)) in enumerate(
                zip(self.connections, answers, strict=True)):
            node_etag = (headers.get("etag") or "").strip('"')
            if 200 <= status < 300 and node_etag and node_etag != etag:
                connection.backend.limiter.record_error(
                    connection.node, f"ERROR object server stored ETag {node_etag}, "
                                     f"expected {etag}")
                status = 503
                answers[index] = (status, reason, headers, body)
            statuses.append(status)
        statuses += [503] * (self.replicas - len(statuses))
        status, index = choose_response(statuses, self.quorum)
        if index is None:
            if status == 503:
                LOGGER.error("Object PUT returning 503 for %s", statuses)
            return PutResult(status, "", {}, b"", etag)
        _status, reason, headers, body = answers[index]
        return PutResult(status, reason, headers, body, etag)

    def _agreed_etag(self, answers: list[tuple[int, str, dict[str, str], bytes]]) -> str:
        """The client's ETag if it sent one, else the ETag most successful nodes stored."""
        if self.client_etag is not None:
            return self.client_etag
        stored = Counter((headers.get("etag") or "").strip('"')
                         for status, _reason, headers, _body in answers
                         if 200 <= status < 300)
        stored.pop("", None)
        return stored.most_common(1)[0][0] if stored else ""
