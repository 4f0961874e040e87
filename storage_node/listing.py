"""Container and account listings as Swift serves them: parameters in, entries, bodies out.

Pure functions only (no I/O, no sqlite, no WSGI), so every rule here is unit-tested on lists:
- query parameters: `decode_query` (the raw query string), `parse_listing_params` (prefix,
  delimiter, marker, end_marker, limit, reverse, path; Swift's 400 for non-UTF-8 values and 412
  for a limit above the maximum), `listing_content_type` (`format=` or `Accept`, Swift's 400/406);
- the walk: `list_entries(fetch, params)` is Swift's `list_objects_iter` loop; it asks `fetch`
  for name ranges (a database, or a sorted list in tests) and folds names into `Subdir`s for a
  delimiter or `path`; `name_range_sql` turns one range into SQL conditions that an index on
  `name` answers without sorting. Fixes over Swift: a prefix ending in U+10FFFF (or U+D7FF)
  no longer fails, and a `path` listing no longer drops the name just past a skipped
  directory ("a0" after "a/b") nor, in reverse, a direct child named "dir/" whose directory
  has deeper names;
- output: json/xml/plain bodies byte for byte as Swift writes them (key order, `subdir`
  entries, xml escaping, `swift_bytes` folded into `bytes`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl
from xml.etree.ElementTree import Element, SubElement, tostring

from common.config import is_true
from common.timestamp import Timestamp

FORMAT_TO_CONTENT_TYPE = {"plain": "text/plain", "json": "application/json",
                          "xml": "application/xml"}
# The order is Swift's: with no Accept header (or */*) a listing is plain text.
LISTING_CONTENT_TYPES = ("text/plain", "application/json", "application/xml", "text/xml")
# Names beginning with this byte are Swift's reserved namespace; listings hide them unless the
# caller sends X-Backend-Allow-Reserved-Names.
RESERVED = "\x00"
_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


class ListingRequestError(ValueError):
    """A listing request Swift refuses: `status` is the HTTP status, `body` Swift's message."""

    def __init__(self, status: int, body: str):
        super().__init__(body)
        self.status = status
        self.body = body


# ---------------------------------------------------------------------------------------------
# Query parameters


def decode_query(query_string: str) -> dict[str, str]:
    """The raw query as {name: value}, values still WSGI strings (latin-1 of the wire bytes).

    The last value of a repeated name wins, as with Swift's `req.params`. Values are decoded
    to UTF-8 only when read (`get_param`), so a bad byte in a parameter nobody reads is no error.
    """
    return dict(parse_qsl(query_string, keep_blank_values=True, encoding="latin-1"))


def get_param(query: Mapping[str, str], name: str) -> str | None:
    """One parameter as text; Swift's 400 when its bytes are not UTF-8."""
    value = query.get(name)
    if not value:
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise ListingRequestError(400, f'"{name}" parameter not valid UTF-8') from None


@dataclasses.dataclass(frozen=True)
class ListingParams:
    """What a listing asks for, as Swift's brokers take it (None: not given)."""

    limit: int
    marker: str = ""
    end_marker: str | None = None
    prefix: str | None = None
    delimiter: str | None = None
    path: str | None = None
    reverse: bool = False
    allow_reserved: bool = False


def parse_listing_params(query: Mapping[str, str], max_limit: int, allow_path: bool = True,
                         allow_reserved: bool = False) -> ListingParams:
    """Swift's `validate_container_params` / account GET parsing.

    As in Swift, a `limit` that is not a plain number (`abc`, `-1`) is ignored and the maximum
    is used; a number above the maximum is 412 "Maximum limit is N".
    """
    given_limit = get_param(query, "limit")
    limit = max_limit
    if given_limit and given_limit.isascii() and given_limit.isdigit():
        limit = int(given_limit)
        if limit > max_limit:
            raise ListingRequestError(412, f"Maximum limit is {max_limit}")
    reverse = get_param(query, "reverse")
    return ListingParams(
        limit=limit,
        marker=get_param(query, "marker") or "",
        end_marker=get_param(query, "end_marker"),
        prefix=get_param(query, "prefix"),
        delimiter=get_param(query, "delimiter"),
        path=get_param(query, "path") if allow_path else None,
        reverse=is_true(reverse),
        allow_reserved=allow_reserved)


