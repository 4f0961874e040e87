"""The durable filesystem steps every storage write is built from.

An acknowledged write must survive a power cut: its file is fsync'ed, renamed into place, and
the directory holding the new name is fsync'ed too (a rename lives in the directory, not in
the file). Object files (`diskfile`), databases (`db`) and async pendings (`async_pending`)
all use these, so the discipline is written once:
- `fsync_dir(path)`: make a directory's entries (new names, renames, removals) durable;
- `makedirs_durable(path)`: `mkdir -p` whose every new directory is durable in its parent;
- `write_durably(path, data)`: replace a small file whole (temp file beside it, fsync,
  rename, fsync the directory); a crash leaves the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import tempfile


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def makedirs_durable(path: str) -> None:
    """mkdir -p, fsync'ing each new directory's parent so the new entries survive a crash."""
    missing = []
    current = path
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory)
        fsync_dir(os.path.dirname(directory))


def write_durably(path: str, data: bytes) -> None:
    """Put `data` at `path` atomically and durably. The temp file is `.tmp-*` in the same
    directory (readers that list the directory skip that prefix) and is removed on failure."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(directory)
