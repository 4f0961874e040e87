"""Delivering updates to other servers: now, from a server, or later, from the updater daemon.

An update (`storage_node.async_pending.PendingUpdate`) is one HTTP request (method, path,
headers) to send to each of its targets (container servers for an object; account servers for
a container).

- Now: after a PUT/POST/DELETE, a server calls `send_to_targets`, which sends to every target
  in parallel and waits at most `wait_s`; it returns the targets that did not answer 2xx in
  time, and the server saves those with `async_pending.save` before it answers its client.
  (A send still running when the wait ends may succeed later; the saved copy is then replayed
  once more, which the receivers ignore because they order rows by X-Timestamp.)
- Later: `run_daemon` (section `[object-updater]`) sweeps every device's `async_pending`
  directory every `interval` seconds, at most `objects_per_second` updates per second with
  `concurrency` in flight. A target is done when it answers 2xx, or 404/409 (it has newer
  data or no longer holds the database, so retrying cannot help); the others stay in the file
  for the next sweep. Of several pending updates for one name only the newest is sent: it
  carries everything the older ones did.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Iterator

import eventlet

from common.config import Config
from storage_node import async_pending, http_client
from storage_node.async_pending import PendingUpdate, Target
from storage_node.devices import DeviceUnavailable, check_device

SECTION = "object-updater"
QUARANTINE_DIR = os.path.join("quarantined", "async_pending")
DONE_STATUSES = frozenset({404, 409})


def is_success(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


def is_delivered(status: int | None) -> bool:
    """The daemon's rule: 2xx, or an answer saying retrying cannot help (404, 409)."""
    return is_success(status) or status in DONE_STATUSES


def send_update(update: PendingUpdate, target: Target, *, conn_timeout_s: float,
                node_timeout_s: float, logger: logging.Logger | None = None) -> int | None:
    """Send `update` to one target; its HTTP status, or None when there was no answer."""
    path = http_client.device_path(target.device, target.partition, update.path)
    try:
        result = http_client.request(target.ip, target.port, update.method, path,
                                     update.headers, connect_timeout_s=conn_timeout_s,
                                     response_timeout_s=node_timeout_s)
    except http_client.HttpError as err:
        if logger:
            logger.warning("update %s %s to %s:%s failed: %s", update.method, update.path,
                           target.ip, target.port, err)
        return None
    if logger and not is_success(result.status):
        logger.warning("update %s %s to %s:%s/%s answered %d", update.method, update.path,
                       target.ip, target.port, target.device, result.status)
    return result.status


def send_to_targets(update: PendingUpdate, *, wait_s: float, conn_timeout_s: float,
                    node_timeout_s: float, logger: logging.Logger | None = None
                    ) -> list[Target]:
    """Send to every target in parallel; the targets without a 2xx answer within `wait_s`."""
    threads = [eventlet.spawn(send_update, update, target, conn_timeout_s=conn_timeout_s,
                              node_timeout_s=node_timeout_s, logger=logger)
               for target in update.targets]
    statuses: list[int | None] = [None] * len(threads)
    with eventlet.Timeout(wait_s, False):
        for index, thread in enumerate(threads):
            statuses[index] = thread.wait()
    return [t for t, status in zip(update.targets, statuses, strict=True)
            if not is_success(status)]


# ---- the daemon -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class UpdaterSettings:
    devices: str = "/srv/node"
    mount_check: bool = True
    interval_s: float = 300.0
    concurrency: int = 8
    objects_per_second: float = 50.0
    conn_timeout_s: float = 0.5
    node_timeout_s: float = 10.0

    @classmethod
    def from_config(cls, conf: Config) -> UpdaterSettings:
        # `interval` is Swift's name; `updater_interval` is accepted as another spelling.
        interval_s = conf.get_float("updater_interval", cls.interval_s, minimum=0.0)
        return cls(
            devices=conf.get_str("devices", cls.devices),
            mount_check=conf.get_bool("mount_check", cls.mount_check),
            interval_s=conf.get_float("interval", interval_s, minimum=0.0),
            concurrency=conf.get_int("concurrency", cls.concurrency, minimum=1),
            objects_per_second=conf.get_float("objects_per_second", cls.objects_per_second,
                                              minimum=0.0),
            conn_timeout_s=conf.get_float("conn_timeout", cls.conn_timeout_s, minimum=0.01),
            node_timeout_s=conf.get_float("node_timeout", cls.node_timeout_s, minimum=0.01))


