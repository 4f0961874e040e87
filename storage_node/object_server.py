"""The object server: OpenStack Swift's object-server protocol over `storage_node.diskfile`.

Requests are `/<device>/<partition>/<account>/<container>/<object>` with PUT, GET, HEAD, POST
and DELETE, answered with Swift's status codes and headers (see docs/DATA_PATH.md; where it
is silent, Swift's swift/obj/server.py and swob). This module owns the HTTP side only:

- routing and request validation (path, X-Timestamp, policy index, Swift's constraints);
- the mapping of typed errors to statuses, in one place (`ObjectServer.__call__`):
  DeviceUnavailable -> 507, DiskFileCollision -> 403, DiskFileStateChanged -> 503, anything
  unexpected -> 500 with no traceback in the body;
- Range (single and multipart/byteranges, 416) and If-Match / If-None-Match /
  If-Modified-Since / If-Unmodified-Since (304/412), with swob's precedence and limits;
- container updates after PUT/POST/DELETE: sent in parallel to every `X-Container-Host`,
  waited for at most `container_update_timeout`, and saved as an async pending (durably,
  through the device's I/O pool) for every target that did not accept, before the answer.

Disk work goes through `DiskFileManager` and its per-device thread pool: the hub never blocks.
"""

from __future__ import annotations

import configparser
import email.utils
import hashlib
import logging
import math
import os
import secrets as random_secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import webob

from common.config import Config, ConfigError, load_section
from common.constraints import Constraints
from common.timestamp import InvalidTimestamp, Timestamp
from ring.errors import RingError
from ring.hashing import load_hash_secrets
from storage_node import async_pending
from storage_node.async_pending import PendingUpdate, Target
from storage_node.devices import DeviceUnavailable, DiskIOPool, FreeSpaceReserve, valid_device_name
from storage_node.diskfile import (
    DiskFile,
    DiskFileCollision,
    DiskFileDeleted,
    DiskFileExpired,
    DiskFileManager,
    DiskFileNotExist,
    DiskFileReader,
    DiskFileStateChanged,
    ObjectState,
)
from storage_node.http_client import split_host
from storage_node.updater import send_to_targets

SECTION = "object-server"
DEFAULT_PORT = 6200
DEFAULT_DISK_CHUNK_BYTES = 256 * 1024

# Headers a PUT or POST may set besides metadata (Swift's default `allowed_headers`).
DEFAULT_ALLOWED_HEADERS = ("content-disposition", "content-encoding", "x-delete-at",
                           "x-object-manifest", "x-static-large-object", "cache-control",
                           "content-language", "expires", "x-robots-tag")
# Never settable through allowed_headers: they describe the stored bytes.
RESERVED_DATAFILE_META = frozenset({"content-length", "deleted", "etag"})
USER_META_PREFIX = "x-object-meta-"
SYSMETA_PREFIX = "x-object-sysmeta-"
TRANSIENT_SYSMETA_PREFIX = "x-object-transient-sysmeta-"
CONTAINER_UPDATE_OVERRIDE_PREFIXES = ("x-backend-container-update-override-",
                                      "x-object-sysmeta-container-update-override-")

# swob's limits on egregious Range requests (RFC 7233 section 6.1).
MAX_RANGES = 50
MAX_RANGE_OVERLAPS = 2
MAX_NONASCENDING_RANGES = 8

STATUS_REASONS = {
    200: ("OK", ""), 201: ("Created", ""), 202: ("Accepted", ""), 204: ("No Content", ""),
    206: ("Partial Content", ""), 304: ("Not Modified", ""),
    400: ("Bad Request", "The server could not comply with the request since it is either "
          "malformed or otherwise incorrect."),
    403: ("Forbidden", "Access was denied to this resource."),
    404: ("Not Found", "The resource could not be found."),
    405: ("Method Not Allowed", "The method is not allowed for this resource."),
    408: ("Request Timeout", "The server has waited too long for the request to be sent by "
          "the client."),
    409: ("Conflict", "There was a conflict when trying to complete your request."),
    411: ("Length Required", "Content-Length header required."),
    412: ("Precondition Failed", "A precondition for this request was not met."),
    413: ("Request Entity Too Large", "The body of your request was too large for this "
          "server."),
    416: ("Requested Range Not Satisfiable", "The Range requested is not available."),
    422: ("Unprocessable Entity", "Unable to process the contained instructions"),
    499: ("Client Disconnect", "The client was disconnected during request."),
    500: ("Internal Error", "The server has either erred or is incapable of performing the "
          "requested operation."),
    501: ("Not Implemented", "The requested method is not implemented by this server."),
    503: ("Service Unavailable", "The server is currently unavailable. Please try again at a "
          "later time."),
    507: ("Insufficient Storage", "There was not enough space to save the resource."),
}


