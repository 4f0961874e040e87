"""`/v1/<account>`: account HEAD/GET (stats and container listing), POST, PUT, DELETE.

As Swift: a missing account reads as an empty one when `account_autocreate` is on (it is
created by the first container PUT or account POST); PUT and DELETE need
`allow_account_management` and, under tempauth, a reseller admin; listings pass the client's
query (prefix, delimiter, marker, end_marker, limit, reverse, format) to the account servers.
"""

from __future__ import annotations

import json

from webob import Response

from common.timestamp import Timestamp
from proxy.checks import check_account_name, check_listing_limit, check_metadata
from proxy.controllers.base import Controller
from proxy.errors import BadRequest, MethodNotAllowed, simple_response
from ring import Ring


def listing_format(req_params: dict[str, str], accept: str) -> str:
    """json, xml or plain: `format=` first, then the Accept header, as Swift's listings."""
    fmt = req_params.get("format", "").lower()
    if fmt in ("json", "xml", "plain"):
        return fmt
    accept = accept.lower()
    if "application/json" in accept:
        return "json"
    if "application/xml" in accept or "text/xml" in accept:
        return "xml"
    return "plain"


class AccountController(Controller):
    server_type = "Account"
    allowed_methods = ("GET", "HEAD", "PUT", "POST", "DELETE")

    @property
    def ring(self) -> Ring:
        return self.app.cluster.account_ring

    def _part(self) -> int:
        return self.ring.get_part(self.account_name)

    def GET(self) -> Response:  # noqa: N802
        check_account_name(self.account_name, self.app.cluster.constraints)
        if self.is_info_request():
            return self.info_response(self.account_info(self.account_name))
        if self.req.method == "GET":
            check_listing_limit(self.req.params.get("limit"),
                                self.app.cluster.constraints.account_listing_limit)
        result = self.get_or_head(self.ring, self._part(), f"/{self.account_name}",
                                  self.listing_headers(), self.req.query_string)
        if result.status == 404 and result.headers.get("x-account-status", "").lower() == \
                "deleted":
            return simple_response(self.req, 410)
        if result.status == 404 and self.app.settings.account_autocreate:
            return self.empty_listing()
        response = self.result_response(result)
        self.strip_owner_headers(response.headers)
        return response

    HEAD = GET

    def empty_listing(self) -> Response:
        """What an account that does not exist yet looks like under autocreate."""
        fmt = listing_format(dict(self.req.params), self.req.headers.get("Accept", ""))
        now = Timestamp.now()
        headers = {"X-Account-Container-Count": "0", "X-Account-Object-Count": "0",
                   "X-Account-Bytes-Used": "0", "X-Timestamp": now.normal,
                   "X-Put-Timestamp": now.normal}
        if fmt == "json":
            return simple_response(self.req, 200, b"[]", headers,
                                   content_type="application/json; charset=utf-8")
        if fmt == "xml":
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n<account name='
                    f'{json.dumps(self.account_name)}></account>').encode()
            return simple_response(self.req, 200, body, headers,
                                   content_type="application/xml; charset=utf-8")
        return simple_response(self.req, 204, b"", headers,
                               content_type="text/plain; charset=utf-8")

    def _write_headers(self) -> list[dict[str, str]]:
        replicas = len(self.ring.get_part_nodes(self._part()))
        headers = self.backend_headers({"X-Timestamp": Timestamp.now().internal})
        return [dict(headers) for _ in range(replicas)]

    def PUT(self) -> Response:  # noqa: N802
        if not self.app.settings.allow_account_management:
            raise MethodNotAllowed(headers={"Allow": ", ".join(self.allowed_methods)})
        check_account_name(self.account_name, self.app.cluster.constraints)
        check_metadata(self.req.headers, "account", self.app.cluster.constraints)
        self.strip_owner_request_headers()
        response = self.make_requests(self.ring, self._part(), "PUT", f"/{self.account_name}",
                                      self._write_headers())
        self.clear_info(self.account_name)
        return response

    def POST(self) -> Response:  # noqa: N802
        check_account_name(self.account_name, self.app.cluster.constraints)
        check_metadata(self.req.headers, "account", self.app.cluster.constraints)
        self.strip_owner_request_headers()
        response = self.make_requests(self.ring, self._part(), "POST", f"/{self.account_name}",
                                      self._write_headers())
        if response.status_int == 404 and self.app.settings.account_autocreate:
            if not self.autocreate_account(self.account_name):
                return simple_response(self.req, 503)
            response = self.make_requests(self.ring, self._part(), "POST",
                                          f"/{self.account_name}", self._write_headers())
        self.clear_info(self.account_name)
        return response

    def DELETE(self) -> Response:  # noqa: N802
        if self.req.query_string:
            # Swift refuses: a query could be a mistyped bulk request, and this one is final
            raise BadRequest()
        if not self.app.settings.allow_account_management:
            raise MethodNotAllowed(headers={"Allow": ", ".join(self.allowed_methods)})
        response = self.make_requests(self.ring, self._part(), "DELETE",
                                      f"/{self.account_name}", self._write_headers())
        self.clear_info(self.account_name)
        return response

    def strip_owner_request_headers(self) -> None:
        if self.is_owner:
            return
        for name in [n for n in self.req.headers
                     if n.lower() in self.app.settings.swift_owner_headers]:
            del self.req.headers[name]
