"""The proxy against the real storage servers (storage_node), in one process: the contract test.

Four object, container and account servers each, with their devices in a tmp directory, real
rings, served by eventlet on 127.0.0.1. Checks what only the real servers can show: container
updates reaching listings, 100-continue PUTs, and a GET resumed from another replica after a
node found its copy corrupt and broke off mid-body.
"""

from __future__ import annotations

import glob
import json
import os

import eventlet
import eventlet.wsgi
import pytest

from common.config import Config
from proxy.server import app_factory
from ring import Ring, load_hash_secrets
from ring.builder import RingBuilder
from tests.unit.proxy.fakes import _NullLog, call

object_server = pytest.importorskip("storage_node.object_server")
container_server = pytest.importorskip("storage_node.container_server")
account_server = pytest.importorskip("storage_node.account_server")
SERVER_MODULES = {"object": object_server, "container": container_server,
                  "account": account_server}


@pytest.fixture
def real_cluster(tmp_path):
    swift_dir = tmp_path / "etc"
    swift_dir.mkdir()
    (swift_dir / "ringstack.conf").write_text(
        "[ringstack-hash]\npath_prefix = pre\npath_suffix = suf\n\n"
        "[storage-policy:0]\nname = gold\ndefault = yes\n")
    threads, devices_of = [], {}
    for kind, module in SERVER_MODULES.items():
        socks = [eventlet.listen(("127.0.0.1", 0)) for _ in range(4)]
        builder = RingBuilder(6, 3, 0)
        for index, sock in enumerate(socks):
            builder.add_device(region=1, zone=index + 1, ip="127.0.0.1",
                               port=sock.getsockname()[1], device=f"d{index}", weight=100)
        builder.rebalance(seed=1)
        builder.ring_data().save(str(swift_dir / f"{kind}.ring"))
        for index, sock in enumerate(socks):
            devices = tmp_path / f"{kind}{index}"
            (devices / f"d{index}").mkdir(parents=True)
            devices_of[(kind, sock.getsockname()[1])] = str(devices)
            conf = Config({"swift_dir": str(swift_dir), "devices": str(devices),
                           "mount_check": "false", "log_requests": "false",
                           "account_update_interval": "0"}, "<test>",
                          module.SECTION)
            threads.append((eventlet.spawn(eventlet.wsgi.server, sock, module.app_factory(conf),
                                           log=_NullLog(), log_output=False), sock))
    proxy = app_factory(Config({
        "swift_dir": str(swift_dir), "user_test_tester": "testing .admin",
        "token_key": "k" * 32, "sorting_method": "none",
        "pipeline": "catch_errors gatekeeper healthcheck tempauth proxy"}, "<test>",
        "proxy-server"))
    token = call(proxy, "/auth/v1.0", headers={"X-Auth-User": "test:tester",
                                               "X-Auth-Key": "testing"}).headers["X-Auth-Token"]
    try:
        yield proxy, {"X-Auth-Token": token}, str(swift_dir), devices_of
    finally:
        for thread, sock in threads:
            thread.kill()
            sock.close()


def test_object_life_cycle_and_listings(real_cluster):
    proxy, auth, _swift_dir, _devices = real_cluster
    assert call(proxy, "/v1/AUTH_test/c", "PUT", headers=auth).status_int == 201
    body = os.urandom(300000)
    assert call(proxy, "/v1/AUTH_test/c/o", "PUT", headers=auth, body=body).status_int == 201
    assert call(proxy, "/v1/AUTH_test/c/chunked", "PUT", headers=auth, body=b"abc" * 1000,
                chunked=True).status_int == 201
    got = call(proxy, "/v1/AUTH_test/c/o", headers=auth)
    assert got.status_int == 200 and got.body == body
    ranged = call(proxy, "/v1/AUTH_test/c/o", headers={**auth, "Range": "bytes=10-19"})
    assert ranged.status_int == 206 and ranged.body == body[10:20]
    listing = json.loads(call(proxy, "/v1/AUTH_test/c?format=json", headers=auth).body)
    assert [(row["name"], row["bytes"]) for row in listing] == [("chunked", 3000),
                                                                 ("o", 300000)]
    by_accept = call(proxy, "/v1/AUTH_test/c", headers={**auth, "Accept": "application/json"})
    assert json.loads(by_accept.body) == listing
    assert call(proxy, "/v1/AUTH_test/c?prefix=ch", headers=auth).body == b"chunked\n"
    accounts = json.loads(call(proxy, "/v1/AUTH_test?format=json", headers=auth).body)
    assert [row["name"] for row in accounts] == ["c"]
    assert call(proxy, "/v1/AUTH_test/c/o", "POST",
                headers={**auth, "X-Object-Meta-A": "b"}).status_int == 202
    assert call(proxy, "/v1/AUTH_test/c/o", "HEAD", headers=auth).headers["X-Object-Meta-A"] \
        == "b"
    assert call(proxy, "/v1/AUTH_test/c", "DELETE", headers=auth).status_int == 409
    assert call(proxy, "/v1/AUTH_test/c/o", "DELETE", headers=auth).status_int == 204
    assert call(proxy, "/v1/AUTH_test/c/o", headers=auth).status_int == 404
    assert call(proxy, "/v1/AUTH_test/c/o", "DELETE", headers=auth).status_int == 404


def test_corrupt_replica_is_resumed_from_another(real_cluster):
    proxy, auth, swift_dir, devices_of = real_cluster
    call(proxy, "/v1/AUTH_test/c", "PUT", headers=auth)
    body = os.urandom(1 << 20)
    assert call(proxy, "/v1/AUTH_test/c/big", "PUT", headers=auth, body=body).status_int == 201
    ring = Ring(os.path.join(swift_dir, "object.ring"),
                load_hash_secrets(os.path.join(swift_dir, "ringstack.conf")))
    part, nodes = ring.get_nodes("AUTH_test", "c", "big")
    devices = devices_of[("object", nodes[0].port)]   # the first node asked (no shuffling)
    [data_file] = glob.glob(os.path.join(devices, "*", "objects", str(part), "*", "*",
                                         "*.data"))
    offset = len(body) - 1000    # in the tail a node holds back until its MD5 check passes
    with open(data_file, "r+b") as handle:
        handle.seek(offset)
        handle.write(bytes([body[offset] ^ 0xFF]))
    response = call(proxy, "/v1/AUTH_test/c/big", headers=auth)
    assert response.status_int == 200 and response.body == body