# Swift's Accept parsing (swob.Accept): RFC 2616 tokens; a malformed header is 400, not ignored.
_TOKEN = r'[^()<>@,;:\"/\[\]?={}\x00-\x20\x7f]+'
_QUOTED_STRING = r'"(?:[^"\\]|(?:\\.))*"'
_EXTENSION = r"(?:\s*;\s*(?:" + _TOKEN + r")\s*=\s*" + r"(?:" + _TOKEN + r"|" + \
    _QUOTED_STRING + r"))"
_ACCEPT_PATTERN = re.compile(r"^\s*(" + _TOKEN + r")/(" + _TOKEN + r")(" + _EXTENSION +
                             r"*?\s*)$")


def _accept_patterns(header: str) -> list[str]:
    types = []
    for item in header.split(","):
        found = _ACCEPT_PATTERN.findall(item)
        if not found:
            raise ValueError("Invalid accept header")
        main, sub, parameters = found[0]
        quality, seen_quality = 1.0, False
        for parameter in (p.strip() for p in parameters.split(";")):
            if not parameter:
                continue
            name, value = parameter.split("=")
            if name.strip() == "q":
                if seen_quality:
                    raise ValueError('Multiple "q" params')
                seen_quality = True
                quality = float(value.strip())
        pattern = "^" + (_TOKEN if main == "*" else re.escape(main)) + "/" + \
            (_TOKEN if sub == "*" else re.escape(sub)) + "$"
        types.append((pattern, quality, "*" not in (main, sub)))
    # Highest quality first; among equals, exact types before globs (Swift's order).
    types.sort(reverse=True, key=lambda t: (t[1], t[2]))
    return [t[0] for t in types]


def listing_content_type(format_value: str | None, accept: str | None) -> str:
    """The response type of a listing or HEAD: `format=` wins over Accept, as in Swift."""
    if format_value:
        accept = FORMAT_TO_CONTENT_TYPE.get(format_value.lower(), "text/plain")
    if not accept:
        return LISTING_CONTENT_TYPES[0]
    try:
        patterns = _accept_patterns(accept)
    except ValueError:
        raise ListingRequestError(400, "Invalid Accept header") from None
    for pattern in patterns:
        for option in LISTING_CONTENT_TYPES:
            if re.match(pattern, option):
                return option
    raise ListingRequestError(406, "Not Acceptable")


# ---------------------------------------------------------------------------------------------
# The walk over names


@dataclasses.dataclass(frozen=True)
class Subdir:
    """A delimiter "directory": every name under `name` folded into one entry."""

    name: str


@dataclasses.dataclass(frozen=True)
class NameRange:
    """One fetch: names above `lower` (inclusive if `lower_inclusive`; None: no bound), below
    `upper` (None: no bound), in name order (descending if `reverse`), at most `limit`."""

    lower: str | None
    lower_inclusive: bool
    upper: str | None
    reverse: bool
    limit: int


Row = Sequence[Any]                       # a broker row; row[0] is the name
Fetch = Callable[[NameRange], Iterable[Row]]


