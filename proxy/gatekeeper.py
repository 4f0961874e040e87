"""Gatekeeper middleware: clients can neither set nor see internal headers.

Requests from clients lose `X-Backend-*`, system metadata (`X-<type>-Sysmeta-*`) and transient
system metadata (`X-Object-Transient-Sysmeta-*`); responses to clients lose the same. Middlewares
to its right (auth, SLO, copy...) and the proxy core may use these headers freely. Place it near
the left of the pipeline, as Swift does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from common.config import Config

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
INTERNAL_PREFIXES = ("x-backend-", "x-account-sysmeta-", "x-container-sysmeta-",
                     "x-object-sysmeta-", "x-object-transient-sysmeta-")
_ENVIRON_PREFIXES = tuple("HTTP_" + p.upper().replace("-", "_") for p in INTERNAL_PREFIXES)


def is_internal_header(name: str) -> bool:
    return name.lower().startswith(INTERNAL_PREFIXES)


class GateKeeper:
    def __init__(self, app: WsgiApp):
        self.app = app

    def __call__(self, env: dict[str, Any], start_response: Callable[..., Any]) -> \
            Iterable[bytes]:
        for key in [k for k in env if k.startswith(_ENVIRON_PREFIXES)]:
            del env[key]

        def filtered_start_response(status: str, headers: list[tuple[str, str]],
                                    exc_info: Any = None) -> Any:
            kept = [(name, value) for name, value in headers if not is_internal_header(name)]
            return start_response(status, kept, exc_info) if exc_info else \
                start_response(status, kept)

        return self.app(env, filtered_start_response)


def filter_factory(conf: Config) -> Callable[[WsgiApp], WsgiApp]:
    return GateKeeper
