"""S3 errors: one exception type carrying S3's code, HTTP status and message, and its XML body.

Every refusal of the S3 layer is an `S3Error` raised where it is found and turned into S3's
`<Error><Code/><Message/><Resource/><RequestId/>...</Error>` document in one place (the
middleware). The table below is the one place that maps a code to its status and default
message, so a module raising `S3Error("NoSuchKey")` never picks a status itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from common.http_status import status_line
from proxy.middleware.s3api.xml import build_document

# code -> (HTTP status, S3's default message)
ERRORS: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "Access Denied."),
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed."),
    "AuthorizationQueryParametersError": (400, "Error parsing the X-Amz-Credential "
                                               "parameter."),
    "BadDigest": (400, "The Content-MD5 you specified did not match what we received."),
    "BucketAlreadyExists": (409, "The requested bucket name is not available. The bucket "
                                 "namespace is shared by all users of the system. Please "
                                 "select a different name and try again."),
    "BucketAlreadyOwnedByYou": (409, "Your previous request to create the named bucket "
                                     "succeeded and you already own it."),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty"),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed object size."),
    "EntityTooSmall": (400, "Your proposed upload is smaller than the minimum allowed "
                            "object size."),
    "IncompleteBody": (400, "You did not provide the number of bytes specified by the "
                            "Content-Length HTTP header."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InvalidAccessKeyId": (403, "The AWS Access Key Id you provided does not exist in our "
                                "records."),
    "InvalidArgument": (400, "Invalid Argument"),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidDigest": (400, "The Content-MD5 you specified is not valid."),
    "InvalidLocationConstraint": (400, "The specified location constraint is not valid."),
    "InvalidPart": (400, "One or more of the specified parts could not be found. The part "
                         "may not have been uploaded, or the specified entity tag may not "
                         "match the part's entity tag."),
    "InvalidPartOrder": (400, "The list of parts was not in ascending order. Parts must be "
                              "ordered by part number."),
    "InvalidRange": (416, "The requested range is not satisfiable"),
    "InvalidRequest": (400, "Invalid Request"),
    "InvalidURI": (400, "Couldn't parse the specified URI."),
    "KeyTooLongError": (400, "Your key is too long."),
    "MalformedXML": (400, "The XML you provided was not well-formed or did not validate "
                          "against our published schema."),
    "MaxMessageLengthExceeded": (400, "Your request was too big."),
    "MetadataTooLarge": (400, "Your metadata headers exceed the maximum allowed metadata "
                              "size."),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "MissingSecurityHeader": (400, "Your request was missing a required header."),
    "NoSuchBucket": (404, "The specified bucket does not exist."),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchUpload": (404, "The specified multipart upload does not exist. The upload ID "
                          "might be invalid, or the multipart upload might have been aborted "
                          "or completed."),
    "NotImplemented": (501, "A header you provided implies functionality that is not "
                            "implemented."),
    "PreconditionFailed": (412, "At least one of the preconditions you specified did not "
                                "hold."),
    "RequestTimeTooSkewed": (403, "The difference between the request time and the current "
                                  "time is too large."),
    "ServiceUnavailable": (503, "Please reduce your request rate."),
    "SignatureDoesNotMatch": (403, "The request signature we calculated does not match the "
                                   "signature you provided. Check your key and signing "
                                   "method."),
    "SlowDown": (503, "Please reduce your request rate."),
    "XAmzContentSHA256Mismatch": (400, "The provided 'x-amz-content-sha256' header does not "
                                       "match what was computed."),
}


class S3Error(Exception):
    """An S3 error response; `details` become extra elements of the XML (S3 adds e.g.
    `BucketName`, `Key`, `StringToSign`)."""

    def __init__(self, code: str, message: str | None = None, *,
                 details: Mapping[str, object] | None = None,
                 headers: Mapping[str, str] | None = None, status: int | None = None):
        default_status, default_message = ERRORS.get(code, (400, code))
        self.code = code
        self.message = message or default_message
        self.status_int = status or default_status
        self.details = dict(details or {})
        self.headers = dict(headers or {})
        super().__init__(f"{code}: {self.message}")

    @property
    def status(self) -> str:
        return status_line(self.status_int)

    def body(self, resource: str, request_id: str) -> bytes:
        fields: list[tuple[str, object]] = [("Code", self.code), ("Message", self.message)]
        fields.extend(self.details.items())
        fields.extend([("Resource", resource), ("RequestId", request_id)])
        return build_document("Error", fields, namespace=None)

    def response(self, resource: str, request_id: str,
                 method: str) -> tuple[str, list[tuple[str, str]], Iterable[bytes]]:
        """(status, headers, body) of this error; HEAD answers carry no body, as S3's."""
        body = self.body(resource, request_id)
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id),
                   *self.headers.items()]
        if method == "HEAD":
            headers.append(("Content-Length", "0"))
            return self.status, headers, [b""]
        headers.append(("Content-Length", str(len(body))))
        return self.status, headers, [body]


def error_for_swift_status(status_int: int, *, bucket: str | None = None,
                           key: str | None = None) -> S3Error:
    """The S3 error for a Swift subrequest's failure status not handled more precisely."""
    if status_int == 404:
        if key is not None:
            return S3Error("NoSuchKey", details={"Key": key})
        return S3Error("NoSuchBucket", details={"BucketName": bucket or ""})
    if status_int in (401, 403):
        return S3Error("AccessDenied")
    if status_int == 412:
        return S3Error("PreconditionFailed")
    if status_int == 413:
        return S3Error("EntityTooLarge")
    if status_int == 416:
        return S3Error("InvalidRange")
    if status_int == 411:
        return S3Error("MissingContentLength")
    if status_int == 422:
        return S3Error("BadDigest")
    if status_int == 499:
        return S3Error("IncompleteBody")
    if status_int == 408:
        return S3Error("RequestTimeout", "Your socket connection to the server was not read "
                       "from or written to within the timeout period.", status=400)
    if status_int in (503, 507):
        return S3Error("ServiceUnavailable")
    if status_int == 400:
        return S3Error("InvalidArgument")
    return S3Error("InternalError")
