"""Error limiting: storage nodes that keep failing are skipped for a while.

A node (ip, port, device) that errors `suppression_limit` times within
`suppression_interval_s` seconds is skipped for the next `suppression_interval_s` seconds.
A 507 (unmounted or full device) limits a node at once. State is per proxy process, as in Swift;
every bound is explicit: at most `suppression_limit` error times are kept per node.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable

from ring import Node

NodeKey = tuple[str, int, str]


def node_key(node: Node) -> NodeKey:
    return (node.ip, node.port, node.device)


def node_name(node: Node) -> str:
    host = f"[{node.ip}]" if ":" in node.ip else node.ip
    return f"{host}:{node.port}/{node.device}"


class ErrorLimiter:
    def __init__(self, suppression_interval_s: float, suppression_limit: int,
                 logger: logging.Logger | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if suppression_limit < 1:
            raise ValueError("suppression_limit must be at least 1")
        self.suppression_interval_s = suppression_interval_s
        self.suppression_limit = suppression_limit
        self.logger = logger or logging.getLogger("ringstack.proxy")
        self._clock = clock
        self._recent_errors: dict[NodeKey, collections.deque[float]] = {}
        self._limited_until: dict[NodeKey, float] = {}

    def is_limited(self, node: Node) -> bool:
        key = node_key(node)
        until = self._limited_until.get(key)
        if until is None:
            return False
        if self._clock() >= until:
            del self._limited_until[key]
            return False
        return True

    def record_error(self, node: Node, why: str) -> None:
        """One failure of `node`: a timeout, a refused connection, a 5xx answer."""
        now = self._clock()
        key = node_key(node)
        window = self._recent_errors.get(key)
        if window is None:
            window = self._recent_errors[key] = collections.deque(maxlen=self.suppression_limit)
        window.append(now)
        while window and window[0] < now - self.suppression_interval_s:
            window.popleft()
        self.logger.warning("%s %s", why, node_name(node))
        if len(window) >= self.suppression_limit:
            window.clear()
            self._suppress(key, node, now, f"{self.suppression_limit} errors")

    def record_success(self, node: Node) -> None:
        """`node` answered: a limited node is back (tried as a last resort), use it again.
        Its recent errors still count, so a flapping node is limited again soon."""
        if self._limited_until and self._limited_until.pop(node_key(node), None) is not None:
            self.logger.info("no longer error limiting %s: it answered", node_name(node))

    def limit(self, node: Node, why: str) -> None:
        """Skip `node` at once (e.g. it answered 507 Insufficient Storage)."""
        self.logger.error("%s %s", why, node_name(node))
        self._suppress(node_key(node), node, self._clock(), why)

    def _suppress(self, key: NodeKey, node: Node, now: float, why: str) -> None:
        self._limited_until[key] = now + self.suppression_interval_s
        self.logger.error("error limiting %s for %.0fs (%s)", node_name(node),
                          self.suppression_interval_s, why)

    def forget(self) -> None:
        """Drop every record (tests; an operator's reload)."""
        self._recent_errors.clear()
        self._limited_until.clear()
