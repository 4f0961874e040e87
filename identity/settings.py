"""Identity's options, read once from its config section (`[identity]`) with their defaults.

    identity_dir            where identity keeps its state (default /var/lib/ringstack/identity)
    db_path                 the sqlite database (default <identity_dir>/identity.sqlite)
    key_repository          Fernet token keys (default <identity_dir>/fernet-keys)
    credential_key_repository  keys sealing EC2 secrets (default <identity_dir>/credential-keys)
    token_expiration        token lifetime in seconds (default 3600)
    max_active_keys         Fernet keys kept by a rotation, staged included (default 3)
    password_hash_cost      scrypt N for new password hashes (default 16384, a power of two)
    public_endpoint         base URL for discovery links (default: the request's own host)
    region_id               the region catalog entries are created in (default RegionOne)
"""

from __future__ import annotations

import dataclasses
import os

from common.config import Config, ConfigError
from identity.keys import DEFAULT_MAX_ACTIVE_KEYS
from identity.passwords import DEFAULT_COST_N

SECTION = "identity"
DEFAULT_IDENTITY_DIR = "/var/lib/ringstack/identity"
DEFAULT_TOKEN_EXPIRATION_S = 3600
DEFAULT_REGION = "RegionOne"


@dataclasses.dataclass(frozen=True)
class IdentitySettings:
    identity_dir: str
    db_path: str
    key_repository: str
    credential_key_repository: str
    token_expiration_s: int
    max_active_keys: int
    password_hash_cost: int
    public_endpoint: str
    region_id: str

    @classmethod
    def from_config(cls, conf: Config) -> IdentitySettings:
        base = conf.get_str("identity_dir", DEFAULT_IDENTITY_DIR)
        cost = conf.get_int("password_hash_cost", DEFAULT_COST_N, 2)
        if cost & (cost - 1):
            raise ConfigError(f"{conf.source} [{conf.section}] password_hash_cost: "
                              f"must be a power of two, not {cost}")
        return cls(
            identity_dir=base,
            db_path=conf.get_str("db_path", os.path.join(base, "identity.sqlite")),
            key_repository=conf.get_str("key_repository", os.path.join(base, "fernet-keys")),
            credential_key_repository=conf.get_str(
                "credential_key_repository", os.path.join(base, "credential-keys")),
            token_expiration_s=conf.get_int("token_expiration", DEFAULT_TOKEN_EXPIRATION_S, 1),
            max_active_keys=conf.get_int("max_active_keys", DEFAULT_MAX_ACTIVE_KEYS, 2),
            password_hash_cost=cost,
            public_endpoint=conf.get_str("public_endpoint").rstrip("/"),
            region_id=conf.get_str("region_id", DEFAULT_REGION),
        )
