"""Identity's typed errors and the one place they become Keystone's JSON error bodies.

Keystone answers every failure as `{"error": {"code": N, "title": "...", "message": "..."}}`
with the same status; clients (keystoneauth, openstackclient) map the status to an exception,
so the status matters more than the words.
"""

from __future__ import annotations

import json

from webob import Response


class IdentityError(Exception):
    """A refusal with Keystone's status and title; `message` is safe to show the caller."""

    status = 500
    title = "Internal Server Error"

    def __init__(self, message: str = ""):
        super().__init__(message or self.title)
        self.message = message or self.title


class BadRequest(IdentityError):
    status = 400
    title = "Bad Request"


class Unauthorized(IdentityError):
    status = 401
    title = "Unauthorized"


class Forbidden(IdentityError):
    status = 403
    title = "Forbidden"


class NotFound(IdentityError):
    status = 404
    title = "Not Found"


class MethodNotAllowed(IdentityError):
    status = 405
    title = "Method Not Allowed"


class Conflict(IdentityError):
    status = 409
    title = "Conflict"


def error_response(err: IdentityError) -> Response:
    body = {"error": {"code": err.status, "title": err.title, "message": err.message}}
    response = Response(status=err.status, content_type="application/json", charset="utf-8",
                        body=json.dumps(body).encode())
    if err.status == 401:
        # keystoneauth and Swift clients look for this to know where to authenticate.
        response.headers["WWW-Authenticate"] = 'Keystone uri="/"'
    return response
