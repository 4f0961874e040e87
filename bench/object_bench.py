#!/usr/bin/env python3
"""Object-path benchmark: OpenStack Swift's all-in-one (the reference) against ringstack's.

Run from the repository root (one process runs both systems, one after the other, never both at
once; the machine has 2 cores):

    python bench/object_bench.py                    # full rows, both systems (~15 min)
    python bench/object_bench.py --quick            # smoke run, < 3 min
    python bench/object_bench.py --only swift --quick
    python bench/object_bench.py --rows 4k,listing --repeat 3

Progress goes to stderr; stdout gets ONE JSON line with every figure.

What it does, per system (Swift first, then ringstack):
1. starts a fresh cluster in a new temporary directory (deleted afterwards unless
   `--keep-data`): Swift with `../shared/reference/saio.sh start` (SAIO_BASE = that directory,
   the venv of `--swift-venv`, installed with `saio.sh install` if missing; proxy on port 8080),
   ringstack with `python -m common.aio start --detach` (proxy 8090, storage ports from 7200);
   both are 4 nodes x (object, container, account) servers, rings of part power 10 with
   3 replicas over 4 devices in 4 zones, 2 proxy workers, 1 worker per storage server;
   `shape` in the JSON shows what each really runs (ring facts, configured workers, processes);
2. runs the rows, each object row being one run of `../shared/reference/bench.py` (called as a
   subprocess; `--repeat N` runs it N times and reports medians, with every run's value in
   `<figure>_all`; the listing row is populated once and has its own `--listing-runs`);
3. stops the cluster (always: try/finally, also on Ctrl-C or SIGTERM) and checks that every
   process it started has exited.

Rows (`--rows`; `--quick` counts in brackets):
- 4k:  4 KiB objects, 2000 at concurrency 16 (200 at c 8);
- 1m:  1 MiB objects, 200 at c 8 (20 at c 4);
- 64m: 64 MiB objects, 4 at c 2 (1 at c 1);
- listing: a container of 100,000 objects (5000), listed in full through the proxy.

Figures of the object rows, for `put` and `get` (as bench.py defines them):
- ops_s: successful requests / phase wall time; MB_s: ops_s x object size / 10**6;
- p50_ms / p99_ms: nearest-rank latency of whole requests (send + full response body);
- server_cpu_ms_per_op: CPU (user + system) of every process of the cluster (proxy and storage
  servers with their workers, plus Swift's memcached or ringstack's supervisor and object
  updaters) over the phase, divided by the number of requests;
- other_cpu_s: busy CPU-seconds of the machine that neither the cluster nor the client used:
  other load on the machine plus kernel threads (journal, writeback);
- errors: failed requests (summed over repeats).
Every row also gets foreign_cores_before: busy cores of the machine outside the cluster's
processes over 1 s just before the row (load from elsewhere; `--wait-quiet S` waits up to S s
for it to drop under 0.25 cores), and idle_cluster_cores_before: what the idle cluster itself
used in that second; and, averaged over the whole row, foreign_cores_during: busy cores of user
processes outside the cluster and this benchmark (load from elsewhere: the row's figures are
only clean when it is near 0), kernel_cores_during: busy cores of kernel threads (journal,
writeback, softirq: mostly work the benchmark causes).

The listing row. Creating 100,000 objects through the API takes many minutes on Swift, so by
default both systems get the rows the same way, through the container servers' backend API (the
same Swift protocol in both): the container is created through the proxy, its partition and
three primary nodes are looked up in the system's own container ring (Swift's `Ring` in the
Swift venv; ringstack's `ring.Ring` with the cluster's hash secrets, each in a subprocess), then
each object row is PUT to every replica as `PUT /<dev>/<part>/<account>/<container>/<object>`
with `X-Timestamp`, `X-Size: 0`, `X-Content-Type`, `X-Etag` (what an object server sends after
an object PUT), at `--insert-concurrency`. `--listing-via-api` instead PUTs that many zero-byte
objects through the proxy at `--api-put-concurrency`. Either way `populate` reports how long it
took. Then one warm-up listing (`first_listing_s`, not in the medians: Swift merges its pending
rows on first read) and `--listing-runs` timed full listings: GET ?format=json&limit=L with
marker, as swiftclient does (L = 10,000 -> 10 pages; with --quick L = 1000 -> 5 pages; when the
last page is full, one more request gets the empty answer that ends the listing). Figures:
full_listing_s (median, min, max; wall time of all requests of one listing, JSON decoding
included), objects_s (objects / full_listing_s), page_p50_ms / page_p99_ms (latency of each
request that returned objects, over all timed listings), server_cpu_s_per_listing; every listing
is checked to be complete and in order.

Ratios (`ratios` in the JSON) are ringstack / Swift for every figure: above 1 means ringstack is
faster for ops_s, MB_s and objects_s, and slower (or costlier) for latencies, seconds and CPU.

If a system cannot start or a row fails, its part of the JSON says `{"error": ...}` (with the
tail of the relevant log) and the run goes on.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import datetime
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from types import FrameType, ModuleType
from typing import Any
from urllib.parse import quote, urlsplit

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_REFERENCE = os.path.join(os.path.dirname(REPO), "shared", "reference")
DEFAULT_SWIFT_VENV = "/tmp/swiftsaio/venv"
USER, KEY = "test:tester", "testing"
SYSTEMS = ("swift", "ringstack")
ROW_NAMES = ("4k", "1m", "64m", "listing")
# row -> (bench.py size, count, concurrency); quick counts for --quick
OBJECT_ROWS = {"4k": ("4K", 2000, 16), "1m": ("1M", 200, 8), "64m": ("64M", 4, 2)}
QUICK_OBJECT_ROWS = {"4k": ("4K", 200, 8), "1m": ("1M", 20, 4), "64m": ("64M", 1, 1)}
LISTING_OBJECTS, QUICK_LISTING_OBJECTS = 100_000, 5000
PAGE_LIMIT, QUICK_PAGE_LIMIT = 10_000, 1000
PHASE_FIGURES = ("ops_s", "MB_s", "p50_ms", "p99_ms", "server_cpu_ms_per_op", "other_cpu_s")
LISTING_FIGURES = ("full_listing_s", "objects_s", "page_p50_ms", "page_p99_ms",
                   "server_cpu_s_per_listing", "first_listing_s", "populate_s")
EMPTY_ETAG = "d41d8cd98f00b204e9800998ecf8427e"
STOP_GRACE_S = 20.0
HTTP_TIMEOUT_S = 300.0
QUIET_CORES = 0.25      # busy cores of the machine, cluster idle, under which it counts as quiet
CLK_TCK = os.sysconf("SC_CLK_TCK")
PF_KTHREAD = 0x00200000  # /proc/<pid>/stat flags: a kernel thread
STORAGE_SERVER = re.compile(r"(object|container|account)-\d+(-worker)?$")


def log(message: str) -> None:
    """Progress line on stderr."""
    print(f"[object_bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def tail(path: str, lines: int = 15) -> str:
    """The last lines of a text file ('' if unreadable)."""
    try:
        with open(path, errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return ""


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def load_reference_bench(path: str) -> ModuleType:
    """Import the reference bench.py as a module (its Endpoint, run_phase, auth_v1, pct)."""
    spec = importlib.util.spec_from_file_location("reference_bench", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- processes ------------------------------------------------------------------------------

def descendants(pid: int) -> list[int]:
    """pid and all its live descendants (Linux /proc)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        if not os.path.exists(f"/proc/{current}"):
            continue
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            with contextlib.suppress(OSError), open(
                    f"/proc/{current}/task/{task}/children") as handle:
                todo.extend(int(child) for child in handle.read().split())
    return found


