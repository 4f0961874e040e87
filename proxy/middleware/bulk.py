"""Bulk operations, as Swift's `bulk` middleware: many deletes or uploads in one request.

Bulk delete: POST (or DELETE, kept for old clients) with `?bulk-delete` on an account or
container path; the body is a newline-separated list of URL-encoded `/container/object` or
`/container` paths. Objects are deleted first, then containers. Extract archive: PUT with
`?extract-archive=tar|tar.gz|tar.bz2` expands the archive's regular files below the request
path, creating containers as needed.

Both answer 200 OK at once and keep the connection alive with whitespace while they work; the
real outcome is in the body ("Response Status", "Response Body", counts, "Errors"), formatted
as text/plain, JSON or XML per the Accept header. This module also owns that report format and
the deleter, which SLO reuses for `?multipart-manifest=delete` (as Swift's SLO does).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import tarfile
import time
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from xml.sax.saxutils import escape

from common.config import Config, is_true
from common.constraints import Constraints
from common.http_status import status_line
from proxy.middleware import as_config, register_info
from proxy.middleware.subrequest import (
    BoundedPile,
    HttpError,
    StartResponse,
    SubResponse,
    SwiftPath,
    WsgiApp,
    WsgiEnv,
    is_valid_utf8_name,
    query_params,
    quote,
    request_headers,
    request_path,
    split_swift_path,
    str_to_wsgi,
    subrequest,
)

LOGGER = logging.getLogger("proxy.bulk")
ACCEPTABLE_FORMATS = ("text/plain", "application/json", "application/xml", "text/xml")
DEFAULT_MAX_DELETES_PER_REQUEST = 10000
DEFAULT_MAX_FAILED_DELETES = 1000
DEFAULT_MAX_CONTAINERS_PER_EXTRACTION = 10000
DEFAULT_MAX_FAILED_EXTRACTIONS = 1000
DEFAULT_YIELD_FREQUENCY_S = 10
DEFAULT_DELETE_CONCURRENCY = 2

# --- Accept negotiation (Swift's rules: by quality, then exact types before globs) ------------

_TOKEN = r'[^()<>@,;:\"/\[\]?={}\x00-\x20\x7f]+'
_QUOTED = r'"(?:[^"]|(?:\\.))*"'
_EXTENSION = rf"(?:\s*;\s*(?:{_TOKEN})\s*=\s*(?:{_TOKEN}|{_QUOTED}))"
_ACCEPT_ITEM = re.compile(rf"^\s*({_TOKEN})/({_TOKEN})({_EXTENSION}*?\s*)$")


def best_match(accept: str | None, options: Iterable[str]) -> str | None:
    """The first of `options` the Accept header allows; raises ValueError if it is malformed."""
    options = list(options)
    if not accept:
        return options[0] if options else None
    candidates: list[tuple[str, float, bool]] = []
    for item in accept.split(","):
        found = _ACCEPT_ITEM.findall(item)
        if not found:
            raise ValueError(f"Invalid accept header: {accept!r}")
        main_type, sub_type, params = found[0]
        quality, seen_q = 1.0, False
        for param in (p.strip() for p in params.split(";") if p.strip()):
            name, _, value = param.partition("=")
            if name.strip() == "q":
                if seen_q:
                    raise ValueError('Multiple "q" params')
                seen_q, quality = True, float(value.strip())
        pattern = "^" + (_TOKEN if main_type == "*" else re.escape(main_type)) + "/" + \
            (_TOKEN if sub_type == "*" else re.escape(sub_type)) + "$"
        candidates.append((pattern, quality, "*" not in (main_type, sub_type)))
    candidates.sort(key=lambda item: (item[1], item[2]), reverse=True)
    for pattern, _, _ in candidates:
        for option in options:
            if re.match(pattern, option):
                return option
    return None


def output_format(env: WsgiEnv) -> str | None:
    """The report format the client accepts; None if it accepts none or sent a bad header."""
    try:
        return best_match(request_headers(env).get("Accept"), ACCEPTABLE_FORMATS)
    except ValueError:
        return None


def format_report(data_format: str | None, data: dict[str, object],
                  errors: list[list[str]], root_tag: str) -> bytes:
    """A bulk (or SLO) report body in `data_format`; text/plain for anything else."""
    if data_format == "application/json":
        return json.dumps({**data, "Errors": errors}).encode("ascii")
    if data_format and data_format.endswith("/xml"):
        lines = [f"<{root_tag}>\n"]
        for key in sorted(data):
            tag = key.replace(" ", "_").lower()
            lines.append(f"<{tag}>{escape(str(data[key]))}</{tag}>\n")
        lines.append("<errors>\n")
        lines += [f"<object><name>{escape(name)}</name><status>{escape(status)}</status>"
                  "</object>\n" for name, status in errors]
        lines.append(f"</errors>\n</{root_tag}>\n")
        return "".join(lines).encode("utf-8")
    lines = [f"{key}: {data[key]}\n" for key in sorted(data)]
    lines.append("Errors:\n")
    lines += [f"{name}, {status}\n" for name, status in errors]
    return "".join(lines).encode("utf-8")


class _Heartbeat:
    """Whitespace every `frequency_s` so clients and load balancers keep the connection open."""

    def __init__(self, frequency_s: float, data_format: str | None):
        self.frequency_s = frequency_s
        self.last_s = time.monotonic()
        # XML clients get the declaration first, so the whitespace after it is legal XML.
        self.next_chunk = b'<?xml version="1.0" encoding="UTF-8"?>\n' \
            if data_format and data_format.endswith("/xml") else b" "
        self.separator = b""

    def due(self) -> bytes | None:
        now = time.monotonic()
        if now - self.last_s <= self.frequency_s:
            return None
        self.last_s = now
        chunk, self.next_chunk, self.separator = self.next_chunk, b" ", b"\r\n\r\n"
        return chunk


# --- bulk delete -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DeleteSettings:
    max_deletes_per_request: float = DEFAULT_MAX_DELETES_PER_REQUEST
    max_failed_deletes: int = DEFAULT_MAX_FAILED_DELETES
    yield_frequency_s: float = DEFAULT_YIELD_FREQUENCY_S
    delete_concurrency: int = DEFAULT_DELETE_CONCURRENCY
    max_path_length: int = (Constraints.max_object_name_length +
                            Constraints.max_container_name_length + 2)


@dataclasses.dataclass
class DeleteItem:
    """One name to delete (`/container[/object]`), or an error found while listing it."""

    name: str
    error_status: int | None = None
    error_message: str = ""


class BulkDeleter:
    """Deletes a stream of names with bounded concurrency and reports like Swift's bulk."""

    def __init__(self, app: WsgiApp, settings: DeleteSettings, logger: logging.Logger = LOGGER):
        self.app = app
        self.settings = settings
        self.logger = logger

    def read_names(self, env: WsgiEnv) -> list[DeleteItem]:
        """The request body's names, URL-decoded; raises HttpError on a bad body."""
        headers = request_headers(env)
        if headers.get("Content-Length") in (None, "") and \
                headers.get("Transfer-Encoding", "").lower() != "chunked":
            raise HttpError(411)
        limit = self.settings.max_path_length
        stream = env["wsgi.input"]
        names: list[DeleteItem] = []
        pending, more = b"", True
        while more:
            if b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                names.append(DeleteItem(_decode_name(line)))
            else:
                data = stream.read(limit)
                if data:
                    pending += data
                else:
                    more = False
                    if _decode_name(pending):
                        names.append(DeleteItem(_decode_name(pending)))
            if len(names) > self.settings.max_deletes_per_request:
                raise HttpError(413, "Maximum Bulk Deletes: "
                                f"{int(self.settings.max_deletes_per_request)} per request")
            if len(pending) > limit * 2:
                raise HttpError(400, "Invalid File Name")
        return names

    def iter_report(self, env: WsgiEnv, data_format: str | None,
                    items: Iterable[DeleteItem] | None = None, *,
                    agent_suffix: str = "BulkDelete", swift_source: str = "BD") -> Iterator[bytes]:
        """The response body: heartbeats while deleting, then the report."""
        heartbeat = _Heartbeat(self.settings.yield_frequency_s, data_format)
        failed: list[list[str]] = []
        report: dict[str, object] = {"Response Status": status_line(200), "Response Body": "",
                                     "Number Deleted": 0, "Number Not Found": 0}
        env["eventlet.minimum_write_chunk_size"] = 0    # send heartbeats unbuffered
        failure_status = [400]

        def record(response: SubResponse | None, item: DeleteItem) -> None:
            status_int = response.status_int if response else item.error_status
            if status_int is not None and 200 <= status_int < 300:
                report["Number Deleted"] = int(report["Number Deleted"]) + 1  # type: ignore
            elif status_int == 404:
                report["Number Not Found"] = int(report["Number Not Found"]) + 1  # type: ignore
            elif response is None:
                failed.append([quote(item.name), item.error_message])
            elif status_int == 401:
                failed.append([quote(item.name), status_line(401)])
            else:
                if status_int is not None and status_int >= 500:
                    failure_status[0] = 502
                failed.append([quote(item.name), response.status])

        try:
            if not data_format:
                raise HttpError(406)
            swift_path = split_swift_path(request_path(env))
            if swift_path is None:
                raise HttpError(404)
            incoming = request_headers(env).get("Content-Type")
            if incoming and not incoming.startswith("text/plain"):
                raise HttpError(406)          # only newline-separated names are understood
            if items is None:
                items = self.read_names(env)

            def delete(item: DeleteItem) -> tuple[SubResponse | None, DeleteItem]:
                if item.error_status is not None:
                    return None, item
                response = subrequest(self.app, env, method="DELETE",
                                      path=swift_path.child(item.name), body=b"",
                                      swift_source=swift_source, agent_suffix=agent_suffix)
                response.close()
                return response, item

            pile = BoundedPile(self.settings.delete_concurrency)
            for phase in (_objects_only, _containers_only):
                for item in phase(items, failed):
                    pile.spawn(delete, item)
                    while pile.full or (len(pile) and len(failed) >=
                                        self.settings.max_failed_deletes):
                        record(*pile.next_result())
                        chunk = heartbeat.due()
                        if chunk:
                            yield chunk
                    if len(failed) >= self.settings.max_failed_deletes:
                        raise HttpError(400, "Max delete failures exceeded")
                while len(pile):   # a phase ends before the next begins: objects first
                    record(*pile.next_result())
                    chunk = heartbeat.due()
                    if chunk:
                        yield chunk
                if len(failed) >= self.settings.max_failed_deletes:
                    raise HttpError(400, "Max delete failures exceeded")
            if failed:
                report["Response Status"] = status_line(failure_status[0])
            elif not (report["Number Deleted"] or report["Number Not Found"]):
                report["Response Status"] = status_line(400)
                report["Response Body"] = "Invalid bulk delete."
        except HttpError as err:
            report["Response Status"] = err.status
            report["Response Body"] = err.body_text
        except Exception:
            self.logger.exception("Error in bulk delete.")
            report["Response Status"] = status_line(500)
        yield heartbeat.separator + format_report(data_format, report, failed, "delete")


