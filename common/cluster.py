"""The all-in-one cluster's layout: its data directory, config files and rings.

    <data dir>/etc/ringstack.conf               hash secrets, constraints, storage policies
    <data dir>/etc/{account,container,object}.ring (+ .builder)
    <data dir>/etc/proxy-server.conf            users and keys, pipeline, identity_* options
    <data dir>/etc/identity.conf                the identity server (Keystone v3 subset)
    <data dir>/etc/identity-bootstrap.json      what identity's bootstrap creates (0600)
    <data dir>/etc/{object,container,account}-server/<n>.conf
    <data dir>/identity/                        identity's sqlite and Fernet keys (0700)
    <data dir>/srv/<n>/<device>/                one device per storage node
    <data dir>/openrc                           the admin's OS_* variables (0600)
    <data dir>/run/  <data dir>/log/

The shape is Swift's SAIO: `nodes` storage nodes (default 4), each one device in its own zone,
with an object, container and account server; 3 replicas; part power 10; plus one identity
server and the proxy. Everything is created once, on the first start; later starts reuse it
(the data survives). Secrets and the admin's and the proxy's identity passwords are random per
cluster, and the files holding them are readable by their owner only.

Users: the same `account:user` entries serve tempauth (proxy config lines) and identity
(bootstrap: project `account`, user `user`; `.reseller_admin` -> role admin, `.admin` -> member,
none -> reader). Which of the two the proxy uses is AIO_PROXY_AUTH.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from typing import Any

from ring.builder import RingBuilder
from ring.builder_file import save_builder

# The proxy's auth in the all-in-one: "tempauth" (users from the proxy's config) or
# "keystoneauth" (users, tokens and S3 credentials from identity; needs proxy/keystone_auth.py).
AIO_PROXY_AUTH = "keystoneauth"
PIPELINES = {
    "tempauth": "catch_errors gatekeeper healthcheck proxy-logging bulk tempauth copy slo dlo "
                "proxy",
    "keystoneauth": "catch_errors gatekeeper healthcheck proxy-logging bulk tempurl s3api "
                    "keystoneauth copy container-quotas account-quotas slo dlo proxy",
}
SERVICE_USER = "ringstack-proxy"
SERVICE_PROJECT = "service"
REGION = "RegionOne"
RING_KINDS = ("account", "container", "object")
STORAGE_KINDS = ("object", "container", "account")
PORT_OFFSET = {"object": 0, "container": 1, "account": 2}
LAYOUT_FILE = "cluster.json"
# (daemon, the server whose [DEFAULT] it shares): one of each per storage node ...
NODE_DAEMONS = (("object-updater", "object"), ("object-replicator", "object"),
                ("object-auditor", "object"), ("container-replicator", "container"),
                ("account-replicator", "account"), ("db-auditor", "container"))
# ... and one for the whole cluster (it works through the rings), beside node 1.
CLUSTER_DAEMONS = (("object-expirer", "object"),)


@dataclasses.dataclass
class Layout:
    """Where everything of one all-in-one cluster lives, and on which ports."""

    data_dir: str
    proxy_port: int = 8080
    identity_port: int = 5000
    storage_base_port: int = 6200       # node n's servers: base + 10*(n-1) + offset
    nodes: int = 4
    replicas: int = 3
    part_power: int = 10
    proxy_workers: int = 2
    storage_workers: int = 1
    bind_ip: str = "127.0.0.1"
    daemons_enabled: bool = True        # replicators, auditors, updater, expirer
    users: dict[str, str] = dataclasses.field(default_factory=dict)
    identity_service_password: str = ""
    project_ids: dict[str, str] = dataclasses.field(default_factory=dict)  # from bootstrap

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

    @property
    def identity_dir(self) -> str:
        return os.path.join(self.data_dir, "identity")

    @property
    def identity_seed(self) -> str:
        return os.path.join(self.etc, "identity-bootstrap.json")

    @property
    def openrc(self) -> str:
        return os.path.join(self.data_dir, "openrc")

    @property
    def identity_url(self) -> str:
        return f"http://{self.bind_ip}:{self.identity_port}"

    @property
    def admin_password(self) -> str:
        return self.users.get("admin:admin", "").split(" ")[0]

    def conf_path(self, kind: str, node: int | None = None) -> str:
        if kind == "proxy":
            return os.path.join(self.etc, "proxy-server.conf")
        if kind == "identity":
            return os.path.join(self.etc, "identity.conf")
        return os.path.join(self.etc, f"{kind}-server", f"{node}.conf")

    def daemons(self) -> list[tuple[str, str, str]]:
        """(name, type, config path) of every background daemon (none when `daemons` is off)."""
        if not self.daemons_enabled:
            return []
        result = []
        for node in range(1, self.nodes + 1):
            for kind, _server in NODE_DAEMONS:
                result.append((f"{kind}-{node}", kind, self.daemon_conf_path(kind, node)))
        for kind, _server in CLUSTER_DAEMONS:
            result.append((kind, kind, self.daemon_conf_path(kind, 1)))
        return result

    def daemon_conf_path(self, kind: str, node: int) -> str:
        return os.path.join(self.etc, kind, f"{node}.conf")

    def recon_dir(self, node: int) -> str:
        return os.path.join(self.data_dir, "recon", str(node))

    def servers(self) -> list[tuple[str, str, int]]:
        """(name, type, port) of every server: storage nodes first, then identity, the proxy
        last (it needs both)."""
        result = []
        for node in range(1, self.nodes + 1):
            for kind in STORAGE_KINDS:
                result.append((f"{kind}-{node}", kind, self.port(kind, node)))
        result.append(("identity", "identity", self.identity_port))
        result.append(("proxy", "proxy", self.proxy_port))
        return result

    def account(self, project: str) -> str:
        """The Swift account of a project (`test`) as the proxy's auth names it."""
        if AIO_PROXY_AUTH == "keystoneauth":
            return f"AUTH_{self.project_ids.get(project, project)}"
        return f"AUTH_{project}"

    @property
    def auth_url(self) -> str:
        return f"http://{self.bind_ip}:{self.proxy_port}/auth/v1.0"

    def save(self) -> None:
        _write(os.path.join(self.data_dir, LAYOUT_FILE),
               json.dumps(dataclasses.asdict(self), indent=2), private=True)

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


