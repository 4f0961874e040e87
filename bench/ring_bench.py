"""Benchmark ringstack's ring builder and ring reader against OpenStack Swift's.

Run from the repository root:

    PYTHONPATH=. python bench/ring_bench.py [--scenario small|large|all] [--quick]

`--scenario small` is "pp16", `large` is "pp20", `all` (default) both; `--quick` runs a part
power 12 smoke run of the pp16 topology instead (well under a minute). Progress goes to stderr;
the last line on stdout is one JSON object with every figure.

Swift (2.38.x) is used from the venv given by `--swift-venv` (default /tmp/swiftsaio/venv). If
it cannot import swift, the script runs `bash ../shared/reference/saio.sh install` from the
repository root (unless `--no-install`); if Swift is still missing the Swift side is skipped and
reported as `"swift": null`. Swift runs in its own process (bench/swift_ring_side.py) under a
per-scenario time cap (`--swift-cap`, default 900 s); phases it did not finish are reported as
`{"timeout": true}`.

Scenarios (identical topologies for both tools; addresses 127.R.Z.S, port 6200, 10 devices per
server, as in shared/reference/ring_bench.py; min_part_hours 1, seed 1):
- pp16: part power 16, 3 replicas, 100 devices in 10 zones (1 region), weight 100 each.
- pp20: part power 20, 3 replicas, 1000 devices in 2 regions x 10 zones, device weights cycling
  100, 200, 300, 400 within each zone (so every zone has the same total).
Phases per scenario, each ending in `rebalance(seed=1)`:
- initial:    the first rebalance of the empty builder;
- add_10pct:  10% more devices on new servers, evenly over the zones (weight cycle continued),
              then `pretend_min_part_hours_passed()`;
- drain_zone: weight 0 for every device in r1z1, then `pretend_min_part_hours_passed()`.

Figures per tool and phase (the same code computes them from both tools' assignment tables):
- seconds: wall time of the rebalance call alone;
- balance: the tool's own `get_balance()` (largest |percent| a device is off its weight's share);
- dispersion: the tool's own figure (ringstack `get_dispersion()`: % of partitions spread more
  narrowly than its replica plan allows; Swift `builder.dispersion`: % of part-replicas at risk);
  the two definitions differ, so also:
- zone_shared_pct / server_shared_pct: % of partitions with two replicas in one (region, zone) /
  on one server (ip); one_region_pct (2 regions only): % of partitions inside a single region;
- parts_moved: partitions with at least one replica on a new device; slots_moved: replica slots
  now on a device that did not hold that partition before (replica row order ignored);
  slots_changed_rowwise: slots whose device id changed in the same replica row (what Swift's
  `rebalance()[0]` counts); native_*: each tool's own return values;
- min_moves: sum over devices of max(0, slots_after - slots_before) from the tool's own final
  assignment (every slot a device gained had to move there); moved_ratio = slots_moved /
  min_moves (1.0 is optimal);
- weight_min_moves: sum over devices of max(0, round(total_slots * weight / total_weight) -
  slots_before), the moves the new weights alone call for; weight_moved_ratio likewise;
- slots_on_zero_weight: slots still on weight-0 devices after the phase.
Speedups: speedup_initial/_add/_drain = Swift seconds / ringstack seconds (rebalance);
lookups speedup = ringstack lookups/s / Swift lookups/s.

Lookups (ring written after the initial rebalance; each reader in a fresh process): ringstack
`Ring(path, HashSecrets(b"prefix", b"suffix"))`, Swift `Ring(path)` with a swift.conf holding the
same prefix/suffix; `get_nodes("a", "c", name)` over 65536 names for ~2 s. Reported: load_s,
ring_bytes, write_s, lookups_per_s, and part_checksum (CRC of the first 4096 names' partitions;
both tools hash paths the same way, so the checksums must agree).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from lookup_timing import time_lookups  # bench/ is on sys.path when run as a script

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
SWIFT_SIDE = BENCH_DIR / "swift_ring_side.py"
SAIO_SCRIPT = Path("..") / "shared" / "reference" / "saio.sh"   # relative to REPO_ROOT
DEFAULT_SWIFT_VENV = "/tmp/swiftsaio/venv"
SEED = 1
MIN_PART_HOURS = 1
PORT = 6200
DEVS_PER_SERVER = 10
GROWTH = 0.10
DRAIN_ZONE = (1, 1)
HASH_PREFIX, HASH_SUFFIX = "prefix", "suffix"
PHASES = ("initial", "add_10pct", "drain_zone")
SPEEDUP_NAMES = {"initial": "initial", "add_10pct": "add", "drain_zone": "drain"}
SWIFT_CONF = f"""[swift-hash]
swift_hash_path_prefix = {HASH_PREFIX}
swift_hash_path_suffix = {HASH_SUFFIX}

