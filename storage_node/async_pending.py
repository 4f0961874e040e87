"""Updates that could not be delivered now (object -> container, container -> account).

A storage server that cannot reach the server it must tell about a change writes the update
here, durably, before it answers its client; the updater (storage_node.updater) replays it
until the target accepts it. An update is one msgpack file:

    <device path>/async_pending/<last 3 hex of hash>/<hash>-<timestamp>

holding {"method", "path", "headers", "targets": [{"ip", "port", "device", "partition"}]}.
Only targets that have not yet accepted the update stay in the file. A newer update for the
same name and timestamp replaces an older file; the receivers order updates by X-Timestamp, so
replaying an old one after a new one does no harm.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import msgpack

from storage_node.durable import write_durably

PENDING_DIR = "async_pending"


@dataclasses.dataclass
class Target:
    ip: str
    port: int
    device: str
    partition: int


@dataclasses.dataclass
class PendingUpdate:
    """One update: an HTTP request to send to each of its targets."""

    method: str
    path: str                          # e.g. /a/c/o (the target adds /<device>/<partition>)
    headers: dict[str, str]
    targets: list[Target]

    def to_bytes(self) -> bytes:
        return msgpack.packb({"method": self.method, "path": self.path,
                              "headers": self.headers,
                              "targets": [dataclasses.asdict(t) for t in self.targets]},
                             use_bin_type=True)

    @classmethod
    def from_bytes(cls, blob: bytes) -> PendingUpdate:
        data: dict[str, Any] = msgpack.unpackb(blob, raw=False)
        return cls(data["method"], data["path"], dict(data["headers"]),
                   [Target(**t) for t in data["targets"]])


def save(device_path: str, name_hash: str, timestamp: str, update: PendingUpdate) -> str:
    """Write an update durably (temp file, fsync, rename, fsync dir); returns its path."""
    directory = os.path.join(device_path, PENDING_DIR, name_hash[-3:])
    os.makedirs(directory, exist_ok=True)
    final = os.path.join(directory, f"{name_hash}-{timestamp}")
    write_durably(final, update.to_bytes())
    return final


def load(path: str) -> PendingUpdate:
    with open(path, "rb") as handle:
        return PendingUpdate.from_bytes(handle.read())


def rewrite(path: str, update: PendingUpdate) -> None:
    """Replace a pending file with fewer targets (atomically); remove it when none are left."""
    if not update.targets:
        remove(path)
        return
    write_durably(path, update.to_bytes())


def remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    # Drop the suffix directory too once it is empty (rmdir refuses otherwise).
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(path))


def iter_pending(device_path: str) -> Iterator[str]:
    """Paths of every pending update on a device, oldest suffix directories first."""
    root = os.path.join(device_path, PENDING_DIR)
    try:
        suffixes = sorted(os.listdir(root))
    except FileNotFoundError:
        return
    for suffix in suffixes:
        directory = os.path.join(root, suffix)
        try:
            names = sorted(os.listdir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in names:
            if not name.startswith(".tmp-"):
                yield os.path.join(directory, name)


def count(device_path: str) -> int:
    return sum(1 for _ in iter_pending(device_path))
