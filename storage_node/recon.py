"""Recon: what a storage node's daemons report about themselves, and the HTTP endpoint for it.

Owns two things:

- The recon cache files (Swift's): one JSON object per kind in `recon_cache_path` (default
  `<devices>/../recon`): `object.recon` (object replicator, auditor, expirer), `container.recon`
  and `account.recon` (database replicators and auditors). Daemons merge their keys in with
  `dump_recon_cache`: the file is locked (several daemons share one file), read, updated
  (nested dicts merged; a value of None removes its key) and replaced atomically (temp file,
  fsync, rename), so a reader never sees half a file.
- `ReconEndpoint`, the `GET /recon/<metric>` handler the object server dispatches to (Swift
  runs it as middleware in the object server's pipeline). It answers from the cache files and
  from the node's devices: replication and auditor stats, async pendings, quarantined counts,
  disk usage, unmounted devices and the md5 of every ring file (so `ringstack-recon` can tell
  nodes running different rings apart). JSON bodies, 404 for an unknown metric.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from common.config import Config
from storage_node.devices import valid_device_name

OBJECT_RECON = "object.recon"
CONTAINER_RECON = "container.recon"
ACCOUNT_RECON = "account.recon"
RECON_FILES = {"object": OBJECT_RECON, "container": CONTAINER_RECON, "account": ACCOUNT_RECON}
# How long a daemon waits for another daemon's write of the same cache file.
LOCK_TIMEOUT_S = 5.0
QUARANTINE_DIR = "quarantined"
ASYNC_PENDING_DIR = "async_pending"
RING_SUFFIX = ".ring"
RING_READ_BYTES = 1 << 16


def recon_cache_path(conf: Config) -> str:
    """`recon_cache_path` from the config, else `<devices>/../recon` (beside, never inside,
    the devices directory: a directory there would be taken for a device)."""
    configured = conf.get_str("recon_cache_path")
    if configured:
        return configured
    devices = conf.get_str("devices", "/srv/node").rstrip("/") or "/"
    return os.path.join(os.path.dirname(devices), "recon")


# ---- the cache files ----------------------------------------------------------------------------

def load_recon_cache(path: str) -> dict[str, Any]:
    """The JSON object in `path`; {} when missing or unreadable (a reader must never fail)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def merge_recon(current: Mapping[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    """Nested dicts merge key by key; None removes a key; anything else replaces (pure)."""
    merged = dict(current)
    for key, value in updates.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_recon(merged[key], value)
        else:
            merged[key] = value
    return merged


@contextlib.contextmanager
def _locked(path: str, timeout_s: float):
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path}: lock held too long") from None
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)


