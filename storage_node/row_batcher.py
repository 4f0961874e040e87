"""Group commit of object rows: concurrent rows for one container share one transaction.

The container server hands every object row (PUT or DELETE from an object server) to
`RowBatcher.submit`; rows that arrive while a commit of the same container runs are merged
by the next commit together, so a busy container pays one WAL fsync per batch, not per row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import eventlet
import eventlet.event

from common.timestamp import Timestamp
from storage_node.container_db import ObjectRecord


@dataclasses.dataclass
class RowUpdate:
    """One object row from an object server, and whether it may create its container."""

    record: ObjectRecord
    auto_create: bool
    timestamp: Timestamp


class _Waiter:
    def __init__(self, update: RowUpdate):
        self.update = update
        self.event: eventlet.event.Event = eventlet.event.Event()
        self.error: BaseException | None = None


class RowBatcher:
    """Group commit: concurrent row updates for one container share one transaction.

    A request queues its row. If no flush of that container is running it runs one, for
    everything queued, on the device's sqlite threads; the others wait and are woken with the
    outcome, and the first still waiting when a flush ends runs the next. Every request still
    answers only once its own row is committed, but a busy container pays one commit (one WAL
    fsync) per batch rather than per row, and its requests never contend for sqlite's write
    lock among themselves (sqlite's busy wait sleeps for milliseconds at a time).
    All of this runs on the hub of one process: no locks are needed.
    """

    def __init__(self, run_db: Callable[..., Any], batch_rows_max: int = 1000):
        self.run_db = run_db
        self.batch_rows_max = batch_rows_max
        self._queues: dict[str, list[_Waiter]] = {}
        self._flushing: set[str] = set()

    def submit(self, device: str, key: str, merge: Callable[[list[RowUpdate]], None],
               update: RowUpdate) -> None:
        """Return once `update` is committed (or raise what committing its batch raised)."""
        waiter = _Waiter(update)
        queue = self._queues.setdefault(key, [])
        queue.append(waiter)
        # Someone else flushes unless nobody is at it and nobody was queued before us; a
        # waiter is woken either with its batch done or to run the next flush itself.
        must_wait = key in self._flushing or len(queue) > 1
        if not must_wait or waiter.event.wait() == "flush":
            self._flush(device, key, merge)
        if waiter.error is not None:
            raise waiter.error

    def _flush(self, device: str, key: str, merge: Callable[[list[RowUpdate]], None]) -> None:
        self._flushing.add(key)
        queue = self._queues.pop(key)
        batch, rest = queue[:self.batch_rows_max], queue[self.batch_rows_max:]
        if rest:
            self._queues[key] = rest
        error: BaseException | None = None
        try:
            self.run_db(device, merge, [waiter.update for waiter in batch])
        except BaseException as err:          # every waiter of the batch gets it
            error = err
        finally:
            self._flushing.discard(key)
            for waiter in batch:
                waiter.error = error
                if not waiter.event.ready():      # not the flusher that was handed the turn
                    waiter.event.send("done")
            waiting = self._queues.get(key)
            if waiting:
                waiting[0].event.send("flush")
        if error is not None and not isinstance(error, Exception):
            raise error                       # a kill or exit of this green thread


