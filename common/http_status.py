"""Swift's status lines and default bodies: the one table every ringstack server answers from.

Clients and tools match on Swift's reason phrases, and on the short HTML body Swift sends with
a response that has none of its own, so the proxy (its errors and its middlewares) and the
object, container and account servers all take them from `RESPONSE_REASONS` (swob's table):
- `status_line(status)`: "404 Not Found" (a reason of the caller's own may replace Swift's);
- `default_body(status)`: `<html><h1>Title</h1><p>Explanation</p></html>`, or b"" for a status
  without an explanation.
"""

from __future__ import annotations

# status -> (reason phrase, explanation for the default body; "" for none)
RESPONSE_REASONS: dict[int, tuple[str, str]] = {
    200: ("OK", ""),
    201: ("Created", ""),
    202: ("Accepted", "The request is accepted for processing."),
    204: ("No Content", ""),
    206: ("Partial Content", ""),
    304: ("Not Modified", ""),
    400: ("Bad Request", "The server could not comply with the request since it is either "
          "malformed or otherwise incorrect."),
    401: ("Unauthorized", "This server could not verify that you are authorized to access the "
          "document you requested."),
    403: ("Forbidden", "Access was denied to this resource."),
    404: ("Not Found", "The resource could not be found."),
    405: ("Method Not Allowed", "The method is not allowed for this resource."),
    406: ("Not Acceptable", "The resource is not available in a format acceptable to your "
          "browser."),
    408: ("Request Timeout", "The server has waited too long for the request to be sent by the "
          "client."),
    409: ("Conflict", "There was a conflict when trying to complete your request."),
    410: ("Gone", "This resource is no longer available."),
    411: ("Length Required", "Content-Length header required."),
    412: ("Precondition Failed", "A precondition for this request was not met."),
    413: ("Request Entity Too Large", "The body of your request was too large for this server."),
    414: ("Request URI Too Long", "The request URI was too long for this server."),
    416: ("Requested Range Not Satisfiable", "The Range requested is not available."),
    422: ("Unprocessable Entity", "Unable to process the contained instructions"),
    499: ("Client Disconnect", "The client was disconnected during request."),
    500: ("Internal Error", "The server has either erred or is incapable of performing the "
          "requested operation."),
    501: ("Not Implemented", "The server is either unable or unwilling to perform the requested "
          "action."),
    502: ("Bad Gateway", "Bad gateway."),
    503: ("Service Unavailable", "The server is currently unavailable. Please try again at a "
          "later time."),
    507: ("Insufficient Storage", "There was not enough space to save the resource."),
}


def status_line(status: int, reason: str = "") -> str:
    """`<status> <reason>`; Swift's reason unless one is given ("Unknown" if Swift has none)."""
    return f"{status} {reason or RESPONSE_REASONS.get(status, ('Unknown', ''))[0]}"


def default_body(status: int) -> bytes:
    """Swift's HTML body for a response without a body of its own (b"" if it has none)."""
    title, explanation = RESPONSE_REASONS.get(status, ("", ""))
    return f"<html><h1>{title}</h1><p>{explanation}</p></html>".encode() if explanation else b""
