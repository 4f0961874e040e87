"""keystoneauth: the proxy's authentication and authorization against the identity service.

Owns who may do what when identity (proxy.identity_client) knows the users:
- authentication: an X-Auth-Token (or X-Storage-Token) is validated through identity (cached
  by the client); the caller's AuthContext goes into environ[AUTH_CONTEXT_ENV_KEY], REMOTE_USER
  is `project_name:user_name`, and `swift.authorize` is installed. A context already in the
  environ (the S3 layer checked a signature) is trusted as it is. An invalid token on one of
  our accounts is a 401 with Www-Authenticate; identity out of reach is a 503.
- authorization (Swift keystoneauth's rules): role `admin` on any project is a reseller admin
  (every account, `swift_owner`, `reseller_request`); `member` owns AUTH_<its project id>
  (read, write, ACLs and account metadata; only reseller admins PUT or DELETE an account);
  `reader` may GET/HEAD its project's account; anyone else gets what the container's ACL grants
  (`<project id|name|*>:<user id|name|*>` entries, role names, `.r:` referrers, `.rlistings`).
  A known user refused is a 403, an anonymous one a 401. `swift.authorize_override` (tempurl)
  lets a request through untouched.
- Swift v1 auth: GET /auth/v1.0 with `X-Auth-User: project:user` and `X-Auth-Key: password`
  gets a project-scoped token from identity, answered as tempauth does (X-Storage-Url
  <host>/v1/AUTH_<project id>, X-Auth-Token, X-Storage-Token, X-Auth-Token-Expires).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from webob import Request, Response

from common.config import Config
from proxy import v1_auth
from proxy.acl import acl_grants, clean_acl
from proxy.auth import ACL_ENV_KEY
from proxy.errors import simple_response
from proxy.identity_client import (
    AUTH_CONTEXT_ENV_KEY,
    AuthContext,
    IdentityClient,
    IdentityUnavailable,
    identity_client,
)
from proxy.paths import split_path, wsgi_to_str

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_LENGTH_MAX = 8192
# keystonemiddleware's identity headers: never believed from a client, set from the context
IDENTITY_HEADERS = ("HTTP_X_IDENTITY_STATUS", "HTTP_X_USER_ID", "HTTP_X_USER_NAME",
                    "HTTP_X_PROJECT_ID", "HTTP_X_PROJECT_NAME", "HTTP_X_ROLES",
                    "HTTP_X_TENANT_ID", "HTTP_X_TENANT_NAME", "HTTP_X_TENANT")
LOGGER = logging.getLogger("ringstack.proxy.keystoneauth")


class KeystoneAuth:
    def __init__(self, app: WsgiApp, conf: Config, client: IdentityClient | None = None):
        self.app = app
        prefix = conf.get_str("reseller_prefix", "AUTH")
        self.reseller_prefix = prefix + "_" if prefix and not prefix.endswith("_") else prefix
        self.auth_prefix = "/" + conf.get_str("auth_prefix", "/auth/").strip("/") + "/"
        self.allow_overrides = conf.get_bool("allow_overrides", True)
        self.reseller_admin_roles = frozenset(
            r.lower() for r in conf.get_list("reseller_admin_role", ("admin",)))
        self.operator_roles = frozenset(
            r.lower() for r in conf.get_list("operator_roles", ("admin", "member")))
        self.reader_roles = frozenset(
            r.lower() for r in conf.get_list("reader_roles", ("reader",)))
        self.domain = conf.get_str("identity_v1_auth_domain", "default")
        self.client = client or identity_client(conf)
        self.www_authenticate_uri = conf.get_str("www_authenticate_uri") or self.client.url

    # ---- WSGI -------------------------------------------------------------------------------

    def __call__(self, env: dict[str, Any], start_response: Callable[..., Any]) -> \
            Iterable[bytes]:
        if self.allow_overrides and env.get("swift.authorize_override"):
            return self.app(env, start_response)
        path = env.get("PATH_INFO", "")
        if path.startswith(self.auth_prefix):
            return self.handle_v1_auth(Request(env))(env, start_response)
        for name in IDENTITY_HEADERS:
            env.pop(name, None)
        context = env.get(AUTH_CONTEXT_ENV_KEY)
        account = self._path_account(path)
        ours = bool(account) and account.startswith(self.reseller_prefix)
        if not isinstance(context, AuthContext):
            token = env.get("HTTP_X_AUTH_TOKEN") or env.get("HTTP_X_STORAGE_TOKEN")
            if token:
                try:
                    context = self.client.validate_token(token)
                except IdentityUnavailable as err:
                    LOGGER.error("token validation failed: %s", err)
                    return simple_response(None, 503)(env, start_response)
                if context is None and ours:
                    return self._unauthorized(Request(env))(env, start_response)
        if isinstance(context, AuthContext):
            env[AUTH_CONTEXT_ENV_KEY] = context
            env["REMOTE_USER"] = f"{context.project_name}:{context.user_name}"
            env.update({"HTTP_X_IDENTITY_STATUS": "Confirmed",
                        "HTTP_X_USER_ID": context.user_id, "HTTP_X_USER_NAME": context.user_name,
                        "HTTP_X_PROJECT_ID": context.project_id,
                        "HTTP_X_PROJECT_NAME": context.project_name,
                        "HTTP_X_ROLES": ",".join(sorted(context.roles))})
            if self.reseller_admin_roles & context.roles:
                env["reseller_request"] = True
            # bound to the context: subrequests copy swift.authorize, not our environ key
            env["swift.authorize"] = functools.partial(self.authorize, context)
            env["swift.clean_acl"] = clean_acl
        elif ours:
            env["swift.authorize"] = functools.partial(self.authorize, None)
            env["swift.clean_acl"] = clean_acl
        elif "swift.authorize" not in env:
            env["swift.authorize"] = self.deny
        return self.app(env, start_response)

    def _path_account(self, path: str) -> str | None:
        try:
            return split_path(wsgi_to_str(path), 1, 4, True)[1]
        except (ValueError, UnicodeError):
            return None

    def _unauthorized(self, req: Request) -> Response:
        return simple_response(req, 401, headers={
            "Www-Authenticate": f'Keystone uri="{self.www_authenticate_uri}"'})

    def deny(self, req: Request) -> Response:
        """403 for a known user, 401 (with the identity URI to go to) for an anonymous one."""
        if isinstance(req.environ.get(AUTH_CONTEXT_ENV_KEY), AuthContext):
            return simple_response(req, 403)
        return self._unauthorized(req)

    # ---- authorization ----------------------------------------------------------------------

    def authorize(self, context: AuthContext | None, req: Request) -> Response | None:
        """None when `req` may proceed, else the denial (Swift keystoneauth's rules)."""
        try:
            _version, account, container, obj = split_path(
                wsgi_to_str(req.environ.get("PATH_INFO", "")), 1, 4, True)
        except (ValueError, UnicodeError):
            return simple_response(req, 404)
        if context is not None:
            req.environ.setdefault(AUTH_CONTEXT_ENV_KEY, context)
        if not account or not account.startswith(self.reseller_prefix) or \
                account == self.reseller_prefix:
            return self.deny(req)
        if context is not None:
            if self.reseller_admin_roles & context.roles:
                req.environ["swift_owner"] = True
                req.environ["reseller_request"] = True
                return None
            own_account = bool(context.project_id) and \
                account == context.account(self.reseller_prefix)
            if own_account and self.operator_roles & context.roles and \
                    (container or req.method not in ("PUT", "DELETE")):
                # an account's owners use it; creating or deleting it is a reseller's job
                req.environ["swift_owner"] = True
                return None
            if own_account and self.reader_roles & context.roles and \
                    req.method in READ_METHODS:
                return None
        if req.method == "OPTIONS":
            return None       # CORS preflights carry no credentials
        if acl_grants(req.environ.get(ACL_ENV_KEY), req.referer, bool(obj),
                      self.acl_principals(context)):
            return None
        return self.deny(req)

    @staticmethod
    def acl_principals(context: AuthContext | None) -> list[str]:
        """The ACL entries naming this caller (Swift keystoneauth's tenant:user matrix, plus
        its role names); names count too, as every project lives in one domain here."""
        if context is None or not context.project_id:
            return []
        projects = (context.project_id, context.project_name, "*")
        users = (context.user_id, context.user_name, "*")
        principals = [f"{project}:{user}" for project in projects if project
                      for user in users if user]
        principals.extend(sorted(context.roles))
        return principals

    # ---- Swift v1 auth ------------------------------------------------------------------------

    def handle_v1_auth(self, req: Request) -> Response:
        """GET /auth/v1.0 (or /auth/v1/<project>/auth): a token for `project:user`."""
        credentials = v1_auth.read_credentials(req, self.auth_prefix)
        if isinstance(credentials, Response):
            return credentials
        project, user, key = credentials.account, credentials.user, credentials.key
        if len(key) > TOKEN_LENGTH_MAX:
            return v1_auth.unauthorized(req, project)
        try:
            issued = self.client.password_token(user, key, project, self.domain)
        except IdentityUnavailable as err:
            LOGGER.error("v1 auth for %s:%s: %s", project, user, err)
            return simple_response(req, 503)
        if issued is None:
            LOGGER.info("v1 auth refused for %s:%s", project, user)
            return v1_auth.unauthorized(req, project)
        token, context = issued
        url = f"{req.host_url}/v1/{quote(context.account(self.reseller_prefix))}"
        return v1_auth.token_response(req, url, token, context.expires_at - time.time())


def filter_factory(conf: Config) -> Callable[[WsgiApp], WsgiApp]:
    from proxy.info import register_swift_info
    register_swift_info("keystoneauth")
    return lambda app: KeystoneAuth(app, conf)
