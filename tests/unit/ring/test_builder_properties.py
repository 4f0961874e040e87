"""Property tests of RingBuilder.rebalance on random topologies (hypothesis).

Invariants checked after every rebalance: every slot assigned, never two replicas of a
partition on one device, zero dispersion against the replica plan, every device within one slot
of its quota, weights respected where dispersion allows, determinism for a seed, the
min_part_hours rule, and moves close to the minimum the change needs. An independent naive
oracle checks dispersion where the answer is plain: each partition uses as many distinct zones
(in a one-region cluster) and devices as it can.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ring import plan
from ring.builder import RingBuilder
from ring.errors import RingBuilderError
from ring.tiers import build_tier_tree

PROPERTY_SETTINGS = settings(max_examples=30, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


@st.composite
def topologies(draw, regions=(1, 3), zones=(1, 4), hosts=(1, 3), disks=(1, 3),
               zero_weight=True):
    """A list of device field dicts: regions x zones x hosts x disks with random weights."""
    weights = st.sampled_from([0.0, 50.0, 100.0, 100.0, 100.0, 200.0, 300.0] if zero_weight
                              else [50.0, 100.0, 100.0, 200.0, 300.0])
    devices = []
    for region in range(1, draw(st.integers(*regions)) + 1):
        for zone in range(1, draw(st.integers(*zones)) + 1):
            for host in range(1, draw(st.integers(*hosts)) + 1):
                for disk in range(draw(st.integers(*disks))):
                    devices.append(dict(region=region, zone=zone,
                                        ip=f"127.{region}.{zone}.{host}", port=6200,
                                        device=f"sd{chr(97 + disk)}", weight=draw(weights)))
    return devices


def build(devices, replicas, part_power=7, seed=1, overload=None):
    builder = RingBuilder(part_power, replicas, 1, overload)
    for fields in devices:
        builder.add_device(**fields)
    builder.rebalance(seed=seed)
    return builder


def quotas(builder):
    tree, target = builder.replica_plan()
    quota = plan.slot_quotas(tree, target, builder.total_slots)[-1]
    return dict(zip(tree.device_ids.tolist(), quota.tolist(), strict=True))


def check_invariants(builder):
    builder.validate()
    assignment = builder.assignment
    for part in range(builder.parts):
        devs = assignment[:, part][assignment[:, part] >= 0]
        assert len(set(devs.tolist())) == len(devs), f"partition {part} repeats a device"
    assert builder.get_dispersion() == 0.0
    held = builder.parts_per_device()
    for dev_id, quota in quotas(builder).items():
        assert abs(held[dev_id] - quota) <= 1, (dev_id, held[dev_id], quota)
        if builder.devices[dev_id].weight == 0:
            assert held[dev_id] == 0


def replicas_fit(devices, replicas):
    return sum(1 for d in devices if d["weight"] > 0) >= np.ceil(replicas)


@PROPERTY_SETTINGS
@given(devices=topologies(), replicas=st.sampled_from([1, 2, 3, 3, 2.5, 4]))
def test_rebalance_invariants(devices, replicas):
    assume(replicas_fit(devices, replicas))
    check_invariants(build(devices, replicas))


@PROPERTY_SETTINGS
@given(devices=topologies(regions=(1, 1), zones=(1, 5), zero_weight=False),
       replicas=st.sampled_from([2, 3, 4]))
def test_oracle_distinct_zones_and_devices(devices, replicas):
    """Naive oracle: in one region, a partition spans min(replicas, zones) zones."""
    assume(replicas_fit(devices, replicas))
    builder = build(devices, replicas)
    zones = {d["zone"] for d in devices}
    zone_of = {d.id: d.zone for d in builder.devices.values()}
    for part in range(builder.parts):
        devs = builder.assignment[:, part].tolist()
        assert len(set(devs)) == replicas
        assert len({zone_of[d] for d in devs}) == min(replicas, len(zones))


@PROPERTY_SETTINGS
@given(devices=topologies(zero_weight=False), replicas=st.sampled_from([2, 3]))
def test_weights_decide_where_dispersion_allows(devices, replicas):
    """Where weight alone is a valid plan (no tier needs more than its devices can hold and
    dispersion asks for nothing else), every device is within one slot of its weight's share."""
    assume(replicas_fit(devices, replicas))
    builder = build(devices, replicas)
    tree = build_tier_tree(list(builder.devices.values()))
    weights = tree.weight[-1]
    pure = replicas * weights / weights.sum()
    assume(np.allclose(plan.weighted_plan(tree, replicas)[-1], pure))
    assume(builder.required_overload() == 0)
    held = builder.parts_per_device()
    # Quotas are rounded level by level (so every tier's total stays feasible), which can
    # leave a device up to a slot per level from its exact share; never more.
    for dev_id, share in zip(tree.device_ids.tolist(), pure.tolist(), strict=True):
        assert abs(held[dev_id] - share * builder.parts) <= tree.levels - 1