# ---- responses ---------------------------------------------------------------------------------

class Reply:
    """A WSGI response: status, headers, and a body (bytes or an app_iter with close())."""

    def __init__(self, status: int, headers: Mapping[str, str] | None = None,
                 body: bytes | None = None, app_iter: Iterable[bytes] | None = None,
                 content_type: str | None = None):
        self.status = status
        self.headers: dict[str, str] = dict(headers or {})
        self.app_iter = app_iter
        if app_iter is None:
            if body is None:
                body = self._default_body()
                if body:
                    self.headers.setdefault("Content-Type", "text/html; charset=UTF-8")
            elif content_type is None and body:
                content_type = "text/plain"
            self.body = body
            if "Content-Length" not in self.headers:
                self.headers["Content-Length"] = str(len(body))
        if content_type is not None:
            self.headers["Content-Type"] = content_type
        self.headers.setdefault("Content-Type", "text/html; charset=UTF-8")

    def _default_body(self) -> bytes:
        if self.status < 400:
            return b""
        title, explanation = STATUS_REASONS.get(self.status, ("Error", ""))
        return f"<html><h1>{title}</h1><p>{explanation}</p></html>".encode()

    @property
    def status_line(self) -> str:
        return f"{self.status} {STATUS_REASONS.get(self.status, ('Unknown', ''))[0]}"

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        start_response(self.status_line, list(self.headers.items()))
        if self.app_iter is not None:
            if environ.get("REQUEST_METHOD") == "HEAD":
                _close(self.app_iter)
                return [b""]
            return self.app_iter
        if environ.get("REQUEST_METHOD") == "HEAD":
            return [b""]
        return [self.body]


def _close(app_iter: Iterable[bytes]) -> None:
    close = getattr(app_iter, "close", None)
    if close is not None:
        close()


class HttpError(Exception):
    """Raised by request handling to answer at once with `reply`."""

    def __init__(self, status: int, body: str | None = None,
                 headers: Mapping[str, str] | None = None):
        super().__init__(status, body)
        self.reply = Reply(status, headers, body.encode() if body is not None else None)


# ---- request validation ------------------------------------------------------------------------

class ObjectTarget:
    """The object a request is for, parsed and validated from its path and headers."""

    __slots__ = ("device", "partition", "account", "container", "obj", "policy_index")

    def __init__(self, device: str, partition: int, account: str, container: str, obj: str,
                 policy_index: int):
        self.device = device
        self.partition = partition
        self.account = account
        self.container = container
        self.obj = obj
        self.policy_index = policy_index

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


def _is_utf8(text: str) -> bool:
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


def is_object_metadata(key: str, allowed_headers: frozenset[str]) -> bool:
    """Stored metadata a GET/HEAD returns: user meta, sysmeta, transient sysmeta, allowed."""
    lower = key.lower()
    return (lower.startswith(USER_META_PREFIX) and len(lower) > len(USER_META_PREFIX)) or \
        lower.startswith(SYSMETA_PREFIX) or lower.startswith(TRANSIENT_SYSMETA_PREFIX) or \
        lower in allowed_headers


# ---- ranges and conditional requests (swob's rules) -------------------------------------------

def parse_range_header(value: str) -> list[tuple[int | None, int | None]] | None:
    """`bytes=a-b,c-,-d` -> [(a, b), (c, None), (None, d)]; None if syntactically invalid
    (RFC 7233: a Range header with any invalid spec is ignored)."""
    value = value.replace(" ", "")
    if not value.lower().startswith("bytes="):
        return None
    ranges: list[tuple[int | None, int | None]] = []
    for spec in value[6:].split(","):
        start_text, dash, end_text = spec.partition("-")
        if not dash or (start_text and not start_text.isdigit()) or \
                (end_text and not end_text.isdigit()) or not (start_text or end_text):
            return None
        start = int(start_text) if start_text else None
        end = int(end_text) if end_text else None
        if start is not None and end is not None and end < start:
            return None
        ranges.append((start, end))
    return ranges or None