def _write(path: str, text: str, private: bool = False) -> None:
    """Write atomically; `private` files (holding passwords or keys) get mode 0600."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    if private:
        os.chmod(tmp, 0o600)    # an older copy of tmp may have had looser permissions
    os.replace(tmp, path)


def identity_roles(groups: list[str]) -> list[str]:
    """A tempauth user's groups as identity roles (see the module docstring)."""
    if ".reseller_admin" in groups:
        return ["admin"]
    if ".admin" in groups:
        return ["member"]
    return ["reader"]


def identity_plan(layout: Layout) -> dict[str, Any]:
    """What identity's bootstrap creates for this cluster (identity.bootstrap's plan)."""
    users = []
    for name, value in layout.users.items():
        project, user = name.split(":", 1)
        password, *groups = value.split()
        users.append({"project": project, "name": user, "password": password,
                      "roles": identity_roles(groups)})
    users.append({"project": SERVICE_PROJECT, "name": SERVICE_USER,
                  "password": layout.identity_service_password, "roles": ["service"]})
    proxy_url = f"http://{layout.bind_ip}:{layout.proxy_port}"
    return {
        "admin": {"user": "admin", "project": "admin", "password": layout.admin_password},
        "region": REGION,
        "users": users,
        "services": [
            {"type": "identity", "name": "keystone", "url": f"{layout.identity_url}/v3"},
            {"type": "object-store", "name": "swift",
             "url": f"{proxy_url}/v1/AUTH_$(project_id)s"},
        ],
    }


