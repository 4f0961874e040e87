"""Static large objects (SLO), as Swift's `slo` middleware.

- PUT `?multipart-manifest=put` with a JSON list of segments (`path` with optional `etag`,
  `size_bytes`, `range`; or inline base64 `data`): every segment is HEADed (through this
  middleware, so a segment may itself be an SLO), checked, and the manifest is stored as JSON
  with `X-Static-Large-Object: True`, the large object's ETag and size in sysmeta, and
  `;swift_bytes=<size>` on its Content-Type. The response carries the large object's ETag:
  the quoted MD5 of the segments' ETags (`etag:range;` for ranged segments). With
  `&heartbeat=on` the answer is 202 at once, whitespace while validating, then a report.
- GET/HEAD of a manifest streams the segments in order: Content-Length and ETag are the large
  object's, Range works across segments (and multiple ranges), If-Match/If-None-Match and
  If-(Un)Modified-Since are judged on the large object's ETag and the manifest's date, nested
  SLOs are expanded (depth at most 10). A missing or changed first segment is a 409.
- GET `?multipart-manifest=get` returns the stored manifest (`&format=raw`: as it was PUT).
- DELETE `?multipart-manifest=delete` deletes the segments (nested ones too), then the
  manifest, answering like bulk delete.
This module holds the requests; the manifest rules themselves (checking a PUT's segments,
the stored format, walking a byte range into segment pieces) are pure functions in
`slo_manifest`, and the streaming of segments is `segments`.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import hashlib
import io
import json
import logging
import mimetypes
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from common.config import Config, is_true
from common.http_rules import (
    conditional_status,
    content_range,
    multipart_byteranges,
    normalize_etag,
    parse_http_date,
    parse_range,
    ranges_for_length,
)
from common.http_status import RESPONSE_REASONS, status_line
from proxy.middleware import as_config, register_info
from proxy.middleware.bulk import (
    BulkDeleter,
    DeleteItem,
    DeleteSettings,
    format_report,
    output_format,
)
from proxy.middleware.segments import (
    ListingError,
    SegmentPiece,
    SegmentStream,
    clean_content_type,
    prime_or_conflict,
    range_not_satisfiable,
    rate_limited,
)
from proxy.middleware.slo_manifest import (
    MIN_SEGMENT_SIZE,
    SLO_HEADER,
    check_segment,
    iter_pieces,
    parse_manifest_input,
    parse_stored_manifest,
    raw_manifest,
    slo_etag_of,
    split_slo_etag,
)
from proxy.middleware.subrequest import (
    HttpError,
    StartResponse,
    SubResponse,
    SwiftPath,
    WsgiApp,
    WsgiEnv,
    append_header_value,
    bounded_map,
    call_app,
    is_valid_utf8_name,
    query_params,
    request_headers,
    request_path,
    respond,
    split_swift_path,
    subrequest,
)

LOGGER = logging.getLogger("proxy.slo")

DEFAULT_MAX_MANIFEST_SEGMENTS = 1000
DEFAULT_MAX_MANIFEST_SIZE = 8 * 1024 ** 2        # bytes of manifest JSON
DEFAULT_YIELD_FREQUENCY_S = 10
DEFAULT_MAX_GET_TIME_S = 86400
DEFAULT_RATE_LIMIT_UNDER_SIZE = 1024 ** 2        # bytes; smaller segments are rate limited
DEFAULT_RATE_LIMIT_AFTER_SEGMENT = 10
DEFAULT_RATE_LIMIT_SEGMENTS_PER_SEC = 1
DEFAULT_CONCURRENCY = 2
SUBMANIFEST_CACHE_ENTRIES = 20                   # per GET; bounds memory of a deep, wide tree
MAX_LISTING_BYTES = 10 * 1024 ** 2               # container listings we re-write (slo_etag)

SYSMETA_SLO_ETAG = "X-Object-Sysmeta-Slo-Etag"
SYSMETA_SLO_SIZE = "X-Object-Sysmeta-Slo-Size"
OVERRIDE_ETAG = "X-Object-Sysmeta-Container-Update-Override-Etag"




@dataclasses.dataclass(frozen=True)
class SloSettings:
    max_manifest_segments: int = DEFAULT_MAX_MANIFEST_SEGMENTS
    max_manifest_size: int = DEFAULT_MAX_MANIFEST_SIZE
    yield_frequency_s: float = DEFAULT_YIELD_FREQUENCY_S
    max_get_time_s: float = DEFAULT_MAX_GET_TIME_S
    rate_limit_under_size: int = DEFAULT_RATE_LIMIT_UNDER_SIZE
    rate_limit_after_segment: int = DEFAULT_RATE_LIMIT_AFTER_SEGMENT
    rate_limit_segments_per_sec: float = DEFAULT_RATE_LIMIT_SEGMENTS_PER_SEC
    concurrency: int = DEFAULT_CONCURRENCY
    delete_concurrency: int = DEFAULT_CONCURRENCY


# --- the middleware --------------------------------------------------------------------------


class StaticLargeObject:
    """WSGI middleware for static large objects; see the module docstring."""

    def __init__(self, app: WsgiApp, settings: SloSettings, logger: logging.Logger = LOGGER):
        self.app = app
        self.settings = settings
        self.logger = logger
        # Segment deletes go below this middleware, like every other SLO subrequest.
        self.deleter = BulkDeleter(app, DeleteSettings(
            max_deletes_per_request=float("inf"), yield_frequency_s=settings.yield_frequency_s,
            delete_concurrency=settings.delete_concurrency), logger)

    def __call__(self, env: WsgiEnv, start_response: StartResponse) -> Iterable[bytes]:
        if env.get("swift.slo_override"):
            return self.app(env, start_response)
        swift_path = split_swift_path(request_path(env))
        if swift_path is None or swift_path.container is None:
            return self.app(env, start_response)
        method = env["REQUEST_METHOD"]
        if swift_path.obj is None:
            if method == "GET":
                return self._container_listing(env, start_response)
            return self.app(env, start_response)
        manifest_param = query_params(env).get("multipart-manifest")
        try:
            if method == "PUT" and manifest_param == "put":
                return self._put_manifest(env, start_response, swift_path)
            if method == "DELETE" and manifest_param == "delete":
                return self._delete_manifest(env, start_response, swift_path)
            if method in ("GET", "HEAD"):
                return self._get_or_head(env, start_response, swift_path)
            if SLO_HEADER in request_headers(env):
                raise HttpError(400, "X-Static-Large-Object is a reserved header. To create a "
                                "static large object add query param multipart-manifest=put.")
        except HttpError as err:
            return err(env, start_response)
        return self.app(env, start_response)

    # --- PUT ?multipart-manifest=put ------------------------------------------------------------

    def _put_manifest(self, env: WsgiEnv, start_response: StartResponse,
                      swift_path: SwiftPath) -> Iterable[bytes]:
        headers = request_headers(env)
        if headers.get("X-Copy-From"):
            raise HttpError(405, "Multipart Manifest PUTs cannot be COPY requests")
        length = headers.get("Content-Length")
        if length in (None, ""):
            if headers.get("Transfer-Encoding", "").lower() != "chunked":
                raise HttpError(411)
        elif int(length) > self.settings.max_manifest_size:
            raise HttpError(413, f"Manifest File > {self.settings.max_manifest_size} bytes")
        body = env["wsgi.input"].read(self.settings.max_manifest_size)
        segments = parse_manifest_input(body, f"/{swift_path.container}/{swift_path.obj}")
        if sum(1 for s in segments if "path" in s) > self.settings.max_manifest_segments:
            raise HttpError(413, "Number of object-backed segments must be <= "
                            f"{self.settings.max_manifest_segments}")
        data_format = output_format(env) or "text/plain"
        heartbeat = is_true(query_params(env).get("heartbeat", ""))
        if heartbeat:
            env["eventlet.minimum_write_chunk_size"] = 0   # flush the whitespace as it comes
            start_response(status_line(202), [("Content-Type", data_format)])
        return self._put_manifest_body(env, start_response, swift_path, segments,
                                       data_format, heartbeat)

    def _head_segment(self, env: WsgiEnv, swift_path: SwiftPath,
                      name: str) -> tuple[str, SubResponse]:
        # Through this middleware, so a nested SLO answers with its own size and ETag.
        response = subrequest(self, env, method="HEAD", path=swift_path.child(name),
                              swift_source="SLO", agent_suffix="SLO MultipartPUT")
        response.close()
        return name, response

    def _put_manifest_body(self, env: WsgiEnv, start_response: StartResponse,
                           swift_path: SwiftPath, segments: list[dict[str, Any]],
                           data_format: str, heartbeat: bool) -> Iterator[bytes]:
        separator = b"\r\n\r\n" if heartbeat else b""
        if heartbeat:
            yield b" "       # the 202 goes out only with the first body bytes
        last_yield = time.monotonic()
        problems: list[list[str]] = []
        stored: list[dict[str, Any] | None] = [None] * len(segments)
        total_size = 0
        indices_by_path: dict[str, list[int]] = collections.defaultdict(list)
        for index, segment in enumerate(segments):
            if "data" in segment:
                stored[index] = segment
                total_size += len(base64.b64decode(segment["data"]))
            else:
                indices_by_path[segment["path"]].append(index)
        heads = bounded_map(lambda name: self._head_segment(env, swift_path, name),
                            ((path,) for path in indices_by_path), self.settings.concurrency)
        for name, response in heads:
            if heartbeat and time.monotonic() - last_yield > self.settings.yield_frequency_s:
                last_yield = time.monotonic()
                yield b" "
            for index in indices_by_path[name]:
                length, record = check_segment(segments[index], response, problems,
                                                allow_empty=index == len(segments) - 1)
                stored[index] = record
                total_size += length
        hook = env.get("swift.callback.slo_manifest_hook")
        if hook:
            problems.extend(hook(stored) or [])
        if problems:
            yield from self._put_failed(start_response, 400, data_format, problems,
                                        heartbeat, separator)
            return
        slo_etag = slo_etag_of(s for s in stored if s is not None)
        client_etag = normalize_etag(request_headers(env).get("Etag"))
        if client_etag and client_etag != slo_etag:
            yield from self._put_failed(start_response, 422, data_format, [], heartbeat,
                                        separator)
            return
        response = self._store_manifest(env, swift_path, stored, slo_etag, total_size)
        if heartbeat:
            report: dict[str, object] = {"Response Status": response.status,
                                         "Response Body": response.read().decode("utf-8")}
            if response.is_success:
                report["Etag"] = response.headers["Etag"]
                report["Last Modified"] = response.headers.get("Last-Modified", "")
            yield separator + format_report(data_format, report, [], "upload")
            return
        start_response(response.status, list(response.headers.items()))
        yield from response.app_iter

    def _put_failed(self, start_response: StartResponse, status_int: int, data_format: str,
                    problems: list[list[str]], heartbeat: bool,
                    separator: bytes) -> Iterator[bytes]:
        if heartbeat:
            report = {"Response Status": status_line(status_int),
                      "Response Body": "\n".join(RESPONSE_REASONS[status_int])}
            yield separator + format_report(data_format, report, problems, "upload")
        elif problems:
            start_response(status_line(status_int), [("Content-Type", data_format)])
            yield format_report(data_format, {}, problems, "upload")
        else:
            error = HttpError(status_int)
            yield from error({"REQUEST_METHOD": "PUT"}, start_response)

    def _store_manifest(self, env: WsgiEnv, swift_path: SwiftPath,
                        stored: list[dict[str, Any] | None], slo_etag: str,
                        total_size: int) -> SubResponse:
        """The client's PUT, its body replaced by the checked manifest, sent below."""
        manifest = json.dumps(stored).encode("utf-8")
        manifest_etag = hashlib.md5(manifest, usedforsecurity=False).hexdigest()
        put_env = dict(env)
        put_env.pop("HTTP_TRANSFER_ENCODING", None)
        put_env["wsgi.input"] = io.BytesIO(manifest)
        put_env["CONTENT_LENGTH"] = str(len(manifest))
        headers = request_headers(put_env)
        headers[SYSMETA_SLO_ETAG] = slo_etag
        headers[SYSMETA_SLO_SIZE] = str(total_size)
        headers[SLO_HEADER] = "True"
        headers["Etag"] = manifest_etag
        # Listings show both ETags; keep any override a middleware left of us already set.
        value, sep, params = headers.get(OVERRIDE_ETAG, "").partition(";")
        headers[OVERRIDE_ETAG] = f"{(value or manifest_etag) + sep + params}; slo_etag={slo_etag}"
        if not put_env.get("CONTENT_TYPE"):
            guessed = mimetypes.guess_type(swift_path.obj or "")[0]
            put_env["CONTENT_TYPE"] = guessed or "application/octet-stream"
        put_env["swift.content_type_overridden"] = True
        put_env["CONTENT_TYPE"] += f";swift_bytes={total_size}"
        response = call_app(self.app, put_env)
        if response.is_success:
            response.headers["Etag"] = f'"{slo_etag}"'
        return response

    # --- GET / HEAD --------------------------------------------------------------------------

    def _get_or_head(self, env: WsgiEnv, start_response: StartResponse,
                     swift_path: SwiftPath) -> Iterable[bytes]:
        params = query_params(env)
        manifest_get = params.get("multipart-manifest") == "get"
        down_env = dict(env)
        if not manifest_get:
            # Swift's backend hints: judge If-Match on the stored SLO ETag and send the whole
            # manifest despite a Range. A backend that ignores them costs one refetch below.
            append_header_value(down_env, "X-Backend-Etag-Is-At", SYSMETA_SLO_ETAG)
            append_header_value(down_env, "X-Backend-Ignore-Range-If-Metadata-Present",
                                SLO_HEADER)
        response = call_app(self.app, down_env)
        if not response.header_true(SLO_HEADER):
            return response.passthrough(start_response)
        if manifest_get:
            return self._manifest_response(env, start_response, response,
                                           raw=params.get("format") == "raw")
        if self._must_refetch(env, response):
            response.close()
            response = subrequest(self.app, env, method="GET", path=swift_path.path,
                                  query_string=env.get("QUERY_STRING", ""), swift_source="SLO",
                                  agent_suffix="SLO MultipartGET")
            if not response.header_true(SLO_HEADER):
                # Replaced by a plain object (or deleted) since the first answer.
                return response.passthrough(start_response)
        return self._large_object_response(env, start_response, swift_path, response)

    @staticmethod
    def _must_refetch(env: WsgiEnv, response: SubResponse) -> bool:
        """True unless `response` is a 200 holding what we need (the whole manifest for GET)."""
        if response.status_int != 200:
            return True          # 206/416 (Range applied) or 304/412 (judged on the wrong ETag)
        if env["REQUEST_METHOD"] == "HEAD":
            return not (response.headers.get(SYSMETA_SLO_ETAG) and
                        response.headers.get(SYSMETA_SLO_SIZE))
        return False

    def _manifest_response(self, env: WsgiEnv, start_response: StartResponse,
                           response: SubResponse, raw: bool) -> Iterable[bytes]:
        headers = response.headers
        if raw:
            headers["Content-Type"] = clean_content_type(headers.get("Content-Type", ""))
            if env["REQUEST_METHOD"] == "GET":
                # the large object's Content-Type, not JSON: a server-side copy of this
                # body with multipart-manifest=put recreates the same object
                body = raw_manifest(response.read())
                headers["Content-Length"] = str(len(body))
                headers["Etag"] = hashlib.md5(body, usedforsecurity=False).hexdigest()
                return respond(start_response, response.status, headers.items(), [body])
        else:
            headers["Content-Type"] = "application/json; charset=utf-8"
        return response.passthrough(start_response)

    def _large_object_response(self, env: WsgiEnv, start_response: StartResponse,
                               swift_path: SwiftPath,
                               response: SubResponse) -> Iterable[bytes]:
        method = env["REQUEST_METHOD"]
        slo_etag = normalize_etag(response.headers.get(SYSMETA_SLO_ETAG))
        size_text = response.headers.get(SYSMETA_SLO_SIZE, "")
        segments: list[dict[str, Any]] | None = None
        if method == "GET" or not slo_etag or not size_text.isdigit():
            segments = parse_stored_manifest(response.read())
        else:
            response.close()
        if not slo_etag or not size_text.isdigit():
            assert segments is not None
            slo_etag = slo_etag_of(segments)     # manifests stored before sysmeta existed
            slo_size = sum(segment["segment_length"] for segment in segments)
        else:
            slo_size = int(size_text)
        headers = response.headers
        headers["X-Manifest-Etag"] = response.etag or ""
        headers["Etag"] = f'"{slo_etag}"'
        headers["Content-Length"] = str(slo_size)
        headers["Content-Type"] = clean_content_type(headers.get("Content-Type", ""))
        for name in ("Content-Range", "Transfer-Encoding"):
            headers.pop(name, None)
        failed = conditional_status(request_headers(env), slo_etag,
                                    parse_http_date(headers.get("Last-Modified")))
        if failed:
            headers["Content-Length"] = "0"
            return respond(start_response, status_line(failed), headers.items(), [b""])
        if method == "HEAD":
            return respond(start_response, status_line(200), headers.items(), [b""])
        assert segments is not None
        spec = parse_range(request_headers(env).get("Range"))
        ranges = ranges_for_length(spec, slo_size) if spec is not None else None
        if ranges == []:
            raise range_not_satisfiable(slo_size)
        reader = _ManifestReader(self, env, swift_path, segments)
        if not ranges or slo_size == 0:
            stream = reader.stream(0, slo_size)
            prime_or_conflict(stream)
            return respond(start_response, status_line(200), headers.items(), stream)
        if len(ranges) == 1:
            start, stop = ranges[0]
            headers["Content-Range"] = content_range(start, stop, slo_size)
            headers["Content-Length"] = str(stop - start)
            stream = reader.stream(start, stop)
            prime_or_conflict(stream)
            return respond(start_response, status_line(206), headers.items(), stream)
        first = reader.stream(*ranges[0])
        prime_or_conflict(first)
        opened = iter([first])      # open_range is called once per range, in order

        def open_range(start: int, stop: int) -> SegmentStream:
            return next(opened, None) or reader.stream(start, stop)

        content_type, length, body_iter = multipart_byteranges(
            ranges, headers.get("Content-Type", ""), slo_size, open_range)
        headers["Content-Type"] = content_type
        headers["Content-Length"] = str(length)
        return respond(start_response, status_line(206), headers.items(), body_iter)

    # --- DELETE ?multipart-manifest=delete ---------------------------------------------------

    def _delete_manifest(self, env: WsgiEnv, start_response: StartResponse,
                         swift_path: SwiftPath) -> Iterable[bytes]:
        data_format = output_format(env)
        env.pop("CONTENT_TYPE", None)        # the client's body type does not matter here
        start_response(status_line(200),
                       [("Content-Type", data_format or "text/html; charset=UTF-8")])
        return self.deleter.iter_report(env, data_format, self._items_to_delete(env, swift_path),
                                        agent_suffix="MultipartDELETE", swift_source="SLO")

    def _items_to_delete(self, env: WsgiEnv, swift_path: SwiftPath) -> Iterator[DeleteItem]:
        """Every segment of the manifest (nested manifests expanded), then the manifests."""
        if not is_valid_utf8_name(request_path(env)):
            raise HttpError(412, "Invalid UTF8 or contains NULL")
        queue: collections.deque[dict[str, Any]] = collections.deque(
            [{"name": f"/{swift_path.container}/{swift_path.obj}", "sub_slo": True}])
        while queue:
            # Bound the queue (x10: operators may have lowered max_manifest_segments since
            # these manifests were written).
            if len(queue) > self.settings.max_manifest_segments * 10:
                raise HttpError(400, "Too many buffered slo segments to delete.")
            segment = queue.popleft()
            if "data" in segment:
                continue
            if segment.get("sub_slo"):
                try:
                    queue.extend(self._manifest_segments(env, swift_path, segment["name"]))
                except HttpError as err:
                    segment["error"] = (err.status_int, err.body_text)
                segment["sub_slo"] = False
                queue.append(segment)     # the manifest goes after its segments
            else:
                status, message = segment.get("error", (None, ""))
                yield DeleteItem(segment["name"], status, message)

    def _manifest_segments(self, env: WsgiEnv, swift_path: SwiftPath,
                           name: str) -> list[dict[str, Any]]:
        def fetch(byte_range: str | None) -> SubResponse:
            return subrequest(
                self.app, env, method="GET", path=swift_path.child(name),
                query_string="multipart-manifest=get", swift_source="SLO",
                agent_suffix="MultipartDELETE",
                headers={"Range": byte_range,
                         "X-Backend-Ignore-Range-If-Metadata-Present": SLO_HEADER})

        # Only the last byte of a plain object, so a wrong name does not pull a huge body.
        response = fetch("bytes=-1")
        if response.is_success and response.header_true(SLO_HEADER) and \
                response.status_int == 206:
            response.close()
            response = fetch(None)         # the backend applied the Range to a manifest
        if response.is_success:
            if response.header_true(SLO_HEADER):
                try:
                    return json.loads(response.read())
                except ValueError:
                    raise HttpError(500, "Unable to load SLO manifest") from None
            response.close()
            raise HttpError(400, "Not an SLO manifest")
        response.close()
        if response.status_int == 404:
            raise HttpError(404, "SLO manifest not found")
        if response.status_int == 401:
            raise HttpError(401, "401 Unauthorized")
        raise HttpError(500, "Unable to load SLO manifest or segment.")

    # --- container listings ------------------------------------------------------------------

    def _container_listing(self, env: WsgiEnv, start_response: StartResponse) -> Iterable[bytes]:
        """Move `slo_etag` out of the listing's `hash` into its own key, as Swift shows it."""
        response = call_app(self.app, env)
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        length = response.content_length
        if not response.is_success or content_type != "application/json" or \
                length is None or length > MAX_LISTING_BYTES:
            return response.passthrough(start_response)
        body = response.read()
        try:
            listing = json.loads(body)
            changed = any([split_slo_etag(item) for item in listing])
        except (ValueError, TypeError, AttributeError):
            changed = False
        if changed:
            body = json.dumps(listing).encode("ascii")
            response.headers["Content-Length"] = str(len(body))
        return respond(start_response, response.status, response.headers.items(), [body])


