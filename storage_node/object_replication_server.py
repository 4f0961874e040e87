"""The object server's side of replication: the REPLICATE verb.

`REPLICATE /<device>/<partition>[/<suffix>-<suffix>...]` (policy from
`X-Backend-Storage-Policy-Index`, as on every object request) answers 200 with a msgpack
body::

    {"hashes": {suffix: md5 hex},                    the partition's suffix hashes
     "files":  {suffix: {hash: [current file names]}}}  for the listed suffixes only

Listed suffixes are rehashed before answering (Swift's semantics: the replicator asks again
for the suffixes that differ, so a stale cached hash cannot hide a difference), and their
hash directories' current files are listed: that listing is how the replicator learns which
object versions the peer lacks, so it sends only those. One verb, one body shape.

The data itself arrives as ordinary object requests (PUT with the exact X-Timestamp and
metadata, DELETE for a tombstone, POST for a .meta) marked `X-Backend-Replication: True`; the
object server orders them by timestamp like any other request and sends no container update
for them. A partition that does not exist answers empty hashes (nothing is created).

Hashing lists directories: it runs on the device's `DiskIOPool`, never on the hub.
"""

from __future__ import annotations

import logging
import os

import msgpack
import webob

from storage_node.devices import valid_device_name
from storage_node.diskfile import DiskFileManager, data_dir_name
from storage_node.object_responses import HttpError, Reply
from storage_node.suffix_hashes import Hashes, Listing, get_hashes, list_suffix, parse_suffixes

CONTENT_TYPE = "application/x-msgpack"


def encode_reply(hashes: Hashes, files: dict[str, Listing]) -> bytes:
    return msgpack.packb({"hashes": hashes, "files": files}, use_bin_type=True)


def decode_reply(body: bytes) -> tuple[Hashes, dict[str, Listing]]:
    """(hashes, files) of a REPLICATE answer; ValueError for anything else."""
    try:
        payload = msgpack.unpackb(body, raw=False)
    except (ValueError, msgpack.UnpackException) as err:
        raise ValueError(f"undecodable REPLICATE body: {err}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("hashes"), dict) \
            or not isinstance(payload.get("files", {}), dict):
        raise ValueError("REPLICATE body is not {hashes, files}")
    return payload["hashes"], payload.get("files", {})


class ReplicationHandler:
    """Answers REPLICATE for one object server (shares its DiskFileManager and pools)."""

    def __init__(self, manager: DiskFileManager, logger: logging.Logger | None = None):
        self.manager = manager
        self.logger = logger or logging.getLogger("object-server")

    def __call__(self, request: webob.Request, policy_index: int) -> Reply:
        device, partition, suffixes = self._split_path(request.environ.get("PATH_INFO", ""))
        device_path = self.manager.device_path(device)        # DeviceUnavailable -> 507
        partition_dir = os.path.join(device_path, data_dir_name(policy_index), partition)
        hashes, files = self.manager.io.run(device, self._hashes_and_files, partition_dir,
                                            suffixes)
        return Reply(200, {}, encode_reply(hashes, files), content_type=CONTENT_TYPE)

    def _hashes_and_files(self, partition_dir: str, suffixes: list[str]
                          ) -> tuple[Hashes, dict[str, Listing]]:
        reclaim_before = self.manager.reclaim_before()
        hashes = get_hashes(partition_dir, suffixes, reclaim_before)
        files = {suffix: list_suffix(partition_dir, suffix, reclaim_before)
                 for suffix in suffixes}
        return hashes, files

    @staticmethod
    def _split_path(path: str) -> tuple[str, str, list[str]]:
        segments = path.split("/")
        if len(segments) not in (3, 4) or segments[0] or not segments[1] or not segments[2]:
            raise HttpError(400, f"Invalid path: {path}")
        device, partition = segments[1], segments[2]
        if not valid_device_name(device):
            raise HttpError(400, f"Invalid device: {device}")
        if not partition.isdigit() or not partition.isascii():
            raise HttpError(400, f"Invalid partition: {partition}")
        try:
            suffixes = parse_suffixes(segments[3]) if len(segments) == 4 else []
        except ValueError as err:
            raise HttpError(400, str(err)) from None
        return device, str(int(partition)), suffixes
