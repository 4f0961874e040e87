"""Test harness for the S3 layer: real storage nodes, the real proxy pipeline, botocore signing.

- `TableAuthenticator` checks S3 signatures against a table of access key -> (secret, who),
  with common.aws_sig exactly as identity does (SigV4 derived key of the request's scope,
  SigV2 with the secret), and hands out tokens for Swift requests; it stands where
  proxy.identity_client would.
- `S3Stack` runs four object, container and account servers (storage_node) on 127.0.0.1 with
  real rings, and builds `catch_errors gatekeeper healthcheck proxy-logging s3api keystoneauth
  copy slo dlo proxy` around the real proxy app.
- `sign` signs a request with botocore's own signers (SigV4, SigV4 query, HmacV1, HmacV1
  query) and `send` turns it into a WSGI call (as eventlet.wsgi would build the environ).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import urllib.parse
from typing import Any

import eventlet
import eventlet.wsgi
from botocore.auth import HmacV1Auth, HmacV1QueryAuth, S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from webob import Request, Response

from common.aws_sig import derive_v4_signing_key, sign_v2, sign_v4, signatures_match, v4_scope
from common.config import Config
from proxy.identity_client import AuthContext, S3Auth
from proxy.keystone_auth import KeystoneAuth
from proxy.middleware.s3api import S3ApiMiddleware, S3Settings
from proxy.pipeline import build_pipeline
from proxy.server import ProxyApplication, register_core_info
from proxy.settings import ProxySettings
from ring.builder import RingBuilder

REGION = "us-east-1"
HOST = "s3.test"


def context(project: str, user: str, roles: tuple[str, ...] = ("member",)) -> AuthContext:
    return AuthContext(user_id=f"u-{user}", user_name=user, project_id=project,
                       project_name=f"name-{project}", roles=frozenset(roles),
                       expires_at=4_000_000_000.0)


class TableAuthenticator:
    """access key -> (secret, AuthContext); the identity service's checks, in process."""

    url = "http://127.0.0.1:9/v3"

    def __init__(self) -> None:
        self.users: dict[str, tuple[str, AuthContext]] = {}
        self.tokens: dict[str, AuthContext] = {}
        self.calls = 0

    def add(self, access: str, secret: str, who: AuthContext) -> None:
        self.users[access] = (secret, who)
        self.tokens[f"token-{access}"] = who

    def s3_auth(self, access: str, string_to_sign: bytes, signature: str) -> S3Auth | None:
        self.calls += 1
        if access not in self.users:
            return None
        secret, who = self.users[access]
        scope = v4_scope(string_to_sign)
        if scope is not None:
            key = derive_v4_signing_key(secret, *scope)
            if signatures_match(sign_v4(key, string_to_sign), signature):
                return S3Auth(who, key)
            return None
        if signatures_match(sign_v2(secret, string_to_sign), signature):
            return S3Auth(who, None)
        return None

    def validate_token(self, token: str) -> AuthContext | None:
        return self.tokens.get(token)


class _NullLog:
    def write(self, *_: Any) -> None:
        pass


@dataclasses.dataclass
class S3Stack:
    app: Any
    authenticator: TableAuthenticator
    clock: list[float]            # [offset_s] added to the real time the middleware sees
    threads: list[Any]

    def stop(self) -> None:
        for thread, sock in self.threads:
            thread.kill()
            sock.close()


