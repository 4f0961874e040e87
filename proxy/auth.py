"""TempAuth: Swift v1 auth (`/auth/v1.0`) with users from config and signed tokens.

Users come from config lines `user_<account>_<user> = <key> [group ...] [storage_url]`, where
the groups `.admin` (the account's owner) and `.reseller_admin` (every account) matter. A GET of
`/auth/v1.0` with `X-Auth-User: account:user` and `X-Auth-Key: key` answers X-Storage-Url,
X-Auth-Token, X-Storage-Token and X-Auth-Token-Expires.

Tokens are HMAC-signed instead of stored: `<reseller_prefix>tk<expiry>.<nonce>.<user>.<mac>`,
so any worker of any proxy sharing `token_key` validates any token without a shared store;
the MAC also covers a fingerprint of the user's key, so changing a key revokes its tokens.
Validated tokens are remembered in a bounded per-process cache until they expire.

Authorization follows Swift's tempauth: reseller admins own every account, an account's
`.admin` users own it (but only reseller admins may PUT or DELETE the account itself), other
users and anonymous clients get what a container's X-Container-Read/Write ACL grants them
(`account:user` or `account` groups, `.r:<referrer>` and `.rlistings`). The ACL to check is
handed over in `environ[ACL_ENV_KEY]` by the proxy while it calls `swift.authorize`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from webob import Request, Response

from common.config import Config, ConfigError
from proxy import v1_auth
from proxy.acl import acl_grants, clean_acl
from proxy.errors import simple_response
from proxy.paths import split_path, wsgi_to_str
from ring import RingError, load_hash_secrets

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ACL_ENV_KEY = "ringstack.acl"
DEFAULT_TOKEN_LIFE_S = 86400
TOKEN_CACHE_MAX_ENTRIES = 10000
LOGGER = logging.getLogger("ringstack.proxy.tempauth")


class TokenSigner:
    """Issues and checks self-validating tokens: expiry, a random nonce, the user, a MAC."""

    def __init__(self, key: bytes, prefix: str, clock: Callable[[], float] = time.time):
        if len(key) < 16:
            raise ConfigError("the token signing key must be at least 16 bytes")
        self._key = key
        self.prefix = prefix + "tk"
        self._clock = clock

    def _mac(self, body: str, key_fingerprint: str) -> str:
        return hmac.new(self._key, f"{body}.{key_fingerprint}".encode(),
                        hashlib.sha256).hexdigest()

    def issue(self, account_user: str, key_fingerprint: str, life_s: float) -> tuple[str, int]:
        expires = int(self._clock() + life_s)
        user = base64.urlsafe_b64encode(account_user.encode()).decode().rstrip("=")
        body = f"{expires:x}.{secrets.token_hex(16)}.{user}"
        return f"{self.prefix}{body}.{self._mac(body, key_fingerprint)}", expires

    def read(self, token: str) -> tuple[str, int, str, str] | None:
        """(account_user, expires, signed body, mac) of a well-formed token, unverified."""
        if not token.startswith(self.prefix):
            return None
        try:
            expiry_hex, nonce, user, mac = token[len(self.prefix):].split(".")
            padded = user + "=" * (-len(user) % 4)
            account_user = base64.urlsafe_b64decode(padded.encode()).decode()
            expires = int(expiry_hex, 16)
        except (ValueError, UnicodeDecodeError):
            return None
        return account_user, expires, f"{expiry_hex}.{nonce}.{user}", mac

    def verify(self, token: str, key_fingerprint_of: Callable[[str], str | None]) -> \
            tuple[str, int] | None:
        """(account_user, expires) of a valid unexpired token, else None."""
        parsed = self.read(token)
        if parsed is None:
            return None
        account_user, expires, body, mac = parsed
        fingerprint = key_fingerprint_of(account_user)
        if fingerprint is None or expires <= self._clock():
            return None
        if not hmac.compare_digest(mac, self._mac(body, fingerprint)):
            return None
        return account_user, expires


class TempAuthUser:
    def __init__(self, account: str, user: str, key: str, groups: list[str], url: str):
        self.account = account
        self.user = user
        self.key = key
        self.groups = groups
        self.url = url                  # may hold $HOST, replaced by the request's host URL
        self.key_fingerprint = hashlib.sha256(key.encode()).hexdigest()

    @property
    def account_id(self) -> str:
        """The storage account this user's URL points at (e.g. AUTH_test)."""
        return self.url.rstrip("/").rsplit("/", 1)[-1]


