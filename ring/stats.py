"""Balance and dispersion of an assignment, as pure functions (Swift's definitions).

- balance of a device: how far its partition count is from its weight's share, in percent;
  the ring's balance is the largest absolute value (a weight-0 device that still holds
  partitions counts as 999.99).
- dispersion: the percentage of partitions that have more replicas in some tier than the
  replica plan allows (`max_replicas`); 0 means every partition is spread as planned.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ring.placement import NO_SLOT
from ring.tiers import TierTree

MAX_BALANCE = 999.99


def device_parts(assignment: np.ndarray, max_id: int) -> np.ndarray:
    """Replica slots held by each device id."""
    placed = assignment[assignment >= 0]
    return np.bincount(placed, minlength=max_id + 1)


def balance_per_device(parts: np.ndarray, weights: dict[int, float],
                       total_slots: int) -> dict[int, float]:
    total_weight = sum(weights.values())
    result = {}
    for dev_id, weight in weights.items():
        held = int(parts[dev_id]) if dev_id < len(parts) else 0
        if weight <= 0 or total_weight <= 0:
            result[dev_id] = MAX_BALANCE if held else 0.0
        else:
            wanted = total_slots * weight / total_weight
            result[dev_id] = 100.0 * held / wanted - 100.0
    return result


def ring_balance(per_device: dict[int, float]) -> float:
    return max((abs(b) for b in per_device.values()), default=0.0)


@dataclasses.dataclass
class TierDispersion:
    """One tier's line of the dispersion report."""

    tier: str
    level: int
    parts: int                      # partitions with at least one replica here
    parts_over: int                 # partitions with more replicas here than allowed
    max_replicas: int
    histogram: list[int]            # partitions by number of replicas held here (0, 1, ...)

    @property
    def percent_over(self) -> float:
        return 100.0 * self.parts_over / self.parts if self.parts else 0.0


def tier_nodes(assignment: np.ndarray, tree: TierTree, level: int) -> np.ndarray:
    """The tier node of every slot at `level` (-1 where a slot is empty)."""
    placed = assignment >= 0
    nodes = np.full(assignment.shape, -1, dtype=np.int64)
    nodes[placed] = tree.device_node[level][assignment[placed]]
    return nodes


def same_tier_counts(nodes: np.ndarray) -> np.ndarray:
    """For every slot, how many replicas of its partition share its tier node (rows are few,
    so comparing every pair of rows is cheaper than sorting millions of keys)."""
    counts = np.zeros(nodes.shape, dtype=np.int64)
    for row in range(nodes.shape[0]):
        counts += nodes == nodes[row]
    return np.where(nodes >= 0, counts, 0)


def partitions_over_limit(assignment: np.ndarray, tree: TierTree,
                          limit: list[np.ndarray]) -> np.ndarray:
    """Mask of partitions that break a tier's replica limit anywhere (or share a device)."""
    bad = np.zeros(assignment.shape[1], dtype=bool)
    for level in range(1, tree.levels):
        nodes = tier_nodes(assignment, tree, level)
        level_limit = limit[level][nodes.clip(0)]
        if level == tree.levels - 1:
            level_limit = np.minimum(level_limit, 1)
        bad |= ((same_tier_counts(nodes) > level_limit) & (nodes >= 0)).any(axis=0)
    return bad


def dispersion(assignment: np.ndarray, tree: TierTree, limit: list[np.ndarray]) -> float:
    """Percent of partitions placed more narrowly than the plan allows."""
    if assignment.shape[1] == 0:
        return 0.0
    return 100.0 * partitions_over_limit(assignment, tree, limit).mean()


def dispersion_report(assignment: np.ndarray, tree: TierTree,
                      limit: list[np.ndarray]) -> list[TierDispersion]:
    """Per tier node: how many partitions it holds and how many of them too many times."""
    width = int((assignment != NO_SLOT).sum(axis=0).max(initial=0)) + 1
    total_parts = assignment.shape[1]
    report = []
    for level in range(1, tree.levels):
        slot_nodes = tier_nodes(assignment, tree, level)
        counts = same_tier_counts(slot_nodes)
        # One entry per (partition, node): the first row holding that node for the partition.
        first = np.ones(slot_nodes.shape, dtype=bool)
        for row in range(1, slot_nodes.shape[0]):
            first[row] = ~(slot_nodes[:row] == slot_nodes[row]).any(axis=0)
        pick = first & (slot_nodes >= 0)
        nodes, counts = slot_nodes[pick], counts[pick]
        num_nodes = len(tree.keys[level])
        held = np.bincount(nodes, minlength=num_nodes)
        over = np.bincount(nodes[counts > limit[level][nodes]], minlength=num_nodes)
        hist = np.zeros((num_nodes, width), dtype=np.int64)
        np.add.at(hist, (nodes, np.minimum(counts, width - 1)), 1)
        hist[:, 0] = total_parts - held
        for node in range(num_nodes):
            report.append(TierDispersion(tree.label(level, node), level, int(held[node]),
                                         int(over[node]), int(limit[level][node]),
                                         hist[node].tolist()))
    return report
