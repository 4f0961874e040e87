"""A storage node's devices: which are usable, and the threads that do their blocking I/O.

- `check_device` says whether `<devices>/<device>` may be used: with `mount_check` it must be a
  mount point (an unmounted disk leaves an empty directory on the root filesystem, and writing
  there would fill the root disk with data the ring thinks is elsewhere).
- `DiskIOPool.run(device, fn, ...)` runs blocking disk or sqlite work on real threads of that
  device's own `BlockingPool` (at most `threads_per_device` at once), so one slow or failing
  disk neither blocks the hub nor takes every thread from the healthy disks. The object server
  and the container and account servers all use it.
- `DeviceUnavailable` (and `DeviceFull`, `DeviceFailed`) are what a server answers 507 to. An
  `OSError` escaping a pool call is translated here, in one place: ENOSPC/EDQUOT mean full,
  EIO/EROFS/... mean a failing or read-only disk. Either way the server stays up and the proxy
  routes around the device.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import eventlet.hubs

T = TypeVar("T")

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# A disk that errors like this is failing, read-only or gone; retrying elsewhere is the cure.
FAILED_ERRNOS = frozenset(code for code in (
    errno.EIO, errno.EROFS, errno.ENODEV, errno.ENXIO, errno.ESTALE, errno.EACCES, errno.EPERM,
    getattr(errno, "EUCLEAN", None), getattr(errno, "EBADMSG", None)) if code is not None)


class DeviceUnavailable(Exception):
    """A device that cannot serve this request (not mounted, full or failing): HTTP 507."""

    def __init__(self, device: str, reason: str):
        super().__init__(f"{device}: {reason}")
        self.device = device
        self.reason = reason


class DeviceFull(DeviceUnavailable):
    """No space (or quota) left on the device."""


class DeviceFailed(DeviceUnavailable):
    """The device returned an I/O error or is read-only."""


def translate_os_error(err: OSError, device: str) -> DeviceUnavailable | None:
    """The device error an OSError means, or None when it is not the device's fault."""
    if err.errno in FULL_ERRNOS:
        return DeviceFull(device, os.strerror(err.errno))
    if err.errno in FAILED_ERRNOS:
        return DeviceFailed(device, os.strerror(err.errno))
    return None


def valid_device_name(device: str) -> bool:
    """A device name is one path component: never empty, '.', '..' or containing '/'."""
    return bool(device) and "/" not in device and device not in (".", "..") \
        and "\x00" not in device


def check_device(devices_root: str, device: str, mount_check: bool) -> str:
    """The path of a usable device, or DeviceUnavailable (the caller answers 507)."""
    path = os.path.join(devices_root, device)
    if mount_check:
        if not os.path.ismount(path):
            raise DeviceUnavailable(device, "not mounted")
    elif not os.path.isdir(path):
        raise DeviceUnavailable(device, "no such device directory")
    return path


@dataclasses.dataclass(frozen=True)
class FreeSpaceReserve:
    """Space a write must leave free (Swift's `fallocate_reserve`): bytes, or percent of disk."""

    bytes_min: int = 0
    percent_min: float = 0.0

    @classmethod
    def parse(cls, text: str) -> FreeSpaceReserve:
        text = text.strip()
        if not text:
            return cls()
        if text.endswith("%"):
            percent = float(text[:-1])
            if not 0 <= percent <= 100:
                raise ValueError(f"percent out of range: {text!r}")
            return cls(percent_min=percent)
        value = int(text)
        if value < 0:
            raise ValueError(f"negative reserve: {text!r}")
        return cls(bytes_min=value)

    def check(self, path: str, device: str, incoming_bytes: int,
              require_room: bool = False) -> None:
        """Raise DeviceFull if writing `incoming_bytes` would eat into the reserve, or, with
        `require_room`, if the file system cannot hold them at all (a full disk found before
        a body is read: afterwards the proxy can no longer send the body elsewhere)."""
        if not self.bytes_min and not self.percent_min and not require_room:
            return
        stats = os.statvfs(path)
        free_bytes = stats.f_bavail * stats.f_frsize - incoming_bytes
        if require_room and free_bytes < ROOM_MARGIN_BYTES:
            raise DeviceFull(device, "no room for the body")
        total_bytes = stats.f_blocks * stats.f_frsize
        if free_bytes < self.bytes_min or (
                total_bytes and 100.0 * free_bytes / total_bytes < self.percent_min):
            raise DeviceFull(device, "free space below fallocate_reserve")


# Besides the body: the metadata footer and block rounding of a new file.
ROOM_MARGIN_BYTES = 16384


class BlockingPool:
    """A bounded set of real threads for blocking calls, awaited without blocking the hub.

    The calling green thread waits on a pipe the worker writes to when done; the wait is on
    the caller's own hub, so several hubs in several OS threads (tests run servers that way)
    can share nothing and still work, which eventlet.tpool's single trampoline does not allow.
    """

    def __init__(self, max_threads: int, name: str = "blocking"):
        self._executor = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix=name)

    def run(self, func: Callable[..., T], *args: Any) -> T:
        read_fd, write_fd = os.pipe()
        outcome: list[tuple[bool, Any]] = []

        def call() -> None:
            try:
                outcome.append((True, func(*args)))
            except BaseException as err:        # handed to the waiting green thread
                outcome.append((False, err))
            finally:
                # The waiter may be gone (killed by a timeout): then the pipe is broken.
                with contextlib.suppress(OSError):
                    os.write(write_fd, b"\0")
                os.close(write_fd)

        try:
            self._executor.submit(call)
        except BaseException:
            os.close(write_fd)
            os.close(read_fd)
            raise
        try:
            # Readiness is only a hint (a hub shared across a fork, a recycled fd): the call
            # is done when its outcome is there, which the worker sets before it writes.
            while not outcome:
                eventlet.hubs.trampoline(read_fd, read=True)
        finally:
            os.close(read_fd)
        succeeded, value = outcome[0]
        if not succeeded:
            raise value
        return value

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)


class DiskIOPool:
    """Runs blocking disk (and sqlite) calls off the hub: one BlockingPool per device.

    A device gets its own `threads_per_device` threads, so one slow or failing disk only
    stalls the requests for that disk, never the hub or the healthy disks. An `OSError` a
    call raises is translated to the device error it means (`translate_os_error`).
    `threads_per_device = 0` runs calls inline on the hub (only for tools and tests that do
    not serve requests).
    """

    def __init__(self, threads_per_device: int, name: str = "disk-io"):
        if threads_per_device < 0:
            raise ValueError("threads_per_device must be >= 0")
        self.threads_per_device = threads_per_device
        self.name = name
        self._pools: dict[str, BlockingPool] = {}
        # Servers in tests share nothing but may call from several OS threads at once.
        self._lock = threading.Lock()

    def run(self, device: str, func: Callable[..., T], *args: Any) -> T:
        try:
            if not self.threads_per_device:
                return func(*args)
            pool = self._pools.get(device)
            if pool is None:
                with self._lock:
                    pool = self._pools.setdefault(
                        device, BlockingPool(self.threads_per_device, f"{self.name}-{device}"))
            return pool.run(func, *args)
        except OSError as err:
            translated = translate_os_error(err, device)
            if translated is None:
                raise
            raise translated from err

    def shutdown(self) -> None:
        """Let every device's threads end once idle (the pool must not be used after)."""
        for pool in self._pools.values():
            pool.shutdown()
