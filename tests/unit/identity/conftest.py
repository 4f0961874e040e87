"""An identity app over a temporary directory, driven with webob requests (no sockets)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from webob import Request, Response

from common.config import Config
from identity.api.http import Services
from identity.api.router import IdentityApp
from identity.bootstrap import Bootstrapper
from identity.server import open_services
from identity.settings import IdentitySettings

FAST_HASH_COST = 1024        # scrypt N for tests: the real default is slow on purpose
ADMIN_PASSWORD = "admin-secret"


def settings_for(directory: str, **options: str) -> IdentitySettings:
    return IdentitySettings.from_config(Config({
        "identity_dir": directory, "password_hash_cost": str(FAST_HASH_COST), **options}))


@dataclass
class Api:
    """The app plus helpers that speak its JSON."""

    app: IdentityApp
    services: Services

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             headers: dict[str, str] | None = None, raw: bytes | None = None) -> Response:
        request = Request.blank(path, method=method)
        if raw is not None:
            request.body = raw
        elif body is not None:
            request.body = json.dumps(body).encode()
            request.content_type = "application/json"
        if token:
            request.headers["X-Auth-Token"] = token
        for name, value in (headers or {}).items():
            request.headers[name] = value
        return self.app.handle(request)

    def password_auth(self, user: str, password: str, project: str | None = None,
                      domain: str = "default") -> Response:
        auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": domain}, "password": password}}}}
        if project is not None:
            auth["scope"] = {"project": {"name": project, "domain": {"id": domain}}}
        return self.call("POST", "/v3/auth/tokens", {"auth": auth})

    def token(self, user: str, password: str, project: str | None = None) -> str:
        response = self.password_auth(user, password, project)
        assert response.status_int == 201, response.text
        return response.headers["X-Subject-Token"]

    def admin_token(self) -> str:
        return self.token("admin", ADMIN_PASSWORD, "admin")

    def ok(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        response = self.call(method, path, body, token or self.admin_token())
        assert response.status_int < 300, (method, path, response.status, response.text)
        return response.json if response.body else None


@pytest.fixture
def api(tmp_path) -> Api:
    services = open_services(settings_for(str(tmp_path)))
    Bootstrapper(services.store, FAST_HASH_COST).apply({
        "admin": {"user": "admin", "password": ADMIN_PASSWORD, "project": "admin"},
        "users": [
            {"name": "tester", "password": "testing", "project": "test", "roles": ["member"]},
            {"name": "reader", "password": "reading", "project": "test", "roles": ["reader"]},
            {"name": "proxy", "password": "proxying", "project": "service",
             "roles": ["service"]},
        ],
        "services": [
            {"type": "identity", "name": "keystone", "url": "http://id.example:5000/v3"},
            {"type": "object-store", "name": "swift",
             "url": "http://swift.example:8080/v1/AUTH_$(project_id)s"},
        ]})
    yield Api(IdentityApp(services), services)
    services.store.close()
