#!/usr/bin/env python3
"""Soak benchmark (issue 5): writes and overwrites while object servers are killed at random.

Run from the repository root (opt-in: a script, not a test):

    python bench/soak_bench.py                         # defaults: 2000 objects, 8 faults
    python bench/soak_bench.py --objects 300 --faults 3 --seed 7

Progress goes to stderr; stdout gets ONE JSON line.

What it does:
1. Starts an all-in-one cluster (`python -m common.aio start --detach --servers-only`) in a
   fresh temporary directory on a free block of ports, so no background daemon runs: the
   replicators run only when this script runs them (`ringstack-server object-replicator
   CONF --once`, CONF = the aio's `<etc>/object-replicator/<n>.conf` plus
   `concurrency = --replicator-concurrency`). v1 auth as test:tester/testing.
2. A seeded schedule (`--seed`): `--objects` names with random sizes of 1 B to 64 KiB
   (bodies derived from seed, name and version, so a run replays), a share (`--overwrites`)
   of them overwritten once at a random later point. `--writers` threads PUT through the
   proxy (http.client, keep-alive). Each name belongs to one writer, so the writes of one
   name are strictly sequential: version k+1 is sent only after version k's answer (or
   error), and gets the newer timestamp.
3. Meanwhile a fault thread kills (SIGKILL) one random object server at a time and restarts
   it (`python -m common.server_main object CONF`, pid written to `run/object-<n>.pid` so
   `ringstack-aio stop` stops it). The schedule is tied to write progress, not to wall time:
   the writes are cut into `--faults` equal segments; in each, one seeded node goes down at a
   seeded point of the segment's first half and comes back at a seeded later point (at most
   one server is down at any moment; but see the proxy's error limiting below: a server
   just restarted may still be skipped, so some PUTs get 503, which is allowed). A restart
   that falls after the last write happens once the writers are done.
4. After the last fault everything is up. Then, until converged (at most `--max-passes`):
   run every node's replicator `--once` in parallel, then check on disk, reading the object
   ring (`ring.Ring`, the cluster's hash secrets) and each primary's hash directory
   `<data>/srv/<n>/<dev>/objects/<part>/<suffix>/<hash>/`. An acknowledged object is
   "fully replicated" when each of its 3 primaries holds exactly one `.data`, the three
   have the same timestamp, and its ETag (the body's MD5 in the file's metadata) is an
   acceptable version (below). `seconds_to_full_replicas` is the wall time from "all servers
   up" to the check that passes (replicator passes and checks; `replicator_wall_s` is the
   passes' share), `replication_passes` how many passes it took. Copies left on a handoff
   device after convergence are counted (`handoff_copies_left`).
5. Every acknowledged object is read back through the proxy (GET, full body, MD5):
   - `objects_acknowledged`: names with at least one acknowledged (2xx) PUT;
   - `objects_lost`: acknowledged, but the GET answers 404, another error status, or fails
     (must be 0). The proxy error-limits a server that failed 10 times for 60 s
     (`error_suppression_interval`, as Swift does), also after it is back: right after a run
     of faults two or three of the 4 servers may still be skipped, and objects whose
     primaries are all skipped read as 503 although every copy is in place. So the reads
     that fail are counted (`reads_failed_before_error_limits_expired`), then read again
     once `--error-limit-wait` (65 s) has passed since the last restart; what still fails
     is lost;
   - `objects_wrong_content`: the body is not an acceptable version (must be 0).
   Acceptable versions of a name: the last acknowledged version, and any version written
   after it that was NOT acknowledged (a PUT that failed or errored may still have landed on
   some node with a newer timestamp, and replication then rightly spreads it). Anything
   older than the last acknowledged version (an earlier acknowledged one, or an earlier
   failed one) is wrong. Names never acknowledged are not judged (`objects_unacknowledged`).
   The same rule is applied on disk: `replicas_bad_on_disk` counts primary copies whose body
   (MD5 of the bytes actually read, not just the stored ETag) is not the converged version.
6. Replicator throughput, with the cluster in sync: one pass per node, one node at a time
   (so each pass has the machine to itself), partitions from the replicator's recon stats
   (`replication_stats.attempted`, `pass_time_s` in `<data>/recon/<n>/object.recon`):
   `incremental` = the ordinary pass (suffix hashes cached in `hashes.msgpack`, compared with
   the peers'); `full_scan` = the same pass after `hashes.msgpack` was removed from every
   partition of every device just before it, so every suffix, locally and on each peer asked,
   is rehashed from a directory listing and compared. Reported: partitions, seconds,
   partitions/s of each, and `incremental_over_full_scan` (the speed ratio).
7. Stops the cluster (always: try/finally), and any server this script restarted.

The machine has 2 cores; the cluster (13 servers plus 2 proxy workers), the writers and the
replicators share them, so the figures are for this machine under this load.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from common.cluster import Layout  # noqa: E402
from ring import Ring, load_hash_secrets  # noqa: E402
from ring.hashing import hash_path  # noqa: E402
from storage_node.diskfile import read_metadata  # noqa: E402
from storage_node.recon import load_recon_cache  # noqa: E402
from tests.functional.cluster import free_port_block  # noqa: E402

USER, KEY = "test:tester", "testing"
CONTAINER = "soak"
BODY_BYTES_MAX = 64 * 1024
HTTP_TIMEOUT_S = 60.0
SERVER_START_TIMEOUT_S = 60.0
AIO_TIMEOUT_S = 180.0
REPLICATOR_TIMEOUT_S = 600.0
PORT_BLOCK = 40                 # storage base .. +32, proxy +35, identity +36


def log(message: str) -> None:
    """Progress line on stderr."""
    print(f"[soak_bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def port_open(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# ---- the schedule -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Write:
    name: str
    version: int
    size: int


@dataclass(frozen=True)
class Fault:
    node: int
    kill_at_write: int          # kill once this many writes have completed
    restart_at_write: int       # restart once this many have (past the end: after the writers)


def body_of(seed: int, write: Write) -> bytes:
    """The bytes of one version of one name (the same for the same seed)."""
    return random.Random(f"{seed}:{write.name}:{write.version}").randbytes(write.size)


def make_schedule(seed: int, objects: int, overwrite_share: float, writers: int
                  ) -> list[list[Write]]:
    """Per writer thread, its writes in order; a name belongs to one writer, its overwrite
    comes at a random point after its first write."""
    rng = random.Random(f"{seed}:schedule")
    names = [f"obj-{index:06d}" for index in range(objects)]
    keyed: list[tuple[float, Write]] = [
        (float(index), Write(name, 0, rng.randint(1, BODY_BYTES_MAX)))
        for index, name in enumerate(names)]
    overwritten = rng.sample(range(objects), round(objects * overwrite_share))
    for index in overwritten:
        key = rng.uniform(index + 1, objects * 1.15)
        keyed.append((key, Write(names[index], 1, rng.randint(1, BODY_BYTES_MAX))))
    keyed.sort(key=lambda item: item[0])
    lanes: list[list[Write]] = [[] for _ in range(writers)]
    for _, write in keyed:
        lanes[int(write.name[4:]) % writers].append(write)
    return lanes


def make_faults(seed: int, faults: int, total_writes: int, nodes: int) -> list[Fault]:
    """One kill and restart per segment of the writes (see the module docstring)."""
    rng = random.Random(f"{seed}:faults")
    segment = total_writes / max(faults, 1)
    out = []
    for index in range(faults):
        start = index * segment
        kill = int(start + rng.uniform(0.05, 0.5) * segment)
        restart = int(kill + rng.uniform(0.2, 0.45) * segment)
        if index == faults - 1 and rng.random() < 0.5:
            restart = total_writes + 1          # the last node may miss the tail
        out.append(Fault(rng.randint(1, nodes), kill, restart))
    return out


# ---- the cluster ------------------------------------------------------------------------------

class SoakCluster:
    """The all-in-one this script starts, breaks, heals and stops."""

    def __init__(self, data_dir: str, base_port: int, replicator_concurrency: int):
        self.data_dir = data_dir
        self.storage_base = base_port
        self.proxy_port = base_port + 35
        self.identity_port = base_port + 36
        self.replicator_concurrency = replicator_concurrency
        self.restarted: list[subprocess.Popen[bytes]] = []
        self.layout: Layout | None = None
        self.storage_path = ""
        self.token = ""

    def _env(self) -> dict[str, str]:
        return dict(os.environ, PYTHONPATH=REPO)

    def _aio(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "common.aio", *args], cwd=REPO,
                              env=self._env(), capture_output=True, text=True,
                              timeout=AIO_TIMEOUT_S, check=False)

    def start(self) -> None:
        result = self._aio("start", "--detach", "--servers-only", "--data-dir", self.data_dir,
                           "--port", str(self.proxy_port), "--storage-port-base",
                           str(self.storage_base), "--identity-port", str(self.identity_port))
        if result.returncode != 0:
            raise RuntimeError(f"aio start failed: {result.stdout[-2000:]}"
                               f"{result.stderr[-2000:]}")
        self.layout = Layout.load(self.data_dir)
        assert self.layout is not None and not self.layout.daemons_enabled
        self.authenticate()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._aio("stop", "--data-dir", self.data_dir)
        for process in self.restarted:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.proxy_port, timeout=HTTP_TIMEOUT_S)

    def authenticate(self) -> None:
        connection = self.connection()
        try:
            connection.request("GET", "/auth/v1.0",
                               headers={"X-Auth-User": USER, "X-Auth-Key": KEY})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"v1 auth: {response.status}")
            self.storage_path = urlsplit(response.getheader("X-Storage-Url", "")).path
            self.token = response.getheader("X-Auth-Token", "")
        finally:
            connection.close()

    @property
    def account(self) -> str:
        return self.storage_path.rsplit("/", 1)[1]

    def object_path(self, name: str) -> str:
        return f"{self.storage_path}/{CONTAINER}/{quote(name)}"

    # ---- object servers

    def pid_file(self, node: int) -> str:
        assert self.layout is not None
        return os.path.join(self.layout.run, f"object-{node}.pid")

    def kill_object_server(self, node: int) -> None:
        with open(self.pid_file(node)) as handle:
            pid = int(handle.read().strip())
        os.kill(pid, signal.SIGKILL)
        for process in self.restarted:          # reap our own children
            if process.pid == pid:
                process.wait()
        port = self.layout.port("object", node) if self.layout else 0
        deadline = time.monotonic() + 10
        while port_open(port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart_object_server(self, node: int) -> None:
        assert self.layout is not None
        name = f"object-{node}"
        port = self.layout.port("object", node)
        with open(os.path.join(self.layout.log, f"{name}.log"), "ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "common.server_main", "object",
                 self.layout.conf_path("object", node)],
                cwd=REPO, env=self._env(), stdout=log_file, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        self.restarted.append(process)
        with open(self.pid_file(node), "w") as handle:
            handle.write(str(process.pid))
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not port_open(port):
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not listen on {port}")
            time.sleep(0.05)

    # ---- replicators

    def replicator_conf(self, node: int) -> str:
        """The aio's replicator config of a node plus the concurrency of this run."""
        assert self.layout is not None
        source = self.layout.daemon_conf_path("object-replicator", node)
        path = os.path.join(self.data_dir, "soak", f"object-replicator-{node}.conf")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(source) as handle:
            text = handle.read()
        with open(path, "w") as handle:
            handle.write(text.rstrip() + f"\nconcurrency = {self.replicator_concurrency}\n")
        return path

    def replicate(self, nodes: list[int]) -> dict[int, dict[str, Any]]:
        """One `--once` pass per node, all at once; returns each node's replication_stats."""
        assert self.layout is not None
        processes = [(node, subprocess.Popen(
            [sys.executable, os.path.join(REPO, "bin", "ringstack-server"),
             "object-replicator", self.replicator_conf(node), "--once"],
            cwd=REPO, env=self._env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
            for node in nodes]
        stats = {}
        for node, process in processes:
            output, _ = process.communicate(timeout=REPLICATOR_TIMEOUT_S)
            with open(os.path.join(self.layout.log, f"object-replicator-{node}.log"),
                      "ab") as handle:
                handle.write(output)
            if process.returncode != 0:
                raise RuntimeError(f"replicator {node} exited {process.returncode}: "
                                   f"{output.decode(errors='replace')[-2000:]}")
            recon = load_recon_cache(os.path.join(self.layout.recon_dir(node),
                                                  "object.recon"))
            stats[node] = recon.get("replication_stats") or {}
        return stats

    def remove_suffix_hashes(self) -> int:
        """Delete hashes.msgpack in every partition of every device; how many went."""
        removed = 0
        for root, _dirs, files in os.walk(os.path.join(self.data_dir, "srv")):
            if "hashes.msgpack" in files:
                os.unlink(os.path.join(root, "hashes.msgpack"))
                removed += 1
        return removed


# ---- writing under faults ---------------------------------------------------------------------

@dataclass
class Outcome:
    """What happened to every write of one name, in order: (version, md5, acknowledged)."""

    writes: list[tuple[int, str, bool]] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return any(acked for _, _, acked in self.writes)

    def acceptable_md5s(self) -> set[str]:
        """The last acknowledged version and every unacknowledged one after it."""
        last = max(index for index, (_, _, acked) in enumerate(self.writes) if acked)
        return {md5 for _, md5, _ in self.writes[last:]}


class Writers:
    def __init__(self, cluster: SoakCluster, seed: int, lanes: list[list[Write]]):
        self.cluster = cluster
        self.seed = seed
        self.lanes = lanes
        self.outcomes: dict[str, Outcome] = {}
        self.completed = 0
        self.statuses: dict[str, int] = {}
        self.lock = threading.Lock()

    def _put(self, connection: http.client.HTTPConnection | None, write: Write, body: bytes
             ) -> tuple[http.client.HTTPConnection | None, str]:
        if connection is None:
            connection = self.cluster.connection()
        try:
            connection.request("PUT", self.cluster.object_path(write.name), body=body,
                               headers={"X-Auth-Token": self.cluster.token,
                                        "Content-Length": str(len(body)),
                                        "Content-Type": "application/octet-stream"})
            response = connection.getresponse()
            response.read()
            if response.will_close:
                connection.close()
                connection = None
            return connection, str(response.status)
        except (OSError, http.client.HTTPException) as err:
            connection.close()
            return None, type(err).__name__

    def _lane(self, writes: list[Write]) -> None:
        connection: http.client.HTTPConnection | None = None
        for write in writes:
            body = body_of(self.seed, write)
            connection, status = self._put(connection, write, body)
            acked = status.startswith("2")
            with self.lock:
                self.outcomes.setdefault(write.name, Outcome()).writes.append(
                    (write.version, hashlib.md5(body).hexdigest(), acked))
                self.completed += 1
                self.statuses[status] = self.statuses.get(status, 0) + 1
        if connection is not None:
            connection.close()

    def run(self, faults: list[Fault]) -> dict[str, Any]:
        threads = [threading.Thread(target=self._lane, args=(lane,), daemon=True)
                   for lane in self.lanes]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        total = sum(len(lane) for lane in self.lanes)
        down: int | None = None
        fault_log = []
        pending = list(faults)
        while any(thread.is_alive() for thread in threads) or (down and pending):
            done = self.completed
            writers_done = not any(thread.is_alive() for thread in threads)
            if down is not None and (done >= pending[0].restart_at_write or writers_done):
                self.cluster.restart_object_server(down)
                fault_log.append({"restart": down, "after_writes": self.completed})
                log(f"restarted object-{down} after {self.completed}/{total} writes")
                down = None
                pending.pop(0)
            elif down is None and pending and not writers_done \
                    and done >= pending[0].kill_at_write:
                down = pending[0].node
                self.cluster.kill_object_server(down)
                fault_log.append({"kill": down, "after_writes": self.completed})
                log(f"killed object-{down} after {self.completed}/{total} writes")
            elif down is None and pending and writers_done:
                pending.pop(0)      # writes ended before this fault's kill point
            else:
                time.sleep(0.01)
        for thread in threads:
            thread.join()
        if down is not None:
            self.cluster.restart_object_server(down)
            fault_log.append({"restart": down, "after_writes": self.completed})
        seconds = time.monotonic() - started
        return {"writes": total, "write_seconds": round(seconds, 2),
                "writes_per_s": round(total / seconds, 1), "write_statuses": self.statuses,
                "faults_done": sum(1 for event in fault_log if "kill" in event),
                "fault_log": fault_log}


# ---- checks -----------------------------------------------------------------------------------

class DiskChecker:
    """Where each object's replicas are, read straight from the devices."""

    def __init__(self, cluster: SoakCluster):
        assert cluster.layout is not None
        self.cluster = cluster
        self.layout = cluster.layout
        etc = self.layout.etc
        self.ring = Ring(os.path.join(etc, "object.ring"),
                         load_hash_secrets(os.path.join(etc, "ringstack.conf")))
        self.device_node = {self.layout.device_name(n): n for n in range(1, self.layout.nodes + 1)}

    def hash_dir(self, device: str, part: int, name_hash: str) -> str:
        node = self.device_node[device]
        return os.path.join(self.layout.devices(node), device, "objects", str(part),
                            name_hash[-3:], name_hash)

    def locate(self, name: str) -> tuple[list[str], list[str], int, str]:
        part, primaries = self.ring.get_nodes(self.cluster.account, CONTAINER, name)
        name_hash = hash_path(self.cluster.account, CONTAINER, name, self.ring.secrets).hex()
        primary_devices = [node.device for node in primaries]
        others = [d for d in self.device_node if d not in primary_devices]
        return primary_devices, others, part, name_hash

    @staticmethod
    def data_files(directory: str) -> list[str]:
        try:
            return sorted(os.path.join(directory, f) for f in os.listdir(directory)
                          if f.endswith(".data"))
        except FileNotFoundError:
            return []

    def replicated(self, name: str, acceptable: set[str]) -> bool:
        """Exactly one .data on each primary, the same timestamp, an acceptable ETag."""
        primaries, _, part, name_hash = self.locate(name)
        seen = set()
        for device in primaries:
            files = self.data_files(self.hash_dir(device, part, name_hash))
            if len(files) != 1:
                return False
            _, metadata = read_metadata(files[0])
            seen.add((os.path.basename(files[0]), metadata.get("ETag")))
        return len(seen) == 1 and next(iter(seen))[1] in acceptable

    def bad_replicas(self, name: str, acceptable: set[str]) -> int:
        """Primary copies whose bytes (MD5 of the body read) are not acceptable."""
        primaries, _, part, name_hash = self.locate(name)
        bad = 0
        for device in primaries:
            files = self.data_files(self.hash_dir(device, part, name_hash))
            if not files:
                bad += 1
                continue
            body_length, _ = read_metadata(files[-1])
            with open(files[-1], "rb") as handle:
                body = handle.read(body_length)
            bad += hashlib.md5(body).hexdigest() not in acceptable
        return bad

    def handoff_copies(self, name: str) -> int:
        _, others, part, name_hash = self.locate(name)
        return sum(len(self.data_files(self.hash_dir(d, part, name_hash))) for d in others)


def read_back(cluster: SoakCluster, outcomes: dict[str, Outcome], names: list[str],
              threads: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """GET these objects through the proxy and judge their bytes: (unreadable, wrong)."""
    lost: list[dict[str, Any]] = []
    wrong: list[dict[str, Any]] = []
    lock = threading.Lock()
    local = threading.local()

    def get(name: str) -> None:
        connection = getattr(local, "connection", None) or cluster.connection()
        local.connection = connection
        try:
            connection.request("GET", cluster.object_path(name),
                               headers={"X-Auth-Token": cluster.token})
            response = connection.getresponse()
            body = response.read()
            status: Any = response.status
        except (OSError, http.client.HTTPException) as err:
            connection.close()
            local.connection = None
            status, body = type(err).__name__, b""
        with lock:
            if status != 200:
                lost.append({"name": name, "status": status})
            elif hashlib.md5(body).hexdigest() not in outcomes[name].acceptable_md5s():
                wrong.append({"name": name, "writes": outcomes[name].writes,
                              "got_md5": hashlib.md5(body).hexdigest()})

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(get, names))
    return lost, wrong


def verify(cluster: SoakCluster, outcomes: dict[str, Outcome], threads: int,
           error_limit_ends: float) -> dict[str, Any]:
    """Read every acknowledged object back; what fails is read again once the proxy's
    error limiting of the restarted servers has surely expired (see the module docstring)."""
    names = sorted(name for name, outcome in outcomes.items() if outcome.acknowledged)
    unreadable, wrong = read_back(cluster, outcomes, names, threads)
    first_unreadable = len(unreadable)
    if unreadable:
        wait_s = max(0.0, error_limit_ends - time.monotonic())
        log(f"{len(unreadable)} reads failed; again in {wait_s:.0f}s, once the proxy's error "
            "limits of the restarted servers have expired")
        time.sleep(wait_s)
        unreadable, wrong_again = read_back(
            cluster, outcomes, [entry["name"] for entry in unreadable], threads)
        wrong += wrong_again
    return {"objects_acknowledged": len(names), "objects_lost": len(unreadable),
            "objects_wrong_content": len(wrong),
            "reads_failed_before_error_limits_expired": first_unreadable,
            "lost_examples": unreadable[:10], "wrong_examples": wrong[:5]}


# ---- phases -----------------------------------------------------------------------------------

def converge(cluster: SoakCluster, outcomes: dict[str, Outcome], max_passes: int
             ) -> dict[str, Any]:
    """Replicator passes (all nodes at once) until every acknowledged object is in place."""
    assert cluster.layout is not None
    checker = DiskChecker(cluster)
    acked = {name: outcome.acceptable_md5s() for name, outcome in outcomes.items()
             if outcome.acknowledged}
    nodes = list(range(1, cluster.layout.nodes + 1))
    started = time.monotonic()
    replicator_wall_s = 0.0
    missing = [name for name, ok in acked.items() if not checker.replicated(name, ok)]
    log(f"before replication: {len(missing)} of {len(acked)} acknowledged objects short")
    passes, per_pass = 0, []
    while missing and passes < max_passes:
        pass_started = time.monotonic()
        stats = cluster.replicate(nodes)
        replicator_wall_s += time.monotonic() - pass_started
        passes += 1
        missing = [name for name in missing if not checker.replicated(name, acked[name])]
        per_pass.append({"wall_s": round(time.monotonic() - pass_started, 2),
                         "short_after": len(missing),
                         "files_pushed": sum(s.get("files_pushed", 0) for s in stats.values()),
                         "failures": sum(s.get("failure", 0) for s in stats.values()),
                         "handoffs_removed": sum(s.get("remove", 0) for s in stats.values())})
        log(f"pass {passes}: {per_pass[-1]}")
    seconds = time.monotonic() - started
    bad = sum(checker.bad_replicas(name, ok) for name, ok in acked.items())
    handoff = sum(checker.handoff_copies(name) for name in acked)
    return {"converged": not missing,
            "seconds_to_full_replicas": round(seconds, 2) if not missing else None,
            "replication_passes": passes, "replicator_wall_s": round(replicator_wall_s, 2),
            "objects_short_of_replicas": len(missing), "short_examples": missing[:10],
            "replicas_bad_on_disk": bad, "handoff_copies_left": handoff, "passes": per_pass}


def throughput(cluster: SoakCluster, repeats: int) -> dict[str, Any]:
    """Incremental vs full-scan passes, one node at a time (see the module docstring)."""
    assert cluster.layout is not None
    nodes = list(range(1, cluster.layout.nodes + 1))
    cluster.replicate(nodes)                       # settle: hashes cached everywhere
    out: dict[str, Any] = {}
    for mode in ("incremental", "full_scan"):
        partitions, seconds, synced = 0, 0.0, 0
        for _ in range(repeats):
            for node in nodes:
                if mode == "full_scan":
                    cluster.remove_suffix_hashes()
                stats = cluster.replicate([node])[node]
                partitions += int(stats.get("attempted", 0))
                seconds += float(stats.get("pass_time_s", 0.0))
                synced += int(stats.get("suffix_sync", 0))
        out[mode] = {"partitions": partitions, "pass_seconds": round(seconds, 3),
                     "partitions_per_s": round(partitions / seconds, 1) if seconds else None,
                     "suffixes_synced": synced}
        log(f"{mode}: {out[mode]}")
    inc, full = out["incremental"]["partitions_per_s"], out["full_scan"]["partitions_per_s"]
    out["incremental_over_full_scan"] = round(inc / full, 2) if inc and full else None
    out["replicator_concurrency"] = cluster.replicator_concurrency
    out["passes_per_mode"] = repeats * len(nodes)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"bench": "soak", "seed": args.seed, "objects": args.objects,
                              "overwrite_share": args.overwrites, "faults": args.faults,
                              "writers": args.writers}
    base = args.port_base or free_port_block(PORT_BLOCK)
    data_dir = tempfile.mkdtemp(prefix="soak_bench_")
    cluster = SoakCluster(data_dir, base, args.replicator_concurrency)
    try:
        started = time.monotonic()
        cluster.start()
        log(f"cluster up in {time.monotonic() - started:.1f}s at {data_dir} (port base {base})")
        connection = cluster.connection()
        connection.request("PUT", f"{cluster.storage_path}/{CONTAINER}",
                           headers={"X-Auth-Token": cluster.token, "Content-Length": "0"})
        response = connection.getresponse()
        response.read()
        connection.close()
        if response.status not in (201, 202):
            raise RuntimeError(f"container PUT: {response.status}")
        lanes = make_schedule(args.seed, args.objects, args.overwrites, args.writers)
        total = sum(len(lane) for lane in lanes)
        assert cluster.layout is not None
        faults = make_faults(args.seed, args.faults, total, cluster.layout.nodes)
        writers = Writers(cluster, args.seed, lanes)
        log(f"{total} writes by {args.writers} writers, {len(faults)} faults")
        result.update(writers.run(faults))
        error_limit_ends = time.monotonic() + args.error_limit_wait
        outcomes = writers.outcomes
        result["objects_unacknowledged"] = sum(1 for o in outcomes.values()
                                               if not o.acknowledged)
        result["writes_unacknowledged"] = sum(1 for o in outcomes.values()
                                              for _, _, acked in o.writes if not acked)
        result.update(converge(cluster, outcomes, args.max_passes))
        log("reading back every acknowledged object")
        result.update(verify(cluster, outcomes, args.writers, error_limit_ends))
        if not args.skip_throughput:
            result["replicator_throughput"] = throughput(cluster, args.throughput_repeats)
        result["total_seconds"] = round(time.monotonic() - started, 1)
    except Exception as err:  # noqa: BLE001 - still print what was measured
        log(f"failed: {type(err).__name__}: {err}")
        result["error"] = f"{type(err).__name__}: {err}"
        result["data_dir"] = data_dir
    finally:
        cluster.stop()
        if args.keep_data or "error" in result:
            result["data_dir"] = data_dir
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--overwrites", type=float, default=0.3,
                        help="share of the objects overwritten once (0..1)")
    parser.add_argument("--faults", type=int, default=8, help="kill/restart cycles")
    parser.add_argument("--writers", type=int, default=4, help="concurrent writer threads")
    parser.add_argument("--max-passes", type=int, default=10,
                        help="replicator passes before giving up on convergence")
    parser.add_argument("--replicator-concurrency", type=int, default=4)
    parser.add_argument("--throughput-repeats", type=int, default=1,
                        help="passes per node for each throughput mode")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--error-limit-wait", type=float, default=65.0,
                        help="seconds after the last restart before failed reads are retried "
                             "(the proxy's error_suppression_interval is 60 s)")
    parser.add_argument("--port-base", type=int, default=0,
                        help="first of 40 ports (default: a free block)")
    parser.add_argument("--keep-data", action="store_true",
                        help="keep the temporary data directory (kept anyway on error)")
    args = parser.parse_args(argv)
    if not 0 <= args.overwrites <= 1 or args.objects < 1 or args.writers < 1:
        parser.error("need 0 <= --overwrites <= 1, --objects >= 1, --writers >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    print(json.dumps(result, separators=(",", ":")), flush=True)
    healthy = ("error" not in result and result.get("converged")
               and result.get("objects_lost") == 0 and result.get("objects_wrong_content") == 0)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