def dump_recon_cache(cache_dir: str, filename: str, updates: Mapping[str, Any],
                     logger: logging.Logger | None = None) -> bool:
    """Merge `updates` into `<cache_dir>/<filename>` atomically; False (logged) on failure.

    Stats are advisory: a daemon must keep working when its recon file cannot be written.
    """
    path = os.path.join(cache_dir, filename)
    try:
        os.makedirs(cache_dir, exist_ok=True)
        with _locked(path, LOCK_TIMEOUT_S):
            merged = merge_recon(load_recon_cache(path), updates)
            fd, tmp_path = tempfile.mkstemp(dir=cache_dir, prefix=filename + ".",
                                            suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(merged, handle, sort_keys=True)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.rename(tmp_path, path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp_path)
                raise
        return True
    except (OSError, TimeoutError, TypeError, ValueError) as err:
        (logger or logging.getLogger("recon")).warning("cannot write recon cache %s: %s",
                                                       path, err)
        return False


# ---- what a node can say about its devices ---------------------------------------------

def list_devices(devices_root: str) -> list[str]:
    try:
        names = sorted(os.listdir(devices_root))
    except OSError:
        return []
    return [name for name in names if valid_device_name(name)
            and os.path.isdir(os.path.join(devices_root, name))]


def _count_entries(path: str) -> int:
    try:
        return len(os.listdir(path))
    except OSError:
        return 0


def async_pending_counts(devices_root: str) -> dict[str, int]:
    """Per device, how many async pending files wait for the updater."""
    counts = {}
    for device in list_devices(devices_root):
        root = os.path.join(devices_root, device, ASYNC_PENDING_DIR)
        total = 0
        try:
            suffixes = os.listdir(root)
        except OSError:
            suffixes = []
        for suffix in suffixes:
            total += _count_entries(os.path.join(root, suffix))
        counts[device] = total
    return counts


def quarantined_counts(devices_root: str) -> dict[str, dict[str, int]]:
    """Per device, quarantined items by kind: objects (all policies), containers, accounts,
    and each `objects-N` directory on its own."""
    result = {}
    for device in list_devices(devices_root):
        root = os.path.join(devices_root, device, QUARANTINE_DIR)
        counts = {"objects": 0, "containers": 0, "accounts": 0}
        try:
            kinds = sorted(os.listdir(root))
        except OSError:
            kinds = []
        for kind in kinds:
            number = _count_entries(os.path.join(root, kind))
            if kind == "objects" or kind.startswith("objects-"):
                counts["objects"] += number
                if kind != "objects":
                    counts[kind] = number
            elif kind in ("containers", "accounts"):
                counts[kind] = number
        result[device] = counts
    return result


def disk_usage(devices_root: str, mount_check: bool) -> list[dict[str, Any]]:
    """Swift's diskusage: per device, mounted or not, and its filesystem's size/used/avail."""
    usage = []
    for device in list_devices(devices_root):
        path = os.path.join(devices_root, device)
        mounted = os.path.ismount(path) or not mount_check
        entry: dict[str, Any] = {"device": device, "mounted": mounted}
        if mounted:
            try:
                stats = os.statvfs(path)
            except OSError as err:
                entry.update(mounted=False, error=str(err))
            else:
                size = stats.f_blocks * stats.f_frsize
                avail = stats.f_bavail * stats.f_frsize
                entry.update(size=size, avail=avail,
                             used=size - stats.f_bfree * stats.f_frsize)
        usage.append(entry)
    return usage


def file_md5(path: str) -> str | None:
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as handle:
            while chunk := handle.read(RING_READ_BYTES):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None


def ring_md5s(swift_dir: str) -> dict[str, str | None]:
    """{ring file name: md5 of its bytes} for every ring in swift_dir."""
    try:
        names = sorted(n for n in os.listdir(swift_dir) if n.endswith(RING_SUFFIX))
    except OSError:
        return {}
    return {name: file_md5(os.path.join(swift_dir, name)) for name in names}


# ---- the endpoint -------------------------------------------------------------------------------

class ReconEndpoint:
    """`GET /recon/<metric>[/<kind>]` as a WSGI app (see `metrics` for the list)."""

    def __init__(self, conf: Config):
        self.devices = conf.get_str("devices", "/srv/node")
        self.mount_check = conf.get_bool("mount_check", True)
        self.swift_dir = conf.get_str("swift_dir", "/etc/ringstack")
        self.cache_dir = recon_cache_path(conf)
        self.metrics: dict[str, Callable[[str | None], Any]] = {
            "replication": self._replication, "auditor": self._auditor,
            "expirer": self._expirer, "async": self._async, "quarantined": self._quarantined,
            "diskusage": self._diskusage, "unmounted": self._unmounted,
            "ringmd5": self._ringmd5, "time": lambda _kind: time.time(),
            "devices": lambda _kind: {"devices": self.devices,
                                      "names": list_devices(self.devices)},
        }

    @staticmethod
    def handles(path: str) -> bool:
        return path == "/recon" or path.startswith("/recon/")

    def _cache(self, kind: str) -> dict[str, Any]:
        return load_recon_cache(os.path.join(self.cache_dir, RECON_FILES[kind]))

    def _keys(self, kind: str, keys: Iterable[str]) -> dict[str, Any]:
        cache = self._cache(kind)
        return {key: cache.get(key) for key in keys}

    def _replication(self, kind: str | None) -> Any:
        kind = kind or "object"
        if kind == "object":
            return self._keys("object", ("replication_time", "replication_stats",
                                         "object_replication_time", "object_replication_last",
                                         "replication_last", "partitions_behind"))
        if kind in ("container", "account"):
            return self._keys(kind, ("replication_time", "replication_stats",
                                     "replication_last"))
        raise KeyError(kind)

    def _auditor(self, kind: str | None) -> Any:
        kind = kind or "object"
        if kind not in RECON_FILES:
            raise KeyError(kind)
        return self._keys(kind, (f"{kind}_auditor_stats",))

    def _expirer(self, kind: str | None) -> Any:
        if kind not in (None, "object"):
            raise KeyError(kind)
        return self._keys("object", ("object_expiration_pass", "expired_last_pass",
                                     "expirer_stats"))

    def _async(self, _kind: str | None) -> Any:
        per_device = async_pending_counts(self.devices)
        return {"async_pending": sum(per_device.values()), "devices": per_device}

    def _quarantined(self, _kind: str | None) -> Any:
        per_device = quarantined_counts(self.devices)
        totals: dict[str, int] = {}
        for counts in per_device.values():
            for kind, number in counts.items():
                totals[kind] = totals.get(kind, 0) + number
        return {**{"objects": 0, "containers": 0, "accounts": 0}, **totals,
                "devices": per_device}

    def _diskusage(self, _kind: str | None) -> Any:
        return disk_usage(self.devices, self.mount_check)

    def _unmounted(self, _kind: str | None) -> Any:
        return [{"device": entry["device"], "mounted": False}
                for entry in disk_usage(self.devices, self.mount_check) if not entry["mounted"]]

    def _ringmd5(self, _kind: str | None) -> Any:
        return ring_md5s(self.swift_dir)

    def answer(self, method: str, path: str) -> tuple[int, Any]:
        """(status, JSON-able body) for one request: the logic, without WSGI."""
        if method not in ("GET", "HEAD"):
            return 405, {"error": "recon answers GET only"}
        parts = [part for part in path.split("/") if part][1:]
        if not parts or len(parts) > 2:
            return 404, {"error": "unknown recon metric", "metrics": sorted(self.metrics)}
        metric = self.metrics.get(parts[0])
        if metric is None:
            return 404, {"error": f"unknown recon metric {parts[0]!r}",
                         "metrics": sorted(self.metrics)}
        try:
            return 200, metric(parts[1] if len(parts) == 2 else None)
        except KeyError:
            return 404, {"error": f"unknown kind for {parts[0]}"}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        status, body = self.answer(method, environ.get("PATH_INFO", ""))
        blob = json.dumps(body, sort_keys=True).encode("utf-8")
        reasons = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}
        start_response(f"{status} {reasons[status]}",
                       [("Content-Type", "application/json"),
                        ("Content-Length", str(len(blob)))])
        return [b"" if method == "HEAD" else blob]
