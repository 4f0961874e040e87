"""TempURL: time-limited, signed object URLs that need no token (Swift's tempurl middleware).

A request `/v1/<account>/<container>/<object>?temp_url_sig=<sig>&temp_url_expires=<t>` is
allowed when `sig` is the HMAC of `<METHOD>\\n<t>\\n<path>` under one of the account's
(X-Account-Meta-Temp-URL-Key, -Key-2) or the container's (X-Container-Meta-Temp-URL-Key, -Key-2)
keys and `t` (unix seconds or ISO 8601 `YYYY-MM-DDThh:mm:ssZ`) is still ahead. As Swift:
- digests: hex SHA1 (40 digits), SHA256 (64), SHA512 (128), or `<digest>:<base64>`; only the
  `allowed_digests` count;
- `temp_url_prefix=<p>` signs `prefix:/v1/<a>/<c>/<p>` for every object under that prefix, and
  `temp_url_ip_range` adds an `ip=<range>\\n` line limiting the client's address;
- a HEAD may use a GET, HEAD or PUT signature; other methods must be in `methods`;
- a wrong signature, a past expiry or a missing key is a 401 "Temp URL invalid";
- an allowed request gets `swift.authorize_override` and a `swift.authorize` that keeps its
  subrequests inside the key's account (account key) or container (container key);
- GET/HEAD answers get a Content-Disposition (`filename=`, `inline`, else the object name) and
  an Expires; object metadata not public (`X-Object-Meta-Public-*`) is removed from answers;
  X-Object-Manifest and symlink headers are refused on the way in (400).
The keys are read with owner-privileged HEAD subrequests (they are owner-only headers that the
proxy hides from everyone else).
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import hmac
import ipaddress
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from common.config import Config
from proxy.errors import simple_response
from proxy.middleware import as_config, register_info
from proxy.middleware.subrequest import (
    HttpError,
    StartResponse,
    WsgiApp,
    WsgiEnv,
    call_app,
    make_env,
    query_params,
    request_headers,
    split_swift_path,
    wsgi_to_str,
)

DEFAULT_METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")
DIGEST_HEX_LENGTHS = {"sha1": 40, "sha256": 64, "sha512": 128}
DEFAULT_ALLOWED_DIGESTS = ("sha1", "sha256", "sha512")
DEFAULT_INCOMING_REMOVE_HEADERS = ("x-timestamp", "x-open-expired")
DISALLOWED_INCOMING_HEADERS = ("x-object-manifest", "x-symlink-target",
                               "x-symlink-target-account")
DEFAULT_OUTGOING_REMOVE_HEADERS = ("x-object-meta-*",)
DEFAULT_OUTGOING_ALLOW_HEADERS = ("x-object-meta-public-*",)
EXPIRES_ISO8601_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
ACCOUNT_SCOPE = "account"
CONTAINER_SCOPE = "container"
INVALID_BODY = b"401 Unauthorized: Temp URL invalid\n"
KEY_NAMES = ("temp-url-key", "temp-url-key-2")
TEMPURL_USER = ".wsgi.tempurl"


def parse_expires(text: str | None, now: float) -> int:
    """The expiry of `temp_url_expires` as unix seconds; 0 when missing, malformed or past."""
    if not text:
        return 0
    try:
        expires = int(text)
    except ValueError:
        try:
            expires = calendar.timegm(time.strptime(text, EXPIRES_ISO8601_FORMAT))
        except ValueError:
            return 0
    return expires if expires >= now else 0


def parse_signature(sig: str, allowed_digests: Iterable[str]) -> tuple[str, str] | None:
    """(digest name, lower-case hex signature) of `temp_url_sig`, None if not acceptable."""
    allowed = set(allowed_digests)
    if ":" in sig:
        digest, _, encoded = sig.partition(":")
        if digest not in allowed or digest not in DIGEST_HEX_LENGTHS:
            return None
        # Swift accepts URL-safe base64 and missing padding
        encoded = encoded.replace("-", "+").replace("_", "/")
        encoded += "=" * (-len(encoded) % 4)
        try:
            hex_sig = base64.b64decode(encoded, validate=True).hex()
        except (binascii.Error, ValueError):
            return None
    else:
        hex_sig = sig.lower()
        digest = next((name for name, length in DIGEST_HEX_LENGTHS.items()
                       if length == len(hex_sig)), "")
        if digest not in allowed:
            return None
    if len(hex_sig) != DIGEST_HEX_LENGTHS[digest]:
        return None
    return digest, hex_sig


def tempurl_hmac(method: str, expires: int, path: str, key: str, digest: str = "sha256",
                 ip_range: str | None = None) -> str:
    """The hex signature of a temp URL (`path` as the native string, possibly `prefix:...`)."""
    message = f"{method}\n{expires}\n{path}"
    if ip_range:
        message = f"ip={ip_range}\n{message}"
    return hmac.new(key.encode(), message.encode("utf-8", "surrogateescape"),
                    getattr(hashlib, digest)).hexdigest()


def disposition(kind: str, filename: str) -> str:
    return (f'{kind}; filename="{urllib.parse.quote(filename, safe=" /")}"; '
            f"filename*=UTF-8''{urllib.parse.quote(filename)}")


def _header_matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    exact = {p.lower() for p in patterns if not p.endswith("*")}
    prefixes = tuple(p[:-1].lower() for p in patterns if p.endswith("*"))

    def matches(name: str) -> bool:
        lower = name.lower()
        return lower in exact or bool(prefixes and lower.startswith(prefixes))
    return matches


def authorize_within(account: str, container: str | None) -> Callable[[Any], Any]:
    """A swift.authorize keeping a temp URL's (sub)requests inside its key's scope."""
    def authorize(req: Any) -> Any:
        path = split_swift_path(wsgi_to_str(req.environ.get("PATH_INFO", "")))
        if path is not None and path.account == account and \
                (container is None or path.container == container):
            return None
        return simple_response(req, 401, INVALID_BODY,
                               content_type="text/plain; charset=UTF-8")
    return authorize


def config_words(conf: Config, key: str, default: Iterable[str] = ()) -> list[str]:
    """A list option separated by spaces or commas (Swift's tempurl options use spaces)."""
    if key not in conf:
        return list(default)
    return conf[key].replace(",", " ").split()


class TempUrl:
    def __init__(self, app: WsgiApp, conf: Config, clock: Callable[[], float] = time.time):
        self.app = app
        self.methods = [m.upper() for m in config_words(conf, "methods", DEFAULT_METHODS)]
        self.allowed_digests = [d.lower() for d in config_words(
            conf, "allowed_digests", DEFAULT_ALLOWED_DIGESTS) if d.lower() in DIGEST_HEX_LENGTHS]
        # the header patterns as configured, also what /info advertises
        self.header_patterns = {
            "incoming_remove_headers": config_words(conf, "incoming_remove_headers",
                                                    DEFAULT_INCOMING_REMOVE_HEADERS),
            "incoming_allow_headers": config_words(conf, "incoming_allow_headers"),
            "outgoing_remove_headers": config_words(conf, "outgoing_remove_headers",
                                                    DEFAULT_OUTGOING_REMOVE_HEADERS),
            "outgoing_allow_headers": config_words(conf, "outgoing_allow_headers",
                                                   DEFAULT_OUTGOING_ALLOW_HEADERS)}
        self.incoming_remove = _header_matcher(self.header_patterns["incoming_remove_headers"])
        self.incoming_allow = _header_matcher(self.header_patterns["incoming_allow_headers"])
        self.outgoing_remove = _header_matcher(self.header_patterns["outgoing_remove_headers"])
        self.outgoing_allow = _header_matcher(self.header_patterns["outgoing_allow_headers"])
        self._clock = clock

    def __call__(self, env: WsgiEnv, start_response: StartResponse) -> Iterable[bytes]:
        method = env.get("REQUEST_METHOD", "GET")
        if method == "OPTIONS":
            return self.app(env, start_response)
        params = query_params(env)
        sig = params.get("temp_url_sig")
        expires_text = params.get("temp_url_expires")
        if sig is None and expires_text is None:
            return self.app(env, start_response)
        try:
            return self._handle(env, start_response, method, params, sig, expires_text)
        except HttpError as err:
            return err(env, start_response)

    def _invalid(self, env: WsgiEnv, account: str | None = None) -> HttpError:
        realm = urllib.parse.quote(account or "unknown")
        return HttpError(401, b"" if env.get("REQUEST_METHOD") == "HEAD" else INVALID_BODY,
                         {"Www-Authenticate": f'Swift realm="{realm}"',
                          "Content-Type": "text/plain; charset=UTF-8"})

    def _handle(self, env: WsgiEnv, start_response: StartResponse, method: str,
                params: dict[str, str], sig: str | None,
                expires_text: str | None) -> Iterable[bytes]:
        expires = parse_expires(expires_text, self._clock())
        if not sig or not expires:
            raise self._invalid(env)
        parsed_sig = parse_signature(sig, self.allowed_digests)
        try:
            path = split_swift_path(wsgi_to_str(env.get("PATH_INFO", "")))
        except UnicodeError:
            path = None
        if parsed_sig is None or method not in self.methods or path is None or \
                path.version != "v1" or not path.container or not (path.obj or "").strip("/"):
            raise self._invalid(env, path.account if path else None)
        digest, hex_sig = parsed_sig
        prefix = params.get("temp_url_prefix")
        if prefix is None:
            signed_path = path.path
        elif path.obj.startswith(prefix):
            signed_path = f"prefix:/v1/{path.account}/{path.container}/{prefix}"
        else:
            raise self._invalid(env, path.account)
        ip_range = params.get("temp_url_ip_range")
        if ip_range is not None and not self._client_in(env, ip_range):
            raise self._invalid(env, path.account)
        scope = self._matching_scope(env, path.account, path.container, method, expires,
                                     signed_path, digest, hex_sig, ip_range)
        if scope is None:
            raise self._invalid(env, path.account)
        self._clean_incoming(env)
        env["swift.authorize_override"] = True
        env["swift.authorize"] = authorize_within(
            path.account, path.container if scope == CONTAINER_SCOPE else None)
        env["REMOTE_USER"] = TEMPURL_USER
        # only the temp URL's own parameters go on (no multipart-manifest=get and the like)
        kept = {name: params[name] for name in (
            "temp_url_sig", "temp_url_expires", "temp_url_prefix", "temp_url_ip_range",
            "filename", "inline") if name in params}
        env["QUERY_STRING"] = urllib.parse.urlencode(kept)
        filename = params.get("filename")
        inline = "inline" in params
        object_name = path.obj.rstrip("/").rsplit("/", 1)[-1]

        def tempurl_start_response(status: str, headers: list[tuple[str, str]],
                                   exc_info: Any = None) -> Any:
            headers = [(n, v) for n, v in headers
                       if not self.outgoing_remove(n) or self.outgoing_allow(n)]
            if method in ("GET", "HEAD") and status.startswith("2"):
                existing = next((v for n, v in headers if n.lower() == "content-disposition"),
                                None)
                headers = [(n, v) for n, v in headers if n.lower() != "content-disposition"]
                if inline:
                    value = disposition("inline", filename) if filename else "inline"
                elif filename:
                    value = disposition("attachment", filename)
                elif existing:
                    value = existing
                else:
                    value = disposition("attachment", object_name)
                headers.append(("Content-Disposition", value.replace("\n", "%0A")))
                headers.append(("Expires", time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                                         time.gmtime(expires))))
            return start_response(status, headers, exc_info)

        return self.app(env, tempurl_start_response)

    @staticmethod
    def _client_in(env: WsgiEnv, ip_range: str) -> bool:
        try:
            network = ipaddress.ip_network(ip_range, strict=False)
            return ipaddress.ip_address(env.get("REMOTE_ADDR", "")) in network
        except ValueError:
            return False

    def _matching_scope(self, env: WsgiEnv, account: str, container: str, method: str,
                        expires: int, signed_path: str, digest: str, hex_sig: str,
                        ip_range: str | None) -> str | None:
        """The scope (account or container) of the key that signed this URL, if any."""
        # a HEAD may use a URL signed for GET or PUT (Swift: checking it exists)
        methods = ("HEAD", "GET", "PUT") if method == "HEAD" else (method,)
        scopes = ((ACCOUNT_SCOPE, f"/v1/{account}"),
                  (CONTAINER_SCOPE, f"/v1/{account}/{container}"))
        for scope, info_path in scopes:   # the container is asked only if no account key fits
            for key in self._keys(env, info_path, scope):
                for signed_method in methods:
                    expected = tempurl_hmac(signed_method, expires, signed_path, key, digest,
                                            ip_range)
                    if hmac.compare_digest(expected, hex_sig):
                        return scope
        return None

    def _keys(self, env: WsgiEnv, path: str, kind: str) -> list[str]:
        """The temp URL keys of an account or container, read as its owner would."""
        sub_env = make_env(env, method="HEAD", path=path, swift_source="TU",
                           headers={"X-Auth-Token": None, "X-Storage-Token": None})
        sub_env.update({"swift.authorize": lambda req: None, "swift.authorize_override": True,
                        "swift_owner": True})
        response = call_app(self.app, sub_env)
        response.close()
        if not response.is_success:
            return []
        return [value for name in KEY_NAMES
                if (value := response.headers.get(f"x-{kind}-meta-{name}"))]

    def _clean_incoming(self, env: WsgiEnv) -> None:
        headers = request_headers(env)
        for name in list(headers.keys()):
            if name.lower() in DISALLOWED_INCOMING_HEADERS:
                raise HttpError(400, f"The header {name!r} is not allowed in this tempurl")
            if self.incoming_remove(name) and not self.incoming_allow(name):
                del headers[name]


def filter_factory(conf: dict[str, str] | Config | None = None) -> Callable[[WsgiApp], TempUrl]:
    """Build the tempurl middleware and advertise it in /info, as Swift does."""
    settings = as_config(conf, "filter:tempurl")
    probe = TempUrl(lambda env, start: [], settings)
    register_info("tempurl", methods=probe.methods, allowed_digests=probe.allowed_digests,
                  **probe.header_patterns)
    return lambda app: TempUrl(app, settings)
