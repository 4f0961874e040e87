"""Fernet tokens and their key repository: tampering, expiry, rotation, dropped keys."""

from __future__ import annotations

import os
import time

import msgpack
import pytest
from cryptography.fernet import Fernet

from identity.keys import KeyRepository, KeyRepositoryError
from identity.tokens import PAYLOAD_VERSION, TokenError, TokenProvider


@pytest.fixture
def keys(tmp_path) -> KeyRepository:
    repository = KeyRepository(str(tmp_path / "fernet-keys"))
    assert repository.setup()
    return repository


def test_setup_makes_staged_and_primary_keys_private_and_only_once(keys):
    assert keys.indexes() == [0, 1]
    assert not keys.setup()
    for index in (0, 1):
        assert os.stat(os.path.join(keys.directory, str(index))).st_mode & 0o777 == 0o600
    assert os.stat(keys.directory).st_mode & 0o777 == 0o700


def test_round_trip_carries_the_payload(keys):
    provider = TokenProvider(keys, 3600)
    payload = provider.new_payload("u1", "p1", ["password"])
    token = provider.seal(payload)
    opened = provider.open(token)
    assert opened == payload
    assert opened.audit_id and len(opened.audit_id) == 22
    assert opened.expires_at == pytest.approx(time.time() + 3600, abs=5)


def test_tampered_or_foreign_tokens_are_refused(keys, tmp_path):
    provider = TokenProvider(keys, 3600)
    token = provider.seal(provider.new_payload("u1", None, ["password"]))
    flipped = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    for bad in (flipped, token[:-2], token + "x", "", "not a token", "é" * 10,
                "x" * 10000):
        with pytest.raises(TokenError):
            provider.open(bad)
    other = KeyRepository(str(tmp_path / "other-keys"))
    other.setup()
    with pytest.raises(TokenError):
        TokenProvider(other, 3600).open(token)


def test_expired_tokens_are_refused(keys):
    provider = TokenProvider(keys, 1)
    token = provider.seal(provider.new_payload("u1", "p1", ["password"]))
    provider.open(token)
    with pytest.raises(TokenError, match="expired"):
        provider.open(token, now=time.time() + 2)


def test_rescoped_expiry_never_outlives_the_parent(keys):
    provider = TokenProvider(keys, 3600)
    parent_expiry = time.time() + 60
    child = provider.new_payload("u1", "p1", ["token"], expires_at=parent_expiry,
                                 parent_audit_id="parent")
    assert child.expires_at == parent_expiry and child.audit_ids[1:] == ("parent",)


def test_rotation_keeps_old_tokens_until_their_key_is_dropped(keys):
    provider = TokenProvider(keys, 3600)
    made_by_key_1 = provider.seal(provider.new_payload("u1", "p1", ["password"]))
    assert keys.rotate(3) == [0, 1, 2]          # 0 staged, 2 primary, 1 secondary
    made_by_key_2 = provider.seal(provider.new_payload("u1", "p1", ["password"]))
    provider.open(made_by_key_1)
    provider.open(made_by_key_2)
    assert keys.rotate(3) == [0, 2, 3]          # key 1 dropped
    with pytest.raises(TokenError):
        provider.open(made_by_key_1)
    provider.open(made_by_key_2)


def test_a_staged_key_is_accepted_before_it_encrypts(keys):
    # Another server that already rotated encrypts with what is still our staged key.
    staged = keys._read(0)
    token = Fernet(staged).encrypt(msgpack.packb({
        "v": PAYLOAD_VERSION, "user_id": "u", "project_id": None, "methods": ["password"],
        "issued_at": time.time(), "expires_at": time.time() + 60, "audit_ids": ["a"]})).decode()
    assert TokenProvider(keys, 60).open(token).user_id == "u"


def test_missing_repository_and_bad_keys_are_clear_errors(tmp_path):
    empty = KeyRepository(str(tmp_path / "none"))
    with pytest.raises(KeyRepositoryError):
        empty.fernet()
    with pytest.raises(KeyRepositoryError):
        empty.rotate()
    broken = KeyRepository(str(tmp_path / "broken"))
    broken.setup()
    with open(os.path.join(broken.directory, "1"), "w") as handle:
        handle.write("not a key")
    with pytest.raises(KeyRepositoryError, match="not a Fernet key"):
        broken.fernet()
    with pytest.raises(ValueError):
        broken.rotate(1)
