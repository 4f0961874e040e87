"""Healthcheck middleware: `/healthcheck` answers 200 "OK" without touching storage nodes.

With `disable_path` set and that file present, it answers 503 "DISABLED BY FILE" instead, so an
operator can drain a proxy from a load balancer by touching a file (Swift's behaviour).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from common.config import Config

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
HEALTHCHECK_PATH = "/healthcheck"


class HealthCheck:
    def __init__(self, app: WsgiApp, conf: Config):
        self.app = app
        self.disable_path = conf.get_str("disable_path")

    def __call__(self, env: dict[str, Any], start_response: Callable[..., Any]) -> \
            Iterable[bytes]:
        if env.get("PATH_INFO") != HEALTHCHECK_PATH:
            return self.app(env, start_response)
        if self.disable_path and os.path.exists(self.disable_path):
            status, body = "503 Service Unavailable", b"DISABLED BY FILE"
        else:
            status, body = "200 OK", b"OK"
        start_response(status, [("Content-Type", "text/plain"),
                                ("Content-Length", str(len(body)))])
        return [b"" if env.get("REQUEST_METHOD") == "HEAD" else body]


def filter_factory(conf: Config) -> Callable[[WsgiApp], WsgiApp]:
    return lambda app: HealthCheck(app, conf)
