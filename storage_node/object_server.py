"""The object server: OpenStack Swift's object-server protocol over `storage_node.diskfile`.

Requests are `/<device>/<partition>/<account>/<container>/<object>` with PUT, GET, HEAD, POST
and DELETE, answered with Swift's status codes and headers (see docs/DATA_PATH.md; where it
is silent, Swift's swift/obj/server.py and swob). This module owns the HTTP side only:

- routing, the policy index, and what each method does (PUT streams the body to disk, GET
  and HEAD read it back, POST writes a .meta, DELETE a tombstone);
- the mapping of typed errors to statuses, in one place (`ObjectServer.__call__`):
  DeviceUnavailable -> 507, DiskFileCollision -> 403, DiskFileStateChanged -> 503, anything
  unexpected -> 500 with no traceback in the body;
- container updates after PUT/POST/DELETE: sent in parallel to every `X-Container-Host`,
  waited for at most `container_update_timeout`, and saved as an async pending (durably,
  through the device's I/O pool) for every target that did not accept, before the answer.

`REPLICATE /<device>/<partition>[/<suffixes>]` (the object replicator's suffix hashes) is
handed to `object_replication_server`; requests marked `X-Backend-Replication: True` (data
the replicator pushes) send no container update.

Request parsing and validation (Swift's constraints) are `object_requests`; replies, error
bodies, object headers and the Range/conditional answers are `object_responses` (over the
shared rules of `common.http_rules`).

Disk work goes through `DiskFileManager` and its per-device thread pool: the hub never blocks.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import eventlet
import webob

from common.config import Config, ConfigError, is_true
from common.http_rules import conditional_status, missing_entity_status, parse_etags
from common.timestamp import InvalidTimestamp, Timestamp
from storage_node import async_pending
from storage_node.async_pending import PendingUpdate
from storage_node.cluster_config import DEFAULT_SWIFT_DIR, ClusterConfig
from storage_node.devices import DeviceUnavailable, DiskIOPool, FreeSpaceReserve
from storage_node.diskfile import (
    DiskFile,
    DiskFileCollision,
    DiskFileDeleted,
    DiskFileExpired,
    DiskFileManager,
    DiskFileNotExist,
    DiskFileReader,
    DiskFileStateChanged,
)
from storage_node.expirer import queue_delete_at
from storage_node.object_replication_server import ReplicationHandler
from storage_node.object_requests import (
    ObjectTarget,
    apply_container_overrides,
    check_delete_at,
    check_metadata,
    container_targets,
    is_utf8,
    message_length,
    required_timestamp,
    split_object_path,
)
from storage_node.object_responses import (
    SYSMETA_PREFIX,
    TRANSIENT_SYSMETA_PREFIX,
    USER_META_PREFIX,
    HttpError,
    Reply,
    conditional_etag,
    ignore_range,
    object_headers_for,
    range_reply,
)
from storage_node.recon import ReconEndpoint
from storage_node.updater import send_to_targets

SECTION = "object-server"
DEFAULT_PORT = 6200
DEFAULT_DISK_CHUNK_BYTES = 1024 * 1024
# Bodies up to this size are taken off the network whole and written in one disk trip; larger
# ones stream in pieces of a quarter of the body (at least a network chunk, at most a disk
# chunk), so the disk writes of the first pieces overlap the arrival of the rest (measured:
# whole 1 MiB bodies were 4% slower than Swift at c 8, 1 MiB pieces 10% faster at 64 MiB).
SMALL_BODY_BYTES = 256 * 1024

# Headers a PUT or POST may set besides metadata (Swift's default `allowed_headers`).
DEFAULT_ALLOWED_HEADERS = ("content-disposition", "content-encoding", "x-delete-at",
                           "x-object-manifest", "x-static-large-object", "cache-control",
                           "content-language", "expires", "x-robots-tag")
# Never settable through allowed_headers: they describe the stored bytes.
RESERVED_DATAFILE_META = frozenset({"content-length", "deleted", "etag"})



# ---- the server --------------------------------------------------------------------------------

class ObjectServer:
    """The WSGI app: one instance per worker process."""

    def __init__(self, conf: Config, logger: logging.Logger | None = None):
        self.logger = logger or logging.getLogger("object-server")
        self.cluster = ClusterConfig.load(conf.get_str("swift_dir", DEFAULT_SWIFT_DIR))
        self.constraints = self.cluster.constraints
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
        self.io = DiskIOPool(conf.get_int("disk_io_threads_per_device", 8, minimum=0))
        self.manager = DiskFileManager(
            self.devices, self.cluster.secrets, mount_check=self.mount_check, io=self.io,
            disk_chunk_bytes=self.disk_chunk_bytes,
            reclaim_age_s=conf.get_float("reclaim_age", 7 * 24 * 3600.0, minimum=0.0),
            reserve=reserve, logger=self.logger)
        self.replication = ReplicationHandler(self.manager, self.logger)
        self.recon = ReconEndpoint(conf)
        self._handlers: dict[str, Callable[[webob.Request, ObjectTarget], Reply]] = {
            "PUT": self.PUT, "GET": self.GET, "HEAD": self.GET, "POST": self.POST,
            "DELETE": self.DELETE}

    # ---- WSGI entry and the one error mapping ------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        if ReconEndpoint.handles(environ.get("PATH_INFO", "")):
            return self.recon(environ, start_response)      # GET /recon/<metric>
        started = time.monotonic()
        method = environ.get("REQUEST_METHOD", "")
        try:
            handler = self._handlers.get(method)
            if handler is None and method == "REPLICATE":
                reply = self._replicate(webob.Request(environ))
            elif handler is None:
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
        if policy_index is None or self.cluster.policies.get_by_index(policy_index) is None:
            raise HttpError(503, f"No policy with index {text}")
        return ObjectTarget(device, partition, account, container, obj, policy_index)

    def _replicate(self, request: webob.Request) -> Reply:
        """REPLICATE: suffix hashes for the object replicator (object_replication_server)."""
        text = request.headers.get("X-Backend-Storage-Policy-Index", "0").strip() or "0"
        if not text.isdigit() or self.cluster.policies.get_by_index(int(text)) is None:
            raise HttpError(503, f"No policy with index {text}")
        return self.replication(request, int(text))

    def _diskfile(self, target: ObjectTarget) -> DiskFile:
        return self.manager.get_diskfile(target.device, target.partition, target.account,
                                         target.container, target.obj, target.policy_index)

    @staticmethod
    def _open_expired(request: webob.Request) -> bool:
        return any(is_true(request.headers.get(h))
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

        if size is not None and size <= min(SMALL_BODY_BYTES, self.disk_chunk_bytes):
            # Small: take the whole body off the network first (bad ETags never touch the
            # disk), then open, write and commit in one trip to a disk thread. Room on the
            # device is checked before the body is read (that sends 100 Continue).
            diskfile.check_room(size)
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
        apply_container_overrides(update_headers, headers)
        self._container_update("PUT", request, target, diskfile, update_headers,
                               timestamp.internal)
        if delete_at is not None and str(delete_at) != existing_metadata.get("X-Delete-At"):
            queue_delete_at(self, request, target, diskfile.device_path, delete_at, timestamp)
        return Reply(201, {"ETag": f'"{etag}"'})

    def _put_streamed(self, request: webob.Request, diskfile: DiskFile, timestamp: Timestamp,
                      size: int | None, delete_at: int | None) -> tuple[str, dict[str, str]]:
        """Stream a large or chunked body to disk; returns (etag, metadata) once committed."""
        writer = diskfile.create(size)
        in_flight: Any = None
        try:
            writer.open()
            # The body is read a piece at a time (see SMALL_BODY_BYTES; the WSGI input loops
            # over the socket until it has that much), so each piece is handed to the disk as
            # it came, uncopied: one thread hop per piece. The disk write of one piece runs (in
            # its own green thread) while the next one arrives, so the network and the disk work
            # side by side; writes stay in order, one at a time, and a failed write surfaces
            # at the next wait.
            piece = self.disk_chunk_bytes if size is None else \
                min(self.disk_chunk_bytes, max(self.network_chunk_bytes, size // 4))
            for chunk in self._request_body(request, size, piece):
                if in_flight is not None:
                    in_flight.wait()
                in_flight = eventlet.spawn(writer.write, chunk)
            if in_flight is not None:
                in_flight, waiting = None, in_flight
                waiting.wait()
            if size is not None and writer.bytes_written != size:
                raise HttpError(499)
            etag = writer.etag
            metadata = self._put_metadata(request, timestamp, writer.bytes_written, etag,
                                          delete_at)
            writer.put(metadata)
        finally:
            if in_flight is not None:       # the body failed: let the last write land first
                with contextlib.suppress(Exception):
                    in_flight.wait()
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
        if not is_utf8(content_type):
            raise HttpError(400, "Invalid Content-Type")
        check_metadata(request.headers, self.constraints)
        return size

    def _request_body(self, request: webob.Request, size: int | None,
                      chunk_bytes: int | None = None) -> Iterator[bytes]:
        """The body in chunks of `chunk_bytes` (default: network chunks). A short body is 499,
        a stall 408 (the socket's client_timeout, set by the WSGI server), an overlong chunked
        body 413."""
        stream = request.environ["wsgi.input"]
        remaining = size
        received = 0
        deadline = time.monotonic() + self.max_upload_time_s
        chunk_bytes = chunk_bytes or self.network_chunk_bytes
        while remaining is None or remaining > 0:
            want = chunk_bytes if remaining is None else min(chunk_bytes, remaining)
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
            return Reply(missing_entity_status(headers) or 404, not_found)
        try:
            object_headers = object_headers_for(state, self.allowed_headers)
            etag = conditional_etag(headers, state)
            status = conditional_status(headers, etag, math.ceil(state.timestamp.seconds))
            if status is not None:
                object_headers["Content-Length"] = "0"
                return Reply(status, object_headers, b"")
            if reader is None:
                return Reply(200, object_headers, b"")
            if range_header and not ignore_range(headers, state.metadata):
                reply = range_reply(reader, state, object_headers, range_header)
                if reply is not None:
                    reader = None            # the reply's body owns it now
                    return reply
            reply = Reply(200, object_headers, app_iter=reader.app_iter(reader.chunks_all()))
            reader = None
            return reply
        finally:
            if reader is not None:
                reader.close()

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
        apply_container_overrides(update_headers, state.metadata)
        self._container_update("PUT", request, target, diskfile, update_headers,
                               metadata["X-Timestamp"])
        if delete_at is not None and str(delete_at) != state.metadata.get("X-Delete-At"):
            queue_delete_at(self, request, target, diskfile.device_path, delete_at, timestamp)
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
        targets = container_targets(request.headers, self.logger)
        if not targets:
            return
        if is_true(request.headers.get("X-Backend-Replication")):
            # A replicated copy: the original write told the containers already, and
            # replication must not fan the update out again.
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



def app_factory(conf: Config) -> ObjectServer:
    return ObjectServer(conf)
