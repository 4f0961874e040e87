"""The WSGI base of the container and account servers, and the request parsing they share.

- `DbServer`: config (cluster settings, devices, sqlite options), device checks, the per-device
  threads that run sqlite work off the hub (`storage_node.devices.DiskIOPool`), where a
  database lives, and the one mapping of errors to statuses (`DbServer.__call__`):
  HttpError -> its status, ListingRequestError / MetadataError -> 400, DatabaseNotFound -> 404,
  DeviceUnavailable / DatabaseFull -> 507, DatabaseUnavailable -> 503, anything else -> 500;
- responses: `reply` (Swift's short HTML body for errors) and `HttpError`;
- request parsing with Swift's rules and statuses: paths (`split_path`,
  `parse_request_path`), names (`check_names`), timestamps and integer/text headers, and
  metadata headers in (`metadata_updates`) and out (`metadata_headers`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote, quote_plus

import webob

from common.config import Config, ConfigError
from common.constraints import Constraints
from common.http_status import default_body, status_line
from common.timestamp import InvalidTimestamp, Timestamp
from ring.hashing import hash_path
from storage_node import devices
from storage_node.cluster_config import DEFAULT_SWIFT_DIR, ClusterConfig
from storage_node.db import (
    DEFAULT_DB_TIMEOUT_S,
    DatabaseFull,
    DatabaseNotFound,
    DatabaseUnavailable,
    MetadataError,
    MetadataLimits,
    db_file_path,
)
from storage_node.listing import (
    ListingRequestError,
    decode_query,
    get_param,
    listing_content_type,
)

# Accounts whose name starts with this (e.g. .expiring_objects) get their containers created
# by the first object row, as in Swift.
AUTO_CREATE_ACCOUNT_PREFIX = "."
RESERVED = "\x00"                 # Swift's reserved namespace byte
# sqlite threads per device: few, since writers of one database queue on its lock anyway.
DEFAULT_THREADS_PER_DEVICE = 4

T = TypeVar("T")

# ---- responses and errors -------------------------------------------------------------------

def reply(status: int, headers: Mapping[str, Any] | None = None, body: bytes | None = None,
          content_type: str | None = None) -> webob.Response:
    """A response; error statuses without a body get Swift's short HTML body."""
    if body is None:
        body = b""
        if status >= 400:
            body = default_body(status)
            content_type = content_type or "text/html; charset=UTF-8"
    elif content_type is None:
        content_type = "text/plain; charset=UTF-8"
    response = webob.Response(status=status_line(status), body=body)
    response.headers["Content-Type"] = content_type or "text/html; charset=UTF-8"
    for name, value in (headers or {}).items():
        response.headers[name] = str(value)
    return response


class HttpError(Exception):
    """Raised while handling a request to answer at once with `status` (and a plain body)."""

    def __init__(self, status: int, body: str | None = None,
                 headers: Mapping[str, Any] | None = None):
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    def response(self) -> webob.Response:
        return reply(self.status, self.headers,
                     self.body.encode("utf-8") if self.body is not None else None)


# ---- request parsing ---------------------------------------------------------------------------

def wsgi_to_text(value: str) -> str:
    """A WSGI string (latin-1 of the wire bytes) as text; UnicodeError if not UTF-8."""
    return value.encode("latin-1").decode("utf-8")


def text_to_wsgi(value: str) -> str:
    return value.encode("utf-8").decode("latin-1")


def split_path(path: str, min_segments: int, max_segments: int | None = None,
               rest_with_last: bool = False) -> list[str | None]:
    """Swift's `split_path`: ValueError("Invalid path: ...") for a path of the wrong shape.

    `max_segments` defaults to `min_segments`; missing optional segments come back as None;
    with `rest_with_last` the last segment keeps any further slashes (object names).
    """
    if max_segments is None:
        max_segments = min_segments
    invalid = ValueError(f"Invalid path: {quote(path)}")
    if rest_with_last:
        segments = path.split("/", max_segments)
        count = len(segments)
        if segments[0] or count < min_segments + 1 or count > max_segments + 1 or \
                "" in segments[1:min_segments + 1]:
            raise invalid
    else:
        segments = path.split("/", max_segments + 1)
        count = len(segments)
        if segments[0] or count < min_segments + 1 or count > max_segments + 2 or \
                "" in segments[1:min_segments + 1] or \
                (count == max_segments + 2 and segments[max_segments + 1]):
            raise invalid
    parts: list[str | None] = list(segments[1:max_segments + 1])
    if not all(parts[:-1]):
        raise invalid
    parts.extend([None] * (max_segments - len(parts)))
    return parts


