"""Fixtures: one real S3 stack (storage nodes, proxy pipeline) per test module, two users."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.proxy.middleware.s3api.harness import S3Stack, context, start_stack

ACCESS, SECRET = "AKIDALICE", "alice-secret/+key"
OTHER_ACCESS, OTHER_SECRET = "AKIDBOB", "bob-secret"
READER_ACCESS, READER_SECRET = "AKIDCAROL", "carol-secret"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Stack]:
    running = start_stack(tmp_path_factory.mktemp("s3"))
    running.authenticator.add(ACCESS, SECRET, context("projalice", "alice"))
    running.authenticator.add(OTHER_ACCESS, OTHER_SECRET, context("projbob", "bob"))
    running.authenticator.add(READER_ACCESS, READER_SECRET,
                              context("projalice", "carol", ("reader",)))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(autouse=True)
def real_clock(request: Any) -> Iterator[None]:
    yield
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").clock[0] = 0.0