class _ManifestReader:
    """Streams byte ranges of one large object; caches sub-manifests for this request."""

    def __init__(self, slo: StaticLargeObject, env: WsgiEnv, swift_path: SwiftPath,
                 segments: list[dict[str, Any]]):
        self.slo = slo
        self.env = env
        self.swift_path = swift_path
        self.segments = segments
        self._submanifests: collections.OrderedDict[str, list[dict[str, Any]]] = \
            collections.OrderedDict()

    def _fetch_submanifest(self, name: str) -> list[dict[str, Any]]:
        if name in self._submanifests:
            self._submanifests.move_to_end(name)
            return self._submanifests[name]
        path = self.swift_path.child(name)
        response = subrequest(self.slo.app, self.env, method="GET", path=path,
                              query_string="multipart-manifest=get", swift_source="SLO",
                              agent_suffix="SLO MultipartGET")
        if not response.is_success:
            body = response.read().decode("utf-8", "replace")
            raise ListingError(
                f"while fetching {self.swift_path.path}, GET of submanifest {path} failed with "
                f"status {response.status_int} ({body if len(body) <= 60 else body[:57] + '...'})")
        try:
            segments = parse_stored_manifest(response.read())
        except HttpError as err:
            raise ListingError(f"while fetching {self.swift_path.path}, JSON-decoding of "
                               f"submanifest {path} failed with {err}") from None
        self._submanifests[name] = segments
        if len(self._submanifests) > SUBMANIFEST_CACHE_ENTRIES:
            self._submanifests.popitem(last=False)
        return segments

    def stream(self, start: int, stop: int) -> SegmentStream:
        """Bytes [start, stop) of the large object."""
        settings = self.slo.settings
        pieces = iter_pieces(self.segments, start, stop - 1,
                             account_path=self.swift_path.account_path,
                             fetch_submanifest=self._fetch_submanifest,
                             manifest_name=self.swift_path.path)

        def is_small(piece: SegmentPiece) -> bool:
            length = piece.length
            return piece.data is None and length is not None and \
                length < settings.rate_limit_under_size

        limited = rate_limited(pieces, after_segments=settings.rate_limit_after_segment,
                               per_second=settings.rate_limit_segments_per_sec,
                               applies=is_small)
        return SegmentStream(self.env, self.slo.app, limited, name=self.swift_path.path,
                             swift_source="SLO", agent_suffix="SLO MultipartGET",
                             max_get_time_s=settings.max_get_time_s,
                             expected_length=stop - start, logger=self.slo.logger)


