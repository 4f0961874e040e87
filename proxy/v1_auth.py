"""Swift v1 auth's wire format (`GET /auth/v1.0`), shared by tempauth and keystoneauth.

Where the credentials are in a request (`X-Auth-User: account:user` + `X-Auth-Key` at
`/auth/v1.0`, or `/auth/v1/<account>/auth` with `X-Storage-User` / `X-Storage-Pass`), and how
the answer looks (X-Storage-Url, X-Auth-Token, X-Storage-Token, X-Auth-Token-Expires and the
JSON body swiftclient reads). Checking the key is each auth system's own business.
"""

from __future__ import annotations

import dataclasses
import json
from urllib.parse import quote

from webob import Request, Response

from proxy.errors import simple_response
from proxy.paths import split_path, wsgi_to_str


@dataclasses.dataclass(frozen=True)
class V1Credentials:
    account: str        # tempauth's account, keystone's project name
    user: str
    key: str


def unauthorized(req: Request, account: str) -> Response:
    return simple_response(req, 401, headers={
        "Www-Authenticate": f'Swift realm="{quote(account or "unknown")}"'})


def read_credentials(req: Request, auth_prefix: str) -> V1Credentials | Response:
    """The credentials of a v1 auth request, or the error answer (400, 401, 404)."""
    if req.method != "GET":
        return simple_response(req, 400)
    try:
        path = wsgi_to_str(req.environ.get("PATH_INFO", ""))
        segments = split_path(path[len(auth_prefix) - 1:], 1, 3, True)
    except (ValueError, UnicodeError):
        return simple_response(req, 404)
    headers = req.headers
    if segments[0] == "v1" and segments[2] == "auth":
        account = segments[1] or ""
        user_header = headers.get("X-Storage-User") or headers.get("X-Auth-User") or ""
        header_account, colon, user = user_header.partition(":")
        if not colon:
            user = header_account
        elif header_account != account:
            return unauthorized(req, account)
        key = headers.get("X-Storage-Pass") or headers.get("X-Auth-Key") or ""
    elif segments[0] in ("v1.0", "auth"):
        user_header = headers.get("X-Auth-User") or headers.get("X-Storage-User") or ""
        account, colon, user = user_header.partition(":")
        if not colon:
            return unauthorized(req, "unknown")
        key = headers.get("X-Auth-Key") or headers.get("X-Storage-Pass") or ""
    else:
        return simple_response(req, 400)
    if not (account and user and key):
        return unauthorized(req, account)
    return V1Credentials(account, user, key)


def token_response(req: Request, storage_url: str, token: str, expires_in_s: float) -> Response:
    """The 200 answer handing out `token` for `storage_url`."""
    body = json.dumps({"storage": {"default": "local", "local": storage_url}}).encode()
    response = simple_response(req, 200, body, content_type="application/json; charset=UTF-8")
    response.headers.update({
        "X-Storage-Url": storage_url, "X-Auth-Token": token, "X-Storage-Token": token,
        "X-Auth-Token-Expires": str(max(0, int(expires_in_s)))})
    return response
