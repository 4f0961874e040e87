"""The Swift API as real clients use it: the `swift` CLI and swiftclient's library, against a
real all-in-one cluster on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import urllib.request

import pytest
from swiftclient import client as swift_client
from swiftclient.exceptions import ClientException

from common.cluster import AIO_PROXY_AUTH
from tests.functional.cluster import Cluster, free_port_block


def swift(cluster, *args: str, cwd: str | None = None, check: bool = True
          ) -> subprocess.CompletedProcess:
    result = subprocess.run(["swift", *args], env=cluster.swift_env(), cwd=cwd,
                            capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"swift {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result


@pytest.fixture()
def conn(cluster):
    return swift_client.Connection(authurl=cluster.auth_url, user="test:tester", key="testing",
                                   retries=0)


def test_cli_stat_upload_list_download_post_copy_delete(cluster, tmp_path):
    stat = swift(cluster, "stat")
    assert f"Account: {cluster.account('test')}" in stat.stdout
    source = tmp_path / "hello.txt"
    source.write_bytes(b"hello ringstack\n" * 1000)
    swift(cluster, "upload", "docs", "hello.txt", cwd=str(tmp_path))
    assert swift(cluster, "list", "docs").stdout.split() == ["hello.txt"]
    assert "docs" in swift(cluster, "list").stdout.split()

    out = tmp_path / "out.txt"
    swift(cluster, "download", "docs", "hello.txt", "-o", str(out))
    assert out.read_bytes() == source.read_bytes()

    swift(cluster, "post", "-m", "color:blue", "docs", "hello.txt")
    assert "Meta Color: blue" in swift(cluster, "stat", "docs", "hello.txt").stdout

    swift(cluster, "copy", "-d", "/docs-copy/hello-copy.txt", "docs", "hello.txt")
    copied = tmp_path / "copied.txt"
    swift(cluster, "download", "docs-copy", "hello-copy.txt", "-o", str(copied))
    assert copied.read_bytes() == source.read_bytes()

    swift(cluster, "delete", "docs", "hello.txt")
    assert swift(cluster, "list", "docs").stdout.split() == []
    missing = swift(cluster, "download", "docs", "hello.txt", "-o", str(out), check=False)
    assert missing.returncode != 0 and "not found" in missing.stderr


@pytest.mark.parametrize("mode", ["dlo", "slo"])
def test_segmented_upload_round_trips(cluster, tmp_path, mode):
    data = os.urandom(3 * 1024 * 1024 + 12345)
    (tmp_path / "big.bin").write_bytes(data)
    args = ["upload", f"big-{mode}", "big.bin", "--segment-size", "1048576",
            "--use-slo" if mode == "slo" else "--use-dlo"]
    swift(cluster, *args, cwd=str(tmp_path))
    stat = swift(cluster, "stat", f"big-{mode}", "big.bin").stdout
    if mode == "slo":
        assert "X-Static-Large-Object: True" in stat
    else:
        assert f"Manifest: big-{mode}_segments/big.bin/" in stat
    assert f"Content Length: {len(data)}" in stat
    out = tmp_path / "back.bin"
    swift(cluster, "download", f"big-{mode}", "big.bin", "-o", str(out))
    assert hashlib.md5(out.read_bytes()).hexdigest() == hashlib.md5(data).hexdigest()
    segments = swift(cluster, "list", f"big-{mode}_segments").stdout.split()
    assert len(segments) == 4
    swift(cluster, "delete", f"big-{mode}", "big.bin")
    assert swift(cluster, "list", f"big-{mode}_segments").stdout.split() == []


def test_library_metadata_ranges_conditionals(conn):
    conn.put_container("lib", headers={"X-Container-Meta-Owner": "qa"})
    body = bytes(range(256)) * 40
    etag = conn.put_object("lib", "obj", body, content_type="application/x-test",
                           headers={"X-Object-Meta-Kind": "sample"})
    assert etag == hashlib.md5(body).hexdigest()
    headers, got = conn.get_object("lib", "obj")
    assert got == body and headers["x-object-meta-kind"] == "sample"
    assert headers["content-type"] == "application/x-test"
    headers, part = conn.get_object("lib", "obj", headers={"Range": "bytes=10-19"})
    assert part == body[10:20] and headers["content-range"] == f"bytes 10-19/{len(body)}"
    with pytest.raises(ClientException) as err:
        conn.get_object("lib", "obj", headers={"If-None-Match": etag})
    assert err.value.http_status == 304
    with pytest.raises(ClientException) as err:
        conn.put_object("lib", "bad", b"data", etag="0" * 32)
    assert err.value.http_status == 422
    container = conn.head_container("lib")
    assert container["x-container-meta-owner"] == "qa"
    assert int(container["x-container-object-count"]) == 1
    _, listing = conn.get_container("lib", prefix="o", delimiter="/")
    assert [item["name"] for item in listing] == ["obj"]
    assert listing[0]["bytes"] == len(body) and listing[0]["hash"] == etag


def test_info_advertises_features_and_limits(cluster):
    with urllib.request.urlopen(f"http://127.0.0.1:{cluster.proxy_port}/info") as response:
        info = json.loads(response.read())
    assert info["swift"]["max_file_size"] > 0
    assert info["swift"]["max_meta_overall_size"] == 4096
    for feature in ("slo", "bulk_delete", AIO_PROXY_AUTH):
        assert feature in info, sorted(info)


def test_bad_requests_get_4xx_not_5xx(conn):
    conn.put_container("edge")
    with pytest.raises(ClientException) as err:
        conn.put_object("edge", "x" * 1025, b"too long a name")
    assert err.value.http_status == 400
    with pytest.raises(ClientException) as err:
        conn.put_object("edge", "meta", b"", headers={"X-Object-Meta-" + "k" * 129: "v"})
    assert err.value.http_status == 400
    # Large but legal metadata: Swift's limit is 4096 bytes in all (OpenStack Swift itself
    # answers 503 to this on this machine's filesystem).
    meta = {f"X-Object-Meta-K{i:02d}": "v" * 200 for i in range(19)}
    conn.put_object("edge", "big-meta", b"payload", headers=meta)
    headers = conn.head_object("edge", "big-meta")
    assert headers["x-object-meta-k18"] == "v" * 200
    with pytest.raises(ClientException) as err:
        conn.get_object("edge", "absent")
    assert err.value.http_status == 404


@pytest.fixture()
def own_cluster(tmp_path):
    """A cluster of its own, for a test that kills servers."""
    base = free_port_block(40)
    running = Cluster(str(tmp_path / "aio"), proxy_port=base + 35, storage_base=base)
    running.start()
    yield running
    running.stop()


def test_writes_survive_a_dead_storage_server(own_cluster):
    """Kill one object server mid-stream: uploads still succeed, and every acknowledged
    object reads back (from the replicas that remain)."""
    cluster = own_cluster
    conn = swift_client.Connection(authurl=cluster.auth_url, user="test:tester",
                                   key="testing", retries=0)
    conn.get_auth()
    conn.put_container("durable")
    acknowledged: dict[str, bytes] = {}
    errors: list[str] = []
    started = threading.Event()

    def writer() -> None:
        for n in range(60):
            body = os.urandom(2048) + str(n).encode()
            try:
                swift_client.put_object(conn.url, conn.token, "durable", f"o{n}", body)
                acknowledged[f"o{n}"] = body
            except ClientException as err:
                errors.append(f"o{n}: {err.http_status}")
            if n == 10:
                started.set()

    thread = threading.Thread(target=writer)
    thread.start()
    started.wait(60)
    cluster.kill("object-2")
    thread.join(120)
    assert not errors, errors
    assert len(acknowledged) == 60
    for name, body in acknowledged.items():
        assert swift_client.get_object(conn.url, conn.token, "durable", name)[1] == body
