"""Fernet tokens: what a token carries, and sealing/opening it with the key repository.

A token is a Fernet message (AES-128-CBC + HMAC-SHA256, from `cryptography`) whose plaintext is
a msgpack map {user_id, project_id, methods, issued_at, expires_at, audit_ids}. Nothing is
stored per token: any server holding the key repository can open any token. A token that does
not decrypt or authenticate under any active key is simply invalid; whether an authentic
token is still good (expiry, revocation, a disabled user) is decided by
identity.authentication, which knows the store.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import secrets
import time

import msgpack
from cryptography.fernet import InvalidToken

from identity.keys import KeyRepository, KeyRepositoryError

PAYLOAD_VERSION = 1
MAX_TOKEN_CHARS = 8192          # far above any token we issue; refuse bigger input unread
AUDIT_ID_BYTES = 16
# Fernet's own form: urlsafe base64 with padding. Checked up front because the base64 decoder
# ignores what follows the padding, and one token must have one spelling.
TOKEN_FORM = re.compile(r"[A-Za-z0-9_-]+={0,2}")


class TokenError(ValueError):
    """A token that is malformed, tampered with, made by a dropped key, or expired."""


def new_audit_id() -> str:
    """A random id naming one token (Keystone's 22-character urlsafe form)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(AUDIT_ID_BYTES)).decode().rstrip("=")


@dataclasses.dataclass(frozen=True)
class TokenPayload:
    """What a token says: who, scoped to what, how authenticated, and its lifetime."""

    user_id: str
    project_id: str | None
    methods: tuple[str, ...]
    issued_at: float
    expires_at: float
    audit_ids: tuple[str, ...]          # its own id first, then the chain it was rescoped from

    @property
    def audit_id(self) -> str:
        return self.audit_ids[0]

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at


class TokenProvider:
    """Issues and opens tokens with the keys of one repository."""

    def __init__(self, keys: KeyRepository, expiration_s: float):
        self.keys = keys
        self.expiration_s = expiration_s

    def new_payload(self, user_id: str, project_id: str | None, methods: list[str],
                    expires_at: float | None = None,
                    parent_audit_id: str | None = None) -> TokenPayload:
        now = time.time()
        expiry = now + self.expiration_s if expires_at is None else min(expires_at,
                                                                         now + self.expiration_s)
        chain = (new_audit_id(),) + ((parent_audit_id,) if parent_audit_id else ())
        return TokenPayload(user_id, project_id, tuple(methods), now, expiry, chain)

    def seal(self, payload: TokenPayload) -> str:
        packed = msgpack.packb({
            "v": PAYLOAD_VERSION, "user_id": payload.user_id, "project_id": payload.project_id,
            "methods": list(payload.methods), "issued_at": payload.issued_at,
            "expires_at": payload.expires_at, "audit_ids": list(payload.audit_ids)})
        return self.keys.fernet().encrypt(packed).decode()

    def open(self, token: str, now: float | None = None) -> TokenPayload:
        """The payload of an authentic, unexpired token; TokenError otherwise."""
        if not token or len(token) > MAX_TOKEN_CHARS or len(token) % 4 or \
                not TOKEN_FORM.fullmatch(token):
            raise TokenError("malformed token")
        try:
            packed = self.keys.fernet().decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise TokenError("token does not authenticate") from None
        except KeyRepositoryError:
            raise
        try:
            data = msgpack.unpackb(packed)
            if data.get("v") != PAYLOAD_VERSION:
                raise TokenError("unknown token version")
            payload = TokenPayload(
                str(data["user_id"]),
                None if data["project_id"] is None else str(data["project_id"]),
                tuple(str(m) for m in data["methods"]), float(data["issued_at"]),
                float(data["expires_at"]), tuple(str(a) for a in data["audit_ids"]))
        except (ValueError, KeyError, TypeError, AttributeError, msgpack.UnpackException):
            # Only our own keys make authentic tokens, so this means a bug or an old format.
            raise TokenError("unreadable token payload") from None
        if not payload.audit_ids:
            raise TokenError("token without audit id")
        if payload.expired(now):
            raise TokenError("token expired")
        return payload