[storage-policy:0]
name = gold
default = yes
"""
DEFINITIONS = {
    "seconds": "wall time of rebalance(seed=1) alone",
    "dispersion": "each tool's own figure: ringstack % of partitions, Swift % of part-replicas",
    "slots_moved": "replica slots now on a device that did not hold that partition before",
    "parts_moved": "partitions with at least one slot moved",
    "slots_changed_rowwise": "slots whose device changed in the same replica row (Swift's "
                             "rebalance()[0])",
    "min_moves": "sum over devices of max(0, slots_after - slots_before), own final assignment",
    "weight_min_moves": "sum over devices of max(0, round(total_slots*w/W) - slots_before)",
    "moved_ratio": "slots_moved / min_moves",
    "weight_moved_ratio": "slots_moved / weight_min_moves",
    "speedup_initial|add|drain": "Swift seconds / ringstack seconds",
    "lookups.speedup": "ringstack lookups_per_s / Swift lookups_per_s",
}


def log(message: str) -> None:
    print(f"[ring_bench] {message}", file=sys.stderr, flush=True)


# ---- topology ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    part_power: int
    replicas: int
    regions: int
    zones_per_region: int
    devs_per_zone: int
    weights: tuple[float, ...]    # cycled over the devices of each zone

    @property
    def zones(self) -> int:
        return self.regions * self.zones_per_region

    @property
    def devices(self) -> int:
        return self.zones * self.devs_per_zone

    def describe(self) -> dict[str, Any]:
        return {"part_power": self.part_power, "replicas": self.replicas,
                "regions": self.regions, "zones": self.zones, "devices": self.devices,
                "added_devices": self.zones * self.added_per_zone,
                "weights": list(self.weights), "drained_zone": "r{}z{}".format(*DRAIN_ZONE),
                "min_part_hours": MIN_PART_HOURS, "seed": SEED}

    @property
    def added_per_zone(self) -> int:
        return max(1, round(self.devices * GROWTH / self.zones))


SCENARIOS = {
    "pp16": Scenario("pp16", 16, 3, 1, 10, 10, (100.0,)),
    "pp20": Scenario("pp20", 20, 3, 2, 10, 50, (100.0, 200.0, 300.0, 400.0)),
}
QUICK = Scenario("pp12", 12, 3, 1, 10, 10, (100.0,))
SCENARIO_CHOICES = {"small": ["pp16"], "large": ["pp20"], "all": ["pp16", "pp20"]}


def _zone_devices(s: Scenario, region: int, zone: int, first: int, count: int,
                  first_server: int, next_id: int) -> list[dict[str, Any]]:
    """`count` devices of one zone, starting at the zone's device index `first`, on servers
    numbered from `first_server` (10 devices per server)."""
    devices = []
    for offset in range(count):
        index = first + offset
        server = first_server + offset // DEVS_PER_SERVER
        dev_id = next_id + offset
        devices.append({"id": dev_id, "region": region, "zone": zone,
                        "ip": f"127.{region}.{zone}.{server}", "port": PORT,
                        "device": f"d{dev_id}", "weight": s.weights[index % len(s.weights)]})
    return devices


def topology(s: Scenario) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(initial devices, devices added later) as device dicts with explicit ids."""
    initial: list[dict[str, Any]] = []
    added: list[dict[str, Any]] = []
    servers = math.ceil(s.devs_per_zone / DEVS_PER_SERVER)
    zones = [(r, z) for r in range(1, s.regions + 1) for z in range(1, s.zones_per_region + 1)]
    for region, zone in zones:
        initial += _zone_devices(s, region, zone, 0, s.devs_per_zone, 1, len(initial))
    for region, zone in zones:
        added += _zone_devices(s, region, zone, s.devs_per_zone, s.added_per_zone,
                               servers + 1, len(initial) + len(added))
    return initial, added


