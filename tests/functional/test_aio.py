"""ringstack-aio as a user runs it: start, status, env, stop, and a restart that keeps data."""

from __future__ import annotations

import os

from swiftclient import client as swift_client

from tests.functional.cluster import Cluster, aio, free_port_block


def test_start_status_env_stop_and_restart_keeps_data(tmp_path):
    base = free_port_block(40)
    cluster = Cluster(str(tmp_path / "aio"), proxy_port=base + 35, storage_base=base)
    banner = cluster.start()
    try:
        assert f"auth (v1)      : {cluster.auth_url}" in banner
        assert "user / key     : test:tester / testing" in banner
        assert "swift stat" in banner and "curl -si" in banner
        status = cluster.status()
        assert status["healthy"] and len(status["servers"]) == 13
        env = aio("env", "--data-dir", cluster.data_dir).stdout
        assert f"export ST_AUTH={cluster.auth_url}" in env
        assert "export ST_USER=test:tester" in env and "export ST_KEY=testing" in env

        url, token = swift_client.get_auth(cluster.auth_url, "test:tester", "testing")
        swift_client.put_container(url, token, "keep")
        swift_client.put_object(url, token, "keep", "me", b"still here")

        again = aio("start", "--detach", "--data-dir", cluster.data_dir, check=False)
        assert again.returncode == 1 and "already running" in again.stdout
    finally:
        cluster.stop()
    assert not cluster.status()["healthy"]
    assert not os.path.exists(os.path.join(cluster.data_dir, "run", "aio.pid"))

    cluster.start()
    try:
        url, token = swift_client.get_auth(cluster.auth_url, "test:tester", "testing")
        assert swift_client.get_object(url, token, "keep", "me")[1] == b"still here"
    finally:
        cluster.stop()
