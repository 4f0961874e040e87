"""The container server: OpenStack Swift's container-server protocol over `container_db`.

Requests (Swift's, see docs/DATA_PATH.md and swift/container/server.py):
- `/<device>/<partition>/<account>/<container>`: PUT (201 created / 202 accepted, 409 for a
  policy conflict or a PUT older than the delete), HEAD and GET (stats headers, metadata, the
  listing in json/xml/plain; 404 when missing or deleted; 204 for an empty plain listing),
  POST (204, metadata), DELETE (204; 409 when not empty; 404 when missing);
- `/<device>/<partition>/<account>/<container>/<object>`: PUT and DELETE of object rows from
  object servers (201 / 204).
This module owns the container requests themselves. It builds on `db_server` (the WSGI base
shared with the account server: error mapping, device checks, sqlite threads, request
parsing), `row_batcher` (group commit of object rows) and `account_reporter` (telling the
account servers about the container, at once or coalesced, with async pendings for failures).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from typing import Any

import webob

from common.config import Config, is_true
from common.timestamp import Timestamp
from storage_node.account_reporter import AccountReporter, account_targets
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
from storage_node.db import DatabaseAlreadyExists, DatabaseNotFound, check_metadata_limits
from storage_node.db_server import (
    AUTO_CREATE_ACCOUNT_PREFIX,
    DbServer,
    HttpError,
    check_names,
    int_header,
    is_sys_or_user_meta,
    metadata_headers,
    metadata_updates,
    optional_timestamp,
    parse_request_path,
    reply,
    required_timestamp,
    text_header,
)
from storage_node.listing import (
    Subdir,
    decode_query,
    get_param,
    listing_body,
    listing_content_type,
    object_record,
    parse_listing_params,
    subdir_record,
)
from storage_node.row_batcher import RowBatcher, RowUpdate

SECTION = "container-server"
DEFAULT_PORT = 6201
# Non-meta headers a container keeps (Swift's save_headers, plus the versioning locations).
SAVE_HEADERS = frozenset({"x-container-read", "x-container-write", "x-container-sync-key",
                          "x-container-sync-to", "x-versions-location",
                          "x-history-location"})

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
                self.cluster.policies.get_by_index(int(stripped)) is None:
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
            new_policy = self.cluster.policies.default.index
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