def settings_from_config(conf: Config) -> SloSettings:
    concurrency = min(1000, conf.get_int("concurrency", DEFAULT_CONCURRENCY, 0))
    return SloSettings(
        max_manifest_segments=conf.get_int("max_manifest_segments",
                                           DEFAULT_MAX_MANIFEST_SEGMENTS, 1),
        max_manifest_size=conf.get_int("max_manifest_size", DEFAULT_MAX_MANIFEST_SIZE, 1),
        yield_frequency_s=conf.get_int("yield_frequency", DEFAULT_YIELD_FREQUENCY_S, 0),
        max_get_time_s=conf.get_int("max_get_time", DEFAULT_MAX_GET_TIME_S, 0),
        rate_limit_under_size=conf.get_int("rate_limit_under_size",
                                           DEFAULT_RATE_LIMIT_UNDER_SIZE, 0),
        rate_limit_after_segment=conf.get_int("rate_limit_after_segment",
                                              DEFAULT_RATE_LIMIT_AFTER_SEGMENT, 0),
        rate_limit_segments_per_sec=conf.get_int("rate_limit_segments_per_sec",
                                                   DEFAULT_RATE_LIMIT_SEGMENTS_PER_SEC, 0),
        concurrency=max(1, concurrency),
        delete_concurrency=max(1, conf.get_int("delete_concurrency", concurrency, 1)))


def filter_factory(conf: dict[str, str] | Config | None = None) -> Callable[[WsgiApp], Any]:
    """Build the SLO middleware from its config section (Swift's option names)."""
    settings = settings_from_config(as_config(conf, "filter:slo"))
    register_info("slo", max_manifest_segments=settings.max_manifest_segments,
                  max_manifest_size=settings.max_manifest_size,
                  yield_frequency=settings.yield_frequency_s,
                  min_segment_size=MIN_SEGMENT_SIZE,
                  # Swift's async delete needs the object expirer's queue; not offered here.
                  allow_async_delete=False)

    def slo_filter(app: WsgiApp) -> StaticLargeObject:
        return StaticLargeObject(app, settings)
    return slo_filter