def _decode_name(line: bytes) -> str:
    return urllib.parse.unquote_to_bytes(line.strip()).decode("utf-8", "surrogateescape")


def _is_object_name(name: str) -> bool:
    return "/" in name.strip("/")


def _phase(items: Iterable[DeleteItem], failed: list[list[str]],
           want_objects: bool) -> Iterator[DeleteItem]:
    for item in items:
        if not item.name or _is_object_name(item.name) != want_objects:
            continue
        if item.error_status is None and not is_valid_utf8_name(item.name):
            failed.append([quote(item.name), status_line(412)])
            continue
        yield item


def _objects_only(items: Iterable[DeleteItem], failed: list[list[str]]) -> Iterator[DeleteItem]:
    return _phase(items, failed, want_objects=True)


def _containers_only(items: Iterable[DeleteItem],
                     failed: list[list[str]]) -> Iterator[DeleteItem]:
    return _phase(items, failed, want_objects=False)


# --- extract archive -------------------------------------------------------------------------

ARCHIVE_COMPRESSION = {"tar": "", "tar.gz": "gz", "tar.bz2": "bz2"}
# Headers of the extract request that every extracted object inherits.
INHERITED_PREFIX = "x-object-meta-"
INHERITED_HEADERS = ("x-delete-at", "x-delete-after")


