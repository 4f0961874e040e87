"""python-swiftclient against the proxy served over HTTP by eventlet (fake storage nodes).

swiftclient blocks in real sockets, so its calls run in eventlet's native thread pool while
the hub serves the proxy and the fake nodes in this process.
"""

from __future__ import annotations

import hashlib
import socket
import threading

import eventlet
import eventlet.wsgi
import pytest
from eventlet import tpool

from proxy.server import app_factory
from tests.unit.proxy.fakes import _NullLog

swiftclient = pytest.importorskip("swiftclient.client")


@pytest.fixture
def proxy_url(cluster):
    app = app_factory(cluster.conf(
        pipeline="catch_errors gatekeeper healthcheck proxy-logging tempauth proxy"))
    sock = eventlet.listen(("127.0.0.1", 0))
    server = eventlet.spawn(eventlet.wsgi.server, sock, app, log=_NullLog(), log_output=False)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.kill()
        sock.close()


def in_thread(func, *args, **kwargs):
    return tpool.execute(func, *args, **kwargs)


def test_swiftclient_round_trip(cluster, proxy_url):
    url, token = in_thread(swiftclient.get_auth, f"{proxy_url}/auth/v1.0", "test:tester",
                           "testing")
    assert url == f"{proxy_url}/v1/AUTH_test"
    in_thread(swiftclient.put_container, url, token, "docs")
    body = b"swift says hi " * 5000
    etag = in_thread(swiftclient.put_object, url, token, "docs", "hello.txt", body)
    assert etag == hashlib.md5(body).hexdigest()
    chunks = (body[i:i + 7000] for i in range(0, len(body), 7000))
    in_thread(swiftclient.put_object, url, token, "docs", "chunked.txt", chunks,
              chunk_size=7000)
    headers, got = in_thread(swiftclient.get_object, url, token, "docs", "hello.txt")
    assert got == body and headers["content-type"] == "text/plain"
    headers, got = in_thread(swiftclient.get_object, url, token, "docs", "chunked.txt")
    assert got == body
    headers, part = in_thread(swiftclient.get_object, url, token, "docs", "hello.txt",
                              headers={"Range": "bytes=10-19"})
    assert part == body[10:20]
    in_thread(swiftclient.post_object, url, token, "docs", "hello.txt",
              {"X-Object-Meta-Lang": "en"})
    head = in_thread(swiftclient.head_object, url, token, "docs", "hello.txt")
    assert head["x-object-meta-lang"] == "en"
    capabilities = in_thread(swiftclient.get_capabilities,
                             swiftclient.http_connection(f"{proxy_url}/info"))
    assert capabilities["swift"]["max_file_size"] > 0
    in_thread(swiftclient.delete_object, url, token, "docs", "hello.txt")
    with pytest.raises(swiftclient.ClientException) as missing:
        in_thread(swiftclient.get_object, url, token, "docs", "hello.txt")
    assert missing.value.http_status == 404
    with pytest.raises(swiftclient.ClientException) as denied:
        in_thread(swiftclient.get_auth, f"{proxy_url}/auth/v1.0", "test:tester", "wrong")
    assert denied.value.http_status == 401


def test_client_that_disconnects_mid_upload_stores_nothing(cluster, proxy_url):
    url, token = in_thread(swiftclient.get_auth, f"{proxy_url}/auth/v1.0", "test:tester",
                           "testing")
    in_thread(swiftclient.put_container, url, token, "docs")
    host, port = proxy_url.rsplit("/", 1)[1].split(":")
    done = threading.Event()

    def upload_half():
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"PUT /v1/AUTH_test/docs/partial HTTP/1.1\r\nHost: x\r\n"
                         b"X-Auth-Token: " + token.encode() + b"\r\n"
                         b"Content-Length: 100000\r\n\r\n" + b"x" * 50000)
        done.set()

    in_thread(upload_half)
    assert done.is_set()
    # let the proxy notice the short body and drop its object-server connections
    for _ in range(50):
        if sum(len(s.requests_for("PUT")) for s in cluster.objects) >= 3:
            break
        eventlet.sleep(0.02)
    eventlet.sleep(0.05)
    assert sum(len(s.requests_for("PUT")) for s in cluster.objects) >= 3
    assert not any("/AUTH_test/docs/partial" in s.store for s in cluster.objects)
