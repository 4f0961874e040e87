"""What every storage server reads from `<swift_dir>/ringstack.conf`, loaded in one place.

`ClusterConfig.load(swift_dir)` gives the hash secrets (`[ringstack-hash]`), Swift's API
constraints (`[swift-constraints]`) and the storage policies (`[storage-policy:N]`, parsed by
`common.policies`, the parser the proxy uses too). The object, container and account servers
each load it once at start; a bad file stops the server with a `ConfigError`.
"""

from __future__ import annotations

import dataclasses
import os

from common.config import ConfigError, read_config
from common.constraints import Constraints
from common.policies import StoragePolicies, parse_policies
from ring.errors import RingError
from ring.hashing import HashSecrets, load_hash_secrets

DEFAULT_SWIFT_DIR = "/etc/ringstack"
CLUSTER_CONF = "ringstack.conf"


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """The cluster-wide settings a storage server needs."""

    secrets: HashSecrets
    constraints: Constraints
    policies: StoragePolicies

    @classmethod
    def load(cls, swift_dir: str) -> ClusterConfig:
        path = os.path.join(swift_dir, CLUSTER_CONF)
        try:
            secrets = load_hash_secrets(path)
        except RingError as err:
            raise ConfigError(str(err)) from None
        parser = read_config(path)
        return cls(secrets, Constraints.from_parser(parser, path), parse_policies(parser))
