"""The one lookup-timing loop, shared by both sides of bench/ring_bench.py.

ringstack's Ring and Swift's Ring are timed by exactly the same code (so the comparison is
fair), each in its own process and Python environment; this module uses only the standard
library so Swift's venv can import it too.
"""

from __future__ import annotations

import os
import time
import zlib
from array import array
from typing import Any

LOOKUP_NAMES = 1 << 16
CHECKSUM_NAMES = 4096


def time_lookups(ring: Any, ring_path: str, load_s: float, seconds: float) -> dict[str, Any]:
    """get_nodes('a', 'c', name) calls per second over varying names, for `seconds`; with a
    checksum of the partitions of the first names so both rings can be compared."""
    names = [f"o{i}" for i in range(LOOKUP_NAMES)]
    mask = LOOKUP_NAMES - 1
    get_nodes = ring.get_nodes
    calls, batch = 0, 4096
    started = time.perf_counter()
    while True:
        for i in range(calls, calls + batch):
            get_nodes("a", "c", names[i & mask])
        calls += batch
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            break
    parts = array("I", (ring.get_part("a", "c", names[i]) for i in range(CHECKSUM_NAMES)))
    return {"load_s": load_s, "ring_bytes": os.path.getsize(ring_path), "calls": calls,
            "seconds": elapsed, "lookups_per_s": calls / elapsed,
            "replicas_per_lookup": len(get_nodes("a", "c", "o0")[1]),
            "part_checksum": zlib.crc32(parts.tobytes())}
