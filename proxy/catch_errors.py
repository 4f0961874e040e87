"""catch_errors middleware: a transaction id on every request, and no tracebacks to clients.

It gives each request `swift.trans_id` (Swift's `tx<21 hex>-<10 hex time><suffix>` form),
adds `X-Trans-Id` and `X-Openstack-Request-Id` to every response, and turns an exception that
escapes the pipeline into a logged 500 instead of a dropped connection. Place it first.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from common.config import Config
from common.http_status import default_body, status_line

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
LOGGER = logging.getLogger("ringstack.proxy")


def generate_trans_id(suffix: str = "") -> str:
    return f"tx{uuid.uuid4().hex[:21]}-{int(time.time()):010x}{quote(suffix)}"


def ensure_trans_id(env: dict[str, Any], suffix: str = "") -> str:
    trans_id = env.get("swift.trans_id")
    if not trans_id:
        extra = env.get("HTTP_X_TRANS_ID_EXTRA", "")
        trans_id = generate_trans_id(suffix + (f"-{extra[:32]}" if extra else ""))
        env["swift.trans_id"] = trans_id
    return trans_id


class CatchErrors:
    def __init__(self, app: WsgiApp, conf: Config):
        self.app = app
        self.trans_id_suffix = conf.get_str("trans_id_suffix")

    def __call__(self, env: dict[str, Any], start_response: Callable[..., Any]) -> \
            Iterable[bytes]:
        trans_id = ensure_trans_id(env, self.trans_id_suffix)
        started: list[bool] = []

        def tagged_start_response(status: str, headers: list[tuple[str, str]],
                                  exc_info: Any = None) -> Any:
            names = {name.lower() for name, _ in headers}
            headers = list(headers)
            if "x-trans-id" not in names:
                headers.append(("X-Trans-Id", trans_id))
            if "x-openstack-request-id" not in names:
                headers.append(("X-Openstack-Request-Id", trans_id))
            started.append(True)
            return start_response(status, headers, exc_info) if exc_info else \
                start_response(status, headers)

        try:
            return self.app(env, tagged_start_response)
        except Exception:
            LOGGER.exception("ERROR unhandled exception in request %s %s (%s)",
                             env.get("REQUEST_METHOD"), env.get("PATH_INFO"), trans_id)
            if started:
                raise          # headers are out: the server must drop the connection
            body = default_body(500) if env.get("REQUEST_METHOD") != "HEAD" else b""
            tagged_start_response(status_line(500), [
                ("Content-Type", "text/html; charset=UTF-8"), ("Content-Length", str(len(body)))])
            return [body]


def filter_factory(conf: Config) -> Callable[[WsgiApp], WsgiApp]:
    return lambda app: CatchErrors(app, conf)