def phase_specs(s: Scenario) -> list[dict[str, Any]]:
    initial, added = topology(s)
    drained = [[d["id"], 0.0] for d in initial + added
               if (d["region"], d["zone"]) == DRAIN_ZONE]
    return [{"name": "initial", "add": initial},
            {"name": "add_10pct", "add": added},
            {"name": "drain_zone", "set_weights": drained}]


# ---- running the builders ---------------------------------------------------------------------

@dataclasses.dataclass
class PhaseRun:
    """One rebalance of one tool: its timing, own figures, and resulting assignment."""

    name: str
    seconds: float
    balance: float
    dispersion: float
    table: np.ndarray                 # (replicas, partitions) device ids
    devices: dict[int, dict[str, Any]]   # id -> region, zone, ip, weight
    native: dict[str, Any]


def run_ringstack(s: Scenario, ring_path: str) -> tuple[list[PhaseRun], dict[str, Any]]:
    """Every phase with ringstack's RingBuilder; writes the initial ring to ring_path."""
    from ring.builder import RingBuilder

    builder = RingBuilder(s.part_power, s.replicas, MIN_PART_HOURS)
    runs: list[PhaseRun] = []
    ring_info: dict[str, Any] = {}
    for index, spec in enumerate(phase_specs(s)):
        for dev in spec.get("add", []):
            builder.add_device(**dev)
        for dev_id, weight in spec.get("set_weights", []):
            builder.set_weight(dev_id, weight)
        if index:
            builder.pretend_min_part_hours_passed()
        log(f"{s.name} ringstack {spec['name']}: rebalancing {len(builder.devices)} devices")
        started = time.perf_counter()
        result = builder.rebalance(seed=SEED)
        seconds = time.perf_counter() - started
        log(f"{s.name} ringstack {spec['name']}: {seconds:.2f} s")
        assert builder.assignment is not None
        devices = {d.id: {"region": d.region, "zone": d.zone, "ip": d.ip, "weight": d.weight}
                   for d in builder.devices.values()}
        runs.append(PhaseRun(spec["name"], seconds, builder.get_balance(),
                             builder.get_dispersion(), builder.assignment.copy(), devices,
                             {"native_parts_moved": result.parts_moved,
                              "native_slots_moved": result.slots_moved,
                              "native_over_quota_slots": result.over_quota_slots,
                              "native_seconds": round(result.seconds, 3)}))
        if index == 0:
            started = time.perf_counter()
            builder.ring_data().save(ring_path)
            ring_info = {"write_s": round(time.perf_counter() - started, 4),
                         "ring_bytes": os.path.getsize(ring_path)}
    return runs, ring_info


def swift_python(venv: str, install: bool) -> tuple[str | None, str]:
    """The Swift venv's python if it can import Swift (installing it if allowed), and why not."""
    python = os.path.join(venv, "bin", "python")

    def usable() -> bool:
        if not os.access(python, os.X_OK):
            return False
        check = subprocess.run([python, "-c", "import swift.common.ring"],
                               capture_output=True, check=False)
        return check.returncode == 0

    if usable():
        return python, ""
    if not install:
        return None, f"no usable Swift in {venv} and --no-install given"
    script = REPO_ROOT / SAIO_SCRIPT
    if not script.exists():
        return None, f"no usable Swift in {venv} and no installer at {script.resolve()}"
    log(f"Swift not found in {venv}: running bash {SAIO_SCRIPT} install (takes a few minutes)")
    env = dict(os.environ, SAIO_VENV=venv)
    try:
        done = subprocess.run(["bash", str(SAIO_SCRIPT), "install"], cwd=REPO_ROOT, env=env,
                              stdout=sys.stderr, check=False, timeout=1800)
        failed = done.returncode != 0
    except subprocess.TimeoutExpired:
        failed = True
    if failed or not usable():
        return None, f"installing Swift with {SAIO_SCRIPT} failed; Swift side skipped"
    return python, ""


