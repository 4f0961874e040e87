"""`ringstack-aio`: the whole cluster on this machine, in one command.

    ringstack-aio start [--data-dir DIR] [--port N] [--identity-port N] [--detach]
    ringstack-aio stop | status | env [--data-dir DIR]

`start` creates the cluster on first use (common.cluster), brings identity's users and catalog
up to date (its bootstrap), starts every server, waits until they answer, and prints the
endpoints, credentials and ready-to-paste examples; it stays in the foreground until Ctrl-C
unless `--detach`. A second start finds the data of the first. `env` prints the variables for
the swift CLI (v1 auth, ST_*) and for the openstack CLI (the admin, OS_*; also in
<data dir>/openrc).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

from common.cluster import Layout, ensure_cluster, openrc_lines
from common.supervisor import (
    READY_TIMEOUT_S,
    Supervisor,
    bootstrap_identity,
    pid_alive,
    pid_path,
    port_open,
    proxy_healthy,
    read_pid,
    stop_pids,
)

DEFAULT_DATA_DIR = os.environ.get("RINGSTACK_DATA",
                                  os.path.join(os.path.expanduser("~"), ".ringstack"))


def env_lines(layout: Layout) -> list[str]:
    user, value = next(iter(layout.users.items()))
    # ST_AUTH_VERSION keeps `swift` on v1 auth even though OS_IDENTITY_API_VERSION is set.
    lines = [f"export ST_AUTH={layout.auth_url}", f"export ST_USER={user}",
             f"export ST_KEY={value.split()[0]}", "export ST_AUTH_VERSION=1.0",
             *openrc_lines(layout), f"export RINGSTACK_DIR={layout.etc}"]
    # The clients installed beside this Python (the quick start's venv) go on PATH too.
    bin_dir = os.path.dirname(sys.executable)
    if os.path.exists(os.path.join(bin_dir, "swift")):
        lines.insert(0, f'export PATH="{bin_dir}:$PATH"')
    return lines


def banner(layout: Layout) -> str:
    user, value = next(iter(layout.users.items()))
    key = value.split()[0]
    url = f"http://{layout.bind_ip}:{layout.proxy_port}"
    return "\n".join([
        "ringstack all-in-one cluster is up.",
        f"  data directory : {layout.data_dir}",
        f"  Swift endpoint : {url}/v1/{layout.account(user.split(':')[0])}",
        f"  auth (v1)      : {layout.auth_url}",
        f"  user / key     : {user} / {key}",
        "  other users    : " + ", ".join(f"{u} / {v.split()[0]}"
                                           for u, v in list(layout.users.items())[1:]),
        "                   (test:tester3 is a plain user, a reader in identity; "
        "admin:admin is a reseller admin)",
        f"  identity (v3)  : {layout.identity_url}/v3",
        f"  admin / pass   : admin / {layout.admin_password}  (project admin, domain Default)",
        f"  openstack CLI  : source {layout.openrc}",
        "",
        "Try it:",
        f"  eval \"$(ringstack-aio env --data-dir {layout.data_dir})\"",
        "  swift stat",
        "  swift upload photos README.md && swift list photos",
        f"  curl -si -H 'X-Auth-User: {user}' -H 'X-Auth-Key: {key}' {layout.auth_url}",
        "  openstack token issue && openstack catalog list",
        "  openstack --os-username tester --os-password testing --os-project-name test \\",
        "      ec2 credentials create          # S3 keys for test:tester, then:",
        f"  aws --endpoint-url {url} s3 ls",
    ])


def _layout(args: argparse.Namespace) -> Layout:
    layout = Layout.load(os.path.abspath(args.data_dir))
    if layout is None:
        raise SystemExit(f"no cluster in {args.data_dir} (run `ringstack-aio start` first)")
    return layout


def cmd_start(args: argparse.Namespace) -> int:
    layout = ensure_cluster(args.data_dir, args.port, args.storage_port_base,
                            args.identity_port, daemons=not args.servers_only)
    running = read_pid(os.path.join(layout.run, "aio.pid"))
    if running:
        print(f"ringstack-aio: already running (pid {running}) on port {layout.proxy_port}")
        return 1
    try:
        report = bootstrap_identity(layout)
    except RuntimeError as err:
        print(f"ringstack-aio: {err}", file=sys.stderr)
        return 1
    layout.project_ids = dict(report.get("projects") or {})  # type: ignore[call-overload]
    layout.save()
    if args.detach:
        return _start_detached(layout)
    supervisor = Supervisor(layout)
    _record_supervisor(layout)
    try:
        supervisor.start_all()
        supervisor.wait_ready()
    except (RuntimeError, SystemExit) as err:
        supervisor.stop_all()
        _clear_supervisor(layout)
        print(f"ringstack-aio: {err}", file=sys.stderr)
        return 1
    print(banner(layout), flush=True)
    print("\nRunning in the foreground; Ctrl-C stops the cluster.", flush=True)
    try:
        supervisor.watch()
    finally:
        _clear_supervisor(layout)
    print("ringstack-aio: stopped", flush=True)
    return 0


def _record_supervisor(layout: Layout) -> None:
    with open(os.path.join(layout.run, "aio.pid"), "w") as handle:
        handle.write(str(os.getpid()))


def _clear_supervisor(layout: Layout) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(layout.run, "aio.pid"))


def _start_detached(layout: Layout) -> int:
    """Fork a session leader that runs the foreground supervisor with output to a log."""
    pid = os.fork()
    if pid == 0:
        os.setsid()
        log = os.open(os.path.join(layout.log, "aio.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(log, 1)
        os.dup2(log, 2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        supervisor = Supervisor(layout)
        _record_supervisor(layout)
        code = 0
        try:
            supervisor.start_all()
            supervisor.wait_ready()
            print("ready", flush=True)
            supervisor.watch()
        except BaseException as err:   # the daemon must always clean up its children
            print(f"ringstack-aio: {err}", flush=True)
            supervisor.stop_all()
            code = 1
        finally:
            _clear_supervisor(layout)
        os._exit(code)
    deadline = time.monotonic() + READY_TIMEOUT_S + 5
    while time.monotonic() < deadline:
        if proxy_healthy(layout):
            print(banner(layout))
            print(f"\nRunning in the background (pid {pid}); stop with "
                  f"`ringstack-aio stop --data-dir {layout.data_dir}`.")
            return 0
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print(f"ringstack-aio: failed to start; see {layout.log}/aio.log", file=sys.stderr)
            return 1
        time.sleep(0.2)
    print("ringstack-aio: the cluster did not become ready in time", file=sys.stderr)
    return 1


def cmd_stop(args: argparse.Namespace) -> int:
    layout = _layout(args)
    stopped = stop_pids(layout)
    print("ringstack-aio: stopped" if stopped else "ringstack-aio: not running")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    layout = _layout(args)
    rows = []
    for name, _kind, port in layout.servers():
        pid = read_pid(pid_path(layout, name))
        rows.append({"server": name, "port": port, "pid": pid,
                     "running": bool(pid and pid_alive(pid)),
                     "answering": port_open(layout.bind_ip, port)})
    healthy = all(r["answering"] for r in rows)
    if args.json:
        print(json.dumps({"data_dir": layout.data_dir, "healthy": healthy, "servers": rows}))
    else:
        print(f"{'server':<14}{'port':>6}{'pid':>9}  state")
        for row in rows:
            state = "up" if row["answering"] else ("starting" if row["running"] else "down")
            print(f"{row['server']:<14}{row['port']:>6}{row['pid'] or '-':>9}  {state}")
        print(f"\ncluster: {'up' if healthy else 'not fully up'}  ({layout.data_dir})")
    return 0 if healthy else 1


def cmd_env(args: argparse.Namespace) -> int:
    print("\n".join(env_lines(_layout(args))))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ringstack-aio",
                                     description="Run the whole ringstack cluster here.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, handler in (("start", cmd_start), ("stop", cmd_stop), ("status", cmd_status),
                          ("env", cmd_env)):
        sub = commands.add_parser(name)
        sub.set_defaults(handler=handler)
        sub.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                         help=f"where the cluster lives (default {DEFAULT_DATA_DIR})")
        sub.add_argument("--port", type=int, default=None, help="proxy port (default 8080)")
        if name == "start":
            sub.add_argument("--detach", action="store_true", help="run in the background")
            sub.add_argument("--storage-port-base", type=int, default=None,
                             help="first storage server port (default 6200; fixed at creation)")
            sub.add_argument("--identity-port", type=int, default=None,
                             help="identity (Keystone v3) port (default 5000)")
            sub.add_argument("--servers-only", action="store_true",
                             help="no background daemons (replicators, auditors, updaters, "
                                  "expirer), e.g. to compare with a bare Swift SAIO")
        if name == "status":
            sub.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
