"""Placing replica slots on devices: exact, vectorised, top-down through the tier tree.

At each level every pending slot (new, or lifted off a removed device or a crowded tier) knows
its parent node (the cluster, then its region, zone, host) and must be given one of that node's
children. Children holding more than their slot quota must also shed their surplus to siblings
with room, and which of their replicas can legally go where depends on where each partition's
other replicas are. One small max-flow per parent node decides both at once:

    source -> pending group   -(dispersion headroom)->  child -(room)-> sink
    source -> surplus child -> mover class -(headroom)-> other child

Pending slots of partitions that need the same number of slots in the node and already hold the
same replicas below it form one group; candidate movers (replicas on over-full devices, of
partitions free to move) of the same child and holdings form one class. A flow that fills every
source honours dispersion (no partition above its tier's `max_replicas`) and balance (no child
above quota) with the fewest moves: only surplus leaves a child. Where no such flow exists, the
quota gives way first, then the dispersion limit, never the one-replica-per-device rule.
Each group's counts become slots by striping (which cannot crowd a partition) and then rounds of
random valid swaps, so that partitions do not all share the same peers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_flow

from ring.errors import RingBuilderError
from ring.tiers import TierTree

UNASSIGNED = -1
NO_SLOT = -2
MIX_ROUNDS_PER_COLUMN = 1
MOVER_SAMPLE_FACTOR = 4          # candidate movers sampled per slot of surplus
MOVER_SAMPLE_MIN = 256
Progress = Callable[[str, int, int], None]


@dataclasses.dataclass
class PlacementReport:
    """What placing did: slots placed, replicas moved, and slots that broke a quota or limit."""

    placed: int = 0
    movers: int = 0
    over_quota: int = 0
    over_dispersion: int = 0
    surplus_left: int = 0      # slots still above some device's quota afterwards


def edge_flows(nodes: int, src: np.ndarray, dst: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Max flow from node 0 to node `nodes - 1`; returns the flow on each given edge."""
    keep = cap > 0
    if not keep.any():
        return np.zeros(len(cap), dtype=np.int64)
    graph = csr_matrix((cap[keep].astype(np.int32), (src[keep], dst[keep])),
                       shape=(nodes, nodes))
    flow = maximum_flow(graph, 0, nodes - 1).flow.tocsr()
    return np.asarray(flow[src, dst]).ravel().clip(0).astype(np.int64)


