"""What the proxy knows about the cluster: hash secrets, constraints, policies and rings.

Everything comes from `swift_dir`: `ringstack.conf` (`[ringstack-hash]`,
`[swift-constraints]`, `[storage-policy:N]`) and the ring files `account.ring`,
`container.ring`, `object.ring` / `object-N.ring`. Rings reload themselves when their files
change; object rings are opened the first time their policy is used.
"""

from __future__ import annotations

import os

from common.config import ConfigError, read_config
from common.constraints import Constraints
from common.policies import StoragePolicies, StoragePolicy, parse_policies
from ring import HashSecrets, Ring, RingError, load_hash_secrets

CLUSTER_CONF = "ringstack.conf"


class Cluster:
    """The cluster-wide settings and the rings, loaded from one swift_dir."""

    def __init__(self, swift_dir: str, secrets: HashSecrets, constraints: Constraints,
                 policies: StoragePolicies, account_ring: Ring, container_ring: Ring):
        self.swift_dir = swift_dir
        self.secrets = secrets
        self.constraints = constraints
        self.policies = policies
        self.account_ring = account_ring
        self.container_ring = container_ring
        self._object_rings: dict[int, Ring] = {}

    @classmethod
    def load(cls, swift_dir: str) -> Cluster:
        conf_path = os.path.join(swift_dir, CLUSTER_CONF)
        parser = read_config(conf_path)
        try:
            secrets = load_hash_secrets(conf_path)
        except RingError as err:
            raise ConfigError(str(err)) from None
        constraints = Constraints.from_parser(parser, conf_path)
        policies = parse_policies(parser)
        try:
            account_ring = Ring(os.path.join(swift_dir, "account.ring"), secrets)
            container_ring = Ring(os.path.join(swift_dir, "container.ring"), secrets)
        except RingError as err:
            raise ConfigError(f"cannot load rings from {swift_dir}: {err}") from None
        cluster = cls(swift_dir, secrets, constraints, policies, account_ring, container_ring)
        for policy in policies:
            if not policy.is_deprecated:
                cluster.object_ring(policy)   # a missing ring stops the proxy at start
        return cluster

    def object_ring(self, policy: StoragePolicy) -> Ring:
        ring = self._object_rings.get(policy.index)
        if ring is None:
            path = os.path.join(self.swift_dir, policy.ring_name + ".ring")
            try:
                ring = Ring(path, self.secrets)
            except RingError as err:
                raise ConfigError(f"storage policy {policy.name}: {err}") from None
            self._object_rings[policy.index] = ring
        return ring
