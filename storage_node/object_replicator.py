"""The object replicator daemon (`ringstack-server object-replicator CONF [--once]`).

One pass walks every local device of every replication policy's object ring, partition by
partition (`concurrency` partitions at once):

- A partition this device is a primary for (an "update" job): its suffix hashes
  (`storage_node.suffix_hashes`, lazily rehashed) are compared with each other primary's
  (`REPLICATE /<dev>/<part>`, `storage_node.object_replication_server`). For the suffixes
  that differ the peer is asked again with the suffixes listed, which rehashes them there and
  returns their hash directories' current files; from the two listings `files_to_send` picks
  exactly the versions the peer lacks or holds older, and those are pushed; then the peer is
  asked once more to rehash those suffixes. A primary that does not answer (down, 507) is
  replaced by the next handoff from `ring.get_more_nodes`, so the partition keeps its count
  of copies while that primary is away.
- A partition this device is not a primary for (a "revert" job: a handoff written while a
  primary was down, or data a rebalance moved away): everything is pushed to the primaries,
  and once `handoff_delete` of them (default: all) confirmed, exactly the files that were
  sent or found there are deleted, then the partition directory once empty. Files written
  meanwhile stay for the next pass. After a rebalance this is what moves data to its new
  places.

Pushing uses the object server's own verbs with `X-Backend-Replication: True` and the
file's exact X-Timestamp and metadata (Swift's ssync does the same): a `.data` is a PUT of
its body (the receiver checks it against the stored ETag: a rotten local copy is refused,
not spread), a `.ts` is a DELETE, a `.meta` a POST. The receiver orders them by timestamp
like any write (older ones get 409, which is fine) and sends no container updates.

Rate limits: `files_per_second` and `bytes_per_second` across the whole pass. Per-pass
statistics go to the log and, as JSON, to `<recon_cache_path>/object.recon` (written
atomically, under a lock, merged with what other daemons keep there): `object_replication_time`
(minutes, as Swift writes it), `object_replication_last` (unix time the pass ended),
`replication_stats` (counters, `pass_time_s`, `last_success`), `partitions_behind` and
`replication_per_device`.

Which devices are local: ring devices whose directory exists under `devices` and whose port
(or replication port) is `bind_port` (and whose ip is `bind_ip`, unless that is a wildcard)
— the object server's own [DEFAULT] settings, so the replicator can share its config file.
Disk work runs on a per-device `DiskIOPool`; the network on eventlet green threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Iterator
from urllib.parse import quote

import eventlet
from eventlet.green.http import client as green_http

from common.config import Config
from common.policies import REPLICATION
from common.timestamp import Timestamp
from ring.device import Device
from ring.errors import RingError
from ring.hashing import hash_path
from ring.ring import Node, Ring
from storage_node import http_client, ondisk
from storage_node.cluster_config import DEFAULT_SWIFT_DIR, ClusterConfig
from storage_node.devices import DeviceUnavailable, DiskIOPool, check_device
from storage_node.diskfile import TMP_DIR, CorruptFile, data_dir_name, read_metadata
from storage_node.object_replication_server import decode_reply
from storage_node.recon import dump_recon_cache, load_recon_cache
from storage_node.suffix_hashes import (
    Hashes,
    Listing,
    get_hashes,
    hash_listing,
    is_suffix,
    list_suffix,
    remove_files,
    suffix_dirs,
)

SECTION = "object-replicator"
RECON_FILE = "object.recon"
# Suffixes named in one REPLICATE path: 512 * 4 characters stays far below the 8 KiB request
# line a WSGI server accepts.
SUFFIXES_PER_REQUEST = 512
REPLICATE_MAX_BODY_BYTES = 256 * 1024 * 1024
WILDCARD_IPS = frozenset({"", "0.0.0.0", "::"})
# Answers that mean "the peer has this version, or a newer one": the push is done.
PUT_DONE = frozenset({201, 409})
DELETE_DONE = frozenset({204, 404, 409})     # a 404 still writes the tombstone
POST_DONE = frozenset({202, 409})
# Metadata keys that travel as their own headers (or not at all), never as copied extras.
_NOT_COPIED = frozenset({"name", "x-timestamp", "content-length", "etag", "content-type",
                         "deleted"})
_META_PREFIXES = ("x-object-meta-", "x-object-sysmeta-", "x-object-transient-sysmeta-")


# ---- settings ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ReplicatorSettings:
    devices: str = "/srv/node"
    mount_check: bool = True
    swift_dir: str = DEFAULT_SWIFT_DIR
    bind_ip: str = "0.0.0.0"
    bind_port: int = 6200
    interval_s: float = 30.0
    concurrency: int = 1
    files_per_second: float = 0.0
    bytes_per_second: float = 0.0
    conn_timeout_s: float = 0.5
    node_timeout_s: float = 10.0
    http_timeout_s: float = 60.0
    reclaim_age_s: float = 7 * 24 * 3600.0
    handoffs_first: bool = False
    handoffs_only: bool = False
    handoff_delete: int = 0          # 0: every primary must confirm
    disk_io_threads_per_device: int = 2
    disk_chunk_bytes: int = 1024 * 1024
    recon_cache_path: str = ""       # "" -> <devices>/../recon

    @classmethod
    def from_config(cls, conf: Config) -> ReplicatorSettings:
        devices = conf.get_str("devices", cls.devices)
        # `run_pause` is Swift's older name for `interval`.
        interval_s = conf.get_float("run_pause", cls.interval_s, minimum=0.0)
        return cls(
            devices=devices,
            mount_check=conf.get_bool("mount_check", cls.mount_check),
            swift_dir=conf.get_str("swift_dir", cls.swift_dir),
            bind_ip=conf.get_str("bind_ip", cls.bind_ip),
            bind_port=conf.get_int("bind_port", cls.bind_port, minimum=0),
            interval_s=conf.get_float("interval", interval_s, minimum=0.0),
            concurrency=conf.get_int("concurrency", cls.concurrency, minimum=1),
            files_per_second=conf.get_float("files_per_second", cls.files_per_second,
                                            minimum=0.0),
            bytes_per_second=conf.get_float("bytes_per_second", cls.bytes_per_second,
                                            minimum=0.0),
            conn_timeout_s=conf.get_float("conn_timeout", cls.conn_timeout_s, minimum=0.01),
            node_timeout_s=conf.get_float("node_timeout", cls.node_timeout_s, minimum=0.01),
            http_timeout_s=conf.get_float("http_timeout", cls.http_timeout_s, minimum=0.01),
            reclaim_age_s=conf.get_float("reclaim_age", cls.reclaim_age_s, minimum=0.0),
            handoffs_first=conf.get_bool("handoffs_first", cls.handoffs_first),
            handoffs_only=conf.get_bool("handoffs_only", cls.handoffs_only),
            handoff_delete=conf.get_int("handoff_delete", cls.handoff_delete, minimum=0),
            disk_io_threads_per_device=conf.get_int("disk_io_threads_per_device",
                                                    cls.disk_io_threads_per_device,
                                                    minimum=0),
            disk_chunk_bytes=conf.get_int("disk_chunk_size", cls.disk_chunk_bytes, minimum=1),
            recon_cache_path=conf.get_str("recon_cache_path", ""))

    @property
    def recon_file(self) -> str:
        directory = self.recon_cache_path or os.path.join(
            os.path.dirname(os.path.abspath(self.devices)), "recon")
        return os.path.join(directory, RECON_FILE)


# ---- pure rules -------------------------------------------------------------------------------

def files_to_send(local_names: list[str], remote_names: list[str]) -> list[str]:
    """Which of our current files a peer needs, in the order to send them.

    Our current .data (or .ts) goes when the peer's current version is older or missing; our
    .meta goes when it is newer than the peer's .meta and the peer ends up with our .data, or
    holds a newer .data that the .meta was POSTed after. A peer whose current version is
    newer than all we have needs nothing. A .meta without a .data (it can arrive
    first) is never sent on its own: the receiver has nothing to apply it to.
    """
    local = ondisk.get_ondisk_files(local_names)
    remote = ondisk.get_ondisk_files(remote_names)
    if local.current is None:
        return []
    remote_current = remote.current
    if remote_current is not None and remote_current.timestamp > local.current.timestamp:
        # The peer has newer data; our .meta still counts if it was POSTed after that data
        # and after any .meta the peer has (a POST applies to whatever data is current).
        if local.meta_file is not None and local.data_file is not None \
                and remote.data_file is not None:
            remote_newest = remote.meta_file or remote.data_file
            if local.meta_file.timestamp > remote_newest.timestamp:
                return [local.meta_file.name]
        return []
    send = []
    if remote_current is None or remote_current.timestamp < local.current.timestamp:
        send.append(local.current.name)
    elif remote_current.ext != local.current.ext:
        # Same instant, different kinds: the tombstone wins (ondisk's rule), so only ours
        # is worth sending if it is the tombstone.
        if local.tombstone is not None:
            send.append(local.current.name)
        else:
            return []
    if local.data_file is not None and local.meta_file is not None:
        remote_meta = remote.meta_file.timestamp if remote.meta_file else None
        if remote_meta is None or remote_meta < local.meta_file.timestamp:
            send.append(local.meta_file.name)
    return send


def replication_headers(metadata: dict[str, str], ext: str, policy_index: int
                        ) -> dict[str, str]:
    """The headers that make the receiver store `metadata` as it is here."""
    headers = {"X-Timestamp": metadata["X-Timestamp"], "X-Backend-Replication": "True",
               "X-Backend-Storage-Policy-Index": str(policy_index)}
    if ext == ondisk.TOMBSTONE_EXT:
        return headers
    extras = []
    for key, value in metadata.items():
        lower = key.lower()
        if lower in _NOT_COPIED:
            continue
        headers[key] = value
        if not lower.startswith(_META_PREFIXES):
            extras.append(lower)    # e.g. X-Delete-At, Content-Encoding: stored verbatim
    if ext == ondisk.DATA_EXT:
        headers["Content-Type"] = metadata.get("Content-Type", "application/octet-stream")
        headers["ETag"] = metadata["ETag"]
    elif "Content-Type" in metadata:
        headers["Content-Type"] = metadata["Content-Type"]
    if extras:
        headers["X-Backend-Replication-Headers"] = " ".join(extras)
    return headers


def split_name(name: str) -> tuple[str, str, str]:
    """`/a/c/o` (an object's stored name) -> (a, c, o); ValueError otherwise."""
    parts = name.split("/", 3)
    if len(parts) != 4 or parts[0] or not all(parts[1:]):
        raise ValueError(f"not an object name: {name!r}")
    return parts[1], parts[2], parts[3]


# ---- small helpers ----------------------------------------------------------------------------

class RateLimiter:
    """At most `rate` units per second (0: unlimited), shared by every green thread."""

    def __init__(self, rate: float):
        self.rate = rate
        self._next = 0.0

    def acquire(self, amount: float = 1.0) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        start = max(self._next, now)
        self._next = start + amount / self.rate
        if start > now:
            eventlet.sleep(start - now)


# ---- jobs and statistics ----------------------------------------------------------------------

@dataclasses.dataclass
class Job:
    policy_index: int
    ring: Ring
    device: Device
    device_path: str
    partition: int
    primary: bool

    @property
    def partition_dir(self) -> str:
        return os.path.join(self.device_path, data_dir_name(self.policy_index),
                            str(self.partition))


@dataclasses.dataclass
class PassStats:
    attempted: int = 0          # partitions processed
    success: int = 0            # ... with every sync done
    failure: int = 0            # ... with some sync or push failed
    hashmatch: int = 0          # node syncs where the hashes already agreed
    suffix_count: int = 0       # suffixes compared
    suffix_sync: int = 0        # suffixes that differed and were synced
    files_pushed: int = 0       # PUT/DELETE/POST requests the peers accepted
    bytes_pushed: int = 0
    push_failures: int = 0
    node_failures: int = 0      # peers that did not answer REPLICATE
    handoff_syncs: int = 0      # syncs to a handoff standing in for a failed primary
    remove: int = 0             # handoff partitions removed
    handoffs_remaining: int = 0
    primaries_behind: int = 0
    unmounted: int = 0
    per_device: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)

    @property
    def partitions_behind(self) -> int:
        return self.handoffs_remaining + self.primaries_behind

    def device(self, name: str) -> dict[str, int]:
        return self.per_device.setdefault(name, {"attempted": 0, "failure": 0,
                                                 "partitions_behind": 0, "files_pushed": 0})


