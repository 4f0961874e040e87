"""Fixtures for probe tests: a real all-in-one cluster (`ringstack-aio`) that tests break on
purpose (kill -9 servers, change the ring) and then heal with the real daemons.

`probe` (one cluster per test module) gives `ProbeCluster`: the Swift API through the proxy
(v1 auth, plain http.client), the object ring, the files on every node's disk, and the
daemons run as an operator would (`ringstack-server object-replicator CONF --once`). Servers a
test starts itself are stopped by their pids at the end; the aio stops the rest.

`probe_cluster(data_dir, servers_only=...)` is the same cluster as a context manager, for a test
module that must prepare the data directory before the cluster starts (a device on its own small
tmpfs) or wants no background daemons (only the `--once` passes it runs itself).
"""

from __future__ import annotations

import contextlib
import glob
import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import pytest

from ring import Ring, load_hash_secrets
from ring.hashing import hash_path
from storage_node.diskfile import read_metadata
from tests.functional.cluster import REPO, Cluster, aio, free_port_block

SERVER_START_TIMEOUT_S = 30.0
DAEMON_TIMEOUT_S = 300.0


class ProbeCluster:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.layout = cluster.layout()
        self.data_dir = cluster.data_dir
        self.etc = self.layout.etc
        self.started: list[subprocess.Popen] = []      # processes this test started
        self._auth: tuple[str, str] | None = None

    # ---- the Swift API through the proxy --------------------------------------------------

    def auth(self) -> tuple[str, str]:
        """(storage path `/v1/AUTH_...`, token) from v1 auth as test:tester."""
        if self._auth is None:
            status, headers, _ = self._http("GET", "/auth/v1.0", {
                "X-Auth-User": "test:tester", "X-Auth-Key": "testing"})
            assert status == 200, status
            self._auth = (urlsplit(headers["x-storage-url"]).path, headers["x-auth-token"])
        return self._auth

    @property
    def account(self) -> str:
        return self.auth()[0].rsplit("/", 1)[1]

    def _http(self, method: str, path: str, headers: dict[str, str], body: bytes = b"",
              timeout_s: float = 30.0) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.cluster.proxy_port,
                                                timeout=timeout_s)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            return (response.status, {k.lower(): v for k, v in response.getheaders()},
                    response.read())
        finally:
            connection.close()

    def swift(self, method: str, path: str = "", body: bytes = b"",
              headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        storage, token = self.auth()
        all_headers = {"X-Auth-Token": token, **(headers or {})}
        if method == "PUT":
            all_headers.setdefault("Content-Length", str(len(body)))
        return self._http(method, storage + quote(path), all_headers, body)

    # ---- rings and disks ------------------------------------------------------------------

    def object_ring(self) -> Ring:
        return Ring(os.path.join(self.etc, "object.ring"),
                    load_hash_secrets(os.path.join(self.etc, "ringstack.conf")))

    def data_files(self, ring: Ring, container: str, name: str) -> dict[str, list[str]]:
        """device name -> the object's .data files on it, over every node's devices."""
        part = ring.get_part(self.account, container, name)
        name_hash = hash_path(self.account, container, name, ring.secrets).hex()
        found: dict[str, list[str]] = {}
        pattern = os.path.join(self.data_dir, "srv", "*", "*", "objects", str(part),
                               name_hash[-3:], name_hash, "*.data")
        for path in glob.glob(pattern):
            device = path.split(os.sep)[-6]
            found.setdefault(device, []).append(path)
        return found

    @staticmethod
    def read_body(path: str) -> bytes:
        body_length, _ = read_metadata(path)
        with open(path, "rb") as handle:
            return handle.read(body_length)

    # ---- servers and daemons --------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        return dict(os.environ, PYTHONPATH=REPO)

    def start_server(self, kind: str, conf: str, name: str, port: int) -> subprocess.Popen:
        log = open(os.path.join(self.layout.log, f"{name}.log"), "ab")  # noqa: SIM115
        process = subprocess.Popen([sys.executable, "-m", "common.server_main", kind, conf],
                                   cwd=REPO, env=self._env(), stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        log.close()
        self.started.append(process)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _port_open(port):
            assert process.poll() is None, f"{name} exited: {self.cluster.logs()}"
            assert time.monotonic() < deadline, f"{name} did not start listening"
            time.sleep(0.1)
        return process

    def replicator_conf(self, node: int) -> str:
        """<etc>/object-replicator/<n>.conf: the object server's [DEFAULT] (devices, port:
        how the replicator finds its local devices) plus [object-replicator]."""
        with open(self.layout.conf_path("object", node)) as handle:
            server_conf = handle.read()
        default = server_conf.split("\n[object-server]")[0]
        path = os.path.join(self.etc, "object-replicator", f"{node}.conf")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(default.rstrip() + "\n\n[object-replicator]\nconcurrency = 4\n"
                         "conn_timeout = 2\nnode_timeout = 30\n"
                         f"recon_cache_path = {os.path.join(self.data_dir, 'recon', str(node))}\n")
        return path

    def replicate(self, nodes: list[int]) -> None:
        """One replicator pass per node (`ringstack-server object-replicator CONF --once`),
        all at once as on a real cluster."""
        processes = [subprocess.Popen(
            [sys.executable, os.path.join(REPO, "bin", "ringstack-server"),
             "object-replicator", self.replicator_conf(node), "--once"],
            cwd=REPO, env=self._env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for node in nodes]
        self.started.extend(processes)
        for node, process in zip(nodes, processes, strict=True):
            output, _ = process.communicate(timeout=DAEMON_TIMEOUT_S)
            with open(os.path.join(self.layout.log, f"object-replicator-{node}.log"),
                      "ab") as log:
                log.write(output)
            assert process.returncode == 0, f"replicator {node}: {output.decode()}"

    def restart_server(self, kind: str, node: int) -> subprocess.Popen:
        """kill -9 `<kind>-<node>` (by its pid file) and start it again from its config file
        (re-read: how a test changes one server's options); the pid file is updated so that
        `ringstack-aio stop` stops the new process too."""
        name = f"{kind}-{node}"
        with contextlib.suppress(ProcessLookupError, FileNotFoundError):
            self.cluster.kill(name)
        port = self.layout.port(kind, node)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while _port_open(port):                 # the old process is gone once this closes
            assert time.monotonic() < deadline, f"{name} still listening after kill -9"
            time.sleep(0.1)
        process = self.start_server(kind, self.layout.conf_path(kind, node), name, port)
        with open(os.path.join(self.layout.run, f"{name}.pid"), "w") as handle:
            handle.write(str(process.pid))
        return process

    def set_default_option(self, kind: str, node: int, option: str, value: str) -> None:
        """Set `option = value` in the [DEFAULT] of `<kind>-server/<node>.conf` (the daemons
        made by `replicator_conf` share that section). Takes effect on the next start."""
        path = self.layout.conf_path(kind, node)
        with open(path) as handle:
            default, sep, rest = handle.read().partition(f"\n[{kind}-server]")
        lines = [line for line in default.splitlines()
                 if line.split("=", 1)[0].strip() != option]
        lines.append(f"{option} = {value}")
        with open(path, "w") as handle:
            handle.write("\n".join(lines) + "\n" + sep + rest)

    def direct(self, node: int, method: str, path: str, headers: dict[str, str] | None = None,
               body: bytes = b"", kind: str = "object", timeout_s: float = 30.0
               ) -> tuple[int, dict[str, str], bytes]:
        """One request straight to a storage server (`path`: /<dev>/<part>/<a>/<c>/<o>)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.layout.port(kind, node),
                                                timeout=timeout_s)
        try:
            connection.request(method, quote(path), body=body or None, headers=headers or {})
            response = connection.getresponse()
            return (response.status, {k.lower(): v for k, v in response.getheaders()},
                    response.read())
        finally:
            connection.close()

    def all_data_files(self) -> list[str]:
        """Every object .data file on every node's devices (quarantined ones excluded)."""
        return sorted(glob.glob(os.path.join(self.data_dir, "srv", "*", "*", "objects*", "*",
                                             "*", "*", "*.data")))

    def stop_started(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait()


def _port_open(port: int) -> bool:
    import socket
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class _ProbeAio(Cluster):
    """`Cluster`, optionally started with `--servers-only` (no background daemons)."""

    servers_only: bool = False

    def start(self) -> str:
        if not self.servers_only:
            return super().start()
        result = aio("start", "--detach", "--servers-only", "--data-dir", self.data_dir,
                     "--port", str(self.proxy_port), "--storage-port-base",
                     str(self.storage_base), "--identity-port", str(self.identity_port),
                     check=False)
        if result.returncode != 0:
            raise RuntimeError(f"cluster failed to start: {result.stdout}{result.stderr}\n"
                               f"{self.logs()}")
        return result.stdout


@contextlib.contextmanager
def probe_cluster(data_dir: str, servers_only: bool = False) -> Iterator[ProbeCluster]:
    """A probe cluster in `data_dir` (which may hold prepared directories, e.g. a device
    mounted at `<data_dir>/srv/<n>/sdb<n>`), stopped at the end."""
    base = free_port_block(40)
    cluster = _ProbeAio(data_dir, proxy_port=base + 35, storage_base=base)
    cluster.servers_only = servers_only
    try:
        cluster.start()
        running = ProbeCluster(cluster)
        try:
            yield running
        finally:
            running.stop_started()
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory):
    with probe_cluster(str(tmp_path_factory.mktemp("probe-aio"))) as running:
        yield running
