"""`/v1/<account>/<container>`: container HEAD/GET (listings), PUT, POST, DELETE.

PUT goes to every container-ring primary, each told which account replica(s) to update
(X-Account-Host/Partition/Device, paired round-robin as Swift does) and which storage policy
the container gets (X-Backend-Storage-Policy-Index from X-Storage-Policy, else the existing
container's policy, else the default; X-Backend-Storage-Policy-Default always). A missing
account is created first when `account_autocreate` is on. GET/HEAD are authorized against the
container's read ACL once it is known (Swift's delay_denial); non-owners never see ACLs.
"""

from __future__ import annotations

from typing import Any

from webob import Response

from proxy.checks import check_container_name, check_listing_limit, check_metadata
from proxy.controllers.base import (
    Controller,
    container_cache_key,
    csv_append,
    delay_denial,
    headers_to_container_info,
    infocache,
)
from proxy.errors import BadRequest, Forbidden, NotFound, ServiceUnavailable, simple_response
from ring import Node, Ring
from ring.device import format_address

CONTAINER_PASS_THROUGH = frozenset({
    "x-container-read", "x-container-write", "x-container-sync-key", "x-container-sync-to",
    "x-versions-location", "x-history-location"})


def account_update_headers(n_outgoing: int, account_partition: int,
                           account_nodes: list[Node]) -> list[dict[str, str]]:
    """Which account replica each of `n_outgoing` container servers updates (Swift's pairing:
    account node i goes to container request i mod n; a request may carry several)."""
    headers: list[dict[str, str]] = [{} for _ in range(n_outgoing)]
    for i, node in enumerate(account_nodes):
        target = headers[i % n_outgoing]
        target["X-Account-Partition"] = str(account_partition)
        target["X-Account-Host"] = csv_append(target.get("X-Account-Host"),
                                              format_address(node.ip, node.port))
        target["X-Account-Device"] = csv_append(target.get("X-Account-Device"), node.device)
    return headers