@dataclasses.dataclass
class SyncOutcome:
    reached: bool = False        # the peer answered REPLICATE
    complete: bool = False       # ... and every needed file is there now


# ---- the replicator ---------------------------------------------------------------------------

class ObjectReplicator:
    """One pass at a time over every local device (see the module docstring)."""

    def __init__(self, settings: ReplicatorSettings, logger: logging.Logger):
        self.settings = settings
        self.logger = logger
        self.cluster = ClusterConfig.load(settings.swift_dir)
        self.io = DiskIOPool(settings.disk_io_threads_per_device, "replicator-io")
        self.rings: dict[int, Ring] = {}
        self.file_limiter = RateLimiter(settings.files_per_second)
        self.byte_limiter = RateLimiter(settings.bytes_per_second)
        self.stats = PassStats()

    # ---- rings and jobs ---------------------------------------------------------------------

    def load_rings(self) -> dict[int, Ring]:
        for policy in self.cluster.policies:
            if policy.policy_type != REPLICATION:
                continue
            ring = self.rings.get(policy.index)
            if ring is not None:
                ring.maybe_reload()
                continue
            path = os.path.join(self.settings.swift_dir, f"{policy.ring_name}.ring")
            try:
                self.rings[policy.index] = Ring(path, self.cluster.secrets)
            except RingError as err:
                self.logger.warning("policy %d: no usable ring: %s", policy.index, err)
        return self.rings

    def local_devices(self, ring: Ring) -> list[Device]:
        found = []
        for device in ring.devices:
            if device is None:
                continue
            if self.settings.bind_port and self.settings.bind_port not in (
                    device.port, device.replication_port):
                continue
            if self.settings.bind_ip not in WILDCARD_IPS and self.settings.bind_ip not in (
                    device.ip, device.replication_ip):
                continue
            if os.path.isdir(os.path.join(self.settings.devices, device.device)):
                found.append(device)
        return found

    def remove_stale_temp_files(self, device_path: str) -> int:
        """Remove files in `<dev>/tmp` untouched for `reclaim_age`: writes that died before
        their rename (a killed server) leave them, each as large as its object (fallocated),
        and nothing else ever will. A live write touches its file far more often."""
        tmp_dir = os.path.join(device_path, TMP_DIR)
        cutoff = time.time() - self.settings.reclaim_age_s
        removed = 0
        try:
            names = os.listdir(tmp_dir)
        except OSError:
            return 0
        for name in names:
            path = os.path.join(tmp_dir, name)
            with contextlib.suppress(OSError):
                if os.stat(path).st_mtime < cutoff:
                    os.unlink(path)
                    removed += 1
        if removed:
            self.logger.info("removed %d stale temp files from %s", removed, tmp_dir)
        return removed

    def collect_jobs(self) -> list[Job]:
        jobs = []
        rings = self.load_rings()
        for policy_index, ring in sorted(rings.items()):
            for device in self.local_devices(ring):
                try:
                    device_path = check_device(self.settings.devices, device.device,
                                               self.settings.mount_check)
                except DeviceUnavailable as err:
                    self.logger.warning("skipping device: %s", err)
                    self.stats.unmounted += 1
                    continue
                if policy_index == min(rings):       # once per device
                    self.remove_stale_temp_files(device_path)
                data_dir = os.path.join(device_path, data_dir_name(policy_index))
                try:
                    names = os.listdir(data_dir)
                except FileNotFoundError:
                    continue
                except OSError as err:
                    self.logger.error("cannot list %s: %s", data_dir, err)
                    continue
                for name in sorted(names, key=lambda n: (len(n), n)):
                    if not name.isdigit() or not os.path.isdir(os.path.join(data_dir, name)):
                        continue
                    partition = int(name)
                    if partition >= ring.partition_count:
                        self.logger.warning("%s: partition %d is beyond the ring (%d)",
                                            data_dir, partition, ring.partition_count)
                        continue
                    primary = any(node.id == device.id
                                  for node in ring.get_part_nodes(partition))
                    jobs.append(Job(policy_index, ring, device, device_path, partition,
                                    primary))
        if self.settings.handoffs_only:
            jobs = [job for job in jobs if not job.primary]
        elif self.settings.handoffs_first:
            jobs.sort(key=lambda job: job.primary)      # stable: handoffs, then the rest
        return jobs

    # ---- a pass -----------------------------------------------------------------------------

    def run_once(self) -> PassStats:
        started_wall, started = time.time(), time.monotonic()
        self.stats = PassStats()
        jobs = self.collect_jobs()
        pool = eventlet.GreenPool(self.settings.concurrency)
        for job in jobs:
            pool.spawn_n(self._run_job, job)
        pool.waitall()
        stats = self.stats
        pass_time_s = time.monotonic() - started
        self.logger.info(
            "object replication pass: %d partitions (%d ok, %d failed), %d suffixes synced, "
            "%d files pushed (%d bytes), %d push failures, %d peers unreachable, "
            "%d handoff partitions removed, %d partitions behind, in %.2fs",
            stats.attempted, stats.success, stats.failure, stats.suffix_sync,
            stats.files_pushed, stats.bytes_pushed, stats.push_failures, stats.node_failures,
            stats.remove, stats.partitions_behind, pass_time_s)
        self._write_recon(started_wall, pass_time_s)
        return stats

    def _write_recon(self, started_wall: float, pass_time_s: float) -> None:
        path = self.settings.recon_file
        now = time.time()
        stats = self.stats
        previous = load_recon_cache(path).get("replication_stats") or {}
        failed = stats.failure or stats.unmounted
        last_success = previous.get("last_success") if failed else now
        counters = {k: v for k, v in dataclasses.asdict(stats).items() if k != "per_device"}
        counters.update(start=started_wall, pass_time_s=round(pass_time_s, 3),
                        last_success=last_success, partitions_behind=stats.partitions_behind)
        dump_recon_cache(os.path.dirname(path), os.path.basename(path), {
            "object_replication_time": pass_time_s / 60.0,
            "object_replication_last": now,
            "replication_stats": counters,
            "partitions_behind": stats.partitions_behind,
            "replication_per_device": stats.per_device,
        }, self.logger)

    def _run_job(self, job: Job) -> None:
        stats = self.stats
        per_device = stats.device(job.device.device)
        stats.attempted += 1
        per_device["attempted"] += 1
        try:
            ok = self.update(job) if job.primary else self.revert(job)
        except DeviceUnavailable as err:
            self.logger.error("partition %s: device unavailable: %s", job.partition_dir, err)
            ok = False
        except Exception:
            self.logger.exception("partition %s failed", job.partition_dir)
            ok = False
        if ok:
            stats.success += 1
        else:
            stats.failure += 1
            per_device["failure"] += 1
        if job.primary and not ok:
            stats.primaries_behind += 1
            per_device["partitions_behind"] += 1
        elif not job.primary and os.path.isdir(job.partition_dir):
            stats.handoffs_remaining += 1
            per_device["partitions_behind"] += 1

    # ---- primary partitions -----------------------------------------------------------------

    def update(self, job: Job) -> bool:
        """Bring every other primary up to date with this partition; True when all are."""
        reclaim_before = self._reclaim_before()
        local_hashes: Hashes = self.io.run(job.device.device, get_hashes, job.partition_dir,
                                           (), reclaim_before)
        if not local_hashes:
            return True
        self.stats.suffix_count += len(local_hashes)
        peers = [node for node in job.ring.get_part_nodes(job.partition)
                 if node.id != job.device.id]
        handoffs = (node for node in job.ring.get_more_nodes(job.partition)
                    if node.id != job.device.id)
        all_ok = True
        for node in peers:
            outcome = self.sync(job, node, local_hashes)
            all_ok = all_ok and outcome.complete
            if outcome.reached:
                continue
            # The primary is away: keep the copy count up on the next handoff meanwhile.
            for handoff in handoffs:
                self.stats.handoff_syncs += 1
                if self.sync(job, handoff, local_hashes).reached:
                    break
        return all_ok

    # ---- handoff partitions -----------------------------------------------------------------

    def revert(self, job: Job) -> bool:
        """Push a handoff partition to its primaries; remove it once they all have it."""
        device = job.device.device
        reclaim_before = self._reclaim_before()
        # The listing taken here is what gets deleted at the end, so the hashes compared are
        # computed from it too: what was confirmed is exactly what is removed.
        snapshot: dict[str, Listing] = self.io.run(device, self._list_partition,
                                                   job.partition_dir, reclaim_before)
        if not snapshot:
            self.io.run(device, remove_files, job.partition_dir, {})
            if not os.path.isdir(job.partition_dir):
                self.stats.remove += 1
            return True
        local_hashes = {suffix: hash_listing(listing) for suffix, listing in snapshot.items()}
        self.stats.suffix_count += len(local_hashes)
        primaries = job.ring.get_part_nodes(job.partition)
        needed = self.settings.handoff_delete or len(primaries)
        confirmed = 0
        for node in primaries:
            if self.sync(job, node, local_hashes, snapshot).complete:
                confirmed += 1
        if confirmed < min(needed, len(primaries)):
            self.logger.info("handoff partition %s: %d of %d primaries confirmed; kept",
                             job.partition_dir, confirmed, len(primaries))
            return False
        self.io.run(device, remove_files, job.partition_dir, snapshot)
        if not os.path.isdir(job.partition_dir):
            self.stats.remove += 1
        return True

    @staticmethod
    def _list_partition(partition_dir: str, reclaim_before: Timestamp) -> dict[str, Listing]:
        listings = {}
        for suffix in suffix_dirs(partition_dir):
            listing = list_suffix(partition_dir, suffix, reclaim_before)
            if listing:
                listings[suffix] = listing
        return listings

    # ---- one peer ---------------------------------------------------------------------------

    def sync(self, job: Job, node: Node, local_hashes: Hashes,
             snapshot: dict[str, Listing] | None = None) -> SyncOutcome:
        """Make `node` hold at least what this partition holds in the suffixes whose hashes
        differ. `snapshot` (revert jobs) is the local listing to send from; without it the
        differing suffixes are listed now."""
        remote = self.replicate(node, job)
        if remote is None:
            self.stats.node_failures += 1
            return SyncOutcome()
        remote_hashes, _ = remote
        differing = sorted(s for s, h in local_hashes.items() if h != remote_hashes.get(s))
        if not differing:
            self.stats.hashmatch += 1
            return SyncOutcome(reached=True, complete=True)
        complete = True
        for start in range(0, len(differing), SUFFIXES_PER_REQUEST):
            batch = differing[start:start + SUFFIXES_PER_REQUEST]
            # Ask again naming the suffixes: the peer rehashes them (its cached hash may be
            # stale) and lists their files.
            remote = self.replicate(node, job, batch)
            if remote is None:
                self.stats.node_failures += 1
                return SyncOutcome(reached=True, complete=False)
            remote_hashes, remote_files = remote
            if snapshot is not None:
                local = {s: snapshot[s] for s in batch}
            else:
                local = self.io.run(job.device.device, self._list_suffixes, job.partition_dir,
                                    batch, self._reclaim_before())
            synced = []
            for suffix in batch:
                listing = local.get(suffix) or {}
                if hash_listing(listing) == remote_hashes.get(suffix):
                    continue
                synced.append(suffix)
                theirs = remote_files.get(suffix) or {}
                for name_hash, names in sorted(listing.items()):
                    for file_name in files_to_send(names, theirs.get(name_hash, [])):
                        complete = self.push(job, node, suffix, name_hash, file_name) \
                            and complete
            self.stats.suffix_sync += len(synced)
            if synced and self.replicate(node, job, synced) is None:
                # The data went; only the peer's rehash did not (its writes invalidated
                # those suffixes anyway, so its next REPLICATE rehashes them).
                self.logger.warning("%s: rehash of %d suffixes on %s:%d failed",
                                    job.partition_dir, len(synced), node.replication_ip,
                                    node.replication_port)
        return SyncOutcome(reached=True, complete=complete)

    @staticmethod
    def _list_suffixes(partition_dir: str, suffixes: list[str],
                       reclaim_before: Timestamp) -> dict[str, Listing]:
        return {s: list_suffix(partition_dir, s, reclaim_before) for s in suffixes}

    def replicate(self, node: Node, job: Job, suffixes: list[str] | None = None
                  ) -> tuple[Hashes, dict[str, Listing]] | None:
        """REPLICATE on a peer: (hashes, files), or None when it did not answer 200."""
        path = f"/{node.device}/{job.partition}"
        if suffixes:
            path += "/" + "-".join(suffixes)
        headers = {"X-Backend-Storage-Policy-Index": str(job.policy_index),
                   "User-Agent": f"object-replicator {os.getpid()}"}
        try:
            status, body = self._replicate_request(node, path, headers)
        except (OSError, green_http.HTTPException, http_client.HttpError, ValueError) as err:
            self.logger.warning("REPLICATE %s:%d%s: %s", node.replication_ip,
                                node.replication_port, path, err)
            return None
        if status != 200:
            self.logger.warning("REPLICATE %s:%d%s answered %d", node.replication_ip,
                                node.replication_port, path, status)
            return None
        try:
            hashes, files = decode_reply(body)
        except ValueError as err:
            self.logger.error("REPLICATE %s:%d%s: %s", node.replication_ip,
                              node.replication_port, path, err)
            return None
        return ({k: v for k, v in hashes.items() if is_suffix(k)}, files)

    def _replicate_request(self, node: Node, path: str, headers: dict[str, str]
                           ) -> tuple[int, bytes]:
        """(status, body) of one REPLICATE. Not `http_client.request`: that reads into a
        buffer of its maximum body size, and a hashes body may be large but rarely is."""
        connection = green_http.HTTPConnection(node.replication_ip, node.replication_port,
                                               timeout=self.settings.http_timeout_s)
        try:
            with eventlet.Timeout(self.settings.conn_timeout_s,
                                  http_client.HttpTimeout("connect timed out")):
                connection.connect()
            # One watchdog for the whole answer: the peer may rehash for a while.
            with eventlet.Timeout(self.settings.http_timeout_s,
                                  http_client.HttpTimeout("no answer in http_timeout")):
                connection.putrequest("REPLICATE", quote(path), skip_accept_encoding=True)
                for name, value in headers.items():
                    connection.putheader(name, value)
                connection.endheaders()
                response = connection.getresponse()
                length = response.getheader("Content-Length")
                if length is None or not length.isdigit() \
                        or int(length) > REPLICATE_MAX_BODY_BYTES:
                    raise ValueError(f"unusable Content-Length {length!r}")
                return response.status, response.read()
        finally:
            connection.close()

    # ---- pushing one file -------------------------------------------------------------------

    def push(self, job: Job, node: Node, suffix: str, name_hash: str, file_name: str) -> bool:
        """Send one file to `node`; True when the peer now has it (or something newer)."""
        device = job.device.device
        file_path = os.path.join(job.partition_dir, suffix, name_hash, file_name)
        parsed = ondisk.parse_file_name(file_name)
        if parsed is None:
            return True
        try:
            body_length, metadata = self.io.run(device, read_metadata, file_path)
        except FileNotFoundError:
            return True          # superseded meanwhile: the newer file goes next pass
        except CorruptFile as err:
            self.logger.error("not replicating corrupt %s: %s", file_path, err)
            self.stats.push_failures += 1
            return False
        try:
            account, container, obj = split_name(metadata.get("name", ""))
            if hash_path(account, container, obj, self.cluster.secrets).hex() != name_hash:
                raise ValueError(f"{metadata.get('name')!r} does not hash to {name_hash}")
            headers = replication_headers(metadata, parsed.ext, job.policy_index)
        except (KeyError, ValueError) as err:
            self.logger.error("not replicating %s: %s", file_path, err)
            self.stats.push_failures += 1
            return False
        path = f"/{node.device}/{job.partition}/{account}/{container}/{obj}"
        self.file_limiter.acquire()
        if parsed.ext == ondisk.DATA_EXT:
            self.byte_limiter.acquire(body_length)
            status = self._put(node, path, headers, device, file_path, body_length)
            done = PUT_DONE
        else:
            method = "DELETE" if parsed.ext == ondisk.TOMBSTONE_EXT else "POST"
            done = DELETE_DONE if method == "DELETE" else POST_DONE
            try:
                status = http_client.request(
                    node.replication_ip, node.replication_port, method, path, headers,
                    connect_timeout_s=self.settings.conn_timeout_s,
                    response_timeout_s=self.settings.node_timeout_s).status
            except http_client.HttpError as err:
                self.logger.warning("%s %s to %s:%d: %s", method, path, node.replication_ip,
                                    node.replication_port, err)
                status = None
        if status in done:
            self.stats.files_pushed += 1
            self.stats.device(device)["files_pushed"] += 1
            if parsed.ext == ondisk.DATA_EXT:
                self.stats.bytes_pushed += body_length
            return True
        if status is not None:
            self.logger.warning("push of %s to %s:%d/%s answered %d", file_path,
                                node.replication_ip, node.replication_port, node.device, status)
        self.stats.push_failures += 1
        return False

    def _put(self, node: Node, path: str, headers: dict[str, str], device: str,
             file_path: str, body_length: int) -> int | None:
        """Stream a .data's body to the peer as a PUT; the status, or None for no answer."""
        try:
            fd = self.io.run(device, os.open, file_path, os.O_RDONLY)
        except FileNotFoundError:
            return 409           # superseded meanwhile (see push)
        connection = green_http.HTTPConnection(node.replication_ip, node.replication_port,
                                               timeout=self.settings.node_timeout_s)
        try:
            with eventlet.Timeout(self.settings.conn_timeout_s,
                                  http_client.HttpTimeout("connect timed out")):
                connection.connect()
            # Every later send and read is bounded by the socket's timeout: a stalled peer
            # ends the push after node_timeout of silence, however large the object.
            if connection.sock is not None:
                connection.sock.settimeout(self.settings.node_timeout_s)
            connection.putrequest("PUT", quote(path), skip_accept_encoding=True)
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.putheader("Content-Length", str(body_length))
            connection.endheaders()
            offset = 0
            while offset < body_length:
                length = min(self.settings.disk_chunk_bytes, body_length - offset)
                chunk = self.io.run(device, os.pread, fd, length, offset)
                if len(chunk) != length:
                    raise CorruptFile(f"short read of {file_path} at {offset}")
                connection.send(chunk)
                offset += length
            response = connection.getresponse()
            response.read()
            return response.status
        except (OSError, green_http.HTTPException, http_client.HttpError, CorruptFile) as err:
            self.logger.warning("PUT %s to %s:%d: %s", path, node.replication_ip,
                                node.replication_port, err)
            return None
        finally:
            connection.close()
            with contextlib.suppress(OSError):
                os.close(fd)

    def _reclaim_before(self) -> Timestamp:
        return Timestamp(max(0.0, time.time() - self.settings.reclaim_age_s))


def iter_passes(replicator: ObjectReplicator, interval_s: float) -> Iterator[PassStats]:
    """Passes forever, one starting every `interval_s` (or right after a longer one)."""
    while True:
        began = time.monotonic()
        yield replicator.run_once()
        eventlet.sleep(max(0.0, interval_s - (time.monotonic() - began)))


def run_daemon(conf: Config, logger: logging.Logger, once: bool = False) -> int:
    """Replicate every `interval` seconds (or once); returns the process exit status."""
    settings = ReplicatorSettings.from_config(conf)
    replicator = ObjectReplicator(settings, logger)
    if once:
        replicator.run_once()
        return 0
    for _ in iter_passes(replicator, settings.interval_s):
        pass
    return 0
