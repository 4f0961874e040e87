"""Request checks against the cluster's constraints, with Swift's status codes and messages.

Pure functions over names, header mappings and `common.constraints.Constraints`; each raises a
typed proxy error (400, 411, 412, 413, 501) or returns a normalised value.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from common.constraints import Constraints
from common.timestamp import InvalidTimestamp, Timestamp
from proxy.errors import (
    BadRequest,
    LengthRequired,
    NotImplementedByProxy,
    PreconditionFailed,
    RequestEntityTooLarge,
)
from proxy.paths import check_utf8

MAX_DELETE_AT = 9999999999


def check_account_name(name: str, constraints: Constraints) -> None:
    if len(name) > constraints.max_account_name_length:
        raise BadRequest(f"Account name length of {len(name)} longer than "
                         f"{constraints.max_account_name_length}")


def check_container_name(name: str, constraints: Constraints) -> None:
    if len(name) > constraints.max_container_name_length:
        raise BadRequest(f"Container name length of {len(name)} longer than "
                         f"{constraints.max_container_name_length}")


def check_object_name(name: str, constraints: Constraints) -> None:
    if len(name) > constraints.max_object_name_length:
        raise BadRequest(f"Object name length of {len(name)} longer than "
                         f"{constraints.max_object_name_length}")


def check_listing_limit(limit: str | None, maximum: int) -> None:
    """Listing servers ignore a non-numeric limit; a numeric one above the maximum is a 412."""
    if limit is not None and limit.isdigit() and int(limit) > maximum:
        raise PreconditionFailed(f"Maximum limit is {maximum}")


def check_metadata(headers: Mapping[str, str], target_type: str,
                   constraints: Constraints) -> None:
    """Swift's check_metadata: sizes and counts of `X-<type>-Meta-*` headers (WSGI strings,
    so lengths are in bytes)."""
    prefix = f"x-{target_type.lower()}-meta-"
    meta_count = 0
    meta_size = 0
    for name, value in headers.items():
        if isinstance(value, str) and len(value) > constraints.max_header_size:
            raise BadRequest(f"Header value too long: {name[:constraints.max_meta_name_length]}")
        if not name.lower().startswith(prefix):
            continue
        key = name[len(prefix):]
        if not key:
            raise BadRequest("Metadata name cannot be empty")
        if target_type.lower() in ("account", "container") and \
                (not check_utf8(key) or (value and not check_utf8(value))):
            raise BadRequest("Metadata must be valid UTF-8")
        meta_count += 1
        meta_size += len(key) + len(value)
        if len(key) > constraints.max_meta_name_length:
            raise BadRequest(f"Metadata name too long: {prefix}{key}")
        if len(value) > constraints.max_meta_value_length:
            raise BadRequest(f"Metadata value longer than {constraints.max_meta_value_length}: "
                             f"{prefix}{key}")
        if meta_count > constraints.max_meta_count:
            raise BadRequest(f"Too many metadata items; max {constraints.max_meta_count}")
        if meta_size > constraints.max_meta_overall_size:
            raise BadRequest(f"Total metadata too large; max {constraints.max_meta_overall_size}")


def message_length(headers: Mapping[str, str]) -> int | None:
    """The body length a request declares: an int, or None for chunked (Swift's rules)."""
    transfer_encoding = headers.get("Transfer-Encoding")
    if transfer_encoding:
        encodings = [e.strip().lower() for e in transfer_encoding.split(",")]
        if len(encodings) > 1:
            raise NotImplementedByProxy("Unsupported Transfer-Coding header value specified "
                                        "in Transfer-Encoding header")
        if encodings[-1] != "chunked":
            raise BadRequest("Invalid Transfer-Encoding header value")
        return None
    text = headers.get("Content-Length")
    if text is None:
        return None
    if not text.strip().isdigit():
        raise BadRequest("Invalid Content-Length header value")
    return int(text)


def is_chunked(headers: Mapping[str, str]) -> bool:
    return headers.get("Transfer-Encoding", "").strip().lower() == "chunked"


def check_object_creation(headers: Mapping[str, str], object_name: str,
                          constraints: Constraints,
                          content_type_overridden: bool = False) -> int | None:
    """Swift's check_object_creation for a PUT; the declared length (None: chunked).

    `content_type_overridden` (environ `swift.content_type_overridden`, set by middlewares
    such as SLO) allows Swift's own `swift_*` Content-Type parameters."""
    length = message_length(headers)
    if length is not None and length > constraints.max_file_size:
        raise RequestEntityTooLarge("Your request is too large.")
    if length is None and not is_chunked(headers):
        raise LengthRequired("Missing Content-Length header.")
    check_object_name(object_name, constraints)
    content_type = headers.get("Content-Type")
    if not content_type:
        raise BadRequest("No content type")
    if not check_utf8(content_type):
        raise BadRequest("Invalid Content-Type")
    for param in content_type.split(";")[1:] if not content_type_overridden else ():
        if param.lstrip().lower().startswith("swift_"):
            raise BadRequest("Invalid Content-Type, swift_* is not a valid parameter name.")
    check_metadata(headers, "object", constraints)
    return length


def normalize_delete_at(value: float) -> str:
    return f"{min(max(0, int(value)), MAX_DELETE_AT):010d}"


def check_delete_headers(headers: MutableMapping[str, str], now: Timestamp) -> int | None:
    """Turn X-Delete-After into X-Delete-At (relative to `now`), check X-Delete-At is a future
    integer; the delete-at time, or None."""
    if "X-Delete-After" in headers:
        try:
            delete_after = int(headers["X-Delete-After"])
        except ValueError:
            raise BadRequest("Non-integer X-Delete-After") from None
        delete_at_text = normalize_delete_at(now.seconds + delete_after)
        if int(delete_at_text) <= now.seconds:
            raise BadRequest("X-Delete-After in past")
        headers["X-Delete-At"] = delete_at_text
        del headers["X-Delete-After"]
    if "X-Delete-At" not in headers:
        return None
    try:
        delete_at = int(normalize_delete_at(int(headers["X-Delete-At"])))
    except ValueError:
        raise BadRequest("Non-integer X-Delete-At") from None
    if delete_at <= now.seconds:
        raise BadRequest("X-Delete-At in past")
    headers["X-Delete-At"] = str(delete_at)
    return delete_at


def client_timestamp(headers: Mapping[str, str]) -> Timestamp | None:
    """A client's own X-Timestamp (allowed, as in Swift, for sync tools), checked."""
    text = headers.get("X-Timestamp")
    if text is None:
        return None
    try:
        return Timestamp(text)
    except InvalidTimestamp:
        raise BadRequest(f"X-Timestamp should be a UNIX timestamp float value; was {text!r}") \
            from None
