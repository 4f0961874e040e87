"""Invalidation of cached account/container info across one proxy's worker processes.

Each worker caches account and container info for `recheck_*_existence` seconds (Swift keeps
it in memcache for 60 s). A write through one worker (container PUT/POST/DELETE, account
POST, ...) must not leave the other workers serving stale ACLs, quotas or existence for that
long, so the workers share one array of generation counters in anonymous shared memory,
mapped by the server process before it forks its workers: a write bumps the counter of its
key's slot, and a cached entry counts only while its slot still holds the generation read
before the lookup that filled it. Keys hash into a fixed number of slots, so an unrelated
write may cost an extra lookup, never a stale answer.

Increments are plain read-modify-write (no cross-process lock): two bumps racing may count as
one, which still changes the value. Proxies on other hosts are not reached: for them the TTL
bounds staleness, as it does with Swift's per-region memcache.
"""

from __future__ import annotations

import mmap
import struct
import zlib

SLOTS = 1 << 16
_COUNTER = struct.Struct("=Q")


class InfoGenerations:
    """Generation counters in memory shared by every process forked after it was made."""

    def __init__(self, slots: int = SLOTS):
        self._slots = slots
        self._memory = mmap.mmap(-1, slots * _COUNTER.size)    # MAP_SHARED, anonymous

    def _offset(self, key: str) -> int:
        return (zlib.crc32(key.encode("utf-8", "surrogateescape")) % self._slots) * \
            _COUNTER.size

    def current(self, key: str) -> int:
        return _COUNTER.unpack_from(self._memory, self._offset(key))[0]

    def bump(self, key: str) -> None:
        offset = self._offset(key)
        value = _COUNTER.unpack_from(self._memory, offset)[0]
        _COUNTER.pack_into(self._memory, offset, (value + 1) & 0xFFFFFFFFFFFFFFFF)


_shared: InfoGenerations | None = None


def shared_generations() -> InfoGenerations:
    """This process's counters: made once, before the fork when `prepare_workers` ran."""
    global _shared
    if _shared is None:
        _shared = InfoGenerations()
    return _shared
