"""Swift's one-line device strings: parsing add, search and change values, matching, formatting.

These are the strings an operator types to `swift-ring-builder` (and so to ringstack's):

    add value     [r<region>]z<zone>-<ip>:<port>[R<ip>:<port>]/<device>[_<meta>]
    search value  [d<id>][r<region>][z<zone>][-<ip>][:<port>][R[<ip>][:<port>]][/<device>][_<meta>]
    change value  [<ip>][:<port>][R[<ip>][:<port>]][/<device>][_<meta>]

IPv6 addresses go in brackets (`[::1]:6200`). Hostnames are accepted in add values and after the
`-` of a search value (where nothing else can be meant); a change value's addresses must be IPs,
as in Swift, so that a bare word is never taken for a new host (use --change-ip for hostnames).
Every function here is pure and reports a bad string as ValueError with a one-line reason; the
field checks themselves (ports, names, addresses) are `ring.device.Device`'s.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ring.device import Device, InvalidDevice, format_address, normalise_ip

DEFAULT_REGION = 1
CRITERIA_FIELDS = ("id", "region", "zone", "ip", "port", "replication_ip", "replication_port",
                   "device", "meta", "weight")
CHANGE_FIELDS = ("ip", "port", "replication_ip", "replication_port", "device", "meta")
_INT_CRITERIA = ("id", "region", "zone", "port", "replication_port")

_DIGITS = re.compile(r"\d+")
_BRACKETED = re.compile(r"\[([^\]]*)\]")
# Upper-case R is excluded because it starts the replication address (Swift's rule too).
_HOST = re.compile(r"[A-QS-Za-z0-9.\-]+")
_IPV4 = re.compile(r"[0-9.]+")


class _Scanner:
    """A cursor over one value string, producing errors that quote the whole string."""

    def __init__(self, text: str, what: str):
        if not isinstance(text, str):
            raise ValueError(f"{what} must be text, not {text!r}")
        self.text = text
        self.what = what
        self.pos = 0

    def fail(self, reason: str) -> ValueError:
        return ValueError(f"invalid {self.what} {self.text!r}: {reason}")

    @property
    def done(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self, prefix: str) -> bool:
        return self.text.startswith(prefix, self.pos)

    def accept(self, prefix: str) -> bool:
        if self.peek(prefix):
            self.pos += len(prefix)
            return True
        return False

    def integer(self, field: str) -> int:
        match = _DIGITS.match(self.text, self.pos)
        if not match:
            raise self.fail(f"expected a number for the {field} at position {self.pos + 1}")
        self.pos = match.end()
        return int(match.group())

    def until(self, stops: str) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in stops:
            self.pos += 1
        return self.text[start:self.pos]

    def rest(self) -> str:
        value, self.pos = self.text[self.pos:], len(self.text)
        return value

    def address(self, field: str, required: bool, hostname: bool = True) -> str | None:
        """An IP in brackets, a dotted IPv4 address or (if `hostname`) a hostname, normalised."""
        match = _BRACKETED.match(self.text, self.pos)
        if not match:
            match = (_HOST if hostname else _IPV4).match(self.text, self.pos)
        if not match:
            if required:
                raise self.fail(f"expected an address for the {field} at position "
                                f"{self.pos + 1}")
            return None
        self.pos = match.end()
        if match.re is _BRACKETED:
            return self.ip(match.group(1), field, bracketed=True)
        return self.ip(match.group(), field)

    def ip(self, value: str, field: str, bracketed: bool = False) -> str:
        try:
            if bracketed:
                # Brackets mean an IP address (IPv6 as in URLs), never a hostname.
                return str(ipaddress.ip_address(value))
            return normalise_ip(value)
        except (InvalidDevice, ValueError):
            raise self.fail(f"{value!r} is not a valid {field}") from None

    def trailing(self) -> None:
        if not self.done:
            raise self.fail(f"unexpected {self.text[self.pos:]!r} at position {self.pos + 1}")


def _add_address(scan: _Scanner, field: str) -> tuple[str, int]:
    """`ip:port` of an add value, as Swift reads it: the port follows the last colon, so even
    an unbracketed IPv6 address works; the address ends at `R` or `/`."""
    if scan.peek("["):
        match = _BRACKETED.match(scan.text, scan.pos)
        if not match:
            raise scan.fail(f"unclosed '[' in the {field}")
        scan.pos = match.end()
        ip = scan.ip(match.group(1), field, bracketed=True)
        if not scan.accept(":"):
            raise scan.fail(f"expected ':<port>' after the {field}")
        port_text = scan.until("R/")
    else:
        address = scan.until("R/")
        host, colon, port_text = address.rpartition(":")
        if not colon:
            raise scan.fail(f"the {field} needs a port ('<ip>:<port>')")
        ip = scan.ip(host, field)
    if not port_text.isdigit():
        raise scan.fail(f"invalid port {port_text!r} for the {field}")
    return ip, int(port_text)


def parse_add_value(text: str) -> dict[str, Any]:
    """`[r<region>]z<zone>-<ip>:<port>[R<ip>:<port>]/<device>[_<meta>]` as Device fields
    (all but id and weight). Region defaults to 1; replication_ip '' and replication_port 0
    mean "same as the data address", as for Device."""
    scan = _Scanner(text, "add value")
    fields: dict[str, Any] = {"region": DEFAULT_REGION, "replication_ip": "",
                              "replication_port": 0, "meta": ""}
    if scan.accept("r"):
        fields["region"] = scan.integer("region")
    if not scan.accept("z"):
        raise scan.fail("expected z<zone> (format: [r<region>]z<zone>-<ip>:<port>"
                        "[R<ip>:<port>]/<device>[_<meta>])")
    fields["zone"] = scan.integer("zone")
    if not scan.accept("-"):
        raise scan.fail("expected '-<ip>:<port>' after the zone")
    fields["ip"], fields["port"] = _add_address(scan, "ip")
    if scan.accept("R"):
        fields["replication_ip"], fields["replication_port"] = _add_address(
            scan, "replication ip")
    if not scan.accept("/"):
        raise scan.fail("expected '/<device>' after the address")
    fields["device"] = scan.until("_")
    if not fields["device"]:
        raise scan.fail("the device name is empty")
    if scan.accept("_"):
        fields["meta"] = scan.rest()
    try:
        Device(id=0, weight=0.0, **fields)
    except InvalidDevice as err:
        raise scan.fail(str(err)) from None
    return fields


def parse_search_value(text: str) -> dict[str, Any]:
    """A search value as criteria for `matches`; only the parts given are present.

    Raises ValueError for an empty value: it would match every device, which is never what a
    `remove` or `set_weight` meant."""
    scan = _Scanner(text, "search value")
    criteria: dict[str, Any] = {}
    for marker, field in (("d", "id"), ("r", "region"), ("z", "zone")):
        if scan.accept(marker):
            criteria[field] = scan.integer(field)
    dashed = scan.accept("-")
    if dashed or scan.peek("[") or (not scan.done and scan.text[scan.pos].isdigit()):
        ip = scan.address("ip", required=dashed, hostname=dashed)
        if ip is not None:
            criteria["ip"] = ip
    _scan_port_to_meta(scan, criteria, hostname=True)
    if not criteria:
        raise scan.fail("it names no device (try d<id>, z<zone>, -<ip> or /<device>)")
    return criteria


def _scan_port_to_meta(scan: _Scanner, fields: dict[str, Any], hostname: bool) -> None:
    """The part every device string shares after its ip:
    `[:<port>][R[<ip>][:<port>]][/<device>][_<meta>]`, into `fields`; then nothing may follow."""
    if scan.accept(":"):
        fields["port"] = scan.integer("port")
    if scan.accept("R"):
        replication_ip = scan.address("replication ip", required=False, hostname=hostname)
        if replication_ip is not None:
            fields["replication_ip"] = replication_ip
        if scan.accept(":"):
            fields["replication_port"] = scan.integer("replication port")
    if scan.accept("/"):
        fields["device"] = scan.until("_")
        if not fields["device"]:
            raise scan.fail("the device name after '/' is empty")
    if scan.accept("_"):
        fields["meta"] = scan.rest()
    scan.trailing()


def parse_change_value(text: str) -> dict[str, Any]:
    """A set_info change value, `[<ip>][:<port>][R[<ip>][:<port>]][/<device>][_<meta>]`, as the
    fields to change (only those given)."""
    scan = _Scanner(text, "change value")
    change: dict[str, Any] = {}
    ip = scan.address("ip", required=False, hostname=False)
    if ip is not None:
        change["ip"] = ip
    _scan_port_to_meta(scan, change, hostname=False)
    if not change:
        raise scan.fail("it changes nothing (format: [<ip>][:<port>][R[<ip>][:<port>]]"
                        "[/<device>][_<meta>])")
    return change


def criteria_from_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Criteria from separately given fields (the --id/--ip/... options); None means "not
    given". Addresses are normalised as in a search value."""
    criteria: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in CRITERIA_FIELDS:
            raise ValueError(f"unknown search field {name!r}")
        if value is None:
            continue
        if name in ("ip", "replication_ip"):
            try:
                value = normalise_ip(str(value))
            except InvalidDevice as err:
                raise ValueError(str(err)) from None
        elif name in _INT_CRITERIA:
            value = int(value)
        elif name == "weight":
            value = float(value)
        else:
            value = str(value)
        criteria[name] = value
    return criteria


