"""Checking a request body against what the client said it would be, while it streams.

`VerifiedInput` wraps `wsgi.input` and hashes what the proxy reads; when the declared length
has been read it compares the SHA-256 (a signed SigV4 payload's `x-amz-content-sha256`) and
any `x-amz-checksum-<algorithm>` the client sent (header or aws-chunked trailer). A mismatch
raises `BodyRejected` (a ValueError, which the proxy treats as the client going away) before
the proxy sends its last held-back chunk, so a body that arrived wrong is never stored; the
S3 layer then answers with the `S3Error` kept on the input.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import Any

from proxy.middleware.s3api.errors import S3Error

CHECKSUM_ALGORITHMS = ("crc32", "sha1", "sha256")   # crc32c/crc64nvme are not in the stdlib


class BodyRejected(ValueError):
    """The body failed a check; `error` is what the client is told."""

    def __init__(self, error: S3Error):
        super().__init__(error.code)
        self.error = error


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


def new_checksum(algorithm: str) -> Any:
    if algorithm == "crc32":
        return _Crc32()
    return hashlib.new(algorithm)


class VerifiedInput:
    """A file-like body that checks its hashes once `length` bytes have been read."""

    def __init__(self, source: Any, length: int, sha256_hex: str | None = None,
                 checksums: dict[str, str] | None = None):
        self.source = source
        self.length = length
        self.received = 0
        self.error: S3Error | None = None
        self._sha256_hex = sha256_hex.lower() if sha256_hex else None
        self._sha256 = hashlib.sha256() if sha256_hex else None
        self._checksums = {algorithm: (value, new_checksum(algorithm))
                           for algorithm, value in (checksums or {}).items()}
        self._checked = False

    def read(self, size: int | None = -1) -> bytes:
        if self.error is not None:
            raise BodyRejected(self.error)
        remaining = self.length - self.received
        want = remaining if size is None or size < 0 else min(size, remaining)
        data = self.source.read(want) if want > 0 else b""
        if data:
            self.received += len(data)
            if self._sha256 is not None:
                self._sha256.update(data)
            for _value, hasher in self._checksums.values():
                hasher.update(data)
        if self.received >= self.length and not self._checked:
            self._checked = True
            self.finish()
        return data

    def finish(self) -> None:
        """Compare the hashes; raises BodyRejected on a mismatch."""
        if self._sha256 is not None and self._sha256.hexdigest() != self._sha256_hex:
            self.fail(S3Error("XAmzContentSHA256Mismatch", details={
                "ClientComputedContentSHA256": self._sha256_hex,
                "S3ComputedContentSHA256": self._sha256.hexdigest()}))
        for algorithm, (value, hasher) in self._checksums.items():
            computed = base64.b64encode(hasher.digest()).decode()
            if computed != value:
                self.fail(S3Error("BadDigest", f"The {algorithm.upper()} you specified did "
                                  "not match the calculated checksum."))

    def fail(self, error: S3Error) -> None:
        self.error = error
        raise BodyRejected(error)


def declared_checksums(headers: Any) -> dict[str, str]:
    """`x-amz-checksum-<algorithm>` headers this layer can verify."""
    found = {}
    for algorithm in CHECKSUM_ALGORITHMS:
        value = headers.get(f"x-amz-checksum-{algorithm}")
        if value:
            found[algorithm] = value.strip()
    return found