def ranges_for_length(ranges: list[tuple[int | None, int | None]], length: int
                      ) -> list[tuple[int, int]]:
    """Satisfiable [start, stop) ranges for a body of `length` bytes; [] means 416 (none
    satisfiable, or an egregious request: too many, overlapping or out-of-order ranges)."""
    result: list[tuple[int, int]] = []
    for start, end in ranges:
        if start is None:
            assert end is not None
            if end == 0:
                continue                           # bytes=-0 asks for nothing
            result.append((max(0, length - end), length))
        elif start < length:
            result.append((start, length if end is None else min(end + 1, length)))
    if len(result) > MAX_RANGES:
        return []
    overlaps = 0
    for index, (start1, stop1) in enumerate(result):
        for start2, stop2 in result[index + 1:]:
            if start1 < start2 < stop1 or start1 < stop2 < stop1 or \
                    start2 < start1 < stop2 or start2 < stop1 < stop2:
                overlaps += 1
                if overlaps > MAX_RANGE_OVERLAPS:
                    return []
    ascending = all(a <= b for a, b in zip(result, result[1:], strict=False))
    if not ascending and len(result) >= MAX_NONASCENDING_RANGES:
        return []
    return result


def parse_etags(value: str) -> set[str]:
    """An If-Match / If-None-Match list: tags without quotes ('*' stays '*')."""
    tags = set()
    for item in value.split(","):
        item = item.strip()
        if item.startswith("W/"):
            item = item[2:]
        if len(item) >= 2 and item.startswith('"') and item.endswith('"'):
            item = item[1:-1]
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
    If-Unmodified-Since), or None to answer normally. `etag` None means no object."""
    if etag is None:
        if_match = headers.get("If-Match")
        # RFC 7232: If-Match: * fails when there is no current representation.
        return 412 if if_match is not None and "*" in parse_etags(if_match) else None
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


def multipart_part_header(boundary: str, content_type: str, start: int, stop: int,
                          size: int) -> bytes:
    return (f"--{boundary}\r\nContent-Type: {content_type}\r\n"
            f"Content-Range: bytes {start}-{stop - 1}/{size}\r\n\r\n").encode("latin-1")


def multipart_length(ranges: list[tuple[int, int]], boundary: str, content_type: str,
                     size: int) -> int:
    """The exact length of `multipart_chunks`' output, for Content-Length."""
    total = sum(len(multipart_part_header(boundary, content_type, start, stop, size))
                + (stop - start) + 2 for start, stop in ranges)
    return total + len(boundary) + 4


def multipart_chunks(reader: DiskFileReader, ranges: list[tuple[int, int]], boundary: str,
                     content_type: str, size: int) -> Iterator[bytes]:
    """A multipart/byteranges body (the framing swob writes)."""
    for start, stop in ranges:
        yield multipart_part_header(boundary, content_type, start, stop, size)
        yield from reader.chunks_range(start, stop)
        yield b"\r\n"
    yield f"--{boundary}--".encode("latin-1")


# ---- configuration -----------------------------------------------------------------------------

