"""Starting, watching and stopping the processes of an all-in-one cluster.

Before the servers start, identity's bootstrap (`python -m identity.cli bootstrap`, named as a
module so this plumbing does not import identity) brings users and the catalog up to date with
the cluster's layout; it is idempotent, so every start runs it.

Each server is `python -m common.server_main TYPE CONF` with its output in
`<data dir>/log/<name>.log` and its pid in `<data dir>/run/<name>.pid`. The supervisor that
started them records its own pid in `run/aio.pid`; stopping it (SIGTERM, or Ctrl-C in the
foreground) stops every server, first politely, then with SIGKILL after `stop_timeout_s`.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

from common.cluster import Layout

READY_TIMEOUT_S = 60.0
BOOTSTRAP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.1


def pid_path(layout: Layout, name: str) -> str:
    return os.path.join(layout.run, f"{name}.pid")


def read_pid(path: str) -> int | None:
    try:
        with open(path) as handle:
            pid = int(handle.read().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    return True


def port_open(ip: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def proxy_healthy(layout: Layout) -> bool:
    try:
        conn = http.client.HTTPConnection(layout.bind_ip, layout.proxy_port, timeout=2)
        conn.request("GET", "/healthcheck")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def bootstrap_identity(layout: Layout) -> dict[str, object]:
    """Run identity's bootstrap with the cluster's plan; its JSON report (ids of what exists).
    Raises RuntimeError with the tool's own message when it fails."""
    command = [sys.executable, "-m", "identity.cli", "bootstrap", "--json",
               "--config", layout.conf_path("identity"), "--seed", layout.identity_seed]
    try:
        result = subprocess.run(command, env=_child_env(), capture_output=True, text=True,
                                timeout=BOOTSTRAP_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise RuntimeError("identity bootstrap did not finish in time") from None
    if result.returncode != 0:
        raise RuntimeError(f"identity bootstrap failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


class Supervisor:
    """The servers of one cluster, as child processes of this one."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def start_all(self) -> None:
        busy = [f"{name} ({port})" for name, _kind, port in self.layout.servers()
                if port_open(self.layout.bind_ip, port, 0.2)]
        if busy:
            raise SystemExit("ports already in use: " + ", ".join(busy) +
                             " (is another cluster running? try `ringstack-aio stop`, "
                             "or --port / a new --data-dir)")
        for name, kind, _port in self.layout.servers():
            node = name.rsplit("-", 1)[-1]
            conf = self.layout.conf_path(kind, int(node) if node.isdigit() else None)
            self._spawn(name, [kind, conf])
        for name, kind, conf in self.layout.daemons():
            self._spawn(name, [kind, conf])

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(os.path.join(self.layout.log, f"{name}.log"), "ab")  # noqa: SIM115
        process = subprocess.Popen([sys.executable, "-m", "common.server_main", *args],
                                   stdout=log, stderr=subprocess.STDOUT, env=_child_env(),
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.children[name] = process
        with open(pid_path(self.layout, name), "w") as handle:
            handle.write(str(process.pid))

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        for name, _kind, port in self.layout.servers():
            while not port_open(self.layout.bind_ip, port):
                process = self.children.get(name)
                if process is not None and process.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {process.returncode}; see "
                                       f"{os.path.join(self.layout.log, name + '.log')}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start listening on port {port}")
                time.sleep(POLL_INTERVAL_S)
        while not proxy_healthy(self.layout):
            if time.monotonic() > deadline:
                raise RuntimeError("the proxy does not answer /healthcheck")
            time.sleep(POLL_INTERVAL_S)

    def watch(self) -> None:
        """Block until told to stop; report servers that exit on their own."""
        stopping = False

        def on_signal(*_: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        reported: set[str] = set()
        while not stopping:
            for name, process in self.children.items():
                if process.poll() is not None and name not in reported:
                    reported.add(name)
                    print(f"ringstack-aio: {name} exited with code {process.returncode}",
                          file=sys.stderr, flush=True)
            time.sleep(0.5)
        self.stop_all()

    def stop_all(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        for process in self.children.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        deadline = time.monotonic() + timeout_s
        for name, process in self.children.items():
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(pid_path(self.layout, name))


def stop_pids(layout: Layout, timeout_s: float = STOP_TIMEOUT_S) -> list[str]:
    """Stop a cluster started elsewhere (by its pid files); returns what was stopped."""
    stopped = []
    supervisor_pid = read_pid(os.path.join(layout.run, "aio.pid"))
    if supervisor_pid:
        os.kill(supervisor_pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s + 2
        while pid_alive(supervisor_pid) and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL_S)
        stopped.append("supervisor")
    names = [name for name, _kind, _port in layout.servers()] + \
        [name for name, _kind, _conf in layout.daemons()]
    for name in names:       # servers left behind by a supervisor that died
        pid = read_pid(pid_path(layout, name))
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            stopped.append(name)
    return stopped
