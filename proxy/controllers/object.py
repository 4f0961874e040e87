"""`/v1/<account>/<container>/<object>`: object GET/HEAD, PUT, POST, DELETE.

Every verb first reads the container's info: its storage policy picks the object ring and its
ACLs authorize non-owners (read ACL for GET/HEAD, write ACL else); writes need the container to
exist (404, or 503 when its servers cannot say). Writes
carry a proxy-assigned X-Timestamp and tell each object server which container replica(s) to
update (X-Container-Host/Partition/Device, Swift's pairing), plus the expirer queue entry for
objects with X-Delete-At (X-Delete-After is converted by the proxy).
"""

from __future__ import annotations

import mimetypes
from typing import Any

from webob import Response

from common.config import is_true
from common.policies import REPLICATION, StoragePolicy
from common.timestamp import Timestamp
from proxy.checks import (
    check_delete_headers,
    check_metadata,
    check_object_creation,
    check_object_name,
    client_timestamp,
    normalize_delete_at,
)
from proxy.controllers.base import Controller, csv_append, delay_denial
from proxy.controllers.putter import ObjectPut
from proxy.errors import BadRequest, NotFound, NotImplementedByProxy, ServiceUnavailable
from proxy.errors import simple_response as respond
from proxy.quorum import quorum_size
from ring import Node, Ring, hash_path
from ring.device import format_address


def num_container_updates(container_replicas: int, container_quorum: int,
                          object_replicas: int, object_quorum: int) -> int:
    """Swift's rule: enough container updates that a PUT acknowledged by a quorum of object
    servers has reached a quorum of container replicas (or their async pendings)."""
    return max(container_quorum + object_replicas - object_quorum, container_replicas)


def container_update_headers(n_outgoing: int, container_partition: int,
                             container_nodes: list[Node],
                             delete_at: tuple[str, int, list[Node]] | None = None) -> \
        list[dict[str, str]]:
    """Per object-server request: the container replica(s) it updates, and the expirer queue
    container replica(s) when the object expires (`delete_at`: container, partition, nodes)."""
    headers: list[dict[str, str]] = [{} for _ in range(n_outgoing)]
    if not container_nodes or not n_outgoing:
        return headers
    updates = num_container_updates(len(container_nodes), quorum_size(len(container_nodes)),
                                    n_outgoing, quorum_size(n_outgoing))
    for i in range(updates):
        target = headers[i % n_outgoing]
        node = container_nodes[i % len(container_nodes)]
        target["X-Container-Partition"] = str(container_partition)
        target["X-Container-Host"] = csv_append(target.get("X-Container-Host"),
                                                format_address(node.ip, node.port))
        target["X-Container-Device"] = csv_append(target.get("X-Container-Device"), node.device)
        if delete_at is not None and delete_at[2]:
            queue_container, queue_partition, queue_nodes = delete_at
            queue_node = queue_nodes[i % len(queue_nodes)]
            target["X-Delete-At-Container"] = queue_container
            target["X-Delete-At-Partition"] = str(queue_partition)
            target["X-Delete-At-Host"] = csv_append(target.get("X-Delete-At-Host"),
                                                    format_address(queue_node.ip,
                                                                   queue_node.port))
            target["X-Delete-At-Device"] = csv_append(target.get("X-Delete-At-Device"),
                                                      queue_node.device)
    return headers


