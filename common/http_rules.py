"""Swift's HTTP rules for Range and conditional requests: the one implementation.

The object server applies them to objects on disk; the proxy's SLO and DLO middlewares to
large objects they assemble from segments. Sharing them means a plain object and a large
object answer the same request the same way. The rules are swob's:

- Range: `parse_range` (RFC 7233 syntax; a header with any invalid spec is ignored),
  `ranges_for_length` (the satisfiable byte ranges, [] meaning 416, with swob's limits on
  abusive requests), `content_range` / `unsatisfiable_content_range` (Content-Range values)
  and `multipart_byteranges` (a multipart/byteranges body, its Content-Type and exact length);
- conditions: `conditional_status` (If-None-Match, If-Match, If-Modified-Since,
  If-Unmodified-Since in swob's order: 304 or 412), `missing_entity_status` (If-Match: * when
  there is nothing: 412), and their parsers `parse_etags`, `normalize_etag`, `parse_http_date`.

Everything here is pure: headers in, statuses and byte ranges out; bodies are produced by a
callback the caller gives, so no I/O happens here.
"""

from __future__ import annotations

import email.utils
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping

# swob's limits on egregious Range requests (RFC 7233 section 6.1): more ranges, overlaps or
# out-of-order ranges than this make the whole header unsatisfiable (416).
MAX_RANGES = 50
MAX_RANGE_OVERLAPS = 2
MAX_NONASCENDING_RANGES = 8

RangeSpec = list[tuple[int | None, int | None]]     # (first, last) inclusive; None = open


# ---- conditional requests ------------------------------------------------------------------

def normalize_etag(tag: str | None) -> str | None:
    """An ETag without its surrounding double quotes (None stays None)."""
    if tag and len(tag) >= 2 and tag.startswith('"') and tag.endswith('"'):
        return tag[1:-1]
    return tag


def parse_etags(value: str) -> set[str]:
    """An If-Match / If-None-Match list: tags without quotes or W/ ('*' stays '*')."""
    tags = set()
    for item in value.split(","):
        item = item.strip()
        if item.startswith("W/"):
            item = item[2:]
        item = normalize_etag(item) or ""
        if item:
            tags.add(item)
    return tags


def parse_http_date(value: str | None) -> int | None:
    """Seconds since the epoch of an HTTP date; None if absent or unparsable (ignored)."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    try:
        return int(parsed.timestamp())
    except (OverflowError, ValueError, OSError):
        return None


def conditional_status(headers: Mapping[str, str], etag: str | None,
                       last_modified_s: int | None) -> int | None:
    """304 or 412 per swob's order (If-None-Match, If-Match, If-Modified-Since,
    If-Unmodified-Since), or None to answer normally.

    `etag` is the entity's, unquoted; None (or "") skips the ETag conditions, and a
    `last_modified_s` of None skips the date conditions. A header that is present counts
    even when empty, as in swob.
    """
    if etag:
        if_none_match = headers.get("If-None-Match")
        if if_none_match is not None:
            tags = parse_etags(if_none_match)
            if "*" in tags or etag in tags:
                return 304
        if_match = headers.get("If-Match")
        if if_match is not None:
            tags = parse_etags(if_match)
            if "*" not in tags and etag not in tags:
                return 412
    if last_modified_s is not None:
        since = parse_http_date(headers.get("If-Modified-Since"))
        if since is not None and last_modified_s <= since:
            return 304
        unmodified_since = parse_http_date(headers.get("If-Unmodified-Since"))
        if unmodified_since is not None and last_modified_s > unmodified_since:
            return 412
    return None


def missing_entity_status(headers: Mapping[str, str]) -> int | None:
    """412 when the entity does not exist and If-Match asks for any (RFC 7232: `If-Match: *`
    fails without a current representation), else None."""
    if_match = headers.get("If-Match")
    return 412 if if_match is not None and "*" in parse_etags(if_match) else None


# ---- ranges ----------------------------------------------------------------------------------

def parse_range(value: str | None) -> RangeSpec | None:
    """`bytes=a-b,c-,-d` -> [(a, b), (c, None), (None, d)]; None for a missing or
    syntactically invalid header (RFC 7233: a Range header with any invalid spec is ignored)."""
    if not value:
        return None
    value = value.replace(" ", "")
    if not value.lower().startswith("bytes="):
        return None
    spec: RangeSpec = []
    for item in value[6:].split(","):
        start_text, dash, end_text = item.partition("-")
        if not dash or (start_text and not start_text.isdigit()) or \
                (end_text and not end_text.isdigit()) or not (start_text or end_text):
            return None
        start = int(start_text) if start_text else None
        end = int(end_text) if end_text else None
        if start is not None and end is not None and end < start:
            return None
        spec.append((start, end))
    return spec or None


def ranges_for_length(spec: RangeSpec, length: int) -> list[tuple[int, int]]:
    """Satisfiable half-open [start, stop) ranges of `spec` for a body of `length` bytes.

    [] means 416: nothing is satisfiable, or the request is egregious (too many, overlapping
    or out-of-order ranges, as swob judges it).
    """
    ranges: list[tuple[int, int]] = []
    for start, end in spec:
        if start is None:
            assert end is not None
            if end == 0:
                continue                           # bytes=-0 asks for nothing
            ranges.append((max(0, length - end), length))
        elif start < length:
            ranges.append((start, length if end is None else min(end + 1, length)))
    if len(ranges) > MAX_RANGES:
        return []
    overlaps = 0
    for index, (start1, stop1) in enumerate(ranges):
        for start2, stop2 in ranges[index + 1:]:
            if start1 < start2 < stop1 or start1 < stop2 < stop1 or \
                    start2 < start1 < stop2 or start2 < stop1 < stop2:
                overlaps += 1
                if overlaps > MAX_RANGE_OVERLAPS:
                    return []
    ascending = all(first <= second for first, second in zip(ranges, ranges[1:], strict=False))
    if not ascending and len(ranges) >= MAX_NONASCENDING_RANGES:
        return []
    return ranges


def content_range(start: int, stop: int, length: int) -> str:
    """The Content-Range of bytes [start, stop) of a `length`-byte body."""
    return f"bytes {start}-{stop - 1}/{length}"


def unsatisfiable_content_range(length: int) -> str:
    """The Content-Range a 416 carries."""
    return f"bytes */{length}"


def multipart_byteranges(ranges: list[tuple[int, int]], content_type: str, length: int,
                         open_range: Callable[[int, int], Iterable[bytes]]
                         ) -> tuple[str, int, Iterator[bytes]]:
    """A multipart/byteranges body (swob's framing): (its Content-Type, its exact length,
    its chunks). `open_range(start, stop)` yields the entity's bytes [start, stop); it is
    called lazily, one range at a time, as the chunks are read."""
    boundary = secrets.token_hex(16)
    # Header values are WSGI strings (latin-1 of the wire bytes): encode them back the same way.
    heads = [(f"--{boundary}\r\nContent-Type: {content_type}\r\n"
              f"Content-Range: {content_range(start, stop, length)}\r\n\r\n").encode("latin-1")
             for start, stop in ranges]
    tail = f"--{boundary}--".encode("latin-1")
    # Each part is its head, its bytes, then CRLF; then the closing boundary.
    total = sum(len(head) + (stop - start) + 2
                for head, (start, stop) in zip(heads, ranges, strict=True)) + len(tail)

    def chunks() -> Iterator[bytes]:
        for head, (start, stop) in zip(heads, ranges, strict=True):
            yield head
            yield from open_range(start, stop)
            yield b"\r\n"
        yield tail

    return f"multipart/byteranges;boundary={boundary}", total, chunks()