def cpu_census(exclude: set[int]) -> dict[tuple[int, int], tuple[bool, float]]:
    """CPU-seconds used so far by every process outside `exclude`, keyed by (pid, start time):
    (whether it is a kernel thread, its user + system time plus that of its reaped children)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in exclude:
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        kernel = bool(int(fields[6]) & PF_KTHREAD)
        out[(int(entry), int(fields[19]))] = (kernel, sum(map(int, fields[11:15])) / CLK_TCK)
    return out


class LoadMeter:
    """Busy cores outside the cluster and this benchmark over a `with` block: other user
    processes (`foreign`: load from elsewhere) and kernel threads (`kernel`: softirq, journal,
    writeback, mostly the work of the benchmark itself). A process that exits inside the
    block counts through the parent that reaps it (if that parent is still alive)."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.result: dict[str, float] = {}

    def _exclude(self) -> set[int]:
        with contextlib.suppress(OSError):
            self.cluster.refresh_pidfile()
        return set(descendants(os.getpid())) | set(self.cluster.seen)

    def __enter__(self) -> LoadMeter:
        self.before = cpu_census(self._exclude())
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        wall = time.perf_counter() - self.t0
        after = cpu_census(self._exclude())
        # totals after minus totals before: a process that exited inside the block leaves its
        # CPU in its reaping parent's children time, counted once after and subtracted before
        used = {True: 0.0, False: 0.0}
        for kernel, seconds in after.values():
            used[kernel] += seconds
        for kernel, seconds in self.before.values():
            used[kernel] -= seconds
        self.result = {"foreign_cores_during": round(max(0.0, used[False]) / wall, 2),
                       "kernel_cores_during": round(max(0.0, used[True]) / wall, 2)}


