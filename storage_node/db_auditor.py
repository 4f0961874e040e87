"""The database auditor: checks every container and account database on a node.

Section `[db-auditor]` (`ringstack-server db-auditor CONF [--once]`; Swift splits this into a
container-auditor and an account-auditor, one daemon here covers both kinds, chosen by
`kinds`). Each pass walks `<dev>/containers|accounts/<part>/<suffix>/<hash>/<hash>.db` at
most `files_per_second`, and for each database runs sqlite's `PRAGMA quick_check` through the
broker (`DatabaseBroker.integrity_check`, which also reads the stat row and the schema stamp),
then checks that the account/container named in the stat row hashes to the database's own
directory. A bad database is quarantined with `DatabaseBroker.quarantine` (moved to
`<dev>/quarantined/containers|accounts/<hash>`, with a QUARANTINE_REASON file); the database
replicator then recreates it from another replica. A database that is merely locked or busy
is counted as an error and left alone.

Stats go to the recon cache (`container.recon` / `account.recon`, key
`<kind>_auditor_stats`): passes, failures, quarantined, errors, pass time, last pass.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any

from common.config import Config, ConfigError
from ring.hashing import HashSecrets, hash_path
from storage_node import recon
from storage_node.account_db import DATADIR as ACCOUNT_DATADIR
from storage_node.account_db import AccountBroker
from storage_node.auditor import HASH_PATTERN, SUFFIX_PATTERN, RateLimiter
from storage_node.cluster_config import DEFAULT_SWIFT_DIR, ClusterConfig
from storage_node.container_db import DATADIR as CONTAINER_DATADIR
from storage_node.container_db import ContainerBroker
from storage_node.db import DatabaseBroker, DatabaseError
from storage_node.devices import DeviceUnavailable, check_device

SECTION = "db-auditor"
KINDS = {"container": (CONTAINER_DATADIR, ContainerBroker, recon.CONTAINER_RECON),
         "account": (ACCOUNT_DATADIR, AccountBroker, recon.ACCOUNT_RECON)}
# Problems that say "try later", never "corrupt".
TRANSIENT_WORDS = ("locked", "busy", "newer than this server")


@dataclasses.dataclass(frozen=True)
class DbAuditorSettings:
    devices: str = "/srv/node"
    mount_check: bool = True
    swift_dir: str = DEFAULT_SWIFT_DIR
    interval_s: float = 1800.0
    files_per_second: float = 20.0
    kinds: tuple[str, ...] = ("container", "account")
    recon_cache_path: str = "/srv/recon"

    @classmethod
    def from_config(cls, conf: Config) -> DbAuditorSettings:
        kinds = tuple(conf.get_list("kinds", cls.kinds))
        unknown = [kind for kind in kinds if kind not in KINDS]
        if unknown:
            raise ConfigError(f"{conf.source} [{conf.section}] kinds: unknown {unknown}")
        return cls(devices=conf.get_str("devices", cls.devices),
                   mount_check=conf.get_bool("mount_check", cls.mount_check),
                   swift_dir=conf.get_str("swift_dir", cls.swift_dir),
                   interval_s=conf.get_float("interval", cls.interval_s, minimum=0.0),
                   files_per_second=conf.get_float("files_per_second", cls.files_per_second,
                                                   minimum=0.0),
                   kinds=kinds, recon_cache_path=recon.recon_cache_path(conf))


@dataclasses.dataclass
class DbAuditStats:
    passes: int = 0              # databases found sound
    failures: int = 0            # databases found bad (quarantined or not)
    quarantined: int = 0
    errors: int = 0              # could not be checked now (locked, unreadable directory)
    started: float = dataclasses.field(default_factory=time.time)
    devices: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)

    def count(self, device: str, field: str) -> None:
        setattr(self, field, getattr(self, field) + 1)
        per_device = self.devices.setdefault(device, {"passes": 0, "failures": 0,
                                                      "quarantined": 0, "errors": 0})
        per_device[field] += 1

    def as_recon(self) -> dict[str, Any]:
        now = time.time()
        return {"passes": self.passes, "failures": self.failures,
                "quarantined": self.quarantined, "errors": self.errors,
                "pass_time": round(now - self.started, 3), "last_pass": now,
                "devices": self.devices}


def iter_db_files(device_path: str, datadir: str) -> list[str]:
    """Every `<part>/<suffix>/<hash>/<hash>.db` under one device's datadir."""
    found = []
    root = os.path.join(device_path, datadir)
    for partition in _sorted(root):
        if not partition.isdigit():
            continue
        for suffix in _sorted(os.path.join(root, partition)):
            if not SUFFIX_PATTERN.match(suffix):
                continue
            for name_hash in _sorted(os.path.join(root, partition, suffix)):
                if HASH_PATTERN.match(name_hash):
                    path = os.path.join(root, partition, suffix, name_hash, name_hash + ".db")
                    if os.path.exists(path):
                        found.append(path)
    return found


