"""A stall watchdog: one timer per request instead of one `eventlet.Timeout` per chunk.

Swift learned that creating and cancelling a hub timer around every chunk costs about a quarter
of the proxy's throughput. Here a stream `arm()`s the watchdog before each blocking read or
write to a storage node and `disarm()`s it after (two attribute writes). A single hub timer per
watchdog wakes up when the current deadline could have passed; if the stream is still armed and
past its deadline, the timer throws the watchdog's exception into the stalled greenthread. While
disarmed (e.g. a slow client is being written to) the timer lapses and the next `arm()` starts
one again, so a stream costs about one timer per `timeout_s` of wall time, not one per chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic
from typing import Any

import greenlet
from eventlet import hubs


class StreamStalled(Exception):
    """A storage node sent or accepted nothing for longer than the stream's timeout."""

    def __init__(self, timeout_s: float, what: str = ""):
        super().__init__(f"no progress for {timeout_s}s{': ' + what if what else ''}")
        self.timeout_s = timeout_s


class StallWatchdog:
    def __init__(self, timeout_s: float, what: str = "",
                 make_error: Callable[[float, str], BaseException] = StreamStalled):
        self.timeout_s = timeout_s
        self.what = what
        self._make_error = make_error
        self._deadline = 0.0
        self._armed = False
        self._target: Any = None        # the greenlet to interrupt
        self._timer: Any = None
        self.fired = False

    def arm(self) -> None:
        """About to block on a storage node: it has `timeout_s` to make progress."""
        self._deadline = monotonic() + self.timeout_s
        self._target = greenlet.getcurrent()
        self._armed = True
        if self._timer is None:
            self._timer = hubs.get_hub().schedule_call_global(self.timeout_s, self._check)

    def disarm(self) -> None:
        self._armed = False

    def cancel(self) -> None:
        """The stream is over: no more checks."""
        self._armed = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._target = None

    def _check(self) -> None:
        self._timer = None
        if not self._armed or self._target is None:
            return
        left = self._deadline - monotonic()
        if left > 0:
            self._timer = hubs.get_hub().schedule_call_global(left, self._check)
            return
        self._armed = False
        self.fired = True
        target, self._target = self._target, None
        if not target.dead:
            target.throw(self._make_error(self.timeout_s, self.what))