def load_policy_indexes(cluster_conf_path: str) -> frozenset[int]:
    """Indexes of the `[storage-policy:N]` sections of ringstack.conf (policy 0 if none)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(cluster_conf_path)
    except configparser.Error as err:
        raise ConfigError(f"{cluster_conf_path}: {err}") from None
    indexes = set()
    for section in parser.sections():
        if section.startswith("storage-policy:"):
            text = section.split(":", 1)[1]
            if not text.isdigit():
                raise ConfigError(f"{cluster_conf_path}: bad policy section [{section}]")
            indexes.add(int(text))
    return frozenset(indexes or {0})


def load_constraints(cluster_conf_path: str) -> Constraints:
    try:
        return Constraints.from_config(load_section(cluster_conf_path, "swift-constraints"))
    except ConfigError:
        if os.path.exists(cluster_conf_path):
            parser = configparser.ConfigParser(interpolation=None)
            parser.read(cluster_conf_path)
            if parser.has_section("swift-constraints"):
                raise          # a section with a bad value: stop at start
        return Constraints()


# ---- the server --------------------------------------------------------------------------------

class ObjectServer:
    """The WSGI app: one instance per worker process."""

    def __init__(self, conf: Config, logger: logging.Logger | None = None):
        self.logger = logger or logging.getLogger("object-server")
        swift_dir = conf.get_str("swift_dir", "/etc/ringstack")
        cluster_conf = os.path.join(swift_dir, "ringstack.conf")
        try:
            secrets = load_hash_secrets(cluster_conf)
        except RingError as err:
            raise ConfigError(str(err)) from None
        self.constraints = load_constraints(cluster_conf)
        self.policy_indexes = load_policy_indexes(cluster_conf)
        self.devices = conf.get_str("devices", "/srv/node")
        self.mount_check = conf.get_bool("mount_check", True)
        # Larger than Swift's 64 KiB: each disk chunk is one hop to a thread and back, which
        # costs about as much as moving 64 KiB; 256 KiB halves the per-byte cost.
        self.disk_chunk_bytes = conf.get_int("disk_chunk_size", DEFAULT_DISK_CHUNK_BYTES,
                                             minimum=1)
        self.network_chunk_bytes = conf.get_int("network_chunk_size", 65536, minimum=1)
        self.client_timeout_s = conf.get_float("client_timeout", 60.0, minimum=0.01)
        self.max_upload_time_s = conf.get_float("max_upload_time", 86400.0, minimum=1.0)
        self.conn_timeout_s = conf.get_float("conn_timeout", 0.5, minimum=0.01)
        self.node_timeout_s = conf.get_float("node_timeout", 3.0, minimum=0.01)
        self.container_update_timeout_s = conf.get_float("container_update_timeout", 1.0,
                                                         minimum=0.0)
        self.log_requests = conf.get_bool("log_requests", True)
        self.allowed_headers = frozenset(
            h.lower() for h in conf.get_list("allowed_headers", DEFAULT_ALLOWED_HEADERS)
        ) - RESERVED_DATAFILE_META
        try:
            reserve = FreeSpaceReserve.parse(conf.get_str("fallocate_reserve", "1%"))
        except ValueError as err:
            raise ConfigError(f"{conf.source} [{conf.section}] fallocate_reserve: {err}"
                              ) from None
        tpool_threads = conf.get_int("eventlet_tpool_num_threads", 0, minimum=0)
        if tpool_threads:
            DiskIOPool.set_pool_size(tpool_threads)
        self.io = DiskIOPool(conf.get_int("disk_io_threads_per_device", 8, minimum=0))
        self.manager = DiskFileManager(
            self.devices, secrets, mount_check=self.mount_check, io=self.io,
            disk_chunk_bytes=self.disk_chunk_bytes,
            reclaim_age_s=conf.get_float("reclaim_age", 7 * 24 * 3600.0, minimum=0.0),
            reserve=reserve, logger=self.logger)
        self._handlers: dict[str, Callable[[webob.Request, ObjectTarget], Reply]] = {
            "PUT": self.PUT, "GET": self.GET, "HEAD": self.GET, "POST": self.POST,
            "DELETE": self.DELETE}

    # ---- WSGI entry and the one error mapping ------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        started = time.monotonic()
        method = environ.get("REQUEST_METHOD", "")
        try:
            handler = self._handlers.get(method)
            if handler is None:
                reply = Reply(405, {"Allow": ", ".join(sorted(self._handlers))})
            else:
                request = webob.Request(environ)
                reply = handler(request, self._target(request))
        except HttpError as err:
            reply = err.reply
        except DeviceUnavailable as err:
            self.logger.warning("%s %s: device unavailable: %s", method,
                                environ.get("PATH_INFO"), err)
            reply = Reply(507)
        except DiskFileCollision as err:
            self.logger.error("%s %s: %s", method, environ.get("PATH_INFO"), err)
            reply = Reply(403)
        except DiskFileStateChanged:
            reply = Reply(503)
        except Exception:
            self.logger.exception("%s %s failed", method, environ.get("PATH_INFO"))
            reply = Reply(500)
        if self.log_requests:
            self.logger.info("%s %s %s %d %.4fs", environ.get("REMOTE_ADDR", "-"), method,
                             environ.get("PATH_INFO", ""), reply.status,
                             time.monotonic() - started)
        return reply(environ, start_response)

    def _target(self, request: webob.Request) -> ObjectTarget:
        device, partition, account, container, obj = split_object_path(
            request.environ.get("PATH_INFO", ""))
        text = request.headers.get("X-Backend-Storage-Policy-Index", "0").strip() or "0"
        policy_index = int(text) if text.isdigit() else None
        if policy_index is None or policy_index not in self.policy_indexes:
            raise HttpError(503, f"No policy with index {text}")
        return ObjectTarget(device, partition, account, container, obj, policy_index)

    def _diskfile(self, target: ObjectTarget) -> DiskFile:
        return self.manager.get_diskfile(target.device, target.partition, target.account,
                                         target.container, target.obj, target.policy_index)

    @staticmethod
    def _open_expired(request: webob.Request) -> bool:
        return any(request.headers.get(h, "").strip().lower() in ("true", "1", "yes", "on")
                   for h in ("X-Backend-Open-Expired", "X-Backend-Replication"))

    # ---- PUT ---------------------------------------------------------------------------------

    def PUT(self, request: webob.Request, target: ObjectTarget) -> Reply:  # noqa: N802
        headers = request.headers
        timestamp = required_timestamp(headers)
        size = self._check_object_creation(request, target)
        delete_at = check_delete_at(headers, timestamp, self._open_expired(request))
        diskfile = self._diskfile(target)
        try:
            existing = diskfile.read_state(timestamp)
            existing_metadata, existing_timestamp = existing.metadata, existing.data_timestamp
        except DiskFileDeleted as err:              # includes expired objects
            existing_metadata, existing_timestamp = {}, err.timestamp
        except DiskFileNotExist:
            existing_metadata, existing_timestamp = {}, None
        if_none_match = headers.get("If-None-Match")
        if if_none_match is not None and existing_metadata:
            tags = parse_etags(if_none_match)
            if "*" in tags or existing_metadata.get("ETag") in tags:
                raise HttpError(412)
        if existing_timestamp is not None and existing_timestamp >= timestamp:
            raise HttpError(409, headers={"X-Backend-Timestamp": existing_timestamp.internal})

        if size is not None and size <= self.disk_chunk_bytes:
            # Small: take the whole body off the network first (bad ETags never touch the
            # disk), then open, write and commit in one trip to a disk thread.
            body = b"".join(self._request_body(request, size))
            if len(body) != size:
                raise HttpError(499)
            etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
            metadata = self._put_metadata(request, timestamp, size, etag, delete_at)
            diskfile.write_whole(body, metadata)
        else:
            etag, metadata = self._put_streamed(request, diskfile, timestamp, size, delete_at)

        update_headers = {"X-Size": metadata["Content-Length"],
                          "X-Content-Type": metadata["Content-Type"],
                          "X-Timestamp": timestamp.internal, "X-Etag": etag}
        _apply_container_overrides(update_headers, headers)
        self._container_update("PUT", request, target, diskfile, update_headers,
                               timestamp.internal)
        return Reply(201, {"ETag": f'"{etag}"'})

    def _put_streamed(self, request: webob.Request, diskfile: DiskFile, timestamp: Timestamp,
                      size: int | None, delete_at: int | None) -> tuple[str, dict[str, str]]:
        """Stream a large or chunked body to disk; returns (etag, metadata) once committed."""
        writer = diskfile.create(size)
        try:
            writer.open()
            # Network chunks are gathered into disk chunks: one thread hop per disk chunk.
            pending = bytearray()
            for chunk in self._request_body(request, size):
                pending += chunk
                if len(pending) >= self.disk_chunk_bytes:
                    writer.write(bytes(pending))
                    pending.clear()
            if pending:
                writer.write(bytes(pending))
            if size is not None and writer.bytes_written != size:
                raise HttpError(499)
            etag = writer.etag
            metadata = self._put_metadata(request, timestamp, writer.bytes_written, etag,
                                          delete_at)
            writer.put(metadata)
        finally:
            writer.close()
        return etag, metadata

    def _put_metadata(self, request: webob.Request, timestamp: Timestamp, size: int,
                      etag: str, delete_at: int | None) -> dict[str, str]:
        """The .data's metadata; 422 if the client's ETag differs from the body's MD5."""
        sent_etag = request.headers.get("ETag", "").strip().strip('"').lower()
        if sent_etag and sent_etag != etag:
            raise HttpError(422)
        metadata = {"X-Timestamp": timestamp.internal,
                    "Content-Type": request.headers["Content-Type"],
                    "Content-Length": str(size), "ETag": etag}
        metadata.update(self._request_metadata(request, with_sysmeta=True))
        if delete_at is not None:
            metadata["X-Delete-At"] = str(delete_at)
        return metadata

    def _check_object_creation(self, request: webob.Request, target: ObjectTarget
                               ) -> int | None:
        """Swift's check_object_creation; returns the body length (None: chunked)."""
        size = message_length(request.environ)
        if size is not None and size > self.constraints.max_file_size:
            raise HttpError(413, "Your request is too large.")
        if size is None and not request.environ.get("HTTP_TRANSFER_ENCODING"):
            raise HttpError(411, "Missing Content-Length header.")
        if len(target.obj.encode("utf-8")) > self.constraints.max_object_name_length:
            raise HttpError(400, f"Object name length of {len(target.obj)} longer than "
                                 f"{self.constraints.max_object_name_length}")
        content_type = request.headers.get("Content-Type")
        if content_type is None:
            raise HttpError(400, "No content type")
        if not _is_utf8(content_type):
            raise HttpError(400, "Invalid Content-Type")
        check_metadata(request.headers, self.constraints)
        return size

    def _request_body(self, request: webob.Request, size: int | None) -> Iterator[bytes]:
        """The body in network chunks. A short body is 499, a stall 408 (the socket's
        client_timeout, set by the WSGI server), an overlong chunked body 413."""
        stream = request.environ["wsgi.input"]
        remaining = size
        received = 0
        deadline = time.monotonic() + self.max_upload_time_s
        while remaining is None or remaining > 0:
            want = self.network_chunk_bytes if remaining is None else \
                min(self.network_chunk_bytes, remaining)
            try:
                chunk = stream.read(want)
            except TimeoutError:
                raise HttpError(408) from None
            except (OSError, ValueError):
                raise HttpError(499) from None
            if not chunk:
                return
            received += len(chunk)
            if remaining is not None:
                remaining -= len(chunk)
            elif received > self.constraints.max_file_size:
                raise HttpError(413, "Your request is too large.")
            if time.monotonic() > deadline:
                raise HttpError(408)
            yield chunk

    def _request_metadata(self, request: webob.Request, with_sysmeta: bool
                          ) -> dict[str, str]:
        """User meta, transient sysmeta, (on PUT) sysmeta, and the allowed headers."""
        metadata = {}
        for key, value in request.headers.items():
            lower = key.lower()
            if (lower.startswith(USER_META_PREFIX) and len(lower) > len(USER_META_PREFIX)) \
                    or lower.startswith(TRANSIENT_SYSMETA_PREFIX) \
                    or (with_sysmeta and lower.startswith(SYSMETA_PREFIX)):
                metadata[key] = value
        copy = request.headers.get("X-Backend-Replication-Headers", "").split()
        for header in [*copy, *self.allowed_headers]:
            if header in request.headers:
                metadata[header.title()] = request.headers[header]
        return metadata

    # ---- GET and HEAD ------------------------------------------------------------------------

    def GET(self, request: webob.Request, target: ObjectTarget) -> Reply:  # noqa: N802
        headers = request.headers
        now = Timestamp.now()
        if "X-Timestamp" in headers:
            now = required_timestamp(headers)
        is_get = request.method == "GET"
        range_header = headers.get("Range") if is_get else None
        diskfile = self._diskfile(target)
        # A whole-body GET of an object that fits one disk chunk is read and checked before
        # answering, so a corrupt small object is a clean 404.
        prefetch = self.disk_chunk_bytes if is_get else -1
        reader: DiskFileReader | None = None
        try:
            if is_get:
                reader = diskfile.open(now, self._open_expired(request), prefetch)
                state = reader.state
            else:
                state = diskfile.read_state(now, self._open_expired(request))
        except DiskFileNotExist as err:
            not_found = {"X-Backend-Timestamp": err.timestamp.internal} if err.timestamp \
                else {}
            status = conditional_status(headers, None, None) or 404
            return Reply(status, not_found)
        try:
            object_headers = self._object_headers(state)
            etag = _conditional_etag(headers, state)
            status = conditional_status(headers, etag, math.ceil(state.timestamp.seconds))
            if status is not None:
                object_headers["Content-Length"] = "0"
                return Reply(status, object_headers, b"")
            if reader is None:
                return Reply(200, object_headers, b"")
            if range_header and not _ignore_range(headers, state.metadata):
                reply = self._range_reply(reader, state, object_headers, range_header)
                if reply is not None:
                    reader = None            # the reply's body owns it now
                    return reply
            reply = Reply(200, object_headers, app_iter=reader.app_iter(reader.chunks_all()))
            reader = None
            return reply
        finally:
            if reader is not None:
                reader.close()

    def _range_reply(self, reader: DiskFileReader, state: ObjectState,
                     object_headers: dict[str, str], range_header: str) -> Reply | None:
        """206 (single or multipart) or 416; None to ignore the Range header (200)."""
        parsed = parse_range_header(range_header)
        if parsed is None:
            return None
        size = state.content_length
        ranges = ranges_for_length(parsed, size)
        if not ranges:
            reader.close()
            headers = {key: value for key, value in object_headers.items()
                       if key not in ("Content-Length", "Content-Type")}
            headers["Content-Range"] = f"bytes */{size}"
            return Reply(416, headers)
        if len(ranges) == 1:
            start, stop = ranges[0]
            object_headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
            object_headers["Content-Length"] = str(stop - start)
            return Reply(206, object_headers,
                         app_iter=reader.app_iter(reader.chunks_range(start, stop)))
        boundary = random_secrets.token_hex(16)
        content_type = object_headers["Content-Type"]
        object_headers["Content-Type"] = f"multipart/byteranges;boundary={boundary}"
        object_headers["Content-Length"] = str(
            multipart_length(ranges, boundary, content_type, size))
        return Reply(206, object_headers, app_iter=reader.app_iter(
            multipart_chunks(reader, ranges, boundary, content_type, size)))

    def _object_headers(self, state: ObjectState) -> dict[str, str]:
        metadata = state.metadata
        headers = {"Content-Type": metadata.get("Content-Type", "application/octet-stream")}
        for key, value in metadata.items():
            if is_object_metadata(key, self.allowed_headers):
                headers[key] = value
        if "Content-Encoding" in metadata:
            headers["Content-Encoding"] = metadata["Content-Encoding"]
        headers.update({
            "ETag": f'"{state.etag}"',
            "Last-Modified": state.timestamp.http_date,
            "Content-Length": str(state.content_length),
            "Accept-Ranges": "bytes",
            "X-Timestamp": state.timestamp.normal,
            "X-Backend-Timestamp": state.timestamp.internal,
            "X-Backend-Data-Timestamp": state.data_timestamp.internal,
            # Replicated data is durable once written (EC would differ).
            "X-Backend-Durable-Timestamp": state.data_timestamp.internal,
        })
        return headers

    # ---- POST (fast-POST: a .meta file, the data is not copied) -----------------------------

    def POST(self, request: webob.Request, target: ObjectTarget) -> Reply:  # noqa: N802
        headers = request.headers
        timestamp = required_timestamp(headers)
        delete_at = check_delete_at(headers, timestamp, self._open_expired(request))
        check_metadata(headers, self.constraints)
        diskfile = self._diskfile(target)
        try:
            state = diskfile.read_state(timestamp, self._open_expired(request))
        except DiskFileNotExist as err:
            return Reply(404, {"X-Backend-Timestamp": err.timestamp.internal}
                         if err.timestamp else {})
        content_type = headers.get("Content-Type")
        try:
            content_type_timestamp = Timestamp(
                headers.get("Content-Type-Timestamp", timestamp.internal)) \
                if content_type else Timestamp(0)
        except InvalidTimestamp:
            raise HttpError(400, "Invalid Content-Type-Timestamp") from None
        if state.timestamp >= timestamp and \
                state.content_type_timestamp >= content_type_timestamp:
            raise HttpError(409, headers={"X-Backend-Timestamp": state.timestamp.internal})

        if timestamp > state.timestamp:
            metadata = {"X-Timestamp": timestamp.internal}
            metadata.update(self._request_metadata(request, with_sysmeta=False))
            if delete_at is not None:
                metadata["X-Delete-At"] = str(delete_at)
        else:
            # Only the content type is newer: keep the current .meta's metadata.
            metadata = dict(state.metafile_metadata)
            metadata.pop("name", None)
        if content_type and content_type_timestamp > state.content_type_timestamp:
            ctype = {"Content-Type": content_type,
                     "Content-Type-Timestamp": content_type_timestamp.internal}
            metadata.update(ctype)
        else:
            ctype = {"Content-Type": state.metadata.get("Content-Type", ""),
                     "Content-Type-Timestamp": state.content_type_timestamp.internal}
            if state.content_type_timestamp != state.data_timestamp:
                metadata.update(ctype)      # carry a POSTed content type forward
        if "X-Timestamp" not in metadata:
            raise HttpError(409, headers={"X-Backend-Timestamp": state.timestamp.internal})
        diskfile.write_metadata(metadata)

        update_headers = {"X-Size": str(state.content_length),
                          "X-Content-Type": ctype["Content-Type"],
                          "X-Timestamp": state.data_timestamp.internal,
                          "X-Content-Type-Timestamp": ctype["Content-Type-Timestamp"],
                          "X-Meta-Timestamp": metadata["X-Timestamp"],
                          "X-Etag": state.etag}
        _apply_container_overrides(update_headers, state.metadata)
        self._container_update("PUT", request, target, diskfile, update_headers,
                               metadata["X-Timestamp"])
        reply_headers = {"X-Backend-Content-Type": ctype["Content-Type"]}
        reply_headers.update((k, v) for k, v in state.metadata.items()
                             if k.lower().startswith(SYSMETA_PREFIX))
        return Reply(202, reply_headers)

    # ---- DELETE ------------------------------------------------------------------------------

    def DELETE(self, request: webob.Request, target: ObjectTarget) -> Reply:  # noqa: N802
        headers = request.headers
        timestamp = required_timestamp(headers)
        diskfile = self._diskfile(target)
        existing_timestamp: Timestamp | None
        try:
            state = diskfile.read_state(timestamp)
            existing_metadata = state.metadata
            existing_timestamp = state.data_timestamp
            status = 204 if existing_timestamp < timestamp else 409
        except DiskFileExpired as err:
            existing_metadata, existing_timestamp, status = err.metadata, err.timestamp, 404
        except DiskFileDeleted as err:
            existing_metadata, existing_timestamp, status = {}, err.timestamp, 404
        except DiskFileNotExist:
            existing_metadata, existing_timestamp, status = {}, None, 404
        response_timestamp = max(existing_timestamp, timestamp) \
            if existing_timestamp is not None else timestamp

        if "X-If-Delete-At" in headers:
            # The expirer's conditional delete: only if the object still expires then.
            try:
                if_delete_at = Timestamp(headers["X-If-Delete-At"])
            except InvalidTimestamp:
                raise HttpError(400, "Bad X-If-Delete-At header value") from None
            if existing_timestamp is None:
                raise HttpError(404)
            if existing_timestamp >= timestamp:
                raise HttpError(409)
            try:
                delete_at = Timestamp(existing_metadata.get("X-Delete-At") or 0)
            except InvalidTimestamp:
                delete_at = None
            if delete_at != if_delete_at:
                raise HttpError(412, "X-If-Delete-At and X-Delete-At do not match")
            status = 204

        # The tombstone is written even for a 404, so this delete outranks older writes
        # that reach this node later.
        if existing_timestamp is None or existing_timestamp < timestamp:
            diskfile.delete(timestamp)
            self._container_update("DELETE", request, target, diskfile,
                                   {"X-Timestamp": timestamp.internal}, timestamp.internal)
        return Reply(status, {"X-Backend-Timestamp": response_timestamp.internal,
                              "X-Backend-Content-Type":
                                  existing_metadata.get("Content-Type", "")})

    # ---- container updates -------------------------------------------------------------------

    def _container_update(self, method: str, request: webob.Request, target: ObjectTarget,
                          diskfile: DiskFile, update_headers: dict[str, str],
                          pending_timestamp: str) -> None:
        """Tell the container servers; save what they did not accept before answering."""
        targets = self._container_targets(request.headers)
        if not targets:
            return
        update_headers = dict(update_headers)
        update_headers.update({
            "X-Trans-Id": request.headers.get("X-Trans-Id", "-"),
            "Referer": f"{request.method} {request.environ.get('PATH_INFO', '')}",
            "X-Backend-Storage-Policy-Index": str(target.policy_index),
            "User-Agent": f"object-server {os.getpid()}"})
        update = PendingUpdate(method, target.path, update_headers, targets)
        failed = send_to_targets(update, wait_s=self.container_update_timeout_s,
                                 conn_timeout_s=self.conn_timeout_s,
                                 node_timeout_s=self.node_timeout_s, logger=self.logger)
        if failed:
            self.logger.info("saving async pending %s %s for %d container(s)", method,
                             target.path, len(failed))
            self.io.run(target.device, async_pending.save, diskfile.device_path,
                        diskfile.name_hash, pending_timestamp,
                        PendingUpdate(method, target.path, update_headers, failed))

    def _container_targets(self, headers: Mapping[str, str]) -> list[Target]:
        hosts = [h.strip() for h in headers.get("X-Container-Host", "").split(",") if h.strip()]
        devices = [d.strip() for d in headers.get("X-Container-Device", "").split(",")
                   if d.strip()]
        partition_text = headers.get("X-Container-Partition", "").strip()
        if not hosts:
            return []
        if len(hosts) != len(devices) or not partition_text.isdigit():
            # A proxy bug; nothing sensible to save, so say so loudly.
            self.logger.error("container update impossible: hosts %r, devices %r, "
                              "partition %r", hosts, devices, partition_text)
            return []
        targets = []
        for host, device in zip(hosts, devices, strict=True):
            try:
                ip, port = split_host(host)
            except ValueError:
                self.logger.error("container update: bad X-Container-Host %r", host)
                continue
            targets.append(Target(ip, port, device, int(partition_text)))
        return targets


