"""What a request to the object server says, parsed and checked with Swift's rules.

- the target: `/<device>/<partition>/<account>/<container>/<object>` (`split_object_path`,
  `ObjectTarget`);
- headers: X-Timestamp (`required_timestamp`), X-Object-Meta-* limits (`check_metadata`),
  X-Delete-At / X-Delete-After (`check_delete_at`), the body's length (`message_length`);
- container updates: which container servers to tell (`container_targets`) and the listing
  values a PUT/POST overrides (`apply_container_overrides`).
A request that breaks a rule raises `HttpError` with Swift's status and message.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from common.constraints import Constraints
from common.timestamp import InvalidTimestamp, Timestamp
from storage_node.async_pending import Target
from storage_node.devices import valid_device_name
from storage_node.http_client import split_host
from storage_node.object_responses import USER_META_PREFIX, HttpError

CONTAINER_UPDATE_OVERRIDE_PREFIXES = ("x-backend-container-update-override-",
                                      "x-object-sysmeta-container-update-override-")


@dataclasses.dataclass(slots=True)
class ObjectTarget:
    """The object a request is for, parsed and validated from its path and headers."""

    device: str
    partition: int
    account: str
    container: str
    obj: str
    policy_index: int

    @property
    def path(self) -> str:
        return f"/{self.account}/{self.container}/{self.obj}"


def split_object_path(path_info: str) -> tuple[str, int, str, str, str]:
    """/<device>/<partition>/<account>/<container>/<object> from a WSGI PATH_INFO."""
    try:
        path = path_info.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise HttpError(412, "Invalid UTF8 or contains NULL") from None
    if "\x00" in path:
        raise HttpError(412, "Invalid UTF8 or contains NULL")
    segments = path.split("/", 5)
    if len(segments) != 6 or segments[0] or not all(segments[1:]):
        raise HttpError(400, f"Invalid path: {path}")
    _, device, partition, account, container, obj = segments
    if not valid_device_name(device):
        raise HttpError(400, f"Invalid device: {device}")
    if not partition.isdigit() or not partition.isascii():
        raise HttpError(400, f"Invalid partition: {partition}")
    return device, int(partition), account, container, obj


def required_timestamp(headers: Mapping[str, str]) -> Timestamp:
    """X-Timestamp, which PUT, POST and DELETE must carry (Swift's valid_timestamp)."""
    value = headers.get("X-Timestamp")
    if value is None:
        raise HttpError(400, "Missing X-Timestamp header")
    try:
        return Timestamp(value)
    except InvalidTimestamp:
        raise HttpError(400, "X-Timestamp should be a UNIX timestamp float value; "
                             f"was {value!r}") from None


def is_utf8(text: str) -> bool:
    try:
        text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return False
    return "\x00" not in text


def check_metadata(headers: Mapping[str, str], constraints: Constraints) -> None:
    """Swift's check_metadata for objects: names, sizes and count of X-Object-Meta-*."""
    count = 0
    size = 0
    for key, value in headers.items():
        if len(value) > constraints.max_header_size:
            raise HttpError(400, f"Header value too long: "
                                 f"{key[:constraints.max_meta_name_length]}")
        if not key.lower().startswith(USER_META_PREFIX):
            continue
        name = key[len(USER_META_PREFIX):]
        if not name:
            raise HttpError(400, "Metadata name cannot be empty")
        count += 1
        size += len(name) + len(value)
        if len(name) > constraints.max_meta_name_length:
            raise HttpError(400, f"Metadata name too long: {key}")
        if len(value) > constraints.max_meta_value_length:
            raise HttpError(400, f"Metadata value longer than "
                                 f"{constraints.max_meta_value_length}: {key}")
        if count > constraints.max_meta_count:
            raise HttpError(400, f"Too many metadata items; max {constraints.max_meta_count}")
        if size > constraints.max_meta_overall_size:
            raise HttpError(400, f"Total metadata too large; max "
                                 f"{constraints.max_meta_overall_size}")


def check_delete_at(headers: Mapping[str, str], timestamp: Timestamp,
                    replication: bool = False) -> int | None:
    """The X-Delete-At to store (X-Delete-After converted), Swift's check_delete_headers."""
    delete_at: int | None = None
    if "X-Delete-After" in headers:
        try:
            delete_after = int(headers["X-Delete-After"])
        except ValueError:
            raise HttpError(400, "Non-integer X-Delete-After") from None
        delete_at = int(timestamp.seconds + delete_after)
        if delete_at <= timestamp.seconds:
            raise HttpError(400, "X-Delete-After in past")
    if "X-Delete-At" in headers:
        try:
            delete_at = int(headers["X-Delete-At"])
        except ValueError:
            raise HttpError(400, "Non-integer X-Delete-At") from None
        if delete_at <= timestamp.seconds and not replication:
            raise HttpError(400, "X-Delete-At in past")
    return delete_at


def message_length(environ: Mapping[str, Any]) -> int | None:
    """The request body's length; None for chunked (Swift's Request.message_length)."""
    transfer_encoding = environ.get("HTTP_TRANSFER_ENCODING")
    if transfer_encoding:
        codings = [c.strip().lower() for c in transfer_encoding.split(",")]
        if len(codings) > 1:
            raise HttpError(501, "Unsupported Transfer-Coding header value specified in "
                                 "Transfer-Encoding header")
        if codings[-1] != "chunked":
            raise HttpError(400, "Invalid Transfer-Encoding header value")
        return None
    text = environ.get("CONTENT_LENGTH")
    if text in (None, ""):
        return None
    try:
        length = int(text)
    except ValueError:
        raise HttpError(400, "Invalid Content-Length header value") from None
    if length < 0:
        raise HttpError(400, "Invalid Content-Length header value")
    return length


# ---- container updates ------------------------------------------------------------------------

def container_targets(headers: Mapping[str, str], logger: logging.Logger) -> list[Target]:
    """The container servers to update (X-Container-Host/Device/Partition); [] when none
    are named or they are malformed (a proxy bug, logged: there is nothing to save)."""
    hosts = [h.strip() for h in headers.get("X-Container-Host", "").split(",") if h.strip()]
    devices = [d.strip() for d in headers.get("X-Container-Device", "").split(",")
               if d.strip()]
    partition_text = headers.get("X-Container-Partition", "").strip()
    if not hosts:
        return []
    if len(hosts) != len(devices) or not partition_text.isdigit():
        # A proxy bug; nothing sensible to save, so say so loudly.
        logger.error("container update impossible: hosts %r, devices %r, "
                     "partition %r", hosts, devices, partition_text)
        return []
    targets = []
    for host, device in zip(hosts, devices, strict=True):
        try:
            ip, port = split_host(host)
        except ValueError:
            logger.error("container update: bad X-Container-Host %r", host)
            continue
        targets.append(Target(ip, port, device, int(partition_text)))
    return targets


def apply_container_overrides(update_headers: dict[str, str],
                              source: Mapping[str, str]) -> None:
    """X-Backend-Container-Update-Override-* / X-Object-Sysmeta-Container-Update-Override-*
    replace the listing's values (SLO, EC), the sysmeta form taking precedence."""
    for prefix in CONTAINER_UPDATE_OVERRIDE_PREFIXES:
        for key, value in source.items():
            if key.lower().startswith(prefix):
                update_headers["X-" + key[len(prefix):].title()] = value
