"""The proxy's client-facing errors, and the one place they become HTTP responses.

Anything in the proxy that decides "this request ends here with status N" raises a `ProxyError`
subclass; `ProxyApplication` catches it and calls `error_response`. Reason phrases and default
bodies are Swift's (`common.http_status`), so clients and tools that match on them keep
working.
"""

from __future__ import annotations

from collections.abc import Mapping

from webob import Request, Response

from common.http_status import default_body, status_line


class ProxyError(Exception):
    """A request that ends here with `status`; `body` replaces Swift's default text."""

    status = 500

    def __init__(self, body: str | bytes | None = None,
                 headers: Mapping[str, str] | None = None):
        super().__init__(body if isinstance(body, str) else status_line(self.status))
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.headers = dict(headers or {})


class Accepted(ProxyError):
    """Not a failure: Swift answers 202 when a PUT lost a race to a newer write (409s)."""

    status = 202


class BadRequest(ProxyError):
    status = 400


class Unauthorized(ProxyError):
    status = 401


class Forbidden(ProxyError):
    status = 403


class NotFound(ProxyError):
    status = 404


class MethodNotAllowed(ProxyError):
    status = 405


class RequestTimeout(ProxyError):
    status = 408


class LengthRequired(ProxyError):
    status = 411


class PreconditionFailed(ProxyError):
    status = 412


class RequestEntityTooLarge(ProxyError):
    status = 413


class UnprocessableEntity(ProxyError):
    status = 422


class ClientDisconnect(ProxyError):
    status = 499


class InternalError(ProxyError):
    status = 500


class NotImplementedByProxy(ProxyError):
    status = 501


class ServiceUnavailable(ProxyError):
    """Too few storage nodes answered (or answered well) to give the client a real answer."""

    status = 503


def simple_response(request: Request | None, status: int, body: bytes | None = None,
                    headers: Mapping[str, str] | None = None, reason: str = "",
                    content_type: str = "text/html; charset=UTF-8") -> Response:
    """A complete small response; a missing body becomes Swift's default text (not on HEAD)."""
    if body is None:
        body = default_body(status)
    if request is not None and request.method == "HEAD":
        body = b""
    response = Response(status=status_line(status, reason), body=body,
                        content_type=content_type, charset=None)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(error: ProxyError, request: Request | None) -> Response:
    """The one mapping from a typed proxy error to what the client sees."""
    content_type = "text/plain; charset=UTF-8" if error.body else "text/html; charset=UTF-8"
    return simple_response(request, error.status, error.body, error.headers,
                           content_type=content_type)
