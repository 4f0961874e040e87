"""The device record: one typed description of a disk in the ring, and its single normaliser.

Every place that creates or changes a device goes through `Device` (or `Device.replace`), so the
defaults (replication address = data address) and the checks live in exactly one spot.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from typing import Any

from ring.errors import RingError

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_DEVICE_NAME = re.compile(r"^[^/\s]+$")


class InvalidDevice(RingError):
    """A device description that cannot be part of a ring."""


def normalise_ip(value: str) -> str:
    """An IP address in canonical text form (IPv6 without brackets), or a validated hostname."""
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        if _HOSTNAME.match(text) and not text.replace(".", "").isdigit():
            return text.lower()
    raise InvalidDevice(f"invalid ip address or hostname: {value!r}")


def format_address(ip: str, port: int) -> str:
    """`ip:port`, with IPv6 addresses in brackets as URLs and Swift's CLI write them."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclasses.dataclass(frozen=True)
class Device:
    """One disk: where it is in the failure-domain tree, how to reach it, and its weight."""

    id: int
    region: int
    zone: int
    ip: str
    port: int
    device: str
    weight: float
    replication_ip: str = ""
    replication_port: int = 0
    meta: str = ""

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise in place once, here and nowhere else
        for name in ("id", "region", "zone", "port", "replication_port"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                try:
                    value = int(value)
                except (TypeError, ValueError):
                    raise InvalidDevice(f"{name} must be an integer, not {value!r}") from None
                set_(self, name, value)
        if self.id < 0:
            raise InvalidDevice(f"device id must be >= 0, not {self.id}")
        if self.region < 0 or self.zone < 0:
            raise InvalidDevice("region and zone must be >= 0")
        try:
            weight = float(self.weight)
        except (TypeError, ValueError):
            raise InvalidDevice(f"weight must be a number, not {self.weight!r}") from None
        if not weight >= 0 or weight == float("inf"):
            raise InvalidDevice(f"weight must be a finite number >= 0, not {self.weight!r}")
        set_(self, "weight", weight)
        set_(self, "ip", normalise_ip(self.ip))
        set_(self, "replication_ip",
             normalise_ip(self.replication_ip) if self.replication_ip else self.ip)
        if not self.replication_port:
            set_(self, "replication_port", self.port)
        for name in ("port", "replication_port"):
            if not 0 < getattr(self, name) < 65536:
                raise InvalidDevice(f"{name} must be 1-65535, not {getattr(self, name)}")
        if not isinstance(self.device, str) or not _DEVICE_NAME.match(self.device):
            raise InvalidDevice(f"invalid device name: {self.device!r}")
        if not isinstance(self.meta, str):
            raise InvalidDevice("meta must be text")

    @property
    def host(self) -> tuple[int, int, str]:
        """The host tier: a host is an ip within a zone within a region."""
        return (self.region, self.zone, self.ip)

    @property
    def tiers(self) -> tuple[tuple, tuple, tuple, tuple]:
        """The failure-domain path of this device: region, zone, host, device."""
        return ((self.region,), (self.region, self.zone), self.host, self.host + (self.id,))

    def replace(self, **changes: Any) -> Device:
        """A copy with some fields changed, normalised and checked like a new device."""
        if "ip" in changes and "replication_ip" not in changes and \
                self.replication_ip == self.ip:
            changes["replication_ip"] = ""
        if "port" in changes and "replication_port" not in changes and \
                self.replication_port == self.port:
            changes["replication_port"] = 0
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Device:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise InvalidDevice(f"unknown device fields: {sorted(unknown)}")
        return cls(**data)

    def describe(self) -> str:
        """Swift's one-line device form: d1r1z2-10.0.0.1:6200R10.0.0.1:6200/sdb_"meta"."""
        text = (f"d{self.id}r{self.region}z{self.zone}-{format_address(self.ip, self.port)}"
                f"R{format_address(self.replication_ip, self.replication_port)}/{self.device}")
        return text + (f'_"{self.meta}"' if self.meta else "")
