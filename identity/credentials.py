"""EC2-style credentials: making access/secret pairs, sealing secrets at rest, and checking
AWS signatures made with them (for POST /v3/s3tokens).

Secrets must be recoverable (a signature is checked by recomputing it), so they are stored
encrypted with a Fernet key of their own repository, never in clear. The keyed hashes
themselves are common.aws_sig's, shared with the proxy's S3 layer.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import secrets

from cryptography.fernet import InvalidToken

from common.aws_sig import derive_v4_signing_key, sign_v2, sign_v4, signatures_match, v4_scope
from identity.keys import KeyRepository

ACCESS_BYTES = 16
SECRET_BYTES = 16


class CredentialSealError(RuntimeError):
    """A stored secret no active credential key can open."""


def new_access_key() -> str:
    return secrets.token_hex(ACCESS_BYTES)


def new_secret_key() -> str:
    return secrets.token_hex(SECRET_BYTES)


class SecretSealer:
    """Encrypts and decrypts EC2 secrets with the credential key repository."""

    def __init__(self, keys: KeyRepository):
        self.keys = keys

    def seal(self, secret: str) -> str:
        return self.keys.fernet().encrypt(secret.encode()).decode()

    def unseal(self, sealed: str) -> str:
        try:
            return self.keys.fernet().decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise CredentialSealError("credential secret cannot be decrypted") from None


@dataclasses.dataclass(frozen=True)
class SignatureCheck:
    valid: bool
    signing_key: bytes | None      # the SigV4 derived key of the scope; None for SigV2


def decode_string_to_sign(token: str) -> bytes:
    """s3tokens carries the string to sign base64-encoded; ValueError when it is not.
    Keystone decodes the urlsafe alphabet (Swift's s3token sends it) and the proxy here sends
    the standard one: the two differ only in two characters, so both are accepted."""
    text = token.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("credentials.token is not base64") from None


def check_signature(secret: str, string_to_sign: bytes, signature: str) -> SignatureCheck:
    """SigV4 when the string to sign names a v4 scope (checked with that scope's derived
    key), else SigV2 (HMAC-SHA1 with the secret)."""
    scope = v4_scope(string_to_sign)
    if scope is not None:
        key = derive_v4_signing_key(secret, *scope)
        return SignatureCheck(signatures_match(sign_v4(key, string_to_sign), signature), key)
    return SignatureCheck(signatures_match(sign_v2(secret, string_to_sign), signature), None)
