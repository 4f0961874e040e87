"""The container server: OpenStack Swift's container-server protocol over `container_db`.

Requests (Swift's, see docs/DATA_PATH.md and swift/container/server.py):
- `/<device>/<partition>/<account>/<container>`: PUT (201 created / 202 accepted, 409 for a
  policy conflict or a PUT older than the delete), HEAD and GET (stats headers, metadata, the
  listing in json/xml/plain; 404 when missing or deleted; 204 for an empty plain listing),
  POST (204, metadata), DELETE (204; 409 when not empty; 404 when missing);
- `/<device>/<partition>/<account>/<container>/<object>`: PUT and DELETE of object rows from
  object servers (201 / 204).
This module owns the HTTP side of it: request validation, one error mapping
(`DbServer.__call__`), group commit of object rows (`RowBatcher`: concurrent rows for one
container share one transaction, and so one WAL fsync), and telling the account servers
about the container:
- at once after a container PUT or DELETE, to the `X-Account-Host/Device/Partition` the proxy
  names (Swift's behaviour, including 404 when every account server answers 404);
- after object rows change, coalesced: a container is reported at most once every
  `account_update_interval` seconds, to the account ring's nodes (Swift leaves this to its
  container-updater; reporting here keeps account stats fresh without a sweep).
A report that an account server does not accept is saved as an async pending
(`storage_node.async_pending`) before the request is answered, for the updater to replay.

Until a shared `storage_node` module for it exists, this module also holds what the account
server shares with it: `DbServer` (the WSGI base: errors to statuses, device checks, the
per-device thread pools for sqlite), request parsing, and the cluster config (hash secrets,
constraints, storage policies).
"""

from __future__ import annotations

import configparser
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote, quote_plus

import eventlet
import eventlet.event
import webob

from common.config import TRUE_WORDS, Config, ConfigError, load_section
from common.constraints import Constraints
from common.timestamp import InvalidTimestamp, Timestamp
from ring.errors import RingError
from ring.hashing import HashSecrets, hash_path, load_hash_secrets
from ring.ring import Ring
from storage_node import async_pending, devices
from storage_node.async_pending import PendingUpdate, Target
from storage_node.container_db import (
    DATADIR,
    DELETED_CONTENT_TYPE,
    DELETED_ETAG,
    ContainerBroker,
    ContainerInfo,
    ContainerNotEmpty,
    ContainerPolicyConflict,
    ContainerStillDeleted,
    ObjectRecord,
    decode_timestamps,
    update_created_at,
)
from storage_node.db import (
    DEFAULT_DB_TIMEOUT_S,
    DEFAULT_THREADS_PER_DEVICE,
    DatabaseAlreadyExists,
    DatabaseFull,
    DatabaseNotFound,
    DatabaseUnavailable,
    DevicePools,
    MetadataError,
    MetadataLimits,
    check_metadata_limits,
    db_file_path,
)
from storage_node.http_client import split_host
from storage_node.listing import (
    ListingRequestError,
    Subdir,
    decode_query,
    get_param,
    listing_body,
    listing_content_type,
    object_record,
    parse_listing_params,
    subdir_record,
)
from storage_node.updater import is_success, send_update

SECTION = "container-server"
DEFAULT_PORT = 6201
DEFAULT_SWIFT_DIR = "/etc/ringstack"
CLUSTER_CONF = "ringstack.conf"
# Accounts whose name starts with this (e.g. .expiring_objects) get their containers created
# by the first object row, as in Swift.
AUTO_CREATE_ACCOUNT_PREFIX = "."
RESERVED = "\x00"                 # Swift's reserved namespace byte
# Non-meta headers a container keeps (Swift's save_headers, plus the versioning locations).
SAVE_HEADERS = frozenset({"x-container-read", "x-container-write", "x-container-sync-key",
                          "x-container-sync-to", "x-versions-location",
                          "x-history-location"})
ACCOUNT_REPORT_CONCURRENCY = 8    # containers reported at once by one coalesced flush

T = TypeVar("T")

