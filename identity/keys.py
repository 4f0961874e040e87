"""A Fernet key repository on disk, laid out and rotated as Keystone's `fernet_rotate` does.

The directory holds files named by integers, each one urlsafe-base64 Fernet key:
- `0` is the staged key: not yet used to encrypt, but already accepted, so that every
  server sharing the repository knows it before any of them starts encrypting with it;
- the highest number is the primary key, the one that encrypts;
- the others are secondary keys, kept only to decrypt tokens issued before a rotation.

Rotation promotes the staged key to primary (a new highest number), stages a new `0`, and
drops the oldest secondary keys beyond `max_active_keys` (tokens they made stop validating).
Files are written to a temp name, fsynced and renamed, with 0600 permissions; the repository
is re-read when its directory changes, so a rotation by the CLI reaches a running server.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from cryptography.fernet import Fernet, MultiFernet

STAGED_KEY_INDEX = 0
DEFAULT_MAX_ACTIVE_KEYS = 3     # staged + primary + one secondary, as Keystone's default
LOCK_NAME = ".lock"


class KeyRepositoryError(RuntimeError):
    """The key repository is missing, unreadable or holds a bad key."""


class KeyRepository:
    """Fernet keys in `directory`; `fernet()` gives the MultiFernet that uses them."""

    def __init__(self, directory: str):
        self.directory = directory
        self._seen: tuple[float, tuple[str, ...]] | None = None
        self._fernet: MultiFernet | None = None

    # -- reading -------------------------------------------------------------------------

    def indexes(self) -> list[int]:
        """Key indexes present, lowest first."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(int(name) for name in names if name.isdigit())

    def _read(self, index: int) -> bytes:
        with open(os.path.join(self.directory, str(index)), "rb") as handle:
            key = handle.read().strip()
        try:
            Fernet(key)
        except ValueError:
            raise KeyRepositoryError(f"{self.directory}/{index}: not a Fernet key") from None
        return key

    def keys(self) -> list[bytes]:
        """Primary first, then secondaries newest first, then the staged key."""
        indexes = self.indexes()
        if len(indexes) < 2 or indexes[0] != STAGED_KEY_INDEX:
            raise KeyRepositoryError(f"{self.directory}: no Fernet keys (run "
                                     "`ringstack-identity fernet-setup`)")
        ordered = sorted(indexes[1:], reverse=True) + [STAGED_KEY_INDEX]
        return [self._read(index) for index in ordered]

    def fernet(self) -> MultiFernet:
        """The MultiFernet over the current keys, re-read when the directory changed."""
        try:
            stamp = (os.stat(self.directory).st_mtime, tuple(os.listdir(self.directory)))
        except FileNotFoundError:
            raise KeyRepositoryError(f"{self.directory}: no key repository") from None
        if self._fernet is None or stamp != self._seen:
            self._fernet = MultiFernet([Fernet(key) for key in self.keys()])
            self._seen = stamp
        return self._fernet

    # -- writing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(self.directory, LOCK_NAME), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, index: int, key: bytes) -> None:
        path = os.path.join(self.directory, str(index))
        tmp = f"{path}.tmp"
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            os.write(fd, key + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def setup(self) -> bool:
        """Create the staged and a primary key if there are none; True if it created them.
        Safe to run from several processes at once (a file lock serializes them)."""
        with self._locked():
            if self.indexes():
                return False
            self._write(STAGED_KEY_INDEX, Fernet.generate_key())
            self._rotate_locked(DEFAULT_MAX_ACTIVE_KEYS)
            return True

    def rotate(self, max_active_keys: int = DEFAULT_MAX_ACTIVE_KEYS) -> list[int]:
        """Promote the staged key, stage a new one, drop the oldest beyond the limit.
        Returns the indexes left."""
        if max_active_keys < 2:
            raise ValueError("max_active_keys must be at least 2 (staged and primary)")
        with self._locked():
            if STAGED_KEY_INDEX not in self.indexes():
                raise KeyRepositoryError(f"{self.directory}: no staged key to promote")
            self._rotate_locked(max_active_keys)
            return self.indexes()

    def _rotate_locked(self, max_active_keys: int) -> None:
        indexes = self.indexes()
        new_primary = max(indexes) + 1
        staged = os.path.join(self.directory, str(STAGED_KEY_INDEX))
        os.replace(staged, os.path.join(self.directory, str(new_primary)))
        self._write(STAGED_KEY_INDEX, Fernet.generate_key())
        secondaries = [index for index in self.indexes() if index != STAGED_KEY_INDEX]
        excess = len(secondaries) + 1 - max_active_keys
        for index in sorted(secondaries)[:max(0, excess)]:
            os.unlink(os.path.join(self.directory, str(index)))
        self._sync_directory()