def parse_users(conf: Config, reseller_prefix: str) -> dict[str, TempAuthUser]:
    """Users from `user_<account>_<user>` (and `user64_<b64 account>_<b64 user>`) options."""
    users = {}
    for option in conf:
        if option.startswith("user64_"):
            encoded_account, _, encoded_user = option[len("user64_"):].partition("_")
            try:
                account = base64.b64decode(encoded_account + "=" * (-len(encoded_account) % 4))
                user = base64.b64decode(encoded_user + "=" * (-len(encoded_user) % 4))
                account_name, user_name = account.decode(), user.decode()
            except ValueError:
                raise ConfigError(f"{option}: bad base64 account or user name") from None
        elif option.startswith("user_"):
            account_name, _, user_name = option[len("user_"):].partition("_")
        else:
            continue
        if not account_name or not user_name:
            raise ConfigError(f"{option}: expected user_<account>_<user>")
        values = conf[option].split()
        if not values:
            raise ConfigError(f"{option} has no key set")
        key = values.pop(0)
        if values and ("://" in values[-1] or "$HOST" in values[-1]):
            url = values.pop()
        else:
            url = f"$HOST/v1/{reseller_prefix}{account_name}"
        users[f"{account_name}:{user_name}"] = TempAuthUser(account_name, user_name, key,
                                                            values, url)
    return users


def denied_response(req: Request) -> Response:
    """403 for a known user, 401 for an anonymous one."""
    if req.environ.get("REMOTE_USER"):
        return simple_response(req, 403)
    return simple_response(req, 401)


