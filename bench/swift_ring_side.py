"""The OpenStack Swift side of bench/ring_bench.py; run by that script with the Swift venv's python.

It needs only the venv (Swift installed; no numpy, no ringstack imports). Two modes:

  python swift_ring_side.py build < spec.json
      Builds a ring with `swift.common.ring.RingBuilder` through the phases the spec lists
      (add devices / set weights, `pretend_min_part_hours_passed`, `rebalance(seed)`) and prints
      one JSON line per phase as soon as it finishes, so a caller that has to kill a slow run
      still gets the phases that completed. Each phase also dumps the assignment table (the
      replica rows, raw, native byte order) to a file so the caller can compare assignments with
      exactly the same code it uses for ringstack.
  python swift_ring_side.py lookup --ring PATH --swift-dir DIR [--seconds S]
      Loads `swift.common.ring.Ring(PATH)` (hash prefix/suffix from DIR/swift.conf) and counts
      `get_nodes('a', 'c', name)` calls per second over 65536 varying names.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from lookup_timing import time_lookups  # bench/ is on sys.path when run as a script


def _log(message: str) -> None:
    print(f"[swift] {message}", file=sys.stderr, flush=True)


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(record, separators=(",", ":")), flush=True)


def build(spec: dict[str, Any]) -> None:
    """Run the spec's phases; one JSON line per phase on stdout."""
    import swift
    from swift.common.ring import RingBuilder

    builder = RingBuilder(spec["part_power"], spec["replicas"], spec["min_part_hours"])
    out_dir = spec["out_dir"]
    for index, phase in enumerate(spec["phases"]):
        name = phase["name"]
        for dev in phase.get("add", []):
            builder.add_dev(dict(dev))
        for dev_id, weight in phase.get("set_weights", []):
            builder.set_dev_weight(dev_id, weight)
        if index:
            builder.pretend_min_part_hours_passed()
        _log(f"{name}: rebalancing {len([d for d in builder.devs if d])} devices, "
             f"part power {spec['part_power']}")
        started = time.perf_counter()
        changed, balance, removed = builder.rebalance(seed=spec["seed"])
        seconds = time.perf_counter() - started
        _log(f"{name}: rebalance took {seconds:.2f} s")
        rows = builder._replica2part2dev   # list of array('H' or 'I'), one per replica
        table = os.path.join(out_dir, f"swift-{name}.bin")
        with open(table, "wb") as handle:
            for row in rows:
                row.tofile(handle)
        record: dict[str, Any] = {
            "phase": name,
            "swift_version": swift.__version__,
            "seconds": seconds,
            "changed_slots_rowwise": changed,
            "balance": builder.get_balance(),
            "dispersion": builder.dispersion,
            "removed": removed,
            "table": table,
            "itemsize": rows[0].itemsize,
            "rows": len(rows),
            "devices": [{"id": d["id"], "region": d["region"], "zone": d["zone"],
                         "ip": d["ip"], "weight": d["weight"], "parts": d["parts"]}
                        for d in builder.devs if d],
        }
        if index == 0 and spec.get("ring_path"):
            started = time.perf_counter()
            builder.get_ring().save(spec["ring_path"])
            record["ring_write_s"] = time.perf_counter() - started
            record["ring_bytes"] = os.path.getsize(spec["ring_path"])
        _emit(record)


def lookup(ring_path: str, swift_dir: str, seconds: float) -> None:
    """Time Ring load and get_nodes() with varying names; print one JSON line."""
    from swift.common.ring import Ring
    from swift.common.utils import set_swift_dir

    set_swift_dir(swift_dir)   # swift.conf there holds the hash prefix/suffix
    started = time.perf_counter()
    ring = Ring(ring_path)
    load_s = time.perf_counter() - started
    _emit(time_lookups(ring, ring_path, load_s, seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    modes.add_parser("build", help="read a JSON spec on stdin, print a JSON line per phase")
    look = modes.add_parser("lookup", help="time Ring load and get_nodes()")
    look.add_argument("--ring", required=True)
    look.add_argument("--swift-dir", required=True)
    look.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    if args.mode == "build":
        build(json.load(sys.stdin))
    else:
        lookup(args.ring, args.swift_dir, args.seconds)


if __name__ == "__main__":
    main()