def parse_request_path(environ: Mapping[str, Any], min_segments: int, max_segments: int,
                       rest_with_last: bool = False) -> list[str | None]:
    """Device, partition and names from PATH_INFO, as text (Swift's 412 / 400 rules)."""
    try:
        path = wsgi_to_text(environ.get("PATH_INFO", ""))
    except UnicodeError:
        raise HttpError(412, "Invalid UTF8 or contains NULL") from None
    if not path:
        raise HttpError(412, "Invalid UTF8 or contains NULL")
    try:
        parts = split_path(path, min_segments, max_segments, rest_with_last)
    except ValueError as err:
        raise HttpError(400, str(err)) from None
    device, partition = parts[0], parts[1]
    if not device or "/" in device or device in (".", ".."):
        raise HttpError(400, f"Invalid device: {device}")
    if not partition or not partition.isascii() or not partition.isdigit():
        raise HttpError(400, f"Invalid partition: {partition}")
    return parts


def check_names(constraints: Constraints, account: str, container: str | None = None,
                obj: str | None = None) -> None:
    """Swift's name limits (in UTF-8 bytes) and reserved-namespace rules: 400 otherwise."""
    for kind, name, limit in (("Account", account, constraints.max_account_name_length),
                              ("Container", container, constraints.max_container_name_length),
                              ("Object", obj, constraints.max_object_name_length)):
        if not name:
            continue
        length = len(name.encode("utf-8"))
        if length > limit:
            raise HttpError(400, f"{kind} name length of {length} longer than {limit}")
        # Reserved names start with the reserved byte; it may appear nowhere else.
        if RESERVED in name and not name.startswith(RESERVED):
            raise HttpError(400, f"Invalid reserved-namespace {kind.lower()}")


def required_timestamp(headers: Mapping[str, str], name: str = "X-Timestamp") -> Timestamp:
    """Swift's `valid_timestamp`: 400 when missing or not a timestamp."""
    value = headers.get(name)
    if value is None:
        raise HttpError(400, f"Missing {name} header")
    try:
        return Timestamp(value)
    except InvalidTimestamp:
        raise HttpError(400, f"Invalid {name} header") from None


def optional_timestamp(headers: Mapping[str, str], name: str) -> Timestamp | None:
    return required_timestamp(headers, name) if headers.get(name) else None


def int_header(headers: Mapping[str, str], name: str, default: int | None = None) -> int:
    """A non-negative integer header; 400 when missing (without default) or malformed."""
    value = headers.get(name)
    if value is None or not value.strip():
        if default is None:
            raise HttpError(400, f"Missing {name} header")
        return default
    value = value.strip()
    if not value.isascii() or not value.isdigit():
        raise HttpError(400, f"Invalid {name} header")
    return int(value)


def text_header(headers: Mapping[str, str], name: str, required: bool = True) -> str:
    value = headers.get(name)
    if value is None:
        if required:
            raise HttpError(400, f"Missing {name} header")
        return ""
    try:
        return wsgi_to_text(value)
    except UnicodeError:
        raise HttpError(400, f"{name} header must be valid UTF-8") from None


def is_sys_or_user_meta(kind: str, name: str) -> bool:
    """X-<Kind>-Meta-<name> or X-<Kind>-Sysmeta-<name>, with a non-empty <name>."""
    lowered = name.lower()
    return any(lowered.startswith(prefix) and len(lowered) > len(prefix)
               for prefix in (f"x-{kind}-meta-", f"x-{kind}-sysmeta-"))


def metadata_updates(headers: Mapping[str, str], kind: str, timestamp: Timestamp,
                     also_save: Iterable[str] = ()) -> dict[str, tuple[str, str]]:
    """The metadata a PUT/POST sets, as {name: (value, timestamp)}; 400 if not UTF-8."""
    also_save = frozenset(also_save)
    updates = {}
    for name, value in headers.items():
        if name.lower() in also_save or is_sys_or_user_meta(kind, name):
            try:
                text_name, text_value = wsgi_to_text(name), wsgi_to_text(value)
            except UnicodeError:
                raise HttpError(400, "Metadata must be valid UTF-8") from None
            if "\x00" in text_name or "\x00" in text_value:
                raise HttpError(400, "Metadata must be valid UTF-8")
            updates[text_name] = (text_value, timestamp.internal)
    return updates


