"""`ringstack-identity`: administering an identity service from its config file.

    ringstack-identity bootstrap --config CONF [--seed FILE] [--admin-user U]
                                 [--admin-project P] [--public-url URL] [--json]
    ringstack-identity fernet-setup  --config CONF [--json]
    ringstack-identity fernet-rotate --config CONF [--json]

bootstrap is idempotent (identity.bootstrap). The admin password comes from the seed file,
or $RINGSTACK_IDENTITY_ADMIN_PASSWORD; a new admin without one gets a random password, printed
once. Passwords are not taken as arguments, where `ps` would show them.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from typing import Any

from common.config import ConfigError, load_section
from identity.bootstrap import Bootstrapper, PlanError
from identity.keys import KeyRepository, KeyRepositoryError
from identity.settings import SECTION, IdentitySettings
from identity.store import DEFAULT_DOMAIN_ID, Store

ADMIN_PASSWORD_ENV = "RINGSTACK_IDENTITY_ADMIN_PASSWORD"


def _settings(args: argparse.Namespace) -> IdentitySettings:
    return IdentitySettings.from_config(load_section(args.config, SECTION))


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


def cmd_bootstrap(args: argparse.Namespace) -> int:
    settings = _settings(args)
    plan: dict[str, Any] = {}
    if args.seed:
        with open(args.seed) as handle:
            plan = json.load(handle)
    admin = dict(plan.get("admin") or {})
    admin.setdefault("user", args.admin_user)
    admin.setdefault("project", args.admin_project)
    store = Store(settings.db_path)
    store.ensure_default_domain()
    generated = None
    if not admin.get("password"):
        admin["password"] = os.environ.get(ADMIN_PASSWORD_ENV) or None
        exists = store.find("users", name=admin["user"], domain_id=DEFAULT_DOMAIN_ID)
        if admin["password"] is None and exists is None:
            generated = admin["password"] = secrets.token_urlsafe(16)
    plan["admin"] = admin
    if args.public_url:
        services = [s for s in plan.get("services") or [] if s.get("type") != "identity"]
        plan["services"] = [{"type": "identity", "name": "keystone",
                             "url": args.public_url}, *services]
    for repository in (settings.key_repository, settings.credential_key_repository):
        KeyRepository(repository).setup()
    report = Bootstrapper(store, settings.password_hash_cost, settings.region_id).apply(plan)
    data: dict[str, Any] = {"created": report.created, "updated": report.updated,
                            "projects": report.projects, **report.ids}
    if generated:
        data["admin_password"] = generated
    lines = [f"created: {item}" for item in report.created] + \
        [f"updated: {item}" for item in report.updated] or ["nothing to do"]
    if generated:
        lines.append(f"admin password (shown once): {generated}")
    _emit(args, data, "\n".join(lines))
    return 0


def cmd_fernet_setup(args: argparse.Namespace) -> int:
    repository = KeyRepository(_settings(args).key_repository)
    created = repository.setup()
    _emit(args, {"created": created, "keys": repository.indexes()},
          f"{'created' if created else 'already set up'}: keys {repository.indexes()}")
    return 0


def cmd_fernet_rotate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    repository = KeyRepository(settings.key_repository)
    repository.setup()
    keys = repository.rotate(settings.max_active_keys)
    _emit(args, {"keys": keys, "primary": max(keys)},
          f"rotated: keys {keys}, primary {max(keys)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ringstack-identity",
                                     description="Administer a ringstack identity service.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, handler in (("bootstrap", cmd_bootstrap), ("fernet-setup", cmd_fernet_setup),
                          ("fernet-rotate", cmd_fernet_rotate)):
        sub = commands.add_parser(name)
        sub.set_defaults(handler=handler)
        sub.add_argument("--config", required=True, help="the identity server's config file")
        sub.add_argument("--json", action="store_true", help="print the result as JSON")
        if name == "bootstrap":
            sub.add_argument("--seed", help="JSON plan of users and services to create")
            sub.add_argument("--admin-user", default="admin")
            sub.add_argument("--admin-project", default="admin")
            sub.add_argument("--public-url",
                             help="identity's own catalog URL, e.g. http://host:5000/v3")
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, PlanError, KeyRepositoryError, OSError, ValueError) as err:
        print(f"ringstack-identity: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
