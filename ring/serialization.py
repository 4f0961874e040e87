"""The envelope shared by builder and ring files: magic, checksum, msgpack body, atomic writes.

    file = magic (8 bytes) | sha256 of body (32 bytes) | body (msgpack map)

numpy arrays travel inside the body as {"dtype", "shape", "zlib"} maps; nothing is ever pickled.
A file whose magic, checksum or structure is wrong raises RingFileError with a readable reason.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zlib
from typing import Any

import msgpack
import numpy as np

from ring.errors import RingFileError

MAGIC_BYTES = 8
CHECKSUM_BYTES = 32
ALLOWED_DTYPES = frozenset({"<u1", "<u2", "<u4", "<i4", "<i8", "|u1"})


def pack_array(array: np.ndarray, level: int = 1) -> dict[str, Any]:
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return {"dtype": little.dtype.str, "shape": list(array.shape),
            "zlib": zlib.compress(np.ascontiguousarray(little).tobytes(), level)}


def unpack_array(packed: Any, what: str) -> np.ndarray:
    try:
        dtype, shape, data = packed["dtype"], tuple(packed["shape"]), packed["zlib"]
        if dtype not in ALLOWED_DTYPES:
            raise RingFileError(f"{what}: unsupported array type {dtype}")
        raw = zlib.decompress(data)
        array = np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape)
    except RingFileError:
        raise
    except (KeyError, TypeError, ValueError, zlib.error) as err:
        raise RingFileError(f"{what}: damaged array ({err})") from None
    return array.astype(array.dtype.newbyteorder("="))


def encode(magic: bytes, body: dict[str, Any]) -> bytes:
    assert len(magic) == MAGIC_BYTES
    payload = msgpack.packb(body, use_bin_type=True)
    return magic + hashlib.sha256(payload).digest() + payload


def decode(magic: bytes, blob: bytes, path: str) -> dict[str, Any]:
    if len(blob) < MAGIC_BYTES + CHECKSUM_BYTES:
        raise RingFileError(f"{path}: file is truncated ({len(blob)} bytes)")
    if blob[:MAGIC_BYTES] != magic:
        raise RingFileError(f"{path}: not a {magic[:-1].decode(errors='replace').strip()} file "
                            f"(bad magic {blob[:MAGIC_BYTES]!r})")
    checksum = blob[MAGIC_BYTES:MAGIC_BYTES + CHECKSUM_BYTES]
    payload = blob[MAGIC_BYTES + CHECKSUM_BYTES:]
    if hashlib.sha256(payload).digest() != checksum:
        raise RingFileError(f"{path}: checksum mismatch: the file is corrupt or truncated")
    try:
        body = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as err:
        raise RingFileError(f"{path}: undecodable body ({err})") from None
    if not isinstance(body, dict):
        raise RingFileError(f"{path}: body is not a map")
    return body


def read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise RingFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RingFileError(f"{path}: is a directory") from None
    except PermissionError:
        raise RingFileError(f"{path}: permission denied") from None


def write_atomically(path: str, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync it, rename it over, fsync the directory."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
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
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