class TempAuth:
    def __init__(self, app: WsgiApp, conf: Config, clock: Callable[[], float] = time.time):
        self.app = app
        prefix = conf.get_str("reseller_prefix", "AUTH")
        self.reseller_prefix = prefix + "_" if prefix and not prefix.endswith("_") else prefix
        self.auth_prefix = "/" + conf.get_str("auth_prefix", "/auth/").strip("/") + "/"
        self.token_life_s = conf.get_float("token_life", DEFAULT_TOKEN_LIFE_S, minimum=1)
        self.allow_overrides = conf.get_bool("allow_overrides", True)
        self.storage_url_scheme = conf.get_str("storage_url_scheme", "default")
        if self.storage_url_scheme not in ("default", "http", "https"):
            raise ConfigError("storage_url_scheme must be default, http or https")
        self.users = parse_users(conf, self.reseller_prefix)
        self.signer = TokenSigner(token_key(conf), self.reseller_prefix, clock)
        self._clock = clock
        self._valid_tokens: dict[str, tuple[str, int]] = {}

    # ---- WSGI -------------------------------------------------------------------------------

    def __call__(self, env: dict[str, Any], start_response: Callable[..., Any]) -> \
            Iterable[bytes]:
        if self.allow_overrides and env.get("swift.authorize_override"):
            return self.app(env, start_response)
        path = env.get("PATH_INFO", "")
        if path.startswith(self.auth_prefix):
            return self.handle_auth_request(Request(env))(env, start_response)
        token = env.get("HTTP_X_AUTH_TOKEN", env.get("HTTP_X_STORAGE_TOKEN"))
        if token and token.startswith(self.signer.prefix):
            groups = self.groups_for_token(token)
            if groups is None:
                # A token in our format that does not validate: we are definitive for it.
                account = self._path_account(path) or "unknown"
                return simple_response(None, 401, headers={
                    "Www-Authenticate": f'Swift realm="{quote(account)}"'})(env, start_response)
            env["REMOTE_USER"] = groups
            env["swift.authorize"] = self.authorize
            env["swift.clean_acl"] = clean_acl
            if ".reseller_admin" in groups.split(","):
                env["reseller_request"] = True
        elif self._is_definitive(path):
            # anonymous (or someone else's token) on an account of ours: ACLs decide
            env["swift.authorize"] = self.authorize
            env["swift.clean_acl"] = clean_acl
        elif "swift.authorize" not in env:
            env["swift.authorize"] = denied_response
        return self.app(env, start_response)

    def _path_account(self, path: str) -> str | None:
        try:
            return split_path(wsgi_to_str(path), 1, 4, True)[1]
        except (ValueError, UnicodeError):
            return None

    def _is_definitive(self, path: str) -> bool:
        account = self._path_account(path)
        return bool(account) and account.startswith(self.reseller_prefix)

    # ---- tokens -----------------------------------------------------------------------------

    def _fingerprint_of(self, account_user: str) -> str | None:
        user = self.users.get(account_user)
        return user.key_fingerprint if user else None

    def groups_for_token(self, token: str) -> str | None:
        """`account,account:user[,groups][,account_id]` for a valid token, else None."""
        cached = self._valid_tokens.get(token)
        now = self._clock()
        if cached is not None and cached[1] > now:
            account_user = cached[0]
        else:
            self._valid_tokens.pop(token, None)
            verified = self.signer.verify(token, self._fingerprint_of)
            if verified is None:
                return None
            if len(self._valid_tokens) >= TOKEN_CACHE_MAX_ENTRIES:
                self._valid_tokens.clear()    # crude but bounded; entries are cheap to rebuild
            self._valid_tokens[token] = verified
            account_user = verified[0]
        user = self.users.get(account_user)
        if user is None:
            return None
        return ",".join(self._groups(user))

    def _groups(self, user: TempAuthUser) -> list[str]:
        groups = [user.account, f"{user.account}:{user.user}"]
        for group in user.groups:
            if group == ".admin":
                groups.append(user.account_id)
            else:
                groups.append(group)
        return groups

    def handle_auth_request(self, req: Request) -> Response:
        """GET /auth/v1.0 (or /auth/v1/<account>/auth): check the key, hand out a token."""
        credentials = v1_auth.read_credentials(req, self.auth_prefix)
        if isinstance(credentials, Response):
            return credentials
        account, user_name = credentials.account, credentials.user
        user = self.users.get(f"{account}:{user_name}")
        if user is None or not hmac.compare_digest(user.key.encode(), credentials.key.encode()):
            LOGGER.info("bad credentials for %s:%s", account, user_name)
            return v1_auth.unauthorized(req, account)
        token, expires = self.signer.issue(f"{account}:{user_name}", user.key_fingerprint,
                                           self.token_life_s)
        url = user.url.replace("$HOST", req.host_url)
        if self.storage_url_scheme != "default":
            url = self.storage_url_scheme + ":" + url.split(":", 1)[1]
        return v1_auth.token_response(req, url, token, expires - self._clock())

    # ---- authorization ----------------------------------------------------------------------

    def authorize(self, req: Request) -> Response | None:
        """None when `req` may proceed, else the denial (Swift's tempauth rules)."""
        try:
            path = wsgi_to_str(req.environ.get("PATH_INFO", ""))
            _version, account, container, obj = split_path(path, 1, 4, True)
        except (ValueError, UnicodeError):
            return simple_response(req, 404)
        if not account or not account.startswith(self.reseller_prefix):
            return denied_response(req)
        user_groups = [g for g in (req.environ.get("REMOTE_USER") or "").split(",") if g]
        if ".reseller_admin" in user_groups and not account.startswith("."):
            req.environ["swift_owner"] = True
            return None
        if account in user_groups and (req.method not in ("DELETE", "PUT") or container):
            # the account's admin; creating or deleting accounts is for reseller admins only
            req.environ["swift_owner"] = True
            return None
        if req.method == "OPTIONS":
            return None
        if acl_grants(req.environ.get(ACL_ENV_KEY), req.referer, bool(obj), user_groups):
            return None
        return denied_response(req)


def token_key(conf: Config) -> bytes:
    """The token signing key: `token_key`, else one derived from the cluster's hash secrets.

    Every worker and every proxy of a cluster must use the same key, so a random per-process
    key is never a fallback; the hash secrets are the one secret every proxy already shares.
    """
    configured = conf.get_str("token_key")
    if configured:
        return configured.encode()
    swift_dir = conf.get_str("swift_dir", "/etc/ringstack")
    try:
        hash_secrets = load_hash_secrets(os.path.join(swift_dir, "ringstack.conf"))
    except (OSError, ValueError, RingError) as err:
        raise ConfigError(f"tempauth: set token_key (cannot derive it: {err})") from None
    return hashlib.sha256(b"ringstack tempauth token key\x00" + hash_secrets.prefix + b"\x00"
                          + hash_secrets.suffix).digest()


def filter_factory(conf: Config) -> Callable[[WsgiApp], WsgiApp]:
    from proxy.info import register_swift_info
    register_swift_info("tempauth")
    return lambda app: TempAuth(app, conf)
