"""The object auditor: re-reads every object on a node at a bounded rate and quarantines rot.

Section `[object-auditor]` (`ringstack-server object-auditor CONF [--once]`). Each pass walks
every device's `objects[-N]/<part>/<suffix>/<hash>/` directory, and for the files that count
(by `storage_node.ondisk`'s rules) checks:

- every footer (`.data`, `.meta`, `.ts`): magic, version, sizes and metadata CRC
  (`diskfile.read_footer`);
- the `.data` metadata: X-Timestamp, Content-Length equal to the stored body length, an ETag,
  and a name whose hash is the directory's own (a misplaced or colliding file is bad too);
- the body: read in `disk_chunk_size` pieces, its MD5 compared to the ETag.

A bad object's whole hash directory is moved to `<dev>/quarantined/objects[-N]/<hash>` (the
same place and the same way `DiskFile.quarantine` moves it) and its suffix is appended to
`hashes.invalid`, so the object replicator sees the suffix changed and copies a good replica
back. Reads are throttled by `files_per_second` and `bytes_per_second` so a pass never takes
a disk from the requests it serves. Files that change or vanish during their audit (a PUT,
DELETE or replication got there first) are skipped, not counted as errors.

Stats go to the recon cache (`object.recon`, key `object_auditor_stats`): files and bytes
processed, quarantined, errors, pass time, when the pass ended, and the same per device.
Database integrity is audited by `storage_node.db_auditor`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from common.config import Config
from common.timestamp import InvalidTimestamp, Timestamp
from ring.hashing import HashSecrets, hash_path
from storage_node import ondisk, recon
from storage_node.cluster_config import DEFAULT_SWIFT_DIR, ClusterConfig
from storage_node.devices import DeviceUnavailable, check_device
from storage_node.diskfile import (
    CorruptFile,
    quarantine_hash_dir,
    read_footer,
    read_metadata,
)

SECTION = "object-auditor"
DATADIR_PATTERN = re.compile(r"^objects(-(\d+))?$")
SUFFIX_PATTERN = re.compile(r"^[0-9a-f]{3}$")
HASH_PATTERN = re.compile(r"^[0-9a-f]{32}$")
STATS_KEY = "object_auditor_stats"


# ---- throttling ---------------------------------------------------------------------------------

class RateLimiter:
    """At most `per_second` units per second on average (0: unlimited), with no burst.

    `wait(amount)` sleeps until `amount` more units fit: the next allowed start time moves
    forward by amount / rate each call, so a slow reader is never punished by catching up.
    """

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Any] = time.sleep):
        self.per_second = per_second
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0

    def wait(self, amount: float = 1.0) -> None:
        if self.per_second <= 0 or amount <= 0:
            return
        now = self._clock()
        if self._next > now:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + amount / self.per_second


# ---- where objects are --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class AuditLocation:
    """One hash directory to audit."""

    device: str
    device_path: str
    datadir: str                 # objects or objects-N
    partition: str
    suffix: str
    name_hash: str

    @property
    def partition_dir(self) -> str:
        return os.path.join(self.device_path, self.datadir, self.partition)

    @property
    def hash_dir(self) -> str:
        return os.path.join(self.partition_dir, self.suffix, self.name_hash)


def _sorted_entries(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def iter_audit_locations(device: str, device_path: str) -> Iterator[AuditLocation]:
    """Every hash directory of every policy on one device, in a stable order."""
    for datadir in _sorted_entries(device_path):
        if not DATADIR_PATTERN.match(datadir):
            continue
        for partition in _sorted_entries(os.path.join(device_path, datadir)):
            if not partition.isdigit():
                continue
            partition_dir = os.path.join(device_path, datadir, partition)
            for suffix in _sorted_entries(partition_dir):
                if not SUFFIX_PATTERN.match(suffix):
                    continue
                for name_hash in _sorted_entries(os.path.join(partition_dir, suffix)):
                    if HASH_PATTERN.match(name_hash) and name_hash.endswith(suffix):
                        yield AuditLocation(device, device_path, datadir, partition, suffix,
                                            name_hash)


def quarantine_location(location: AuditLocation, reason: str,
                        logger: logging.Logger) -> str | None:
    """Move the hash directory aside as `DiskFile.quarantine` does; None if already gone.
    (A DiskFile cannot always be built here: a corrupt footer hides the object's name.)"""
    return quarantine_hash_dir(location.device_path, location.datadir, location.hash_dir,
                               location.partition_dir, location.suffix, reason, logger)


# ---- settings and stats -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class AuditorSettings:
    devices: str = "/srv/node"
    mount_check: bool = True
    swift_dir: str = DEFAULT_SWIFT_DIR
    interval_s: float = 30.0
    files_per_second: float = 20.0
    bytes_per_second: float = 10_000_000.0
    disk_chunk_bytes: int = 65536
    log_time_s: float = 3600.0
    recon_cache_path: str = "/srv/recon"

    @classmethod
    def from_config(cls, conf: Config) -> AuditorSettings:
        return cls(
            devices=conf.get_str("devices", cls.devices),
            mount_check=conf.get_bool("mount_check", cls.mount_check),
            swift_dir=conf.get_str("swift_dir", cls.swift_dir),
            interval_s=conf.get_float("interval", cls.interval_s, minimum=0.0),
            files_per_second=conf.get_float("files_per_second", cls.files_per_second,
                                            minimum=0.0),
            bytes_per_second=conf.get_float("bytes_per_second", cls.bytes_per_second,
                                            minimum=0.0),
            disk_chunk_bytes=conf.get_int("disk_chunk_size", cls.disk_chunk_bytes, minimum=1),
            log_time_s=conf.get_float("log_time", cls.log_time_s, minimum=0.0),
            recon_cache_path=recon.recon_cache_path(conf))


@dataclasses.dataclass
class DeviceStats:
    files_processed: int = 0
    bytes_processed: int = 0
    quarantined: int = 0
    errors: int = 0


@dataclasses.dataclass
class AuditStats:
    """One pass: totals, and the same per device."""

    files_processed: int = 0
    bytes_processed: int = 0
    quarantined: int = 0
    errors: int = 0
    started: float = dataclasses.field(default_factory=time.time)
    devices: dict[str, DeviceStats] = dataclasses.field(default_factory=dict)

    def device(self, name: str) -> DeviceStats:
        return self.devices.setdefault(name, DeviceStats())

    def count(self, device: str, field: str, amount: int = 1) -> None:
        setattr(self, field, getattr(self, field) + amount)
        stats = self.device(device)
        setattr(stats, field, getattr(stats, field) + amount)

    def as_recon(self, finished: bool) -> dict[str, Any]:
        now = time.time()
        result: dict[str, Any] = {
            "files_processed": self.files_processed, "bytes_processed": self.bytes_processed,
            "quarantined": self.quarantined, "errors": self.errors,
            "pass_time": round(now - self.started, 3), "start_time": self.started,
            "devices": {name: dataclasses.asdict(stats) for name, stats in self.devices.items()},
        }
        if finished:
            result["last_pass"] = now
        return result


# ---- the auditor --------------------------------------------------------------------------------

class ObjectAuditor:
    """Audits every object on one node; `audit_pass()` is one full sweep."""

    def __init__(self, settings: AuditorSettings, logger: logging.Logger,
                 secrets: HashSecrets | None = None,
                 sleep: Callable[[float], Any] = time.sleep):
        self.settings = settings
        self.logger = logger
        self.secrets = secrets if secrets is not None else \
            ClusterConfig.load(settings.swift_dir).secrets
        self._files_limit = RateLimiter(settings.files_per_second, sleep=sleep)
        self._bytes_limit = RateLimiter(settings.bytes_per_second, sleep=sleep)

    def device_paths(self) -> Iterator[tuple[str, str]]:
        for device in recon.list_devices(self.settings.devices):
            try:
                yield device, check_device(self.settings.devices, device,
                                           self.settings.mount_check)
            except DeviceUnavailable as err:
                self.logger.warning("object auditor skipping %s", err)

    def audit_pass(self, devices: list[str] | None = None) -> AuditStats:
        """One sweep over every device (or only `devices`); stats go to the recon cache."""
        stats = AuditStats()
        last_report = time.monotonic()
        for device, device_path in self.device_paths():
            if devices is not None and device not in devices:
                continue
            stats.device(device)
            for location in iter_audit_locations(device, device_path):
                self._files_limit.wait()
                self.audit_location(location, stats)
                if self.settings.log_time_s and \
                        time.monotonic() - last_report >= self.settings.log_time_s:
                    last_report = time.monotonic()
                    self._report(stats, finished=False)
        self._report(stats, finished=True)
        return stats

    def _report(self, stats: AuditStats, finished: bool) -> None:
        self.logger.info("object audit%s: %d files, %d bytes, %d quarantined, %d errors "
                         "in %.1fs", " pass done" if finished else " in progress",
                         stats.files_processed, stats.bytes_processed, stats.quarantined,
                         stats.errors, time.time() - stats.started)
        recon.dump_recon_cache(self.settings.recon_cache_path, recon.OBJECT_RECON,
                               {STATS_KEY: stats.as_recon(finished)}, self.logger)

    def audit_location(self, location: AuditLocation, stats: AuditStats) -> str:
        """Audit one hash directory: "ok", "quarantined", "skipped" (changed under us) or
        "error" (counted; the object is left alone)."""
        try:
            problem = self._check(location, stats)
        except FileNotFoundError:
            return "skipped"            # replaced or deleted while we read it: fine
        except OSError as err:
            self.logger.error("object auditor cannot read %s: %s", location.hash_dir, err)
            stats.count(location.device, "errors")
            return "error"
        if problem is None:
            return "ok"
        try:
            if quarantine_location(location, problem, self.logger) is None:
                return "skipped"
        except OSError as err:
            self.logger.error("cannot quarantine %s (%s): %s", location.hash_dir, problem, err)
            stats.count(location.device, "errors")
            return "error"
        stats.count(location.device, "quarantined")
        return "quarantined"

    def _check(self, location: AuditLocation, stats: AuditStats) -> str | None:
        """Why this hash directory is bad, or None. OSError propagates."""
        hash_dir = location.hash_dir
        try:
            names = os.listdir(hash_dir)
        except NotADirectoryError:
            return "not a directory"
        state = ondisk.get_ondisk_files(names)
        for extra in (state.meta_file, state.tombstone):
            if extra is not None:
                try:
                    read_metadata(os.path.join(hash_dir, extra.name))
                except CorruptFile as err:
                    return f"{extra.name}: {err}"
        if state.data_file is None:
            return None
        stats.count(location.device, "files_processed")
        fd = os.open(os.path.join(hash_dir, state.data_file.name), os.O_RDONLY)
        try:
            try:
                body_length, metadata = read_footer(fd)
            except CorruptFile as err:
                return f"{state.data_file.name}: {err}"
            problem = self._check_metadata(location, metadata, body_length,
                                           state.data_file.timestamp)
            if problem is not None:
                return problem
            return self._check_body(location, fd, body_length, metadata["ETag"], stats)
        finally:
            os.close(fd)

    def _check_metadata(self, location: AuditLocation, metadata: dict[str, str],
                        body_length: int, file_timestamp: Timestamp) -> str | None:
        try:
            if Timestamp(metadata["X-Timestamp"]) != file_timestamp:
                return "X-Timestamp does not match the file name"
            if int(metadata["Content-Length"]) != body_length:
                return f"Content-Length {metadata['Content-Length']} != body {body_length}"
            if not metadata["ETag"]:
                return "empty ETag"
        except (KeyError, ValueError, InvalidTimestamp) as err:
            return f"data file metadata incomplete: {err!r}"
        name = metadata.get("name", "")
        parts = name.split("/", 3)
        if len(parts) != 4 or parts[0] or not all(parts[1:]):
            return f"bad object name {name!r} in metadata"
        if hash_path(parts[1], parts[2], parts[3], self.secrets).hex() != location.name_hash:
            return f"name {name!r} does not hash to its directory"
        return None

    def _check_body(self, location: AuditLocation, fd: int, body_length: int, etag: str,
                    stats: AuditStats) -> str | None:
        digest = hashlib.md5(usedforsecurity=False)
        offset = 0
        chunk_bytes = self.settings.disk_chunk_bytes
        while offset < body_length:
            length = min(chunk_bytes, body_length - offset)
            self._bytes_limit.wait(length)
            data = os.pread(fd, length, offset)
            if len(data) != length:
                return f"short read at {offset}: {len(data)} of {length} bytes"
            digest.update(data)
            offset += length
            stats.count(location.device, "bytes_processed", length)
        if digest.hexdigest() != etag:
            return f"ETag mismatch: stored {etag}, body {digest.hexdigest()}"
        return None


def run_daemon(conf: Config, logger: logging.Logger, once: bool = False) -> int:
    """Audit every `interval` seconds (or once); returns the process exit status."""
    settings = AuditorSettings.from_config(conf)
    auditor = ObjectAuditor(settings, logger)
    while True:
        began = time.monotonic()
        auditor.audit_pass()
        if once:
            return 0
        time.sleep(max(0.0, settings.interval_s - (time.monotonic() - began)))
