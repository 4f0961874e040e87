"""Server-side copy, as Swift's `copy` middleware.

- `COPY /v1/a/c/o` with `Destination: c2/o2` (and optionally `Destination-Account`) is
  rewritten as the PUT below, made on behalf of the same client.
- `PUT /v1/a/c2/o2` with `X-Copy-From: c/o` (and optionally `X-Copy-From-Account`) and an
  empty body: the source is read with a GET through the rest of the pipeline (so a large object
  is copied as its whole content) and its body streamed into the PUT. The source's metadata
  comes along unless `X-Fresh-Metadata: true`; the request's own headers win. With
  `?multipart-manifest=get` the manifest itself is copied: an SLO manifest is re-PUT with
  `multipart-manifest=put` (and validated by SLO), a DLO manifest keeps its X-Object-Manifest.
- Errors as Swift: 412 for a missing or malformed Destination/X-Copy-From or a bad account
  name, 400 for a non-empty body, 413 for a source too large (or of unknown length), and the
  source's own error (404, 304, 412, ...) when the GET fails.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from common.config import Config, is_true
from common.constraints import Constraints
from proxy.middleware import as_config
from proxy.middleware.subrequest import (
    HttpError,
    IterReader,
    StartResponse,
    SubResponse,
    SwiftPath,
    WsgiApp,
    WsgiEnv,
    call_app,
    query_params,
    quote,
    request_headers,
    request_path,
    split_swift_path,
    str_to_wsgi,
    subrequest,
    unquote,
)

LOGGER = logging.getLogger("proxy.copy")
METADATA_PREFIXES = ("x-object-meta-", "x-object-sysmeta-", "x-object-transient-sysmeta-")
SYSMETA_PREFIX = "x-object-sysmeta-"
SLO_SYSMETA_PREFIX = "x-object-sysmeta-slo-"
OVERRIDE_PREFIX = "x-object-sysmeta-container-update-override-"
# Headers the object server keeps besides metadata: the ones a copy carries over.
CARRIED_HEADERS = ("content-disposition", "content-encoding", "x-delete-at", "cache-control",
                   "content-language", "expires", "x-robots-tag")
# The client's request headers that concern reading the source, not writing the copy.
SOURCE_ONLY_HEADERS = ("range", "if-match", "if-none-match", "if-modified-since",
                       "if-unmodified-since", "x-newest", "content-length",
                       "transfer-encoding", "x-copy-from", "x-copy-from-account",
                       "destination", "destination-account")


@dataclasses.dataclass(frozen=True)
class CopySettings:
    max_file_size: int = Constraints.max_file_size     # bytes; larger sources are refused


def _check_account(value: str) -> str:
    account = unquote(value)
    if not account:
        raise HttpError(412, "Account name cannot be empty")
    if "/" in account:
        raise HttpError(412, "Account name cannot contain slashes")
    return account


def _check_object_header(value: str, header: str) -> tuple[str, str]:
    """(container, object) of a `container/object` header value; 412 otherwise."""
    path = unquote(value)
    if not path.startswith("/"):
        path = "/" + path
    container, _, obj = path[1:].partition("/")
    if not container or not obj:
        raise HttpError(412, f"{header} header must be of the form "
                        "<container name>/<object name>")
    return container, obj


def _is_metadata(name: str) -> bool:
    return name.lower().startswith(METADATA_PREFIXES)


class ServerSideCopy:
    """WSGI middleware for COPY and PUT with X-Copy-From; see the module docstring."""

    def __init__(self, app: WsgiApp, settings: CopySettings, logger: logging.Logger = LOGGER):
        self.app = app
        self.settings = settings
        self.logger = logger

    def __call__(self, env: WsgiEnv, start_response: StartResponse) -> Iterable[bytes]:
        swift_path = split_swift_path(request_path(env))
        if swift_path is None or swift_path.obj is None:
            return self.app(env, start_response)
        method = env["REQUEST_METHOD"]
        try:
            if method == "PUT" and request_headers(env).get("X-Copy-From"):
                return self._put_copy(env, start_response, swift_path)
            if method == "COPY":
                env["swift.orig_req_method"] = method
                return self._copy(env, start_response, swift_path)
            if method == "OPTIONS":
                return self._options(env, start_response)
        except HttpError as err:
            return err(env, start_response)
        return self.app(env, start_response)

    def _copy(self, env: WsgiEnv, start_response: StartResponse,
              swift_path: SwiftPath) -> Iterable[bytes]:
        """COPY becomes the client's PUT at the destination with X-Copy-From the source."""
        headers = request_headers(env)
        if not headers.get("Destination"):
            raise HttpError(412, "Destination header required")
        put_env = dict(env)
        put_headers = request_headers(put_env)
        account = swift_path.account
        if "Destination-Account" in headers:
            account = _check_account(headers["Destination-Account"])
            put_headers["X-Copy-From-Account"] = quote(swift_path.account)
            del put_headers["Destination-Account"]
        container, obj = _check_object_header(headers["Destination"], "Destination")
        del put_headers["Destination"]
        put_headers["X-Copy-From"] = quote(f"/{swift_path.container}/{swift_path.obj}")
        put_env.update({"REQUEST_METHOD": "PUT", "SCRIPT_NAME": "", "CONTENT_LENGTH": "0",
                        "wsgi.input": io.BytesIO(b""),
                        "PATH_INFO": str_to_wsgi(f"/{swift_path.version}/{account}/"
                                                 f"{container}/{obj}")})
        put_env.pop("HTTP_TRANSFER_ENCODING", None)
        destination = SwiftPath(swift_path.version, account, container, obj)
        return self._put_copy(put_env, start_response, destination)

    def _read_source(self, env: WsgiEnv, source_path: str) -> SubResponse:
        """GET the source on the client's behalf, with the client's headers (Range, If-*)."""
        params = query_params(env)
        if params.get("multipart-manifest") == "get":
            params["format"] = "raw"       # the manifest as it was PUT, to PUT it again
        headers: dict[str, object | None] = {
            name: value for name, value in request_headers(env).items()
            if name.lower() not in ("content-length", "transfer-encoding",
                                    "x-backend-storage-policy-index")}
        headers["X-Newest"] = "true"
        return subrequest(self.app, env, method="GET", path=source_path,
                          query_string=urllib.parse.urlencode(params), headers=headers,
                          swift_source="SSC")

    def _put_copy(self, env: WsgiEnv, start_response: StartResponse,
                  swift_path: SwiftPath) -> Iterable[bytes]:
        headers = request_headers(env)
        if headers.get("Content-Length") not in (None, "", "0"):
            raise HttpError(400, "Copy requests require a zero byte body",
                            headers={"Content-Type": "text/plain"})
        account = swift_path.account
        if headers.get("X-Copy-From-Account"):
            account = _check_account(headers["X-Copy-From-Account"])
        container, obj = _check_object_header(headers["X-Copy-From"], "X-Copy-From")
        source_path = f"/{swift_path.version}/{account}/{container}/{obj}"
        self.logger.debug("Copying object from %s to %s", source_path, swift_path.path)

        source = self._read_source(env, source_path)
        if source.content_length is None or source.content_length > self.settings.max_file_size:
            # No length: a large object of more segments than one listing page.
            source.close()
            raise HttpError(413)
        if source.status_int >= 300:
            return source.passthrough(start_response)
        put_env = self._sink_env(env, source)
        response = call_app(self.app, put_env)
        source.close()
        if response.is_success:
            response.headers["X-Copied-From-Account"] = quote(account)
            response.headers["X-Copied-From"] = quote(f"{container}/{obj}")
            if "Last-Modified" in source.headers:
                response.headers["X-Copied-From-Last-Modified"] = source.headers["Last-Modified"]
            for name, value in request_headers(put_env).items():
                if _is_metadata(name) or name.lower() == "x-delete-at":
                    response.headers[name] = value
        return response.passthrough(start_response)

    def _sink_env(self, env: WsgiEnv, source: SubResponse) -> WsgiEnv:
        """The client's PUT, its body the source's, its headers the source's then its own."""
        put_env = dict(env)
        put_headers = request_headers(put_env)
        for name in SOURCE_ONLY_HEADERS:
            put_headers.pop(name, None)
        fresh = is_true(put_headers.get("X-Fresh-Metadata", "false"))
        for name, value in source.headers.items():
            lower = name.lower()
            if fresh:
                wanted = lower.startswith(SYSMETA_PREFIX)
            else:
                wanted = lower.startswith(METADATA_PREFIXES) or lower in CARRIED_HEADERS
            if wanted and name not in put_headers:
                put_headers[name] = value

        params = query_params(put_env)
        manifest_copy = params.get("multipart-manifest") == "get"
        if manifest_copy:
            if source.header_true("X-Static-Large-Object"):
                params["multipart-manifest"] = "put"     # SLO re-validates and stores it
            if "X-Object-Manifest" in source.headers:
                del params["multipart-manifest"]
                put_headers["X-Object-Manifest"] = source.headers["X-Object-Manifest"]
        put_env["QUERY_STRING"] = urllib.parse.urlencode(params)
        if params.get("multipart-manifest") != "put":
            # Not a manifest any more: the SLO's bookkeeping sysmeta would only mislead.
            for name in [n for n in put_headers if n.lower().startswith(SLO_SYSMETA_PREFIX)]:
                del put_headers[name]

        is_slo = "X-Static-Large-Object" in source.headers
        is_dlo = "X-Object-Manifest" in source.headers
        if source.status_int == 200 and not is_slo and (not is_dlo or manifest_copy):
            # The body is exactly the source's bytes: let the object server verify them.
            # (Not for 206 ranges, nor for SLO/DLO bodies, whose ETag is not their MD5.)
            put_headers["Etag"] = source.headers.get("Etag", "")
        else:
            put_headers.pop("Etag", None)
            for name in [n for n in put_headers if n.lower().startswith(OVERRIDE_PREFIX)]:
                del put_headers[name]
        if not put_headers.get("Content-Type"):
            put_headers["Content-Type"] = source.headers.get("Content-Type",
                                                             "application/octet-stream")
        put_env.update({"REQUEST_METHOD": "PUT", "swift.source": "SSC",
                        "CONTENT_LENGTH": str(source.content_length),
                        "wsgi.input": IterReader(source.app_iter)})
        return put_env

    def _options(self, env: WsgiEnv, start_response: StartResponse) -> Iterable[bytes]:
        """Advertise COPY among the allowed methods."""
        response = call_app(self.app, env)
        if response.is_success:
            for header in ("Allow", "Access-Control-Allow-Methods"):
                value = response.headers.get(header)
                if value is not None and "COPY" not in value:
                    response.headers[header] = value + ", COPY"
        return response.passthrough(start_response)


def filter_factory(conf: dict[str, str] | Config | None = None) -> Callable[[WsgiApp], Any]:
    """Build the copy middleware. Swift advertises no /info section for it; neither do we."""
    config = as_config(conf, "filter:copy")
    settings = CopySettings(max_file_size=config.get_int("max_file_size",
                                                         Constraints.max_file_size, 0))

    def copy_filter(app: WsgiApp) -> ServerSideCopy:
        return ServerSideCopy(app, settings)
    return copy_filter
