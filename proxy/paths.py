"""Request paths: PEP 3333 strings, UTF-8 checks, and Swift's `split_path`. Pure functions.

WSGI hands the path over as latin-1 text standing for raw bytes; Swift names are UTF-8. Every
place in the proxy that needs a real name converts with `wsgi_to_str` once, here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

MAX_HEADER_NAME_SHOWN = 128


def wsgi_to_str(text: str) -> str:
    """A PEP 3333 environ string as the UTF-8 text it stands for (UnicodeDecodeError if not)."""
    return text.encode("latin-1").decode("utf-8")


def str_to_wsgi(text: str) -> str:
    return text.encode("utf-8").decode("latin-1")


def check_utf8(text: str) -> bool:
    """Swift's check_utf8: valid UTF-8 (as a WSGI string) with no NUL."""
    try:
        decoded = wsgi_to_str(text)
    except (UnicodeDecodeError, UnicodeEncodeError):
        return False
    return "\x00" not in decoded


def split_path(path: str, minsegs: int = 1, maxsegs: int | None = None,
               rest_with_last: bool = False) -> list[str | None]:
    """Swift's split_path: `/a/b/c` into segments, ValueError when the shape is wrong.

    With `rest_with_last`, the last segment takes the rest of the path, slashes included.
    """
    maxsegs = maxsegs or minsegs
    if minsegs > maxsegs:
        raise ValueError("minsegs > maxsegs")
    if rest_with_last:
        segs = path.split("/", maxsegs)
        minsegs += 1
        maxsegs += 1
        count = len(segs)
        if segs[0] or count < minsegs or count > maxsegs or "" in segs[1:minsegs]:
            raise ValueError(f"Invalid path: {path!r}")
    else:
        minsegs += 1
        maxsegs += 1
        segs = path.split("/", maxsegs)
        count = len(segs)
        if (segs[0] or count < minsegs or count > maxsegs + 1 or "" in segs[1:minsegs]
                or (count == maxsegs + 1 and segs[maxsegs])):
            raise ValueError(f"Invalid path: {path!r}")
    result: list[str | None] = list(segs[1:maxsegs])
    result.extend([None] * (maxsegs - 1 - len(result)))
    return result


@dataclasses.dataclass(frozen=True)
class SwiftPath:
    """`/version/account[/container[/object]]` as UTF-8 text; unset parts are None."""

    version: str
    account: str | None
    container: str | None
    obj: str | None

    @property
    def entity_path(self) -> str:
        """`/account[/container[/object]]`: what storage nodes are asked about."""
        parts: list[Any] = [self.account, self.container, self.obj]
        return "/" + "/".join(p for p in parts if p is not None)


def parse_swift_path(path_info: str) -> SwiftPath:
    """The Swift path of a WSGI PATH_INFO; ValueError if it is not one, UnicodeError if not
    UTF-8."""
    version, account, container, obj = split_path(wsgi_to_str(path_info), 1, 4, True)
    return SwiftPath(version or "", account, container, obj)
