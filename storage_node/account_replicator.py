"""`[account-replicator]`: account database replication (`storage_node.db_replicator`)."""

from __future__ import annotations

import logging

from common.config import Config
from storage_node.account_server import DEFAULT_PORT
from storage_node.db_replicator import run_replicator

SECTION = "account-replicator"


def run_daemon(conf: Config, logger: logging.Logger, once: bool = False) -> int:
    return run_replicator("account", DEFAULT_PORT, conf, logger, once)
