"""Dispatch: (method, path template) -> handler, and the one place errors become responses.

Templates name their parts (`/v3/users/{user_id}`); a part matches one path segment. An
unknown path is Keystone's 404, a known path with another method 405; an IdentityError becomes
its JSON error, and anything unexpected a logged 500 that shows the caller nothing internal.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from webob import Request, Response

from identity.api import auth_tokens, catalog, discovery, ec2, projects, roles, users
from identity.api.http import Call, Services
from identity.errors import IdentityError, MethodNotAllowed, NotFound, error_response

LOGGER = logging.getLogger("ringstack.identity")
Handler = Callable[..., Response]
PART = re.compile(r"\{(\w+)\}")


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    authenticated: bool


def compile_template(template: str) -> re.Pattern[str]:
    regex = PART.sub(lambda match: f"(?P<{match.group(1)}>[^/]+)", re.escape(template)
                     .replace(r"\{", "{").replace(r"\}", "}"))
    return re.compile(f"^{regex}$")


ROUTES = [Route(method, compile_template(template), handler, authenticated)
          for module in (discovery, auth_tokens, projects, users, roles, catalog, ec2)
          for method, template, handler, authenticated in module.ROUTES]


class IdentityApp:
    """The identity WSGI application."""

    def __init__(self, services: Services, routes: list[Route] = ROUTES):
        self.services = services
        self.routes = routes

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        request = Request(environ)
        response = self.handle(request)
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        try:
            path = request.path_info.rstrip("/") or "/"
            if request.path_info == "/v3/":
                path = "/v3/"
            handler, params = self._route(request.method, path)
            call = Call(request, self.services)
            if handler[1]:
                _ = call.caller   # authenticate before anything else is looked at
            response = handler[0](call, **params)
        except IdentityError as err:
            response = error_response(err)
        except Exception:
            LOGGER.exception("error handling %s %s", request.method, request.path_info)
            response = error_response(IdentityError(
                "An unexpected error prevented the server from fulfilling your request."))
        response.headers["Vary"] = "X-Auth-Token"
        if request.method == "HEAD":
            response.body = b""
        return response

    def _route(self, method: str, path: str) -> tuple[tuple[Handler, bool], dict[str, str]]:
        allowed = []
        for route in self.routes:
            match = route.pattern.match(path)
            if match is None:
                continue
            if route.method == method:
                params = {key: unquote(value) for key, value in match.groupdict().items()}
                return (route.handler, route.authenticated), params
            allowed.append(route.method)
        if allowed:
            raise MethodNotAllowed(f"The method {method} is not allowed for this resource.")
        raise NotFound("The resource could not be found.")
