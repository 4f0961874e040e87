"""The ring builder: devices, replica settings, and the rebalance that assigns partitions.

`rebalance()` honours, in order:
1. dispersion: no partition has more replicas in a region, zone, host or device than the replica
   plan (ring.plan) allows, and never two on one device;
2. balance: every device gets its plan's slot quota (its weight's share where dispersion permits);
3. the fewest moves: only replicas on removed devices, replicas that break dispersion, and the
   surplus of over-full devices are lifted; everything else stays where it is;
4. `min_part_hours`: a partition moves at most one replica per period (replicas on removed
   devices excepted).
Lifted and new slots are then placed by ring.placement. Deterministic for a given seed.
"""

from __future__ import annotations

import dataclasses
import math
import time
import uuid
from collections.abc import Callable, Iterable

import numpy as np

from ring import plan as replica_plan
from ring import stats
from ring.device import Device
from ring.errors import RingBuilderError, RingValidationError
from ring.placement import NO_SLOT, UNASSIGNED, Progress, place
from ring.ring_data import RingData
from ring.tiers import TierTree, build_tier_tree

MAX_PART_POWER = 32
MAX_BALANCE_PASSES = 4
SECONDS_PER_HOUR = 3600


@dataclasses.dataclass
class RebalanceResult:
    """What a rebalance did."""

    parts_moved: int            # partitions with at least one replica reassigned
    slots_moved: int            # replica slots reassigned (new slots included)
    removed_devices: list[int]
    balance: float
    dispersion: float
    over_quota_slots: int       # slots the first pass placed above a quota (later passes fix)
    seconds: float


def _positive_hours(value: float | int, what: str) -> int:
    try:
        hours = int(value)
    except (TypeError, ValueError):
        raise RingBuilderError(f"{what} must be a whole number of hours, not {value!r}") from None
    if hours < 0 or hours > 0xFFFF:
        raise RingBuilderError(f"{what} must be between 0 and 65535 hours")
    return hours


def _check_replicas(replicas: float) -> float:
    try:
        value = float(replicas)
    except (TypeError, ValueError):
        raise RingBuilderError(f"replicas must be a number, not {replicas!r}") from None
    if not 1.0 <= value <= 255 or not math.isfinite(value):
        raise RingBuilderError(f"replicas must be between 1 and 255, not {replicas!r}")
    return value