def pax_key_to_header(pax_key: str) -> str | None:
    """The object header a tar xattr becomes (GNU and BSD tar spell them differently)."""
    for prefix in ("SCHILY.xattr.user.", "LIBARCHIVE.xattr.user."):
        if pax_key.startswith(prefix):
            rest = pax_key[len(prefix):]
            if rest == "mime_type":
                return "Content-Type"
            if rest.startswith("meta."):
                return "X-Object-Meta-" + rest[len("meta."):]
    return None


@dataclasses.dataclass(frozen=True)
class ExtractSettings:
    max_containers_per_extraction: int = DEFAULT_MAX_CONTAINERS_PER_EXTRACTION
    max_failed_extractions: int = DEFAULT_MAX_FAILED_EXTRACTIONS
    yield_frequency_s: float = DEFAULT_YIELD_FREQUENCY_S
    max_file_size: int = Constraints.max_file_size
    max_path_length: int = (Constraints.max_object_name_length +
                            Constraints.max_container_name_length + 2)


class ArchiveExtractor:
    """PUTs each regular file of a streamed tar archive as an object; reports like Swift."""

    def __init__(self, app: WsgiApp, settings: ExtractSettings, logger: logging.Logger = LOGGER):
        self.app = app
        self.settings = settings
        self.logger = logger

    def _ensure_container(self, env: WsgiEnv, path: str) -> bool:
        """True if created, False if it existed; HttpError-like tuple raised on failure."""
        response = subrequest(self.app, env, method="HEAD", path=path, swift_source="EA")
        response.close()
        if response.is_success:
            return False
        if response.status_int == 404:
            response = subrequest(self.app, env, method="PUT", path=path, body=b"",
                                  swift_source="EA")
            response.close()
            if response.is_success:
                return True
        raise _ContainerError(response.status_int, response.status)

    def iter_report(self, env: WsgiEnv, compression: str,
                    data_format: str | None) -> Iterator[bytes]:
        """The response body: heartbeats while extracting, then the report."""
        heartbeat = _Heartbeat(self.settings.yield_frequency_s, data_format)
        job = _Extraction(env)
        env["eventlet.minimum_write_chunk_size"] = 0
        try:
            if not data_format:
                raise HttpError(406)
            headers = request_headers(env)
            if headers.get("Content-Length") in (None, "") and \
                    headers.get("Transfer-Encoding", "").lower() != "chunked":
                raise HttpError(411)
            swift_path = split_swift_path(request_path(env))
            if swift_path is None:
                raise HttpError(404)
            with tarfile.open(mode="r|" + compression, fileobj=env["wsgi.input"]) as archive:
                while len(job.failed) < self.settings.max_failed_extractions:
                    chunk = heartbeat.due()
                    if chunk:
                        yield chunk
                    member = archive.next()
                    if member is None:
                        break
                    if member.isfile():
                        self._extract_member(job, swift_path, archive, member)
            if job.failed:
                job.report["Response Status"] = status_line(job.failure_status)
            elif not job.report["Number Files Created"]:
                job.report["Response Status"] = status_line(400)
                job.report["Response Body"] = "Invalid Tar File: No Valid Files"
        except HttpError as err:
            job.report["Response Status"] = err.status
            job.report["Response Body"] = err.body_text
        except (tarfile.TarError, zlib.error, EOFError, OSError) as err:
            job.report["Response Status"] = status_line(400)
            job.report["Response Body"] = f"Invalid Tar File: {err}"
        except Exception:
            self.logger.exception("Error in extract archive.")
            job.report["Response Status"] = status_line(500)
        yield heartbeat.separator + format_report(data_format, job.report, job.failed,
                                                  "extract")

    def _extract_member(self, job: _Extraction, swift_path: SwiftPath,
                        archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        """PUT one regular file of the archive; record the outcome in `job`."""
        limit = self.settings.max_path_length
        obj_path = member.name[2:] if member.name.startswith("./") else member.name
        obj_path = obj_path.lstrip("/")
        base = "/".join(part for part in (swift_path.container, swift_path.obj) if part)
        if base.rstrip("/"):
            obj_path = base.rstrip("/") + "/" + obj_path
        if "/" not in obj_path:
            return                         # a file at the account level has no container
        shown = quote(obj_path[:limit])
        if not is_valid_utf8_name(swift_path.child(obj_path)):
            job.failed.append([shown, status_line(412)])
            return
        if member.size > self.settings.max_file_size:
            job.failed.append([shown, status_line(413)])
            return
        container = obj_path.split("/", 1)[0]
        container_failure = None
        if container not in job.containers_seen:
            container_path = swift_path.child(container)
            try:
                if self._ensure_container(job.env, container_path):
                    job.containers_created += 1
                    if job.containers_created > self.settings.max_containers_per_extraction:
                        raise HttpError(400, f"More than "
                                        f"{self.settings.max_containers_per_extraction} "
                                        "containers to create from tar.")
            except _ContainerError as err:
                # The object PUT may still succeed (ACLs); report it only if that fails.
                container_failure = [quote(container_path[:limit]), err.status]
                if err.status_int == 401:
                    raise HttpError(401) from None
        put_headers: dict[str, object | None] = {**job.inherited, "Content-Length": member.size}
        for pax_key, pax_value in member.pax_headers.items():
            header = pax_key_to_header(pax_key)
            if header:
                put_headers[header] = str_to_wsgi(pax_value)
        response = subrequest(self.app, job.env, method="PUT", path=swift_path.child(obj_path),
                              headers=put_headers, body=archive.extractfile(member),
                              swift_source="EA", agent_suffix="BulkExpand")
        response.close()
        job.containers_seen.add(container)
        if response.is_success:
            job.report["Number Files Created"] = job.files_created = job.files_created + 1
            return
        if container_failure:
            job.failed.append(container_failure)
        if response.status_int == 401:
            job.failed.append([shown, status_line(401)])
            raise HttpError(401)
        if response.status_int >= 500:
            job.failure_status = 502
        job.failed.append([shown, response.status])


class _Extraction:
    """The state of one extract-archive request."""

    def __init__(self, env: WsgiEnv):
        self.env = env
        self.report: dict[str, object] = {"Response Status": status_line(201),
                                          "Response Body": "", "Number Files Created": 0}
        self.failed: list[list[str]] = []
        self.failure_status = 400
        self.files_created = 0
        self.containers_seen: set[str] = set()
        self.containers_created = 0
        headers = request_headers(env)
        # What every extracted object inherits from the request: metadata, expiry, and the
        # Content-Type unless the client asked Swift to detect it per file.
        self.inherited: dict[str, object | None] = {
            name: value for name, value in headers.items()
            if name.lower().startswith(INHERITED_PREFIX) or name.lower() in INHERITED_HEADERS}
        if headers.get("Content-Type") and not is_true(
                headers.get("X-Detect-Content-Type", "")):
            self.inherited["Content-Type"] = headers["Content-Type"]


class _ContainerError(Exception):
    def __init__(self, status_int: int, status: str):
        super().__init__(status)
        self.status_int = status_int
        self.status = status


# --- the middleware --------------------------------------------------------------------------


class Bulk:
    """WSGI middleware: `?bulk-delete` (POST/DELETE) and `?extract-archive=` (PUT)."""

    def __init__(self, app: WsgiApp, deleter: BulkDeleter, extractor: ArchiveExtractor):
        self.app = app
        self.deleter = deleter
        self.extractor = extractor

    def __call__(self, env: WsgiEnv, start_response: StartResponse) -> Iterable[bytes]:
        params = query_params(env)
        method = env["REQUEST_METHOD"]
        body: Iterable[bytes] | None = None
        data_format = output_format(env)
        if "extract-archive" in params and method == "PUT":
            compression = ARCHIVE_COMPRESSION.get(params["extract-archive"].lower().strip("."))
            if compression is None:
                return HttpError(400, "Unsupported archive format")(env, start_response)
            body = self.extractor.iter_report(env, compression, data_format)
        if "bulk-delete" in params and method in ("POST", "DELETE"):
            body = self.deleter.iter_report(env, data_format)
        if body is None:
            return self.app(env, start_response)
        start_response(status_line(200),
                       [("Content-Type", data_format or "text/html; charset=UTF-8")])
        return body


def _delete_settings(conf: Config) -> DeleteSettings:
    return DeleteSettings(
        max_deletes_per_request=conf.get_int("max_deletes_per_request",
                                             DEFAULT_MAX_DELETES_PER_REQUEST, 0),
        max_failed_deletes=conf.get_int("max_failed_deletes", DEFAULT_MAX_FAILED_DELETES, 1),
        yield_frequency_s=conf.get_int("yield_frequency", DEFAULT_YIELD_FREQUENCY_S, 0),
        delete_concurrency=min(1000, conf.get_int("delete_concurrency",
                                                  DEFAULT_DELETE_CONCURRENCY, 1)))


def filter_factory(conf: dict[str, str] | Config | None = None) -> Callable[[WsgiApp], Any]:
    """Build the bulk middleware from its config section (Swift's option names)."""
    config = as_config(conf, "filter:bulk")
    deletes = _delete_settings(config)
    extracts = ExtractSettings(
        max_containers_per_extraction=config.get_int(
            "max_containers_per_extraction", DEFAULT_MAX_CONTAINERS_PER_EXTRACTION, 0),
        max_failed_extractions=config.get_int("max_failed_extractions",
                                              DEFAULT_MAX_FAILED_EXTRACTIONS, 1),
        yield_frequency_s=deletes.yield_frequency_s,
        max_file_size=config.get_int("max_file_size", Constraints.max_file_size, 0))
    register_info("bulk_upload",
                  max_containers_per_extraction=extracts.max_containers_per_extraction,
                  max_failed_extractions=extracts.max_failed_extractions)
    register_info("bulk_delete", max_deletes_per_request=deletes.max_deletes_per_request,
                  max_failed_deletes=deletes.max_failed_deletes)

    def bulk_filter(app: WsgiApp) -> Bulk:
        return Bulk(app, BulkDeleter(app, deletes), ArchiveExtractor(app, extracts))
    return bulk_filter