def openrc_lines(layout: Layout) -> list[str]:
    """The admin's OS_* variables for the openstack CLI (and swift with -V 3)."""
    return [f"export OS_AUTH_URL={layout.identity_url}/v3",
            "export OS_IDENTITY_API_VERSION=3",
            "export OS_USERNAME=admin",
            f"export OS_PASSWORD={layout.admin_password}",
            "export OS_PROJECT_NAME=admin",
            "export OS_USER_DOMAIN_NAME=Default",
            "export OS_PROJECT_DOMAIN_NAME=Default",
            f"export OS_REGION_NAME={REGION}"]


def _identity_conf(layout: Layout) -> str:
    return (_common_default(layout, layout.identity_port, 1) +
            "\n[identity]\n"
            f"identity_dir = {layout.identity_dir}\n")


def _proxy_auth_options(layout: Layout) -> str:
    return "".join(f"{line}\n" for line in [
        f"pipeline = {PIPELINES[AIO_PROXY_AUTH]}",
        f"identity_url = {layout.identity_url}",
        f"identity_service_user = {SERVICE_USER}",
        f"identity_service_password = {layout.identity_service_password}",
        f"identity_service_project = {SERVICE_PROJECT}",
        "identity_service_domain = default",
        "reseller_prefix = AUTH",
    ])


def _common_default(layout: Layout, port: int, workers: int, devices: str = "",
                    recon_dir: str = "") -> str:
    lines = ["[DEFAULT]", f"bind_ip = {layout.bind_ip}", f"bind_port = {port}",
             f"workers = {workers}", f"swift_dir = {layout.etc}", "log_level = INFO"]
    if devices:
        lines += [f"devices = {devices}", "mount_check = false"]
    if recon_dir:
        lines.append(f"recon_cache_path = {recon_dir}")
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
        _write(token_key, secrets.token_hex(32) + "\n", private=True)
    with open(token_key) as handle:
        key = handle.read().strip()
    _write(layout.conf_path("proxy"),
           _common_default(layout, layout.proxy_port, layout.proxy_workers) +
           "\n[proxy-server]\n"
           "account_autocreate = true\n"
           f"token_signing_key = {key}\n" +
           _proxy_auth_options(layout) +
           f"{users}\n", private=True)
    _write(layout.conf_path("identity"), _identity_conf(layout))
    _write(layout.identity_seed, json.dumps(identity_plan(layout), indent=2), private=True)
    _write(layout.openrc, "# the ringstack all-in-one's admin, for the openstack CLI: "
           f"source {layout.openrc}\n" + "\n".join(openrc_lines(layout)) + "\n", private=True)
    for node in range(1, layout.nodes + 1):
        devices = layout.devices(node)
        os.makedirs(os.path.join(devices, layout.device_name(node)), exist_ok=True)
        os.makedirs(layout.recon_dir(node), exist_ok=True)

        def default(kind: str, workers: int, node: int = node, devices: str = devices) -> str:
            return _common_default(layout, layout.port(kind, node), workers, devices,
                                   layout.recon_dir(node))

        for kind in STORAGE_KINDS:
            _write(layout.conf_path(kind, node),
                   default(kind, layout.storage_workers) + f"\n[{kind}-server]\n")
        # A daemon shares its server's [DEFAULT] (devices, and the bind address by which a
        # replicator finds its own devices in the ring).
        for kind, server in NODE_DAEMONS + (CLUSTER_DAEMONS if node == 1 else ()):
            _write(layout.daemon_conf_path(kind, node), default(server, 1) + f"\n[{kind}]\n")


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
                   storage_base_port: int | None = None,
                   identity_port: int | None = None, daemons: bool = True) -> Layout:
    """The cluster in `data_dir`, created on first use; ports can be moved on any start, and
    the background daemons left out (`daemons=False`, e.g. to compare with a bare SAIO)."""
    data_dir = os.path.abspath(data_dir)
    layout = Layout.load(data_dir)
    if layout is None:
        layout = Layout(data_dir, users=default_users())
    if not layout.identity_service_password:     # also for clusters made before identity
        layout.identity_service_password = secrets.token_urlsafe(18)
    if proxy_port is not None:
        layout.proxy_port = proxy_port
    if identity_port is not None:
        layout.identity_port = identity_port
    layout.daemons_enabled = daemons
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
