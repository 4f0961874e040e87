"""Expiring objects (X-Delete-At): the queue the object servers fill and the daemon that
empties it.

The queue (Swift's layout): the hidden account `.expiring_objects` holds one container per
`expiring_objects_container_divisor` seconds (named by the proxy's `expirer_container`: the
delete-at time rounded down, minus a 0-99 shard from the object's path hash), and in it one
row per object to expire, named `<delete_at, 10 digits>-<account>/<container>/<object>`.

- Filling it: the proxy names the queue container and its replicas in X-Delete-At-Container,
  -Partition, -Host and -Device on a PUT or POST carrying X-Delete-At; the object server
  calls `queue_delete_at`, which PUTs the row to those container servers (as a container
  update: X-Size 0, text/plain, the empty MD5) and saves an async pending for any that do
  not accept. The container server creates the queue container (a '.' account) and reports
  it to the account servers, which is how the expirer finds it.
- Emptying it: `run_daemon` (section `[object-expirer]`) lists the queue account's
  containers and, for every container whose time has come, its rows, straight from the
  account and container servers (the rings say where; every primary is asked and the answers
  merged, so one replica that missed rows hides nothing). For each row that is due it sends
  DELETE with `X-If-Delete-At: <delete_at>` and `X-Timestamp: <delete_at>` to every primary
  of the object (with the container update headers, so the listing drops the object too).
  The object server deletes only if the object still expires at that time (412 otherwise;
  409 when a newer object is there). The row is removed from the queue once a quorum of
  primaries answered 2xx or 409, or, for rows older than `reclaim_age`, once every primary
  answered 2xx/404/409/412 (as Swift: a 404 or 412 may come from a replica that is behind,
  so young rows are retried). Past containers left empty are deleted.
Bounds: `tasks_per_second` (rate of object deletes), `concurrency` (deletes in flight),
`processes`/`process` (split the rows between several expirer processes by a hash).

Stats go to the recon cache (`object.recon`): `object_expiration_pass` (seconds),
`expired_last_pass`, and `expirer_stats` with the counts of the last pass.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import eventlet
import webob

from common.config import Config, ConfigError, is_true
from common.timestamp import Timestamp
from ring.device import format_address
from ring.hashing import HashSecrets, hash_path
from ring.ring import Node, Ring
from storage_node import async_pending, direct_client, recon
from storage_node.async_pending import PendingUpdate, Target
from storage_node.auditor import RateLimiter
from storage_node.cluster_config import DEFAULT_SWIFT_DIR, ClusterConfig
from storage_node.diskfile import EMPTY_ETAG
from storage_node.http_client import split_host
from storage_node.updater import send_to_targets

if TYPE_CHECKING:
    from storage_node.object_requests import ObjectTarget
    from storage_node.object_server import ObjectServer

SECTION = "object-expirer"
DEFAULT_QUEUE_ACCOUNT = ".expiring_objects"
QUEUE_CONTENT_TYPE = "text/plain"


# ---- queue rows (pure) --------------------------------------------------------------------------

def queue_entry_name(delete_at: int, account: str, container: str, obj: str) -> str:
    """`<delete_at, 10 digits>-<account>/<container>/<object>` (Swift's row name)."""
    return f"{int(delete_at):010d}-{account}/{container}/{obj}"


@dataclasses.dataclass(frozen=True)
class ExpiryTask:
    """One queue row: which object expires when, and where the row lives."""

    queue_container: str
    entry: str
    delete_at: int
    account: str
    container: str
    obj: str


def parse_queue_entry(queue_container: str, entry: str) -> ExpiryTask | None:
    """The task a row names; None for a malformed row (logged and removed by the daemon)."""
    delete_at_text, dash, path = entry.partition("-")
    if not dash or not delete_at_text.isdigit():
        return None
    parts = path.split("/", 2)
    if len(parts) != 3 or not all(parts):
        return None
    return ExpiryTask(queue_container, entry, int(delete_at_text), *parts)


# ---- filling the queue (called by the object server) -----------------------------------

def queue_targets(headers: Mapping[str, str]) -> list[Target]:
    """The queue container replicas the proxy named (X-Delete-At-Host/Device/Partition)."""
    hosts = [h.strip() for h in headers.get("X-Delete-At-Host", "").split(",") if h.strip()]
    devices = [d.strip() for d in headers.get("X-Delete-At-Device", "").split(",")
               if d.strip()]
    partition = headers.get("X-Delete-At-Partition", "").strip()
    if not hosts or not partition.isdigit() or len(hosts) != len(devices):
        return []
    targets = []
    for host, device in zip(hosts, devices, strict=True):
        try:
            ip, port = split_host(host)
        except ValueError:
            continue
        targets.append(Target(ip, port, device, int(partition)))
    return targets


def queue_delete_at(server: ObjectServer, request: webob.Request, target: ObjectTarget,
                    device_path: str, delete_at: int, timestamp: Timestamp,
                    queue_account: str = DEFAULT_QUEUE_ACCOUNT) -> None:
    """Add the object's row to the expirer queue (object server PUT/POST with X-Delete-At).

    Sent like a container update: in parallel, waited for at most the server's
    `container_update_timeout`, and saved as an async pending for every replica that did
    not accept, before the object server answers. Replication PUTs queue nothing (the
    original write did).
    """
    headers = request.headers
    if is_true(headers.get("X-Backend-Replication")):
        return
    queue_container = headers.get("X-Delete-At-Container", "").strip()
    targets = queue_targets(headers)
    if not queue_container or not targets:
        return        # another object server of this write was given the queue update
    entry = queue_entry_name(delete_at, target.account, target.container, target.obj)
    update = PendingUpdate("PUT", f"/{queue_account}/{queue_container}/{entry}", {
        "X-Timestamp": timestamp.internal, "X-Size": "0",
        "X-Content-Type": QUEUE_CONTENT_TYPE, "X-Etag": EMPTY_ETAG,
        "X-Backend-Storage-Policy-Index": "0",
        "X-Trans-Id": headers.get("X-Trans-Id", "-"),
        "User-Agent": f"object-server {os.getpid()}"}, targets)
    failed = send_to_targets(update, wait_s=server.container_update_timeout_s,
                             conn_timeout_s=server.conn_timeout_s,
                             node_timeout_s=server.node_timeout_s, logger=server.logger)
    if failed:
        # Named by the queue row's own hash, so it never replaces the object's own
        # container update pending (same timestamp, different name).
        name_hash = hash_path(queue_account, queue_container, entry,
                              server.cluster.secrets).hex()
        server.io.run(target.device, async_pending.save, device_path, name_hash,
                      timestamp.internal,
                      PendingUpdate("PUT", update.path, update.headers, failed))


# ---- the daemon ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ExpirerSettings:
    swift_dir: str = DEFAULT_SWIFT_DIR
    interval_s: float = 300.0
    queue_account: str = DEFAULT_QUEUE_ACCOUNT
    concurrency: int = 8
    tasks_per_second: float = 50.0
    processes: int = 0
    process: int = 0
    reclaim_age_s: float = 7 * 24 * 3600.0
    conn_timeout_s: float = 0.5
    node_timeout_s: float = 10.0
    recon_cache_path: str = "/srv/recon"

    @classmethod
    def from_config(cls, conf: Config) -> ExpirerSettings:
        processes = conf.get_int("processes", cls.processes, minimum=0)
        process = conf.get_int("process", cls.process, minimum=0)
        if processes and process >= processes:
            raise ConfigError(f"{conf.source} [{conf.section}] process must be < processes")
        return cls(
            swift_dir=conf.get_str("swift_dir", cls.swift_dir),
            interval_s=conf.get_float("interval", cls.interval_s, minimum=0.0),
            queue_account="." + conf.get_str("expiring_objects_account_name",
                                             "expiring_objects"),
            concurrency=conf.get_int("concurrency", cls.concurrency, minimum=1),
            tasks_per_second=conf.get_float("tasks_per_second", cls.tasks_per_second,
                                            minimum=0.0),
            processes=processes, process=process,
            reclaim_age_s=conf.get_float("reclaim_age", cls.reclaim_age_s, minimum=0.0),
            conn_timeout_s=conf.get_float("conn_timeout", cls.conn_timeout_s, minimum=0.01),
            node_timeout_s=conf.get_float("node_timeout", cls.node_timeout_s, minimum=0.01),
            recon_cache_path=recon.recon_cache_path(conf))


@dataclasses.dataclass
class ExpirerStats:
    containers: int = 0            # queue containers looked at
    tasks: int = 0                 # due rows found (for this process)
    expired: int = 0               # objects deleted (a quorum said so) and rows removed
    stale: int = 0                 # rows removed without a delete (old 404/412, malformed)
    retried: int = 0               # rows kept for the next pass
    containers_deleted: int = 0
    errors: int = 0


class ObjectExpirer:
    """One pass over the queue; backend requests only (no proxy needed)."""

    def __init__(self, settings: ExpirerSettings, logger: logging.Logger,
                 cluster: ClusterConfig | None = None):
        self.settings = settings
        self.logger = logger
        self.cluster = cluster or ClusterConfig.load(settings.swift_dir)
        self.secrets: HashSecrets = self.cluster.secrets
        self.account_ring = Ring(os.path.join(settings.swift_dir, "account.ring"),
                                 self.secrets)
        self.container_ring = Ring(os.path.join(settings.swift_dir, "container.ring"),
                                   self.secrets)
        self._object_rings: dict[int, Ring] = {}
        self._rate = RateLimiter(settings.tasks_per_second, sleep=eventlet.sleep)
        self._policy_cache: dict[tuple[str, str], int] = {}

    def object_ring(self, policy_index: int) -> Ring:
        ring = self._object_rings.get(policy_index)
        if ring is None:
            name = "object.ring" if policy_index == 0 else f"object-{policy_index}.ring"
            ring = Ring(os.path.join(self.settings.swift_dir, name), self.secrets)
            self._object_rings[policy_index] = ring
        return ring

    # -- backend requests ------------------------------------------------------------------------

    def _timeouts(self) -> dict[str, Any]:
        return {"conn_timeout_s": self.settings.conn_timeout_s,
                "node_timeout_s": self.settings.node_timeout_s, "logger": self.logger}

    def _status(self, node: Node, partition: int, method: str, path: str,
                headers: dict[str, str]) -> int | None:
        return direct_client.status_of(direct_client.node_request(
            node, partition, method, path, headers=headers, **self._timeouts()))

    def queue_containers(self) -> list[str] | None:
        account = self.settings.queue_account
        partition, nodes = self.account_ring.get_nodes(account)
        return direct_client.merged_listing(nodes, partition, f"/{account}", **self._timeouts())

    def queue_entries(self, queue_container: str) -> list[str] | None:
        account = self.settings.queue_account
        partition, nodes = self.container_ring.get_nodes(account, queue_container)
        return direct_client.merged_listing(nodes, partition, f"/{account}/{queue_container}",
                                            **self._timeouts())

    def container_policy(self, account: str, container: str) -> int:
        """The target container's storage policy (HEAD its servers; 0 when none can say)."""
        key = (account, container)
        if key in self._policy_cache:
            return self._policy_cache[key]
        partition, nodes = self.container_ring.get_nodes(account, container)
        policy_index = 0
        for node in nodes:
            result = direct_client.node_request(node, partition, "HEAD",
                                                f"/{account}/{container}", **self._timeouts())
            text = result.headers.get("x-backend-storage-policy-index", "") if result else ""
            if result is not None and text.isdigit() and result.status in (200, 204, 404):
                policy_index = int(text)
                if 200 <= result.status < 300:
                    break
        self._policy_cache[key] = policy_index
        return policy_index

    # -- one task ------------------------------------------------------------------------------

    def is_mine(self, task: ExpiryTask) -> bool:
        if self.settings.processes <= 1:
            return True
        digest = hashlib.md5(f"{task.queue_container}/{task.entry}".encode(),
                             usedforsecurity=False).digest()
        return int.from_bytes(digest[:8], "big") % self.settings.processes == \
            self.settings.process

    def delete_object(self, task: ExpiryTask) -> list[int | None]:
        """DELETE with X-If-Delete-At on every primary; their statuses (None: no answer)."""
        policy_index = self.container_policy(task.account, task.container)
        ring = self.object_ring(policy_index)
        partition, nodes = ring.get_nodes(task.account, task.container, task.obj)
        container_partition, container_nodes = self.container_ring.get_nodes(task.account,
                                                                             task.container)
        timestamp = Timestamp(task.delete_at).internal
        pile = eventlet.GreenPile(max(1, len(nodes)))
        for index, node in enumerate(nodes):
            headers = {"X-Timestamp": timestamp, "X-If-Delete-At": str(task.delete_at),
                       "X-Backend-Storage-Policy-Index": str(policy_index),
                       "X-Backend-Clean-Expiring-Object-Queue": "no",
                       "User-Agent": f"object-expirer {os.getpid()}"}
            if container_nodes:
                # The proxy's pairing: object replica i updates container replica i.
                container_node = container_nodes[index % len(container_nodes)]
                headers.update({
                    "X-Container-Host": format_address(container_node.ip, container_node.port),
                    "X-Container-Device": container_node.device,
                    "X-Container-Partition": str(container_partition)})
            pile.spawn(self._status, node, partition, "DELETE",
                       f"/{task.account}/{task.container}/{task.obj}", headers)
        return list(pile)

    def task_outcome(self, task: ExpiryTask, statuses: list[int | None], now: float) -> str:
        """"expired" (a quorum deleted it or has newer data), "stale" (an old row nobody can
        act on) or "retry" (pure: the rule in the module docstring)."""
        quorum = len(statuses) // 2 + 1
        done = sum(1 for s in statuses if s is not None and (200 <= s < 300 or s == 409))
        if statuses and done >= quorum:
            return "expired"
        settled = statuses and all(s is not None and (200 <= s < 300 or s in (404, 409, 412))
                                   for s in statuses)
        if settled and task.delete_at < now - self.settings.reclaim_age_s:
            return "stale"
        return "retry"

    def pop_queue(self, queue_container: str, entry: str) -> bool:
        """Remove the row from every queue container replica; True if a quorum accepted."""
        account = self.settings.queue_account
        partition, nodes = self.container_ring.get_nodes(account, queue_container)
        headers = {"X-Timestamp": Timestamp.now().internal,
                   "X-Backend-Storage-Policy-Index": "0"}
        pile = eventlet.GreenPile(max(1, len(nodes)))
        for node in nodes:
            pile.spawn(self._status, node, partition, "DELETE",
                       f"/{account}/{queue_container}/{entry}", headers)
        accepted = sum(1 for s in pile if s is not None and 200 <= s < 300)
        return accepted >= len(nodes) // 2 + 1

    def process_task(self, task: ExpiryTask, stats: ExpirerStats) -> None:
        try:
            statuses = self.delete_object(task)
            outcome = self.task_outcome(task, statuses, time.time())
            if outcome == "retry":
                self.logger.info("expirer: %s/%s/%s not deleted yet (%s)", task.account,
                                 task.container, task.obj, statuses)
                stats.retried += 1
                return
            if not self.pop_queue(task.queue_container, task.entry):
                stats.errors += 1
                return
            if outcome == "expired":
                stats.expired += 1
            else:
                stats.stale += 1
        except Exception:
            self.logger.exception("expirer: task %s/%s failed", task.queue_container,
                                  task.entry)
            stats.errors += 1

    # -- a pass ----------------------------------------------------------------------------------

    def iter_due_tasks(self, queue_containers: list[str], now: float,
                       stats: ExpirerStats) -> Iterator[ExpiryTask]:
        for queue_container in queue_containers:
            entries = self.queue_entries(queue_container)
            if entries is None:
                stats.errors += 1
                continue
            stats.containers += 1
            for entry in entries:
                task = parse_queue_entry(queue_container, entry)
                if task is None:
                    self.logger.error("expirer: malformed queue row %s/%s removed",
                                      queue_container, entry)
                    if self.pop_queue(queue_container, entry):
                        stats.stale += 1
                    continue
                if task.delete_at > now:
                    break      # rows sort by their delete-at time: the rest is not due
                if self.is_mine(task):
                    yield task

    def delete_empty_container(self, queue_container: str) -> bool:
        """DELETE a past queue container (the servers refuse, 409, while rows remain)."""
        account = self.settings.queue_account
        partition, nodes = self.container_ring.get_nodes(account, queue_container)
        account_partition, account_nodes = self.account_ring.get_nodes(account)
        pile = eventlet.GreenPile(max(1, len(nodes)))
        timestamp = Timestamp.now().internal
        for index, node in enumerate(nodes):
            headers = {"X-Timestamp": timestamp}
            if account_nodes:
                account_node = account_nodes[index % len(account_nodes)]
                headers.update({
                    "X-Account-Host": format_address(account_node.ip, account_node.port),
                    "X-Account-Device": account_node.device,
                    "X-Account-Partition": str(account_partition)})
            pile.spawn(self._status, node, partition, "DELETE", f"/{account}/{queue_container}",
                       headers)
        return sum(1 for s in pile if s is not None and 200 <= s < 300) >= len(nodes) // 2 + 1

    def run_pass(self) -> ExpirerStats:
        began = time.time()
        stats = ExpirerStats()
        containers = self.queue_containers()
        if containers is None:
            self.logger.info("expirer: no queue account %s (nothing to expire)",
                             self.settings.queue_account)
            containers = []
        due = [c for c in containers if c.isdigit() and int(c) <= began]
        pool = eventlet.GreenPool(self.settings.concurrency)
        for task in self.iter_due_tasks(due, began, stats):
            stats.tasks += 1
            self._rate.wait()
            pool.spawn_n(self.process_task, task, stats)
        pool.waitall()
        if not self.settings.processes or self.settings.process == 0:
            for queue_container in due:
                entries = self.queue_entries(queue_container)
                if entries == [] and self.delete_empty_container(queue_container):
                    stats.containers_deleted += 1
        elapsed = time.time() - began
        self.logger.info("expirer pass: %d due, %d expired, %d stale, %d retried, %d errors, "
                         "%d containers deleted in %.1fs", stats.tasks, stats.expired,
                         stats.stale, stats.retried, stats.errors, stats.containers_deleted,
                         elapsed)
        recon.dump_recon_cache(self.settings.recon_cache_path, recon.OBJECT_RECON, {
            "object_expiration_pass": round(elapsed, 3),
            "expired_last_pass": stats.expired,
            "expirer_stats": {**dataclasses.asdict(stats), "last_pass": time.time()}},
            self.logger)
        return stats


def run_daemon(conf: Config, logger: logging.Logger, once: bool = False) -> int:
    """Expire due objects every `interval` seconds (or once); the process exit status."""
    settings = ExpirerSettings.from_config(conf)
    expirer = ObjectExpirer(settings, logger)
    while True:
        began = time.monotonic()
        expirer.run_pass()
        if once:
            return 0
        eventlet.sleep(max(0.0, settings.interval_s - (time.monotonic() - began)))