def start_time(pid: int) -> int | None:
    """The start time (clock ticks after boot) of a live, non-zombie pid, else None; with the
    pid it names one process even if the pid number is reused later."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[19])


def role_of(name: str) -> str:
    """proxy / storage / other, from a recorded name such as 'object-3', 'object-3-worker',
    'proxy-worker' (storage and proxy servers) or 'memcached', 'aio', 'object-updater-1'."""
    if name.startswith("proxy"):
        return "proxy"
    if STORAGE_SERVER.match(name):
        return "storage"
    return "other"


def workers_configured(conf_paths: dict[str, list[str]]) -> dict[str, Any]:
    """`workers` of [DEFAULT] per server kind, from the config files the servers read."""
    out: dict[str, Any] = {}
    for kind, paths in conf_paths.items():
        values = []
        for path in paths:
            parser = configparser.ConfigParser(interpolation=None, strict=False)
            parser.read(path)
            values.append(parser.defaults().get("workers"))
        values_int = [int(v) if v and v.isdigit() else v for v in values]
        out[kind] = values_int[0] if len(set(values_int)) == 1 else values_int
    return out


class Cluster:
    """One all-in-one cluster that this script starts, benchmarks and stops."""

    name = "cluster"
    proxy_port = 0

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.base = tempfile.mkdtemp(prefix=f"object_bench_{self.name}_")
        self.pidfile = os.path.join(self.base, "bench-server-pids")
        self.seen: dict[int, int] = {}      # pid -> start time of every process seen
        self.etc = self.logs = ""            # set by each system

    # ---- per system

    def start(self) -> None:
        raise NotImplementedError

    def _stop_command(self) -> None:
        raise NotImplementedError

    def roots(self) -> list[tuple[str, int]]:
        """(name, pid) of every process the cluster's tool recorded."""
        raise NotImplementedError

    def ring_facts(self, account: str, container: str) -> dict[str, Any]:
        """The three rings' shape, and the container's partition and primary nodes."""
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def busy_ports(self) -> list[int]:
        raise NotImplementedError

    # ---- shared

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}/auth/v1.0"

    def conf_paths(self) -> dict[str, list[str]]:
        """The config file of every server, per kind (both systems use SAIO's layout)."""
        out = {"proxy": [os.path.join(self.etc, "proxy-server.conf")]}
        for kind in ("object", "container", "account"):
            out[kind] = [os.path.join(self.etc, f"{kind}-server", f"{n}.conf")
                         for n in range(1, 5)]
        return out

    def log_hint(self) -> str:
        """The last lines of the proxy's and one container server's logs."""
        return "".join(f"--- {name}\n{tail(os.path.join(self.logs, name), 5)}"
                       for name in ("proxy.log", "container-1.log"))

    def refresh_pidfile(self) -> dict[str, int]:
        """Write every live process of the cluster to self.pidfile; count them per role."""
        counts = {"proxy": 0, "storage": 0, "other": 0}
        seen: set[int] = set()
        # smallest trees first, so a server's pid is named after the server, not after a
        # supervisor whose tree holds every server
        trees = sorted(((name, descendants(root)) for name, root in self.roots()),
                       key=lambda tree: len(tree[1]))
        with open(self.pidfile, "w") as handle:
            for name, pids in trees:
                for pid in pids:
                    if pid not in seen:
                        seen.add(pid)
                        counts[role_of(name)] += 1
                        handle.write(f"{pid} {name}\n")
        for pid in seen:
            started = start_time(pid)
            if started is not None:
                self.seen.setdefault(pid, started)
        return counts

    def shape(self) -> dict[str, Any]:
        """Ring facts, configured workers and running processes, for the JSON."""
        facts = self.ring_facts("AUTH_test", "shape-probe")
        return {"rings": facts["rings"], "workers": workers_configured(self.conf_paths()),
                "processes": self.refresh_pidfile()}

    def stop(self) -> dict[str, Any]:
        """Stop with the cluster's own tool, then make sure every process we saw is gone."""
        with contextlib.suppress(Exception):
            self.refresh_pidfile()
        result: dict[str, Any] = {}
        try:
            self._stop_command()
        except Exception as err:  # noqa: BLE001 - fall through to the pid check
            result["stop_error"] = f"{type(err).__name__}: {err}"
        def alive() -> list[int]:
            return sorted(pid for pid, started in self.seen.items()
                          if start_time(pid) == started)

        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and alive():
            time.sleep(0.2)
        leftover = alive()
        for pid in leftover:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if leftover:
            result["killed_leftover_pids"] = leftover
        if not self.args.keep_data:
            shutil.rmtree(self.base, ignore_errors=True)
        return result


