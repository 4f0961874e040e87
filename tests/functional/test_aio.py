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
        assert f"identity (v3)  : {cluster.identity_url}" in banner
        openrc = os.path.join(cluster.data_dir, "openrc")
        assert f"source {openrc}" in banner
        admin_password = cluster.layout().admin_password
        assert f"admin / pass   : admin / {admin_password}" in banner
        status = cluster.status()
        assert status["healthy"] and len(status["servers"]) == 14
        assert {"server": "identity", "port": cluster.identity_port} == \
            {k: v for k, v in status["servers"][-2].items() if k in ("server", "port")}
        env = aio("env", "--data-dir", cluster.data_dir).stdout
        assert f"export ST_AUTH={cluster.auth_url}" in env
        assert "export ST_USER=test:tester" in env and "export ST_KEY=testing" in env
        assert "export ST_AUTH_VERSION=1.0" in env
        assert f"export OS_AUTH_URL={cluster.identity_url}" in env
        assert f"export OS_PASSWORD={admin_password}" in env
        for line in ("export OS_USERNAME=admin", "export OS_PROJECT_NAME=admin",
                     "export OS_USER_DOMAIN_NAME=Default", "export OS_PROJECT_DOMAIN_NAME=Default",
                     "export OS_IDENTITY_API_VERSION=3"):
            assert line in env
        with open(openrc) as handle:
            assert f"export OS_PASSWORD={admin_password}" in handle.read()
        for secret_file in ("openrc", "cluster.json", "etc/proxy-server.conf",
                            "etc/identity-bootstrap.json"):
            mode = os.stat(os.path.join(cluster.data_dir, secret_file)).st_mode & 0o777
            assert mode == 0o600, (secret_file, oct(mode))

        project_ids = cluster.layout().project_ids
        assert set(project_ids) >= {"admin", "service", "test", "test2"}
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
        assert cluster.layout().project_ids == project_ids     # identity kept its data
        url, token = swift_client.get_auth(cluster.auth_url, "test:tester", "testing")
        assert swift_client.get_object(url, token, "keep", "me")[1] == b"still here"
    finally:
        cluster.stop()
