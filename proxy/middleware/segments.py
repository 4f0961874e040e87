"""Large-object bodies: segments fetched one after another, checked as they stream.

SLO and DLO both serve an object assembled from other objects. What they share is here:
- `SegmentPiece`: bytes [first_byte, last_byte] of one segment (or inline data), with the
  ETag and size the manifest recorded; `rate_limited` (Swift's segment rate limit);
- `SegmentStream`: the body itself, each piece fetched with an internal GET
  (`proxy.middleware.subrequest`), its size and MD5 checked against the manifest, the whole
  bounded by `max_get_time`; `prime_or_conflict` fetches the first bytes before the response
  starts, so a missing first segment is a clean 409;
- `SegmentError` / `ListingError`, and the small helpers the middlewares' GET paths use:
  `clean_content_type`, `sliced`, `range_not_satisfiable`.
The Range and precondition rules themselves are `common.http_rules`, shared with the object
server.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator

import eventlet

from common.http_rules import unsatisfiable_content_range
from proxy.middleware.subrequest import (
    LOGGER,
    HttpError,
    SubResponse,
    WsgiApp,
    WsgiEnv,
    close_if_possible,
    subrequest,
)

# ---------------------------------------------------------------------------------------------
# Helpers for bodies the middlewares assemble
# ---------------------------------------------------------------------------------------------

def clean_content_type(value: str) -> str:
    """Drop the `;swift_bytes=N` parameter a large object's stored Content-Type carries."""
    if ";" in value:
        left, right = value.rsplit(";", 1)
        if right.lstrip().startswith("swift_bytes="):
            return left
    return value


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
    return HttpError(416, headers={"Content-Range": unsatisfiable_content_range(length),
                                   "Accept-Ranges": "bytes"})
