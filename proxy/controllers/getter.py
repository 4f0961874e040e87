"""GET and HEAD against storage nodes: find a good answer, then stream it to the client.

Nodes are consulted one at a time, primaries (shuffled) then handoffs, until one gives a usable
answer (2xx, 304, 416). Which answer wins when none does follows Swift: a handoff's 404 or 5xx
says nothing unless it carries X-Backend-Timestamp (a real tombstone), a failed primary counts
as a 503, and the quorum vote of proxy.quorum decides, so a 404 is only returned when a majority
of replicas say so. With `X-Newest: true` every node is asked and the newest answer wins; for
objects, a tombstone newer than the answer found means the object is gone (404).

An object body that breaks mid-stream (the node died, stalled past the recoverable node timeout,
or stopped short, e.g. because it found an MD5 mismatch) is resumed from the next node with a
Range request for the bytes still owed, after checking the new node holds the same version
(ETag and X-Timestamp). Listings and multi-range bodies are not resumed: different replicas may
hold different listings, and a multipart body cannot be spliced. A whole-object body is also
MD5-checked against its ETag on the way through and its last chunk held until the check
passes: bytes a corrupt replica sent before it broke off cannot be taken back, so the client
then gets a short read (an error it sees) rather than a complete body with wrong bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections.abc import Iterator, Mapping

from common.http_rules import normalize_etag
from common.timestamp import InvalidTimestamp, Timestamp
from proxy.backend import (
    NETWORK_ERRORS,
    Backend,
    BackendError,
    BackendResponse,
    NodeIter,
    response_headers,
)
from proxy.error_limiter import node_name
from proxy.quorum import choose_response, quorum_size
from proxy.watchdog import StallWatchdog, StreamStalled
from ring import Node

LOGGER = logging.getLogger("ringstack.proxy")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")
CONDITIONAL_HEADERS = ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")


class StreamBroken(Exception):
    """A body could not be completed from any node; the client connection must be dropped."""


class ShortBody(BackendError):
    """A storage node ended a body before its Content-Length."""


@dataclasses.dataclass
class Source:
    """An open answer from a storage node whose body has not been read yet."""

    node: Node
    response: BackendResponse
    headers: dict[str, str]

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def timestamp(self) -> Timestamp | None:
        return header_timestamp(self.headers)

    def close(self) -> None:
        try:
            self.response.close()
        finally:
            conn = getattr(self.response, "ringstack_conn", None)
            if conn is not None:
                conn.close()


@dataclasses.dataclass
class FetchResult:
    """What GET/HEAD found: a status, the headers to answer with, and maybe a body."""

    status: int
    reason: str
    headers: dict[str, str]               # lower-case names, hop-by-hop headers included
    body: bytes | Iterator[bytes]


def header_timestamp(headers: Mapping[str, str]) -> Timestamp | None:
    for name in ("x-backend-timestamp", "x-timestamp", "x-put-timestamp"):
        value = headers.get(name)
        if value:
            try:
                return Timestamp(value)
            except InvalidTimestamp:
                return None
    return None


def is_source_status(status: int) -> bool:
    return 200 <= status < 300 or status == 304 or status == 416


class GetOrHead:
    """One GET or HEAD of an account, container or object over its nodes."""

    def __init__(self, backend: Backend, method: str, server_type: str, node_iter: NodeIter,
                 path: str, headers: Mapping[str, str], query_string: str = "",
                 resumable: bool = False, newest: bool = False, verify_etag: bool = False):
        self.backend = backend
        self.method = method
        self.server_type = server_type     # "Account", "Container" or "Object"
        self.node_iter = node_iter
        self.part = node_iter.part
        self.replicas = len(node_iter.primaries)
        self.path = path
        self.headers = dict(headers)
        self.query_string = query_string
        self.resumable = resumable and method == "GET"
        self.newest = newest
        self.verify_etag = verify_etag
        settings = backend.settings
        self.chunk_bytes = settings.object_chunk_bytes
        self.stall_timeout_s = settings.recoverable_node_timeout_s if self.resumable \
            else settings.node_timeout_s

    # ---- finding an answer ------------------------------------------------------------------

    def _open(self, node: Node, headers: Mapping[str, str]) -> Source | None:
        conn = None
        try:
            conn = self.backend.open(node, self.part, self.method, self.path, headers,
                                     self.query_string)
            response = self.backend.get_response(conn)
        except (BackendError, *NETWORK_ERRORS) as err:
            if conn is not None:
                conn.close()
            self.backend.limiter.record_error(
                node, f"ERROR {self.server_type} {self.method} {self.path}: "
                      f"{err or type(err).__name__}")
            return None
        response.ringstack_conn = conn   # type: ignore[attr-defined]
        return Source(node, response, response_headers(response))

    def _read_small_body(self, source: Source) -> bytes:
        """The whole (error or 416) body of an answer; b'' if the node fails to send it."""
        watchdog = StallWatchdog(self.backend.settings.node_timeout_s, node_name(source.node))
        try:
            watchdog.arm()
            return source.response.read()
        except (StreamStalled, *NETWORK_ERRORS):
            return b""
        finally:
            watchdog.cancel()
            source.close()

    def fetch(self) -> FetchResult:
        statuses: list[int] = []
        answers: list[tuple[int, str, dict[str, str], bytes]] = []
        sources: list[Source] = []
        newest_tombstone: Timestamp | None = None
        tombstone_answer = None
        for node in self.node_iter:
            source = self._open(node, self.headers)
            if source is None:
                if not node.handoff:
                    statuses.append(503)
                    answers.append((503, "", {}, b""))
                continue
            status = source.status
            if is_source_status(status):
                sources.append(source)
                if not self.newest:
                    break
                continue
            self.backend.check_status(node, status, f"{self.method} {self.path}")
            body = self._read_small_body(source)
            timestamp = header_timestamp(source.headers) \
                if "x-backend-timestamp" in source.headers else None
            if timestamp is not None and not timestamp.ticks:
                timestamp = None    # Swift's "0000000000.00000": nothing was ever there
            if node.handoff and (status == 404 or status >= 500) and timestamp is None:
                continue    # a handoff without the data says nothing about it
            statuses.append(status)
            answer = (status, source.response.reason, source.headers, body)
            answers.append(answer)
            if status == 404 and timestamp is not None and \
                    (newest_tombstone is None or timestamp > newest_tombstone):
                newest_tombstone, tombstone_answer = timestamp, answer
        if sources:
            best = max(sources, key=lambda s: s.timestamp or Timestamp(0)) if self.newest \
                else sources[0]
            for other in sources:
                if other is not best:
                    other.close()
            if self.server_type == "Object" and tombstone_answer is not None and \
                    newest_tombstone is not None and best.timestamp is not None and \
                    newest_tombstone > best.timestamp:
                best.close()   # deleted after the version we found was written
                status, reason, headers, body = tombstone_answer
                return FetchResult(status, reason, headers, body)
            return self._result_for(best)
        status, index = choose_response(statuses, quorum_size(self.replicas))
        if index is None:
            LOGGER.error("%s %s returning %d for %s", self.server_type, self.method, status,
                         statuses)
            return FetchResult(status, "", {}, b"")
        status, reason, headers, body = answers[index]
        return FetchResult(status, reason, headers, body)

    def _result_for(self, source: Source) -> FetchResult:
        if self.method == "HEAD" or source.status in (204, 304):
            source.close()
            return FetchResult(source.status, source.response.reason, source.headers, b"")
        if source.status == 416:
            return FetchResult(416, source.response.reason, source.headers,
                               self._read_small_body(source))
        return FetchResult(source.status, source.response.reason, source.headers,
                           self._stream(source))

    # ---- streaming and resuming -------------------------------------------------------------

    def _span(self, source: Source) -> tuple[int, int] | None:
        """(first, last) absolute byte offsets the body covers, when it can be resumed."""
        length_text = source.headers.get("content-length")
        if not self.resumable or length_text is None or not length_text.isdigit():
            return None
        if source.status == 200:
            return (0, int(length_text) - 1)
        if source.status == 206:
            match = _CONTENT_RANGE.match(source.headers.get("content-range", ""))
            if match:   # a multipart/byteranges body has no Content-Range: not resumable
                return (int(match.group(1)), int(match.group(2)))
        return None

    def _stream(self, source: Source) -> Iterator[bytes]:
        span = self._span(source)
        length_text = source.headers.get("content-length", "")
        expected = int(length_text) if length_text.isdigit() else None
        etag = normalize_etag(source.headers.get("etag"))
        timestamp = source.timestamp
        position = span[0] if span else 0
        end = span[1] if span else (expected - 1 if expected is not None else None)
        # A whole object is checked against its ETag as it streams; the last chunk is only
        # sent once the MD5 matches, so a replica that sent bad bytes before breaking (and was
        # resumed from) makes the client see a short read, never a complete wrong body.
        checker = hashlib.md5(usedforsecurity=False) \
            if self.verify_etag and source.status == 200 and span is not None and \
            etag is not None and _MD5_HEX.match(etag.lower()) else None
        received = 0
        watchdog = StallWatchdog(self.stall_timeout_s, f"{self.method} {self.path}")
        try:
            while True:
                want = self.chunk_bytes if end is None else min(self.chunk_bytes,
                                                                end + 1 - position)
                if want <= 0:
                    return
                try:
                    watchdog.arm()
                    try:
                        chunk = source.response.read(want)
                    finally:
                        watchdog.disarm()
                    if not chunk:
                        if expected is not None and received < expected:
                            raise ShortBody(f"{received} of {expected} bytes")
                        return
                except (StreamStalled, BackendError, *NETWORK_ERRORS) as err:
                    self.backend.limiter.record_error(
                        source.node, f"ERROR reading {self.path} after {received} bytes: "
                                     f"{err or type(err).__name__}")
                    source.close()
                    if span is None or end is None:
                        raise StreamBroken(f"{self.path}: {err}") from None
                    source = self._resume(position, end, etag, timestamp)
                    if source is None:
                        raise StreamBroken(f"{self.path}: no node could resume at byte "
                                           f"{position}") from None
                    continue
                position += len(chunk)
                received += len(chunk)
                if checker is not None:
                    checker.update(chunk)
                    if end is not None and position > end and checker.hexdigest() != etag.lower():
                        LOGGER.error("%s: body MD5 %s does not match ETag %s; dropping the "
                                     "client connection", self.path, checker.hexdigest(), etag)
                        raise StreamBroken(f"{self.path}: MD5 mismatch")
                yield chunk
        finally:
            watchdog.cancel()
            source.close()

    def _resume(self, position: int, end: int, etag: str | None,
                timestamp: Timestamp | None) -> Source | None:
        headers = {name: value for name, value in self.headers.items()
                   if name.lower() not in CONDITIONAL_HEADERS and name.lower() != "range"}
        headers["Range"] = f"bytes={position}-{end}"
        for node in self.node_iter:
            source = self._open(node, headers)
            if source is None:
                continue
            same_version = normalize_etag(source.headers.get("etag")) == etag and \
                (timestamp is None or source.timestamp == timestamp)
            match = _CONTENT_RANGE.match(source.headers.get("content-range", ""))
            starts_right = (source.status == 206 and match is not None
                            and int(match.group(1)) == position) or \
                (source.status == 200 and position == 0)
            if same_version and starts_right:
                LOGGER.info("resuming %s at byte %d from %s", self.path, position,
                            node_name(node))
                return source
            self.backend.check_status(node, source.status, f"resume {self.path}")
            source.close()
        return None
