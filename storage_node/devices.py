"""A storage node's devices: which are usable, and the threads that do their disk I/O.

- `check_device` says whether `<devices>/<device>` may be used: with `mount_check` it must be a
  mount point (an unmounted disk leaves an empty directory on the root filesystem, and writing
  there would fill the root disk with data the ring thinks is elsewhere).
- `DiskIOPool.run(device, fn, ...)` runs blocking disk work in eventlet's thread pool, at most
  `threads_per_device` calls per device at once, so one slow or failing disk neither blocks the
  hub nor takes every thread from the healthy disks.
- `DeviceUnavailable` (and `DeviceFull`, `DeviceFailed`) are what a server answers 507 to. An
  `OSError` escaping a pool call is translated here, in one place: ENOSPC/EDQUOT mean full,
  EIO/EROFS/... mean a failing or read-only disk. Either way the server stays up and the proxy
  routes around the device.
"""

from __future__ import annotations

import dataclasses
import errno
import os
from collections.abc import Callable
from typing import Any, TypeVar

from eventlet import tpool
from eventlet.semaphore import Semaphore

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

    def check(self, path: str, device: str, incoming_bytes: int) -> None:
        """Raise DeviceFull if writing `incoming_bytes` would eat into the reserve."""
        if not self.bytes_min and not self.percent_min:
            return
        stats = os.statvfs(path)
        free_bytes = stats.f_bavail * stats.f_frsize - incoming_bytes
        total_bytes = stats.f_blocks * stats.f_frsize
        if free_bytes < self.bytes_min or (
                total_bytes and 100.0 * free_bytes / total_bytes < self.percent_min):
            raise DeviceFull(device, "free space below fallocate_reserve")


class DiskIOPool:
    """Runs blocking disk calls off the hub, at most `threads_per_device` per device at once.

    `threads_per_device = 0` runs calls inline on the hub (only for tools and tests that do not
    serve requests). The threads themselves are eventlet's tpool (size set once per process
    with `set_pool_size`); the per-device semaphore is what keeps a slow disk from taking all
    of them.
    """

    def __init__(self, threads_per_device: int):
        if threads_per_device < 0:
            raise ValueError("threads_per_device must be >= 0")
        self.threads_per_device = threads_per_device
        self._semaphores: dict[str, Semaphore] = {}

    @staticmethod
    def set_pool_size(threads: int) -> None:
        """Size eventlet's shared thread pool; call before the first request is served."""
        tpool.set_num_threads(threads)

    def run(self, device: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            if not self.threads_per_device:
                return fn(*args, **kwargs)
            semaphore = self._semaphores.get(device)
            if semaphore is None:
                semaphore = self._semaphores.setdefault(device,
                                                        Semaphore(self.threads_per_device))
            with semaphore:
                return tpool.execute(fn, *args, **kwargs)
        except OSError as err:
            translated = translate_os_error(err, device)
            if translated is None:
                raise
            raise translated from err
