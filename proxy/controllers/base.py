"""What every controller shares, and the account/container/object info helpers.

- `Controller`: authorization with ACLs (Swift's delay_denial), quorum fan-out of writes
  (`make_requests`), GET/HEAD through `GetOrHead`, response building, backend headers.
- Info: `account_info` / `container_info` read an account's or container's HEAD into Swift's
  info dicts (status, ACLs, counts, policy, meta, sysmeta), cached for the request in
  `environ["swift.infocache"]` and, when `recheck_*_existence` > 0, in a per-process TTL cache.
- `get_account_info(env, app)`, `get_container_info(env, app)`, `get_object_info(env, app)`:
  the same dicts for middlewares, answered from the request's cache or by a HEAD subrequest
  through the given app (Swift's API of the same names).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import eventlet
from webob import Request, Response

from common.config import is_true
from common.http_status import status_line
from common.timestamp import Timestamp
from proxy.auth import ACL_ENV_KEY
from proxy.backend import HOP_BY_HOP, NodeAnswer, NodeIter
from proxy.controllers.getter import FetchResult, GetOrHead
from proxy.errors import simple_response
from proxy.info_generations import InfoGenerations
from proxy.paths import SwiftPath, split_path, str_to_wsgi, wsgi_to_str
from proxy.quorum import choose_response, quorum_size
from ring import Ring

if TYPE_CHECKING:
    from proxy.server import ProxyApplication

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
INFOCACHE_KEY = "swift.infocache"
# Headers of the client's request that never go to a storage node as they came.
NOT_FORWARDED = HOP_BY_HOP | {"x-auth-token", "x-storage-token", "cookie", "authorization",
                              "x-delete-after"}


def delay_denial(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a handler that checks authorization itself, once it knows the container's ACLs."""
    handler.delay_denial = True   # type: ignore[attr-defined]
    return handler


def csv_append(current: str | None, value: str) -> str:
    return f"{current},{value}" if current else value


# ---- info dicts (Swift's shapes) ----------------------------------------------------------


def _meta(headers: Mapping[str, str], prefix: str) -> dict[str, str]:
    return {name[len(prefix):]: value for name, value in headers.items()
            if name.startswith(prefix)}


def headers_to_account_info(status: int, headers: Mapping[str, str]) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in headers.items()}
    return {
        "status": status,
        "container_count": headers.get("x-account-container-count"),
        "total_object_count": headers.get("x-account-object-count"),
        "bytes": headers.get("x-account-bytes-used"),
        "meta": _meta(headers, "x-account-meta-"),
        "sysmeta": _meta(headers, "x-account-sysmeta-"),
    }


def headers_to_container_info(status: int, headers: Mapping[str, str]) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in headers.items()}
    return {
        "status": status,
        "read_acl": headers.get("x-container-read"),
        "write_acl": headers.get("x-container-write"),
        "sync_to": headers.get("x-container-sync-to"),
        "sync_key": headers.get("x-container-sync-key"),
        "object_count": headers.get("x-container-object-count"),
        "bytes": headers.get("x-container-bytes-used"),
        "versions": headers.get("x-versions-location"),
        "storage_policy": headers.get("x-backend-storage-policy-index", "0"),
        "cors": {
            "allow_origin": headers.get("x-container-meta-access-control-allow-origin"),
            "expose_headers": headers.get("x-container-meta-access-control-expose-headers"),
            "max_age": headers.get("x-container-meta-access-control-max-age"),
        },
        "meta": _meta(headers, "x-container-meta-"),
        "sysmeta": _meta(headers, "x-container-sysmeta-"),
    }


def headers_to_object_info(status: int, headers: Mapping[str, str]) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in headers.items()}
    return {
        "status": status,
        "length": headers.get("content-length"),
        "type": headers.get("content-type"),
        "etag": headers.get("etag"),
        "meta": _meta(headers, "x-object-meta-"),
        "sysmeta": _meta(headers, "x-object-sysmeta-"),
        "transient_sysmeta": _meta(headers, "x-object-transient-sysmeta-"),
    }


