"""The S3 API middleware: tells S3 requests from Swift ones, authenticates them, routes each
to its handler, and turns every refusal into S3's XML error.

Sits left of keystoneauth in the pipeline (`... s3api keystoneauth copy ... slo dlo proxy`):
the signature's AuthContext goes into the environ and into each Swift subrequest the handlers
make, so keystoneauth authorizes those as the signer, and slo/copy to the right do large
objects and server-side copies. Swift requests (`/v1/...`, `/auth/...`, `/info`) pass through.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable

from common.http_status import status_line
from proxy.identity_client import AUTH_CONTEXT_ENV_KEY
from proxy.middleware.s3api import bucket, listing, multi_delete, multipart, obj, service
from proxy.middleware.s3api.auth import S3Authenticator, authenticate
from proxy.middleware.s3api.call import S3Call
from proxy.middleware.s3api.errors import S3Error
from proxy.middleware.s3api.payload import BodyRejected
from proxy.middleware.s3api.request import S3Target, is_s3_request, parse_target
from proxy.middleware.s3api.settings import S3Settings
from proxy.middleware.s3api.swift import S3Response, SwiftAccount
from proxy.middleware.subrequest import StartResponse, WsgiApp, WsgiEnv

LOGGER = logging.getLogger("ringstack.proxy.s3api")
Handler = Callable[[S3Call], S3Response]

# Sub-resources S3 has and this layer does not: NotImplemented rather than a wrong answer.
UNSUPPORTED_BUCKET_SUBRESOURCES = (
    "accelerate", "analytics", "cors", "encryption", "intelligent-tiering", "inventory",
    "lifecycle", "logging", "metrics", "notification", "object-lock", "ownershipControls",
    "policy", "policyStatus", "publicAccessBlock", "replication", "requestPayment",
    "tagging", "website", "versions")


def _not_implemented(_call: S3Call) -> S3Response:
    raise S3Error("NotImplemented")


def route(target: S3Target) -> Handler:
    """The handler for a request's method, bucket/key and sub-resources."""
    method = target.method
    if target.bucket is None:
        if method in ("GET", "HEAD"):
            return service.list_buckets
        raise S3Error("MethodNotAllowed", details={"Method": method,
                                                   "ResourceType": "SERVICE"})
    if target.key is None:
        return _bucket_route(target, method)
    return _object_route(target, method)


def _bucket_route(target: S3Target, method: str) -> Handler:
    if method in ("GET", "PUT", "DELETE") and \
            target.sub_resource(*UNSUPPORTED_BUCKET_SUBRESOURCES):
        return _not_implemented
    if method == "GET":
        for name, handler in (("uploads", multipart.list_uploads),
                              ("location", bucket.get_location),
                              ("versioning", bucket.get_versioning),
                              ("acl", bucket.get_bucket_acl)):
            if name in target.params:
                return handler
        return listing.list_objects
    if method == "HEAD":
        return bucket.head_bucket
    if method == "PUT":
        if target.sub_resource("acl"):
            return bucket.put_bucket_acl
        if target.sub_resource("versioning"):
            return _not_implemented
        return bucket.create_bucket
    if method == "DELETE":
        return bucket.delete_bucket
    if method == "POST" and target.sub_resource("delete"):
        return multi_delete.delete_objects
    raise S3Error("MethodNotAllowed", details={"Method": method, "ResourceType": "BUCKET"})