@PROPERTY_SETTINGS
@given(devices=topologies(zero_weight=False), replicas=st.sampled_from([2, 3]),
       seed=st.integers(0, 2**32))
def test_deterministic_for_a_seed(devices, replicas, seed):
    assume(replicas_fit(devices, replicas))
    first = build(devices, replicas, seed=seed)
    second = build(devices, replicas, seed=seed)
    assert np.array_equal(first.assignment, second.assignment)


@PROPERTY_SETTINGS
@given(devices=topologies(zero_weight=False), replicas=st.sampled_from([2, 3]),
       change=st.sampled_from(["add", "weight", "zero", "remove"]),
       pick=st.integers(0, 10**6))
def test_change_moves_little_and_respects_min_part_hours(devices, replicas, change, pick):
    assume(replicas_fit(devices, replicas) and len(devices) > replicas + 1)
    builder = build(devices, replicas, part_power=7)
    before = builder.assignment.copy()
    victim = sorted(builder.devices)[pick % len(builder.devices)]
    device = builder.devices[victim]
    if change == "add":
        builder.add_device(region=device.region, zone=device.zone, ip=device.ip, port=6300,
                           device="new", weight=device.weight)
    elif change == "weight":
        builder.set_weight(victim, device.weight * 2)
    elif change == "zero":
        builder.set_weight(victim, 0)
    else:
        builder.remove_device(victim)
    try:
        builder.replica_plan()
    except RingBuilderError:
        assume(False)

    # Within min_part_hours nothing may move but replicas of a removed device.
    blocked = builder.rebalance(seed=2)
    moved_slots = (blocked_assignment := builder.assignment) != before[:, :]
    if change == "remove":
        assert set(before[moved_slots].tolist()) <= {victim}
    else:
        assert not moved_slots.any() and blocked.parts_moved == 0
    assert np.array_equal(blocked_assignment, builder.assignment)

    builder.pretend_min_part_hours_passed()
    start = builder.assignment.copy()
    held_start = builder.parts_per_device()
    result = builder.rebalance(seed=3)
    builder.validate()
    changed = builder.assignment != start
    on_removed = np.isin(start, [victim]) if change == "remove" else np.zeros_like(changed)
    # One replica per partition per min_part_hours, except off a removed device.
    assert ((changed & ~on_removed).sum(axis=0) <= 1).all()
    assert result.slots_moved >= int(changed.sum())
    # A partition that already moved a replica keeps its others for one period, so a few
    # replicas may wait; within a few more periods the ring has fully converged.
    settled = 0
    for seed in (4, 5, 6):
        builder.pretend_min_part_hours_passed()
        settled += builder.rebalance(seed=seed).slots_moved
        if builder.get_dispersion() == 0 and builder.get_balance() < 100:
            break
    check_invariants(builder)
    # Moves: at least what the new quotas need (met to within a slot per device), and not
    # much more, over both rounds.
    minimum = sum(max(0, q - held_start.get(d, 0)) for d, q in quotas(builder).items())
    slots = int((builder.assignment != start).sum())
    assert slots >= minimum - len(builder.devices)
    assert result.slots_moved + settled <= minimum * 1.5 + 16, (slots, minimum)


def test_more_replicas_than_devices_is_refused():
    builder = RingBuilder(6, 3, 1)
    for n in range(2):
        builder.add_device(region=1, zone=n, ip="127.0.0.1", port=6200 + n, device="sdb",
                           weight=100)
    try:
        builder.rebalance()
    except RingBuilderError as err:
        assert "3 replicas need at least 3 devices" in str(err)
    else:
        raise AssertionError("rebalance should refuse 3 replicas on 2 devices")


def test_overload_trades_dispersion_for_balance():
    """A zone with half the weight: unlimited overload spreads replicas over zones; overload 0
    keeps weights and lets some partitions put two replicas in the heavy zone."""
    devices = [dict(region=1, zone=z, ip=f"127.0.0.{z}", port=6200, device=f"d{i}",
                    weight=300 if z == 1 else 100)
               for z in (1, 2, 3, 4) for i in range(2)]
    spread = build(devices, 3, part_power=8)
    weighted = build(devices, 3, part_power=8, overload=0.0)
    assert spread.get_dispersion() == 0.0 and weighted.get_dispersion() == 0.0
    assert spread.required_overload() > 0
    tree = build_tier_tree(list(spread.devices.values()))
    zone_of = tree.device_node[2]
    heavy = tree.keys[2].index((1, 1))

    def crowded(builder):
        zones = zone_of[builder.assignment]
        return int(((zones == heavy).sum(axis=0) > 1).sum())

    assert crowded(spread) == 0
    assert crowded(weighted) > 0
    assert weighted.get_balance() < spread.get_balance()