STATUS_REASONS = {
    200: ("OK", ""), 201: ("Created", ""), 202: ("Accepted", ""), 204: ("No Content", ""),
    400: ("Bad Request", "The server could not comply with the request since it is either "
          "malformed or otherwise incorrect."),
    403: ("Forbidden", "Access was denied to this resource."),
    404: ("Not Found", "The resource could not be found."),
    405: ("Method Not Allowed", "The method is not allowed for this resource."),
    406: ("Not Acceptable", "The resource is not available in a format acceptable to your "
          "browser."),
    409: ("Conflict", "There was a conflict when trying to complete your request."),
    412: ("Precondition Failed", "A precondition for this request was not met."),
    500: ("Internal Error", "The server has either erred or is incapable of performing the "
          "requested operation."),
    503: ("Service Unavailable", "The server is currently unavailable. Please try again at a "
          "later time."),
    507: ("Insufficient Storage", "There was not enough space to save the resource."),
}


# ---- responses and errors -------------------------------------------------------------------

def reply(status: int, headers: Mapping[str, Any] | None = None, body: bytes | None = None,
          content_type: str | None = None) -> webob.Response:
    """A response; error statuses without a body get Swift's short HTML body."""
    if body is None:
        body = b""
        if status >= 400:
            title, explanation = STATUS_REASONS.get(status, ("Error", ""))
            body = f"<html><h1>{title}</h1><p>{explanation}</p></html>".encode()
            content_type = content_type or "text/html; charset=UTF-8"
    elif content_type is None:
        content_type = "text/plain; charset=UTF-8"
    response = webob.Response(status=f"{status} {STATUS_REASONS.get(status, ('', ''))[0]}",
                              body=body)
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


# ---- cluster config (ringstack.conf) ----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class StoragePolicies:
    """Policy indexes, names and the default, from `[storage-policy:N]` (Policy-0 if none)."""

    names: Mapping[int, str]
    default_index: int

    @classmethod
    def from_parser(cls, parser: configparser.ConfigParser) -> StoragePolicies:
        names: dict[int, str] = {}
        defaults = []
        for section in parser.sections():
            if not section.startswith("storage-policy:"):
                continue
            text = section.split(":", 1)[1]
            if not text.isdigit():
                raise ConfigError(f"[{section}]: the policy index must be an integer")
            index = int(text)
            names[index] = parser.get(section, "name", fallback="").strip() or \
                f"Policy-{index}"
            if parser.get(section, "default", fallback="").strip().lower() in TRUE_WORDS:
                defaults.append(index)
        if not names:
            return cls({0: "Policy-0"}, 0)
        default = defaults[0] if defaults else (0 if 0 in names else min(names))
        return cls(names, default)


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """What every storage server reads from `<swift_dir>/ringstack.conf`."""

    secrets: HashSecrets
    constraints: Constraints
    policies: StoragePolicies

    @classmethod
    def load(cls, swift_dir: str) -> ClusterConfig:
        path = os.path.join(swift_dir, CLUSTER_CONF)
        try:
            secrets = load_hash_secrets(path)
        except RingError as err:
            raise ConfigError(str(err)) from None
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path)
        except configparser.Error as err:
            raise ConfigError(f"{path}: {err}") from None
        constraints = Constraints()
        if parser.has_section("swift-constraints"):
            constraints = Constraints.from_config(load_section(path, "swift-constraints"))
        return cls(secrets, constraints, StoragePolicies.from_parser(parser))


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


def is_true(value: str | None) -> bool:
    return bool(value) and value.strip().lower() in TRUE_WORDS


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


