"""Requests straight to storage servers (Swift's direct_client), for daemons and tools.

The expirer, the database replicator and `ringstack-recon` talk to object, container and
account servers without a proxy. This module owns how: one green HTTP request with a query
string and an optional body (`request`; `storage_node.http_client` sends server-to-server
updates and has no query string), a paged JSON listing merged over every primary
(`merged_listing`), and fan-out of one request to several nodes (`fan_out`).
No answer in time is `None`, never an exception: callers count statuses.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Protocol
from urllib.parse import quote, urlencode

import eventlet
from eventlet.green.http import client as green_http

from storage_node.http_client import HttpResult

DEFAULT_CONN_TIMEOUT_S = 0.5
DEFAULT_NODE_TIMEOUT_S = 10.0
MAX_BODY_BYTES = 64 * 1024 * 1024
LISTING_LIMIT = 10000


class Addressed(Protocol):
    """Anything with ip, port and device (ring.Node, a recon target)."""

    @property
    def ip(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def device(self) -> str: ...


def request(ip: str, port: int, method: str, path: str, *, query: str = "",
            headers: dict[str, str] | None = None, body: bytes = b"",
            conn_timeout_s: float = DEFAULT_CONN_TIMEOUT_S,
            node_timeout_s: float = DEFAULT_NODE_TIMEOUT_S,
            max_body_bytes: int = MAX_BODY_BYTES,
            logger: logging.Logger | None = None) -> HttpResult | None:
    """One request (path unquoted, quoted here once; query already encoded); None when there
    was no HTTP answer within the timeouts."""
    connection = green_http.HTTPConnection(ip, port, timeout=node_timeout_s)
    target = quote(path) + (f"?{query}" if query else "")
    try:
        with eventlet.Timeout(conn_timeout_s, TimeoutError("connect timed out")):
            connection.connect()
        with eventlet.Timeout(node_timeout_s, TimeoutError("no answer in time")):
            connection.putrequest(method, target, skip_accept_encoding=True)
            sent_length = False
            for name, value in (headers or {}).items():
                connection.putheader(name, value)
                sent_length = sent_length or name.lower() == "content-length"
            if not sent_length and (body or method in ("PUT", "POST", "DELETE", "REPLICATE")):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            response = connection.getresponse()
            data = response.read(max_body_bytes)
            return HttpResult(response.status,
                              {k.lower(): v for k, v in response.getheaders()}, data)
    except (OSError, green_http.HTTPException) as err:
        if logger is not None:
            logger.warning("%s %s:%s%s failed: %s", method, ip, port, target, err)
        return None
    finally:
        connection.close()


def node_request(node: Addressed, partition: int | str, method: str, path: str,
                 **kwargs: object) -> HttpResult | None:
    """`request` to `/<device>/<partition><path>` on a node."""
    return request(node.ip, node.port, method, f"/{node.device}/{partition}{path}",
                   **kwargs)  # type: ignore[arg-type]


def fan_out(nodes: Sequence[Addressed], call: Callable[[int, Addressed], HttpResult | None]
            ) -> list[HttpResult | None]:
    """`call(index, node)` for every node in parallel; results in node order."""
    pile = eventlet.GreenPile(max(1, len(nodes)))
    for index, node in enumerate(nodes):
        pile.spawn(call, index, node)
    return list(pile)


def status_of(result: HttpResult | None) -> int | None:
    return result.status if result is not None else None


def merged_listing(nodes: Sequence[Addressed], partition: int, path: str,
                   logger: logging.Logger | None = None, **kwargs: object) -> list[str] | None:
    """Names listed at `path` (an account or container) by any of `nodes`, paged with
    markers; None when no node answered 2xx (404s and failures alike)."""
    names: set[str] = set()
    answered = False
    for node in nodes:
        marker = ""
        while True:
            query = urlencode({"format": "json", "limit": LISTING_LIMIT, "marker": marker})
            result = node_request(node, partition, "GET", path, query=query, logger=logger,
                                  **kwargs)
            if result is None or not 200 <= result.status < 300:
                break
            answered = True
            try:
                rows = json.loads(result.body) if result.body else []
            except ValueError:
                break
            page = [row["name"] for row in rows if isinstance(row, dict) and "name" in row]
            names.update(page)
            if len(page) < LISTING_LIMIT:
                break
            marker = page[-1]
    return sorted(names) if answered else None