def expirer_container(delete_at: int, divisor: int, account: str, container: str, obj: str,
                      secrets: Any) -> str:
    """The expirer queue container of an object (Swift's get_expirer_container): the delete-at
    time rounded down to `divisor`, minus a 0-99 shard from the object's path hash."""
    shard = int.from_bytes(hash_path(account, container, obj, secrets), "big") % 100
    return normalize_delete_at(delete_at // divisor * divisor - shard)


class ObjectController(Controller):
    server_type = "Object"
    allowed_methods = ("GET", "HEAD", "PUT", "POST", "DELETE")

    def _path(self) -> str:
        return f"/{self.account_name}/{self.container_name}/{self.object_name}"

    def _container(self, acl_key: str) -> tuple[dict[str, Any], Response | None]:
        """The container's info and the denial (if any) under its read or write ACL."""
        info = self.container_info(self.account_name, self.container_name)
        denial = self.authorize(info.get(acl_key))
        return info, denial

    def _policy(self, info: dict[str, Any]) -> tuple[StoragePolicy, Ring]:
        policies = self.app.cluster.policies
        index = self.req.headers.get("X-Backend-Storage-Policy-Index") or \
            info.get("storage_policy")
        policy = policies.get_by_index(index)
        if policy is None:
            if info["status"] == 404:
                raise NotFound()
            raise ServiceUnavailable(f"No policy with index {index}")
        if policy.policy_type != REPLICATION:
            raise NotImplementedByProxy(f"storage policy {policy.name} ({policy.policy_type}) "
                                        "is not served by this proxy")
        return policy, self.app.cluster.object_ring(policy)

    @staticmethod
    def _check_container_status(info: dict[str, Any]) -> None:
        status = info["status"]
        if status in (404, 410):
            raise NotFound()
        if not 200 <= status < 300:
            raise ServiceUnavailable()

    # ---- reads ------------------------------------------------------------------------------

    @delay_denial
    def GET(self) -> Response:  # noqa: N802
        info, denial = self._container("read_acl")
        if denial is not None:
            return denial
        # As Swift: reads do not need the container to answer (its servers may all be down);
        # an unknown container means policy 0, and the object servers have the last word.
        policy, ring = self._policy(info)
        part = ring.get_part(self.account_name, self.container_name, self.object_name)
        headers = self.backend_headers(
            {"X-Backend-Storage-Policy-Index": str(policy.index)}, transfer_all=True)
        headers.pop("X-Timestamp", None)
        result = self.get_or_head(ring, part, self._path(), headers, self.req.query_string,
                                  resumable=True, verify_etag=self.app.settings.verify_get_etag)
        response = self.result_response(result)
        if 200 <= result.status < 300:
            response.headers["Accept-Ranges"] = "bytes"
        return response

    HEAD = GET

    # ---- writes -----------------------------------------------------------------------------

    def _write_headers(self, ring: Ring, part: int, policy: StoragePolicy,
                       info: dict[str, Any], timestamp: Timestamp,
                       delete_at: int | None) -> list[dict[str, str]]:
        replicas = len(ring.get_part_nodes(part))
        container_nodes = self.app.cluster.container_ring.get_part_nodes(info["partition"])
        queue = None
        if delete_at is not None:
            settings = self.app.settings
            queue_container = expirer_container(
                delete_at, settings.expiring_objects_container_divisor, self.account_name,
                self.container_name, self.object_name, self.app.cluster.secrets)
            queue_ring = self.app.cluster.container_ring
            queue_part = queue_ring.get_part(settings.expiring_objects_account,
                                             queue_container)
            queue = (queue_container, queue_part, queue_ring.get_part_nodes(queue_part))
        base = self.backend_headers({"X-Timestamp": timestamp.internal,
                                     "X-Backend-Storage-Policy-Index": str(policy.index)},
                                    transfer_all=True)
        pairing = container_update_headers(replicas, info["partition"], container_nodes, queue)
        return [{**base, **pair} for pair in pairing]

    @delay_denial
    def PUT(self) -> Response:  # noqa: N802
        info, denial = self._container("write_acl")
        if denial is not None:
            return denial
        self._check_container_status(info)
        policy, ring = self._policy(info)
        headers = self.req.headers
        if "Content-Type" not in headers or \
                is_true(headers.get("X-Detect-Content-Type")):
            guessed = mimetypes.guess_type(self.object_name)[0]
            headers["Content-Type"] = guessed or "application/octet-stream"
            headers.pop("X-Detect-Content-Type", None)
        if_none_match = headers.get("If-None-Match")
        if if_none_match is not None and if_none_match.strip() != "*":
            raise BadRequest("If-None-Match only supports *")
        timestamp = client_timestamp(headers) or Timestamp.now()
        length = check_object_creation(headers, self.object_name, self.app.cluster.constraints,
                                       bool(self.env.get("swift.content_type_overridden")))
        delete_at = check_delete_headers(headers, timestamp)
        part = ring.get_part(self.account_name, self.container_name, self.object_name)
        headers_list = self._write_headers(ring, part, policy, info, timestamp, delete_at)
        client_etag = headers.get("ETag")
        put = ObjectPut(self.app.backend, self.iter_nodes(ring, part), self._path(),
                        headers_list, length, self.app.cluster.constraints.max_file_size,
                        client_etag.strip('"').lower() if client_etag else None,
                        if_none_match is not None)
        result = put.run(self.env["wsgi.input"], self.app.settings.client_chunk_bytes)
        if not 200 <= result.status < 300:
            return respond(self.req, result.status, result.body or None, reason=result.reason)
        response = respond(self.req, result.status, b"", {
            "Etag": result.etag, "Last-Modified": timestamp.http_date},
            content_type="text/html; charset=UTF-8")
        return response

    @delay_denial
    def POST(self) -> Response:  # noqa: N802
        info, denial = self._container("write_acl")
        if denial is not None:
            return denial
        check_object_name(self.object_name, self.app.cluster.constraints)
        check_metadata(self.req.headers, "object", self.app.cluster.constraints)
        self._check_container_status(info)
        policy, ring = self._policy(info)
        timestamp = client_timestamp(self.req.headers) or Timestamp.now()
        delete_at = check_delete_headers(self.req.headers, timestamp)
        part = ring.get_part(self.account_name, self.container_name, self.object_name)
        headers_list = self._write_headers(ring, part, policy, info, timestamp, delete_at)
        return self.make_requests(ring, part, "POST", self._path(), headers_list)

    @delay_denial
    def DELETE(self) -> Response:  # noqa: N802
        info, denial = self._container("write_acl")
        if denial is not None:
            return denial
        self._check_container_status(info)
        policy, ring = self._policy(info)
        timestamp = client_timestamp(self.req.headers) or Timestamp.now()
        part = ring.get_part(self.account_name, self.container_name, self.object_name)
        headers_list = self._write_headers(ring, part, policy, info, timestamp, None)
        # A replica that never had the object (404) still agrees it is gone, unless a
        # majority says so: then the client learns the object did not exist.
        return self.make_requests(ring, part, "DELETE", self._path(), headers_list,
                                  overrides={404: 204})