class InfoCache:
    """Per-process TTL cache of successful account/container lookups (off when ttl is 0).

    With `generations` (shared by the proxy's workers, see proxy.info_generations) an entry
    also dies as soon as any worker clears its key, so a write through one worker is seen by
    every other at once; the TTL then only bounds staleness from other proxy hosts.
    """

    MAX_ENTRIES = 10000

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 generations: InfoGenerations | None = None):
        self._entries: dict[str, tuple[float, int, dict[str, Any]]] = {}
        self._clock = clock
        self._generations = generations

    def generation(self, key: str) -> int:
        """Read before a lookup; hand it to `set` so a write racing the lookup wins."""
        return self._generations.current(key) if self._generations is not None else 0

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock() or entry[1] != self.generation(key):
            self._entries.pop(key, None)
            return None
        return entry[2]

    def set(self, key: str, info: dict[str, Any], ttl_s: float, generation: int) -> None:
        if ttl_s <= 0:
            return
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (self._clock() + ttl_s, generation, info)

    def forget(self, key: str) -> None:
        """Drop this process's entry only (nothing changed: it is just wanted fresh)."""
        self._entries.pop(key, None)

    def clear(self, key: str) -> None:
        """Drop the entry in every worker: the account or container was written."""
        self._entries.pop(key, None)
        if self._generations is not None:
            self._generations.bump(key)


# Marks a middleware's account/container info HEAD: the proxy answers it from its info cache
# (recording the full info, owner-only metadata included, in the request's infocache).
INFO_REQUEST_KEY = "ringstack.info_request"


