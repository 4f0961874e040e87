"""The consistent-hash ring: the bottom of the ringstack stack.

Servers use `Ring` (load, reload, lookups) and `hash_path` / `load_hash_secrets`; operators'
tools use `RingBuilder` with `load_builder` / `save_builder`. The builder side (numpy planning,
scipy max-flow) is imported only when one of its names is first used, so servers stay light.
Nothing here imports any other ringstack package.
"""

from importlib import import_module
from typing import Any

from ring.device import Device
from ring.errors import RingBuilderError, RingError, RingFileError, RingValidationError
from ring.hashing import HashSecrets, hash_path, load_hash_secrets, partition_of
from ring.ring import Node, Ring
from ring.ring_data import RingData

_BUILDER_NAMES = {
    "RebalanceResult": "ring.builder", "RingBuilder": "ring.builder",
    "load_builder": "ring.builder_file", "save_builder": "ring.builder_file",
}

__all__ = [
    "Device", "HashSecrets", "Node", "RebalanceResult", "Ring", "RingBuilder",
    "RingBuilderError", "RingData", "RingError", "RingFileError", "RingValidationError",
    "hash_path", "load_builder", "load_hash_secrets", "partition_of", "save_builder",
]


def __getattr__(name: str) -> Any:
    if name in _BUILDER_NAMES:
        return getattr(import_module(_BUILDER_NAMES[name]), name)
    raise AttributeError(f"module 'ring' has no attribute {name!r}")
