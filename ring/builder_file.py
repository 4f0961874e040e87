"""Saving and loading builders: a versioned, checksummed msgpack file, never a pickle.

Every save first copies the file it replaces into `backups/<unix time>.<name>` beside it, so each
earlier version of a builder can be restored by copying it back.
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

import numpy as np

from ring.builder import RingBuilder
from ring.device import Device
from ring.errors import RingFileError
from ring.serialization import decode, encode, pack_array, read_file, unpack_array, write_atomically

BUILDER_MAGIC = b"RSBUILD\x00"
BUILDER_FORMAT_VERSION = 1
BACKUP_DIR = "backups"


def builder_to_bytes(builder: RingBuilder) -> bytes:
    body: dict[str, Any] = {
        "format_version": BUILDER_FORMAT_VERSION,
        "id": builder.id,
        "version": builder.version,
        "part_power": builder.part_power,
        "replicas": builder.replicas,
        "min_part_hours": builder.min_part_hours,
        "overload": builder.overload,
        "devices": [d.to_dict() for d in sorted(builder.devices.values(), key=lambda d: d.id)],
        "removed": sorted(builder.removed),
        "devices_changed": builder.devices_changed,
        "last_seed": builder.last_seed,
        "last_move_time": builder.last_move_time,
        "moved_at_hour": pack_array(builder.moved_at_hour),
        "assignment": (None if builder.assignment is None
                       else pack_array(builder.assignment.astype(np.int32))),
    }
    return encode(BUILDER_MAGIC, body)


def builder_from_bytes(blob: bytes, path: str = "<builder>") -> RingBuilder:
    body = decode(BUILDER_MAGIC, blob, path)
    if body.get("format_version") != BUILDER_FORMAT_VERSION:
        raise RingFileError(f"{path}: unsupported builder format version "
                            f"{body.get('format_version')!r}")
    try:
        builder = RingBuilder(int(body["part_power"]), float(body["replicas"]),
                              int(body["min_part_hours"]), body["overload"])
        builder.id = str(body["id"])
        builder.version = int(body["version"])
        for fields in body["devices"]:
            device = Device.from_dict(fields)
            builder.devices[device.id] = device
        builder.removed = {int(d) for d in body["removed"]}
        builder.devices_changed = bool(body["devices_changed"])
        builder.last_seed = body["last_seed"]
        builder.last_move_time = body.get("last_move_time")
        builder.moved_at_hour = unpack_array(body["moved_at_hour"], path).astype(np.uint32)
        if body["assignment"] is not None:
            builder.assignment = unpack_array(body["assignment"], path).astype(np.int32)
    except RingFileError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise RingFileError(f"{path}: malformed builder ({err})") from None
    if builder.moved_at_hour.shape != (builder.parts,) or (
            builder.assignment is not None and builder.assignment.shape[1] != builder.parts):
        raise RingFileError(f"{path}: array sizes do not match part power {builder.part_power}")
    return builder


def load_builder(path: str) -> RingBuilder:
    return builder_from_bytes(read_file(path), path)


def backup_existing(path: str, now: float | None = None) -> str | None:
    """Copy the current file at `path` into backups/; return the copy's path."""
    if not os.path.exists(path):
        return None
    directory = os.path.join(os.path.dirname(os.path.abspath(path)), BACKUP_DIR)
    os.makedirs(directory, exist_ok=True)
    stamp = f"{time.time() if now is None else now:.6f}"
    target = os.path.join(directory, f"{stamp}.{os.path.basename(path)}")
    shutil.copy2(path, target)
    return target


def save_builder(builder: RingBuilder, path: str) -> None:
    backup_existing(path)
    write_atomically(path, builder_to_bytes(builder))
