"""proxy-logging middleware: one access-log line per client request.

The line holds, space-separated and URL-quoted where needed: client address, remote user,
method, path (with query), protocol, status, bytes received, bytes sent, user agent, transaction
id, seconds to the first byte and total seconds. It is written to the `ringstack.proxy.access`
logger at `access_log_level` (default INFO); subrequests of middlewares (those carrying
`swift.source`) are logged too, marked with their source, as Swift does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import quote

from common.config import Config

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ACCESS_LOGGER = logging.getLogger("ringstack.proxy.access")


class _CountingInput:
    """wsgi.input that counts the bytes the app reads."""

    def __init__(self, wrapped: Any):
        self.wrapped = wrapped
        self.bytes_read = 0

    def read(self, *args: Any) -> bytes:
        data = self.wrapped.read(*args)
        self.bytes_read += len(data)
        return data

    def readline(self, *args: Any) -> bytes:
        data = self.wrapped.readline(*args)
        self.bytes_read += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


class ProxyLogging:
    def __init__(self, app: WsgiApp, conf: Config):
        self.app = app
        level_name = conf.get_str("access_log_level", "INFO").upper()
        self.level = getattr(logging, level_name, logging.INFO)

    def __call__(self, env: dict[str, Any], start_response: Callable[..., Any]) -> \
            Iterable[bytes]:
        started_at = time.monotonic()
        status_holder: list[str] = []
        counting_input = _CountingInput(env.get("wsgi.input"))
        if env.get("wsgi.input") is not None:
            env["wsgi.input"] = counting_input

        def recording_start_response(status: str, headers: list[tuple[str, str]],
                                     exc_info: Any = None) -> Any:
            status_holder.append(status)
            return start_response(status, headers, exc_info) if exc_info else \
                start_response(status, headers)

        body = self.app(env, recording_start_response)
        return self._iterate(env, body, status_holder, counting_input, started_at)

    def _iterate(self, env: dict[str, Any], body: Iterable[bytes], status_holder: list[str],
                 counting_input: _CountingInput, started_at: float) -> Iterator[bytes]:
        sent = 0
        first_byte_at = None
        try:
            for chunk in body:
                if first_byte_at is None:
                    first_byte_at = time.monotonic()
                sent += len(chunk)
                yield chunk
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
            ended_at = time.monotonic()
            status = status_holder[-1].split(" ", 1)[0] if status_holder else "499"
            self.log(env, status, counting_input.bytes_read, sent,
                     (first_byte_at or ended_at) - started_at, ended_at - started_at)

    def log(self, env: dict[str, Any], status: str, received: int, sent: int,
            first_byte_s: float, total_s: float) -> None:
        if not ACCESS_LOGGER.isEnabledFor(self.level):
            return
        path = quote(env.get("PATH_INFO", ""), safe="/:@")
        if env.get("QUERY_STRING"):
            path += "?" + env["QUERY_STRING"]
        fields = [env.get("HTTP_X_FORWARDED_FOR") or env.get("REMOTE_ADDR") or "-",
                  env.get("REMOTE_USER") or "-", env.get("REQUEST_METHOD", "-"), path,
                  env.get("SERVER_PROTOCOL", "-"), status, str(received), str(sent),
                  quote(env.get("HTTP_USER_AGENT") or "-"), env.get("swift.trans_id", "-"),
                  f"{first_byte_s:.4f}", f"{total_s:.4f}", env.get("swift.source", "-")]
        ACCESS_LOGGER.log(self.level, " ".join(fields))


def filter_factory(conf: Config) -> Callable[[WsgiApp], WsgiApp]:
    return lambda app: ProxyLogging(app, conf)