def _apply_container_overrides(update_headers: dict[str, str],
                               source: Mapping[str, str]) -> None:
    """X-Backend-Container-Update-Override-* / X-Object-Sysmeta-Container-Update-Override-*
    replace the listing's values (SLO, EC), the sysmeta form taking precedence."""
    for prefix in CONTAINER_UPDATE_OVERRIDE_PREFIXES:
        for key, value in source.items():
            if key.lower().startswith(prefix):
                update_headers["X-" + key[len(prefix):].title()] = value


def _conditional_etag(headers: Mapping[str, str], state: ObjectState) -> str:
    """The ETag conditions compare with: X-Backend-Etag-Is-At names metadata holding it."""
    for key in headers.get("X-Backend-Etag-Is-At", "").split(","):
        key = key.strip()
        for name, value in state.metadata.items():
            if key and name.lower() == key.lower():
                return value.strip('"')
    return state.etag


def _ignore_range(headers: Mapping[str, str], metadata: Mapping[str, str]) -> bool:
    """X-Backend-Ignore-Range-If-Metadata-Present: serve the whole body (SLO manifests)."""
    names = {h.strip().lower() for h in
             headers.get("X-Backend-Ignore-Range-If-Metadata-Present", "").split(",")}
    names.discard("")
    return bool(names) and any(key.lower() in names for key in metadata)


def app_factory(conf: Config) -> ObjectServer:
    return ObjectServer(conf)