def run_swift(s: Scenario, python: str, workdir: str, ring_path: str,
              cap: float) -> tuple[list[PhaseRun], dict[str, Any], str | None]:
    """Every phase with Swift's RingBuilder in the venv; (runs, ring info, error or None)."""
    spec = {"part_power": s.part_power, "replicas": s.replicas, "seed": SEED,
            "min_part_hours": MIN_PART_HOURS, "out_dir": workdir, "ring_path": ring_path,
            "phases": phase_specs(s)}
    proc = subprocess.Popen([python, str(SWIFT_SIDE), "build"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    error = None
    try:
        out, _ = proc.communicate(json.dumps(spec), timeout=cap)
        if proc.returncode:
            error = f"swift side exited with status {proc.returncode}"
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        error = "timeout"
        log(f"{s.name} swift: stopped after the {cap:.0f} s cap")
    runs: list[PhaseRun] = []
    ring_info: dict[str, Any] = {}
    for line in out.splitlines():
        if not line.startswith("{"):
            continue
        rec = json.loads(line)
        dtype = np.uint16 if rec["itemsize"] == 2 else np.uint32
        table = np.fromfile(rec["table"], dtype=dtype).reshape(rec["rows"], -1)
        os.unlink(rec["table"])
        devices = {d["id"]: {k: d[k] for k in ("region", "zone", "ip", "weight")}
                   for d in rec["devices"]}
        runs.append(PhaseRun(rec["phase"], rec["seconds"], rec["balance"], rec["dispersion"],
                             table.astype(np.int64), devices,
                             {"native_rebalance_return_0": rec["changed_slots_rowwise"],
                              "swift_version": rec["swift_version"]}))
        if "ring_bytes" in rec:
            ring_info = {"write_s": round(rec["ring_write_s"], 4),
                         "ring_bytes": rec["ring_bytes"]}
    if error == "timeout" and len(runs) == len(PHASES):
        error = None      # the cap struck after the last phase was reported
    return runs, ring_info, error


# ---- figures ----------------------------------------------------------------------------------

def _shared_pct(keys: np.ndarray) -> float:
    """% of partitions (columns) in which two replicas have the same key."""
    ordered = np.sort(keys, axis=0)
    return float(100.0 * (ordered[1:] == ordered[:-1]).any(axis=0).mean())


def _counts(table: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(table.ravel(), minlength=size)


def phase_figures(run: PhaseRun, before: PhaseRun | None, regions: int) -> dict[str, Any]:
    """The figures of one phase, computed the same way for both tools."""
    table = run.table.astype(np.int64)
    if (table < 0).any():
        raise ValueError(f"{run.name}: the assignment has empty slots")
    size = max(max(run.devices), int(table.max())) + 1
    region = np.zeros(size, dtype=np.int64)
    zone = np.zeros(size, dtype=np.int64)
    server = np.zeros(size, dtype=np.int64)
    weight = np.zeros(size, dtype=np.float64)
    ips: dict[str, int] = {}
    for dev_id, dev in run.devices.items():
        region[dev_id], zone[dev_id], weight[dev_id] = dev["region"], dev["zone"], dev["weight"]
        server[dev_id] = ips.setdefault(dev["ip"], len(ips))
    after = _counts(table, size)
    fig: dict[str, Any] = {
        "seconds": round(run.seconds, 3),
        "balance": round(run.balance, 4),
        "dispersion": round(run.dispersion, 4),
        "zone_shared_pct": round(_shared_pct(region[table] * 1_000_000 + zone[table]), 4),
        "server_shared_pct": round(_shared_pct(server[table]), 4),
        "slots_on_zero_weight": int(after[weight <= 0].sum()),
    }
    if regions > 1:
        regions_of = region[table]
        fig["one_region_pct"] = round(
            float(100.0 * (regions_of == regions_of[0]).all(axis=0).mean()), 4)
    if before is not None:
        old = before.table.astype(np.int64)
        new_slot = np.stack([~(table[r] == old).any(axis=0) for r in range(table.shape[0])])
        slots_before = np.zeros(size, dtype=np.int64)
        counted = _counts(old, size)
        slots_before[:counted.size] = counted[:size]
        min_moves = int(np.maximum(0, after - slots_before).sum())
        wanted = np.rint(table.size * weight / weight.sum()).astype(np.int64)
        weight_min = int(np.maximum(0, wanted - slots_before).sum())
        slots_moved = int(new_slot.sum())
        fig.update({
            "parts_moved": int(new_slot.any(axis=0).sum()),
            "slots_moved": slots_moved,
            "slots_changed_rowwise": int((table != old).sum()),
            "min_moves": min_moves,
            "moved_ratio": round(slots_moved / min_moves, 4) if min_moves else None,
            "weight_min_moves": weight_min,
            "weight_moved_ratio": round(slots_moved / weight_min, 4) if weight_min else None,
        })
    fig.update(run.native)
    return fig


def tool_figures(runs: list[PhaseRun], regions: int, error: str | None,
                 cap: float) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for index, run in enumerate(runs):
        figures[run.name] = phase_figures(run, runs[index - 1] if index else None, regions)
    for name in PHASES[len(runs):]:
        figures[name] = ({"timeout": True, "cap_s": cap} if error == "timeout"
                         else {"error": error or "not run"})
    return figures


# ---- lookups ----------------------------------------------------------------------------------

def ringstack_lookup(ring_path: str, seconds: float) -> dict[str, Any]:
    """Time ringstack Ring load and get_nodes() (run in a fresh process by --lookup-ring)."""
    from ring import HashSecrets, Ring

    started = time.perf_counter()
    ring = Ring(ring_path, HashSecrets(HASH_PREFIX.encode(), HASH_SUFFIX.encode()))
    load_s = time.perf_counter() - started
    return time_lookups(ring, ring_path, load_s, seconds)


def _json_subprocess(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any] | None:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False,
                          timeout=300)
    if done.returncode:
        log(f"{cmd[1]} failed: {done.stderr.strip()[-500:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def _tidy_lookup(result: dict[str, Any] | None, ring_info: dict[str, Any]) -> dict[str, Any]:
    if result is None:
        return {"error": "lookup run failed"}
    return {"load_s": round(result["load_s"], 4), "ring_bytes": result["ring_bytes"],
            "write_s": ring_info.get("write_s"),
            "lookups_per_s": round(result["lookups_per_s"]), "calls": result["calls"],
            "replicas_per_lookup": result["replicas_per_lookup"],
            "part_checksum": result["part_checksum"]}


def lookups(ours_path: str, ours_ring: dict[str, Any], swift: tuple[str, str, str] | None,
            swift_ring: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Both readers, each in a fresh process; swift = (python, ring path, swift dir)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    ours = _tidy_lookup(_json_subprocess(
        [sys.executable, str(Path(__file__).resolve()), "--lookup-ring", ours_path,
         "--lookup-seconds", str(seconds)], env), ours_ring)
    out: dict[str, Any] = {"ringstack": ours, "swift": None}
    if swift is not None and swift_ring:
        python, ring_path, swift_dir = swift
        theirs = _tidy_lookup(_json_subprocess(
            [python, str(SWIFT_SIDE), "lookup", "--ring", ring_path, "--swift-dir", swift_dir,
             "--seconds", str(seconds)]), swift_ring)
        out["swift"] = theirs
        if "lookups_per_s" in ours and "lookups_per_s" in theirs:
            out["speedup"] = round(ours["lookups_per_s"] / theirs["lookups_per_s"], 2)
            out["same_partitions"] = ours["part_checksum"] == theirs["part_checksum"]
    return out


# ---- main -------------------------------------------------------------------------------------

def bench_scenario(s: Scenario, workdir: str, python: str | None, swift_dir: str,
                   cap: float, lookup_seconds: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """(scenario figures, lookup figures) for one scenario."""
    ours_ring_path = os.path.join(workdir, f"{s.name}.ring")
    swift_ring_path = os.path.join(workdir, f"{s.name}.ring.gz")
    runs, ours_ring = run_ringstack(s, ours_ring_path)
    result: dict[str, Any] = {"topology": s.describe(),
                              "ringstack": tool_figures(runs, s.regions, None, cap),
                              "swift": None}
    swift_ring: dict[str, Any] = {}
    if python is not None:
        swift_runs, swift_ring, error = run_swift(s, python, workdir, swift_ring_path, cap)
        result["swift"] = tool_figures(swift_runs, s.regions, error, cap)
        if error:
            result["swift_error"] = error
        for ours_run, theirs in zip(runs, swift_runs, strict=False):   # Swift may stop early
            key = f"speedup_{SPEEDUP_NAMES[ours_run.name]}"
            result[key] = round(theirs.seconds / ours_run.seconds, 2)
    swift = (python, swift_ring_path, swift_dir) if python else None
    log(f"{s.name}: timing lookups")
    return result, lookups(ours_ring_path, ours_ring, swift, swift_ring, lookup_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Benchmark ringstack's ring builder/reader against OpenStack Swift's.")
    parser.add_argument("--scenario", choices=sorted(SCENARIO_CHOICES), default="all",
                        help="small = pp16, large = pp20, all = both (default)")
    parser.add_argument("--quick", action="store_true",
                        help="part power 12 smoke run of the pp16 topology")
    parser.add_argument("--swift-venv", default=DEFAULT_SWIFT_VENV)
    parser.add_argument("--no-install", action="store_true",
                        help="do not install Swift when the venv lacks it; skip the Swift side")
    parser.add_argument("--swift-cap", type=float, default=900.0,
                        help="seconds allowed for the Swift side of one scenario")
    parser.add_argument("--lookup-seconds", type=float, default=None,
                        help="seconds of get_nodes() calls per reader (default 2, quick 0.5)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--lookup-ring", help=argparse.SUPPRESS)   # internal: child process
    args = parser.parse_args()

    if args.lookup_ring:
        print(json.dumps(ringstack_lookup(args.lookup_ring, args.lookup_seconds or 2.0)))
        return
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    scenarios = [QUICK] if args.quick else [SCENARIOS[n] for n in SCENARIO_CHOICES[args.scenario]]
    lookup_seconds = args.lookup_seconds or (0.5 if args.quick else 2.0)
    python, why = swift_python(args.swift_venv, not args.no_install)
    if python is None:
        log(f"Swift side skipped: {why}")
    workdir = tempfile.mkdtemp(prefix="ring_bench-")
    swift_dir = os.path.join(workdir, "swift")
    os.makedirs(swift_dir)
    Path(swift_dir, "swift.conf").write_text(SWIFT_CONF)
    output: dict[str, Any] = {
        "bench": "ring", "quick": args.quick,
        "env": {"python": platform.python_version(), "numpy": np.__version__,
                "cpus": os.cpu_count(), "swift_python": python, "swift_cap_s": args.swift_cap,
                "lookup_seconds": lookup_seconds},
        "definitions": DEFINITIONS, "scenarios": {}, "lookups": {}}
    if python is None:
        output["swift_skipped"] = why
    try:
        for s in scenarios:
            figures, looked = bench_scenario(s, workdir, python, swift_dir, args.swift_cap,
                                             lookup_seconds)
            output["scenarios"][s.name] = figures
            output["lookups"][s.name] = looked
    finally:
        if args.keep:
            log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    swift_runs = [f["swift"] for f in output["scenarios"].values() if f["swift"]]
    for figures in swift_runs:
        version = figures.get("initial", {}).get("swift_version")
        if version:
            output["env"]["swift"] = version
    print(json.dumps(output, separators=(",", ":")))


if __name__ == "__main__":
    main()
