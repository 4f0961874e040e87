"""`ringstack-server TYPE CONF`: run one server of a cluster from its config file.

Each server module exposes `SECTION` (its config section), `DEFAULT_PORT` and
`app_factory(conf) -> WSGI app`, and may expose `prepare_workers(conf)`, run once in the
server process before it forks its workers. The modules are named here as strings and
imported on demand, so this plumbing does not import the layers it starts.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib import import_module

from common.config import ConfigError, load_section
from common.wsgi import run_wsgi

SERVER_MODULES = {
    "proxy": "proxy.server",
    "object": "storage_node.object_server",
    "container": "storage_node.container_server",
    "account": "storage_node.account_server",
    "identity": "identity.server",
}
DAEMON_MODULES = {
    "object-updater": "storage_node.updater",
    "object-replicator": "storage_node.object_replicator",
    "object-auditor": "storage_node.auditor",
    "db-auditor": "storage_node.db_auditor",
    "object-expirer": "storage_node.expirer",
    "container-replicator": "storage_node.container_replicator",
    "account-replicator": "storage_node.account_replicator",
}


def setup_logging(level: str, name: str) -> logging.Logger:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format=f"%(asctime)s {name} %(levelname)s %(message)s", stream=sys.stderr)
    return logging.getLogger(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ringstack-server",
                                     description="Run one ringstack server or daemon.")
    parser.add_argument("type", choices=sorted(SERVER_MODULES) + sorted(DAEMON_MODULES))
    parser.add_argument("conf", help="the server's config file")
    parser.add_argument("--once", action="store_true", help="daemons: one pass, then exit")
    args = parser.parse_args(argv)
    module_name = SERVER_MODULES.get(args.type) or DAEMON_MODULES[args.type]
    module = import_module(module_name)
    try:
        conf = load_section(args.conf, module.SECTION)
        logger = setup_logging(conf.get_str("log_level", "INFO"), args.type)
        if args.type in DAEMON_MODULES:
            return int(module.run_daemon(conf, logger, once=args.once) or 0)
        prepare = getattr(module, "prepare_workers", None)
        if prepare is not None:
            prepare(conf)      # state the workers share must exist before they are forked
        return run_wsgi(lambda: module.app_factory(conf), conf, module.DEFAULT_PORT, logger)
    except ConfigError as err:
        print(f"ringstack-server: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
