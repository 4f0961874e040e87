"""Fixtures: a fake cluster on 127.0.0.1 with real rings, the proxy built on it, and tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from proxy.server import app_factory
from tests.unit.proxy.fakes import FakeCluster, call


@pytest.fixture
def cluster(tmp_path: Any) -> Iterator[FakeCluster]:
    fake = FakeCluster(str(tmp_path))
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def app(cluster: FakeCluster) -> Any:
    return app_factory(cluster.conf())


def get_token(app: Any, user: str = "test:tester", key: str = "testing") -> str:
    response = call(app, "/auth/v1.0", headers={"X-Auth-User": user, "X-Auth-Key": key})
    assert response.status_int == 200, response.status
    return response.headers["X-Auth-Token"]


@pytest.fixture
def token(app: Any) -> str:
    return get_token(app)


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}
