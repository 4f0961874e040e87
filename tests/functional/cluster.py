"""A real all-in-one cluster for functional tests: `ringstack-aio start --detach` on free ports
in a temporary data directory, stopped (and checked for leftovers) at the end."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from common.cluster import Layout, openrc_lines

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port_block(size: int) -> int:
    """A base port with `size` bindable consecutive ports above it, below the kernel's
    ephemeral range (so client connections never take them) and probed the way the servers
    bind (SO_REUSEADDR: a port in TIME_WAIT is still usable)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(10000, 30000 - size)
        ok = True
        for port in range(base, base + size):
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no block of free ports")


def aio(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-m", "common.aio", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, check=check)


@dataclass
class Cluster:
    data_dir: str
    proxy_port: int
    storage_base: int
    identity_port: int = 0         # 0: the port after the proxy's (inside the free block)

    def __post_init__(self) -> None:
        if not self.identity_port:
            self.identity_port = self.proxy_port + 1

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}/auth/v1.0"

    @property
    def identity_url(self) -> str:
        return f"http://127.0.0.1:{self.identity_port}/v3"

    def layout(self) -> Layout:
        layout = Layout.load(self.data_dir)
        assert layout is not None, f"no cluster in {self.data_dir}"
        return layout

    def account(self, project: str = "test") -> str:
        """The Swift account of an aio project, whichever auth the proxy runs."""
        return self.layout().account(project)

    def openstack_env(self) -> dict[str, str]:
        """The environment `source <data dir>/openrc` gives (the admin), nothing inherited."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ST_"))}
        for line in openrc_lines(self.layout()):
            name, value = line.removeprefix("export ").split("=", 1)
            env[name] = value
        return env

    def start(self) -> str:
        result = aio("start", "--detach", "--data-dir", self.data_dir, "--port",
                     str(self.proxy_port), "--storage-port-base", str(self.storage_base),
                     "--identity-port", str(self.identity_port), check=False)
        if result.returncode != 0:
            logs = self.logs()
            raise RuntimeError(f"cluster failed to start: {result.stdout}{result.stderr}\n{logs}")
        return result.stdout

    def stop(self) -> None:
        aio("stop", "--data-dir", self.data_dir, check=False)

    def status(self) -> dict:
        return json.loads(aio("status", "--json", "--data-dir", self.data_dir,
                              check=False).stdout)

    def pid(self, server: str) -> int:
        with open(os.path.join(self.data_dir, "run", f"{server}.pid")) as handle:
            return int(handle.read())

    def kill(self, server: str) -> None:
        os.kill(self.pid(server), signal.SIGKILL)
        time.sleep(0.2)

    def logs(self, lines: int = 20) -> str:
        out = []
        log_dir = os.path.join(self.data_dir, "log")
        for name in sorted(os.listdir(log_dir)) if os.path.isdir(log_dir) else []:
            with open(os.path.join(log_dir, name), errors="replace") as handle:
                tail = handle.readlines()[-lines:]
            out.append(f"== {name}\n{''.join(tail)}")
        return "\n".join(out)

    def swift_env(self, user: str = "test:tester", key: str = "testing") -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ST_"))}
        env.update(ST_AUTH=self.auth_url, ST_USER=user, ST_KEY=key)
        return env