def infocache(env: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return env.setdefault(INFOCACHE_KEY, {})


def account_cache_key(account: str) -> str:
    return f"account/{account}"


def container_cache_key(account: str, container: str) -> str:
    return f"container/{account}/{container}"


def _info_by_subrequest(env: dict[str, Any], app: WsgiApp, path: str, swift_source: str,
                        convert: Callable[[int, Mapping[str, str]], dict[str, Any]],
                        fresh: bool = False) -> dict[str, Any]:
    sub_env = {key: env[key] for key in ("SERVER_NAME", "SERVER_PORT", "HTTP_HOST",
                                         "wsgi.url_scheme", "swift.trans_id", INFOCACHE_KEY)
               if key in env}
    sub_env.update({"REQUEST_METHOD": "HEAD", "PATH_INFO": str_to_wsgi(path),
                    "swift.source": swift_source, "swift.authorize": lambda req: None,
                    "swift.authorize_override": True, INFO_REQUEST_KEY: "fresh" if fresh else True})
    response = Request.blank("/", environ=sub_env).get_response(app)
    return convert(response.status_int, response.headers)


def get_account_info(env: dict[str, Any], app: WsgiApp, swift_source: str = "GET_INFO",
                     fresh: bool = False) -> dict[str, Any]:
    """The account info of the request in `env` (cached, or by a pre-authorized HEAD).

    `fresh`: not from the proxy's cross-request cache (usage figures, e.g. for quotas).
    """
    account = _split(env)[1]
    return _request_info(env, app, account_cache_key(account), f"/v1/{account}",
                         swift_source, headers_to_account_info, fresh)


def get_container_info(env: dict[str, Any], app: WsgiApp, swift_source: str = "GET_INFO",
                       fresh: bool = False) -> dict[str, Any]:
    """The container info of the request in `env` (cached, or by a pre-authorized HEAD).

    `fresh`: not from the proxy's cross-request cache (usage figures, e.g. for quotas).
    """
    _version, account, container, _obj = _split(env)
    if not container:
        return headers_to_container_info(0, {})
    return _request_info(env, app, container_cache_key(account, container),
                         f"/v1/{account}/{container}", swift_source,
                         headers_to_container_info, fresh)


def _request_info(env: dict[str, Any], app: WsgiApp, key: str, path: str, swift_source: str,
                  convert: Callable[[int, Mapping[str, str]], dict[str, Any]],
                  fresh: bool) -> dict[str, Any]:
    cache = infocache(env)
    if fresh:
        cache.pop(key, None)
    if key not in cache:
        info = _info_by_subrequest(env, app, path, swift_source, convert, fresh)
        # the proxy recorded the full info (owner-only metadata and ACLs too) before hiding
        # owner headers from the HEAD's answer: prefer that record
        cache.setdefault(key, info)
    return cache[key]


def get_object_info(env: dict[str, Any], app: WsgiApp, path: str | None = None,
                    swift_source: str = "GET_INFO") -> dict[str, Any]:
    """The object info of `path` (default: the request's object) by a pre-authorized HEAD."""
    if path is None:
        version, account, container, obj = _split(env)
        path = f"/{version}/{account}/{container}/{obj}"
    return _info_by_subrequest(env, app, path, swift_source, headers_to_object_info)


def _split(env: dict[str, Any]) -> list[Any]:
    return split_path(wsgi_to_str(env.get("PATH_INFO", "")), 2, 4, True)


# ---- controllers ----------------------------------------------------------------------------


class Controller:
    """The handlers of one request for one path; subclasses define GET, PUT, ...."""

    server_type = "Base"
    allowed_methods: tuple[str, ...] = ()

    def __init__(self, app: ProxyApplication, req: Request, path: SwiftPath):
        self.app = app
        self.req = req
        self.env = req.environ
        self.path = path
        self.account_name = path.account or ""
        self.container_name = path.container or ""
        self.object_name = path.obj or ""
        self.trans_id: str = req.environ.get("swift.trans_id", "")

    # ---- authorization ----------------------------------------------------------------------

    def authorize(self, acl: str | None) -> Response | None:
        """The denial for this request with `acl` in force, or None (allowed, or already
        authorized before the handler ran)."""
        authorize = self.env.get("swift.authorize")
        if authorize is None:
            return None
        self.env[ACL_ENV_KEY] = acl
        try:
            return authorize(self.req)
        finally:
            self.env.pop(ACL_ENV_KEY, None)

    @property
    def is_owner(self) -> bool:
        return bool(self.env.get("swift_owner"))

    def strip_owner_headers(self, headers: dict[str, str]) -> None:
        """Non-owners may neither set nor see ACLs, sync keys and temp URL keys."""
        if self.is_owner:
            return
        for name in [n for n in headers if n.lower() in self.app.settings.swift_owner_headers]:
            del headers[name]

    # ---- backend headers --------------------------------------------------------------------

    def backend_headers(self, additional: Mapping[str, str] | None = None,
                        transfer_all: bool = False) -> dict[str, str]:
        """Headers for a storage node: bookkeeping plus the client's metadata headers."""
        headers: dict[str, str] = {}
        if transfer_all:
            headers.update((k, v) for k, v in self.req.headers.items()
                           if k.lower() not in NOT_FORWARDED)
        else:
            headers.update(self.transferred_headers())
        headers.update(additional or {})
        headers.setdefault("X-Timestamp", Timestamp.now().internal)
        headers["X-Trans-Id"] = self.trans_id
        headers["X-Openstack-Request-Id"] = self.trans_id
        headers["Referer"] = f"{self.req.method} {self.req.url}"
        headers["User-Agent"] = f"proxy-server {self.app.pid}"
        headers["Connection"] = "close"
        return headers

    def transferred_headers(self) -> dict[str, str]:
        """Account/container requests: metadata, sysmeta, ACL and sync headers; `X-Remove-*`
        become empty values (deletions), as Swift's transfer_headers does."""
        kind = self.server_type.lower()
        remove_prefix = f"x-remove-{kind}-meta-"
        pass_through = self.pass_through_headers()
        removable = {f"x-remove-{name[2:]}" for name in pass_through}
        result: dict[str, str] = {}
        for name in self.req.headers:
            lower = name.lower()
            if lower.startswith(remove_prefix) or lower in removable:
                result[lower.replace("x-remove-", "x-", 1)] = ""
        for name, value in self.req.headers.items():
            lower = name.lower()
            if lower in pass_through or lower.startswith(
                    (f"x-{kind}-meta-", f"x-{kind}-sysmeta-")):
                result[lower] = value
        return result

    def pass_through_headers(self) -> frozenset[str]:
        return frozenset()

    def listing_headers(self) -> dict[str, str]:
        """Backend headers of an account/container GET or HEAD: the client's Accept picks the
        listing format when there is no `format=` parameter."""
        accept = self.req.headers.get("Accept")
        return self.backend_headers({"Accept": accept} if accept else None)

    # ---- talking to storage nodes -----------------------------------------------------------

    def iter_nodes(self, ring: Ring, part: int, for_read: bool = False) -> NodeIter:
        return self.app.backend.iter_nodes(ring, part, for_read=for_read)

    def _request_until_answer(self, node_iter: NodeIter, part: int, method: str, path: str,
                              headers: Mapping[str, str], query_string: str,
                              body: bytes) -> NodeAnswer | None:
        for node in node_iter:
            answer = self.app.backend.request(node, part, method, path, headers, query_string,
                                              body)
            if answer is not None and answer.status < 500:
                return answer
        return None

    def make_requests(self, ring: Ring, part: int, method: str, path: str,
                      headers_list: list[dict[str, str]], query_string: str = "",
                      body: bytes = b"", overrides: Mapping[int, int] | None = None) -> Response:
        """Send one request per primary in parallel (a failing node is replaced by the next
        node of the partition) and answer what a quorum of them answered."""
        node_iter = self.iter_nodes(ring, part)
        pile = eventlet.GreenPile(len(headers_list))
        for headers in headers_list:
            pile.spawn(self._request_until_answer, node_iter, part, method, path, headers,
                       query_string, body)
        answers = list(pile)
        return self.best_response(answers, quorum_size(len(headers_list)), overrides,
                                  f"{self.server_type} {method}")

    def best_response(self, answers: list[NodeAnswer | None], quorum: int,
                      overrides: Mapping[int, int] | None = None, what: str = "") -> Response:
        statuses = [a.status if a is not None else 503 for a in answers]
        status, index = choose_response(statuses, quorum, overrides)
        if index is None:
            if status == 503:
                self.app.logger.error("%s returning 503 for %s (%s)", what, statuses,
                                      self.trans_id)
            return simple_response(self.req, status)
        answer = answers[index]
        assert answer is not None
        headers = {name: value for name, value in answer.headers.items()
                   if name not in HOP_BY_HOP}
        response = simple_response(self.req, status, answer.body, reason=answer.reason,
                                   content_type=answer.headers.get("content-type",
                                                                   "text/html; charset=UTF-8"))
        for name, value in headers.items():
            if name != "content-type":
                response.headers[name] = value
        return response

    def get_or_head(self, ring: Ring, part: int, path: str, headers: Mapping[str, str],
                    query_string: str = "", resumable: bool = False,
                    method: str | None = None, verify_etag: bool = False) -> FetchResult:
        newest = is_true(self.req.headers.get("X-Newest"))
        return GetOrHead(self.app.backend, method or self.req.method, self.server_type,
                         self.iter_nodes(ring, part, for_read=True), path, headers,
                         query_string, resumable=resumable, newest=newest,
                         verify_etag=verify_etag).fetch()

    def result_response(self, result: FetchResult) -> Response:
        """A client response for what GET/HEAD found (the body streams if it is an iterator)."""
        headers = [(name.title(), value) for name, value in result.headers.items()
                   if name not in HOP_BY_HOP or name == "content-length"]
        if isinstance(result.body, bytes | bytearray):
            if not result.headers and result.status >= 400:
                return simple_response(self.req, result.status)
            body_iter: Iterable[bytes] = [bytes(result.body)]
            if self.req.method != "HEAD" or not any(n.lower() == "content-length"
                                                    for n, _ in headers):
                # a HEAD keeps the length of the body it would have had
                headers = [(n, v) for n, v in headers if n.lower() != "content-length"]
                headers.append(("Content-Length", str(len(result.body))))
        else:
            body_iter = result.body
        response = Response(status=status_line(result.status, result.reason), headerlist=headers,
                            app_iter=body_iter)
        return response

    # ---- account and container info ---------------------------------------------------------

    def account_info(self, account: str) -> dict[str, Any]:
        ring = self.app.cluster.account_ring
        return self._backend_info(account_cache_key(account), ring, ring.get_part(account),
                                  f"/{account}", headers_to_account_info,
                                  self.app.settings.recheck_account_existence_s)

    def container_info(self, account: str, container: str) -> dict[str, Any]:
        ring = self.app.cluster.container_ring
        return self._backend_info(container_cache_key(account, container), ring,
                                  ring.get_part(account, container), f"/{account}/{container}",
                                  headers_to_container_info,
                                  self.app.settings.recheck_container_existence_s)

    def _backend_info(self, key: str, ring: Ring, part: int, path: str,
                      convert: Callable[[int, Mapping[str, str]], dict[str, Any]],
                      ttl_s: float) -> dict[str, Any]:
        """Info from this request's infocache, else the proxy's cache, else a backend HEAD
        (a success is cached for `ttl_s`)."""
        cache = infocache(self.env)
        if key in cache and "partition" in cache[key]:   # not one a middleware's HEAD made
            return cache[key]
        info = self.app.info_cache.get(key)
        if info is None:
            generation = self.app.info_cache.generation(key)
            result = self.get_or_head(ring, part, path, self._info_headers(), method="HEAD")
            info = convert(result.status, result.headers)
            info["partition"] = part
            if 200 <= result.status < 300:
                self.app.info_cache.set(key, info, ttl_s, generation)
        cache[key] = info
        return info

    def is_info_request(self) -> bool:
        """A middleware's info HEAD; one asking for fresh figures drops the cached entry."""
        flag = self.env.get(INFO_REQUEST_KEY)
        if self.req.method != "HEAD" or not flag:
            return False
        if flag == "fresh":
            key = account_cache_key(self.account_name) if self.server_type == "Account" \
                else container_cache_key(self.account_name, self.container_name)
            infocache(self.env).pop(key, None)
            self.app.info_cache.forget(key)
        return True

    def info_response(self, info: dict[str, Any]) -> Response:
        """The answer to an info HEAD: its status only; the info itself is in the infocache."""
        status = info["status"]
        return simple_response(self.req, 204 if 200 <= status < 300 else status, b"")

    def clear_info(self, account: str, container: str | None = None) -> None:
        key = container_cache_key(account, container) if container is not None \
            else account_cache_key(account)
        infocache(self.env).pop(key, None)
        self.app.info_cache.clear(key)

    def _info_headers(self) -> dict[str, str]:
        return {"X-Trans-Id": self.trans_id, "X-Openstack-Request-Id": self.trans_id,
                "User-Agent": f"proxy-server {self.app.pid}", "Connection": "close"}

    def autocreate_account(self, account: str) -> bool:
        """Create `account` (Swift's account_autocreate); True when a quorum did."""
        ring = self.app.cluster.account_ring
        part = ring.get_part(account)
        headers = self._info_headers()
        headers["X-Timestamp"] = Timestamp.now().internal
        replicas = len(ring.get_part_nodes(part))
        response = self.make_requests(ring, part, "PUT", f"/{account}",
                                      [dict(headers) for _ in range(replicas)])
        self.clear_info(account)
        if 200 <= response.status_int < 300:
            return True
        self.app.logger.warning("could not autocreate account %r (%s)", account,
                                response.status)
        return False
