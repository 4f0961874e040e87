"""Where a name lives: the one path-hash and partition function, and the cluster's hash secrets.

A partition is the top `part_power` bits of md5(prefix + "/account/container/object" + suffix).
Every component (proxy, storage nodes, replicators, tools) must call these functions rather than
hashing on its own, or names would land in different partitions on different hosts.
"""

from __future__ import annotations

import configparser
import dataclasses
import hashlib

from ring.errors import RingError

HASH_SECTION = "ringstack-hash"


@dataclasses.dataclass(frozen=True)
class HashSecrets:
    """The cluster-wide salts of the path hash. Changing either moves every object."""

    prefix: bytes = b""
    suffix: bytes = b""


def load_hash_secrets(conf_path: str) -> HashSecrets:
    """Read `[ringstack-hash] path_prefix / path_suffix` from a config file.

    At least one must be set: an unsalted hash lets a client aim names at one partition.
    """
    parser = configparser.ConfigParser(interpolation=None)
    if not parser.read(conf_path):
        raise RingError(f"cannot read hash secrets: no such config file {conf_path}")
    if not parser.has_section(HASH_SECTION):
        raise RingError(f"{conf_path} has no [{HASH_SECTION}] section")
    prefix = parser.get(HASH_SECTION, "path_prefix", fallback="")
    suffix = parser.get(HASH_SECTION, "path_suffix", fallback="")
    if not prefix and not suffix:
        raise RingError(f"{conf_path}: set path_prefix or path_suffix in [{HASH_SECTION}]")
    return HashSecrets(prefix.encode(), suffix.encode())


def _text(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def hash_path(account: str | bytes, container: str | bytes | None = None,
              obj: str | bytes | None = None, secrets: HashSecrets = HashSecrets()) -> bytes:
    """The md5 digest that places `/account[/container[/object]]` in the ring."""
    if obj is not None and container is None:
        raise ValueError("an object name needs a container name")
    parts = [_text(account)]
    if container is not None:
        parts.append(_text(container))
        if obj is not None:
            parts.append(_text(obj))
    return hashlib.md5(secrets.prefix + b"/" + b"/".join(parts) + secrets.suffix,
                       usedforsecurity=False).digest()


def partition_of(digest: bytes, part_power: int) -> int:
    """The partition of a path digest: its top `part_power` bits."""
    return int.from_bytes(digest[:4], "big") >> (32 - part_power)