def _next_code_point(char: str) -> str | None:
    """The character after `char` that can be stored as UTF-8 (None after U+10FFFF)."""
    point = ord(char) + 1
    if point in _SURROGATES:
        point = _SURROGATES.stop
    return chr(point) if point <= _MAX_CODE_POINT else None


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string above every string starting with `prefix` (None: there is none).

    Swift writes `prefix[:-1] + chr(ord(prefix[-1]) + 1)`; this also survives a prefix ending
    in U+D7FF or U+10FFFF, where that expression fails.
    """
    while prefix:
        following = _next_code_point(prefix[-1])
        if following is not None:
            return prefix[:-1] + following
        prefix = prefix[:-1]
    return None


def _past_subdir(name: str, end: int, delimiter: str) -> str:
    """A marker just past every name that starts with `name[:end] + delimiter`."""
    directory = name[:end] + delimiter
    bound = prefix_upper_bound(directory)
    if bound is None:
        # The directory is all U+10FFFF: nothing sorts after it but its own names, and no
        # name (at most 1024 bytes) reaches this far.
        return directory + chr(_MAX_CODE_POINT) * 1025
    return bound


def list_entries(fetch: Fetch, params: ListingParams) -> list[Row | Subdir]:
    """Swift's `list_objects_iter` / `list_containers_iter` walk over a sorted namespace.

    Without a delimiter one fetch answers. With one (or `path`), each name that has the
    delimiter after the prefix becomes a `Subdir` and the walk jumps past that directory with a
    fresh fetch, so a listing costs one index range scan per directory, never a full scan.
    """
    limit = params.limit
    marker, end_marker = params.marker, params.end_marker
    prefix, delimiter, path = params.prefix, params.delimiter, params.path
    reverse = params.reverse
    if reverse:
        marker, end_marker = end_marker, marker
    if path is not None:
        prefix = path
        if path:
            prefix = path = path.rstrip("/") + "/"
        delimiter = "/"
    elif delimiter and not prefix:
        prefix = ""
    end_prefix = prefix_upper_bound(prefix) if prefix else None
    original_marker = marker
    force_inclusive = False
    results: list[Row | Subdir] = []
    while len(results) < limit:
        upper: str | None = None
        if end_marker and (not prefix or end_prefix is None or end_marker < end_prefix):
            upper = end_marker
        elif prefix:
            upper = end_prefix
        lower: str | None = None
        lower_inclusive = False
        if force_inclusive:
            lower, lower_inclusive, force_inclusive = marker, True, False
        elif marker and (not prefix or marker >= prefix):
            lower = marker
        elif prefix:
            lower, lower_inclusive = prefix, True
        rows = fetch(NameRange(lower, lower_inclusive, upper, reverse, limit - len(results)))
        if prefix is None or not delimiter:
            return list(rows)
        row_count = 0
        for row in rows:
            row_count += 1
            name = row[0]
            if reverse:
                end_marker = name
            else:
                marker = name
            if len(results) >= limit:
                return results
            end = name.find(delimiter, len(prefix))
            if path is not None:
                if name == path:
                    continue
                if end >= 0 and len(name) > end + len(delimiter):
                    # Deeper than one level under path: skip that whole directory. Going up,
                    # resume at (not after) the first name past it; going down, stop just
                    # above "dir/" itself, a direct child. (Swift skips both of those names.)
                    if reverse:
                        end_marker = name[:end + len(delimiter)] + RESERVED
                    else:
                        marker = _past_subdir(name, end, delimiter)
                        force_inclusive = True
                    break
            elif end >= 0:
                if reverse:
                    end_marker = name[:end + len(delimiter)]
                else:
                    marker = _past_subdir(name, end, delimiter)
                    force_inclusive = True
                dir_name = name[:end + len(delimiter)]
                if dir_name != original_marker:
                    results.append(Subdir(dir_name))
                break
            results.append(row)
        if not row_count:
            break
    return results


def name_range_sql(name_range: NameRange, allow_reserved: bool,
                   column: str = "name") -> tuple[list[str], list[str]]:
    """SQL conditions and arguments for one fetch; ORDER BY and LIMIT are the caller's."""
    conditions: list[str] = []
    args: list[str] = []
    if name_range.upper is not None:
        conditions.append(f"{column} < ?")
        args.append(name_range.upper)
    if name_range.lower is not None:
        conditions.append(f"{column} >= ?" if name_range.lower_inclusive else f"{column} > ?")
        args.append(name_range.lower)
    if not allow_reserved:
        conditions.append(f"{column} >= ?")
        args.append(chr(ord(RESERVED) + 1))
    return conditions, args


def filter_sorted_names(rows: Sequence[Row], name_range: NameRange,
                        allow_reserved: bool = False) -> list[Row]:
    """`fetch` over an in-memory list sorted by name: the oracle the SQL must agree with."""
    def wanted(name: str) -> bool:
        if name_range.upper is not None and not name < name_range.upper:
            return False
        if name_range.lower is not None:
            if name_range.lower_inclusive and not name >= name_range.lower:
                return False
            if not name_range.lower_inclusive and not name > name_range.lower:
                return False
        return allow_reserved or not name.startswith(RESERVED)

    chosen = [row for row in rows if wanted(row[0])]
    if name_range.reverse:
        chosen.reverse()
    return chosen[:name_range.limit]


# ---------------------------------------------------------------------------------------------
# Records and bodies

