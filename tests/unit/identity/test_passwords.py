"""Password hashes: salted, self-describing, verified in constant time, bounded input."""

from __future__ import annotations

from identity.passwords import MAX_PASSWORD_BYTES, hash_password, verify_password


def test_hash_verifies_only_the_right_password_and_is_salted():
    first = hash_password("correct horse", 1024)
    second = hash_password("correct horse", 1024)
    assert first != second                          # a random salt per hash
    assert "correct horse" not in first
    assert first.startswith("scrypt$1024$8$1$")
    assert verify_password("correct horse", first) and verify_password("correct horse", second)
    assert not verify_password("correct horsE", first)
    assert not verify_password("", first)


def test_cost_travels_with_the_hash():
    cheap = hash_password("pw", 1024)
    dearer = hash_password("pw", 2048)
    assert verify_password("pw", cheap) and verify_password("pw", dearer)
    assert dearer.split("$")[1] == "2048"


def test_malformed_or_missing_hashes_and_huge_passwords_never_verify():
    good = hash_password("pw", 1024)
    for stored in (None, "", "scrypt$x", "bcrypt$1$2$3$4$5", good.replace("scrypt", "md5"),
                   good[:-4] + "!!!!"):
        assert not verify_password("pw", stored)
    assert not verify_password("p" * (MAX_PASSWORD_BYTES + 1), good)
