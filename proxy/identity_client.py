"""The proxy's client of the identity service (Keystone v3 over HTTP), with its caches.

Owns what the proxy learns from identity and how long it trusts it:
- `validate_token`: GET /v3/auth/tokens with the proxy's service token as caller; the answer
  (valid or not) is cached for min(identity_cache_seconds, the token's expiry);
- `password_token`: POST /v3/auth/tokens for Swift v1 auth (`/auth/v1.0`);
- `s3_auth`: POST /v3/s3tokens; for SigV4 the answer carries the derived signing key of the
  request's scope, cached per (access key, scope) so later requests of that scope (and their
  aws-chunked chunk signatures) are checked here with common.aws_sig, without a call;
- the service token itself: password-authenticated as `identity_service_user`, project scoped,
  reused until shortly before it expires, fetched again when identity answers 401 to it.

All HTTP goes through eventlet's green http.client (the proxy's workers are eventlet servers),
one connection per call, bounded by `identity_timeout`. Refusals are None; an unreachable or
failing identity service raises IdentityUnavailable, which callers answer with 503, never 500.
The proxy never imports identity/: this module and the contract's JSON are the whole interface.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import eventlet
import eventlet.semaphore
from eventlet.green.http import client as http_client

from common.aws_sig import sign_v4, signatures_match, v4_scope
from common.config import Config, ConfigError

AUTH_CONTEXT_ENV_KEY = "ringstack.auth_context"
DEFAULT_CACHE_SECONDS = 30.0
DEFAULT_TIMEOUT_S = 10.0
CACHE_MAX_ENTRIES = 10000
# A service token is replaced this long before it expires, so no request carries one that
# expires in flight (and a clock a little ahead of identity's does not matter).
SERVICE_TOKEN_MARGIN_S = 120.0
RESPONSE_BODY_MAX_BYTES = 4 * 1024 * 1024    # a token body with a big catalog is a few KiB
# Keystone's message when the X-Auth-Token of a request is not accepted.
CALLER_REFUSED_MESSAGE = "The request you have made requires authentication."
LOGGER = logging.getLogger("ringstack.proxy.identity")


class IdentityUnavailable(Exception):
    """Identity could not be reached, timed out, or failed (5xx): the caller answers 503."""


@dataclasses.dataclass(frozen=True)
class AuthContext:
    """Who a validated token (or S3 signature) belongs to, and their roles on its project."""

    user_id: str
    user_name: str
    project_id: str          # "" for an unscoped token: no roles, no account
    project_name: str
    roles: frozenset[str]    # lower-case role names on the project
    expires_at: float        # unix time

    def account(self, reseller_prefix: str = "AUTH_") -> str:
        return f"{reseller_prefix}{self.project_id}"


@dataclasses.dataclass(frozen=True)
class S3Auth:
    context: AuthContext
    signing_key: bytes | None   # SigV4 derived key of the request's scope (None for SigV2)


def parse_time(text: str) -> float:
    """Unix time of Keystone's ISO 8601 timestamps (`2024-05-01T12:00:00.000000Z`)."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def context_from_token(body: Mapping[str, Any]) -> AuthContext | None:
    """The AuthContext of a Keystone token body ({"token": {...}}); None if malformed."""
    token = body.get("token") if isinstance(body, Mapping) else None
    if not isinstance(token, Mapping):
        return None
    try:
        user = token["user"]
        project = token.get("project") or {}
        roles = frozenset(str(role["name"]).lower() for role in token.get("roles") or ()
                          if isinstance(role, Mapping) and role.get("name"))
        return AuthContext(
            user_id=str(user["id"]), user_name=str(user.get("name", "")),
            project_id=str(project.get("id", "")), project_name=str(project.get("name", "")),
            roles=roles if project else frozenset(),
            expires_at=parse_time(str(token["expires_at"])))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _refuses_caller(answer: Any) -> bool:
    """Whether a 401 from identity is about the caller's token (Keystone's wording for it)
    rather than about what the caller asked to have checked."""
    try:
        message = str(answer["error"]["message"])
    except (KeyError, TypeError):
        return False
    return message == CALLER_REFUSED_MESSAGE


