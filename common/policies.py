"""Storage policies: the one parser of the `[storage-policy:N]` sections of ringstack.conf.

The proxy (placement, /info) and the storage servers (which indexes exist, the default for a
new container, policy names in account listings) read policies through `parse_policies`, so
they can never disagree about a config. Swift's rules: names are letters, digits and '-',
unique case-insensitively (aliases too); exactly one non-deprecated policy is the default (a
lone policy is the default on its own); with no section at all there is one policy, 0, named
Policy-0. Parsing is pure: it takes the parsed config, so it is tested without files.
"""

from __future__ import annotations

import configparser
import dataclasses
import re
from collections.abc import Iterator

from common.config import TRUE_WORDS, ConfigError

SECTION_PREFIX = "storage-policy:"
REPLICATION = "replication"
KNOWN_TYPES = (REPLICATION, "erasure_coding")
_VALID_NAME = re.compile(r"^[A-Za-z0-9-]+$")


@dataclasses.dataclass(frozen=True)
class StoragePolicy:
    index: int
    name: str
    aliases: tuple[str, ...]       # every name it answers to, its primary name first
    is_default: bool
    is_deprecated: bool
    policy_type: str

    @property
    def ring_name(self) -> str:
        """The ring file's stem in swift_dir: object.ring for policy 0, object-N.ring else."""
        return "object" if self.index == 0 else f"object-{self.index}"

    def as_info(self) -> dict[str, object]:
        info: dict[str, object] = {"name": self.name, "aliases": ", ".join(self.aliases)}
        if self.is_default:
            info["default"] = True
        return info


class StoragePolicies:
    """All configured policies, looked up by index or by (case-insensitive) name or alias."""

    def __init__(self, policies: list[StoragePolicy]):
        if not policies:
            raise ConfigError("no storage policies")
        self._by_index = {p.index: p for p in policies}
        self._by_name: dict[str, StoragePolicy] = {}
        for policy in policies:
            for name in policy.aliases:
                if name.upper() in self._by_name:
                    raise ConfigError(f"storage policy name {name!r} is used twice")
                self._by_name[name.upper()] = policy
        defaults = [p for p in policies if p.is_default]
        if len(defaults) != 1:
            raise ConfigError("exactly one storage policy must be the default "
                              f"(found {len(defaults)})")
        self.default = defaults[0]

    def __iter__(self) -> Iterator[StoragePolicy]:
        return iter(sorted(self._by_index.values(), key=lambda p: p.index))

    def get_by_index(self, index: int | str | None) -> StoragePolicy | None:
        try:
            return self._by_index.get(int(index)) if index not in (None, "") else None
        except (TypeError, ValueError):
            return None

    def get_by_name(self, name: str) -> StoragePolicy | None:
        return self._by_name.get(name.strip().upper())

    def as_info(self) -> list[dict[str, object]]:
        return [p.as_info() for p in self if not p.is_deprecated]


def _policy_from_section(index: int, options: dict[str, str]) -> StoragePolicy:
    name = options.get("name", "").strip() or f"Policy-{index}"
    aliases = [name] + [a.strip() for a in options.get("aliases", "").split(",") if a.strip()]
    for alias in aliases:
        if not _VALID_NAME.match(alias):
            raise ConfigError(f"[{SECTION_PREFIX}{index}] invalid policy name {alias!r}: "
                              "use letters, digits and '-'")
    policy_type = options.get("policy_type", REPLICATION).strip().lower() or REPLICATION
    if policy_type not in KNOWN_TYPES:
        raise ConfigError(f"[{SECTION_PREFIX}{index}] unknown policy_type {policy_type!r}")
    return StoragePolicy(
        index=index, name=name, aliases=tuple(dict.fromkeys(aliases)),
        is_default=options.get("default", "").strip().lower() in TRUE_WORDS,
        is_deprecated=options.get("deprecated", "").strip().lower() in TRUE_WORDS,
        policy_type=policy_type)


def parse_policies(parser: configparser.ConfigParser) -> StoragePolicies:
    policies = []
    for section in parser.sections():
        if not section.startswith(SECTION_PREFIX):
            continue
        try:
            index = int(section[len(SECTION_PREFIX):])
        except ValueError:
            raise ConfigError(f"[{section}]: the policy index must be an integer") from None
        if index < 0:
            raise ConfigError(f"[{section}]: the policy index must not be negative")
        policies.append(_policy_from_section(index, dict(parser.items(section))))
    if not policies:
        policies = [StoragePolicy(0, "Policy-0", ("Policy-0",), True, False, REPLICATION)]
    live = [p for p in policies if not p.is_deprecated]
    if not live:
        raise ConfigError("every storage policy is deprecated")
    if not any(p.is_default for p in policies) and len(live) == 1:
        policies = [dataclasses.replace(p, is_default=True) if p is live[0] else p
                    for p in policies]
    if any(p.is_default and p.is_deprecated for p in policies):
        raise ConfigError("the default storage policy cannot be deprecated")
    return StoragePolicies(policies)
