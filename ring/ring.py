"""The runtime ring: what servers load to find where a name lives. Small and fast on purpose.

`Ring` loads a ring file, reloads it when the file changes on disk (checked at most every
`reload_interval_s`), and answers:
- `get_part(account, container, obj)`: the partition of a path;
- `get_nodes(account, container, obj)`: the partition and its primary nodes;
- `get_part_nodes(part)`: a partition's primaries;
- `get_more_nodes(part)`: handoffs, in a deterministic order that visits unused regions first,
  then unused zones, then unused hosts, then every other device; within a pass devices come in
  a weighted-rendezvous order, so each partition's handoff load is spread in proportion to weight.
Servers import only this module (and ring.hashing), never the builder.
"""

from __future__ import annotations

import array
import dataclasses
import os
import struct
from collections.abc import Iterator
from hashlib import md5
from time import monotonic

import numpy as np

from ring.device import Device
from ring.errors import RingFileError
from ring.hashing import HashSecrets
from ring.ring_data import RingData

DEFAULT_RELOAD_INTERVAL_S = 15.0
_MIX_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_unpack_be32 = struct.Struct(">I").unpack_from


@dataclasses.dataclass(frozen=True, slots=True)
class Node:
    """A device as a lookup returns it: where to send a request, and in which role."""

    id: int
    region: int
    zone: int
    ip: str
    port: int
    replication_ip: str
    replication_port: int
    device: str
    weight: float
    meta: str
    index: int            # replica index for primaries; position after them for handoffs
    handoff: bool = False

    @classmethod
    def of(cls, device: Device, index: int, handoff: bool = False) -> Node:
        return cls(device.id, device.region, device.zone, device.ip, device.port,
                   device.replication_ip, device.replication_port, device.device,
                   device.weight, device.meta, index, handoff)


