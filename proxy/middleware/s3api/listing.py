"""ListObjects (v1) and ListObjectsV2 from Swift container listings (`format=json`).

Swift's listing already does prefix, delimiter (`subdir` rows, counted like S3 counts
CommonPrefixes) and marker; this module asks for one more row than `max-keys` to learn
whether the answer is truncated, and writes S3's document: `NextMarker` (v1, when a
delimiter is given, as S3 does), an opaque `NextContinuationToken` (v2, the marker in
base64), `StartAfter`, `KeyCount`, `Owner` (v1 always, v2 with `fetch-owner=true`) and
`encoding-type=url`.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from proxy.middleware.s3api.call import S3Call
from proxy.middleware.s3api.errors import S3Error, error_for_swift_status
from proxy.middleware.s3api.swift import S3Response, listing_time_to_iso
from proxy.middleware.s3api.xml import build_document
from proxy.middleware.subrequest import quote


def parse_max(params: dict[str, str], name: str, default: int, cap: int) -> int:
    text = params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise S3Error("InvalidArgument", "Provided max-keys not an integer or within "
                      "integer range", details={"ArgumentName": name,
                                                "ArgumentValue": text}) from None
    if value < 0:
        raise S3Error("InvalidArgument", f"Argument {name} must be an integer between 0 and "
                      "2147483647", details={"ArgumentName": name, "ArgumentValue": text})
    return min(value, cap)


def encoding(params: dict[str, str]) -> Any:
    """The function that writes names in the answer (url-encoding them if asked)."""
    kind = params.get("encoding-type")
    if kind is None:
        return lambda text: text
    if kind != "url":
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request",
                      details={"ArgumentName": "encoding-type", "ArgumentValue": kind})
    return lambda text: quote(text, safe="/") if text is not None else None


def swift_listing(call: S3Call, container: str, *, prefix: str = "", delimiter: str = "",
                  marker: str = "", limit: int) -> list[dict[str, Any]]:
    """Rows of a container listing; NoSuchBucket (or AccessDenied) when it cannot be read."""
    query = f"format=json&limit={limit}"
    for name, value in (("prefix", prefix), ("delimiter", delimiter), ("marker", marker)):
        if value:
            query += f"&{name}={quote(value, safe='')}"
    response = call.swift.request("GET", container, query=query)
    if not response.is_success:
        response.close()
        raise error_for_swift_status(response.status_int, bucket=call.bucket)
    if response.status_int == 204:
        response.close()
        return []
    try:
        rows = json.loads(response.read() or b"[]")
    except ValueError:
        raise S3Error("InternalError") from None
    return rows if isinstance(rows, list) else []


def object_entry(row: dict[str, Any], encode: Any,
                 owner: list[tuple[str, object]] | None) -> tuple[str, object]:
    etag = str(row.get("hash", ""))
    fields: list[tuple[str, object]] = [
        ("Key", encode(row["name"])),
        ("LastModified", listing_time_to_iso(row.get("last_modified"))),
        ("ETag", f'"{etag}"'),
        ("Size", int(row.get("bytes", 0))),
    ]
    if owner is not None:
        fields.append(("Owner", owner))
    fields.append(("StorageClass", "STANDARD"))
    return ("Contents", fields)


def list_objects(call: S3Call) -> S3Response:
    params = call.params
    v2 = params.get("list-type") == "2"
    if "list-type" in params and not v2:
        raise S3Error("InvalidArgument", details={"ArgumentName": "list-type",
                                                  "ArgumentValue": params["list-type"]})
    max_keys = parse_max(params, "max-keys", call.settings.max_bucket_listing,
                         call.settings.max_bucket_listing)
    encode = encoding(params)
    prefix = params.get("prefix", "")
    delimiter = params.get("delimiter", "")
    token = params.get("continuation-token")
    if v2:
        if token is not None:
            try:
                marker = base64.b64decode(token.encode("ascii"), altchars=b"-_",
                                          validate=True).decode("utf-8")
            except (binascii.Error, ValueError, UnicodeError):
                raise S3Error("InvalidArgument", "The continuation token provided is "
                              "incorrect", details={"ArgumentName": "continuation-token"}
                              ) from None
        else:
            marker = params.get("start-after", "")
    else:
        marker = params.get("marker", "")
    rows = swift_listing(call, call.bucket, prefix=prefix, delimiter=delimiter, marker=marker,
                         limit=max_keys + 1) if max_keys else []
    if not max_keys:
        call.require_bucket()
    truncated = len(rows) > max_keys
    rows = rows[:max_keys]
    fetch_owner = not v2 or params.get("fetch-owner", "").lower() == "true"
    owner = call.owner() if fetch_owner else None
    contents = []
    prefixes = []
    for row in rows:
        if "subdir" in row:
            prefixes.append(("CommonPrefixes", [("Prefix", encode(row["subdir"]))]))
        else:
            contents.append(object_entry(row, encode, owner))
    last = (rows[-1].get("subdir") or rows[-1].get("name")) if rows else None
    fields: list[tuple[str, object]] = [("Name", call.bucket), ("Prefix", encode(prefix))]
    if v2:
        if token is not None:
            fields.append(("ContinuationToken", token))
        if "start-after" in params:
            fields.append(("StartAfter", encode(params["start-after"])))
        fields.append(("KeyCount", len(rows)))
        if truncated and last is not None:
            fields.append(("NextContinuationToken",
                           base64.urlsafe_b64encode(last.encode("utf-8")).decode("ascii")))
    else:
        fields.append(("Marker", encode(marker)))
        if truncated and delimiter and last is not None:
            fields.append(("NextMarker", encode(last)))
    fields.append(("MaxKeys", max_keys))
    if delimiter:
        fields.append(("Delimiter", encode(delimiter)))
    if "encoding-type" in params:
        fields.append(("EncodingType", "url"))
    fields.append(("IsTruncated", truncated))
    fields.extend(contents)
    fields.extend(prefixes)
    return S3Response(200, [("Content-Type", "application/xml")],
                      build_document("ListBucketResult", fields))