def _sorted(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


class DbAuditor:
    """Audits one kind of database on every device of a node."""

    def __init__(self, settings: DbAuditorSettings, kind: str, logger: logging.Logger,
                 secrets: HashSecrets | None = None, rate: RateLimiter | None = None):
        self.settings = settings
        self.kind = kind
        self.datadir, self.broker_class, self.recon_file = KINDS[kind]
        self.logger = logger
        self.secrets = secrets if secrets is not None else \
            ClusterConfig.load(settings.swift_dir).secrets
        self.rate = rate or RateLimiter(settings.files_per_second)

    def audit_pass(self) -> DbAuditStats:
        stats = DbAuditStats()
        for device in recon.list_devices(self.settings.devices):
            try:
                device_path = check_device(self.settings.devices, device,
                                           self.settings.mount_check)
            except DeviceUnavailable as err:
                self.logger.warning("%s auditor skipping %s", self.kind, err)
                continue
            for db_file in iter_db_files(device_path, self.datadir):
                self.rate.wait()
                self.audit_db(device, db_file, stats)
        self.logger.info("%s audit pass: %d passed, %d failed, %d quarantined, %d errors",
                         self.kind, stats.passes, stats.failures, stats.quarantined,
                         stats.errors)
        recon.dump_recon_cache(self.settings.recon_cache_path, self.recon_file,
                               {f"{self.kind}_auditor_stats": stats.as_recon()}, self.logger)
        return stats

    def audit_db(self, device: str, db_file: str, stats: DbAuditStats) -> str:
        """"ok", "quarantined", "failed" (bad but not moved) or "error" (try next pass)."""
        broker: DatabaseBroker[Any] = self.broker_class(db_file, account="", container="",
                                                        reuse_connections=False)
        try:
            problems = broker.integrity_check()
            if not problems:
                problems = self._check_name(broker, db_file)
        except DatabaseError as err:
            problems = [str(err)]
        finally:
            broker.close()
        if not problems:
            stats.count(device, "passes")
            return "ok"
        reason = "; ".join(problems)
        if not os.path.exists(db_file):
            # The broker already quarantined it while reading (sqlite said "malformed").
            self.logger.error("%s database %s quarantined: %s", self.kind, db_file, reason)
            stats.count(device, "failures")
            stats.count(device, "quarantined")
            return "quarantined"
        if any(word in reason.lower() for word in TRANSIENT_WORDS):
            self.logger.warning("%s database %s not checked now: %s", self.kind, db_file,
                                reason)
            stats.count(device, "errors")
            return "error"
        stats.count(device, "failures")
        try:
            where = broker.quarantine(reason)
        except OSError as err:
            self.logger.error("cannot quarantine %s (%s): %s", db_file, reason, err)
            return "failed"
        self.logger.error("%s database %s quarantined to %s: %s", self.kind, db_file, where,
                          reason)
        stats.count(device, "quarantined")
        return "quarantined"

    def _check_name(self, broker: DatabaseBroker[Any], db_file: str) -> list[str]:
        info = broker.get_info()
        container = getattr(info, "container", None)
        expected = os.path.basename(os.path.dirname(db_file))
        actual = hash_path(info.account, container, secrets=self.secrets).hex()
        if actual != expected:
            return [f"names {info.account!r}/{container!r} do not hash to the directory"]
        return []


def run_daemon(conf: Config, logger: logging.Logger, once: bool = False) -> int:
    settings = DbAuditorSettings.from_config(conf)
    auditors = [DbAuditor(settings, kind, logger) for kind in settings.kinds]
    while True:
        began = time.monotonic()
        for auditor in auditors:
            auditor.audit_pass()
        if once:
            return 0
        time.sleep(max(0.0, settings.interval_s - (time.monotonic() - began)))
