"""Telling S3 from Swift requests, path-style vs virtual-host-style addressing (with botocore
signing the virtual-host form), the tenant syntax, and the /info section."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from proxy import info
from proxy.middleware.s3api import filter_factory
from proxy.middleware.s3api.request import is_s3_request, parse_target
from proxy.middleware.s3api.settings import S3Settings
from tests.unit.proxy.middleware.s3api.conftest import ACCESS, SECRET
from tests.unit.proxy.middleware.s3api.harness import S3Stack, context, send, sign, start_stack
from tests.unit.proxy.middleware.s3api.xml_helpers import texts

VHOST = S3Settings(storage_domains=("s3.test",))


def env_for(path: str, host: str = "s3.test", query: str = "") -> dict[str, Any]:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query,
            "HTTP_HOST": host}


@pytest.mark.parametrize(("path", "host", "s3"), [
    ("/v1/AUTH_x/c/o", "s3.test", False), ("/auth/v1.0", "s3.test", False),
    ("/info", "s3.test", False), ("/bucket/key", "s3.test", True), ("/", "s3.test", True),
    ("/v1/AUTH_x", "bucket.s3.test", True)])
def test_s3_or_swift(path: str, host: str, s3: bool) -> None:
    assert is_s3_request(env_for(path, host), VHOST) is s3


def test_targets() -> None:
    target = parse_target(env_for("/b-1/dir/key"), VHOST)
    assert (target.bucket, target.key, target.account) == ("b-1", "dir/key", None)
    target = parse_target(env_for("/dir/key", "b-1.s3.test:8080"), VHOST)
    assert (target.bucket, target.key) == ("b-1", "dir/key")
    target = parse_target(env_for("/AUTH_p:b-1/k"), VHOST)
    assert (target.bucket, target.key, target.account) == ("b-1", "k", "AUTH_p")
    assert parse_target(env_for("/b-1/", query="uploads"), VHOST).key is None


@pytest.fixture(scope="module")
def vhost_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Stack]:
    running = start_stack(tmp_path_factory.mktemp("vhost"), VHOST)
    running.authenticator.add(ACCESS, SECRET, context("projalice", "alice"))
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize("kind", ["v4", "v2", "v4-query", "v2-query"])
def test_virtual_host_style(vhost_stack: S3Stack, kind: str) -> None:
    app = vhost_stack.app
    host = "vhost.s3.test"
    assert send(app, sign("PUT", "/", ACCESS, SECRET, host=host)).status_int in (200, 409)
    put = send(app, sign("PUT", "/some/key", ACCESS, SECRET, host=host, body=b"v"))
    assert put.status_int == 200, put.body
    got = send(app, sign("GET", "/some/key", ACCESS, SECRET, host=host, kind=kind,
                         auth_path="/vhost/some/key"))
    assert got.status_int == 200 and got.body == b"v"
    listing = send(app, sign("GET", "/", ACCESS, SECRET, host=host, kind=kind,
                             auth_path="/vhost/"))
    assert texts(listing.body, "Contents", "Key") == ["some/key"]
    path_style = send(app, sign("GET", "/vhost/some/key", ACCESS, SECRET, kind=kind))
    assert path_style.body == b"v"


def test_filter_factory_registers_info() -> None:
    info.unregister_swift_info("s3api")
    middleware = filter_factory({"storage_domain": "s3.example.com", "location": "here"})(
        lambda env, start_response: [])
    assert middleware.settings.location == "here"
    section = info.get_swift_info()["s3api"]
    assert section["storage_domain"] == ["s3.example.com"] and section["max_upload_part_num"]