def _object_route(target: S3Target, method: str) -> Handler:
    if target.params.get("versionId", "null") not in ("null", ""):
        return _not_implemented          # no object versions here
    if method in ("GET", "HEAD"):
        if method == "GET" and target.sub_resource("uploadId"):
            return multipart.list_parts
        if method == "GET" and target.sub_resource("acl"):
            return obj.get_object_acl
        if target.sub_resource("tagging", "torrent", "attributes"):
            return _not_implemented
        return obj.get_object
    if method == "PUT":
        if target.sub_resource("partNumber") or target.sub_resource("uploadId"):
            return multipart.upload_part
        if target.sub_resource("acl"):
            return obj.put_object_acl
        if target.sub_resource("tagging", "retention", "legal-hold"):
            return _not_implemented
        return _put_or_copy
    if method == "DELETE":
        if target.sub_resource("uploadId"):
            return multipart.abort_upload
        if target.sub_resource("tagging"):
            return _not_implemented
        return obj.delete_object
    if method == "POST":
        if target.sub_resource("uploads"):
            return multipart.create_upload
        if target.sub_resource("uploadId"):
            return multipart.complete_upload
        if target.sub_resource("restore", "select"):
            return _not_implemented
    raise S3Error("MethodNotAllowed", details={"Method": method, "ResourceType": "OBJECT"})


def _put_or_copy(call: S3Call) -> S3Response:
    if "x-amz-copy-source" in call.headers:
        return obj.copy_object(call)
    return obj.put_object(call)


class S3ApiMiddleware:
    """WSGI middleware serving the S3 API on top of the Swift pipeline to its right."""

    def __init__(self, app: WsgiApp, settings: S3Settings,
                 authenticator: S3Authenticator | None,
                 clock: Callable[[], float] = time.time):
        self.app = app
        self.settings = settings
        self.authenticator = authenticator
        self.clock = clock

    def __call__(self, env: WsgiEnv, start_response: StartResponse) -> Iterable[bytes]:
        if not is_s3_request(env, self.settings):
            return self.app(env, start_response)
        request_id = env.get("swift.trans_id") or f"tx{uuid.uuid4().hex[:21]}"
        method = env.get("REQUEST_METHOD", "GET")
        resource = "/"
        try:
            target = parse_target(env, self.settings)
            resource = target.resource
            response = self._handle(env, target, request_id)
        except BodyRejected as err:
            response = self._error(err.error, resource, request_id, method)
        except S3Error as err:
            response = self._error(err, resource, request_id, method)
        headers = [(name, value) for name, value in response.headers
                   if name.lower() != "x-amz-request-id"]
        headers.append(("x-amz-request-id", request_id))
        body = response.body
        if isinstance(body, bytes):
            if not any(name.lower() == "content-length" for name, _ in headers):
                headers.append(("Content-Length", str(len(body))))
            if method == "HEAD":
                body = b""
            body = [body]
        start_response(status_line(response.status_int), headers)
        return body

    def _error(self, error: S3Error, resource: str, request_id: str,
               method: str) -> S3Response:
        if error.status_int >= 500:
            LOGGER.warning("S3 %s %s: %s", method, resource, error)
        status, headers, body = error.response(resource, request_id, method)
        return S3Response(error.status_int, headers, b"".join(body))

    def _handle(self, env: WsgiEnv, target: S3Target, request_id: str) -> S3Response:
        handler = route(target)
        if self.authenticator is None:
            auth = None
            if env.get("HTTP_AUTHORIZATION") or "Signature" in target.params or \
                    "X-Amz-Signature" in target.params:
                raise S3Error("AccessDenied", "S3 signatures cannot be checked: this proxy "
                              "has no identity service configured.")
        else:
            auth = authenticate(env, target, self.settings, self.authenticator, self.clock())
        context = auth.context if auth is not None else None
        if context is not None:
            env[AUTH_CONTEXT_ENV_KEY] = context
        if target.account is not None:
            account = self.settings.reseller_prefix + target.account \
                if not target.account.startswith(self.settings.reseller_prefix) \
                else target.account
        elif context is not None and context.project_id:
            account = context.account(self.settings.reseller_prefix)
        else:
            raise S3Error("AccessDenied", "Anonymous requests must name the bucket's account "
                          "as <project id>:<bucket>.")
        swift = SwiftAccount(self.app, env, account, context, self.settings.swift_api_version)
        call = S3Call(env, target, self.settings, swift, auth, request_id)
        return handler(call)
