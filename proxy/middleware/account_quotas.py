"""account-quotas: a byte limit per account (Swift's account_quotas middleware).

- `X-Account-Meta-Quota-Bytes` (and `X-Remove-Account-Meta-Quota-Bytes`) on an account PUT or
  POST: only reseller admins (`reseller_request`, set by the auth middleware) may set or remove
  it (403 for anyone else); a value that is not a non-negative integer is a 400.
- An object PUT (COPY and X-Copy-From arrive as PUTs; `copy` is left of this filter) that
  would take the account's bytes past the quota is a 413 "Upload exceeds quota.", given only
  after the auth middleware allowed the write (proxy.middleware.quota_rules).
Reads, deletes and POSTs are never limited, so an account over quota can always shrink.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from common.config import Config
from proxy.controllers.base import get_account_info
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

QUOTA_HEADER = "X-Account-Meta-Quota-Bytes"
REMOVE_HEADER = "X-Remove-Account-Meta-Quota-Bytes"


class AccountQuotas:
    def __init__(self, app: WsgiApp):
        self.app = app

    def __call__(self, env: WsgiEnv, start_response: StartResponse) -> Iterable[bytes]:
        method = env.get("REQUEST_METHOD")
        if method not in ("PUT", "POST"):
            return self.app(env, start_response)
        path = split_swift_path(wsgi_to_str(env.get("PATH_INFO", "")))
        if path is None:
            return self.app(env, start_response)
        if path.container is None:
            return self._account_write(env, start_response)
        if path.obj is not None and method == "PUT":
            return self._object_put(env, start_response)
        return self.app(env, start_response)

    def _account_write(self, env: WsgiEnv, start_response: StartResponse) -> Iterable[bytes]:
        headers = request_headers(env)
        new_quota = headers.get(QUOTA_HEADER)
        if headers.get(REMOVE_HEADER):
            new_quota = ""       # X-Remove wins when both are sent, as in Swift
        if new_quota is None:
            return self.app(env, start_response)
        if env.get("reseller_request") is not True:
            return HttpError(403)(env, start_response)
        if not valid_limit_header(new_quota):
            return HttpError(400, "Invalid quota-bytes value.")(env, start_response)
        return self.app(env, start_response)

    def _object_put(self, env: WsgiEnv, start_response: StartResponse) -> Iterable[bytes]:
        info = get_account_info(env, self.app, swift_source="AQ")
        limit = parse_limit(info.get("meta", {}).get("quota-bytes"))
        if limit is not None:
            # the proxy caches account info for a minute; usage must be current to enforce
            info = get_account_info(env, self.app, swift_source="AQ", fresh=True)
            limit = parse_limit(info.get("meta", {}).get("quota-bytes"))
        if not over_limit(limit, info.get("bytes"), request_length(env)):
            return self.app(env, start_response)
        return refuse_after_auth(env, start_response, self.app)


def filter_factory(conf: dict[str, str] | Config | None = None) -> \
        Callable[[WsgiApp], AccountQuotas]:
    register_info("account_quotas")
    return AccountQuotas
