"""tempurl through the real proxy app (fake storage nodes, tempauth): signatures in every
digest form, account and container keys, prefixes, expiry, methods, headers and scope."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote, urlencode

import pytest

from common.config import Config
from proxy.info import get_swift_info
from proxy.middleware.tempurl import (
    disposition,
    filter_factory,
    parse_expires,
    parse_signature,
    tempurl_hmac,
)
from proxy.server import app_factory
from tests.unit.proxy.conftest import get_token
from tests.unit.proxy.fakes import call

PIPELINE = ("catch_errors gatekeeper healthcheck proxy-logging tempurl tempauth copy slo dlo "
            "proxy")
ACCOUNT_KEY = "account-secret"
CONTAINER_KEY = "container-secret"


@pytest.fixture
def app(cluster):
    return app_factory(cluster.conf(pipeline=PIPELINE))


@pytest.fixture
def owner(app):
    auth = {"X-Auth-Token": get_token(app)}
    assert call(app, "/v1/AUTH_test", "POST", headers={
        **auth, "X-Account-Meta-Temp-URL-Key": ACCOUNT_KEY}).status_int == 204
    assert call(app, "/v1/AUTH_test/c", "PUT", headers={
        **auth, "X-Container-Meta-Temp-URL-Key-2": CONTAINER_KEY}).status_int == 201
    assert call(app, "/v1/AUTH_test/other", "PUT", headers=auth).status_int == 201
    assert call(app, "/v1/AUTH_test/c/dir/obj.txt", "PUT", body=b"hello", headers={
        **auth, "X-Object-Meta-Secret": "s", "X-Object-Meta-Public-Color": "blue"}) \
        .status_int == 201
    return auth


def signed(path, method="GET", key=ACCOUNT_KEY, digest="sha256", expires=None,
           prefix=None, **extra):
    expires = int(time.time() + 60) if expires is None else expires
    container_path = "/".join(path.split("/")[:4])
    signed_path = f"prefix:{container_path}/{prefix}" if prefix is not None else path
    sig = tempurl_hmac(method, expires, signed_path, key, digest)
    params = {"temp_url_sig": sig, "temp_url_expires": str(expires), **extra}
    if prefix is not None:
        params["temp_url_prefix"] = prefix
    return f"{quote(path)}?{urlencode(params)}"


def test_helpers():
    now = 1_700_000_000
    assert parse_expires(str(now + 5), now) == now + 5
    assert parse_expires(str(now - 5), now) == 0
    assert parse_expires("2099-01-01T00:00:00Z", now) == 4070908800
    assert parse_expires("tomorrow", now) == 0 and parse_expires(None, now) == 0
    digest = hmac.new(b"k", b"m", hashlib.sha512).digest()
    assert parse_signature("sha512:" + base64.urlsafe_b64encode(digest).decode().rstrip("="),
                           ["sha512"]) == ("sha512", digest.hex())
    assert parse_signature("a" * 40, ["sha1", "sha256"]) == ("sha1", "a" * 40)
    assert parse_signature("a" * 40, ["sha256"]) is None            # digest not allowed
    assert parse_signature("a" * 41, ["sha1", "sha256"]) is None
    assert parse_signature("md5:AAAA", ["sha1"]) is None
    assert parse_signature("sha256:!!!", ["sha256"]) is None
    assert disposition("attachment", "a b.txt") == \
        "attachment; filename=\"a b.txt\"; filename*=UTF-8''a%20b.txt"


@pytest.mark.parametrize("digest", ["sha1", "sha256", "sha512"])
def test_get_with_each_hex_digest(app, owner, digest):
    response = call(app, signed("/v1/AUTH_test/c/dir/obj.txt", digest=digest))
    assert response.status_int == 200
    assert response.body == b"hello"
    assert response.headers["Content-Disposition"] == \
        "attachment; filename=\"obj.txt\"; filename*=UTF-8''obj.txt"
    assert "Expires" in response.headers
    # private object metadata is not handed out by a temp URL; public-* is
    assert "X-Object-Meta-Secret" not in response.headers
    assert response.headers["X-Object-Meta-Public-Color"] == "blue"


def test_base64_signature_and_iso_expiry(app, owner):
    path = "/v1/AUTH_test/c/dir/obj.txt"
    expires = int(time.time() + 120)
    raw = hmac.new(ACCOUNT_KEY.encode(), f"GET\n{expires}\n{path}".encode(),
                   hashlib.sha256).digest()
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
    query = urlencode({"temp_url_sig": "sha256:" + base64.b64encode(raw).decode(),
                       "temp_url_expires": iso})
    assert call(app, f"{path}?{query}").status_int == 200


def test_container_key_and_scope(app, owner):
    url = signed("/v1/AUTH_test/c/dir/obj.txt", key=CONTAINER_KEY)
    assert call(app, url).status_int == 200
    # a container key signs nothing in another container of the account
    assert call(app, "/v1/AUTH_test/other/x", "PUT", headers=owner, body=b"x").status_int == 201
    assert call(app, signed("/v1/AUTH_test/other/x", key=CONTAINER_KEY)).status_int == 401
    assert call(app, signed("/v1/AUTH_test/other/x")).status_int == 200


def test_invalid_signatures_expiry_and_methods_are_401(app, owner):
    path = "/v1/AUTH_test/c/dir/obj.txt"
    for url in (signed(path, key="wrong-key"),
                signed(path, expires=int(time.time() - 1)),
                signed(path, method="PUT"),                     # signed for another method
                signed("/v1/AUTH_test/c/dir/other.txt").replace("other.txt", "obj.txt"),
                f"{path}?temp_url_sig=abc&temp_url_expires=9999999999",
                f"{path}?temp_url_expires={int(time.time() + 60)}",
                f"{path}?temp_url_sig={'0' * 64}&temp_url_expires=soon"):
        response = call(app, url)
        assert response.status_int == 401, url
        assert response.body == b"401 Unauthorized: Temp URL invalid\n"
        assert "Www-Authenticate" in response.headers
    assert call(app, signed(path, key="wrong-key"), "HEAD").body == b""
    # a temp URL never reaches beyond objects
    assert call(app, signed("/v1/AUTH_test/c"), "GET").status_int == 401
    # without any key on the account and container nothing validates
    assert call(app, signed("/v1/AUTH_test2/c/o")).status_int == 401


def test_put_head_delete(app, owner):
    path = "/v1/AUTH_test/c/new"
    assert call(app, signed(path, "PUT"), "PUT", body=b"via temp url").status_int == 201
    # a HEAD may use a GET or PUT signature
    assert call(app, signed(path, "PUT"), "HEAD").status_int == 200
    assert call(app, signed(path, "GET"), "HEAD").status_int == 200
    assert call(app, path, headers=owner).body == b"via temp url"
    # a PUT may not create a manifest, and X-Timestamp is dropped
    response = call(app, signed(path, "PUT"), "PUT", body=b"",
                    headers={"X-Object-Manifest": "c/seg"})
    assert response.status_int == 400
    assert call(app, signed(path, "DELETE"), "DELETE").status_int == 204
    assert call(app, path, headers=owner).status_int == 404


def test_prefix_filename_inline_and_query_cleanup(app, owner):
    url = signed("/v1/AUTH_test/c/dir/obj.txt", prefix="dir/")
    assert call(app, url).status_int == 200
    assert call(app, signed("/v1/AUTH_test/c/dir/obj.txt", prefix="nope/")).status_int == 401
    named = call(app, signed("/v1/AUTH_test/c/dir/obj.txt", filename="report 1.txt"))
    assert named.headers["Content-Disposition"] == \
        "attachment; filename=\"report 1.txt\"; filename*=UTF-8''report%201.txt"
    inline = call(app, signed("/v1/AUTH_test/c/dir/obj.txt", inline=""))
    assert inline.headers["Content-Disposition"] == "inline"
    # other query parameters (e.g. multipart-manifest=get) are dropped
    manifest = call(app, signed("/v1/AUTH_test/c/dir/obj.txt", **{"multipart-manifest": "get"}))
    assert manifest.status_int == 200 and manifest.body == b"hello"


def test_without_params_passes_through_to_auth(app, owner):
    assert call(app, "/v1/AUTH_test/c/dir/obj.txt").status_int == 401
    assert call(app, "/v1/AUTH_test/c/dir/obj.txt", headers=owner).status_int == 200


def test_info_and_config():
    filter_factory(Config({"methods": "GET HEAD", "allowed_digests": "sha256 sha512"}))
    info = get_swift_info()["tempurl"]
    assert info["methods"] == ["GET", "HEAD"]
    assert info["allowed_digests"] == ["sha256", "sha512"]
    assert info["outgoing_allow_headers"] == ["x-object-meta-public-*"]
    filter_factory({})
    assert get_swift_info()["tempurl"]["allowed_digests"] == ["sha1", "sha256", "sha512"]


def test_ip_range(app, owner):
    path = "/v1/AUTH_test/c/dir/obj.txt"
    expires = int(time.time() + 60)
    sig = tempurl_hmac("GET", expires, path, ACCOUNT_KEY, "sha256", ip_range="10.1.0.0/16")
    query = urlencode({"temp_url_sig": sig, "temp_url_expires": expires,
                       "temp_url_ip_range": "10.1.0.0/16"})
    inside = call(app, f"{path}?{query}", environ={"REMOTE_ADDR": "10.1.2.3"})
    assert inside.status_int == 200
    assert call(app, f"{path}?{query}", environ={"REMOTE_ADDR": "10.2.0.1"}).status_int == 401
    # the range is part of what was signed
    other = query.replace("10.1.0.0%2F16", "10.0.0.0%2F8")
    assert call(app, f"{path}?{other}", environ={"REMOTE_ADDR": "10.1.2.3"}).status_int == 401
