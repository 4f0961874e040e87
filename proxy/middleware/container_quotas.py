"""container-quotas: byte and object-count limits per container (Swift's container_quotas).

- `X-Container-Meta-Quota-Bytes` / `X-Container-Meta-Quota-Count` are set like any container
  metadata, by whoever may POST (or PUT) the container, i.e. its owners (project members and
  admins), as in Swift; values that are not non-negative integers are a 400 ("Invalid bytes
  quota." / "Invalid count quota.").
- An object PUT that would take the container past either limit is a 413 "Upload exceeds
  quota.", given only after the auth middleware allowed the write (so nobody learns about a
  container they cannot write to; proxy.middleware.quota_rules).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from common.config import Config
from proxy.controllers.base import get_container_info
from proxy.middleware import register_info
from proxy.middleware.quota_rules import (
    over_limit,
    parse_limit,
    refuse_after_auth,
    request_length,
    valid_limit_header,
)
from proxy.middleware.subrequest import (
    HttpError,
    StartResponse,
    WsgiApp,
    WsgiEnv,
    request_headers,
    split_swift_path,
    wsgi_to_str,
)

BYTES_HEADER = "X-Container-Meta-Quota-Bytes"
COUNT_HEADER = "X-Container-Meta-Quota-Count"


class ContainerQuotas:
    def __init__(self, app: WsgiApp):
        self.app = app

    def __call__(self, env: WsgiEnv, start_response: StartResponse) -> Iterable[bytes]:
        method = env.get("REQUEST_METHOD")
        if method not in ("PUT", "POST"):
            return self.app(env, start_response)
        path = split_swift_path(wsgi_to_str(env.get("PATH_INFO", "")))
        if path is None or path.container is None:
            return self.app(env, start_response)
        if path.obj is None:
            headers = request_headers(env)
            if not valid_limit_header(headers.get(BYTES_HEADER)):
                return HttpError(400, "Invalid bytes quota.")(env, start_response)
            if not valid_limit_header(headers.get(COUNT_HEADER)):
                return HttpError(400, "Invalid count quota.")(env, start_response)
            return self.app(env, start_response)
        if method == "PUT" and self._over_quota(env):
            return refuse_after_auth(env, start_response, self.app)
        return self.app(env, start_response)

    def _over_quota(self, env: WsgiEnv) -> bool:
        info = get_container_info(env, self.app, swift_source="CQ")
        if not 200 <= info.get("status", 0) < 300:
            return False         # the proxy answers the missing container itself
        meta = info.get("meta", {})
        if meta.get("quota-bytes") is None and meta.get("quota-count") is None:
            return False
        # the proxy caches container info for a minute; usage must be current to enforce
        info = get_container_info(env, self.app, swift_source="CQ", fresh=True)
        meta = info.get("meta", {})
        return over_limit(parse_limit(meta.get("quota-bytes")), info.get("bytes"),
                          request_length(env)) or \
            over_limit(parse_limit(meta.get("quota-count")), info.get("object_count"), 1)


def filter_factory(conf: dict[str, str] | Config | None = None) -> \
        Callable[[WsgiApp], ContainerQuotas]:
    register_info("container_quotas")
    return ContainerQuotas
