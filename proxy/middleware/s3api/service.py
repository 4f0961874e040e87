"""ListBuckets (GET /): the caller's account listing as S3's ListAllMyBucketsResult.

Multipart upload containers (`<bucket>+segments`) are Swift's bookkeeping and are not shown.
"""

from __future__ import annotations

import json

from proxy.middleware.s3api.call import S3Call
from proxy.middleware.s3api.errors import S3Error, error_for_swift_status
from proxy.middleware.s3api.swift import S3Response, listing_time_to_iso
from proxy.middleware.s3api.xml import build_document

PAGE_LIMIT = 10000
MAX_PAGES = 100          # a million containers: far beyond what one S3 answer should hold


def list_buckets(call: S3Call) -> S3Response:
    if call.auth is None:
        raise S3Error("AccessDenied", "Anonymous users cannot list buckets")
    buckets: list[tuple[str, object]] = []
    marker = ""
    for _ in range(MAX_PAGES):
        query = f"format=json&limit={PAGE_LIMIT}"
        if marker:
            from proxy.middleware.subrequest import quote
            query += "&marker=" + quote(marker, safe="")
        response = call.swift.request("GET", query=query)
        if response.status_int == 404:
            response.close()
            break                      # an account never written to holds no buckets
        if not response.is_success:
            response.close()
            raise error_for_swift_status(response.status_int)
        try:
            rows = json.loads(response.read() or b"[]")
        except ValueError:
            raise S3Error("InternalError") from None
        for row in rows:
            name = row.get("name", "")
            if not name.endswith(call.settings.segments_suffix):
                buckets.append(("Bucket", [
                    ("Name", name),
                    ("CreationDate", listing_time_to_iso(row.get("last_modified")))]))
        if len(rows) < PAGE_LIMIT:
            break
        marker = rows[-1]["name"]
    body = build_document("ListAllMyBucketsResult",
                          [("Owner", call.owner()), ("Buckets", buckets)])
    return S3Response(200, [("Content-Type", "application/xml")], body)