def metadata_headers(metadata: Mapping[str, list[str]],
                     keep: Callable[[str], bool]) -> dict[str, str]:
    """Stored metadata as response headers (set values only; WSGI strings)."""
    return {text_to_wsgi(name): text_to_wsgi(value)
            for name, (value, _timestamp) in metadata.items() if value != "" and keep(name)}


# ---- the WSGI base -------------------------------------------------------------------------------

class DbServer:
    """What the container and account servers share: config, device checks, the per-device
    sqlite threads, and the one mapping of errors to statuses (`__call__`)."""

    datadir: ClassVar[str] = ""            # "containers" or "accounts"

    def __init__(self, conf: Config, logger: logging.Logger | None, section: str):
        self.logger = logger or logging.getLogger(section)
        self.swift_dir = conf.get_str("swift_dir", DEFAULT_SWIFT_DIR)
        self.cluster = ClusterConfig.load(self.swift_dir)
        self.devices = conf.get_str("devices", "/srv/node")
        self.mount_check = conf.get_bool("mount_check", True)
        self.log_requests = conf.get_bool("log_requests", True)
        self.db_timeout_s = conf.get_float("db_timeout", DEFAULT_DB_TIMEOUT_S, minimum=0.1)
        self.db_synchronous = conf.get_str("db_synchronous", "full").upper()
        if self.db_synchronous not in ("NORMAL", "FULL", "EXTRA"):
            raise ConfigError(f"{conf.source} [{section}] db_synchronous: "
                              "must be normal, full or extra")
        self.pools = devices.DiskIOPool(conf.get_int("db_threads_per_device",
                                                     DEFAULT_THREADS_PER_DEVICE, minimum=1),
                                        name="db")
        self.metadata_limits = MetadataLimits(self.cluster.constraints.max_meta_count,
                                              self.cluster.constraints.max_meta_overall_size)
        self.handlers: dict[str, Callable[[webob.Request], webob.Response]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        started = time.monotonic()
        method = environ.get("REQUEST_METHOD", "")
        try:
            handler = self.handlers.get(method)
            if handler is None and method == "REPLICATE":
                handler = self.replicate          # database replication (db_replicator)
            if handler is None:
                response = reply(405, {"Allow": ", ".join(sorted(self.handlers))})
            else:
                response = handler(webob.Request(environ))
        except HttpError as err:
            response = err.response()
        except ListingRequestError as err:
            response = reply(err.status, body=err.body.encode("utf-8"))
        except MetadataError as err:
            response = reply(400, body=str(err).encode("utf-8"))
        except DatabaseNotFound:
            response = reply(404)
        except (devices.DeviceUnavailable, DatabaseFull) as err:
            self.logger.warning("%s %s: %s", method, environ.get("PATH_INFO"), err)
            response = reply(507)
        except DatabaseUnavailable as err:
            self.logger.error("%s %s: %s", method, environ.get("PATH_INFO"), err)
            response = reply(503)
        except Exception:
            self.logger.exception("%s %s failed", method, environ.get("PATH_INFO"))
            response = reply(500)
        if self.log_requests:
            self.logger.info("%s %s %s %d %.4fs", environ.get("REMOTE_ADDR", "-"), method,
                             environ.get("PATH_INFO", ""), response.status_code,
                             time.monotonic() - started)
        return response(environ, start_response)

    def replicate(self, request: webob.Request) -> webob.Response:
        """REPLICATE /<dev>/<part>/<hash>: see storage_node.db_replication_server."""
        from storage_node.db_replication_server import handle_replicate  # it imports us
        return handle_replicate(self, request)

    def check_device(self, device: str) -> str:
        """The device's path; 507 when it is not a valid, present (mounted) device."""
        if quote_plus(device) != device:      # Swift's check_drive answers 507 too
            raise devices.DeviceUnavailable(device, "not a valid device name")
        return devices.check_device(self.devices, device, self.mount_check)

    def run_db(self, device: str, func: Callable[..., T], *args: Any) -> T:
        """Run blocking sqlite (or disk) work on the device's threads; the hub keeps going."""
        return self.pools.run(device, func, *args)

    def name_hash(self, account: str, container: str | None = None) -> str:
        return hash_path(account, container, secrets=self.cluster.secrets).hex()

    def db_path(self, device_path: str, partition: str, account: str,
                container: str | None = None) -> str:
        return db_file_path(device_path, self.datadir, partition,
                            self.name_hash(account, container))

    def listing_type(self, request: webob.Request) -> str:
        query = decode_query(request.environ.get("QUERY_STRING", ""))
        return listing_content_type(get_param(query, "format"), request.headers.get("Accept"))


