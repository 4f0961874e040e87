"""`[container-replicator]`: container database replication (`storage_node.db_replicator`)."""

from __future__ import annotations

import logging

from common.config import Config
from storage_node.container_server import DEFAULT_PORT
from storage_node.db_replicator import run_replicator

SECTION = "container-replicator"


def run_daemon(conf: Config, logger: logging.Logger, once: bool = False) -> int:
    return run_replicator("container", DEFAULT_PORT, conf, logger, once)