class RingBuilder:
    """Everything an operator changes about a ring, and the assignment it produces."""

    def __init__(self, part_power: int, replicas: float, min_part_hours: int,
                 overload: float | None = None):
        if isinstance(part_power, bool) or not isinstance(part_power, int) or \
                not 0 <= part_power <= MAX_PART_POWER:
            raise RingBuilderError(f"part power must be 0 to {MAX_PART_POWER}, not {part_power!r}")
        self.part_power = part_power
        self.replicas = _check_replicas(replicas)
        self.min_part_hours = _positive_hours(min_part_hours, "min_part_hours")
        self.overload = self._check_overload(overload)
        self.devices: dict[int, Device] = {}
        self.removed: set[int] = set()       # still hold partitions until the next rebalance
        self.assignment: np.ndarray | None = None   # (rows, partitions) device ids
        self.moved_at_hour = np.zeros(self.parts, dtype=np.uint32)
        self.id = uuid.uuid4().hex
        self.version = 0
        self.devices_changed = False
        self.last_seed: int | None = None
        self.last_move_time: float | None = None     # when partitions last moved (seconds)

    # ---- settings -------------------------------------------------------------------------

    @property
    def parts(self) -> int:
        return 1 << self.part_power

    @staticmethod
    def _check_overload(overload: float | None) -> float | None:
        if overload is None:
            return None
        value = float(overload)
        if not value >= 0 or not math.isfinite(value):
            raise RingBuilderError(f"overload must be a finite number >= 0, not {overload!r}")
        return value

    def set_replicas(self, replicas: float) -> None:
        value = _check_replicas(replicas)
        if value != self.replicas:
            self.replicas = value
            self.devices_changed = True
            self.version += 1

    def set_min_part_hours(self, hours: int) -> None:
        self.min_part_hours = _positive_hours(hours, "min_part_hours")
        self.version += 1

    def set_overload(self, overload: float | None) -> None:
        self.overload = self._check_overload(overload)
        self.devices_changed = True
        self.version += 1

    # ---- devices --------------------------------------------------------------------------

    def next_device_id(self) -> int:
        """The lowest id that is free (ids of removed devices are reused once they are gone)."""
        used = set(self.devices)
        dev_id = 0
        while dev_id in used:
            dev_id += 1
        return dev_id

    def add_device(self, **fields: object) -> Device:
        if fields.get("id") is None:
            fields["id"] = self.next_device_id()
        device = Device(**fields)  # type: ignore[arg-type]
        if device.id in self.devices:
            raise RingBuilderError(f"duplicate device id {device.id}")
        for other in self.devices.values():
            if (other.ip, other.port, other.device) == (device.ip, device.port, device.device) \
                    and other.id not in self.removed:
                raise RingBuilderError(
                    f"device {other.describe()} already uses {device.ip}:{device.port}/"
                    f"{device.device}")
        self.devices[device.id] = device
        self._changed()
        return device

    def _device(self, dev_id: int) -> Device:
        try:
            return self.devices[dev_id]
        except KeyError:
            raise RingBuilderError(f"no device with id {dev_id}") from None

    def remove_device(self, dev_id: int) -> Device:
        device = self._device(dev_id)
        if dev_id in self.removed:
            raise RingBuilderError(f"device {dev_id} is already marked for removal")
        self.removed.add(dev_id)
        self._changed()
        return device

    def set_weight(self, dev_id: int, weight: float) -> Device:
        return self._update(dev_id, weight=weight)

    def set_info(self, dev_id: int, **changes: object) -> Device:
        forbidden = set(changes) & {"id", "region", "zone", "weight"}
        if forbidden:
            raise RingBuilderError(f"set_info cannot change {', '.join(sorted(forbidden))}")
        # Addresses do not change placement: the ring can be written without a rebalance.
        return self._update(dev_id, placement_changed=False, **changes)

    def _update(self, dev_id: int, placement_changed: bool = True,
                **changes: object) -> Device:
        try:
            updated = self._device(dev_id).replace(**changes)
        except TypeError as err:
            raise RingBuilderError(str(err)) from None
        for other in self.active_devices:
            if other.id != dev_id and (other.ip, other.port, other.device) == \
                    (updated.ip, updated.port, updated.device):
                raise RingBuilderError(f"device {other.describe()} already uses "
                                       f"{updated.ip}:{updated.port}/{updated.device}")
        self.devices[dev_id] = updated
        if placement_changed:
            self._changed()
        else:
            self.version += 1
        return updated

    def _changed(self) -> None:
        self.devices_changed = True
        self.version += 1

    def search(self, predicate: Callable[[Device], bool]) -> list[Device]:
        return [d for d in sorted(self.devices.values(), key=lambda d: d.id) if predicate(d)]

    # ---- derived state --------------------------------------------------------------------

    @property
    def active_devices(self) -> list[Device]:
        return [d for d in self.devices.values() if d.id not in self.removed]

    def row_lengths(self) -> list[int]:
        whole = int(math.floor(self.replicas))
        lengths = [self.parts] * whole
        fraction = round((self.replicas - whole) * self.parts)
        if fraction:
            lengths.append(fraction)
        return lengths

    @property
    def total_slots(self) -> int:
        return sum(self.row_lengths())

    def replica_plan(self, tree: TierTree | None = None) -> tuple[TierTree, list[np.ndarray]]:
        tree = tree or build_tier_tree(self.active_devices)
        if not tree.device_ids.size:
            raise RingBuilderError("the builder has no devices")
        return tree, replica_plan.target_plan(tree, self.replicas, self.overload)

    def required_overload(self) -> float:
        tree = build_tier_tree(self.active_devices)
        return replica_plan.required_overload(
            replica_plan.weighted_plan(tree, self.replicas),
            replica_plan.dispersed_plan(tree, self.replicas))

    def parts_per_device(self) -> dict[int, int]:
        max_id = max(self.devices, default=0)
        if self.assignment is None:
            return {d: 0 for d in self.devices}
        held = stats.device_parts(self.assignment, max_id)
        return {d: int(held[d]) if d < len(held) else 0 for d in self.devices}

    def balance_per_device(self) -> dict[int, float]:
        held = np.zeros(max(self.devices, default=0) + 1, dtype=np.int64)
        for dev_id, count in self.parts_per_device().items():
            held[dev_id] = count
        weights = {d.id: d.weight for d in self.active_devices}
        weights.update({d: 0.0 for d in self.removed})
        return stats.balance_per_device(held, weights, self.total_slots)

    def get_balance(self) -> float:
        return stats.ring_balance(self.balance_per_device())

    def get_dispersion(self) -> float:
        if self.assignment is None or not self.active_devices:
            return 0.0
        tree, target = self.replica_plan(self._tree_including_removed())
        return stats.dispersion(self.assignment, tree, replica_plan.max_replicas(target))

    def dispersion_report(self) -> list[stats.TierDispersion]:
        if self.assignment is None:
            return []
        tree, target = self.replica_plan(self._tree_including_removed())
        return stats.dispersion_report(self.assignment, tree, replica_plan.max_replicas(target))

    def _tree_including_removed(self) -> TierTree:
        """Removed devices still hold partitions until a rebalance: give them weight 0."""
        devices = self.active_devices + [self.devices[d].replace(weight=0.0)
                                         for d in self.removed]
        return build_tier_tree(devices)

    def min_part_seconds_left(self, now: float | None = None) -> int:
        """Seconds until every partition may move again."""
        if self.assignment is None or not self.min_part_hours or not self.moved_at_hour.any():
            return 0
        now = time.time() if now is None else now
        newest_hour = int(self.moved_at_hour.max())
        # The last move is known to the second; older builders only know its hour.
        moved_at = self.last_move_time if self.last_move_time and \
            int(self.last_move_time // SECONDS_PER_HOUR) == newest_hour \
            else newest_hour * SECONDS_PER_HOUR
        return max(0, int(moved_at + self.min_part_hours * SECONDS_PER_HOUR - now))

    def pretend_min_part_hours_passed(self) -> None:
        self.moved_at_hour[:] = 0
        self.version += 1

    # ---- rebalance ------------------------------------------------------------------------

    def rebalance(self, seed: int | None = None, progress: Progress | None = None,
                  now: float | None = None) -> RebalanceResult:
        started = time.perf_counter()
        now = time.time() if now is None else now
        now_hour = int(now // SECONDS_PER_HOUR)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (1 << 63))
        rng = np.random.default_rng(seed)
        tree, target = self.replica_plan()
        limit = replica_plan.max_replicas(target)
        floor = replica_plan.min_replicas(tree, target)
        quota = replica_plan.slot_quotas(tree, target, self.total_slots)

        first_build = self.assignment is None
        assignment = self._resized_assignment()
        moved = np.zeros(self.parts, dtype=bool)
        movable = (now_hour - self.moved_at_hour.astype(np.int64)) >= self.min_part_hours
        movable |= self.moved_at_hour == 0

        self._lift_removed(assignment, tree, moved)
        if progress:
            progress("gathering", 0, 1)
        self._lift_dispersion(assignment, tree, limit, moved, movable, rng)
        moved |= (assignment == UNASSIGNED).any(axis=0)   # new slots count as moves too
        if progress:
            progress("gathering", 1, 1)
        slots_moved = int((assignment == UNASSIGNED).sum())
        over_quota = 0
        for pass_ in range(MAX_BALANCE_PASSES):
            # The first pass moves only surplus; later passes may also move a replica from a
            # device at quota to let a stuck one in (a chain of two moves).
            report, shed = place(assignment, tree, limit, floor, quota, movable & ~moved, rng,
                                 progress, movers_from_any_device=pass_ > 0)
            moved |= shed
            slots_moved += report.movers
            over_quota = report.over_quota if pass_ == 0 else over_quota
            if not report.surplus_left or (pass_ and not report.movers):
                break
        if first_build:
            moved[:] = True
        self.moved_at_hour[moved] = now_hour
        if moved.any():
            self.last_move_time = now
        self.assignment = assignment
        removed = sorted(self.removed)
        for dev_id in removed:
            del self.devices[dev_id]
        self.removed.clear()
        self.devices_changed = False
        self.last_seed = seed
        self.version += 1
        self.validate()     # what must hold, checked every time: never ship a broken ring
        return RebalanceResult(int(moved.sum()), slots_moved, removed, float(self.get_balance()),
                               float(stats.dispersion(assignment, tree, limit)), over_quota,
                               time.perf_counter() - started)

    def _resized_assignment(self) -> np.ndarray:
        lengths = self.row_lengths()
        assignment = np.full((len(lengths), self.parts), NO_SLOT, dtype=np.int32)
        for row, length in enumerate(lengths):
            assignment[row, :length] = UNASSIGNED
        if self.assignment is not None:
            rows = min(len(lengths), self.assignment.shape[0])
            old = self.assignment[:rows]
            keep = (old >= 0) & (assignment[:rows] == UNASSIGNED)
            assignment[:rows][keep] = old[keep]
        return assignment

    def _lift_removed(self, assignment: np.ndarray, tree: TierTree, moved: np.ndarray) -> None:
        known = np.zeros(max(int(assignment.max(initial=0)), int(tree.device_ids.max())) + 1,
                         dtype=bool)
        known[tree.device_ids] = True
        placed = assignment >= 0
        gone = placed.copy()
        gone[placed] = ~known[assignment[placed]]
        moved[np.nonzero(gone)[1]] = True
        assignment[gone] = UNASSIGNED

    def _lift_dispersion(self, assignment: np.ndarray, tree: TierTree,
                         limit: list[np.ndarray], moved: np.ndarray, movable: np.ndarray,
                         rng: np.random.Generator) -> None:
        """Lift one replica of each movable partition that is too concentrated in a tier."""
        parts = assignment.shape[1]
        for level in range(1, tree.levels):
            rows, cols = np.nonzero(assignment >= 0)
            nodes = tree.device_node[level][assignment[rows, cols]]
            keys = nodes * parts + cols
            unique, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
            # A tier whose limit is 0 (weight 0) is drained as surplus by the placement's
            # movers, which choose replicas that can go somewhere; only real crowding is lifted.
            level_limit = np.maximum(limit[level][unique // parts], 1)
            crowded = (counts > level_limit)[inverse]
            crowded &= movable[cols] & ~moved[cols]
            if not crowded.any():
                continue
            candidates = np.flatnonzero(crowded)
            candidates = candidates[rng.permutation(len(candidates))]
            _, first = np.unique(cols[candidates], return_index=True)
            chosen = candidates[first]
            assignment[rows[chosen], cols[chosen]] = UNASSIGNED
            moved[cols[chosen]] = True

    # ---- checks and output ----------------------------------------------------------------

    def validate(self) -> None:
        """Raise RingValidationError unless every slot is on a distinct, known device."""
        if self.assignment is None:
            raise RingValidationError("the ring has not been rebalanced yet")
        lengths = self.row_lengths()
        if self.assignment.shape != (len(lengths), self.parts):
            raise RingValidationError(f"assignment shape {self.assignment.shape} does not match "
                                      f"{self.replicas:g} replicas of {self.parts} partitions")
        for row, length in enumerate(lengths):
            values = self.assignment[row]
            if (values[:length] < 0).any():
                raise RingValidationError(f"replica row {row} has unassigned partitions")
            if (values[length:] != NO_SLOT).any():
                raise RingValidationError(f"replica row {row} is longer than {length}")
        known = np.zeros(int(self.assignment.max(initial=0)) + 1, dtype=bool)
        known[[d for d in self.devices if d < len(known)]] = True
        placed = self.assignment[self.assignment >= 0]
        if not known[placed].all():
            raise RingValidationError("partitions are assigned to devices the builder lacks")
        ordered = np.sort(self.assignment, axis=0)
        dupes = (ordered[1:] == ordered[:-1]) & (ordered[1:] >= 0)
        if dupes.any():
            part = int(np.flatnonzero(dupes.any(axis=0))[0])
            raise RingValidationError(f"partition {part} has two replicas on one device")

    def ring_data(self) -> RingData:
        if self.assignment is None:
            raise RingBuilderError("rebalance the builder before writing a ring")
        if self.devices_changed:
            raise RingBuilderError("devices changed since the last rebalance; rebalance first")
        max_id = max(self.devices, default=-1)
        devices: list[Device | None] = [None] * (max_id + 1)
        for device in self.devices.values():
            devices[device.id] = device
        rows = [self.assignment[row, :length].copy()
                for row, length in enumerate(self.row_lengths())]
        return RingData(devices, rows, self.part_power, self.version, self.id)

    def partitions_on(self, dev_ids: Iterable[int]) -> list[tuple[int, int]]:
        """(partition, replicas on the given devices), most first, as list_parts shows."""
        if self.assignment is None:
            return []
        wanted = np.zeros(max(int(self.assignment.max(initial=0)), max(self.devices, default=0))
                          + 1, dtype=bool)
        ids = [d for d in dev_ids if d < len(wanted)]
        wanted[ids] = True
        hits = np.where(self.assignment >= 0, wanted[self.assignment.clip(0)], False).sum(axis=0)
        parts = np.flatnonzero(hits)
        order = np.lexsort([parts, -hits[parts]])
        return [(int(parts[i]), int(hits[parts[i]])) for i in order]
