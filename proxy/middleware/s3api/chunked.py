"""aws-chunked request bodies: decoding them and checking every chunk's signature as it streams.

`STREAMING-AWS4-HMAC-SHA256-PAYLOAD` bodies are `<hex size>;chunk-signature=<sig>\\r\\n<data>
\\r\\n` chunks ending with a zero-size one. Each chunk's signature is SigV4 over
`AWS4-HMAC-SHA256-PAYLOAD`, the request's date and scope, the previous signature (the seed is
the request's own), the hash of "" and the hash of the chunk, under the scope's derived key
(`S3Auth.signing_key`), so the proxy checks them without the secret. The `-TRAILER` variants
end with trailing headers (an `x-amz-checksum-*`, signed with `x-amz-trailer-signature` in
the signed variant); `STREAMING-UNSIGNED-PAYLOAD-TRAILER` has no chunk signatures.

`AwsChunkedInput` is the decoded body as a file the proxy reads: a bad signature, a malformed
chunk, a wrong total (`x-amz-decoded-content-length`) or trailer checksum raises `BodyRejected`
before the last decoded byte is handed out, so the proxy never completes such an object.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from typing import Any

from common.aws_sig import sign_v4, signatures_match
from proxy.middleware.s3api.errors import S3Error
from proxy.middleware.s3api.payload import CHECKSUM_ALGORITHMS, BodyRejected, new_checksum
from proxy.middleware.s3api.sigv4 import chunk_string_to_sign, trailer_string_to_sign

MAX_CHUNK_HEADER_BYTES = 4096
MAX_TRAILER_LINES = 10
READ_BYTES_MAX = 65536


@dataclasses.dataclass(frozen=True)
class ChunkSigner:
    """What checks a signed stream: the scope's key, the request's date, scope and signature."""

    signing_key: bytes
    amz_date: str
    scope: str
    seed_signature: str

    def chunk_signature(self, previous: str, data_sha256: str) -> str:
        return sign_v4(self.signing_key, chunk_string_to_sign(self.amz_date, self.scope,
                                                              previous, data_sha256))

    def trailer_signature(self, previous: str, trailer_sha256: str) -> str:
        return sign_v4(self.signing_key, trailer_string_to_sign(self.amz_date, self.scope,
                                                                previous, trailer_sha256))


def _incomplete() -> S3Error:
    return S3Error("IncompleteBody", "The request body terminated unexpectedly")


def _malformed(message: str) -> S3Error:
    return S3Error("InvalidChunkSizeError", message, status=400)


class AwsChunkedInput:
    """The decoded payload of an aws-chunked body, checked chunk by chunk."""

    def __init__(self, source: Any, decoded_length: int, signer: ChunkSigner | None,
                 trailer_names: tuple[str, ...] = (), signed_trailer: bool = False):
        self.source = source
        self.length = decoded_length
        self.received = 0
        self.error: S3Error | None = None
        self._signer = signer
        self._previous_signature = signer.seed_signature if signer else ""
        self._chunk_left = 0
        self._chunk_signature = ""
        self._chunk_hash: Any = None
        self._done = False
        self._signed_trailer = signed_trailer
        self._trailer_checksums: dict[str, Any] = {}
        for name in trailer_names:
            name = name.strip().lower()
            algorithm = name.removeprefix("x-amz-checksum-")
            if name.startswith("x-amz-checksum-") and algorithm in CHECKSUM_ALGORITHMS:
                self._trailer_checksums[name] = new_checksum(algorithm)

    # ---- reading the wire format --------------------------------------------------------------

    def _read_exact(self, size: int) -> bytes:
        parts = []
        while size > 0:
            data = self.source.read(size)
            if not data:
                self.fail(_incomplete())
            parts.append(data)
            size -= len(data)
        return b"".join(parts)

    def _read_line(self) -> bytes:
        line = self.source.readline(MAX_CHUNK_HEADER_BYTES)
        if not line.endswith(b"\n"):
            self.fail(_incomplete() if len(line) < MAX_CHUNK_HEADER_BYTES else
                      _malformed("Chunk header too long"))
        return line.rstrip(b"\r\n")

    def _start_chunk(self) -> None:
        header = self._read_line()
        size_text, _, extension = header.partition(b";")
        try:
            size = int(size_text, 16)
        except ValueError:
            self.fail(_malformed("Only chunk sizes in hexadecimal are accepted"))
        if size < 0:
            self.fail(_malformed("Negative chunk size"))
        if self._signer is not None:
            name, _, signature = extension.partition(b"=")
            if name.strip() != b"chunk-signature" or not signature:
                self.fail(S3Error("SignatureDoesNotMatch", "Missing chunk signature"))
            self._chunk_signature = signature.strip().decode("latin-1")
        self._chunk_left = size
        self._chunk_hash = hashlib.sha256() if self._signer is not None else None
        if size == 0:
            self._end_chunk()
            self._finish_stream()

    def _end_chunk(self) -> None:
        if self._signer is not None:
            expected = self._signer.chunk_signature(self._previous_signature,
                                                    self._chunk_hash.hexdigest())
            if not signatures_match(expected, self._chunk_signature):
                self.fail(S3Error("SignatureDoesNotMatch", "The chunk signature does not "
                                  "match what we calculated"))
            self._previous_signature = expected

    def _after_data(self) -> None:
        if self._read_exact(2) != b"\r\n":
            self.fail(_malformed("Chunk data not followed by CRLF"))
        self._end_chunk()

    def _finish_stream(self) -> None:
        """After the zero-size chunk: trailers (if any), the final CRLF, then the totals."""
        if self._trailer_checksums or self._signed_trailer:
            trailers: list[bytes] = []
            signature = ""
            for _ in range(MAX_TRAILER_LINES):
                line = self._read_line()
                if not line:
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"x-amz-trailer-signature":
                    signature = value.strip().decode("latin-1")
                    continue
                trailers.append(name.strip().lower() + b":" + value.strip())
            self._check_trailers(trailers, signature)
        else:
            # the final CRLF after the zero chunk; some clients stop right after the header
            self.source.read(2)
        self._done = True
        if self.received != self.length:
            self.fail(S3Error("IncompleteBody", "The decoded length does not match "
                              "x-amz-decoded-content-length"))

    def _check_trailers(self, trailers: list[bytes], signature: str) -> None:
        if self._signed_trailer and self._signer is not None:
            text = b"".join(line + b"\n" for line in trailers)
            expected = self._signer.trailer_signature(self._previous_signature,
                                                      hashlib.sha256(text).hexdigest())
            if not signatures_match(expected, signature):
                self.fail(S3Error("SignatureDoesNotMatch", "The trailer signature does not "
                                  "match what we calculated"))
        values = {}
        for line in trailers:
            name, _, value = line.partition(b":")
            values[name.decode("latin-1")] = value.decode("latin-1")
        for name, hasher in self._trailer_checksums.items():
            computed = base64.b64encode(hasher.digest()).decode()
            if values.get(name) != computed:
                self.fail(S3Error("BadDigest", f"The {name} you specified did not match the "
                                  "calculated checksum."))

    def fail(self, error: S3Error) -> None:
        self.error = error
        raise BodyRejected(error)

    # ---- the decoded file ---------------------------------------------------------------------

    def read(self, size: int | None = -1) -> bytes:
        if self.error is not None:
            raise BodyRejected(self.error)
        limit = READ_BYTES_MAX if size is None or size < 0 else size
        out = []
        got = 0
        while got < limit and not self._done:
            if self._chunk_left == 0:
                self._start_chunk()
                continue
            data = self.source.read(min(self._chunk_left, limit - got))
            if not data:
                self.fail(_incomplete())
            self._chunk_left -= len(data)
            self.received += len(data)
            if self.received > self.length:
                self.fail(S3Error("IncompleteBody", "The decoded length exceeds "
                                  "x-amz-decoded-content-length"))
            if self._chunk_hash is not None:
                self._chunk_hash.update(data)
            for hasher in self._trailer_checksums.values():
                hasher.update(data)
            out.append(data)
            got += len(data)
            if self._chunk_left == 0:
                self._after_data()
            if self.received == self.length and not self._done:
                # verify the rest of the stream before the last bytes are handed out
                if self._chunk_left:
                    self.fail(S3Error("IncompleteBody", "The decoded length exceeds "
                                      "x-amz-decoded-content-length"))
                self._start_chunk()
                if not self._done:
                    self.fail(S3Error("IncompleteBody", "The decoded length exceeds "
                                      "x-amz-decoded-content-length"))
        return b"".join(out)