class ContainerController(Controller):
    server_type = "Container"
    allowed_methods = ("GET", "HEAD", "PUT", "POST", "DELETE")

    @property
    def ring(self) -> Ring:
        return self.app.cluster.container_ring

    def _part(self) -> int:
        return self.ring.get_part(self.account_name, self.container_name)

    def _path(self) -> str:
        return f"/{self.account_name}/{self.container_name}"

    def pass_through_headers(self) -> frozenset[str]:
        return CONTAINER_PASS_THROUGH

    # ---- reads ------------------------------------------------------------------------------

    @delay_denial
    def GET(self) -> Response:  # noqa: N802
        if self.is_info_request():
            return self.info_response(self.container_info(self.account_name,
                                                          self.container_name))
        if self.req.method == "GET":
            check_listing_limit(self.req.params.get("limit"),
                                self.app.cluster.constraints.container_listing_limit)
        result = self.get_or_head(self.ring, self._part(), self._path(),
                                  self.listing_headers(), self.req.query_string)
        if result.status == 404 or 200 <= result.status < 300:
            # remember what we learnt for the rest of this request (and its subrequests)
            info = headers_to_container_info(result.status, result.headers)
            info["partition"] = self._part()
            key = container_cache_key(self.account_name, self.container_name)
            infocache(self.env)[key] = info
        denial = self.authorize(result.headers.get("x-container-read"))
        if denial is not None:
            close = getattr(result.body, "close", None)
            if close is not None:
                close()
            return denial
        response = self.result_response(result)
        policy = self.app.cluster.policies.get_by_index(
            result.headers.get("x-backend-storage-policy-index"))
        if policy is not None and 200 <= result.status < 300:
            response.headers["X-Storage-Policy"] = policy.name
        self.strip_owner_headers(response.headers)
        return response

    HEAD = GET

    # ---- writes -----------------------------------------------------------------------------

    def _check_write(self) -> None:
        check_metadata(self.req.headers, "container", self.app.cluster.constraints)
        self.clean_acls()
        if not self.is_owner:
            for name in [n for n in self.req.headers
                         if n.lower() in self.app.settings.swift_owner_headers]:
                del self.req.headers[name]

    def clean_acls(self) -> None:
        """Normalise ACL headers with the auth middleware's rules (400 if invalid)."""
        clean = self.env.get("swift.clean_acl")
        for header in ("X-Container-Read", "X-Container-Write"):
            if header in self.req.headers and clean is not None:
                try:
                    self.req.headers[header] = clean(header.lower(), self.req.headers[header])
                except ValueError as err:
                    raise BadRequest(str(err)) from None

    def _policy_headers(self) -> dict[str, str]:
        policies = self.app.cluster.policies
        headers = {"X-Backend-Storage-Policy-Default": str(policies.default.index)}
        name = self.req.headers.get("X-Storage-Policy")
        if name is not None:
            policy = policies.get_by_name(name)
            if policy is None:
                raise BadRequest(f"Invalid X-Storage-Policy {name.strip()!r}")
            if policy.is_deprecated:
                raise BadRequest(f"Storage Policy {policy.name!r} is deprecated")
            headers["X-Backend-Storage-Policy-Index"] = str(policy.index)
            return headers
        existing = self.container_info(self.account_name, self.container_name)
        if 200 <= existing["status"] < 300:
            # a re-PUT keeps the container's policy (sending another index would be a 409)
            headers["X-Backend-Storage-Policy-Index"] = str(existing["storage_policy"])
        else:
            headers["X-Backend-Storage-Policy-Index"] = str(policies.default.index)
        return headers

    def _account_for_write(self) -> dict[str, Any]:
        info = self.account_info(self.account_name)
        if info["status"] == 404 and self.app.settings.account_autocreate:
            if not self.autocreate_account(self.account_name):
                raise ServiceUnavailable()
            info = self.account_info(self.account_name)
        if info["status"] == 404:
            raise NotFound()
        if not 200 <= info["status"] < 300:
            raise ServiceUnavailable()
        return info

    def _write_headers(self, account_part: int, additional: dict[str, str]) -> \
            list[dict[str, str]]:
        account_nodes = self.app.cluster.account_ring.get_part_nodes(account_part)
        replicas = len(self.ring.get_part_nodes(self._part()))
        base = self.backend_headers(additional)
        pairing = account_update_headers(replicas, account_part, account_nodes)
        return [{**base, **pair} for pair in pairing]

    def PUT(self) -> Response:  # noqa: N802
        check_container_name(self.container_name, self.app.cluster.constraints)
        self._check_write()
        policy_headers = self._policy_headers()
        account = self._account_for_write()
        limit = self.app.settings.max_containers_per_account
        if limit and int(account.get("container_count") or 0) >= limit and \
                self.account_name not in self.app.settings.max_containers_whitelist:
            existing = self.container_info(self.account_name, self.container_name)
            if not 200 <= existing["status"] < 300:
                raise Forbidden(f"Reached container limit of {limit}")
        response = self.make_requests(self.ring, self._part(), "PUT", self._path(),
                                      self._write_headers(account["partition"], policy_headers))
        self.clear_info(self.account_name, self.container_name)
        self.clear_info(self.account_name)
        return response

    def POST(self) -> Response:  # noqa: N802
        check_container_name(self.container_name, self.app.cluster.constraints)
        self._check_write()
        replicas = len(self.ring.get_part_nodes(self._part()))
        headers = self.backend_headers()
        response = self.make_requests(self.ring, self._part(), "POST", self._path(),
                                      [dict(headers) for _ in range(replicas)])
        self.clear_info(self.account_name, self.container_name)
        return response

    def DELETE(self) -> Response:  # noqa: N802
        account_part = self.app.cluster.account_ring.get_part(self.account_name)
        response = self.make_requests(self.ring, self._part(), "DELETE", self._path(),
                                      self._write_headers(account_part, {}))
        self.clear_info(self.account_name, self.container_name)
        self.clear_info(self.account_name)
        if response.status_int == 202:
            # Swift: container servers answer 202 when no replica had the container
            return simple_response(self.req, 404)
        return response
