"""`ringstack-recon`: cluster health from every storage node's recon endpoint, and dispersion.

    ringstack-recon [--swift-dir DIR] [--json] [--timeout S]
    ringstack-recon dispersion --account AUTH_x [--sample N] [--swift-dir DIR] [--json]

The first form asks every object server in the object ring (`GET /recon/<metric>`, served
by `storage_node.recon.ReconEndpoint`) and prints one table per subject: replication (object,
container, account: last pass time, when it last finished, partitions behind), the object
auditor, the expirer, async pendings, quarantined items, disk use per device, and the md5 of
every ring file, compared across nodes and with the local `swift_dir` (a node with a
different ring is flagged: it sends data to the wrong places). Nodes that do not answer are
listed as such. `--json` prints everything as one JSON object for scripts.

`dispersion` samples existing objects of one account, spread over as many object partitions
as possible (listings straight from the account and container servers), HEADs every primary
of each directly, and reports what share of the sampled objects, and of their containers,
have every replica in place.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import eventlet

from ring.device import format_address
from ring.errors import RingError
from ring.hashing import load_hash_secrets
from ring.ring import Ring
from storage_node import direct_client
from storage_node.recon import ring_md5s

# `ringstack-aio env` exports RINGSTACK_DIR (the all-in-one's etc/) for tools like this one.
DEFAULT_SWIFT_DIR = os.environ.get("RINGSTACK_DIR", "/etc/ringstack")
METRICS = ("replication/object", "replication/container", "replication/account",
           "auditor/object", "expirer/object", "async", "quarantined", "diskusage",
           "ringmd5", "time")
# A node whose clock is this far off confuses every timestamp-ordered merge.
CLOCK_SKEW_WARN_S = 2.0


def ring_hosts(swift_dir: str, kind: str = "object") -> list[tuple[str, int]]:
    """Every distinct (ip, port) of a ring's devices, in ring order."""
    secrets = load_hash_secrets(os.path.join(swift_dir, "ringstack.conf"))
    ring = Ring(os.path.join(swift_dir, f"{kind}.ring"), secrets)
    seen: dict[tuple[str, int], None] = {}
    for device in ring.devices:
        if device is not None:
            seen.setdefault((device.ip, device.port), None)
    return list(seen)


def fetch_metric(host: tuple[str, int], metric: str, timeout_s: float) -> Any:
    result = direct_client.request(host[0], host[1], "GET", f"/recon/{metric}",
                                   conn_timeout_s=min(timeout_s, 2.0), node_timeout_s=timeout_s)
    if result is None or result.status != 200:
        return None
    try:
        return json.loads(result.body)
    except ValueError:
        return None


def gather(hosts: Sequence[tuple[str, int]], timeout_s: float) -> dict[str, dict[str, Any]]:
    """{"ip:port": {metric: answer or None}}, every request in parallel."""
    pool = eventlet.GreenPool(64)
    jobs = {(format_address(*host), metric): pool.spawn(fetch_metric, host, metric, timeout_s)
            for host in hosts for metric in METRICS}
    report: dict[str, dict[str, Any]] = {format_address(*host): {} for host in hosts}
    for (host, metric), job in jobs.items():
        report[host][metric] = job.wait()
    return report


def ring_agreement(report: dict[str, dict[str, Any]],
                   local: dict[str, str | None]) -> dict[str, Any]:
    """Per ring file, the md5s seen and the nodes that disagree with the local copy (or,
    without one, with the most common md5). Pure."""
    names = set(local)
    for answers in report.values():
        names.update((answers.get("ringmd5") or {}).keys())
    result = {}
    for name in sorted(names):
        seen: dict[str, list[str]] = {}
        for host, answers in report.items():
            md5s = answers.get("ringmd5")
            if md5s is None:
                continue
            seen.setdefault(str(md5s.get(name)), []).append(host)
        expected = local.get(name)
        if expected is None and seen:
            expected = max(seen, key=lambda md5: len(seen[md5]))
        mismatched = sorted(host for md5, hosts in seen.items() if md5 != expected
                            for host in hosts)
        result[name] = {"expected": expected, "md5s": seen, "mismatched": mismatched}
    return result