def _splitmix(values: np.ndarray) -> np.ndarray:
    """A fast, well-mixed 64-bit hash of each value (SplitMix64's finaliser)."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) * _MIX_MULTIPLIER
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


class Ring:
    """One ring file (account, container or an object policy), reloaded when it changes."""

    def __init__(self, path: str, secrets: HashSecrets = HashSecrets(),
                 reload_interval_s: float = DEFAULT_RELOAD_INTERVAL_S):
        self.path = path
        self.secrets = secrets
        self._prefix, self._suffix = secrets.prefix, secrets.suffix
        self.reload_interval_s = reload_interval_s
        self._stat_key: tuple[int, int, int] | None = None
        self._load()

    # ---- loading --------------------------------------------------------------------------

    def _file_key(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.path)
        except OSError as err:
            raise RingFileError(f"{self.path}: {err.strerror}") from None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _load(self) -> None:
        key = self._file_key()
        data = RingData.load(self.path)
        self._install(data)
        self._stat_key = key
        self._next_check = monotonic() + self.reload_interval_s

    def _install(self, data: RingData) -> None:
        self.data = data
        self.part_power = data.part_power
        self._part_shift = 32 - data.part_power
        self.devices: list[Device | None] = data.devices
        rows = data.replica2part2dev
        # array('H'/'I') indexes as fast as a list and keeps a large ring small in memory.
        self._rows = [array.array("I" if row.dtype.itemsize > 2 else "H", row.tobytes())
                      for row in rows]
        self._full_rows = [r for r in self._rows if len(r) == self.partition_count]
        self._partial_rows = [r for r in self._rows if len(r) != self.partition_count]
        nodes_by_index = []
        for index in range(len(rows)):
            nodes_by_index.append([Node.of(d, index) if d else None for d in self.devices])
        self._full_nodes = list(zip(nodes_by_index, self._full_rows, strict=False))
        self._partial_nodes = list(zip(nodes_by_index[len(self._full_rows):],
                                       self._partial_rows, strict=True))
        live = [d for d in self.devices if d is not None and d.weight > 0]
        self._handoff_devices = live
        self._handoff_ids = np.array([d.id for d in live], dtype=np.uint64)
        self._handoff_log_weight = np.log(np.array([d.weight for d in live], dtype=np.float64))

    def maybe_reload(self) -> bool:
        """Reload if the file changed on disk; True when a new ring was installed."""
        self._next_check = monotonic() + self.reload_interval_s
        try:
            key = self._file_key()
        except RingFileError:
            return False      # keep serving the ring we have while the file is replaced
        if key == self._stat_key:
            return False
        try:
            self._load()
        except RingFileError:
            return False
        return True

    # ---- facts ----------------------------------------------------------------------------

    @property
    def partition_count(self) -> int:
        return 1 << self.part_power

    @property
    def replica_count(self) -> float:
        return self.data.replica_count

    @property
    def version(self) -> int:
        return self.data.version

    # ---- lookups --------------------------------------------------------------------------

    def get_part(self, account: str, container: str | None = None,
                 obj: str | None = None) -> int:
        if obj is not None:
            if container is None:
                raise ValueError("an object name needs a container name")
            path = f"/{account}/{container}/{obj}"
        elif container is not None:
            path = f"/{account}/{container}"
        else:
            path = "/" + account
        if monotonic() > self._next_check:
            self.maybe_reload()
        return _unpack_be32(md5(self._prefix + path.encode() + self._suffix,
                                usedforsecurity=False).digest())[0] >> self._part_shift

    def get_part_nodes(self, part: int) -> list[Node]:
        nodes = [by_id[row[part]] for by_id, row in self._full_nodes]
        if self._partial_nodes:
            nodes += [by_id[row[part]] for by_id, row in self._partial_nodes if part < len(row)]
        return nodes

    def get_nodes(self, account: str, container: str | None = None,
                  obj: str | None = None) -> tuple[int, list[Node]]:
        part = self.get_part(account, container, obj)
        # get_part_nodes inlined: this is the lookup every request makes, and the extra call
        # costs a few percent of it (bench/ring_bench.py measures lookups per second).
        return part, [by_id[row[part]] for by_id, row in self._full_nodes] + (
            [by_id[row[part]] for by_id, row in self._partial_nodes if part < len(row)]
            if self._partial_nodes else [])

    def handoff_order(self, part: int) -> list[Device]:
        """Every weighted device by weighted rendezvous for this partition: smallest
        -log(u)/weight first, so a device leads with probability proportional to its weight."""
        if not len(self._handoff_ids):
            return []
        with np.errstate(over="ignore"):
            keys = _splitmix(self._handoff_ids ^ (np.uint64(part) * _MIX_MULTIPLIER))
        unit = (keys >> np.uint64(11)).astype(np.float64) / float(1 << 53)
        score = np.log(-np.log(np.maximum(unit, 1e-300))) - self._handoff_log_weight
        return [self._handoff_devices[i] for i in np.argsort(score, kind="stable")]

    def get_more_nodes(self, part: int) -> Iterator[Node]:
        primaries = self.get_part_nodes(part)
        used_devices = {n.id for n in primaries}
        used_regions = {n.region for n in primaries}
        used_zones = {(n.region, n.zone) for n in primaries}
        used_hosts = {(n.region, n.zone, n.ip) for n in primaries}
        order = self.handoff_order(part)
        index = len(primaries)
        tiers = (lambda d: d.region not in used_regions,
                 lambda d: (d.region, d.zone) not in used_zones,
                 lambda d: (d.region, d.zone, d.ip) not in used_hosts,
                 lambda d: True)
        for is_new in tiers:
            for device in order:
                if device.id in used_devices or not is_new(device):
                    continue
                used_devices.add(device.id)
                used_regions.add(device.region)
                used_zones.add((device.region, device.zone))
                used_hosts.add((device.region, device.zone, device.ip))
                yield Node.of(device, index, handoff=True)
                index += 1
