"""Multipart uploads, stored the way Swift's s3api stores them, as a static large object.

- An upload lives in the container `<bucket>+segments`: a marker object `<key>/<upload id>`
  (holding the upload's content type and metadata) and one object per part,
  `<key>/<upload id>/<part number>`.
- CompleteMultipartUpload checks the parts (InvalidPart, InvalidPartOrder, EntityTooSmall
  below `min_segment_size` except for the last) and PUTs an SLO manifest of them as
  `<bucket>/<key>` through the slo middleware (`multipart-manifest=put`), so the object reads
  back whole through both APIs. Its S3 ETag, `<md5 of the parts' binary md5s>-<N>`, is kept in
  sysmeta and given to the container listing as the override ETag.
- Abort deletes the parts and the marker; ListParts and ListMultipartUploads read listings of
  the segments container.
Upload ids are 32 hex digits, which no part number can be mistaken for in a listing.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any

from proxy.middleware.s3api.call import S3Call, content_md5_hex
from proxy.middleware.s3api.errors import S3Error, error_for_swift_status
from proxy.middleware.s3api.listing import encoding, parse_max, swift_listing
from proxy.middleware.s3api.obj import (
    body_length,
    check_storage_class,
    copy_from_headers,
    head_copy_source,
    object_put_headers,
    parse_copy_source,
    raise_for_write,
)
from proxy.middleware.s3api.swift import (
    OVERRIDE_ETAG,
    STORED_ENTITY_HEADERS,
    SYSMETA_S3_ETAG,
    SYSMETA_UPLOAD_ID,
    S3Response,
    http_date_to_iso,
    listing_time_to_iso,
    s3_etag,
)
from proxy.middleware.s3api.xml import build_document
from proxy.middleware.subrequest import bounded_map

UPLOAD_ID_RE = re.compile(r"^[0-9a-f]{32}$")
SYSMETA_HAS_CONTENT_TYPE = "X-Object-Sysmeta-S3api-Has-Content-Type"
LISTING_PAGE = 10000
MAX_LISTING_PAGES = 100
CLEANUP_CONCURRENCY = 4
MAX_PART_BYTES = 5 * 1024 ** 3
XML_HEADERS = [("Content-Type", "application/xml")]
RANGE_RE = re.compile(r"^bytes=(\d+)-(\d+)$")


def _marker_name(key: str, upload_id: str) -> str:
    return f"{key}/{upload_id}"


def _part_name(key: str, upload_id: str, number: int) -> str:
    return f"{key}/{upload_id}/{number}"


def _upload_id(call: S3Call) -> str:
    upload_id = call.params.get("uploadId", "")
    if not UPLOAD_ID_RE.match(upload_id):
        raise S3Error("NoSuchUpload", details={"UploadId": upload_id})
    return upload_id


def _head_marker(call: S3Call, upload_id: str) -> Any:
    head = call.swift.status("HEAD", call.segments_container,
                             _marker_name(call.key, upload_id))
    if head.status_int == 404:
        raise S3Error("NoSuchUpload", details={"UploadId": upload_id})
    if not head.is_success:
        raise error_for_swift_status(head.status_int, bucket=call.bucket)
    return head


def _all_rows(call: S3Call, prefix: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    marker = ""
    for _ in range(MAX_LISTING_PAGES):
        page = swift_listing(call, call.segments_container, prefix=prefix, marker=marker,
                             limit=LISTING_PAGE)
        rows.extend(page)
        if len(page) < LISTING_PAGE:
            break
        marker = page[-1]["name"]
    return rows


def _parts(call: S3Call, upload_id: str) -> dict[int, dict[str, Any]]:
    """The uploaded parts of an upload by number."""
    prefix = _marker_name(call.key, upload_id) + "/"
    parts = {}
    for row in _all_rows(call, prefix):
        number = row.get("name", "")[len(prefix):]
        if number.isdigit():
            parts[int(number)] = row
    return parts


def _part_number(call: S3Call) -> int:
    text = call.params.get("partNumber", "")
    maximum = call.settings.max_upload_part_num
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        raise S3Error("InvalidArgument", f"Part number must be an integer between 1 and "
                      f"{maximum}, inclusive", details={"ArgumentName": "partNumber",
                                                        "ArgumentValue": text})
    return int(text)


# ---- CreateMultipartUpload ------------------------------------------------------------------

def create_upload(call: S3Call) -> S3Response:
    check_storage_class(call)
    call.require_bucket()
    container = call.swift.status("PUT", call.segments_container)
    if not container.is_success:
        raise error_for_swift_status(container.status_int, bucket=call.bucket)
    upload_id = uuid.uuid4().hex
    headers = object_put_headers(call)
    headers[SYSMETA_HAS_CONTENT_TYPE] = "yes" if "Content-Type" in headers else "no"
    headers.setdefault("Content-Type", "application/octet-stream")
    headers["Content-Length"] = "0"
    response = call.swift.status("PUT", call.segments_container,
                                 _marker_name(call.key, upload_id), headers=headers)
    if not response.is_success:
        raise error_for_swift_status(response.status_int, bucket=call.bucket)
    body = build_document("InitiateMultipartUploadResult", [
        ("Bucket", call.bucket), ("Key", call.key), ("UploadId", upload_id)])
    return S3Response(200, XML_HEADERS, body)


# ---- UploadPart / UploadPartCopy ------------------------------------------------------------

def upload_part(call: S3Call) -> S3Response:
    number = _part_number(call)
    upload_id = _upload_id(call)
    _head_marker(call, upload_id)
    name = _part_name(call.key, upload_id, number)
    if "x-amz-copy-source" in call.headers:
        return _upload_part_copy(call, name)
    length = body_length(call)
    if length > MAX_PART_BYTES:
        raise S3Error("EntityTooLarge", details={"ProposedSize": length,
                                                 "MaxSizeAllowed": MAX_PART_BYTES})
    headers: dict[str, str | None] = {"Content-Length": str(length),
                                      "Content-Type": "application/octet-stream"}
    md5_hex = content_md5_hex(call.headers.get("Content-MD5"))
    if md5_hex:
        headers["Etag"] = md5_hex
    response = call.swift.request("PUT", call.segments_container, name, headers=headers,
                                  body=call.env["wsgi.input"])
    response.close()
    if not response.is_success:
        raise_for_write(call, response)
    answer = [("ETag", f'"{response.etag}"')]
    answer.extend((name, value) for name, value in call.headers.items()
                  if name.lower().startswith("x-amz-checksum-"))
    return S3Response(200, answer)


def _upload_part_copy(call: S3Call, name: str) -> S3Response:
    account, bucket, key = parse_copy_source(call.headers["x-amz-copy-source"])
    head = head_copy_source(call, account, bucket, key)
    headers = copy_from_headers(account, bucket, key)
    size = head.content_length or 0
    copy_range = call.headers.get("x-amz-copy-source-range")
    if copy_range is not None:
        match = RANGE_RE.match(copy_range.strip())
        if not match or int(match.group(1)) > int(match.group(2)):
            raise S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the "
                          "form bytes=first-last where first and last are the zero-based "
                          "offsets of the first and last bytes to copy",
                          details={"ArgumentName": "x-amz-copy-source-range",
                                   "ArgumentValue": copy_range})
        if int(match.group(2)) >= size:
            raise S3Error("InvalidRange", "The requested range is not satisfiable",
                          details={"RangeRequested": copy_range, "ActualObjectSize": size})
        headers["Range"] = copy_range.strip()
        size = int(match.group(2)) - int(match.group(1)) + 1
    if size > MAX_PART_BYTES:
        raise S3Error("EntityTooLarge", details={"ProposedSize": size,
                                                 "MaxSizeAllowed": MAX_PART_BYTES})
    response = call.swift.status("PUT", call.segments_container, name, headers=headers)
    if not response.is_success:
        raise error_for_swift_status(response.status_int, bucket=call.bucket)
    body = build_document("CopyPartResult", [
        ("LastModified", http_date_to_iso(response.headers.get("Last-Modified"))),
        ("ETag", f'"{response.etag}"')])
    return S3Response(200, XML_HEADERS, body)


# ---- ListParts ------------------------------------------------------------------------------

def list_parts(call: S3Call) -> S3Response:
    upload_id = _upload_id(call)
    _head_marker(call, upload_id)
    max_parts = parse_max(call.params, "max-parts", call.settings.max_parts_listing,
                          call.settings.max_parts_listing)
    encode = encoding(call.params)
    marker_text = call.params.get("part-number-marker", "0") or "0"
    if not marker_text.isdigit():
        raise S3Error("InvalidArgument", details={"ArgumentName": "part-number-marker",
                                                  "ArgumentValue": marker_text})
    part_marker = int(marker_text)
    parts = _parts(call, upload_id)
    numbers = sorted(number for number in parts if number > part_marker)
    shown = numbers[:max_parts]
    truncated = len(numbers) > max_parts
    owner = call.owner()
    fields: list[tuple[str, object]] = [
        ("Bucket", call.bucket), ("Key", encode(call.key)), ("UploadId", upload_id),
        ("Initiator", owner), ("Owner", owner), ("StorageClass", "STANDARD"),
        ("PartNumberMarker", part_marker),
        ("NextPartNumberMarker", shown[-1] if shown else part_marker),
        ("MaxParts", max_parts), ("IsTruncated", truncated)]
    if "encoding-type" in call.params:
        fields.insert(0, ("EncodingType", "url"))
    for number in shown:
        row = parts[number]
        fields.append(("Part", [
            ("PartNumber", number),
            ("LastModified", listing_time_to_iso(row.get("last_modified"))),
            ("ETag", f'"{row.get("hash", "")}"'), ("Size", int(row.get("bytes", 0)))]))
    return S3Response(200, XML_HEADERS, build_document("ListPartsResult", fields))


# ---- CompleteMultipartUpload ----------------------------------------------------------------

def _requested_parts(call: S3Call) -> list[tuple[int, str]]:
    document = call.read_xml("CompleteMultipartUpload", call.settings.max_request_xml_bytes)
    requested = []
    for part in document.find_all("Part"):
        number_text = (part.child_text("PartNumber") or "").strip()
        etag = (part.child_text("ETag") or "").strip().strip('"')
        if not number_text.isdigit() or not etag:
            raise S3Error("MalformedXML")
        requested.append((int(number_text), etag))
    if not requested:
        raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not "
                      "validate against our published schema: no parts")
    if len(requested) > call.settings.max_upload_part_num:
        raise S3Error("InvalidPart", details={"UploadId": call.params.get("uploadId", "")})
    numbers = [number for number, _ in requested]
    if any(later <= earlier for earlier, later in zip(numbers, numbers[1:], strict=False)):
        raise S3Error("InvalidPartOrder", details={"UploadId": call.params["uploadId"]})
    return requested


def _completed_before(call: S3Call, upload_id: str) -> S3Response | None:
    """A retried Complete of an upload already completed: the same answer again."""
    head = call.swift.status("HEAD", call.bucket, call.key)
    if head.is_success and head.headers.get(SYSMETA_UPLOAD_ID) == upload_id:
        return _complete_result(call, s3_etag(head.headers))
    return None


def _complete_result(call: S3Call, etag: str) -> S3Response:
    host = call.env.get("HTTP_HOST", "localhost")
    scheme = call.env.get("wsgi.url_scheme", "http")
    body = build_document("CompleteMultipartUploadResult", [
        ("Location", f"{scheme}://{host}/{call.bucket}/{call.key}"),
        ("Bucket", call.bucket), ("Key", call.key), ("ETag", f'"{etag}"')])
    return S3Response(200, XML_HEADERS, body)


def complete_upload(call: S3Call) -> S3Response:
    upload_id = _upload_id(call)
    head = call.swift.status("HEAD", call.segments_container,
                             _marker_name(call.key, upload_id))
    if head.status_int == 404:
        call.env["wsgi.input"].read(call.settings.max_request_xml_bytes)
        done = _completed_before(call, upload_id)
        if done is not None:
            return done
        raise S3Error("NoSuchUpload", details={"UploadId": upload_id})
    if not head.is_success:
        raise error_for_swift_status(head.status_int, bucket=call.bucket)
    requested = _requested_parts(call)
    uploaded = _parts(call, upload_id)
    manifest = []
    md5s = []
    for index, (number, etag) in enumerate(requested):
        row = uploaded.get(number)
        if row is None or row.get("hash") != etag:
            raise S3Error("InvalidPart", details={"UploadId": upload_id, "PartNumber": number,
                                                  "ETag": etag})
        size = int(row.get("bytes", 0))
        if index < len(requested) - 1 and size < call.settings.min_segment_size:
            raise S3Error("EntityTooSmall", details={
                "ProposedSize": size, "MinSizeAllowed": call.settings.min_segment_size,
                "PartNumber": number, "ETag": etag})
        manifest.append({"path": f"/{call.segments_container}/{row['name']}", "etag": etag,
                         "size_bytes": size})
        md5s.append(bytes.fromhex(etag))
    final_etag = f"{hashlib.md5(b''.join(md5s), usedforsecurity=False).hexdigest()}-" \
                 f"{len(requested)}"
    body = json.dumps(manifest).encode()
    headers: dict[str, str | None] = {
        name: head.headers[name] for name in STORED_ENTITY_HEADERS if name in head.headers}
    if head.headers.get(SYSMETA_HAS_CONTENT_TYPE) == "no":
        headers["Content-Type"] = None         # let SLO guess it from the key
    headers.update((name, value) for name, value in head.headers.items()
                   if name.lower().startswith("x-object-meta-"))
    headers.update({SYSMETA_S3_ETAG: final_etag, SYSMETA_UPLOAD_ID: upload_id,
                    OVERRIDE_ETAG: final_etag, "Content-Length": str(len(body)),
                    "Accept": "application/json"})
    response = call.swift.request("PUT", call.bucket, call.key,
                                  query="multipart-manifest=put", headers=headers, body=body)
    answer = response.read()
    if response.status_int == 404:
        raise S3Error("NoSuchBucket", details={"BucketName": call.bucket})
    if response.status_int == 400:
        # SLO found a part missing or changed since the listing
        raise S3Error("InvalidPart", details={"UploadId": upload_id,
                                              "Detail": answer[:200].decode("utf-8",
                                                                            "replace")})
    if not response.is_success:
        raise error_for_swift_status(response.status_int, bucket=call.bucket, key=call.key)
    used = {number for number, _ in requested}
    leftovers = [row["name"] for number, row in uploaded.items() if number not in used]
    _delete_names(call, [*leftovers, _marker_name(call.key, upload_id)])
    return _complete_result(call, final_etag)


def _delete_names(call: S3Call, names: list[str]) -> None:
    def delete(name: str) -> int:
        return call.swift.status("DELETE", call.segments_container, name).status_int
    for _status in bounded_map(delete, ((name,) for name in names), CLEANUP_CONCURRENCY):
        pass


# ---- AbortMultipartUpload -------------------------------------------------------------------

def abort_upload(call: S3Call) -> S3Response:
    upload_id = _upload_id(call)
    _head_marker(call, upload_id)
    names = [row["name"] for row in _parts(call, upload_id).values()]
    _delete_names(call, [*names, _marker_name(call.key, upload_id)])
    return S3Response(204)


# ---- ListMultipartUploads -------------------------------------------------------------------

def list_uploads(call: S3Call) -> S3Response:
    params = call.params
    max_uploads = parse_max(params, "max-uploads", 1000, 1000)
    encode = encoding(params)
    prefix = params.get("prefix", "")
    delimiter = params.get("delimiter", "")
    key_marker = params.get("key-marker", "")
    upload_id_marker = params.get("upload-id-marker", "")
    call.require_bucket()
    try:
        rows = _all_rows(call, prefix)
    except S3Error as err:
        if err.code != "NoSuchBucket":
            raise
        rows = []          # no upload was ever started in this bucket
    uploads = []
    for row in rows:
        key, _, upload_id = row.get("name", "").rpartition("/")
        if not key or not UPLOAD_ID_RE.match(upload_id):
            continue
        if key_marker and (key < key_marker or (key == key_marker and (
                not upload_id_marker or upload_id <= upload_id_marker))):
            continue
        uploads.append((key, upload_id, row))
    uploads.sort(key=lambda item: (item[0], item[1]))
    entries: list[tuple[str, object]] = []
    prefixes: list[str] = []
    truncated = False
    last_key, last_upload = "", ""
    owner = call.owner()
    for key, upload_id, row in uploads:
        if delimiter:
            cut = key.find(delimiter, len(prefix))
            if cut >= 0:
                common = key[:cut + len(delimiter)]
                if common not in prefixes:
                    if len(entries) + len(prefixes) >= max_uploads:
                        truncated = True
                        break
                    prefixes.append(common)
                    last_key, last_upload = key, upload_id
                continue
        if len(entries) + len(prefixes) >= max_uploads:
            truncated = True
            break
        entries.append(("Upload", [
            ("Key", encode(key)), ("UploadId", upload_id), ("Initiator", owner),
            ("Owner", owner), ("StorageClass", "STANDARD"),
            ("Initiated", listing_time_to_iso(row.get("last_modified")))]))
        last_key, last_upload = key, upload_id
    fields: list[tuple[str, object]] = [
        ("Bucket", call.bucket), ("KeyMarker", encode(key_marker)),
        ("UploadIdMarker", upload_id_marker),
        ("NextKeyMarker", encode(last_key) if truncated else None),
        ("NextUploadIdMarker", last_upload if truncated else None),
        ("Prefix", encode(prefix))]
    if delimiter:
        fields.append(("Delimiter", encode(delimiter)))
    fields.extend([("MaxUploads", max_uploads), ("IsTruncated", truncated)])
    if "encoding-type" in params:
        fields.append(("EncodingType", "url"))
    fields.extend(entries)
    fields.extend(("CommonPrefixes", [("Prefix", encode(common))]) for common in prefixes)
    return S3Response(200, XML_HEADERS, build_document("ListMultipartUploadsResult", fields))
