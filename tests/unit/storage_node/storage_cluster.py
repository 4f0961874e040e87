"""A real storage cluster in this process, for daemon tests: object, container and account
servers of `nodes` nodes on 127.0.0.1 (eventlet green threads), real rings, and the real proxy
app in front (called in-process). Each node's three servers share one devices directory with
one device, as in the all-in-one; each node's recon cache is its own directory."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import eventlet
import eventlet.wsgi

from common.config import Config
from proxy.server import app_factory as proxy_factory
from ring import Ring, load_hash_secrets
from ring.builder import RingBuilder
from storage_node import account_server, container_server, object_server
from tests.unit.proxy.fakes import _NullLog, call

SERVER_MODULES = {"object": object_server, "container": container_server,
                  "account": account_server}


@dataclasses.dataclass
class StorageNode:
    index: int
    devices: str
    device: str
    recon_cache: str
    ports: dict[str, int]

    @property
    def device_path(self) -> str:
        return os.path.join(self.devices, self.device)

    def conf(self, section: str, **extra: str) -> Config:
        values = {"swift_dir": "", "devices": self.devices, "mount_check": "false",
                  "log_requests": "false", "recon_cache_path": self.recon_cache,
                  "account_update_interval": "0.05"}
        values.update(extra)
        return Config(values, "<test>", section)


class StorageCluster:
    def __init__(self, root: str, nodes: int = 4, replicas: int = 3, part_power: int = 6):
        self.root = root
        self.swift_dir = os.path.join(root, "etc")
        os.makedirs(self.swift_dir)
        with open(os.path.join(self.swift_dir, "ringstack.conf"), "w") as handle:
            handle.write("[ringstack-hash]\npath_prefix = pre\npath_suffix = suf\n\n"
                         "[storage-policy:0]\nname = gold\ndefault = yes\n")
        self.secrets = load_hash_secrets(os.path.join(self.swift_dir, "ringstack.conf"))
        self.nodes: list[StorageNode] = []
        self._sockets: dict[tuple[str, int], Any] = {}
        self._threads: dict[tuple[str, int], Any] = {}
        for index in range(nodes):
            ports = {}
            for kind in SERVER_MODULES:
                sock = eventlet.listen(("127.0.0.1", 0))
                ports[kind] = sock.getsockname()[1]
                self._sockets[(kind, index)] = sock
            node = StorageNode(index, os.path.join(root, f"node{index}"), f"d{index}",
                               os.path.join(root, f"recon{index}"), ports)
            os.makedirs(node.device_path)
            self.nodes.append(node)
        for kind in SERVER_MODULES:
            builder = RingBuilder(part_power, replicas, 0)
            for node in self.nodes:
                builder.add_device(region=1, zone=node.index + 1, ip="127.0.0.1",
                                   port=node.ports[kind], device=node.device, weight=100)
            builder.rebalance(seed=1)
            builder.ring_data().save(os.path.join(self.swift_dir, f"{kind}.ring"))
        for kind in SERVER_MODULES:
            for node in self.nodes:
                self.start(kind, node.index)
        self.proxy = proxy_factory(Config({
            "swift_dir": self.swift_dir, "user_test_tester": "testing .admin",
            "token_key": "k" * 32, "sorting_method": "none",
            "pipeline": "catch_errors gatekeeper healthcheck tempauth proxy"}, "<test>",
            "proxy-server"))
        self.token = call(self.proxy, "/auth/v1.0", headers={
            "X-Auth-User": "test:tester", "X-Auth-Key": "testing"}).headers["X-Auth-Token"]

    def conf(self, node: StorageNode, section: str, **extra: str) -> Config:
        return node.conf(section, swift_dir=self.swift_dir, **extra)

    def start(self, kind: str, index: int) -> None:
        module = SERVER_MODULES[kind]
        node = self.nodes[index]
        sock = self._sockets.get((kind, index))
        if sock is None:
            sock = eventlet.listen(("127.0.0.1", node.ports[kind]))
            self._sockets[(kind, index)] = sock
        app = module.app_factory(self.conf(node, module.SECTION))
        self._threads[(kind, index)] = eventlet.spawn(
            eventlet.wsgi.server, sock, app, log=_NullLog(), log_output=False)

    def stop_server(self, kind: str, index: int) -> None:
        """Stop one server: its port refuses connections until `start` again."""
        thread = self._threads.pop((kind, index), None)
        if thread is not None:
            thread.kill()
        sock = self._sockets.pop((kind, index), None)
        if sock is not None:
            sock.close()
        eventlet.sleep(0)

    def stop(self) -> None:
        for kind, index in list(self._threads):
            self.stop_server(kind, index)

    def ring(self, kind: str) -> Ring:
        return Ring(os.path.join(self.swift_dir, f"{kind}.ring"), self.secrets)

    def node_of(self, port: int, kind: str) -> StorageNode:
        return next(node for node in self.nodes if node.ports[kind] == port)

    def request(self, path: str, method: str = "GET", headers: dict[str, str] | None = None,
                body: bytes | None = None) -> Any:
        """A client request through the proxy (authenticated)."""
        return call(self.proxy, path, method, headers={"X-Auth-Token": self.token,
                                                       **(headers or {})}, body=body)
