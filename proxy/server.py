"""The proxy server: Swift API v1 over the rings, and its entry point for `ringstack-server`.

`app_factory(conf)` loads the cluster (proxy.cluster), builds the `ProxyApplication` and wraps it
in the middlewares named by `pipeline` (proxy.pipeline). The application:
- checks the request line (Content-Length, UTF-8 path, API version) with Swift's statuses;
- routes `/info` and `/v1/<account>[/<container>[/<object>]]` to a controller;
- runs the auth middleware's `swift.authorize` first, letting handlers marked `delay_denial`
  decide later once they know the container's ACLs, as Swift does;
- maps every typed `ProxyError` to a response in one place (proxy.errors.error_response), and
  any other exception to a logged 500 — never a traceback to the client.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from webob import Request, Response

from common.config import Config
from proxy import info as swift_info
from proxy.backend import Backend
from proxy.catch_errors import ensure_trans_id
from proxy.cluster import Cluster
from proxy.controllers.account import AccountController
from proxy.controllers.base import Controller, InfoCache
from proxy.controllers.container import ContainerController
from proxy.controllers.info import InfoController
from proxy.controllers.object import ObjectController
from proxy.error_limiter import ErrorLimiter
from proxy.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PreconditionFailed,
    ProxyError,
    error_response,
    simple_response,
)
from proxy.info_generations import shared_generations
from proxy.paths import SwiftPath, check_utf8, parse_swift_path
from proxy.pipeline import DEFAULT_PIPELINE, build_pipeline, parse_pipeline
from proxy.settings import ProxySettings

SECTION = "proxy-server"
DEFAULT_PORT = 8080
SWIFT_VERSION = "2.34.0"          # the Swift API level these behaviours follow, for /info
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ProxyApplication:
    """The WSGI app at the right end of the pipeline."""

    def __init__(self, settings: ProxySettings, cluster: Cluster,
                 logger: logging.Logger | None = None):
        self.settings = settings
        self.cluster = cluster
        self.logger = logger or logging.getLogger("ringstack.proxy")
        self.limiter = ErrorLimiter(settings.error_suppression_interval_s,
                                    settings.error_suppression_limit, self.logger)
        self.backend = Backend(settings, self.limiter, self.logger)
        self.info_cache = InfoCache(generations=shared_generations())
        self.pid = os.getpid()

    def __call__(self, env: dict[str, Any], start_response: Callable[..., Any]) -> \
            Iterable[bytes]:
        req = Request(env)
        trans_id = ensure_trans_id(env)
        try:
            response = self.handle(req)
        except ProxyError as err:
            response = error_response(err, req)
        except Exception:
            self.logger.exception("ERROR unhandled exception in request %s %s (%s)",
                                  req.method, env.get("PATH_INFO"), trans_id)
            response = simple_response(req, 500)
        if "X-Trans-Id" not in response.headers:
            response.headers["X-Trans-Id"] = trans_id
            response.headers["X-Openstack-Request-Id"] = trans_id
        return response(env, start_response)

    def route(self, req: Request) -> tuple[type[Controller], SwiftPath]:
        """The controller for a request's path, or the error Swift answers."""
        length = req.environ.get("CONTENT_LENGTH")
        if length and not length.strip().isdigit():
            raise BadRequest("Invalid Content-Length")
        for key in req.environ:
            if key.startswith("HTTP_") and not key.isascii():
                # HTTP header names are ASCII tokens; such a name could not be passed on
                raise BadRequest("Invalid header name")
        path_info = req.environ.get("PATH_INFO", "")
        if not check_utf8(path_info):
            raise PreconditionFailed("Invalid UTF8 or contains NULL")
        if path_info == "/info":
            return InfoController, SwiftPath("", None, None, None)
        try:
            path = parse_swift_path(path_info)
        except ValueError:
            raise NotFound() from None
        if path.account and path.version not in self.cluster.constraints.valid_api_versions:
            raise BadRequest()
        if path.obj and path.container and path.account:
            return ObjectController, path
        if path.container and path.account:
            return ContainerController, path
        if path.account and not path.container and not path.obj:
            return AccountController, path
        raise PreconditionFailed("Bad URL")

    def handle(self, req: Request) -> Response:
        controller_class, path = self.route(req)
        controller = controller_class(self, req, path)
        if req.method not in controller.allowed_methods:
            raise MethodNotAllowed(headers={"Allow": ", ".join(controller.allowed_methods)})
        handler = getattr(controller, req.method)
        if controller_class is InfoController:
            return handler()          # /info is public, as in Swift
        authorize = req.environ.get("swift.authorize")
        if authorize is None:
            return handler()
        denial = authorize(req)
        if denial is not None:
            if not getattr(handler, "delay_denial", False):
                return denial
            return handler()          # the handler asks again with the container's ACLs
        # Authorized: no second check inside the handler; restored for later middlewares.
        req.environ.pop("swift.authorize", None)
        try:
            return handler()
        finally:
            req.environ["swift.authorize"] = authorize


def register_core_info(settings: ProxySettings, cluster: Cluster) -> None:
    swift_info.register_swift_info(
        "swift", version=SWIFT_VERSION, **cluster.constraints.as_info(),
        policies=cluster.policies.as_info(), account_autocreate=settings.account_autocreate,
        allow_account_management=settings.allow_account_management, strict_cors_mode=True)


def app_factory(conf: Config) -> WsgiApp:
    """The proxy app wrapped in its pipeline, from the `[proxy-server]` config section."""
    logger = logging.getLogger("ringstack.proxy")
    settings = ProxySettings.from_config(conf)
    cluster = Cluster.load(settings.swift_dir)
    filters = parse_pipeline(conf.get_str("pipeline", DEFAULT_PIPELINE))
    # Middlewares see the cluster's constraints (e.g. max_file_size for copy and bulk) as
    # defaults under the proxy's own options, so one [swift-constraints] governs them all.
    constraint_defaults = {name: str(value) for name, value in
                           cluster.constraints.as_info().items() if isinstance(value, int)}
    filter_conf = Config({**constraint_defaults, **dict(conf), "swift_dir": settings.swift_dir},
                         conf.source, conf.section)
    register_core_info(settings, cluster)
    proxy = ProxyApplication(settings, cluster, logger)
    app, used = build_pipeline(proxy, filter_conf, filters, logger)
    logger.info("pipeline: %s", " ".join([*used, "proxy"]))
    return app


def prepare_workers(conf: Config) -> None:
    """Map the info-cache generations every worker shares (before `ringstack-server` forks)."""
    shared_generations()