class SwiftSAIO(Cluster):
    """Swift's SAIO via ../shared/reference/saio.sh, in a fresh SAIO_BASE."""

    name = "swift"

    def __init__(self, args: argparse.Namespace):
        super().__init__(args)
        self.proxy_port = args.swift_port
        self.saio = os.path.join(args.reference_dir, "saio.sh")
        self.venv = args.swift_venv
        self.python = os.path.join(self.venv, "bin", "python")
        self.etc, self.logs = os.path.join(self.base, "etc"), os.path.join(self.base, "log")

    def _env(self, base: str | None = None) -> dict[str, str]:
        env = dict(os.environ, SAIO_VENV=self.venv, SAIO_PROXY_PORT=str(self.proxy_port))
        env["SAIO_BASE"] = base or self.base
        return env

    def _saio(self, command: str, timeout: float, base: str | None = None) -> str:
        # own session: a Ctrl-C in the terminal reaches this script, which stops the cluster
        proc = subprocess.run(["bash", self.saio, command], env=self._env(base), timeout=timeout,
                              capture_output=True, text=True, start_new_session=True)
        output = (proc.stdout + proc.stderr).strip()
        if output:
            log(f"saio.sh {command}: {output[-800:]}")
        if proc.returncode:
            raise RuntimeError(f"saio.sh {command} failed (rc {proc.returncode}): "
                               f"{output[-1500:]}")
        return output

    def ensure_installed(self) -> None:
        if os.access(os.path.join(self.venv, "bin", "swift-proxy-server"), os.X_OK):
            return
        log(f"Swift not found in {self.venv}: running saio.sh install")
        base = os.path.dirname(self.venv) if self.venv == DEFAULT_SWIFT_VENV else self.base
        self._saio("install", timeout=1800, base=base)

    def busy_ports(self) -> list[int]:
        ports = [self.proxy_port, 11211] + [6200 + 10 * n + k for n in range(1, 5)
                                            for k in range(3)]
        return [p for p in ports if port_open(p)]

    def start(self) -> None:
        self.ensure_installed()
        self._saio("start", timeout=300)

    def _stop_command(self) -> None:
        self._saio("stop", timeout=120)

    def roots(self) -> list[tuple[str, int]]:
        out = []
        with contextlib.suppress(FileNotFoundError), open(
                os.path.join(self.base, "run", "pids")) as handle:
            for line in handle:
                fields = line.split()
                if len(fields) >= 2 and fields[0].isdigit():
                    out.append((fields[1], int(fields[0])))
        return out

    def ring_facts(self, account: str, container: str) -> dict[str, Any]:
        script = (
            "import json, sys\n"
            "from swift.common import utils\n"
            "from swift.common.ring import Ring\n"
            "etc, account, container = sys.argv[1:4]\n"
            "utils.set_swift_dir(etc)\n"
            "rings = {}\n"
            "for kind in ('account', 'container', 'object'):\n"
            "    r = Ring(etc, ring_name=kind)\n"
            "    devs = [d for d in r.devs if d]\n"
            "    rings[kind] = {'part_power': r.part_power, 'replicas': r.replica_count,\n"
            "                   'devices': len(devs),\n"
            "                   'zones': len({(d['region'], d['zone']) for d in devs})}\n"
            "part, nodes = Ring(etc, ring_name='container').get_nodes(account, container)\n"
            "print(json.dumps({'rings': rings, 'part': part,\n"
            "                  'nodes': [[n['ip'], n['port'], n['device']] for n in nodes]}))\n")
        return _run_json([self.python, "-c", script, self.etc, account, container], env=None)

    def version(self) -> str:
        proc = subprocess.run([self.python, "-c", "import swift; print(swift.__version__)"],
                              capture_output=True, text=True, timeout=60)
        return "swift " + proc.stdout.strip()


class RingstackAIO(Cluster):
    """ringstack's all-in-one via `python -m common.aio`, in a fresh data directory."""

    name = "ringstack"

    def __init__(self, args: argparse.Namespace):
        super().__init__(args)
        self.proxy_port = args.ringstack_port
        self.storage_base = args.ringstack_storage_port_base
        self.data_dir = os.path.join(self.base, "data")
        self.etc, self.logs = os.path.join(self.data_dir, "etc"), os.path.join(self.data_dir, "log")
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = REPO + (os.pathsep + self.env["PYTHONPATH"]
                                         if self.env.get("PYTHONPATH") else "")

    def _aio(self, *argv: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "common.aio", *argv,
                               "--data-dir", self.data_dir], cwd=REPO, env=self.env,
                              timeout=timeout, capture_output=True, text=True,
                              start_new_session=True)

    def busy_ports(self) -> list[int]:
        ports = [self.proxy_port] + [self.storage_base + 10 * n + k for n in range(4)
                                     for k in range(3)]
        return [p for p in ports if port_open(p)]

    def start(self) -> None:
        # Servers only, as the reference SAIO runs none of Swift's daemons either; identity
        # runs (tokens are validated through it, then cached by the proxy).
        proc = self._aio("start", "--detach", "--port", str(self.proxy_port),
                         "--storage-port-base", str(self.storage_base),
                         "--identity-port", str(self.proxy_port + 5), "--servers-only",
                         timeout=180)
        # the detached supervisor may have started some servers before failing
        self.refresh_pidfile()
        if proc.returncode:
            detail = tail(os.path.join(self.logs, "aio.log"), 10)
            with contextlib.suppress(OSError):
                for name in sorted(os.listdir(self.logs)):
                    text = tail(os.path.join(self.logs, name), 40)
                    if "Traceback" in text or "Error" in text:
                        detail += f"--- {name}\n" + text[-1200:]
                        break
            raise RuntimeError(f"common.aio start failed (rc {proc.returncode}): "
                               f"{(proc.stdout + proc.stderr).strip()[-600:]}\n{detail}")

    def _stop_command(self) -> None:
        if os.path.exists(os.path.join(self.data_dir, "cluster.json")):
            proc = self._aio("stop", timeout=120)
            log(f"common.aio stop: {(proc.stdout + proc.stderr).strip()[-300:]}")

    def roots(self) -> list[tuple[str, int]]:
        run = os.path.join(self.data_dir, "run")
        out = []
        with contextlib.suppress(FileNotFoundError):
            for entry in sorted(os.listdir(run)):
                if not entry.endswith(".pid"):
                    continue
                with contextlib.suppress(OSError, ValueError), open(
                        os.path.join(run, entry)) as handle:
                    out.append((entry[:-4], int(handle.read().strip())))
        return out

    def ring_facts(self, account: str, container: str) -> dict[str, Any]:
        script = (
            "import json, os, sys\n"
            "from ring import Ring, load_hash_secrets\n"
            "etc, account, container = sys.argv[1:4]\n"
            "secrets = load_hash_secrets(os.path.join(etc, 'ringstack.conf'))\n"
            "rings = {}\n"
            "for kind in ('account', 'container', 'object'):\n"
            "    r = Ring(os.path.join(etc, kind + '.ring'), secrets)\n"
            "    devs = [d for d in r.devices if d]\n"
            "    rings[kind] = {'part_power': r.part_power, 'replicas': r.replica_count,\n"
            "                   'devices': len(devs),\n"
            "                   'zones': len({(d.region, d.zone) for d in devs})}\n"
            "ring = Ring(os.path.join(etc, 'container.ring'), secrets)\n"
            "part, nodes = ring.get_nodes(account, container)\n"
            "print(json.dumps({'rings': rings, 'part': part,\n"
            "                  'nodes': [[n.ip, n.port, n.device] for n in nodes]}))\n")
        return _run_json([sys.executable, "-c", script, self.etc, account, container],
                         env=self.env)

    def version(self) -> str:
        proc = subprocess.run(["git", "--no-optional-locks", "-C", REPO, "describe", "--always",
                               "--dirty"], capture_output=True, text=True, timeout=60)
        return "ringstack " + (proc.stdout.strip() or "unknown")


