"""SLO manifests as data: what a PUT may say, what is stored, and how a GET walks it.

Pure functions, no requests (the middleware in `slo` does those):
- input: `parse_manifest_input` checks a client's segment list as Swift does (every problem
  reported at once) and `check_segment` judges one segment against its HEAD, giving the
  record the manifest stores; `slo_etag_of` is the large object's ETag;
- stored manifests: `parse_stored_manifest` (for GET), `raw_manifest` (the form it was PUT
  in, for `?format=raw`), `split_slo_etag` (container listings);
- `iter_pieces` turns a byte range of the large object into segment pieces, reaching into
  sub-manifests (at most `MAX_RECURSION_DEPTH` deep) only where the range does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import string
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from common.config import is_true
from common.http_rules import normalize_etag, parse_range, ranges_for_length
from proxy.middleware.segments import ListingError, SegmentPiece
from proxy.middleware.subrequest import HttpError, SubResponse, quote

LOGGER = logging.getLogger("proxy.slo")

SLO_HEADER = "X-Static-Large-Object"
MIN_SEGMENT_SIZE = 1                             # bytes; Swift reports it, no longer configurable
MAX_RECURSION_DEPTH = 10
SEGMENT_KEYS = {"data": frozenset(), "path": frozenset({"range", "etag", "size_bytes"})}
_B64_CHARS = frozenset(string.ascii_letters + string.digits + "+/")


# --- manifest input: parsing and validation (pure) -------------------------------------------


def _strict_b64decode(value: object) -> bytes:
    if not isinstance(value, str) or any(c not in _B64_CHARS for c in value.rstrip("=")):
        raise ValueError("not base64")
    try:
        return base64.b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
    except binascii.Error:
        raise ValueError("not base64") from None


def parse_manifest_input(body: bytes, manifest_name: str) -> list[dict[str, Any]]:
    """The client's segment list, checked as Swift checks it; HttpError 400 lists every problem.

    `manifest_name` is `/container/object` of the manifest (it may not list itself). Sizes come
    back as ints, ranges parsed (key `_range_spec`), data segments with normalised padding.
    """
    try:
        segments = json.loads(body)
    except ValueError:
        raise HttpError(400, "Manifest must be valid JSON.\n") from None
    if not isinstance(segments, list):
        raise HttpError(400, "Manifest must be a list.\n")
    errors: list[str] = []
    for index, segment in enumerate(segments):
        problem = _segment_problem(index, segment, len(segments), manifest_name)
        if problem:
            errors.append(f"Index {index}: {problem}")
    if segments and all(isinstance(s, dict) and "data" in s for s in segments):
        errors.append("Inline data segments require at least one object-backed segment.")
    if errors:
        raise HttpError(400, "".join(error + "\n" for error in errors),
                        headers={"Content-Type": "text/plain"})
    return segments


def _segment_problem(index: int, segment: object, count: int,
                     manifest_name: str) -> str | None:
    """What is wrong with one input segment (None if fine); normalises it in place."""
    if not isinstance(segment, dict):
        return "not a JSON object"
    kind = next((key for key in SEGMENT_KEYS if key in segment), None)
    if kind is None:
        return "expected keys to include one of " + " or ".join(repr(k) for k in SEGMENT_KEYS)
    extraneous = sorted(key for key in segment if key not in SEGMENT_KEYS[kind] | {kind})
    if extraneous:
        return "extraneous keys " + ", ".join(json.dumps(key) for key in extraneous)
    if kind == "data":
        try:
            data = _strict_b64decode(segment["data"])
        except ValueError:
            return "data must be valid base64"
        if len(data) < MIN_SEGMENT_SIZE:
            return "too small; each segment must be at least 1 byte."
        segment["data"] = base64.b64encode(data).decode("ascii")
        return None
    if not isinstance(segment["path"], str):
        return '"path" must be a string'
    if not (segment.get("etag") is None or isinstance(segment["etag"], str)):
        return '"etag" must be a string or null (if provided)'
    if "/" not in segment["path"].strip("/"):
        return "path does not refer to an object. Path must be of the form /container/object."
    size = segment.get("size_bytes")
    if size is not None:
        try:
            size = segment["size_bytes"] = int(size)
        except (TypeError, ValueError):
            return "invalid size_bytes"
        if size < MIN_SEGMENT_SIZE and index != count - 1:
            return "too small; each segment must be at least 1 byte."
    if "/" + segment["path"].lstrip("/") == manifest_name:
        return "manifest must not include itself as a segment"
    if segment.get("range"):
        spec = parse_range(f"bytes={segment['range']}")
        if spec is None:
            return "invalid range"
        if len(spec) > 1:
            return "multiple ranges (only one allowed)"
        if size is not None and len(ranges_for_length(spec, size)) != 1:
            return "unsatisfiable range"
        segment["_range_spec"] = spec
    return None


def slo_etag_of(stored_segments: Iterable[dict[str, Any]]) -> str:
    """The large object's ETag: MD5 over the segments' ETags (and ranges), as Swift computes."""
    digest = hashlib.md5(usedforsecurity=False)
    for segment in stored_segments:
        if "data" in segment:
            part = hashlib.md5(base64.b64decode(segment["data"]),
                               usedforsecurity=False).hexdigest()
        elif "raw_data" in segment:
            part = hashlib.md5(segment["raw_data"], usedforsecurity=False).hexdigest()
        elif segment.get("range"):
            part = f"{segment['hash']}:{segment['range']};"
        else:
            part = segment["hash"]
        digest.update(part.encode("ascii"))
    return digest.hexdigest()


# --- stored manifests: reading and walking (pure) --------------------------------------------


def parse_stored_manifest(body: bytes) -> list[dict[str, Any]]:
    """A stored manifest, each segment annotated with `segment_length` (and data decoded)."""
    try:
        segments = json.loads(body)
        for segment in segments:
            if "data" in segment:
                segment["raw_data"] = base64.b64decode(segment.pop("data"))
                segment["segment_length"] = len(segment["raw_data"])
            elif segment.get("range"):
                start, end = (int(x) for x in segment["range"].split("-"))
                segment["segment_length"] = end - start + 1
            else:
                segment["segment_length"] = int(segment["bytes"])
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        LOGGER.error("Unable to load SLO manifest: %s", err)
        raise HttpError(500, "Unable to load SLO manifest") from None
    return segments


def raw_manifest(body: bytes) -> bytes:
    """The stored manifest in the form it was PUT (path/etag/size_bytes)."""
    try:
        segments = json.loads(body)
    except ValueError:
        raise HttpError(500, "Unable to load SLO manifest") from None
    for segment in segments:
        if "data" in segment:
            continue
        for key in ("content_type", "last_modified", "sub_slo"):
            segment.pop(key, None)
        segment["path"] = segment.pop("name", None)
        segment["size_bytes"] = segment.pop("bytes", None)
        segment["etag"] = segment.pop("hash", None)
    return json.dumps(segments, sort_keys=True).encode("utf-8")


def iter_pieces(segments: list[dict[str, Any]], first_byte: int, last_byte: int, *,
                account_path: str, fetch_submanifest: Callable[[str], list[dict[str, Any]]],
                manifest_name: str, depth: int = 1) -> Iterator[SegmentPiece]:
    """The segment pieces that make bytes [first_byte, last_byte] of a large object.

    Sub-manifests are fetched only when the range reaches into them.
    """
    for segment in segments:
        length = segment["segment_length"]
        if first_byte >= length:
            first_byte -= length
            last_byte -= length
            continue
        if last_byte < 0:
            return
        if "raw_data" in segment:
            yield SegmentPiece(data=segment["raw_data"], first_byte=max(0, first_byte),
                               last_byte=min(length - 1, last_byte))
        else:
            if segment.get("range"):
                range_start, range_end = (int(x) for x in segment["range"].split("-"))
            else:
                range_start, range_end = 0, length - 1
            if is_true(segment.get("sub_slo", "")):
                if depth >= MAX_RECURSION_DEPTH:
                    raise ListingError(f"While processing manifest {manifest_name!r}, max "
                                       "recursion depth was exceeded")
                yield from iter_pieces(
                    fetch_submanifest(segment["name"]), range_start + max(0, first_byte),
                    min(range_end, range_start + last_byte), account_path=account_path,
                    fetch_submanifest=fetch_submanifest, manifest_name=manifest_name,
                    depth=depth + 1)
            else:
                yield SegmentPiece(path=account_path + segment["name"],
                                   first_byte=max(0, first_byte) + range_start,
                                   last_byte=min(range_end, range_start + last_byte),
                                   etag=segment.get("hash"), size=int(segment["bytes"]))
        first_byte -= length
        last_byte -= length


# --- checks and listings ----------------------------------------------------------------------


def check_segment(segment: dict[str, Any], head: SubResponse, problems: list[list[str]],
                   allow_empty: bool) -> tuple[int, dict[str, Any] | None]:
    """(bytes it adds, what the manifest stores) for one input segment and its HEAD."""
    name = segment["path"]
    if not head.is_success:
        problems.append([quote(name), head.status])
        return 0, None
    object_length = head.content_length or 0
    length = object_length
    byte_range = None
    if segment.get("_range_spec"):
        ranges = ranges_for_length(segment["_range_spec"], object_length)
        if not ranges:
            problems.append([quote(name), "Unsatisfiable Range"])
        elif ranges != [(0, object_length)]:   # a range of the whole object is no range
            byte_range = f"{ranges[0][0]}-{ranges[0][1] - 1}"
            length = ranges[0][1] - ranges[0][0]
    if length < MIN_SEGMENT_SIZE and not allow_empty:
        problems.append([quote(name), "Too small; each segment must be at least 1 byte."])
    if segment.get("size_bytes") is not None and segment["size_bytes"] != object_length:
        problems.append([quote(name), "Size Mismatch"])
    if segment.get("etag") is not None and normalize_etag(segment["etag"]) != head.etag:
        problems.append([quote(name), "Etag Mismatch"])
    try:
        modified = parsedate_to_datetime(head.headers["Last-Modified"])
    except (KeyError, TypeError, ValueError, IndexError):
        modified = datetime.now(UTC)     # shouldn't happen: every object has one
    record: dict[str, Any] = {
        "name": "/" + name.lstrip("/"),
        "bytes": object_length,
        "hash": head.etag,
        "content_type": head.headers.get("Content-Type", "").split(";")[0],
        "last_modified": modified.strftime("%Y-%m-%dT%H:%M:%S.%f"),
    }
    if byte_range:
        record["range"] = byte_range
    if head.header_true(SLO_HEADER):
        record["sub_slo"] = True
    return length, record


def split_slo_etag(item: dict[str, Any]) -> bool:
    """Move `; slo_etag=...` out of a container listing entry's hash into its own key
    (Swift's listing rewrite); True when the entry had one."""
    if "subdir" in item or ";" not in item.get("hash", ""):
        return False
    etag, *params = (part.strip() for part in item["hash"].split(";"))
    kept = []
    found = False
    for param in params:
        key, _, value = param.partition("=")
        if key.strip() == "slo_etag":
            item["slo_etag"] = f'"{value.strip()}"'
            found = True
        else:
            kept.append(f"; {key.strip()}={value.strip()}")
    if found:
        item["hash"] = etag + "".join(kept)
    return found