def _age(timestamp: Any, now: float) -> str:
    if not isinstance(timestamp, (int, float)):
        return "never"
    return f"{now - timestamp:.0f}s ago"


def _seconds(value: Any) -> str:
    return f"{value:.1f}s" if isinstance(value, (int, float)) else "-"


def render(report: dict[str, dict[str, Any]], rings: dict[str, Any], now: float) -> str:
    """The human-readable report."""
    lines: list[str] = []
    down = [host for host, answers in report.items() if answers.get("time") is None]
    lines.append(f"=== {len(report)} storage nodes, {len(report) - len(down)} answering")
    for host in down:
        lines.append(f"  !! {host}: no answer from /recon")
    lines.append("")
    lines.append("=== replication           pass time   last finished      behind")
    for host, answers in report.items():
        obj = answers.get("replication/object") or {}
        for kind in ("object", "container", "account"):
            data = answers.get(f"replication/{kind}") or {}
            if kind == "object":
                pass_time = data.get("object_replication_time", data.get("replication_time"))
                last = data.get("object_replication_last", data.get("replication_last"))
                behind = obj.get("partitions_behind")
            else:
                pass_time, last, behind = (data.get("replication_time"),
                                           data.get("replication_last"), None)
            lines.append(f"  {host:22} {kind:9} {_seconds(pass_time):>9}   "
                         f"{_age(last, now):16} {behind if behind is not None else '-':>6}")
    lines.append("")
    lines.append("=== object auditor        files      bytes  quarantined  errors  last pass")
    for host, answers in report.items():
        stats = (answers.get("auditor/object") or {}).get("object_auditor_stats") or {}
        lines.append(f"  {host:22} {stats.get('files_processed', '-'):>8} "
                     f"{stats.get('bytes_processed', '-'):>10} "
                     f"{stats.get('quarantined', '-'):>12} {stats.get('errors', '-'):>7}  "
                     f"{_age(stats.get('last_pass'), now)}")
    lines.append("")
    lines.append("=== expirer, async pendings, quarantined, clock")
    for host, answers in report.items():
        expirer = answers.get("expirer/object") or {}
        pending = (answers.get("async") or {}).get("async_pending", "-")
        quarantined = answers.get("quarantined") or {}
        clock = answers.get("time")
        skew = f"{clock - now:+.1f}s" if isinstance(clock, (int, float)) else "-"
        flag = "  !! clock skew" if isinstance(clock, (int, float)) and \
            abs(clock - now) > CLOCK_SKEW_WARN_S else ""
        lines.append(f"  {host:22} expired last pass {expirer.get('expired_last_pass', '-')}, "
                     f"async {pending}, quarantined objects {quarantined.get('objects', '-')} "
                     f"containers {quarantined.get('containers', '-')} "
                     f"accounts {quarantined.get('accounts', '-')}, clock {skew}{flag}")
    lines.append("")
    lines.append("=== disk usage            device        used / size          use%")
    for host, answers in report.items():
        for entry in answers.get("diskusage") or []:
            if not entry.get("mounted"):
                lines.append(f"  {host:22} {entry.get('device', '?'):12}  !! unmounted")
                continue
            size, used = entry.get("size") or 0, entry.get("used") or 0
            percent = 100.0 * used / size if size else 0.0
            lines.append(f"  {host:22} {entry['device']:12} {used / 2**30:8.2f} / "
                         f"{size / 2**30:8.2f} GiB  {percent:5.1f}%")
    lines.append("")
    lines.append("=== rings")
    for name, agreement in rings.items():
        if agreement["mismatched"]:
            lines.append(f"  !! {name}: {len(agreement['mismatched'])} node(s) differ from "
                         f"{agreement['expected']}: {', '.join(agreement['mismatched'])}")
        else:
            lines.append(f"  {name}: all answering nodes agree ({agreement['expected']})")
    return "\n".join(lines)


# ---- dispersion ---------------------------------------------------------------------------------