def _run_json(argv: list[str], env: dict[str, str] | None) -> dict[str, Any]:
    proc = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    if proc.returncode:
        raise RuntimeError(f"ring lookup failed: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- object rows ----------------------------------------------------------------------------

def median(values: list[float]) -> float | None:
    """Median of the non-None values (None if there are none)."""
    clean = [v for v in values if v is not None]
    return round(statistics.median(clean), 3) if clean else None


def run_object_row(cluster: Cluster, row: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run bench.py `args.repeat` times for one row; medians of the put and get figures."""
    size, count, concurrency = (QUICK_OBJECT_ROWS if args.quick else OBJECT_ROWS)[row]
    runs = []
    for rep in range(args.repeat):
        cluster.refresh_pidfile()
        argv = [sys.executable, os.path.join(args.reference_dir, "bench.py"),
                "--auth-url", cluster.auth_url, "--user", USER, "--key", KEY,
                "--size", size, "--count", str(count), "--concurrency", str(concurrency),
                "--server-pids", cluster.pidfile, "--label", f"{cluster.name}-{row}-{rep}"]
        log(f"{cluster.name} {row}: {count} x {size} at c {concurrency} "
            f"(run {rep + 1}/{args.repeat})")
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=args.row_timeout)
        lines = proc.stdout.strip().splitlines()
        try:
            result = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            return {"error": f"bench.py rc {proc.returncode}: "
                             f"{(proc.stderr or proc.stdout).strip()[-800:]}",
                    "log_tail": cluster.log_hint()[-1500:]}
        runs.append(result)
        brief = {p: (result[p]["ops_s"], result[p]["errors"]) for p in ("put", "get")}
        log(f"{cluster.name} {row}: put/get (ops/s, errors) = {brief}")
    out: dict[str, Any] = {"size": size, "count": count, "concurrency": concurrency,
                           "runs": len(runs)}
    for phase in ("put", "get"):
        stats: dict[str, Any] = {}
        for figure in PHASE_FIGURES:
            values = [run[phase].get(figure) for run in runs]
            stats[figure] = median(values)
            if len(runs) > 1:
                stats[figure + "_all"] = values
        stats["errors"] = sum(run[phase]["errors"] for run in runs)
        first = next((run[phase]["first_error"] for run in runs
                      if run[phase].get("first_error")), None)
        if first:
            stats["first_error"] = first
        out[phase] = stats
    return out


# ---- listing row ----------------------------------------------------------------------------

def populate_backend(ref: ModuleType, cluster: Cluster, storage_url: str, container: str,
                     count: int, concurrency: int) -> dict[str, Any]:
    """Insert `count` zero-byte object rows into every container replica (backend API)."""
    account = urlsplit(storage_url).path.rstrip("/").rsplit("/", 1)[-1]
    facts = cluster.ring_facts(account, container)
    endpoints = [ref.Endpoint(f"http://{ip}:{port}/{dev}/{facts['part']}/{quote(account)}",
                              "-", HTTP_TIMEOUT_S, False) for ip, port, dev in facts["nodes"]]
    base_ts = time.time()
    names = [f"o{i:08d}" for i in range(count)]
    cpath = "/" + quote(container) + "/"

    def insert(i: int) -> str | None:
        headers = {"X-Timestamp": f"{base_ts + i * 1e-5:016.5f}", "X-Size": "0",
                   "X-Content-Type": "application/octet-stream", "X-Etag": EMPTY_ETAG,
                   "X-Backend-Storage-Policy-Index": "0"}
        for ep in endpoints:
            status, _, _, body = ep.request("PUT", cpath + names[i], length=0, headers=headers)
            if status // 100 != 2:
                return f"backend PUT {ep.host}:{ep.port}{ep.base} HTTP {status} {body[:200]!r}"
        return None

    log(f"{cluster.name} listing: inserting {count} rows into container partition "
        f"{facts['part']} on {facts['nodes']} at c {concurrency}")
    out = ref.run_phase("insert", insert, count, concurrency, 0)
    out.pop("MB_s", None)
    out.update(method="backend container-server PUT to every replica",
               backend_requests=count * len(endpoints), partition=facts["part"],
               nodes=facts["nodes"])
    return out


def populate_api(ref: ModuleType, ep: Any, container: str, count: int,
                 concurrency: int) -> dict[str, Any]:
    """PUT `count` zero-byte objects through the proxy."""
    cpath = "/" + quote(container) + "/"

    def put(i: int) -> str | None:
        status, _, _, body = ep.request("PUT", f"{cpath}o{i:08d}", length=0,
                                        headers={"Content-Type": "application/octet-stream"})
        return None if status == 201 else f"PUT HTTP {status} {body[:200]!r}"

    log(f"listing: PUT {count} zero-byte objects through the proxy at c {concurrency}")
    out = ref.run_phase("populate", put, count, concurrency, 0)
    out.pop("MB_s", None)
    out["method"] = "zero-byte object PUTs through the proxy"
    return out


def full_listing(ep: Any, container: str, limit: int) -> tuple[float, list[float], int, str]:
    """One paginated JSON listing, as swiftclient does it: pages of `limit` with marker until
    a short or empty page. Returns (wall s, latencies s of the pages with objects, objects,
    error or '')."""
    cpath = "/" + quote(container)
    marker, listed, pages, last = "", 0, [], ""
    t0 = time.perf_counter()
    while True:
        query = f"?format=json&limit={limit}" + (f"&marker={quote(marker)}" if marker else "")
        p0 = time.perf_counter()
        status, _, _, body = ep.request("GET", cpath + query,
                                        headers={"Accept": "application/json"})
        page_s = time.perf_counter() - p0
        if status == 204:
            break
        if status != 200:
            return time.perf_counter() - t0, pages, listed, f"LIST HTTP {status} {body[:200]!r}"
        items = json.loads(body)
        if not items:
            break
        pages.append(page_s)      # pages with objects only; the empty last one is not a page
        names = [item["name"] for item in items]
        if names[0] <= last or names != sorted(names):
            return time.perf_counter() - t0, pages, listed, "listing out of order"
        listed += len(items)
        marker = last = names[-1]
        if len(items) < limit:
            break
    return time.perf_counter() - t0, pages, listed, ""


def run_listing_row(ref: ModuleType, cluster: Cluster, args: argparse.Namespace) -> dict[str, Any]:
    """Populate one container, then time full paginated listings through the proxy."""
    count = args.listing_objects or (QUICK_LISTING_OBJECTS if args.quick else LISTING_OBJECTS)
    limit = args.page_limit or (QUICK_PAGE_LIMIT if args.quick else PAGE_LIMIT)
    try:
        storage_url, token = ref.auth_v1(cluster.auth_url, USER, KEY, HTTP_TIMEOUT_S, False)
    except SystemExit as err:       # bench.py's auth_v1 exits on failure
        return {"error": str(err)}
    ep = ref.Endpoint(storage_url, token, HTTP_TIMEOUT_S, False)
    container = f"listing_{count}_{uuid.uuid4().hex[:8]}"
    status, _, _, body = ep.request("PUT", "/" + quote(container), length=0)
    if status // 100 != 2:
        return {"error": f"container PUT HTTP {status} {body[:200]!r}"}
    cluster.refresh_pidfile()
    ref.SERVER_PIDS = cluster.pidfile
    if args.listing_via_api:
        populate = populate_api(ref, ep, container, count, args.api_put_concurrency)
    else:
        populate = populate_backend(ref, cluster, storage_url, container, count,
                                    args.insert_concurrency)
    log(f"{cluster.name} listing: populated {count} in {populate['wall_s']} s "
        f"({populate['ops_s']} objects/s, {populate['errors']} errors)")
    out: dict[str, Any] = {"objects": count, "page_limit": limit, "populate": populate,
                           "populate_s": populate["wall_s"]}
    if populate["errors"]:
        out["error"] = (f"populate: {populate['errors']} errors, "
                        f"first: {populate.get('first_error')}")
        return out
    status, headers, _, _ = ep.request("HEAD", "/" + quote(container))
    out["container_object_count"] = int(headers.get("X-Container-Object-Count", -1))
    first_s, _, listed, err = full_listing(ep, container, limit)
    out["first_listing_s"] = round(first_s, 4)
    if err or listed != count:
        out["error"] = f"warm-up listing: {err or f'{listed} of {count} objects listed'}"
        return out
    walls, pages = [], []
    s0, m0, c0 = ref.pids_cpu_s(cluster.pidfile), ref.machine_busy_s(), ref.cpu_s()
    for run in range(args.listing_runs):
        wall, page_s, listed, err = full_listing(ep, container, limit)
        if err or listed != count:
            out["error"] = f"listing {run + 1}: {err or f'{listed} of {count} objects listed'}"
            return out
        walls.append(wall)
        pages.extend(page_s)
        log(f"{cluster.name} listing {run + 1}/{args.listing_runs}: {listed} objects in "
            f"{len(page_s)} pages, {wall:.3f} s")
    s1, m1, c1 = ref.pids_cpu_s(cluster.pidfile), ref.machine_busy_s(), ref.cpu_s()
    pages.sort()
    med = statistics.median(walls)
    out.update(runs=len(walls), pages_per_listing=len(pages) // len(walls),
               full_listing_s=round(med, 4), full_listing_min_s=round(min(walls), 4),
               full_listing_max_s=round(max(walls), 4),
               objects_s=round(count / med, 1),
               page_p50_ms=round(ref.pct(pages, 50) * 1e3, 3),
               page_p99_ms=round(ref.pct(pages, 99) * 1e3, 3),
               server_cpu_s_per_listing=round((s1 - s0) / len(walls), 4))
    if m0 is not None:
        out["other_cpu_s"] = round((m1 - m0) - (s1 - s0) - (c1 - c0), 3)
    return out


# ---- driver ---------------------------------------------------------------------------------

def background_cores(ref: ModuleType, cluster: Cluster,
                     wait_s: float) -> tuple[float | None, float | None]:
    """(foreign, cluster) busy cores over 1 s with no requests: the machine's busy CPU outside
    the cluster's processes (other load), and the idle cluster's own. With wait_s > 0, keep
    measuring up to wait_s seconds until the foreign load drops below QUIET_CORES."""
    deadline = time.monotonic() + wait_s
    while True:
        cluster.refresh_pidfile()
        m0, s0 = ref.machine_busy_s(), ref.pids_cpu_s(cluster.pidfile)
        time.sleep(1.0)
        m1, s1 = ref.machine_busy_s(), ref.pids_cpu_s(cluster.pidfile)
        if m0 is None or m1 is None:
            return None, None
        foreign, own = round(m1 - m0 - (s1 - s0), 2), round(s1 - s0, 2)
        if foreign < QUIET_CORES or time.monotonic() >= deadline:
            return foreign, own


def bench_system(ref: ModuleType, cluster: Cluster, rows: list[str],
                 args: argparse.Namespace, out: dict[str, Any]) -> None:
    """Start one cluster, run the rows, always stop it; fills `out` as it goes (so an
    interrupted run keeps what it measured); failures become {"error": ...}."""
    if args.keep_data:
        out["data_dir"] = cluster.base
    busy = cluster.busy_ports()
    if busy:
        out["error"] = (f"ports already in use by another process: {busy} (another cluster "
                        "running?); not touching it")
        return
    try:
        with contextlib.suppress(Exception):
            out["version"] = cluster.version()
        log(f"starting {cluster.name} ({cluster.base})")
        t0 = time.perf_counter()
        try:
            cluster.start()
        except Exception as err:  # noqa: BLE001 - reported in the JSON
            out["error"] = f"start: {err}"
            log(f"{cluster.name} failed to start: {err}")
            return
        out["start_s"] = round(time.perf_counter() - t0, 2)
        out["load_avg_at_start"] = [round(v, 2) for v in os.getloadavg()]
        out["shape"] = cluster.shape()
        log(f"{cluster.name} up in {out['start_s']} s; shape {json.dumps(out['shape'])}")
        results: dict[str, Any] = {}
        out["rows"] = results
        for row in rows:
            foreign, own = background_cores(ref, cluster, args.wait_quiet)
            if foreign is not None and foreign >= QUIET_CORES:
                log(f"{cluster.name} {row}: other load on the machine ({foreign} busy cores "
                    "outside the cluster) will skew the figures")
            meter = LoadMeter(cluster)
            try:
                with meter:
                    if row == "listing":
                        results[row] = run_listing_row(ref, cluster, args)
                    else:
                        results[row] = run_object_row(cluster, row, args)
            except subprocess.TimeoutExpired as err:
                results[row] = {"error": f"timed out after {err.timeout} s"}
            except Exception as err:  # noqa: BLE001 - one failed row must not end the run
                results[row] = {"error": f"{type(err).__name__}: {err}",
                                "log_tail": cluster.log_hint()[-1500:]}
            results[row].update(foreign_cores_before=foreign, idle_cluster_cores_before=own,
                                **meter.result)
            if meter.result.get("foreign_cores_during", 0) >= QUIET_CORES:
                log(f"{cluster.name} {row}: other load on the machine during the row: "
                    f"{meter.result['foreign_cores_during']} busy cores on average")
            if "error" in results[row]:
                log(f"{cluster.name} {row}: ERROR {results[row]['error'][:500]}")
    finally:
        log(f"stopping {cluster.name}")
        # a second Ctrl-C must not cut the stop short
        previous = {sig: signal.signal(sig, signal.SIG_IGN)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            out.update(cluster.stop())
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def ratio(ours: Any, theirs: Any) -> float | None:
    """ringstack / Swift, or None when either is missing or Swift's is zero."""
    if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)) and theirs:
        return round(ours / theirs, 3)
    return None