_RFC_TOKEN = r'[^()<>@,;:\"/\[\]?={}\x00-\x20\x7f]+'
_CONTENT_TYPE_PARAMETER = re.compile(r"(?:\s*;\s*(" + _RFC_TOKEN + r")\s*(?:=\s*(" +
                                     _RFC_TOKEN + r'|"(?:[^"\\]|\\.)*"))?)')


def extract_swift_bytes(content_type: str) -> tuple[str, str | None]:
    """Split Swift's `;swift_bytes=N` (the real size of a manifest) from a content type.

    As Swift does, the other parameters are rewritten as `;k=v` (spaces after `;` dropped).
    """
    if ";" not in content_type:
        return content_type, None
    base, parameters = content_type.split(";", 1)
    swift_bytes = None
    for key, value in _CONTENT_TYPE_PARAMETER.findall(";" + parameters):
        key, value = key.strip(), value.strip()
        if key == "swift_bytes":
            swift_bytes = value
        else:
            base += f";{key}={value}"
    return base, swift_bytes


def object_record(name: str, last_modified: Timestamp, size: int, content_type: str,
                  etag: str) -> dict[str, Any]:
    """One object of a container listing as Swift's `update_object_record` builds it."""
    content_type, swift_bytes = extract_swift_bytes(content_type)
    if swift_bytes is not None and swift_bytes.isascii() and swift_bytes.isdigit():
        size = int(swift_bytes)         # else Swift logs it and keeps the row's size
    return {"bytes": size, "hash": etag, "name": name, "content_type": content_type,
            "last_modified": last_modified.isoformat}


def container_record(name: str, object_count: int, bytes_used: int, put_timestamp: Timestamp,
                     policy_name: str | None) -> dict[str, Any]:
    """One container of an account listing (Swift 2.38 adds the policy name when known)."""
    record: dict[str, Any] = {"name": name, "count": object_count, "bytes": bytes_used,
                              "last_modified": put_timestamp.isoformat}
    if policy_name is not None:
        record["storage_policy"] = policy_name
    return record


def subdir_record(name: str) -> dict[str, Any]:
    return {"subdir": name}


def _to_xml(document: Element) -> bytes:
    body = tostring(document, encoding="UTF-8").replace(
        b"<?xml version='1.0' encoding='UTF-8'?>", b'<?xml version="1.0" encoding="UTF-8"?>', 1)
    if not body.startswith(b"<?xml "):
        body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + body
    return body


def container_listing_xml(records: Iterable[Mapping[str, Any]], container: str) -> bytes:
    document = Element("container", name=container)
    for record in records:
        if "subdir" in record:
            subdir = SubElement(document, "subdir", name=record["subdir"])
            SubElement(subdir, "name").text = record["subdir"]
        else:
            entry = SubElement(document, "object")
            for field in ("name", "hash", "bytes", "content_type", "last_modified"):
                SubElement(entry, field).text = str(record[field])
    return _to_xml(document)


def account_listing_xml(records: Iterable[Mapping[str, Any]], account: str) -> bytes:
    document = Element("account", name=account)
    document.text = "\n"
    for record in records:
        if "subdir" in record:
            entry = SubElement(document, "subdir", name=record["subdir"])
        else:
            entry = SubElement(document, "container")
            for field in ("name", "count", "bytes", "last_modified"):
                SubElement(entry, field).text = str(record[field])
            if "storage_policy" in record:
                SubElement(entry, "storage_policy").text = str(record["storage_policy"])
        entry.tail = "\n"
    return _to_xml(document)


def listing_plain(records: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join((record["name"] if "name" in record else record["subdir"]).encode("utf-8") +
                    b"\n" for record in records)


def listing_json(records: Sequence[Mapping[str, Any]]) -> bytes:
    # Swift's servers write ASCII JSON (non-ASCII names as \\u escapes).
    return json.dumps(list(records)).encode("ascii")


def listing_body(records: Sequence[Mapping[str, Any]], content_type: str, kind: str,
                 name: str) -> bytes:
    """The body for a negotiated type; `kind` is "container" or "account", `name` its name."""
    if content_type.endswith("/xml"):
        if kind == "container":
            return container_listing_xml(records, name)
        return account_listing_xml(records, name)
    if content_type.endswith("/json"):
        return listing_json(records)
    return listing_plain(records)
