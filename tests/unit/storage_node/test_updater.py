"""storage_node.updater (and http_client): async pendings replayed to real HTTP servers."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time

import pytest

from common.config import Config
from storage_node import async_pending, http_client
from storage_node.async_pending import PendingUpdate, Target
from storage_node.object_server import ObjectServer
from storage_node.updater import (
    ObjectUpdater,
    UpdaterSettings,
    is_delivered,
    run_daemon,
    send_to_targets,
)
from tests.unit.storage_node.test_object_server import (
    REPO_ROOT,
    ContainerStub,
    free_port,
    put,
    server_conf,
    ts,
)

LOGGER = logging.getLogger("test-updater")


def updater_conf(tmp_path, **overrides) -> Config:
    values = {"devices": str(tmp_path / "srv"), "mount_check": "false",
              "objects_per_second": "0", "concurrency": "4", "conn_timeout": "0.5",
              "node_timeout": "2"}
    values.update({k: str(v) for k, v in overrides.items()})
    return Config(values, "test", "object-updater")


def device_path(tmp_path, device="sda1") -> str:
    return str(tmp_path / "srv" / device)


def save_pending(tmp_path, name_hash: str, timestamp: str, targets: list[Target],
                 method: str = "PUT", path: str = "/a/c/o") -> str:
    update = PendingUpdate(method, path, {"X-Timestamp": timestamp, "X-Size": "1"}, targets)
    return async_pending.save(device_path(tmp_path), name_hash, timestamp, update)


def target(stub_or_port, device="sdc1", partition=5) -> Target:
    port = stub_or_port if isinstance(stub_or_port, int) else stub_or_port.port
    return Target("127.0.0.1", port, device, partition)


@pytest.fixture
def devices(tmp_path):
    for device in ("sda1", "sdb1"):
        (tmp_path / "srv" / device).mkdir(parents=True, exist_ok=True)
    return tmp_path / "srv"


# ---- end to end: container down at PUT time, updater delivers later ---------------------------

def test_pending_from_object_server_is_delivered_by_the_updater(tmp_path):
    app = ObjectServer(server_conf(tmp_path))
    port = free_port()                        # nothing listens here yet: the container is down
    t1 = ts()
    resp = put(app, b"abc", t1, X_Container_Host=f"127.0.0.1:{port}",
               X_Container_Device="sdc1", X_Container_Partition="5")
    assert resp.status_int == 201
    assert async_pending.count(device_path(tmp_path)) == 1

    # Still down: the sweep keeps the update.
    assert run_daemon(updater_conf(tmp_path), LOGGER, once=True) == 0
    assert async_pending.count(device_path(tmp_path)) == 1

    stub = ContainerStub(port=port).start()
    try:
        assert run_daemon(updater_conf(tmp_path), LOGGER, once=True) == 0
        assert len(stub.requests) == 1
        method, path, headers = stub.requests[0]
        assert (method, path) == ("PUT", "/sdc1/5/a/c/o")
        assert headers["X-Timestamp"] == t1.internal and headers["X-Size"] == "3"
        assert headers["X-Backend-Storage-Policy-Index"] == "0"
        assert async_pending.count(device_path(tmp_path)) == 0
    finally:
        stub.stop()


def test_partial_delivery_keeps_only_failed_targets(tmp_path, devices):
    good, failing = ContainerStub().start(), ContainerStub(status=500).start()
    try:
        path = save_pending(tmp_path, "a" * 32, ts().internal,
                            [target(good, "g"), target(failing, "f")])
        stats = ObjectUpdater(UpdaterSettings.from_config(updater_conf(tmp_path)),
                              LOGGER).sweep()
        assert (stats.found, stats.delivered, stats.kept) == (1, 0, 1)
        remaining = async_pending.load(path).targets
        assert [t.device for t in remaining] == ["f"]
        failing.status = 201
        stats = ObjectUpdater(UpdaterSettings.from_config(updater_conf(tmp_path)),
                              LOGGER).sweep()
        assert stats.delivered == 1 and not os.path.exists(path)
        assert len(good.requests) == 1           # the good target was not sent to again
    finally:
        good.stop()
        failing.stop()


@pytest.mark.parametrize(("status", "delivered"), [(201, True), (204, True), (404, True),
                                                   (409, True), (500, False), (507, False)])
def test_statuses_that_finish_an_update(tmp_path, devices, status, delivered):
    stub = ContainerStub(status=status).start()
    try:
        path = save_pending(tmp_path, "b" * 32, ts().internal, [target(stub)])
        run_daemon(updater_conf(tmp_path), LOGGER, once=True)
        assert os.path.exists(path) is not delivered
        assert is_delivered(status) is delivered
    finally:
        stub.stop()


def test_only_the_newest_update_per_name_is_sent(tmp_path, devices):
    stub = ContainerStub().start()
    try:
        t1, t2 = ts(), ts(1)
        old = save_pending(tmp_path, "c" * 32, t1.internal, [target(stub)])
        new = save_pending(tmp_path, "c" * 32, t2.internal, [target(stub)], method="DELETE")
        other = save_pending(tmp_path, "d" * 32, t1.internal, [target(stub)])
        stats = ObjectUpdater(UpdaterSettings.from_config(updater_conf(tmp_path)),
                              LOGGER).sweep()
        assert (stats.found, stats.superseded, stats.delivered) == (3, 1, 2)
        sent = sorted((method, headers["X-Timestamp"]) for method, _, headers in stub.requests)
        assert sent == sorted([("DELETE", t2.internal), ("PUT", t1.internal)])
        assert not any(os.path.exists(p) for p in (old, new, other))
    finally:
        stub.stop()


def test_corrupt_pending_is_set_aside(tmp_path, devices):
    directory = os.path.join(device_path(tmp_path), "async_pending", "eee")
    os.makedirs(directory)
    bad = os.path.join(directory, "e" * 32 + "-" + ts().internal)
    with open(bad, "wb") as handle:
        handle.write(b"\xc1 not msgpack")
    stats = ObjectUpdater(UpdaterSettings.from_config(updater_conf(tmp_path)), LOGGER).sweep()
    assert stats.corrupt == 1 and not os.path.exists(bad)
    assert os.listdir(os.path.join(device_path(tmp_path), "quarantined", "async_pending")) \
        == [os.path.basename(bad)]


def test_rate_is_bounded(tmp_path, devices):
    stub = ContainerStub().start()
    try:
        for index in range(6):
            save_pending(tmp_path, f"{index:032x}", ts().internal, [target(stub)])
        started = time.monotonic()
        stats = ObjectUpdater(UpdaterSettings.from_config(
            updater_conf(tmp_path, objects_per_second=20)), LOGGER).sweep()
        elapsed = time.monotonic() - started
        assert stats.delivered == 6
        assert elapsed >= 5 / 20 * 0.9             # the 6th may start only after 0.25 s
    finally:
        stub.stop()


def test_unmounted_devices_are_skipped(tmp_path, devices, monkeypatch):
    stub = ContainerStub().start()
    try:
        path = save_pending(tmp_path, "f" * 32, ts().internal, [target(stub)])
        conf = updater_conf(tmp_path, mount_check="true")
        run_daemon(conf, LOGGER, once=True)
        assert os.path.exists(path) and stub.requests == []
        monkeypatch.setattr(os.path, "ismount", lambda p: True)
        run_daemon(conf, LOGGER, once=True)
        assert not os.path.exists(path) and len(stub.requests) == 1
    finally:
        stub.stop()


def test_settings():
    assert UpdaterSettings.from_config(Config({}, "t", "object-updater")) == UpdaterSettings()
    settings = UpdaterSettings.from_config(Config({"interval": "30", "concurrency": "2"},
                                                  "t", "object-updater"))
    assert (settings.interval_s, settings.concurrency) == (30.0, 2)
    assert UpdaterSettings.from_config(
        Config({"updater_interval": "12"}, "t", "object-updater")).interval_s == 12.0


def test_updater_entry_point_runs_once(tmp_path, devices):
    stub = ContainerStub().start()
    try:
        path = save_pending(tmp_path, "9" * 32, ts().internal, [target(stub)])
        conf_path = tmp_path / "object-server.conf"
        conf_path.write_text(f"[DEFAULT]\ndevices = {tmp_path / 'srv'}\nmount_check = false\n"
                             "log_level = WARNING\n\n[object-updater]\nconcurrency = 2\n")
        result = subprocess.run([sys.executable, "-m", "common.server_main", "object-updater",
                                 str(conf_path), "--once"], cwd=REPO_ROOT,
                                env=dict(os.environ, PYTHONPATH=REPO_ROOT),
                                capture_output=True, timeout=60)
        assert result.returncode == 0, result.stderr.decode()
        assert not os.path.exists(path) and len(stub.requests) == 1
    finally:
        stub.stop()


# ---- the live path and the HTTP client --------------------------------------------------------

def test_send_to_targets_returns_the_failures():
    good, failing = ContainerStub().start(), ContainerStub(status=503).start()
    down = free_port()
    try:
        update = PendingUpdate("PUT", "/a/c/o", {"X-Timestamp": ts().internal},
                               [target(good, "g"), target(failing, "f"), target(down, "d")])
        failed = send_to_targets(update, wait_s=5, conn_timeout_s=0.5, node_timeout_s=2)
        assert sorted(t.device for t in failed) == ["d", "f"]
    finally:
        good.stop()
        failing.stop()


def test_http_client_result_and_errors():
    stub = ContainerStub(status=202).start()
    try:
        result = http_client.request("127.0.0.1", stub.port, "PUT", "/d/1/a/c/o x",
                                     {"X-Timestamp": "1"})
        assert result.status == 202 and result.body == b""
        method, path, headers = stub.requests[0]
        assert (method, path, headers["X-Timestamp"]) == ("PUT", "/d/1/a/c/o x", "1")
    finally:
        stub.stop()
    with pytest.raises(http_client.HttpError):
        http_client.request("127.0.0.1", free_port(), "PUT", "/x")


def test_http_client_response_timeout():
    with socket.socket() as listener:           # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        started = time.monotonic()
        with pytest.raises(http_client.HttpTimeout):
            http_client.request("127.0.0.1", listener.getsockname()[1], "PUT", "/x",
                                response_timeout_s=0.3)
        assert time.monotonic() - started < 2


def test_split_host():
    assert http_client.split_host("10.0.0.1:6201") == ("10.0.0.1", 6201)
    assert http_client.split_host("[::1]:6201") == ("::1", 6201)
    for bad in ("10.0.0.1", ":6201", "host:port", "h:70000"):
        with pytest.raises(ValueError):
            http_client.split_host(bad)
