"""The /info registry: what this proxy advertises to clients about itself and its middlewares.

The proxy registers the `swift` section (version, constraints, policies); every middleware
registers its own section when it is built, e.g.
`register_swift_info("slo", max_manifest_segments=1000)`.
Sections named with `admin=True` are kept apart (Swift's admin info; not served here). The
registry is per process, like Swift's, and only ever grows or updates.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

_swift_info: dict[str, dict[str, Any]] = {}
_swift_admin_info: dict[str, dict[str, Any]] = {}
RESERVED_SECTION_NAMES = frozenset({"admin", "disallowed_sections"})


def register_swift_info(name: str = "swift", admin: bool = False, **kwargs: Any) -> None:
    """Add or update section `name` of /info with `kwargs` (JSON-serialisable values)."""
    if name in RESERVED_SECTION_NAMES:
        raise ValueError(f"{name!r} is a reserved /info section name")
    if "." in name:
        raise ValueError(f"/info section names cannot contain dots: {name!r}")
    registry = _swift_admin_info if admin else _swift_info
    registry.setdefault(name, {}).update(kwargs)


def get_swift_info(disallowed_sections: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """A copy of the public /info document without `disallowed_sections`.

    A disallowed entry may name a key inside a section with a dot: `swift.max_file_size`.
    """
    info = copy.deepcopy(_swift_info)
    for entry in disallowed_sections:
        section, _, key = entry.partition(".")
        if key:
            info.get(section, {}).pop(key, None)
        else:
            info.pop(section, None)
    return info


def unregister_swift_info(name: str) -> None:
    """Remove a section (tests, or a middleware switched off at reload)."""
    _swift_info.pop(name, None)
    _swift_admin_info.pop(name, None)
