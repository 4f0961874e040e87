"""Telling account servers about a container: at once, coalesced, or later from a pending.

`AccountReporter` sends a container's put/delete timestamps, object count and bytes used
(Swift's account update, PUT `/<dev>/<part>/<account>/<container>` with X-Put-Timestamp,
X-Delete-Timestamp, X-Object-Count, X-Bytes-Used, X-Backend-Storage-Policy-Index):
- at once after a container PUT or DELETE, to the `X-Account-Host/Device/Partition` the proxy
  names (`account_targets` parses them; Swift's behaviour, including 404 when every account
  server answers 404);
- after object rows change, coalesced: a container is reported at most once every
  `account_update_interval` seconds, to the account ring's nodes (Swift leaves this to its
  container-updater; reporting here keeps account stats fresh without a sweep).
A report that an account server does not accept is saved as an async pending
(`storage_node.async_pending`) before the request is answered, for the updater to replay.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import eventlet

from common.timestamp import Timestamp
from ring.errors import RingError
from ring.ring import Ring
from storage_node import async_pending
from storage_node.async_pending import PendingUpdate, Target
from storage_node.container_db import ContainerInfo
from storage_node.db_server import HttpError
from storage_node.http_client import split_host
from storage_node.updater import is_success, send_update

if TYPE_CHECKING:
    # Only a type: the container server creates its reporter, never the other way round.
    from storage_node.container_server import ContainerServer

ACCOUNT_REPORT_CONCURRENCY = 8    # containers reported at once by one coalesced flush


def account_targets(headers: Mapping[str, str]) -> list[Target]:
    """The account servers a container PUT/DELETE names (X-Account-Host/Device/Partition).

    Hosts and devices must pair up (Swift answers 400 otherwise: a proxy bug); without
    X-Account-Partition there is nothing to update.
    """
    hosts = [h.strip() for h in headers.get("X-Account-Host", "").split(",")]
    device_names = [d.strip() for d in headers.get("X-Account-Device", "").split(",")]
    partition = headers.get("X-Account-Partition", "").strip()
    if len(hosts) != len(device_names):
        raise HttpError(400, "X-Account-Host and X-Account-Device do not pair up")
    if not partition:
        return []
    if not partition.isascii() or not partition.isdigit():
        raise HttpError(400, "Invalid X-Account-Partition header")
    targets = []
    for host, device in zip(hosts, device_names, strict=True):
        if not host and not device:
            continue
        try:
            ip, port = split_host(host)
        except ValueError:
            raise HttpError(400, f"Invalid X-Account-Host header: {host!r}") from None
        targets.append(Target(ip, port, device, int(partition)))
    return targets


class AccountReporter:
    """Tells account servers a container's put/delete timestamps and counts.

    `send` reports now (container PUT/DELETE); `changed` marks a container whose rows changed
    and reports it within `interval_s`, coalescing every change in between, to the nodes of
    the account ring. Targets that do not accept become one async pending, written durably
    before `send` returns; the updater replays it, and the account server keeps the newest
    report (X-Timestamp), so a late replay does no harm.
    """

    def __init__(self, server: ContainerServer, interval_s: float, conn_timeout_s: float,
                 node_timeout_s: float, ring_path: str):
        self.server = server
        self.interval_s = interval_s
        self.conn_timeout_s = conn_timeout_s
        self.node_timeout_s = node_timeout_s
        self.ring_path = ring_path
        self._ring: Ring | None = None
        self._dirty: dict[tuple[str, str, str, str], None] = {}
        self._flush_scheduled = False

    @property
    def logger(self) -> logging.Logger:
        return self.server.logger

    def send(self, device: str, partition: str, account: str, container: str,
             info: ContainerInfo, targets: list[Target], trans_id: str = "-") -> list[int | None]:
        """Report `info` to `targets` in parallel; their statuses (None: no answer)."""
        if not targets:
            return []
        report_time = Timestamp.now()
        headers = {"X-Put-Timestamp": info.put_timestamp,
                   "X-Delete-Timestamp": info.delete_timestamp,
                   "X-Object-Count": str(info.object_count),
                   "X-Bytes-Used": str(info.bytes_used),
                   "X-Backend-Storage-Policy-Index": str(info.storage_policy_index),
                   # When these numbers were read: the account keeps the newest report.
                   "X-Timestamp": report_time.internal,
                   "X-Trans-Id": trans_id,
                   "User-Agent": f"container-server {os.getpid()}"}
        update = PendingUpdate("PUT", f"/{account}/{container}", headers, targets)
        pile = eventlet.GreenPile(len(targets))
        for target in targets:
            pile.spawn(send_update, update, target, conn_timeout_s=self.conn_timeout_s,
                       node_timeout_s=self.node_timeout_s, logger=self.logger)
        statuses: list[int | None] = list(pile)
        # A 404 means the account is gone or not there yet: retrying cannot help (Swift does
        # not retry it either). Anything else that is not 2xx is retried from a pending.
        failed = [target for target, status in zip(targets, statuses, strict=True)
                  if not is_success(status) and status != 404]
        device_path = os.path.join(self.server.devices, device)
        if failed:
            self.logger.info("saving async pending account update /%s/%s for %d target(s)",
                             account, container, len(failed))
            self.server.run_db(device, async_pending.save, device_path,
                               self.server.name_hash(account, container),
                               report_time.internal,
                               PendingUpdate("PUT", update.path, headers, failed))
        if 404 not in statuses:
            # Every target has it or will get it from the pending: nothing left to report.
            self.server.run_db(device, self._mark_reported, device_path, partition, account,
                               container, info)
        return statuses

    def _mark_reported(self, device_path: str, partition: str, account: str, container: str,
                       info: ContainerInfo) -> None:
        with self.server.broker(device_path, partition, account, container) as broker:
            broker.reported(info)

    # -- coalesced reports after row changes ---------------------------------------------------

    def changed(self, device: str, partition: str, account: str, container: str) -> None:
        if self.interval_s <= 0:
            return
        self._dirty[(device, partition, account, container)] = None
        if not self._flush_scheduled:
            self._flush_scheduled = True
            eventlet.spawn_after(self.interval_s, self.flush)

    def account_ring(self) -> Ring | None:
        """The account ring, loaded on first use (None while there is no ring file)."""
        if self._ring is None:
            if not os.path.exists(self.ring_path):
                return None
            try:
                self._ring = Ring(self.ring_path, self.server.cluster.secrets)
            except RingError as err:
                self.logger.error("cannot load %s: %s", self.ring_path, err)
                return None
        return self._ring

    def flush(self) -> None:
        """Report every container marked since the last flush (in parallel, bounded)."""
        self._flush_scheduled = False
        dirty, self._dirty = list(self._dirty), {}
        ring = self.account_ring()
        if ring is None:
            self.logger.debug("no account ring at %s: %d container report(s) left to the "
                              "next container PUT/DELETE", self.ring_path, len(dirty))
            return
        pool = eventlet.GreenPool(ACCOUNT_REPORT_CONCURRENCY)
        for key in dirty:
            pool.spawn_n(self._report, ring, *key)
        pool.waitall()

    def _report(self, ring: Ring, device: str, partition: str, account: str,
                container: str) -> None:
        try:
            device_path = self.server.check_device(device)
            info = self.server.run_db(device, self._read_info, device_path, partition, account,
                                      container)
            if info is None or not info.needs_report:
                return
            account_partition, nodes = ring.get_nodes(account)
            targets = [Target(node.ip, node.port, node.device, account_partition)
                       for node in nodes]
            self.send(device, partition, account, container, info, targets)
        except Exception:
            self.logger.exception("account report for /%s/%s failed", account, container)

    def _read_info(self, device_path: str, partition: str, account: str,
                   container: str) -> ContainerInfo | None:
        with self.server.broker(device_path, partition, account, container) as broker:
            return broker.get_info() if broker.exists() else None


