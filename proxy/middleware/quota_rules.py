"""Quota rules shared by the account-quotas and container-quotas middlewares (Swift's).

One mechanism for both:
- `parse_limit`: a quota as stored in metadata (a non-negative integer; anything else, or
  nothing, means no limit, as Swift treats a malformed stored value);
- `valid_limit_header`: whether a quota a client sets is acceptable (digits, or empty to
  remove it);
- `over_limit`: whether adding `adding` to `used` passes `limit`;
- `refuse_after_auth`: the 413 "Upload exceeds quota." delivered only once the auth
  middleware has allowed the request: `swift.authorize` is wrapped so that a caller who may
  not write there gets the auth answer (401/403) and learns nothing about the quota, exactly
  as Swift's quota middlewares do. Subrequests of the request (other paths or methods) are
  judged by the original callback alone.
The object PUT is what counts: `copy` sits left of the quota filters in the pipeline, so a COPY
or X-Copy-From arrives here as a PUT with the source's length.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from proxy.errors import simple_response
from proxy.middleware.subrequest import HttpError, StartResponse, WsgiApp, WsgiEnv

QUOTA_EXCEEDED_BODY = b"Upload exceeds quota."


def parse_limit(value: str | None) -> int | None:
    """The limit a stored quota sets, or None (unset, empty or malformed: no limit)."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() else None


def valid_limit_header(value: str | None) -> bool:
    """A quota header a client may send: absent, empty (removal) or a non-negative integer."""
    return value is None or value.strip() == "" or value.strip().isdigit()


def over_limit(limit: int | None, used: str | int | None, adding: int) -> bool:
    """Whether `used + adding` goes past `limit` (equal to it is still within)."""
    if limit is None:
        return False
    try:
        current = int(used or 0)
    except ValueError:
        current = 0
    return current + adding > limit


def request_length(env: Mapping[str, Any]) -> int:
    """The declared body length (0 when chunked or unknown, as Swift counts it)."""
    try:
        return max(0, int(env.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def refuse_after_auth(env: WsgiEnv, start_response: StartResponse,
                      app: WsgiApp) -> Iterable[bytes]:
    """Send the request on with the 413 hidden behind the auth middleware's verdict."""
    authorize = env.get("swift.authorize")
    if authorize is None:
        return HttpError(413, QUOTA_EXCEEDED_BODY)(env, start_response)
    method = env.get("REQUEST_METHOD")
    path = env.get("PATH_INFO")

    def authorize_then_refuse(req: Any) -> Any:
        denial = authorize(req)
        if denial is not None or req.environ.get("REQUEST_METHOD") != method or \
                req.environ.get("PATH_INFO") != path:
            return denial
        return simple_response(req, 413, QUOTA_EXCEEDED_BODY,
                               content_type="text/plain; charset=UTF-8")

    env["swift.authorize"] = authorize_then_refuse
    return app(env, start_response)
