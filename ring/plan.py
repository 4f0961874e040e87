"""The replica plan: how many replicas of each partition every tier should hold, as pure functions.

Two plans are computed top-down over the tier tree and then blended, as Swift does:
- the weighted plan: replicas in proportion to weight (a device never holds more than one);
- the dispersed plan: each tier's share kept inside the band that spreads a partition's replicas
  as widely as the topology allows (regions first, then zones, hosts, devices), weights deciding
  only within that band.
`overload` says how far a tier may go above its weighted share for dispersion's sake; with the
default (no limit) the dispersed plan is used as it is. From the target plan follow the hard
per-partition limits (`max_replicas`) and the integer slot quota of every node.
"""

from __future__ import annotations

import math

import numpy as np

from ring.errors import RingBuilderError
from ring.tiers import TierTree

EPSILON = 1e-9


def water_fill(total: float, weights: np.ndarray, low: np.ndarray,
               high: np.ndarray) -> np.ndarray:
    """Shares x_c = clamp(scale * weight_c, low_c, high_c) that add up to `total`."""
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    if total > high.sum() + EPSILON or total < low.sum() - EPSILON:
        raise RingBuilderError(f"cannot spread {total:g} replicas over tiers that hold "
                               f"{low.sum():g} to {high.sum():g}")
    weights = np.asarray(weights, dtype=np.float64)
    scale_low, scale_high = 0.0, 1.0
    while np.clip(scale_high * weights, low, high).sum() < total - EPSILON and scale_high < 1e300:
        scale_high *= 2.0
    for _ in range(80):   # halves the interval each time: far below float resolution
        scale = (scale_low + scale_high) / 2.0
        if np.clip(scale * weights, low, high).sum() < total:
            scale_low = scale
        else:
            scale_high = scale
    shares = np.clip(scale_high * weights, low, high)
    # Children with no weight cannot take the remainder; give the rounding error to the rest.
    error = total - shares.sum()
    room = (high - shares) if error > 0 else (shares - low)
    movable = room > EPSILON
    if abs(error) > 0 and movable.any():
        shares[movable] += error * room[movable] / room[movable].sum()
    return shares


def dispersion_band(total: float, capacity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per child, the fewest and most replicas a partition with `total` replicas in the parent
    has there when spread as widely as possible (each child holding at most `capacity`)."""
    most = math.ceil(total - EPSILON)
    fewest = math.floor(total + EPSILON)
    level_high = 0
    while np.minimum(capacity, level_high).sum() < most:
        level_high += 1
    level_low = 0
    while np.minimum(capacity, level_low + 1).sum() <= fewest and level_low < capacity.max():
        level_low += 1
    return np.minimum(capacity, level_low), np.minimum(capacity, level_high)


def _top_down(tree: TierTree, replicas: float, dispersed: bool) -> list[np.ndarray]:
    plan = [np.array([float(replicas)])]
    for level in range(1, tree.levels):
        shares = np.zeros(len(tree.keys[level]))
        for node, total in enumerate(plan[level - 1]):
            children = tree.children(level, node)
            if total <= EPSILON:
                continue
            capacity = tree.capacity[level][children]
            if dispersed:
                low, high = dispersion_band(total, capacity)
            else:
                low, high = np.zeros(len(children)), capacity.astype(np.float64)
            shares[children] = water_fill(total, tree.weight[level][children], low, high)
        plan.append(shares)
    return plan


def weighted_plan(tree: TierTree, replicas: float) -> list[np.ndarray]:
    """Replicas per partition each node would hold if weight alone decided."""
    return _top_down(tree, replicas, dispersed=False)


def dispersed_plan(tree: TierTree, replicas: float) -> list[np.ndarray]:
    """Replicas per partition each node holds when dispersion comes first."""
    return _top_down(tree, replicas, dispersed=True)


def required_overload(weighted: list[np.ndarray], dispersed: list[np.ndarray]) -> float:
    """The overload at which the dispersed plan can be used in full (0.0 when weights allow it)."""
    want, have = dispersed[-1], weighted[-1]
    mask = have > EPSILON
    if not mask.any():
        return 0.0
    return float(max(0.0, ((want[mask] - have[mask]) / have[mask]).max()))


def target_plan(tree: TierTree, replicas: float, overload: float | None) -> list[np.ndarray]:
    """The plan the builder places by: weighted, moved towards dispersed as overload allows."""
    if replicas > tree.capacity[0][0] + EPSILON:
        raise RingBuilderError(
            f"{replicas:g} replicas need at least {math.ceil(replicas)} devices with weight; "
            f"there are {int(tree.capacity[0][0])}")
    dispersed = dispersed_plan(tree, replicas)
    if overload is None:
        return dispersed
    weighted = weighted_plan(tree, replicas)
    required = required_overload(weighted, dispersed)
    if required <= overload + EPSILON:
        return dispersed
    blend = overload / required
    return [w + blend * (d - w) for w, d in zip(weighted, dispersed, strict=True)]


def max_replicas(plan: list[np.ndarray]) -> list[np.ndarray]:
    """The most replicas of one partition a node may hold: the dispersion limit."""
    return [np.ceil(level - EPSILON).astype(np.int64).clip(0) for level in plan]


def min_replicas(tree: TierTree, plan: list[np.ndarray]) -> list[np.ndarray]:
    """The fewest replicas of one partition a node must hold to be spread as widely as the
    topology allows (4 replicas over 3 zones: at least one in each), where the plan allows."""
    floors = [np.zeros(1, dtype=np.int64)]
    for level in range(1, tree.levels):
        level_floor = np.zeros(len(tree.keys[level]), dtype=np.int64)
        for node, total in enumerate(plan[level - 1]):
            children = tree.children(level, node)
            if total <= EPSILON or not len(children):
                continue
            low, _high = dispersion_band(total, tree.capacity[level][children])
            level_floor[children] = np.minimum(
                low, np.floor(plan[level][children] + EPSILON)).astype(np.int64)
        floors.append(level_floor)
    return floors


def _largest_remainder(total: int, shares: np.ndarray) -> np.ndarray:
    exact = np.where(np.abs(shares - np.rint(shares)) < 1e-6, np.rint(shares), shares)
    counts = np.floor(exact).astype(np.int64)
    short = total - int(counts.sum())
    if short > 0:
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


def slot_quotas(tree: TierTree, plan: list[np.ndarray], total_slots: int) -> list[np.ndarray]:
    """Integer replica slots per node, summing exactly down the tree (largest remainder)."""
    quotas = [np.array([total_slots], dtype=np.int64)]
    for level in range(1, tree.levels):
        level_quota = np.zeros(len(tree.keys[level]), dtype=np.int64)
        for node, node_quota in enumerate(quotas[level - 1]):
            children = tree.children(level, node)
            share = plan[level][children]
            if node_quota == 0 or share.sum() <= EPSILON:
                continue
            level_quota[children] = _largest_remainder(
                int(node_quota), node_quota * share / share.sum())
        quotas.append(level_quota)
    return quotas
