"""Serving a WSGI app on eventlet: bind, optional pre-forked workers, clean shutdown.

No global monkey-patching: the server's sockets are eventlet's own, code that needs green
network I/O imports `eventlet.green` modules explicitly, and blocking disk or sqlite work is
handed to a thread pool by the servers that do it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

import eventlet
import eventlet.hubs
import eventlet.wsgi

from common.config import Config

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]
DEFAULT_BACKLOG = 4096
DEFAULT_MAX_CLIENTS = 1024
MAX_HEADER_COUNT = 256


class _QuietLog:
    """eventlet.wsgi writes one line per request to this; route it to logging at debug."""

    def __init__(self, logger: logging.Logger):
        self.logger = logger

    def write(self, text: str) -> None:
        if text.strip():
            self.logger.debug(text.rstrip())


def bind(conf: Config, default_port: int) -> socket.socket:
    address = (conf.get_str("bind_ip", "127.0.0.1"), conf.get_int("bind_port", default_port, 0))
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    try:
        sock = eventlet.listen(address, family=family,
                               backlog=conf.get_int("backlog", DEFAULT_BACKLOG, 1))
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise SystemExit(f"cannot bind {address[0]}:{address[1]}: address in use") from None
        raise
    return sock


def _serve_forever(sock: socket.socket, app: WsgiApp, conf: Config,
                   logger: logging.Logger) -> None:
    eventlet.wsgi.server(
        sock, app, log=_QuietLog(logger), log_output=False,
        max_size=conf.get_int("max_clients", DEFAULT_MAX_CLIENTS, 1),
        keepalive=True, socket_timeout=conf.get_float("client_timeout", 60.0, 0.1),
        minimum_chunk_size=conf.get_int("network_chunk_size", 65536, 1024),
        # header names go out as the app wrote them (S3 clients read x-amz-meta-* keys
        # case-sensitively), as Swift's servers do
        capitalize_response_headers=False,
        debug=False)


def raise_header_limits(max_headers: int = MAX_HEADER_COUNT) -> None:
    """Let requests and responses carry Swift's legal metadata (90 keys plus the usual
    headers): Python's HTTP parser stops at 100 headers. Swift raises the same limit."""
    import http.client

    from eventlet.green.http import client as green_client
    for module in (http.client, green_client):
        module._MAXHEADERS = max(module._MAXHEADERS, max_headers)  # type: ignore[attr-defined]


def run_wsgi(app_factory: Callable[[], WsgiApp], conf: Config, default_port: int,
             logger: logging.Logger) -> int:
    """Serve until SIGTERM/SIGINT; `workers` > 1 forks that many processes on one socket."""
    raise_header_limits()
    sock = bind(conf, default_port)
    workers = conf.get_int("workers", 1, 1)
    host, port = sock.getsockname()[:2]
    logger.info("listening on %s:%s with %d worker(s)", host, port, workers)
    if workers == 1:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            _serve_forever(sock, app_factory(), conf, logger)
        return 0
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            # The parent's hub (made by eventlet.listen) owns an epoll instance that a fork
            # shares: each worker needs a hub of its own or they see each other's events.
            eventlet.hubs.use_hub()
            signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                _serve_forever(sock, app_factory(), conf, logger)
            finally:
                os._exit(0)
        children.append(pid)
    sock.close()

    def stop(*_: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, lambda *_: stop())
    signal.signal(signal.SIGINT, lambda *_: stop())
    status = 0
    for child in children:
        while True:
            try:
                _, code = os.waitpid(child, 0)
                status = status or (code >> 8)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break
    return status