# ---- the WSGI base shared with the account server ---------------------------------------------

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
        self.pools = DevicePools(conf.get_int("db_threads_per_device",
                                              DEFAULT_THREADS_PER_DEVICE, minimum=1))
        self.metadata_limits = MetadataLimits(self.cluster.constraints.max_meta_count,
                                              self.cluster.constraints.max_meta_overall_size)
        self.handlers: dict[str, Callable[[webob.Request], webob.Response]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        started = time.monotonic()
        method = environ.get("REQUEST_METHOD", "")
        try:
            handler = self.handlers.get(method)
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

    def check_device(self, device: str) -> str:
        """The device's path; 507 when it is not a valid, present (mounted) device."""
        if quote_plus(device) != device:      # Swift's check_drive answers 507 too
            raise devices.DeviceUnavailable(device, "not a valid device name")
        return devices.check_device(self.devices, device, self.mount_check)

    def run_db(self, device: str, func: Callable[..., T], *args: Any) -> T:
        """Run blocking sqlite (or disk) work on the device's threads; the hub keeps going."""
        try:
            return self.pools.run(device, func, *args)
        except OSError as err:
            translated = devices.translate_os_error(err, device)
            if translated is None:
                raise
            raise translated from err

    def name_hash(self, account: str, container: str | None = None) -> str:
        return hash_path(account, container, secrets=self.cluster.secrets).hex()

    def db_path(self, device_path: str, partition: str, account: str,
                container: str | None = None) -> str:
        return db_file_path(device_path, self.datadir, partition,
                            self.name_hash(account, container))

    def listing_type(self, request: webob.Request) -> str:
        query = decode_query(request.environ.get("QUERY_STRING", ""))
        return listing_content_type(get_param(query, "format"), request.headers.get("Accept"))


# ---- account updates ---------------------------------------------------------------------------

def account_targets(headers: Mapping[str, str]) -> list[Target]:
    """The account servers a container PUT/DELETE names (X-Account-Host/Device/Partition).

    Hosts and devices must pair up (Swift answers 400 otherwise: a proxy bug); without
    X-Account-Partition there is nothing to update.
    """
    hosts = [h.strip() for h in headers.get("X-Account-Host", "").split(",")]
    device_names = [d.strip() for d in headers.get("X-Account-Device", "").split(",")]
    partition = headers.get("X-Account-Partition", "").strip()
    if len(hosts) != len(device_names):
        raise HttpError(400, "X-Account-Host and X-Account-Device do not pair up")
    if not partition:
        return []
    if not partition.isascii() or not partition.isdigit():
        raise HttpError(400, "Invalid X-Account-Partition header")
    targets = []
    for host, device in zip(hosts, device_names, strict=True):
        if not host and not device:
            continue
        try:
            ip, port = split_host(host)
        except ValueError:
            raise HttpError(400, f"Invalid X-Account-Host header: {host!r}") from None
        targets.append(Target(ip, port, device, int(partition)))
    return targets


class AccountReporter:
    """Tells account servers a container's put/delete timestamps and counts.

    `send` reports now (container PUT/DELETE); `changed` marks a container whose rows changed
    and reports it within `interval_s`, coalescing every change in between, to the nodes of
    the account ring. Targets that do not accept become one async pending, written durably
    before `send` returns; the updater replays it, and the account server keeps the newest
    report (X-Timestamp), so a late replay does no harm.
    """

    def __init__(self, server: ContainerServer, interval_s: float, conn_timeout_s: float,
                 node_timeout_s: float, ring_path: str):
        self.server = server
        self.interval_s = interval_s
        self.conn_timeout_s = conn_timeout_s
        self.node_timeout_s = node_timeout_s
        self.ring_path = ring_path
        self._ring: Ring | None = None
        self._dirty: dict[tuple[str, str, str, str], None] = {}
        self._flush_scheduled = False

    @property
    def logger(self) -> logging.Logger:
        return self.server.logger

    def send(self, device: str, partition: str, account: str, container: str,
             info: ContainerInfo, targets: list[Target], trans_id: str = "-") -> list[int | None]:
        """Report `info` to `targets` in parallel; their statuses (None: no answer)."""
        if not targets:
            return []
        report_time = Timestamp.now()
        headers = {"X-Put-Timestamp": info.put_timestamp,
                   "X-Delete-Timestamp": info.delete_timestamp,
                   "X-Object-Count": str(info.object_count),
                   "X-Bytes-Used": str(info.bytes_used),
                   "X-Backend-Storage-Policy-Index": str(info.storage_policy_index),
                   # When these numbers were read: the account keeps the newest report.
                   "X-Timestamp": report_time.internal,
                   "X-Trans-Id": trans_id,
                   "User-Agent": f"container-server {os.getpid()}"}
        update = PendingUpdate("PUT", f"/{account}/{container}", headers, targets)
        pile = eventlet.GreenPile(len(targets))
        for target in targets:
            pile.spawn(send_update, update, target, conn_timeout_s=self.conn_timeout_s,
                       node_timeout_s=self.node_timeout_s, logger=self.logger)
        statuses: list[int | None] = list(pile)
        # A 404 means the account is gone or not there yet: retrying cannot help (Swift does
        # not retry it either). Anything else that is not 2xx is retried from a pending.
        failed = [target for target, status in zip(targets, statuses, strict=True)
                  if not is_success(status) and status != 404]
        device_path = os.path.join(self.server.devices, device)
        if failed:
            self.logger.info("saving async pending account update /%s/%s for %d target(s)",
                             account, container, len(failed))
            self.server.run_db(device, async_pending.save, device_path,
                               self.server.name_hash(account, container),
                               report_time.internal,
                               PendingUpdate("PUT", update.path, headers, failed))
        if 404 not in statuses:
            # Every target has it or will get it from the pending: nothing left to report.
            self.server.run_db(device, self._mark_reported, device_path, partition, account,
                               container, info)
        return statuses

    def _mark_reported(self, device_path: str, partition: str, account: str, container: str,
                       info: ContainerInfo) -> None:
        with self.server.broker(device_path, partition, account, container) as broker:
            broker.reported(info)

    # -- coalesced reports after row changes ---------------------------------------------------

    def changed(self, device: str, partition: str, account: str, container: str) -> None:
        if self.interval_s <= 0:
            return
        self._dirty[(device, partition, account, container)] = None
        if not self._flush_scheduled:
            self._flush_scheduled = True
            eventlet.spawn_after(self.interval_s, self.flush)

    def account_ring(self) -> Ring | None:
        """The account ring, loaded on first use (None while there is no ring file)."""
        if self._ring is None:
            if not os.path.exists(self.ring_path):
                return None
            try:
                self._ring = Ring(self.ring_path, self.server.cluster.secrets)
            except RingError as err:
                self.logger.error("cannot load %s: %s", self.ring_path, err)
                return None
        return self._ring

    def flush(self) -> None:
        """Report every container marked since the last flush (in parallel, bounded)."""
        self._flush_scheduled = False
        dirty, self._dirty = list(self._dirty), {}
        ring = self.account_ring()
        if ring is None:
            self.logger.debug("no account ring at %s: %d container report(s) left to the "
                              "next container PUT/DELETE", self.ring_path, len(dirty))
            return
        pool = eventlet.GreenPool(ACCOUNT_REPORT_CONCURRENCY)
        for key in dirty:
            pool.spawn_n(self._report, ring, *key)
        pool.waitall()

    def _report(self, ring: Ring, device: str, partition: str, account: str,
                container: str) -> None:
        try:
            device_path = self.server.check_device(device)
            info = self.server.run_db(device, self._read_info, device_path, partition, account,
                                      container)
            if info is None or not info.needs_report:
                return
            account_partition, nodes = ring.get_nodes(account)
            targets = [Target(node.ip, node.port, node.device, account_partition)
                       for node in nodes]
            self.send(device, partition, account, container, info, targets)
        except Exception:
            self.logger.exception("account report for /%s/%s failed", account, container)

    def _read_info(self, device_path: str, partition: str, account: str,
                   container: str) -> ContainerInfo | None:
        with self.server.broker(device_path, partition, account, container) as broker:
            return broker.get_info() if broker.exists() else None


# ---- group commit of object rows ----------------------------------------------------------------

@dataclasses.dataclass
class RowUpdate:
    """One object row from an object server, and whether it may create its container."""

    record: ObjectRecord
    auto_create: bool
    timestamp: Timestamp


class _Waiter:
    def __init__(self, update: RowUpdate):
        self.update = update
        self.event: eventlet.event.Event = eventlet.event.Event()
        self.error: BaseException | None = None


class RowBatcher:
    """Group commit: concurrent row updates for one container share one transaction.

    A request queues its row. If no flush of that container is running it runs one, for
    everything queued, on the device's sqlite threads; the others wait and are woken with the
    outcome, and the first still waiting when a flush ends runs the next. Every request still
    answers only once its own row is committed, but a busy container pays one commit (one WAL
    fsync) per batch rather than per row, and its requests never contend for sqlite's write
    lock among themselves (sqlite's busy wait sleeps for milliseconds at a time).
    All of this runs on the hub of one process: no locks are needed.
    """

    def __init__(self, run_db: Callable[..., Any], batch_rows_max: int = 1000):
        self.run_db = run_db
        self.batch_rows_max = batch_rows_max
        self._queues: dict[str, list[_Waiter]] = {}
        self._flushing: set[str] = set()

    def submit(self, device: str, key: str, merge: Callable[[list[RowUpdate]], None],
               update: RowUpdate) -> None:
        """Return once `update` is committed (or raise what committing its batch raised)."""
        waiter = _Waiter(update)
        queue = self._queues.setdefault(key, [])
        queue.append(waiter)
        # Someone else flushes unless nobody is at it and nobody was queued before us; a
        # waiter is woken either with its batch done or to run the next flush itself.
        must_wait = key in self._flushing or len(queue) > 1
        if not must_wait or waiter.event.wait() == "flush":
            self._flush(device, key, merge)
        if waiter.error is not None:
            raise waiter.error

    def _flush(self, device: str, key: str, merge: Callable[[list[RowUpdate]], None]) -> None:
        self._flushing.add(key)
        queue = self._queues.pop(key)
        batch, rest = queue[:self.batch_rows_max], queue[self.batch_rows_max:]
        if rest:
            self._queues[key] = rest
        error: BaseException | None = None
        try:
            self.run_db(device, merge, [waiter.update for waiter in batch])
        except BaseException as err:          # every waiter of the batch gets it
            error = err
        finally:
            self._flushing.discard(key)
            for waiter in batch:
                waiter.error = error
                if not waiter.event.ready():      # not the flusher that was handed the turn
                    waiter.event.send("done")
            waiting = self._queues.get(key)
            if waiting:
                waiting[0].event.send("flush")
        if error is not None and not isinstance(error, Exception):
            raise error                       # a kill or exit of this green thread


# ---- the container server ----------------------------------------------------------------------

class ContainerServer(DbServer):
    """The WSGI app: one instance per worker process."""

    datadir = DATADIR

    def __init__(self, conf: Config, logger: logging.Logger | None = None):
        super().__init__(conf, logger, SECTION)
        self.reporter = AccountReporter(
            self,
            interval_s=conf.get_float("account_update_interval", 1.0, minimum=0.0),
            conn_timeout_s=conf.get_float("conn_timeout", 0.5, minimum=0.01),
            node_timeout_s=conf.get_float("node_timeout", 3.0, minimum=0.01),
            ring_path=os.path.join(self.swift_dir, "account.ring"))
        self.rows = RowBatcher(self.run_db)
        self.handlers = {"PUT": self.PUT, "DELETE": self.DELETE, "HEAD": self.HEAD,
                         "GET": self.GET, "POST": self.POST}

    def broker(self, device_path: str, partition: str, account: str,
               container: str) -> ContainerBroker:
        return ContainerBroker(self.db_path(device_path, partition, account, container),
                               account, container, timeout_s=self.db_timeout_s,
                               synchronous=self.db_synchronous)

    def _parse(self, request: webob.Request, min_segments: int = 4, max_segments: int = 5
               ) -> tuple[str, str, str, str, str | None]:
        parts = parse_request_path(request.environ, min_segments, max_segments,
                                   rest_with_last=max_segments == 5)
        device, partition, account, container = (str(p) for p in parts[:4])
        obj = parts[4] if max_segments == 5 else None
        check_names(self.cluster.constraints, account, container, obj or None)
        return device, partition, account, container, obj or None

    def _policy_index(self, headers: Mapping[str, str]) -> int | None:
        """X-Backend-Storage-Policy-Index if sent; 400 when it names no configured policy."""
        text = headers.get("X-Backend-Storage-Policy-Index")
        if text is None:
            return None
        stripped = text.strip()
        if not stripped.isascii() or not stripped.isdigit() or \
                int(stripped) not in self.cluster.policies.names:
            raise HttpError(400, f"Invalid X-Backend-Storage-Policy-Index {text!r}")
        return int(stripped)

    @staticmethod
    def _auto_create(account: str, headers: Mapping[str, str]) -> bool:
        """Swift's `_should_autocreate`: rows for '.'-accounts create their container."""
        header = headers.get("X-Backend-Auto-Create")
        return is_true(header) if header else account.startswith(AUTO_CREATE_ACCOUNT_PREFIX)

    def _merge_rows(self, device_path: str, partition: str, account: str, container: str,
                    updates: list[RowUpdate]) -> None:
        """One batch of object rows (see RowBatcher), in one transaction."""
        with self.broker(device_path, partition, account, container) as broker:
            creator = next((update for update in updates if update.auto_create), None)
            if creator is not None and not broker.exists():
                # An object update's timestamp may carry an offset; the container's must not.
                with contextlib.suppress(DatabaseAlreadyExists):    # lost a race: fine
                    broker.initialize(Timestamp(creator.timestamp.normal).internal,
                                      storage_policy_index=creator.record.storage_policy_index)
            if not broker.exists():
                raise DatabaseNotFound(broker.db_file)
            broker.merge_items(update.record for update in updates)

    def _submit_row(self, request: webob.Request, device: str, device_path: str,
                    partition: str, account: str, container: str, record: ObjectRecord,
                    timestamp: Timestamp) -> None:
        update = RowUpdate(record, self._auto_create(account, request.headers), timestamp)
        self.rows.submit(device, self.db_path(device_path, partition, account, container),
                         lambda batch: self._merge_rows(device_path, partition, account,
                                                        container, batch), update)
        self.reporter.changed(device, partition, account, container)

    # -- PUT -----------------------------------------------------------------------------------

    def PUT(self, request: webob.Request) -> webob.Response:  # noqa: N802 - HTTP method
        device, partition, account, container, obj = self._parse(request)
        timestamp = required_timestamp(request.headers)
        device_path = self.check_device(device)
        if obj:
            return self._put_object(request, device, device_path, partition, account,
                                    container, obj, timestamp)
        return self._put_container(request, device, device_path, partition, account,
                                   container, timestamp)

    def _put_object(self, request: webob.Request, device: str, device_path: str,
                    partition: str, account: str, container: str, obj: str,
                    timestamp: Timestamp) -> webob.Response:
        headers = request.headers
        policy_index = self._policy_index(headers) or 0
        size = int_header(headers, "X-Size")
        content_type = text_header(headers, "X-Content-Type")
        etag = text_header(headers, "X-Etag")
        content_type_time = optional_timestamp(headers, "X-Content-Type-Timestamp")
        meta_time = optional_timestamp(headers, "X-Meta-Timestamp")
        created_at = update_created_at(
            timestamp.internal, content_type_time.internal if content_type_time else None,
            meta_time.internal if meta_time else None)
        self._submit_row(request, device, device_path, partition, account, container,
                         ObjectRecord(obj, created_at, size, content_type, etag, 0,
                                      policy_index), timestamp)
        return reply(201)

    def _put_container(self, request: webob.Request, device: str, device_path: str,
                       partition: str, account: str, container: str,
                       timestamp: Timestamp) -> webob.Response:
        headers = request.headers
        requested_policy = self._policy_index(headers)
        new_policy = requested_policy
        if new_policy is None:
            default_text = headers.get("X-Backend-Storage-Policy-Default", "").strip()
            new_policy = self.cluster.policies.default_index
            if default_text:
                if not default_text.isascii() or not default_text.isdigit():
                    raise HttpError(400, "Invalid X-Backend-Storage-Policy-Default "
                                         f"{default_text!r}")
                new_policy = int(default_text)
        metadata = metadata_updates(headers, "container", timestamp, SAVE_HEADERS)
        # The request's own metadata must fit before anything is created.
        check_metadata_limits(metadata, self.metadata_limits)
        targets = account_targets(headers)

        def work() -> tuple[bool, ContainerInfo]:
            with self.broker(device_path, partition, account, container) as broker:
                created = False
                if not broker.exists():
                    try:
                        broker.initialize(timestamp.internal, storage_policy_index=new_policy)
                        created = True
                    except DatabaseAlreadyExists:
                        pass
                if not created:
                    created = broker.update_or_recreate(timestamp.internal, new_policy,
                                                        requested_policy)
                broker.update_metadata(metadata, self.metadata_limits)
                return created, broker.get_info()

        try:
            created, info = self.run_db(device, work)
        except ContainerPolicyConflict as err:
            raise HttpError(409, headers={"X-Backend-Storage-Policy-Index":
                                          err.current_policy_index}) from None
        except ContainerStillDeleted:
            raise HttpError(409) from None
        statuses = self.reporter.send(device, partition, account, container, info, targets,
                                      headers.get("X-Trans-Id", "-"))
        if statuses and all(status == 404 for status in statuses):
            return reply(404)
        return reply(201 if created else 202,
                     {"X-Backend-Storage-Policy-Index": info.storage_policy_index})

    # -- DELETE --------------------------------------------------------------------------------

    def DELETE(self, request: webob.Request) -> webob.Response:  # noqa: N802 - HTTP method
        device, partition, account, container, obj = self._parse(request)
        timestamp = required_timestamp(request.headers)
        device_path = self.check_device(device)
        if obj:
            policy_index = self._policy_index(request.headers) or 0
            tombstone = ObjectRecord(obj, timestamp.internal, 0, DELETED_CONTENT_TYPE,
                                     DELETED_ETAG, 1, policy_index)
            self._submit_row(request, device, device_path, partition, account, container,
                             tombstone, timestamp)
            return reply(204)
        targets = account_targets(request.headers)

        def delete_container() -> tuple[bool, bool, ContainerInfo]:
            with self.broker(device_path, partition, account, container) as broker:
                if not broker.exists():
                    raise DatabaseNotFound(broker.db_file)
                existed, deleted = broker.delete_container(timestamp.internal)
                return existed, deleted, broker.get_info()

        try:
            existed, deleted, info = self.run_db(device, delete_container)
        except ContainerNotEmpty:
            raise HttpError(409) from None
        if not deleted:
            return reply(409)
        statuses = self.reporter.send(device, partition, account, container, info, targets,
                                      request.headers.get("X-Trans-Id", "-"))
        if statuses and all(status == 404 for status in statuses):
            return reply(404)
        return reply(204 if existed else 404)

    # -- HEAD and GET --------------------------------------------------------------------------

    def _info_headers(self, info: ContainerInfo | None) -> dict[str, Any]:
        """Swift's `gen_resp_headers`: backend headers always, stats only when not deleted."""
        zero = Timestamp(0)
        headers: dict[str, Any] = {
            "X-Backend-Timestamp": Timestamp(info.created_at if info else zero).internal,
            "X-Backend-PUT-Timestamp": Timestamp(info.put_timestamp if info else zero).internal,
            "X-Backend-DELETE-Timestamp":
                Timestamp(info.delete_timestamp if info else zero).internal,
            "X-Backend-Status-Changed-At":
                Timestamp(info.status_changed_at if info else zero).internal,
            "X-Backend-Storage-Policy-Index": info.storage_policy_index if info else 0,
        }
        if info is not None and not info.is_deleted:
            headers.update({
                "X-Container-Object-Count": info.object_count,
                "X-Container-Bytes-Used": info.bytes_used,
                "X-Timestamp": Timestamp(info.created_at).normal,
                "X-PUT-Timestamp": Timestamp(info.put_timestamp).normal,
                "X-Backend-Sharding-State": "unsharded",
                "Last-Modified": Timestamp(info.put_timestamp).http_date,
            })
        return headers

    def _keep_metadata(self, name: str) -> bool:
        return name.lower() in SAVE_HEADERS or is_sys_or_user_meta("container", name)

    def HEAD(self, request: webob.Request) -> webob.Response:  # noqa: N802 - HTTP method
        device, partition, account, container, _obj = self._parse(request)
        content_type = self.listing_type(request)
        device_path = self.check_device(device)

        def work() -> tuple[ContainerInfo | None, dict[str, list[str]]]:
            with self.broker(device_path, partition, account, container) as broker:
                if not broker.exists():
                    return None, {}
                return broker.get_info_and_metadata()

        info, metadata = self.run_db(device, work)
        headers = self._info_headers(info)
        if info is None or info.is_deleted:
            return reply(404, headers)
        headers.update(metadata_headers(metadata, self._keep_metadata))
        headers["Content-Length"] = "0"
        return reply(204, headers, b"", f"{content_type}; charset=utf-8")

    def GET(self, request: webob.Request) -> webob.Response:  # noqa: N802 - HTTP method
        device, partition, account, container, _obj = self._parse(request)
        query = decode_query(request.environ.get("QUERY_STRING", ""))
        params = parse_listing_params(
            query, self.cluster.constraints.container_listing_limit,
            allow_reserved=is_true(request.headers.get("X-Backend-Allow-Reserved-Names")))
        content_type = listing_content_type(get_param(query, "format"),
                                            request.headers.get("Accept"))
        device_path = self.check_device(device)
        requested_policy = self._policy_index(request.headers)

        def work() -> tuple[ContainerInfo | None, dict[str, list[str]], bytes, int]:
            with self.broker(device_path, partition, account, container) as broker:
                if not broker.exists():
                    return None, {}, b"", 0
                info, metadata = broker.get_info_and_metadata()
                if info.is_deleted:
                    return info, metadata, b"", 0
                policy_index = info.storage_policy_index if requested_policy is None \
                    else requested_policy
                entries = broker.list_objects(params, policy_index)
            # Building the body here keeps this CPU work off the hub as well.
            records = [subdir_record(entry.name) if isinstance(entry, Subdir) else
                       object_record(entry[0], decode_timestamps(entry[1])[2], entry[2],
                                     entry[3], entry[4]) for entry in entries]
            return info, metadata, listing_body(records, content_type, "container",
                                                container), policy_index

        info, metadata, body, policy_index = self.run_db(device, work)
        headers = self._info_headers(info)
        if info is None or info.is_deleted:
            return reply(404, headers)
        headers.update(metadata_headers(metadata, self._keep_metadata))
        headers["X-Backend-Record-Type"] = "object"
        headers["X-Backend-Record-Storage-Policy-Index"] = policy_index
        return reply(200 if body else 204, headers, body, f"{content_type}; charset=utf-8")

    # -- POST ----------------------------------------------------------------------------------

    def POST(self, request: webob.Request) -> webob.Response:  # noqa: N802 - HTTP method
        device, partition, account, container, _obj = self._parse(request, 4, 4)
        timestamp = required_timestamp(request.headers)
        device_path = self.check_device(device)
        metadata = metadata_updates(request.headers, "container", timestamp, SAVE_HEADERS)
        check_metadata_limits(metadata, self.metadata_limits)
        touch = not is_true(request.headers.get("X-Backend-No-Timestamp-Update"))

        def work() -> None:
            with self.broker(device_path, partition, account, container) as broker:
                if broker.is_deleted():
                    raise DatabaseNotFound(broker.db_file)
                if touch:
                    broker.update_put_timestamp(timestamp.internal)
                broker.update_metadata(metadata, self.metadata_limits)

        self.run_db(device, work)
        if touch:
            # The account lists the container's put timestamp as its last_modified.
            self.reporter.changed(device, partition, account, container)
        return reply(204)


def app_factory(conf: Config) -> ContainerServer:
    return ContainerServer(conf)
