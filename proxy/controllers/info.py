"""`/info`: the JSON document clients read to learn the cluster's limits and features.

It serves what proxy.info holds: the `swift` section the proxy registered (version,
constraints, policies) and every section middlewares registered, minus `disallowed_sections`.
No authorization is needed, as in Swift; `expose_info = false` turns it off (403).
"""

from __future__ import annotations

import json

from webob import Response

from proxy.controllers.base import Controller
from proxy.errors import Forbidden, simple_response
from proxy.info import get_swift_info


class InfoController(Controller):
    server_type = "Info"
    allowed_methods = ("GET", "HEAD")

    def GET(self) -> Response:  # noqa: N802 - handlers are named after HTTP methods
        if not self.app.settings.expose_info:
            raise Forbidden()
        info = get_swift_info(self.app.settings.disallowed_sections)
        headers = {}
        origin = self.req.headers.get("Origin")
        if origin:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Expose-Headers"] = "x-trans-id"
        body = json.dumps(info, sort_keys=True).encode("ascii")
        response = simple_response(None, 200, body, headers,
                                   content_type="application/json; charset=UTF-8")
        return response

    HEAD = GET