@dataclasses.dataclass
class SweepStats:
    found: int = 0            # pending files looked at
    delivered: int = 0        # files whose every target is done (removed)
    kept: int = 0             # files with targets still to do
    superseded: int = 0       # older files for a name with a newer pending update (removed)
    corrupt: int = 0          # unreadable files (moved to quarantined/async_pending)


class ObjectUpdater:
    """One sweep over every device's async pendings (see the module docstring)."""

    def __init__(self, settings: UpdaterSettings, logger: logging.Logger):
        self.settings = settings
        self.logger = logger

    def device_paths(self) -> Iterator[str]:
        try:
            devices = sorted(os.listdir(self.settings.devices))
        except OSError as err:
            self.logger.error("cannot list devices in %s: %s", self.settings.devices, err)
            return
        for device in devices:
            try:
                yield check_device(self.settings.devices, device, self.settings.mount_check)
            except DeviceUnavailable as err:
                self.logger.warning("skipping device %s", err)

    def newest_pendings(self, device_path: str, stats: SweepStats) -> Iterator[str]:
        """Each name's newest pending update; older ones for the same name are removed.

        Files are `<hash>-<timestamp>` and listed sorted, so one name's files are adjacent
        and its newest (fixed-width timestamps sort as text) comes last.
        """
        previous: str | None = None
        for path in async_pending.iter_pending(device_path):
            stats.found += 1
            if previous is not None:
                if _name_hash(previous) == _name_hash(path):
                    async_pending.remove(previous)
                    stats.superseded += 1
                else:
                    yield previous
            previous = path
        if previous is not None:
            yield previous

    def sweep(self) -> SweepStats:
        stats = SweepStats()
        pool = eventlet.GreenPool(self.settings.concurrency)
        started = time.monotonic()
        sent = 0
        for device_path in self.device_paths():
            for path in self.newest_pendings(device_path, stats):
                if self.settings.objects_per_second > 0:
                    due = started + sent / self.settings.objects_per_second
                    delay = due - time.monotonic()
                    if delay > 0:
                        eventlet.sleep(delay)
                sent += 1
                pool.spawn_n(self.process, device_path, path, stats)
        pool.waitall()
        return stats

    def process(self, device_path: str, path: str, stats: SweepStats) -> None:
        """Replay one pending file to its targets and keep only the targets not yet done."""
        try:
            update = async_pending.load(path)
        except FileNotFoundError:
            return
        except Exception as err:      # noqa: BLE001 - any undecodable file is set aside
            self._quarantine(device_path, path, err)
            stats.corrupt += 1
            return
        statuses = [send_update(update, target, conn_timeout_s=self.settings.conn_timeout_s,
                                node_timeout_s=self.settings.node_timeout_s,
                                logger=self.logger)
                    for target in update.targets]
        remaining = [t for t, status in zip(update.targets, statuses, strict=True)
                     if not is_delivered(status)]
        if not remaining:
            async_pending.remove(path)
            stats.delivered += 1
            return
        stats.kept += 1
        if len(remaining) < len(update.targets):
            async_pending.rewrite(path, PendingUpdate(update.method, update.path,
                                                      update.headers, remaining))

    def _quarantine(self, device_path: str, path: str, err: Exception) -> None:
        directory = os.path.join(device_path, QUARANTINE_DIR)
        self.logger.error("unreadable async pending %s (%s): moving it to %s", path, err,
                          directory)
        with contextlib.suppress(OSError):
            os.makedirs(directory, exist_ok=True)
            os.rename(path, os.path.join(directory, os.path.basename(path)))


def _name_hash(path: str) -> str:
    return os.path.basename(path).split("-", 1)[0]


def run_daemon(conf: Config, logger: logging.Logger, once: bool = False) -> int:
    """Sweep every `interval` seconds (or once); returns the process exit status."""
    settings = UpdaterSettings.from_config(conf)
    updater = ObjectUpdater(settings, logger)
    while True:
        began = time.monotonic()
        stats = updater.sweep()
        logger.info("object updater sweep: %d found, %d delivered, %d kept, %d superseded, "
                    "%d corrupt in %.1fs", stats.found, stats.delivered, stats.kept,
                    stats.superseded, stats.corrupt, time.monotonic() - began)
        if once:
            return 0
        eventlet.sleep(max(0.0, settings.interval_s - (time.monotonic() - began)))