def dispersion(swift_dir: str, account: str, sample: int, timeout_s: float) -> dict[str, Any]:
    """Sample objects of `account` across object partitions; HEAD every primary of each."""
    secrets = load_hash_secrets(os.path.join(swift_dir, "ringstack.conf"))
    rings = {kind: Ring(os.path.join(swift_dir, f"{kind}.ring"), secrets)
             for kind in ("account", "container", "object")}
    timeouts = {"conn_timeout_s": min(2.0, timeout_s), "node_timeout_s": timeout_s}
    part, nodes = rings["account"].get_nodes(account)
    containers = direct_client.merged_listing(nodes, part, f"/{account}", **timeouts) or []
    picked: dict[int, tuple[str, str]] = {}
    for container in containers:
        part, nodes = rings["container"].get_nodes(account, container)
        for obj in direct_client.merged_listing(nodes, part, f"/{account}/{container}",
                                                **timeouts) or []:
            object_part = rings["object"].get_part(account, container, obj)
            picked.setdefault(object_part, (container, obj))
            if len(picked) >= sample:
                break
        if len(picked) >= sample:
            break

    def copies(kind: str, path: str, *names: str) -> tuple[int, int]:
        part, nodes = rings[kind].get_nodes(account, *names)
        results = direct_client.fan_out(nodes, lambda _i, node: direct_client.node_request(
            node, part, "HEAD", path, **timeouts))
        found = sum(1 for r in results if r is not None and 200 <= r.status < 300)
        return found, len(nodes)

    def summarize(counts: list[tuple[int, int]]) -> dict[str, Any]:
        complete = sum(1 for found, wanted in counts if found == wanted)
        missing: dict[str, int] = {}
        for found, wanted in counts:
            if found < wanted:
                key = f"missing {wanted - found}"
                missing[key] = missing.get(key, 0) + 1
        return {"sampled": len(counts), "all_replicas": complete,
                "percent": round(100.0 * complete / len(counts), 2) if counts else None,
                **missing}

    object_counts = [copies("object", f"/{account}/{c}/{o}", c, o) for c, o in picked.values()]
    container_counts = [copies("container", f"/{account}/{c}", c) for c in containers[:sample]]
    return {"account": account, "objects": summarize(object_counts),
            "containers": summarize(container_counts)}


def render_dispersion(report: dict[str, Any]) -> str:
    lines = [f"=== dispersion of {report['account']}"]
    for kind in ("objects", "containers"):
        data = report[kind]
        if not data["sampled"]:
            lines.append(f"  {kind}: nothing to sample")
            continue
        extra = ", ".join(f"{k}: {v}" for k, v in data.items()
                          if k.startswith("missing"))
        lines.append(f"  {kind}: {data['all_replicas']} of {data['sampled']} sampled have "
                     f"every replica ({data['percent']}%)" + (f"; {extra}" if extra else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ringstack-recon",
                                     description="Cluster health from the storage nodes.")
    parser.add_argument("command", nargs="?", default="report", choices=("report",
                                                                         "dispersion"))
    parser.add_argument("--swift-dir", default=DEFAULT_SWIFT_DIR,
                        help="where the rings and ringstack.conf live")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    parser.add_argument("--account", help="dispersion: the account to sample")
    parser.add_argument("--sample", type=int, default=100,
                        help="dispersion: at most this many objects (and containers)")
    args = parser.parse_args(argv)
    try:
        return run(args, parser)
    except (OSError, ValueError, RingError) as err:
        print(f"ringstack-recon: cannot read the cluster's rings in {args.swift_dir}: {err} "
              "(set --swift-dir or RINGSTACK_DIR)", file=sys.stderr)
        return 2


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.command == "dispersion":
        if not args.account:
            parser.error("dispersion needs --account")
        result = dispersion(args.swift_dir, args.account, args.sample, args.timeout)
        print(json.dumps(result, indent=2, sort_keys=True) if args.json
              else render_dispersion(result))
        return 0 if result["objects"]["sampled"] == result["objects"]["all_replicas"] else 1
    now = time.time()
    report = gather(ring_hosts(args.swift_dir), args.timeout)
    rings = ring_agreement(report, ring_md5s(args.swift_dir))
    if args.json:
        print(json.dumps({"nodes": report, "rings": rings}, indent=2, sort_keys=True))
    else:
        print(render(report, rings, now))
    unhealthy = any(r["mismatched"] for r in rings.values()) or \
        any(answers.get("time") is None for answers in report.values())
    return 1 if unhealthy else 0


if __name__ == "__main__":
    sys.exit(main())
