"""The failure-domain tree of a ring: region, zone, host and device nodes as flat numpy tables.

Level 0 is the whole cluster (one node), then regions, zones, hosts (an ip within a zone) and
devices. Every device that is in the builder, weighted or not, has a node at every level, so
replicas left on a draining (weight 0) device still count against their tiers' dispersion.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ring.device import Device

LEVEL_NAMES = ("cluster", "region", "zone", "host", "device")
DEVICE_LEVEL = len(LEVEL_NAMES) - 1


@dataclasses.dataclass
class TierTree:
    """Nodes per level, each node's parent, weight and number of weighted devices below it."""

    keys: list[list[tuple]]           # keys[level][node] = the tier tuple, e.g. (1, 2) for r1z2
    parent: list[np.ndarray]          # parent[level][node] = node index one level up
    weight: list[np.ndarray]          # summed weight of the devices below
    capacity: list[np.ndarray]        # number of weighted devices below: replicas it could hold
    device_node: list[np.ndarray]     # device_node[level][device id] = node, -1 if not in tree
    device_ids: np.ndarray            # device id of each device-level node

    @property
    def levels(self) -> int:
        return len(self.keys)

    def children(self, level: int, node: int) -> np.ndarray:
        """Nodes at `level` whose parent (at level - 1) is `node`."""
        return np.flatnonzero(self.parent[level] == node)

    def label(self, level: int, node: int) -> str:
        """Swift's tier notation: r1, r1z2, r1z2-10.0.0.1, r1z2-10.0.0.1/d7."""
        key = self.keys[level][node]
        text = ""
        if level >= 1:
            text += f"r{key[0]}"
        if level >= 2:
            text += f"z{key[1]}"
        if level >= 3:
            text += f"-{key[2]}"
        if level >= 4:
            text += f"/d{key[3]}"
        return text or "cluster"


def build_tier_tree(devices: Sequence[Device]) -> TierTree:
    """The tree of the given devices; devices of weight 0 are nodes with capacity 0."""
    ordered = sorted(devices, key=lambda d: d.tiers[-1])
    max_id = max((d.id for d in ordered), default=-1)
    keys: list[list[tuple]] = [[()]]
    parent = [np.zeros(1, dtype=np.int64)]
    index_of: list[dict[tuple, int]] = [{(): 0}]
    for level in range(1, DEVICE_LEVEL + 1):
        level_keys: list[tuple] = []
        level_index: dict[tuple, int] = {}
        parents: list[int] = []
        for dev in ordered:
            key = dev.tiers[level - 1]
            if key not in level_index:
                level_index[key] = len(level_keys)
                level_keys.append(key)
                parents.append(index_of[level - 1][key[:-1]])
        keys.append(level_keys)
        index_of.append(level_index)
        parent.append(np.asarray(parents, dtype=np.int64))

    device_node = []
    for level in range(DEVICE_LEVEL + 1):
        table = np.full(max_id + 1, -1, dtype=np.int64)
        for dev in ordered:
            table[dev.id] = index_of[level][dev.tiers[level - 1]] if level else 0
        device_node.append(table)

    dev_weight = np.array([d.weight for d in ordered], dtype=np.float64)
    weight = [np.zeros(len(k)) for k in keys]
    capacity = [np.zeros(len(k), dtype=np.int64) for k in keys]
    weight[DEVICE_LEVEL] = dev_weight
    capacity[DEVICE_LEVEL] = (dev_weight > 0).astype(np.int64)
    for level in range(DEVICE_LEVEL, 0, -1):
        np.add.at(weight[level - 1], parent[level], weight[level])
        np.add.at(capacity[level - 1], parent[level], capacity[level])
    device_ids = np.array([d.id for d in ordered], dtype=np.int64)
    return TierTree(keys, parent, weight, capacity, device_node, device_ids)
