"""The ring file: what servers load. Devices plus the replica-to-partition-to-device table.

Compact (uint16 device ids unless a ring has more than 65,535 of them, zlib), checksummed, and
quick to load: a part power 20, 3-replica ring is about 6 MiB of arrays and loads in tens of
milliseconds. Builders write it; `ring.Ring` reads it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ring.device import Device
from ring.errors import RingFileError
from ring.serialization import decode, encode, pack_array, read_file, unpack_array, write_atomically

RING_MAGIC = b"RSRING\x00\x00"
RING_FORMAT_VERSION = 1


@dataclasses.dataclass
class RingData:
    """A ring as stored: rows of device ids per partition (the last row may be shorter)."""

    devices: list[Device | None]           # indexed by device id; None for an unused id
    replica2part2dev: list[np.ndarray]     # one uint16/uint32 array per replica row
    part_power: int
    version: int = 0
    builder_id: str = ""

    @property
    def replica_count(self) -> float:
        parts = 1 << self.part_power
        return sum(len(row) for row in self.replica2part2dev) / parts

    def to_bytes(self) -> bytes:
        max_id = max((d.id for d in self.devices if d), default=0)
        dtype = np.uint16 if max_id < 0xFFFF else np.uint32
        body: dict[str, Any] = {
            "format_version": RING_FORMAT_VERSION,
            "part_power": self.part_power,
            "version": self.version,
            "builder_id": self.builder_id,
            "devices": [d.to_dict() if d else None for d in self.devices],
            "rows": [pack_array(row.astype(dtype)) for row in self.replica2part2dev],
        }
        return encode(RING_MAGIC, body)

    @classmethod
    def from_bytes(cls, blob: bytes, path: str = "<ring>") -> RingData:
        body = decode(RING_MAGIC, blob, path)
        if body.get("format_version") != RING_FORMAT_VERSION:
            raise RingFileError(f"{path}: unsupported ring format version "
                                f"{body.get('format_version')!r}")
        try:
            part_power = int(body["part_power"])
            devices = [Device.from_dict(d) if d else None for d in body["devices"]]
            rows = [unpack_array(r, path) for r in body["rows"]]
            version, builder_id = int(body["version"]), str(body["builder_id"])
        except RingFileError:
            raise
        except (KeyError, TypeError, ValueError) as err:
            raise RingFileError(f"{path}: malformed ring ({err})") from None
        data = cls(devices, rows, part_power, version, builder_id)
        data.check(path)
        return data

    def check(self, path: str) -> None:
        """Refuse a ring whose table points at devices it does not list."""
        parts = 1 << self.part_power
        known = np.zeros(len(self.devices), dtype=bool)
        known[[d.id for d in self.devices if d]] = True
        for index, row in enumerate(self.replica2part2dev):
            if len(row) > parts or (index < len(self.replica2part2dev) - 1 and len(row) != parts):
                raise RingFileError(f"{path}: replica row {index} has {len(row)} partitions")
            if len(row) and (row.max() >= len(known) or not known[row].all()):
                raise RingFileError(f"{path}: replica row {index} names unknown devices")

    def save(self, path: str) -> None:
        write_atomically(path, self.to_bytes())

    @classmethod
    def load(cls, path: str) -> RingData:
        return cls.from_bytes(read_file(path), path)
