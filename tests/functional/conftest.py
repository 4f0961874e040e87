"""Fixtures for functional tests that drive real processes."""

from __future__ import annotations

import pytest

from tests.functional.cluster import Cluster, free_port_block


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """One real all-in-one cluster (4 storage nodes, proxy) shared by the session's tests."""
    data_dir = str(tmp_path_factory.mktemp("aio"))
    base = free_port_block(40)
    running = Cluster(data_dir, proxy_port=base + 35, storage_base=base)
    running.start()
    yield running
    running.stop()
