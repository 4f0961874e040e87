"""A tiny green HTTP client for server-to-server requests (container and account updates).

`request(ip, port, method, path, headers)` sends one request over a fresh connection and
returns `HttpResult(status, headers, body)`. It uses `eventlet.green.http.client`, so it
yields to the hub while waiting, and has two bounds: `connect_timeout_s` for the TCP connect
and `response_timeout_s` for sending the request and reading the whole response (one
watchdog per request, not one per read). No answer in time, or no connection at all, raises
`HttpError`; any HTTP status (even 5xx) is a result, for the caller to judge.

`path` is the unquoted path (e.g. `/sda1/12/AUTH_a/c/o w`); it is URL-quoted here, once.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import quote

import eventlet
from eventlet.green.http import client as green_http

DEFAULT_CONNECT_TIMEOUT_S = 0.5
DEFAULT_RESPONSE_TIMEOUT_S = 3.0
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
_BODYLESS_METHODS_WITH_LENGTH = frozenset({"PUT", "POST", "DELETE"})


class HttpError(Exception):
    """No HTTP answer: refused, unreachable, reset, timed out, or not HTTP."""


class HttpTimeout(HttpError):
    """The connect or the response took longer than allowed."""


class HttpResult(NamedTuple):
    status: int
    headers: dict[str, str]      # names lower-cased
    body: bytes


def split_host(host: str) -> tuple[str, int]:
    """`ip:port` or `[ipv6]:port` -> (ip, port); ValueError if it is neither."""
    ip, sep, port_text = host.strip().rpartition(":")
    if not sep or not ip or not port_text.isdigit():
        raise ValueError(f"not ip:port: {host!r}")
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"port out of range: {host!r}")
    return ip, port


def device_path(device: str, partition: int | str, path: str) -> str:
    """`/<device>/<partition><path>`: the storage-server form of an update's path."""
    return f"/{device}/{partition}{path}"


def request(ip: str, port: int, method: str, path: str,
            headers: dict[str, str] | None = None, body: bytes = b"", *,
            connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
            response_timeout_s: float = DEFAULT_RESPONSE_TIMEOUT_S,
            max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> HttpResult:
    """Send one request and read its response (at most `max_body_bytes` of body)."""
    connection = green_http.HTTPConnection(ip, port, timeout=connect_timeout_s)
    try:
        with eventlet.Timeout(connect_timeout_s,
                              HttpTimeout(f"connect to {ip}:{port} timed out")):
            connection.connect()
        with eventlet.Timeout(response_timeout_s,
                              HttpTimeout(f"{method} {ip}:{port}{path} timed out")):
            # Reads inside are bounded by the watchdog; the socket timeout is a backstop.
            if connection.sock is not None:
                connection.sock.settimeout(response_timeout_s)
            connection.putrequest(method, quote(path), skip_accept_encoding=True)
            sent_length = False
            for name, value in (headers or {}).items():
                connection.putheader(name, value)
                sent_length = sent_length or name.lower() in ("content-length",
                                                              "transfer-encoding")
            if not sent_length and (body or method in _BODYLESS_METHODS_WITH_LENGTH):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            response = connection.getresponse()
            # read(n) allocates n bytes up front: ask for no more than the body has
            length = response.length
            data = response.read(max_body_bytes if length is None
                                 else min(length, max_body_bytes))
            return HttpResult(response.status,
                              {k.lower(): v for k, v in response.getheaders()}, data)
    except HttpError:
        raise
    except (OSError, green_http.HTTPException) as err:
        raise HttpError(f"{method} {ip}:{port}{path}: {err}") from None
    finally:
        connection.close()