class _TtlCache:
    """A bounded mapping whose entries carry their own deadline; oldest evicted first."""

    def __init__(self, clock: Callable[[], float], max_entries: int = CACHE_MAX_ENTRIES):
        self._entries: collections.OrderedDict[Any, tuple[float, Any]] = \
            collections.OrderedDict()
        self._clock = clock
        self.max_entries = max_entries

    def get(self, key: Any) -> tuple[bool, Any]:
        """(found, value) of an entry still within its deadline."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if entry[0] <= self._clock():
            del self._entries[key]
            return False, None
        return True, entry[1]

    def set(self, key: Any, value: Any, deadline: float) -> None:
        if deadline <= self._clock():
            return
        self._entries[key] = (deadline, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def pop(self, key: Any) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


def _token_key(token: str) -> str:
    # cache keys are digests, so a heap dump of the cache holds no usable token
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


class IdentityClient:
    """Keystone v3 calls the proxy needs, with caches; share one per process (identity_client)."""

    def __init__(self, url: str, service_user: str = "", service_password: str = "",
                 service_project: str = "service", service_domain: str = "default",
                 cache_seconds: float = DEFAULT_CACHE_SECONDS,
                 timeout_s: float = DEFAULT_TIMEOUT_S,
                 clock: Callable[[], float] = time.time):
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"identity_url must be an http(s) URL, not {url!r}")
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        base = parts.path.rstrip("/")
        # operators paste the catalog's identity URL, which ends in /v3
        self._base_path = base[:-3] if base.endswith("/v3") else base
        self.service_user = service_user
        self._service_password = service_password
        self.service_project = service_project
        self.service_domain = service_domain
        self.cache_seconds = cache_seconds
        self.timeout_s = timeout_s
        self._clock = clock
        self._tokens = _TtlCache(clock)
        self._s3_keys = _TtlCache(clock)
        self._service_token: tuple[str, float] | None = None   # (token, renew at)
        self._service_lock = eventlet.semaphore.Semaphore()
        # identity calls by kind, for logs and tests
        self.calls: collections.Counter[str] = collections.Counter()

    # ---- HTTP -------------------------------------------------------------------------------

    def _request(self, method: str, path: str, headers: Mapping[str, str] | None = None,
                 body: Mapping[str, Any] | None = None) -> tuple[int, dict[str, str], Any]:
        """(status, lower-case headers, parsed JSON body or None) of one call to identity."""
        send_headers = {"Accept": "application/json", "Connection": "close",
                        "User-Agent": "ringstack-proxy"}
        send_headers.update(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            send_headers["Content-Type"] = "application/json"
        connection_class = http_client.HTTPSConnection if self._https else \
            http_client.HTTPConnection
        conn = connection_class(self._host, self._port)
        try:
            with eventlet.Timeout(self.timeout_s):
                conn.request(method, self._base_path + path, body=data, headers=send_headers)
                response = conn.getresponse()
                raw = response.read(RESPONSE_BODY_MAX_BYTES)
                status = response.status
                answer_headers = {k.lower(): v for k, v in response.getheaders()}
        except eventlet.Timeout:
            raise IdentityUnavailable(f"identity {method} {path}: timed out after "
                                      f"{self.timeout_s}s") from None
        except (OSError, http_client.HTTPException) as err:
            raise IdentityUnavailable(f"identity {method} {path}: {err!r}") from None
        finally:
            conn.close()
        if status >= 500:
            raise IdentityUnavailable(f"identity {method} {path}: {status}")
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return status, answer_headers, parsed

    # ---- the service token --------------------------------------------------------------------

    def service_token(self, stale: str | None = None) -> str | None:
        """The proxy's own token (None without a configured service user); `stale` is one
        identity just refused, never handed out again."""
        if not self.service_user:
            return None
        with self._service_lock:   # one fetch when many requests find it stale at once
            current = self._service_token
            if current is not None and current[0] != stale and current[1] > self._clock():
                return current[0]
            issued = self._password_auth(self.service_user, self._service_password,
                                         self.service_project, self.service_domain,
                                         kind="service_token")
            if issued is None:
                self._service_token = None
                LOGGER.error("identity refused the proxy's service user %r (project %r)",
                             self.service_user, self.service_project)
                raise IdentityUnavailable("identity refused the proxy's service credentials")
            token, context = issued
            # renewed a margin before it expires (half its life if that is shorter)
            margin = min(SERVICE_TOKEN_MARGIN_S, (context.expires_at - self._clock()) / 2)
            self._service_token = (token, context.expires_at - margin)
            return token

    # ---- password tokens ----------------------------------------------------------------------

    def _password_auth(self, user: str, password: str, project: str, domain: str,
                       kind: str) -> tuple[str, AuthContext] | None:
        # `domain` is a domain id, as Keystone's "default" is
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": domain}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": domain}}}}}
        self.calls[kind] += 1
        status, headers, answer = self._request("POST", "/v3/auth/tokens", body=body)
        token = headers.get("x-subject-token")
        if status not in (200, 201) or not token:
            return None
        context = context_from_token(answer or {})
        if context is None:
            LOGGER.warning("identity answered a malformed token body")
            return None
        return token, context

    def password_token(self, user: str, password: str, project: str,
                       domain: str = "default") -> tuple[str, AuthContext] | None:
        """A token for `user` (a name) scoped to `project` (a name), both in the domain whose
        id is `domain`; None if identity refuses."""
        if not (user and password and project):
            return None
        issued = self._password_auth(user, password, project, domain, kind="password_token")
        if issued is not None:
            # the client will present it at once: spare that validation call
            token, context = issued
            self._tokens.set(_token_key(token), context,
                             min(self._clock() + self.cache_seconds, context.expires_at))
        return issued

    # ---- token validation -----------------------------------------------------------------------

    def validate_token(self, token: str) -> AuthContext | None:
        """Who `token` belongs to, or None when it is invalid, expired or revoked."""
        if not token or len(token) > 8192 or not token.isprintable():
            return None
        key = _token_key(token)
        found, cached = self._tokens.get(key)
        if found:
            if cached is None or cached.expires_at > self._clock():
                return cached
            self._tokens.pop(key)
            return None
        context = self._validate_remote(token)
        now = self._clock()
        deadline = now + self.cache_seconds
        if context is not None:
            deadline = min(deadline, context.expires_at)
            if context.expires_at <= now:
                context = None
        self._tokens.set(key, context, deadline)
        return context

    def _validate_remote(self, token: str) -> AuthContext | None:
        refused: str | None = None
        for attempt in range(2):
            # without a service user a token checks itself (allowed for one's own token)
            caller = self.service_token(stale=refused) or token
            self.calls["validate_token"] += 1
            status, _headers, answer = self._request(
                "GET", "/v3/auth/tokens", {"X-Auth-Token": caller, "X-Subject-Token": token})
            if status == 200:
                context = context_from_token(answer or {})
                if context is None:
                    LOGGER.warning("identity answered a malformed token body")
                return context
            if status == 401 and caller != token and attempt == 0:
                refused = caller    # our service token was revoked or expired early: renew it
                continue
            return None
        return None

    # ---- S3 signatures ----------------------------------------------------------------------

    def s3_auth(self, access: str, string_to_sign: bytes, signature: str) -> S3Auth | None:
        """Who signed `string_to_sign` with `signature` under access key `access`, or None."""
        if not access or not signature:
            return None
        scope = v4_scope(string_to_sign)
        if scope is not None:
            found, cached = self._s3_keys.get((access, scope))
            if found:
                context, signing_key = cached
                if context.expires_at > self._clock() and \
                        signatures_match(sign_v4(signing_key, string_to_sign), signature):
                    return S3Auth(context, signing_key)
                # a mismatch may be a rotated secret: identity has the last word
        body = {"credentials": {
            "access": access,
            "token": base64.b64encode(string_to_sign).decode(),
            "signature": signature}}
        refused: str | None = None
        for attempt in range(2):
            headers: dict[str, str] = {}
            service_token = self.service_token(stale=refused)
            if service_token:
                headers["X-Auth-Token"] = service_token
            self.calls["s3tokens"] += 1
            status, _headers, answer = self._request("POST", "/v3/s3tokens", headers, body)
            if status == 401 and service_token and attempt == 0 and \
                    _refuses_caller(answer):
                refused = service_token   # identity refused our token, not the signature
                continue
            break
        if status != 200 or not isinstance(answer, Mapping):
            return None
        context = context_from_token(answer)
        if context is None or not context.project_id:
            return None
        signing_key = None
        key_hex = answer.get("s3_signing_key")
        if scope is not None and isinstance(key_hex, str):
            try:
                signing_key = bytes.fromhex(key_hex)
            except ValueError:
                signing_key = None
            if signing_key is not None:
                deadline = min(self._clock() + self.cache_seconds, context.expires_at)
                self._s3_keys.set((access, scope), (context, signing_key), deadline)
        return S3Auth(context, signing_key)


_CLIENTS: dict[tuple[Any, ...], IdentityClient] = {}


def identity_client(conf: Config) -> IdentityClient:
    """The process's shared client for the identity service `conf` names."""
    url = conf.get_str("identity_url")
    if not url:
        raise ConfigError(f"{conf.source} [{conf.section}] identity_url: not set")
    settings = (
        url, conf.get_str("identity_service_user"), conf.get_str("identity_service_password"),
        conf.get_str("identity_service_project", "service"),
        conf.get_str("identity_service_domain", "default"),
        conf.get_float("identity_cache_seconds", DEFAULT_CACHE_SECONDS, minimum=0),
        conf.get_float("identity_timeout", DEFAULT_TIMEOUT_S, minimum=0.001))
    client = _CLIENTS.get(settings)
    if client is None:
        client = _CLIENTS[settings] = IdentityClient(*settings)
    return client