def matches(device: Device, criteria: dict[str, Any]) -> bool:
    """Whether `device` fits every criterion: meta is a substring match (as in Swift), the rest
    must be equal."""
    for name, wanted in criteria.items():
        if name not in CRITERIA_FIELDS:
            raise ValueError(f"unknown search field {name!r}")
        have = getattr(device, name)
        if name == "meta":
            if str(wanted) not in have:
                return False
        elif have != wanted:
            return False
    return True


def format_device(device: Device) -> str:
    """Swift's `format_device`: like Device.describe but always with the `_"<meta>"` suffix."""
    return (f"d{device.id}r{device.region}z{device.zone}-"
            f"{format_address(device.ip, device.port)}"
            f"R{format_address(device.replication_ip, device.replication_port)}"
            f'/{device.device}_"{device.meta}"')


def format_criteria(criteria: dict[str, Any]) -> str:
    """Criteria written back as a search value (for messages)."""
    text = ""
    for marker, field in (("d", "id"), ("r", "region"), ("z", "zone")):
        if field in criteria:
            text += f"{marker}{criteria[field]}"
    if "ip" in criteria:
        ip = criteria["ip"]
        text += f"-[{ip}]" if ":" in ip else f"-{ip}"
    if "port" in criteria:
        text += f":{criteria['port']}"
    if "replication_ip" in criteria or "replication_port" in criteria:
        text += "R"
        if "replication_ip" in criteria:
            ip = criteria["replication_ip"]
            text += f"[{ip}]" if ":" in ip else ip
        if "replication_port" in criteria:
            text += f":{criteria['replication_port']}"
    if "device" in criteria:
        text += f"/{criteria['device']}"
    if "meta" in criteria:
        text += f"_{criteria['meta']}"
    if "weight" in criteria:
        text += f" (weight {criteria['weight']:g})"
    return text