def start_stack(tmp_path: Any, settings: S3Settings | None = None) -> S3Stack:
    from storage_node import account_server, container_server, object_server
    modules = {"object": object_server, "container": container_server,
               "account": account_server}
    swift_dir = tmp_path / "etc"
    swift_dir.mkdir()
    (swift_dir / "ringstack.conf").write_text(
        "[ringstack-hash]\npath_prefix = pre\npath_suffix = suf\n\n"
        "[storage-policy:0]\nname = gold\ndefault = yes\n")
    threads = []
    for kind, module in modules.items():
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
            conf = Config({"swift_dir": str(swift_dir), "devices": str(devices),
                           "mount_check": "false", "log_requests": "false",
                           "account_update_interval": "0"}, "<test>", module.SECTION)
            threads.append((eventlet.spawn(eventlet.wsgi.server, sock, module.app_factory(conf),
                                           log=_NullLog(), log_output=False), sock))
    conf = Config({"swift_dir": str(swift_dir), "sorting_method": "none",
                   "reseller_prefix": "AUTH"}, "<test>", "proxy-server")
    from proxy.cluster import Cluster
    proxy_settings = ProxySettings.from_config(conf)
    cluster = Cluster.load(proxy_settings.swift_dir)
    register_core_info(proxy_settings, cluster)
    logger = logging.getLogger("ringstack.proxy")
    app: Any = ProxyApplication(proxy_settings, cluster, logger)
    app, _ = build_pipeline(app, conf, ["copy", "slo", "dlo"], logger)
    authenticator = TableAuthenticator()
    app = KeystoneAuth(app, conf, client=authenticator)   # type: ignore[arg-type]
    clock = [0.0]
    import time
    app = S3ApiMiddleware(app, settings or S3Settings(), authenticator,
                          clock=lambda: time.time() + clock[0])
    app, _ = build_pipeline(app, conf, ["catch_errors", "gatekeeper", "healthcheck",
                                        "proxy-logging"], logger)
    return S3Stack(app, authenticator, clock, threads)


# ---- signing with botocore and calling the app --------------------------------------------------

def sign(method: str, path: str, access: str, secret: str, *, kind: str = "v4",
         headers: dict[str, str] | None = None, body: bytes = b"", query: str = "",
         expires_s: int = 3600, host: str = HOST, auth_path: str | None = None) -> AWSRequest:
    """A request signed by botocore: kind is v4, v4-query, v2 or v2-query. `auth_path` is
    what botocore signs for SigV2 on a virtual-host-style request (`/bucket/key`)."""
    quoted = urllib.parse.quote(path, safe="/~")
    url = f"http://{host}{quoted}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, headers=dict(headers or {}), data=body)
    request.auth_path = auth_path
    credentials = Credentials(access, secret)
    signer: Any
    if kind == "v4":
        signer = S3SigV4Auth(credentials, "s3", REGION)
    elif kind == "v4-query":
        signer = S3SigV4QueryAuth(credentials, "s3", REGION, expires=expires_s)
    elif kind == "v2":
        signer = HmacV1Auth(credentials)
    elif kind == "v2-query":
        signer = HmacV1QueryAuth(credentials, expires=expires_s)
    else:
        raise ValueError(kind)
    signer.add_auth(request)
    return request


def environ_of(request: AWSRequest) -> dict[str, Any]:
    split = urllib.parse.urlsplit(request.url)
    raw_path = split.path or "/"
    path = urllib.parse.unquote(raw_path).encode("utf-8").decode("latin-1")
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    env: dict[str, Any] = {
        "REQUEST_METHOD": request.method, "PATH_INFO": path, "RAW_PATH_INFO": raw_path,
        "QUERY_STRING": split.query, "SERVER_NAME": "s3.test", "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1", "SCRIPT_NAME": "", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0), "wsgi.multithread": False, "wsgi.multiprocess": False,
        "wsgi.run_once": False, "REMOTE_ADDR": "127.0.0.1",
    }
    for name, value in request.headers.items():
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            env[key] = value
        else:
            env["HTTP_" + key] = value
    env.setdefault("HTTP_HOST", split.netloc)
    if body and "CONTENT_LENGTH" not in env:
        env["CONTENT_LENGTH"] = str(len(body))
    return env


def send(app: Any, request: AWSRequest) -> Response:
    return Request(environ_of(request)).get_response(app)


def swift(app: Any, path: str, method: str = "GET", token: str | None = None,
          headers: dict[str, str] | None = None, body: bytes | None = None) -> Response:
    """A Swift API request (token from the table) through the same stack."""
    all_headers = dict(headers or {})
    if token:
        all_headers["X-Auth-Token"] = token
    req = Request.blank(path, environ={"REQUEST_METHOD": method}, headers=all_headers)
    if body is not None:
        req.environ["wsgi.input"] = io.BytesIO(body)
        req.environ["CONTENT_LENGTH"] = str(len(body))
    return req.get_response(app)