def flow_with_movers(demand: np.ndarray, headroom: np.ndarray, surplus: np.ndarray,
                     mover_child: np.ndarray, mover_size: np.ndarray,
                     mover_headroom: np.ndarray, room: np.ndarray, chain: bool = False
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Slots each pending group and each mover class sends to each child (one max-flow).

    Nodes: source, groups, surplus children ("out"), mover classes, children, sink. With
    `chain`, a replica arriving in a child may push one of that child's own replicas on to a
    sibling (child -> out edges): the two-step moves that free room where only room helps.
    """
    groups, children = headroom.shape
    classes = len(mover_child)
    group0, out0 = 1, 1 + groups
    class0 = out0 + children
    child0 = class0 + classes
    sink = child0 + children
    g_src, g_dst = np.nonzero(headroom > 0)
    m_src, m_dst = np.nonzero(mover_headroom > 0)
    src = np.concatenate([np.zeros(groups + children, dtype=np.int64),
                          out0 + mover_child, group0 + g_src, class0 + m_src,
                          child0 + np.arange(children)])
    dst = np.concatenate([group0 + np.arange(groups), out0 + np.arange(children),
                          class0 + np.arange(classes), child0 + g_dst, child0 + m_dst,
                          np.full(children, sink)])
    cap = np.concatenate([demand, surplus, mover_size, headroom[g_src, g_dst],
                          mover_headroom[m_src, m_dst], room])
    if chain and classes:
        pushable = np.bincount(mover_child, weights=mover_size, minlength=children)
        src = np.concatenate([src, child0 + np.arange(children)])
        dst = np.concatenate([dst, out0 + np.arange(children)])
        cap = np.concatenate([cap, pushable.astype(np.int64)])
    flows = edge_flows(sink + 1, src, dst, cap)
    at = groups + children + classes
    group_flow = np.zeros_like(headroom)
    group_flow[g_src, g_dst] = flows[at:at + len(g_src)]
    at += len(g_src)
    mover_flow = np.zeros_like(mover_headroom)
    mover_flow[m_src, m_dst] = flows[at:at + len(m_src)]
    return group_flow, mover_flow


def spread_flow(demand: np.ndarray, headroom: np.ndarray, surplus: np.ndarray,
                mover_child: np.ndarray, mover_size: np.ndarray, mover_headroom: np.ndarray,
                room: np.ndarray, chain: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Like flow_with_movers, but every group first takes its proportional share of each
    child's room, so that no child ends up holding partitions of only one shape; max-flow
    completes the rest (and decides alone if the proportional start would block it)."""
    total_room = int(room.sum())
    if not len(demand) or total_room == 0:
        return flow_with_movers(demand, headroom, surplus, mover_child, mover_size,
                                mover_headroom, room, chain)
    scale = min(1.0, total_room / max(1, int(demand.sum())))
    start = np.minimum(headroom, np.floor(demand[:, None] * scale * room[None, :] / total_room)
                       .astype(np.int64))
    rest_g, rest_m = flow_with_movers(demand - start.sum(axis=1), headroom - start, surplus,
                                      mover_child, mover_size, mover_headroom,
                                      room - start.sum(axis=0), chain)
    flows_g = start + rest_g
    if (flows_g.sum(axis=1) < demand).any():
        return flow_with_movers(demand, headroom, surplus, mover_child, mover_size,
                                mover_headroom, room, chain)
    return flows_g, rest_m


def flow_groups(demand: np.ndarray, headroom: np.ndarray, room: np.ndarray) -> np.ndarray:
    """Slots each group (row) sends each child (column), without movers."""
    empty = np.zeros((0, headroom.shape[1]), dtype=np.int64)
    return flow_with_movers(demand, headroom, np.zeros(headroom.shape[1], dtype=np.int64),
                            np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                            empty, room)[0]


def stripe(flows: np.ndarray, partitions: int, per_partition: int) -> np.ndarray:
    """A (partitions x per_partition) matrix of child indices with child c used flows[c] times.

    Slot j of partition i takes label j * partitions + i of a sequence of contiguous blocks; a
    block of length <= partitions * h touches any partition at most h times.
    """
    labels = np.repeat(np.arange(len(flows)), flows)
    return labels.reshape(per_partition, partitions).T.copy()


def mix(matrix: np.ndarray, bounds: np.ndarray, rng: np.random.Generator) -> None:
    """Random swaps within columns that keep every child between bounds[0] and bounds[1]
    times in every row."""
    low, limit = bounds
    rows, cols = matrix.shape
    if rows < 2 or cols < 2:
        return
    for round_ in range(MIX_ROUNDS_PER_COLUMN * cols):
        column = round_ % cols
        order = rng.permutation(rows)
        half = rows // 2
        a, b = order[:half], order[half:2 * half]
        label_a, label_b = matrix[a, column], matrix[b, column]
        others = np.delete(np.arange(cols), column)
        count_b_in_a = (matrix[a][:, others] == label_b[:, None]).sum(axis=1)
        count_a_in_b = (matrix[b][:, others] == label_a[:, None]).sum(axis=1)
        ok = (label_a != label_b) & (count_b_in_a < limit[label_b]) & \
             (count_a_in_b < limit[label_a])
        if low.any():
            keep_a_in_a = (matrix[a][:, others] == label_a[:, None]).sum(axis=1)
            keep_b_in_b = (matrix[b][:, others] == label_b[:, None]).sum(axis=1)
            ok &= (keep_a_in_a >= low[label_a]) & (keep_b_in_b >= low[label_b])
        matrix[a[ok], column] = label_b[ok]
        matrix[b[ok], column] = label_a[ok]


def radix_argsort(keys: np.ndarray) -> np.ndarray:
    """Stable argsort of non-negative integer keys by 16-bit digits (numpy radix-sorts uint16),
    several times faster than a comparison sort on millions of keys."""
    if not len(keys):
        return np.zeros(0, dtype=np.int64)
    top = int(keys.max())
    if top == 0:
        return np.arange(len(keys))
    if top <= 0xFFFF:
        return np.argsort(keys.astype(np.uint16), kind="stable")
    order = np.arange(len(keys))
    shift = 0
    while True:
        digit = ((keys[order] >> shift) & 0xFFFF).astype(np.uint16)
        order = order[np.argsort(digit, kind="stable")]
        shift += 16
        if top >> shift == 0:
            return order


def _runs(keys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Row order sorted by keys (last most significant) and the run id of each sorted row."""
    order = np.lexsort(keys)
    starts = np.ones(len(order), dtype=bool)
    if len(order) > 1:
        changed = np.zeros(len(order) - 1, dtype=bool)
        for key in keys:
            ordered = key[order]
            changed |= ordered[1:] != ordered[:-1]
        starts[1:] = changed
    return order, np.cumsum(starts) - 1


class _Tree:
    """Per level: each parent's children, and each node's index among its siblings."""

    def __init__(self, tree: TierTree):
        self.tree = tree
        self.children: list[list[np.ndarray]] = [[]]
        self.local: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]
        for level in range(1, tree.levels):
            parent_of = tree.parent[level]
            counts = np.bincount(parent_of, minlength=len(tree.keys[level - 1]))
            order = np.argsort(parent_of, kind="stable")
            kids = np.split(order, np.cumsum(counts)[:-1])
            local = np.empty(len(parent_of), dtype=np.int64)
            for group in kids:
                local[group] = np.arange(len(group))
            self.children.append(kids)
            self.local.append(local)


@dataclasses.dataclass
class _State:
    """Everything place() tracks while walking down the levels."""

    assignment: np.ndarray
    movable: np.ndarray                  # partitions free to move (and not yet moved)
    device_surplus: np.ndarray           # slots above quota per device id
    pend_row: np.ndarray
    pend_part: np.ndarray
    pend_node: np.ndarray                # node at the level above
    kept_row: np.ndarray                 # every placed slot, as parallel arrays
    kept_part: np.ndarray
    kept_dev: np.ndarray
    kept: np.ndarray                     # which of those are still in place
    partition_key: np.ndarray            # random order of partitions for striping
    movers_from_any_device: bool         # also lift from devices at or under quota (chains)
    in_key_order: bool = False           # pending arrays sorted by partition_key


def place(assignment: np.ndarray, tree: TierTree, limit: list[np.ndarray],
          floor: list[np.ndarray], quota: list[np.ndarray], movable: np.ndarray,
          rng: np.random.Generator, progress: Progress | None = None,
          movers_from_any_device: bool = False) -> tuple[PlacementReport, np.ndarray]:
    """Fill every UNASSIGNED slot and shed over-full devices, in place.

    `limit` and `floor` bound each tier's replicas of one partition; `quota` is each node's
    slot count. `movable` marks partitions that may have one replica moved. Returns the report
    and the mask of partitions that had a replica moved to shed a surplus. Movers normally come
    only from devices above quota (each move then removes surplus); `movers_from_any_device`
    also lets a replica on a device at quota step aside for one that cannot go anywhere else.
    """
    report = PlacementReport()
    partition_key = rng.permutation(assignment.shape[1])     # random partition order
    key_order = np.empty_like(partition_key)
    key_order[partition_key] = np.arange(len(partition_key))
    # Pending slots enumerated partition by partition in key order (what each level needs).
    by_key, pend_row = np.nonzero((assignment == UNASSIGNED)[:, key_order].T)
    pend_part = key_order[by_key]
    kept_row, kept_part = np.nonzero(assignment >= 0)
    kept_dev = assignment[kept_row, kept_part]
    device_quota = np.zeros(max(int(tree.device_ids.max()), int(kept_dev.max(initial=0))) + 1,
                            dtype=np.int64)
    device_quota[tree.device_ids] = quota[-1]
    held = np.bincount(kept_dev, minlength=len(device_quota))
    free = movable.copy()
    free[pend_part] = False
    state = _State(assignment, free, held - device_quota, pend_row, pend_part,
                   np.zeros(len(pend_row), dtype=np.int64), kept_row, kept_part, kept_dev,
                   np.ones(len(kept_row), dtype=bool), partition_key,
                   movers_from_any_device, in_key_order=True)
    shape = _Tree(tree)
    levels = tree.levels - 1
    for level in range(1, tree.levels):
        if progress:
            progress("placing", level - 1, levels)
        _place_level(level, shape, state, limit[level], floor[level], quota[level], rng,
                     report)
    if progress:
        progress("placing", levels, levels)
    moved = movable & ~state.movable
    moved[pend_part] = False
    assignment[state.pend_row, state.pend_part] = tree.device_ids[state.pend_node]
    report.placed = len(state.pend_row)
    final = np.bincount(assignment[assignment >= 0], minlength=len(device_quota))
    report.surplus_left = int((final[:len(device_quota)] - device_quota).clip(0).sum())
    return report, moved


def _holdings(tree: TierTree, level: int, state: _State, pair_node: np.ndarray,
              pair_part: np.ndarray, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For (parent node, partition) pairs sorted by node*P+part: a signature of the replicas
    the partition keeps in the parent's children, and those replicas (pair index, child)."""
    parts = state.assignment.shape[1]
    pair_keys = pair_node * parts + pair_part
    interesting = np.zeros(parts, dtype=bool)
    interesting[pair_part] = True
    mask = state.kept & interesting[state.kept_part]
    devs = state.kept_dev[mask]
    keys = tree.device_node[level - 1][devs] * parts + state.kept_part[mask]
    child = tree.device_node[level][devs]
    where = np.searchsorted(pair_keys, keys).clip(0, max(len(pair_keys) - 1, 0))
    match = pair_keys[where] == keys if len(pair_keys) else np.zeros(0, dtype=bool)
    pair_of, child = where[match], child[match]
    signature = np.zeros(len(pair_keys), dtype=np.uint64)
    if len(pair_of):
        salts = rng.integers(1, 2**63, size=len(tree.keys[level]), dtype=np.uint64)
        np.add.at(signature, pair_of, salts[child])
    order = np.argsort(pair_of, kind="stable")
    return signature, pair_of[order], child[order]


def _held_by(rep: int, kept_pair: np.ndarray, kept_child: np.ndarray, local: np.ndarray,
             width: int) -> np.ndarray:
    lo, hi = np.searchsorted(kept_pair, [rep, rep + 1])
    return np.bincount(local[kept_child[lo:hi]], minlength=width)


def _place_level(level: int, shape: _Tree, state: _State, limit: np.ndarray,
                 floor: np.ndarray, quota: np.ndarray, rng: np.random.Generator,
                 report: PlacementReport) -> None:
    tree = shape.tree
    parts = state.assignment.shape[1]
    node_of_dev = tree.device_node[level]
    num_nodes = len(tree.keys[level])
    kept_here = np.bincount(node_of_dev[state.kept_dev[state.kept]], minlength=num_nodes)
    room = (quota - kept_here).clip(0)
    surplus = (kept_here - quota).clip(0)
    capacity = tree.capacity[level]

    # Pending: (parent, partition) pairs and how many slots each needs, numbered in the order
    # (parent, random partition key) so that a stable sort by group keeps that order within it.
    if not state.in_key_order:
        by_key = radix_argsort(state.partition_key[state.pend_part])
        state.pend_row, state.pend_part, state.pend_node = (
            state.pend_row[by_key], state.pend_part[by_key], state.pend_node[by_key])
        state.in_key_order = True
    # Pending slots are in random-key order, so a stable sort by node yields (node, key) order.
    order = radix_argsort(state.pend_node)
    sorted_key = state.pend_node[order] * parts + state.partition_key[state.pend_part[order]]
    pair_start = np.ones(len(order), dtype=bool)
    pair_start[1:] = sorted_key[1:] != sorted_key[:-1]
    pair_first_pos = np.flatnonzero(pair_start)
    pair_node = state.pend_node[order[pair_first_pos]]
    pair_part = state.pend_part[order[pair_first_pos]]
    pair_need = np.diff(np.append(pair_first_pos, len(order)))

    # Movers: replicas in over-full children, on over-full devices, of free partitions.
    movers = _sample_movers(level, tree, state, surplus, rng)
    mover_dev = state.kept_dev[movers]
    mover_parent = tree.device_node[level - 1][mover_dev]
    mover_child = node_of_dev[mover_dev]
    mover_part = state.kept_part[movers]

    # Holdings of pending pairs and movers (disjoint partitions) in one pass.
    all_node = np.concatenate([pair_node, mover_parent])
    all_part = np.concatenate([pair_part, mover_part])
    if state.kept.any():
        sort = radix_argsort(all_node * parts + all_part)
        signature_sorted, kept_pair, kept_child = _holdings(tree, level, state, all_node[sort],
                                                            all_part[sort], rng)
        signature = np.empty(len(sort), dtype=np.uint64)
        signature[sort] = signature_sorted
        sorted_index = np.empty(len(sort), dtype=np.int64)
        sorted_index[sort] = np.arange(len(sort))     # holdings are indexed in sorted order
    else:   # a first build: nothing is held anywhere yet
        signature = np.zeros(len(all_node), dtype=np.uint64)
        sorted_index = np.arange(len(all_node))
        kept_pair = kept_child = np.zeros(0, dtype=np.int64)
    pair_sig, mover_sig = signature[:len(pair_node)], signature[len(pair_node):]

    node_need = pair_node * 256 + pair_need
    g_order = (np.lexsort([pair_sig, node_need]) if pair_sig.any()
               else np.argsort(node_need, kind="stable"))
    g_start = np.ones(len(g_order), dtype=bool)
    g_start[1:] = (node_need[g_order][1:] != node_need[g_order][:-1]) | \
        (pair_sig[g_order][1:] != pair_sig[g_order][:-1])
    g_run = np.cumsum(g_start) - 1
    group_of_pair = np.empty(len(pair_node), dtype=np.int64)
    group_of_pair[g_order] = g_run
    group_first = g_order[g_start]
    group_size = np.bincount(group_of_pair, minlength=len(group_first))
    group_node, group_need = pair_node[group_first], pair_need[group_first]

    m_order, m_run = _runs([mover_sig, mover_child])
    class_of_mover = np.empty(len(movers), dtype=np.int64)
    class_of_mover[m_order] = m_run
    class_first = m_order[np.r_[0, np.flatnonzero(np.diff(m_run)) + 1]] if len(m_order) \
        else m_order
    class_size = np.bincount(class_of_mover, minlength=len(class_first))
    class_child = mover_child[class_first]
    class_parent = mover_parent[class_first]

    group_flows: dict[int, np.ndarray] = {}
    group_limits: dict[int, np.ndarray] = {}
    class_flows: dict[int, np.ndarray] = {}
    parents = np.union1d(group_node, class_parent)
    for parent in parents:
        kids = shape.children[level][parent]
        local = shape.local[level]
        groups = np.flatnonzero(group_node == parent)
        classes = np.flatnonzero(class_parent == parent)
        width = len(kids)
        held_g = np.array([_held_by(sorted_index[group_first[g]], kept_pair, kept_child, local,
                                    width) for g in groups]).reshape(len(groups), width)
        held_m = np.array([_held_by(sorted_index[len(pair_node) + class_first[m]], kept_pair,
                                    kept_child, local, width)
                           for m in classes]).reshape(len(classes), width)
        size_g = group_size[groups][:, None]
        soft_g = (limit[kids][None, :] - held_g).clip(0)
        demand = group_size[groups] * group_need[groups]
        head_m = (limit[kids][None, :] - held_m).clip(0) * class_size[classes][:, None]
        if len(classes):
            source = local[class_child[classes]]
            rows = np.arange(len(classes))
            head_m[rows, source] = 0
            # A replica may not leave a child where its partition is at the minimum spread.
            head_m[held_m[rows, source] <= floor[class_child[classes]]] = 0

        # Each partition must first get the fewest replicas its tiers' spread requires; striping
        # turns a flow of size * k into at least k per partition.
        must_g = _mandatory(floor[kids][None, :] - held_g, group_need[groups], rng)
        start = must_g * size_g
        kid_room = room[kids] - start.sum(axis=0)
        report.over_quota += int((-kid_room).clip(0).sum())
        kid_room = kid_room.clip(0)
        rest = demand - start.sum(axis=1)
        soft_rest = (soft_g * size_g - start).clip(0)
        flows_g, flows_m = spread_flow(rest, soft_rest, surplus[kids],
                                       local[class_child[classes]], class_size[classes],
                                       head_m, kid_room, state.movers_from_any_device)
        if (flows_g.sum(axis=1) < rest).any():
            # Pending slots come first: place them alone (relaxing if need be), then movers.
            hard_g = ((capacity[kids][None, :] - held_g) * size_g - start).clip(0)
            flows_g = _place_pending(rest, soft_rest, hard_g, kid_room, report)
            kid_room = (kid_room - flows_g.sum(axis=0)).clip(0)
            _, flows_m = flow_with_movers(np.zeros(0, dtype=np.int64),
                                          np.zeros((0, width), dtype=np.int64), surplus[kids],
                                          local[class_child[classes]], class_size[classes],
                                          head_m, kid_room)
        flows_g = flows_g + start
        for row, group in enumerate(groups):
            group_flows[group] = flows_g[row]
            # Striping never puts more than ceil(count / size) of a child in one partition.
            group_limits[group] = np.stack([
                must_g[row], np.maximum(soft_g[row], -(-flows_g[row] // size_g[row]))])
        for row, klass in enumerate(classes):
            class_flows[klass] = flows_m[row]

    state.pend_node = _realize_groups(level, shape, state, order, pair_first_pos, pair_need,
                                      g_order, g_start, group_node, group_need, group_flows,
                                      group_limits, rng)
    _realize_movers(level, shape, state, movers, class_of_mover, class_parent, class_flows,
                    rng, report)


def _mandatory(short: np.ndarray, need: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per group, replicas each child must receive (never more in all than the group needs)."""
    must = short.clip(0)
    for row in np.flatnonzero(must.sum(axis=1) > need):
        # Kept replicas crowd elsewhere; honour as much of the minimum as the need allows.
        slots = np.repeat(np.arange(must.shape[1]), must[row])
        keep = rng.permutation(len(slots))[:need[row]]
        must[row] = np.bincount(slots[keep], minlength=must.shape[1])
    return must


def _place_pending(demand: np.ndarray, soft: np.ndarray, hard: np.ndarray, room: np.ndarray,
                   report: PlacementReport) -> np.ndarray:
    """Pending slots alone: within quota, else over quota, else over the dispersion limit."""
    big = int(demand.sum())
    flows = flow_groups(demand, soft, room)
    short = demand - flows.sum(axis=1)
    if short.any():
        extra = flow_groups(short, soft - flows, np.full(len(room), big))
        report.over_quota += int(extra.sum())
        flows += extra
        short = demand - flows.sum(axis=1)
    if short.any():
        extra = flow_groups(short, (hard - flows).clip(0), np.full(len(room), big))
        report.over_dispersion += int(extra.sum())
        flows += extra
        short = demand - flows.sum(axis=1)
    if short.any():
        raise RingBuilderError("not enough devices to place every replica on a distinct device")
    return flows


def _sample_movers(level: int, tree: TierTree, state: _State, surplus: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """Indices (into the kept arrays) of candidate movers: a random sample per child."""
    if not surplus.any():
        return np.zeros(0, dtype=np.int64)
    devs = state.kept_dev
    child = tree.device_node[level][devs]
    ok = state.kept & state.movable[state.kept_part]
    if not state.movers_from_any_device:   # only surplus moves; else chains through any child
        ok &= (surplus[child] > 0) & (state.device_surplus[devs] > 0)
    candidates = np.flatnonzero(ok)
    if not len(candidates):
        return candidates
    candidates = candidates[rng.permutation(len(candidates))]
    _, first = np.unique(state.kept_part[candidates], return_index=True)   # one per partition
    candidates = candidates[np.sort(first)]
    cand_child = child[candidates]
    order = np.argsort(cand_child, kind="stable")
    candidates, cand_child = candidates[order], cand_child[order]
    rank = np.arange(len(candidates)) - np.searchsorted(cand_child, cand_child)
    wanted = surplus[cand_child] * MOVER_SAMPLE_FACTOR + MOVER_SAMPLE_MIN
    return candidates[rank < wanted]


def _realize_groups(level: int, shape: _Tree, state: _State, item_order: np.ndarray,
                    pair_first_pos: np.ndarray, pair_need: np.ndarray, group_order: np.ndarray,
                    group_start: np.ndarray, group_node: np.ndarray, group_need: np.ndarray,
                    group_flows: dict[int, np.ndarray], group_limits: dict[int, np.ndarray],
                    rng: np.random.Generator) -> np.ndarray:
    """Concrete children for pending slots from their groups' counts (stripe, then mix).

    `item_order` sorts items by pair; `group_order` sorts pairs by group (pairs of a group in
    random-partition order), so items laid out pair by pair in group order need no other sort.
    """
    new_node = np.empty(len(state.pend_node), dtype=np.int64)
    if not len(item_order):
        return new_node
    lengths = pair_need[group_order]
    pair_rank = np.arange(len(group_order)) - \
        np.flatnonzero(group_start)[np.cumsum(group_start) - 1]
    if lengths.max() == 1:     # one slot per pair (the usual case below the top levels)
        offsets = np.arange(len(lengths))
        total = len(lengths)
        slot_in_pair = np.zeros(total, dtype=np.int64)
        items = item_order[pair_first_pos[group_order]]
        rank = pair_rank
    else:
        offsets = np.cumsum(lengths) - lengths
        total = int(lengths.sum())
        slot_in_pair = np.arange(total) - np.repeat(offsets, lengths)
        items = item_order[np.repeat(pair_first_pos[group_order], lengths) + slot_in_pair]
        rank = np.repeat(pair_rank, lengths)
    group_bounds = np.append(offsets[group_start], total)
    for group in range(len(group_node)):
        lo, hi = group_bounds[group], group_bounds[group + 1]
        kids = shape.children[level][group_node[group]]
        perm = rng.permutation(len(kids))
        size = (hi - lo) // group_need[group]
        matrix = stripe(group_flows[group][perm], int(size), int(group_need[group]))
        mix(matrix, group_limits[group][:, perm], rng)
        # A fresh order per group and level, so a partition's child here does not follow
        # from its place in the order at the level above.
        shuffled = rng.permutation(int(size))[rank[lo:hi]]
        new_node[items[lo:hi]] = kids[perm][matrix[shuffled, slot_in_pair[lo:hi]]]
    return new_node


def _realize_movers(level: int, shape: _Tree, state: _State, movers: np.ndarray,
                    class_of_mover: np.ndarray, class_parent: np.ndarray,
                    class_flows: dict[int, np.ndarray], rng: np.random.Generator,
                    report: PlacementReport) -> None:
    """Lift the chosen movers and make them pending slots headed for their new child."""
    if not class_flows:
        return
    devs = state.kept_dev[movers]
    # Prefer movers on the devices with the most surplus left: rank each mover within its
    # device in a random order and lift those whose rank is inside the device's surplus first.
    shuffle = rng.permutation(len(movers))
    order = shuffle[np.argsort(devs[shuffle], kind="stable")]
    rank = np.empty(len(movers), dtype=np.int64)
    sorted_devs = devs[order]
    rank[order] = np.arange(len(order)) - np.searchsorted(sorted_devs, sorted_devs)
    beyond = rank >= state.device_surplus[devs]
    pick_order = np.lexsort([rng.random(len(movers)), beyond, class_of_mover])
    sorted_class = class_of_mover[pick_order]
    bounds = np.searchsorted(sorted_class, np.arange(len(class_parent) + 1))
    lifted, targets = [], []
    for klass, flows in class_flows.items():
        count = int(flows.sum())
        if not count:
            continue
        chosen = pick_order[bounds[klass]:bounds[klass] + count]
        kids = shape.children[level][class_parent[klass]]
        destinations = np.repeat(kids, flows)
        lifted.append(chosen)
        targets.append(destinations[rng.permutation(count)])
    if not lifted:
        return
    chosen = np.concatenate(lifted)
    index = movers[chosen]
    state.kept[index] = False
    state.movable[state.kept_part[index]] = False
    np.subtract.at(state.device_surplus, state.kept_dev[index], 1)
    state.assignment[state.kept_row[index], state.kept_part[index]] = UNASSIGNED
    state.pend_row = np.concatenate([state.pend_row, state.kept_row[index]])
    state.pend_part = np.concatenate([state.pend_part, state.kept_part[index]])
    state.pend_node = np.concatenate([state.pend_node, np.concatenate(targets)])
    state.in_key_order = False
    report.movers += len(index)
