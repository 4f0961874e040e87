"""DeleteObjects (POST /<bucket>?delete): many keys in one request, answered per key.

As S3: the body is a `<Delete>` document of at most `max_multi_delete_objects` keys, a
Content-MD5 (or x-amz-checksum-*) header is required and checked, `<Quiet>` leaves the
successes out of the answer; a key that does not exist counts as deleted. Keys are deleted a
few at a time, each as DeleteObject does (a multipart object with its parts).
"""

from __future__ import annotations

from proxy.middleware.s3api.call import S3Call
from proxy.middleware.s3api.errors import S3Error
from proxy.middleware.s3api.obj import delete_key
from proxy.middleware.s3api.swift import S3Response
from proxy.middleware.s3api.xml import build_document
from proxy.middleware.subrequest import bounded_map

DELETE_CONCURRENCY = 4


def delete_objects(call: S3Call) -> S3Response:
    headers = call.headers
    if headers.get("Content-MD5") is None and \
            not any(name.lower().startswith("x-amz-checksum-") for name in headers):
        raise S3Error("InvalidRequest", "Missing required header for this request: "
                      "Content-MD5")
    limit = call.settings.max_multi_delete_objects
    document = call.read_xml("Delete", call.settings.max_request_xml_bytes)
    quiet = (document.child_text("Quiet") or "").strip().lower() == "true"
    keys = []
    for item in document.find_all("Object"):
        key = item.child_text("Key")
        if not key:
            raise S3Error("MalformedXML")
        keys.append(key)
    if not keys or len(keys) > limit:
        raise S3Error("MalformedXML")
    call.require_bucket()
    results = bounded_map(lambda key: (key, delete_key(call, key)),
                          ((key,) for key in keys), DELETE_CONCURRENCY)
    fields: list[tuple[str, object]] = []
    for key, error in results:
        if error is None:
            if not quiet:
                fields.append(("Deleted", [("Key", key)]))
        else:
            fields.append(("Error", [("Key", key), ("Code", error.code),
                                     ("Message", error.message)]))
    return S3Response(200, [("Content-Type", "application/xml")],
                      build_document("DeleteResult", fields))