def ratios(swift: dict[str, Any], ringstack: dict[str, Any]) -> dict[str, Any]:
    """ringstack / Swift for every figure both systems produced."""
    out: dict[str, Any] = {}
    s_rows, r_rows = swift.get("rows", {}), ringstack.get("rows", {})
    for row in ROW_NAMES:
        s, r = s_rows.get(row), r_rows.get(row)
        if not s or not r or "error" in s or "error" in r:
            continue
        if row == "listing":
            out[row] = {f: ratio(r.get(f), s.get(f)) for f in LISTING_FIGURES}
        else:
            out[row] = {phase: {f: ratio(r[phase].get(f), s[phase].get(f))
                                for f in PHASE_FIGURES if f != "other_cpu_s"}
                        for phase in ("put", "get")}
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny counts: a smoke run < 3 min")
    ap.add_argument("--only", choices=SYSTEMS, help="benchmark one system only")
    ap.add_argument("--repeat", type=int, default=1, help="runs per object row (medians)")
    ap.add_argument("--rows", default=",".join(ROW_NAMES),
                    help="comma-separated subset of " + ",".join(ROW_NAMES))
    ap.add_argument("--listing-via-api", action="store_true",
                    help="populate the listing container with zero-byte PUTs via the proxy")
    ap.add_argument("--listing-objects", type=int, default=0,
                    help=f"objects in the listing container (default {LISTING_OBJECTS}, "
                         f"--quick {QUICK_LISTING_OBJECTS})")
    ap.add_argument("--page-limit", type=int, default=0,
                    help=f"listing page size (default {PAGE_LIMIT}, --quick {QUICK_PAGE_LIMIT})")
    ap.add_argument("--listing-runs", type=int, default=0,
                    help="timed full listings after the warm-up (default 5, --quick 3)")
    ap.add_argument("--insert-concurrency", type=int, default=24,
                    help="concurrency of the backend row inserts")
    ap.add_argument("--api-put-concurrency", type=int, default=32,
                    help="concurrency of the zero-byte PUTs with --listing-via-api")
    ap.add_argument("--wait-quiet", type=float, default=0.0,
                    help="before each row wait up to this many seconds for the machine to be "
                         f"quiet (< {QUIET_CORES} busy cores outside the cluster)")
    ap.add_argument("--row-timeout", type=float, default=1800.0,
                    help="seconds allowed for one bench.py run")
    ap.add_argument("--swift-venv", default=DEFAULT_SWIFT_VENV)
    ap.add_argument("--swift-port", type=int, default=8080)
    ap.add_argument("--ringstack-port", type=int, default=8090)
    ap.add_argument("--ringstack-storage-port-base", type=int, default=7200)
    ap.add_argument("--reference-dir", default=DEFAULT_REFERENCE,
                    help="where saio.sh and bench.py live")
    ap.add_argument("--keep-data", action="store_true",
                    help="keep the clusters' temporary directories")
    args = ap.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = sorted(set(rows) - set(ROW_NAMES))
    if unknown or not rows:
        ap.error(f"--rows: unknown {unknown}; choose from {','.join(ROW_NAMES)}")
    args.row_list = [r for r in ROW_NAMES if r in rows]
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    args.listing_runs = args.listing_runs or (3 if args.quick else 5)
    return args


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print one JSON line; 0 if every requested part ran without error."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)   # even if started with it ignored
    ref = load_reference_bench(os.path.join(args.reference_dir, "bench.py"))
    systems = [args.only] if args.only else list(SYSTEMS)
    notes = [
        "systems run one after the other in this process, each in a fresh temporary directory, "
        "never both at once",
        "ratios = ringstack / swift for every figure (throughput: >1 is ringstack faster; "
        "latency, seconds, CPU: <1 is ringstack better)",
        "server CPU counts every process of the cluster: proxy + storage servers with workers, "
        "plus Swift's memcached / ringstack's supervisor and object updaters; shape.processes "
        "counts them (a Swift server with workers = 1 forks one worker, a ringstack one serves "
        "in its own process)",
        "other_cpu_s = machine busy CPU - cluster - client: load from elsewhere plus kernel "
        "threads; per row, foreign_cores_during (other user processes) and kernel_cores_during "
        "(kernel threads) split it: a row is clean only when foreign_cores_during is near 0",
    ]
    if "listing" in args.row_list:
        notes.append(
            "listing container populated with zero-byte object PUTs through the proxy"
            if args.listing_via_api else
            "listing container populated through each system's container-server backend API "
            "(PUT /<dev>/<part>/<account>/<container>/<object> with X-Timestamp, X-Size, "
            "X-Content-Type, X-Etag to all 3 container replicas; partition and nodes from each "
            "system's own container ring); the same for both systems; the listing itself goes "
            "through the proxy")
    result: dict[str, Any] = {
        "bench": "object_bench",
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count()},
        "mode": "quick" if args.quick else "full", "repeat": args.repeat,
        "rows": args.row_list, "notes": notes,
    }
    code = 0
    try:
        for name in systems:
            cluster = SwiftSAIO(args) if name == "swift" else RingstackAIO(args)
            result[name] = {}
            bench_system(ref, cluster, args.row_list, args, result[name])
    except KeyboardInterrupt:
        log("interrupted")
        result["interrupted"] = True
        code = 130
    except Exception as err:  # noqa: BLE001 - still print what was measured
        log(f"failed: {type(err).__name__}: {err}")
        result["error"] = f"{type(err).__name__}: {err}"
        code = 1
    if "swift" in result and "ringstack" in result:
        result["ratios"] = ratios(result["swift"], result["ringstack"])
    for name in systems:
        part = result.get(name, {})
        failed = "error" in part or any("error" in row for row in part.get("rows", {}).values())
        if failed and code == 0:
            code = 1
    print(json.dumps(result, separators=(",", ":")), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
