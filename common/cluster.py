"""The all-in-one cluster's layout: its data directory, config files and rings.

    <data dir>/etc/ringstack.conf               hash secrets, constraints, storage policies
    <data dir>/etc/{account,container,object}.ring (+ .builder)
    <data dir>/etc/proxy-server.conf            users and keys, pipeline
    <data dir>/etc/{object,container,account}-server/<n>.conf
    <data dir>/srv/<n>/<device>/                one device per storage node
    <data dir>/run/  <data dir>/log/

The shape is Swift's SAIO: `nodes` storage nodes (default 4), each one device in its own zone,
with an object, container and account server; 3 replicas; part power 10. Everything is created
once, on the first start; later starts reuse it (the data survives). Secrets are random per
cluster.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from typing import Any

from ring.builder import RingBuilder
from ring.builder_file import save_builder

RING_KINDS = ("account", "container", "object")
STORAGE_KINDS = ("object", "container", "account")
PORT_OFFSET = {"object": 0, "container": 1, "account": 2}
LAYOUT_FILE = "cluster.json"


@dataclasses.dataclass
class Layout:
    """Where everything of one all-in-one cluster lives, and on which ports."""

    data_dir: str
    proxy_port: int = 8080
    storage_base_port: int = 6200       # node n's servers: base + 10*(n-1) + offset
    nodes: int = 4
    replicas: int = 3
    part_power: int = 10
    proxy_workers: int = 2
    storage_workers: int = 1
    bind_ip: str = "127.0.0.1"
    users: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def etc(self) -> str:
        return os.path.join(self.data_dir, "etc")

    @property
    def run(self) -> str:
        return os.path.join(self.data_dir, "run")

    @property
    def log(self) -> str:
        return os.path.join(self.data_dir, "log")

    def devices(self, node: int) -> str:
        return os.path.join(self.data_dir, "srv", str(node))

    def device_name(self, node: int) -> str:
        return f"sdb{node}"

    def port(self, kind: str, node: int) -> int:
        return self.storage_base_port + 10 * (node - 1) + PORT_OFFSET[kind]

    def conf_path(self, kind: str, node: int | None = None) -> str:
        if kind == "proxy":
            return os.path.join(self.etc, "proxy-server.conf")
        return os.path.join(self.etc, f"{kind}-server", f"{node}.conf")

    def servers(self) -> list[tuple[str, str, int]]:
        """(name, type, port) of every server: storage nodes first, the proxy last."""
        result = []
        for node in range(1, self.nodes + 1):
            for kind in STORAGE_KINDS:
                result.append((f"{kind}-{node}", kind, self.port(kind, node)))
        result.append(("proxy", "proxy", self.proxy_port))
        return result

    @property
    def auth_url(self) -> str:
        return f"http://{self.bind_ip}:{self.proxy_port}/auth/v1.0"

    def save(self) -> None:
        with open(os.path.join(self.data_dir, LAYOUT_FILE), "w") as handle:
            json.dump(dataclasses.asdict(self), handle, indent=2)

    @classmethod
    def load(cls, data_dir: str) -> Layout | None:
        try:
            with open(os.path.join(data_dir, LAYOUT_FILE)) as handle:
                data: dict[str, Any] = json.load(handle)
        except FileNotFoundError:
            return None
        data["data_dir"] = data_dir
        return cls(**data)


def default_users() -> dict[str, str]:
    """account:user -> key plus roles, as the proxy's tempauth-style config lines take them."""
    return {
        "test:tester": "testing .admin",
        "test:tester3": "testing3",
        "test2:tester2": "testing2 .admin",
        "admin:admin": f"{secrets.token_urlsafe(12)} .admin .reseller_admin",
    }


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _common_default(layout: Layout, port: int, workers: int, devices: str = "") -> str:
    lines = ["[DEFAULT]", f"bind_ip = {layout.bind_ip}", f"bind_port = {port}",
             f"workers = {workers}", f"swift_dir = {layout.etc}", "log_level = INFO"]
    if devices:
        lines += [f"devices = {devices}", "mount_check = false"]
    return "\n".join(lines) + "\n"


def write_configs(layout: Layout) -> None:
    """(Re)write every config from the layout; secrets are made once and then kept."""
    ringstack_conf = os.path.join(layout.etc, "ringstack.conf")
    if not os.path.exists(ringstack_conf):
        _write(ringstack_conf, "\n".join([
            "[ringstack-hash]",
            f"path_prefix = {secrets.token_hex(8)}",
            f"path_suffix = {secrets.token_hex(8)}",
            "",
            "[swift-constraints]",
            "",
            "[storage-policy:0]",
            "name = gold",
            "default = yes",
            "policy_type = replication",
            "",
        ]))
    users = "\n".join(f"user_{name.replace(':', '_')} = {value}"
                      for name, value in layout.users.items())
    token_key = os.path.join(layout.etc, "token.key")
    if not os.path.exists(token_key):
        _write(token_key, secrets.token_hex(32) + "\n")
    with open(token_key) as handle:
        key = handle.read().strip()
    _write(layout.conf_path("proxy"),
           _common_default(layout, layout.proxy_port, layout.proxy_workers) +
           "\n[proxy-server]\n"
           "account_autocreate = true\n"
           f"token_signing_key = {key}\n"
           f"{users}\n")
    for node in range(1, layout.nodes + 1):
        devices = layout.devices(node)
        os.makedirs(os.path.join(devices, layout.device_name(node)), exist_ok=True)
        for kind in STORAGE_KINDS:
            _write(layout.conf_path(kind, node),
                   _common_default(layout, layout.port(kind, node), layout.storage_workers,
                                   devices) + f"\n[{kind}-server]\n")
        _write(os.path.join(layout.etc, "object-updater", f"{node}.conf"),
               _common_default(layout, layout.port("object", node), 1, devices) +
               "\n[object-updater]\n")


def build_rings(layout: Layout) -> None:
    """One ring per kind: every node's device in its own zone, as the SAIO does."""
    for kind in RING_KINDS:
        ring_path = os.path.join(layout.etc, f"{kind}.ring")
        if os.path.exists(ring_path):
            continue
        builder = RingBuilder(layout.part_power, layout.replicas, 1)
        for node in range(1, layout.nodes + 1):
            builder.add_device(region=1, zone=node, ip=layout.bind_ip,
                               port=layout.port(kind, node),
                               device=layout.device_name(node), weight=100)
        builder.rebalance(seed=1)
        builder.validate()
        save_builder(builder, os.path.join(layout.etc, f"{kind}.builder"))
        builder.ring_data().save(ring_path)


def ensure_cluster(data_dir: str, proxy_port: int | None = None,
                   storage_base_port: int | None = None) -> Layout:
    """The cluster in `data_dir`, created on first use; ports can be moved on any start."""
    data_dir = os.path.abspath(data_dir)
    layout = Layout.load(data_dir)
    if layout is None:
        layout = Layout(data_dir, users=default_users())
    if proxy_port is not None:
        layout.proxy_port = proxy_port
    if storage_base_port is not None and storage_base_port != layout.storage_base_port:
        if os.path.exists(os.path.join(layout.etc, "object.ring")):
            raise SystemExit("the storage ports are fixed in this cluster's rings "
                             f"(base {layout.storage_base_port}); use a new --data-dir")
        layout.storage_base_port = storage_base_port
    for path in (layout.etc, layout.run, layout.log):
        os.makedirs(path, exist_ok=True)
    layout.save()
    write_configs(layout)
    build_rings(layout)
    return layout
