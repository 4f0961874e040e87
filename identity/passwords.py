"""Password hashing with a slow, memory-hard KDF (scrypt) and a per-user random salt.

A stored hash reads `scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`: the cost parameters travel
with it, so raising the default cost later leaves existing hashes verifiable. Passwords are
never logged, stored or returned; only this module sees them in clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
DEFAULT_COST_N = 2 ** 14       # ~16 MiB and tens of milliseconds per hash
BLOCK_SIZE_R = 8
PARALLELISM_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MAX_PASSWORD_BYTES = 4096      # a bound, so a huge "password" cannot make hashing a weapon


class PasswordTooLong(ValueError):
    """The password is longer than MAX_PASSWORD_BYTES."""


def _kdf(password: bytes, salt: bytes, cost_n: int, block_r: int, parallel_p: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=cost_n, r=block_r, p=parallel_p,
                          maxmem=256 * block_r * cost_n + 2 ** 20, dklen=HASH_BYTES)


def _encode(password: str) -> bytes:
    raw = password.encode("utf-8")
    if len(raw) > MAX_PASSWORD_BYTES:
        raise PasswordTooLong(f"passwords are limited to {MAX_PASSWORD_BYTES} bytes")
    return raw


def hash_password(password: str, cost_n: int = DEFAULT_COST_N) -> str:
    """A new salted hash of `password`, in the self-describing text form."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _kdf(_encode(password), salt, cost_n, BLOCK_SIZE_R, PARALLELISM_P)
    return "$".join([SCHEME, str(cost_n), str(BLOCK_SIZE_R), str(PARALLELISM_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def verify_password(password: str, stored: str | None) -> bool:
    """True when `password` matches `stored`; false for no hash, a malformed one, or a
    password over the length bound. The final comparison is constant-time."""
    if not stored:
        return False
    try:
        scheme, cost_n, block_r, parallel_p, salt, digest = stored.split("$")
        if scheme != SCHEME:
            return False
        expected = base64.b64decode(digest)
        actual = _kdf(_encode(password), base64.b64decode(salt), int(cost_n), int(block_r),
                      int(parallel_p))
    except (ValueError, PasswordTooLong):
        return False
    return hmac.compare_digest(expected, actual)
