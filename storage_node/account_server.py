"""The account server: OpenStack Swift's account-server protocol over `account_db`.

Requests (Swift's, see docs/DATA_PATH.md and swift/account/server.py):
- `/<device>/<partition>/<account>`: PUT (201 created / 202 accepted; 403 "Recently deleted"
  for an account awaiting the reaper), HEAD (204 with X-Account-Container-Count,
  X-Account-Object-Count, X-Account-Bytes-Used, X-Timestamp, X-PUT-Timestamp, per-policy
  stats and metadata), GET (the container listing: json `name`, `count`, `bytes`,
  `last_modified`, `storage_policy`; xml; plain, 204 when empty), POST (204, metadata),
  DELETE (204; the account is marked deleted, X-Account-Status: Deleted, for the reaper);
- `/<device>/<partition>/<account>/<container>`: PUT of a container row from a container
  server (201, or 204 when the row says deleted; 404 when the account is missing or deleted).
Request handling, error mapping, device checks and the sqlite threads come from
`db_server.DbServer`, shared with the container server.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import webob

from common.config import Config, is_true
from common.timestamp import Timestamp
from storage_node.account_db import DATADIR, AccountBroker, AccountInfo
from storage_node.db import DatabaseAlreadyExists, DatabaseNotFound, check_metadata_limits
from storage_node.db_server import (
    AUTO_CREATE_ACCOUNT_PREFIX,
    DbServer,
    check_names,
    int_header,
    is_sys_or_user_meta,
    metadata_headers,
    metadata_updates,
    optional_timestamp,
    parse_request_path,
    reply,
    required_timestamp,
)
from storage_node.listing import (
    Subdir,
    container_record,
    decode_query,
    get_param,
    listing_body,
    listing_content_type,
    parse_listing_params,
    subdir_record,
)

SECTION = "account-server"
DEFAULT_PORT = 6202
DELETED_STATUS_HEADERS = {"X-Account-Status": "Deleted"}


class AccountServer(DbServer):
    """The WSGI app: one instance per worker process."""

    datadir = DATADIR

    def __init__(self, conf: Config, logger: logging.Logger | None = None):
        super().__init__(conf, logger, SECTION)
        self.handlers = {"PUT": self.PUT, "DELETE": self.DELETE, "HEAD": self.HEAD,
                         "GET": self.GET, "POST": self.POST}

    def broker(self, device_path: str, partition: str, account: str) -> AccountBroker:
        return AccountBroker(self.db_path(device_path, partition, account), account,
                             timeout_s=self.db_timeout_s, synchronous=self.db_synchronous)

    def _parse(self, request: webob.Request, max_segments: int = 3
               ) -> tuple[str, str, str, str | None]:
        parts = parse_request_path(request.environ, 3, max_segments)
        device, partition, account = (str(p) for p in parts[:3])
        container = parts[3] if max_segments == 4 else None
        check_names(self.cluster.constraints, account, container)
        return device, partition, account, container

    def _not_found(self, info: AccountInfo | None, status: int = 404,
                   body: bytes | None = None) -> webob.Response:
        """Swift's `_deleted_response`: X-Account-Status: Deleted once the account is."""
        headers = DELETED_STATUS_HEADERS if info is not None and info.is_status_deleted \
            else {}
        return reply(status, headers, body)

    # -- PUT -----------------------------------------------------------------------------------

    def PUT(self, request: webob.Request) -> webob.Response:  # noqa: N802 - HTTP method
        device, partition, account, container = self._parse(request, 4)
        device_path = self.check_device(device)
        if container:
            return self._put_container_row(request, device, device_path, partition, account,
                                           container)
        return self._put_account(request, device, device_path, partition, account)

    def _put_container_row(self, request: webob.Request, device: str, device_path: str,
                           partition: str, account: str, container: str) -> webob.Response:
        headers = request.headers
        # X-Timestamp is when the container server read these numbers; the newest report
        # wins. Senders without it (Swift's) are ordered by arrival, as Swift does.
        timestamp = optional_timestamp(headers, "X-Timestamp") or Timestamp.now()
        put_timestamp = required_timestamp(headers, "X-Put-Timestamp")
        delete_timestamp = required_timestamp(headers, "X-Delete-Timestamp")
        object_count = int_header(headers, "X-Object-Count")
        bytes_used = int_header(headers, "X-Bytes-Used")
        policy_index = int_header(headers, "X-Backend-Storage-Policy-Index", default=0)
        override_deleted = is_true(headers.get("X-Account-Override-Deleted"))

        def work() -> None:
            with self.broker(device_path, partition, account) as broker:
                if account.startswith(AUTO_CREATE_ACCOUNT_PREFIX) and not broker.exists():
                    with contextlib.suppress(DatabaseAlreadyExists):   # lost a race: fine
                        broker.initialize(timestamp.internal)
                if not broker.exists() or (not override_deleted and broker.is_deleted()):
                    raise DatabaseNotFound(broker.db_file)
                broker.put_container(container, put_timestamp.internal,
                                     delete_timestamp.internal, object_count, bytes_used,
                                     policy_index, timestamp.internal)

        self.run_db(device, work)
        return reply(204 if delete_timestamp > put_timestamp else 201)

    def _put_account(self, request: webob.Request, device: str, device_path: str,
                     partition: str, account: str) -> webob.Response:
        timestamp = required_timestamp(request.headers)
        metadata = metadata_updates(request.headers, "account", timestamp)
        check_metadata_limits(metadata, self.metadata_limits)

        def work() -> tuple[str, AccountInfo | None]:
            with self.broker(device_path, partition, account) as broker:
                if not broker.exists():
                    try:
                        broker.initialize(timestamp.internal)
                        outcome = "created"
                    except DatabaseAlreadyExists:
                        outcome = "accepted"
                else:
                    info = broker.get_info()
                    if info.is_status_deleted:
                        return "recently deleted", info
                    outcome = "created" if info.is_deleted else "accepted"
                    broker.update_put_timestamp(timestamp.internal)
                    if broker.get_info().is_deleted:
                        return "conflict", None
                broker.update_metadata(metadata, self.metadata_limits)
                return outcome, None

        outcome, info = self.run_db(device, work)
        if outcome == "recently deleted":
            return self._not_found(info, 403, b"Recently deleted")
        if outcome == "conflict":
            return reply(409)
        return reply(201 if outcome == "created" else 202)

    # -- DELETE and POST -----------------------------------------------------------------------

    def DELETE(self, request: webob.Request) -> webob.Response:  # noqa: N802 - HTTP method
        device, partition, account, _container = self._parse(request)
        device_path = self.check_device(device)
        timestamp = required_timestamp(request.headers)

        def work() -> tuple[bool, AccountInfo | None]:
            with self.broker(device_path, partition, account) as broker:
                if not broker.exists():
                    return False, None
                info = broker.get_info()
                if info.is_deleted:
                    return False, info
                broker.delete_db(timestamp.internal)
                return True, broker.get_info()

        deleted, info = self.run_db(device, work)
        return self._not_found(info, 204 if deleted else 404)

    def POST(self, request: webob.Request) -> webob.Response:  # noqa: N802 - HTTP method
        device, partition, account, _container = self._parse(request)
        timestamp = required_timestamp(request.headers)
        device_path = self.check_device(device)
        metadata = metadata_updates(request.headers, "account", timestamp)
        check_metadata_limits(metadata, self.metadata_limits)

        def work() -> AccountInfo | None:
            with self.broker(device_path, partition, account) as broker:
                if not broker.exists():
                    raise DatabaseNotFound(broker.db_file)
                info = broker.get_info()
                if info.is_deleted:
                    return info
                broker.update_metadata(metadata, self.metadata_limits)
                return None

        deleted_info = self.run_db(device, work)
        if deleted_info is not None:
            return self._not_found(deleted_info)
        return reply(204)

    # -- HEAD and GET --------------------------------------------------------------------------

    def _stats_headers(self, info: AccountInfo, metadata: dict[str, list[str]],
                       policy_stats: dict[int, dict[str, int]]) -> dict[str, Any]:
        """Swift's `get_response_headers` for an account."""
        headers: dict[str, Any] = {
            "X-Account-Container-Count": info.container_count,
            "X-Account-Object-Count": info.object_count,
            "X-Account-Bytes-Used": info.bytes_used,
            "X-Timestamp": Timestamp(info.created_at).normal,
            "X-PUT-Timestamp": Timestamp(info.put_timestamp).normal,
        }
        for index, stats in sorted(policy_stats.items()):
            policy = self.cluster.policies.get_by_index(index)
            if policy is None:
                continue
            name = policy.name
            for key, value in stats.items():
                # Swift's header dict title-cases names: ...-Policy-Gold-Object-Count
                header = f"X-Account-Storage-Policy-{name}-{key.replace('_', '-')}".title()
                headers[header] = value
        headers.update(metadata_headers(metadata,
                                        lambda key: is_sys_or_user_meta("account", key)))
        return headers

    def _read(self, device_path: str, partition: str, account: str
              ) -> tuple[AccountInfo | None, dict[str, list[str]], dict[int, dict[str, int]]]:
        with self.broker(device_path, partition, account) as broker:
            if not broker.exists():
                return None, {}, {}
            info, metadata = broker.get_info_and_metadata()
            return info, metadata, broker.get_policy_stats()

    def HEAD(self, request: webob.Request) -> webob.Response:  # noqa: N802 - HTTP method
        device, partition, account, _container = self._parse(request)
        content_type = self.listing_type(request)
        device_path = self.check_device(device)
        info, metadata, policy_stats = self.run_db(device, self._read, device_path, partition,
                                                   account)
        if info is None or info.is_deleted:
            return self._not_found(info)
        headers = self._stats_headers(info, metadata, policy_stats)
        headers["Content-Length"] = "0"
        return reply(204, headers, b"", f"{content_type}; charset=utf-8")

    def GET(self, request: webob.Request) -> webob.Response:  # noqa: N802 - HTTP method
        device, partition, account, _container = self._parse(request)
        query = decode_query(request.environ.get("QUERY_STRING", ""))
        params = parse_listing_params(
            query, self.cluster.constraints.account_listing_limit, allow_path=False,
            allow_reserved=is_true(request.headers.get("X-Backend-Allow-Reserved-Names")))
        content_type = listing_content_type(get_param(query, "format"),
                                            request.headers.get("Accept"))
        device_path = self.check_device(device)
        policy_names = {policy.index: policy.name for policy in self.cluster.policies}

        def work() -> tuple[AccountInfo | None, dict[str, list[str]],
                            dict[int, dict[str, int]], bytes, bool]:
            info, metadata, policy_stats = self._read(device_path, partition, account)
            if info is None or info.is_deleted:
                return info, metadata, policy_stats, b"", False
            with self.broker(device_path, partition, account) as broker:
                entries = broker.list_containers(params)
            records = [subdir_record(entry.name) if isinstance(entry, Subdir) else
                       container_record(entry[0], entry[1], entry[2], Timestamp(entry[3]),
                                        policy_names.get(entry[4])) for entry in entries]
            body = listing_body(records, content_type, "account", account)
            return info, metadata, policy_stats, body, bool(records)

        info, metadata, policy_stats, body, listed = self.run_db(device, work)
        if info is None or info.is_deleted:
            return self._not_found(info)
        headers = self._stats_headers(info, metadata, policy_stats)
        # Swift: json and xml always answer 200; plain text with no containers is 204.
        status = 200 if listed or not content_type.endswith("/plain") else 204
        return reply(status, headers, body, f"{content_type}; charset=utf-8")


def app_factory(conf: Config) -> AccountServer:
    return AccountServer(conf)
