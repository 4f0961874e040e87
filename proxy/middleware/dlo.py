"""Dynamic large objects (DLO), as Swift's `dlo` middleware.

A manifest is any object with `X-Object-Manifest: <container>/<prefix>`. A GET or HEAD of it
(without `?multipart-manifest=get`) answers with the concatenation of the objects in
`<container>` whose names start with `<prefix>`, in listing order, read page by page. When the
whole listing fits in one page, Content-Length is the sum of the segments and the ETag is the
quoted MD5 of their concatenated ETags; otherwise the body is sent chunked with the manifest's
own ETag. One Range is honoured when the listing shows it is satisfiable; more ranges, or one
that reaches past the first page, are ignored as Swift does. A PUT with a malformed
X-Object-Manifest is refused (400).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from common.config import Config
from common.constraints import Constraints
from common.http_rules import (
    conditional_status,
    content_range,
    normalize_etag,
    parse_http_date,
    parse_range,
    ranges_for_length,
)
from common.http_status import status_line
from proxy.middleware import as_config, register_info
from proxy.middleware.segments import (
    ListingError,
    SegmentPiece,
    SegmentStream,
    prime_or_conflict,
    range_not_satisfiable,
    rate_limited,
)
from proxy.middleware.subrequest import (
    HttpError,
    StartResponse,
    SubResponse,
    SwiftPath,
    WsgiApp,
    WsgiEnv,
    append_header_value,
    call_app,
    query_params,
    quote,
    request_headers,
    request_path,
    respond,
    split_swift_path,
    subrequest,
    unquote,
)

LOGGER = logging.getLogger("proxy.dlo")
MANIFEST_HEADER = "X-Object-Manifest"
DEFAULT_MAX_GET_TIME_S = 86400
DEFAULT_RATE_LIMIT_AFTER_SEGMENT = 10
DEFAULT_RATE_LIMIT_SEGMENTS_PER_SEC = 1
# Conditions and Range that a backend may have judged on the manifest object itself.
STATUSES_JUDGED_ON_MANIFEST = (304, 412, 416)


@dataclasses.dataclass(frozen=True)
class DloSettings:
    max_get_time_s: float = DEFAULT_MAX_GET_TIME_S
    rate_limit_after_segment: int = DEFAULT_RATE_LIMIT_AFTER_SEGMENT
    rate_limit_segments_per_sec: float = DEFAULT_RATE_LIMIT_SEGMENTS_PER_SEC
    # A page shorter than this ends the listing; must match the proxy's listing limit.
    container_listing_limit: int = Constraints.container_listing_limit


def manifest_header_problem(value: str) -> bool:
    """True if an X-Object-Manifest value is not `container/prefix` (Swift's rule)."""
    container, slash, prefix = value.partition("/")
    return (not slash or not container or not prefix or "?" in value or "&" in value or
            prefix.startswith("/"))


def dlo_etag(listing: Iterable[dict[str, Any]]) -> str:
    """The quoted MD5 of the segments' ETags, in order."""
    digest = hashlib.md5(usedforsecurity=False)
    for entry in listing:
        digest.update((normalize_etag(entry["hash"]) or "").encode("utf-8"))
    return f'"{digest.hexdigest()}"'


def iter_pieces(pages: Iterable[list[dict[str, Any]]], container_path: str, first_byte: int,
                last_byte: float) -> Iterator[SegmentPiece]:
    """The pieces that make bytes [first_byte, last_byte] from listing pages of segments.

    Sizes and ETags are deliberately not checked against the listing (it may lag): a DLO only
    promises the objects whose names match; SegmentStream checks each body against its own
    response headers instead.
    """
    for page in pages:
        for entry in page:
            length = int(entry["bytes"])
            if first_byte >= length:
                first_byte = max(first_byte - length, -1)
                last_byte = max(last_byte - length, -1)
                continue
            if last_byte < 0:
                return
            yield SegmentPiece(path=f"{container_path}/{entry['name']}",
                               first_byte=max(0, first_byte),
                               last_byte=None if last_byte >= length - 1 else int(last_byte))
            first_byte = max(first_byte - length, -1)
            last_byte = max(last_byte - length, -1)
        if last_byte < 0:
            return


class DynamicLargeObject:
    """WSGI middleware for dynamic large objects; see the module docstring."""

    def __init__(self, app: WsgiApp, settings: DloSettings, logger: logging.Logger = LOGGER):
        self.app = app
        self.settings = settings
        self.logger = logger

    def __call__(self, env: WsgiEnv, start_response: StartResponse) -> Iterable[bytes]:
        swift_path = split_swift_path(request_path(env))
        if swift_path is None or swift_path.obj is None:
            return self.app(env, start_response)
        method = env["REQUEST_METHOD"]
        try:
            if method in ("GET", "HEAD") and \
                    query_params(env).get("multipart-manifest") != "get":
                return self._get_or_head(env, start_response, swift_path)
            value = request_headers(env).get(MANIFEST_HEADER)
            if method == "PUT" and value is not None and manifest_header_problem(value):
                raise HttpError(400, "X-Object-Manifest must be in the format container/prefix")
        except HttpError as err:
            return err(env, start_response)
        return self.app(env, start_response)

    def _get_or_head(self, env: WsgiEnv, start_response: StartResponse,
                     swift_path: SwiftPath) -> Iterable[bytes]:
        down_env = dict(env)
        # Swift's hint: a manifest is sent whole despite a Range (it is tiny anyway).
        append_header_value(down_env, "X-Backend-Ignore-Range-If-Metadata-Present",
                            MANIFEST_HEADER)
        response = call_app(self.app, down_env)
        if MANIFEST_HEADER not in response.headers and \
                response.status_int in STATUSES_JUDGED_ON_MANIFEST:
            # The answer may hide a manifest (a backend that judged Range or conditions on the
            # manifest object and left its headers out): look without them.
            probe = subrequest(self.app, env, method="HEAD", path=swift_path.path,
                               swift_source="DLO", agent_suffix="DLO MultipartGET")
            probe.close()
            if MANIFEST_HEADER in probe.headers:
                response.close()
                response = probe
        if MANIFEST_HEADER not in response.headers:
            return response.passthrough(start_response)
        response.close()
        value = unquote(response.headers[MANIFEST_HEADER])
        container, _, prefix = value.partition("/")
        return self._large_object_response(env, start_response, swift_path, response,
                                           container, prefix)

    def _listing_page(self, env: WsgiEnv, swift_path: SwiftPath, container: str, prefix: str,
                      marker: str = "") -> SubResponse:
        query = f"format=json&prefix={quote(prefix, safe='')}"
        if marker:
            query += f"&marker={quote(marker, safe='')}"
        return subrequest(self.app, env, method="GET", path=swift_path.child(container),
                          query_string=query, swift_source="DLO",
                          agent_suffix="DLO MultipartGET")

    def _pages(self, env: WsgiEnv, swift_path: SwiftPath, container: str, prefix: str,
               first_page: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        page = first_page
        yield page
        while len(page) >= self.settings.container_listing_limit:
            response = self._listing_page(env, swift_path, container, prefix,
                                          marker=page[-1]["name"])
            if not response.is_success:
                response.close()
                # the body has started: all we can do is end the response early
                raise ListingError(f"Got status {response.status_int} listing container "
                                   f"/{swift_path.account}/{container}")
            page = json.loads(response.read())
            yield page

    def _large_object_response(self, env: WsgiEnv, start_response: StartResponse,
                               swift_path: SwiftPath, manifest: SubResponse, container: str,
                               prefix: str) -> Iterable[bytes]:
        method = env["REQUEST_METHOD"]
        listing_response = self._listing_page(env, swift_path, container, prefix)
        if not listing_response.is_success:
            if method == "HEAD":
                listing_response.close()
                return respond(start_response, listing_response.status,
                               listing_response.headers.items(), [b""])
            return listing_response.passthrough(start_response)
        first_page = json.loads(listing_response.read() or b"[]")
        complete = len(first_page) < self.settings.container_listing_limit
        page_bytes = sum(int(entry["bytes"]) for entry in first_page)

        headers = manifest.headers
        for name in ("Content-Length", "Content-Range", "Transfer-Encoding"):
            headers.pop(name, None)
        if complete:
            headers["Etag"] = dlo_etag(first_page)
            headers["Content-Length"] = str(page_bytes)
        failed = conditional_status(request_headers(env), normalize_etag(headers.get("Etag")),
                                    parse_http_date(headers.get("Last-Modified")))
        if failed:
            headers["Content-Length"] = "0"
            return respond(start_response, status_line(failed), headers.items(), [b""])

        status, first_byte, last_byte = status_line(200), 0, float("inf")
        spec = parse_range(request_headers(env).get("Range"))
        if spec is not None and len(spec) == 1 and method == "GET":
            # Satisfiability is known only from a complete listing, or when the range ends
            # inside the first page; otherwise the Range is ignored (as Swift does).
            start, end = spec[0]
            ends_in_first_page = start is not None and end is not None and end + 1 < page_bytes
            if complete or ends_in_first_page:
                ranges = ranges_for_length(spec, page_bytes)
                if not ranges:                   # only possible with the complete listing
                    raise range_not_satisfiable(page_bytes)
                if page_bytes:                   # an empty object answers 200, as Swift
                    first_byte, stop = ranges[0]
                    last_byte = stop - 1
                    status = status_line(206)
                    headers["Content-Range"] = content_range(first_byte, stop, page_bytes)
                    headers["Content-Length"] = str(stop - first_byte)
        if method == "HEAD":
            return respond(start_response, status_line(200), headers.items(), [b""])
        pieces = iter_pieces(self._pages(env, swift_path, container, prefix, first_page),
                             swift_path.child(container), first_byte, last_byte)
        limited = rate_limited(pieces, after_segments=self.settings.rate_limit_after_segment,
                               per_second=self.settings.rate_limit_segments_per_sec)
        expected = int(headers["Content-Length"]) if "Content-Length" in headers else None
        stream = SegmentStream(env, self.app, limited, name=swift_path.path, swift_source="DLO",
                               agent_suffix="DLO MultipartGET",
                               max_get_time_s=self.settings.max_get_time_s,
                               expected_length=expected, logger=self.logger)
        prime_or_conflict(stream)
        return respond(start_response, status, headers.items(), stream)


def settings_from_config(conf: Config) -> DloSettings:
    return DloSettings(
        max_get_time_s=conf.get_int("max_get_time", DEFAULT_MAX_GET_TIME_S, 0),
        rate_limit_after_segment=conf.get_int("rate_limit_after_segment",
                                              DEFAULT_RATE_LIMIT_AFTER_SEGMENT, 0),
        rate_limit_segments_per_sec=conf.get_int("rate_limit_segments_per_sec",
                                                 DEFAULT_RATE_LIMIT_SEGMENTS_PER_SEC, 0),
        container_listing_limit=conf.get_int("container_listing_limit",
                                             Constraints.container_listing_limit, 1))


def filter_factory(conf: dict[str, str] | Config | None = None) -> Callable[[WsgiApp], Any]:
    """Build the DLO middleware from its config section (Swift's option names)."""
    settings = settings_from_config(as_config(conf, "filter:dlo"))
    register_info("dlo", max_get_time=int(settings.max_get_time_s))

    def dlo_filter(app: WsgiApp) -> DynamicLargeObject:
        return DynamicLargeObject(app, settings)
    return dlo_filter
