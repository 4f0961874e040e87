"""Unit tests of ring.device_spec: Swift's add, search and change value strings, and matching."""

from __future__ import annotations

import pytest

from ring.device import Device
from ring.device_spec import (
    criteria_from_fields,
    format_criteria,
    format_device,
    matches,
    parse_add_value,
    parse_change_value,
    parse_search_value,
)


def device(**changes: object) -> Device:
    fields: dict[str, object] = dict(id=7, region=1, zone=2, ip="10.0.0.1", port=6200,
                                     device="sdb1", weight=100.0, meta="ssd rack4")
    fields.update(changes)
    return Device(**fields)  # type: ignore[arg-type]


# ---- add values ---------------------------------------------------------------------------

def test_add_value_full_form() -> None:
    assert parse_add_value("r2z3-10.0.0.1:6200R10.0.1.1:6300/sdb1_fast disk") == {
        "region": 2, "zone": 3, "ip": "10.0.0.1", "port": 6200, "replication_ip": "10.0.1.1",
        "replication_port": 6300, "device": "sdb1", "meta": "fast disk"}


def test_add_value_defaults_region_and_replication_address() -> None:
    fields = parse_add_value("z1-127.0.0.1:6200/sdb")
    assert fields["region"] == 1
    assert fields["replication_ip"] == "" and fields["replication_port"] == 0
    assert fields["meta"] == ""
    built = Device(id=0, weight=1.0, **fields)
    assert (built.replication_ip, built.replication_port) == ("127.0.0.1", 6200)


def test_add_value_ipv6_bracketed_and_normalised() -> None:
    fields = parse_add_value("z1-[FE80::0001]:6200R[::2]:6201/sdb")
    assert fields["ip"] == "fe80::1"
    assert (fields["replication_ip"], fields["replication_port"]) == ("::2", 6201)


def test_add_value_unbracketed_ipv6_splits_at_last_colon_like_swift() -> None:
    assert parse_add_value("z1-::1:6200/sdb")["ip"] == "::1"


def test_add_value_hostname_and_meta_with_underscores() -> None:
    fields = parse_add_value("z1-Storage1.Example.com:6200/sdb_a_b")
    assert fields["ip"] == "storage1.example.com"
    assert (fields["device"], fields["meta"]) == ("sdb", "a_b")


@pytest.mark.parametrize("text, reason", [
    ("", "expected z<zone>"),
    ("r1-10.0.0.1:6200/sdb", "expected z<zone>"),
    ("d1z1-10.0.0.1:6200/sdb", "expected z<zone>"),
    ("rxz1-10.0.0.1:6200/sdb", "number for the region"),
    ("z-10.0.0.1:6200/sdb", "number for the zone"),
    ("z1 10.0.0.1:6200/sdb", "expected '-<ip>:<port>'"),
    ("z1-10.0.0.1/sdb", "needs a port"),
    ("z1-10.0.0.1:abc/sdb", "invalid port"),
    ("z1-10.0.0.1:6200", "expected '/<device>'"),
    ("z1-10.0.0.1:6200/", "device name is empty"),
    ("z1-10.0.0.1:6200/_meta", "device name is empty"),
    ("z1-10.0.0.1:99999/sdb", "port must be 1-65535"),
    ("z1-10.0.0.1:0/sdb", "port must be 1-65535"),
    ("z1-999.0.0.1:6200/sdb", "not a valid ip"),
    ("z1-[::1:6200/sdb", "unclosed '['"),
    ("z1-[storage1]:6200/sdb", "not a valid ip"),     # brackets hold an IP, never a name
    ("z1-[::1]6200/sdb", "expected ':<port>'"),
    ("z1-10.0.0.1:6200R10.0.0.2/sdb", "replication ip needs a port"),
])
def test_add_value_errors(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match="invalid add value") as caught:
        parse_add_value(text)
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


# ---- search values ------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("d74", {"id": 74}),
    ("r1", {"region": 1}),
    ("z1-127.0.0.1", {"zone": 1, "ip": "127.0.0.1"}),
    ("r1z2-10.0.0.1:6200/sdb1", {"region": 1, "zone": 2, "ip": "10.0.0.1", "port": 6200,
                                 "device": "sdb1"}),
    ("-[::1]:6200", {"ip": "::1", "port": 6200}),
    ("-[0:0::1]", {"ip": "::1"}),
    ("10.0.0.1", {"ip": "10.0.0.1"}),
    ("-storage1.example.com", {"ip": "storage1.example.com"}),
    (":6200", {"port": 6200}),
    ("R10.0.1.1:6300", {"replication_ip": "10.0.1.1", "replication_port": 6300}),
    ("R:6300", {"replication_port": 6300}),
    ("/sdb1", {"device": "sdb1"}),
    ("_ssd", {"meta": "ssd"}),
    ("d1r2z3-10.0.0.1:6200R10.0.1.1:6300/sdb1_m_x", {
        "id": 1, "region": 2, "zone": 3, "ip": "10.0.0.1", "port": 6200,
        "replication_ip": "10.0.1.1", "replication_port": 6300, "device": "sdb1",
        "meta": "m_x"}),
])
def test_search_values(text: str, expected: dict) -> None:
    assert parse_search_value(text) == expected


@pytest.mark.parametrize("text, reason", [
    ("", "names no device"),
    ("d", "number for the id"),
    ("dx", "number for the id"),
    ("z1x", "unexpected 'x' at position 3"),
    ("sdb1", "unexpected 'sdb1'"),
    ("r1-", "expected an address"),
    ("-999.1.1.1", "not a valid ip"),
    ("-[zz]", "not a valid ip"),
    (":port", "number for the port"),
    ("/", "device name after '/' is empty"),
    ("d1 z2", "unexpected ' z2'"),
])
def test_search_value_errors(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match="invalid search value") as caught:
        parse_search_value(text)
    assert reason in str(caught.value)


# ---- change values ------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("10.0.0.2:6201/sdc_new", {"ip": "10.0.0.2", "port": 6201, "device": "sdc",
                               "meta": "new"}),
    ("10.0.0.2", {"ip": "10.0.0.2"}),
    (":6201", {"port": 6201}),
    ("[::2]:6201", {"ip": "::2", "port": 6201}),
    ("R10.0.1.2:6301", {"replication_ip": "10.0.1.2", "replication_port": 6301}),
    ("R:6301", {"replication_port": 6301}),
    ("/sdc", {"device": "sdc"}),
    ("_", {"meta": ""}),
    ("_rack 5", {"meta": "rack 5"}),
])
def test_change_values(text: str, expected: dict) -> None:
    assert parse_change_value(text) == expected


@pytest.mark.parametrize("text, reason", [
    ("", "changes nothing"),
    ("sdc", "unexpected 'sdc'"),           # a bare word is not taken for a hostname
    ("10.0.0.1x", "unexpected 'x'"),
    ("1.2.3.999", "not a valid ip"),
    (":x", "number for the port"),
    ("/", "device name after '/' is empty"),
])
def test_change_value_errors(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match="invalid change value") as caught:
        parse_change_value(text)
    assert reason in str(caught.value)


# ---- criteria and matching ----------------------------------------------------------------

def test_matches_every_given_field() -> None:
    dev = device(replication_ip="10.0.1.1", replication_port=6300)
    assert matches(dev, parse_search_value("d7r1z2-10.0.0.1:6200R10.0.1.1:6300/sdb1_ssd"))
    assert matches(dev, {})
    for other in ("d8", "r2", "z1", "-10.0.0.2", ":6201", "R10.0.1.2", "R:6301", "/sdb2",
                  "_hdd"):
        assert not matches(dev, parse_search_value(other)), other


def test_meta_is_a_substring_match() -> None:
    assert matches(device(), {"meta": "rack"})
    assert not matches(device(), {"meta": "rack5"})


def test_ipv6_search_matches_normalised_device_address() -> None:
    dev = device(ip="fe80::1")
    assert matches(dev, parse_search_value("-[FE80:0::1]"))


def test_criteria_from_fields_normalises_and_drops_missing() -> None:
    criteria = criteria_from_fields({"ip": "[::0:1]", "zone": "3", "port": None,
                                     "weight": "100", "meta": "ssd"})
    assert criteria == {"ip": "::1", "zone": 3, "weight": 100.0, "meta": "ssd"}
    assert matches(device(zone=3, ip="::1"), criteria)
    assert not matches(device(zone=3, ip="::1", weight=50.0), criteria)


def test_criteria_from_fields_errors() -> None:
    with pytest.raises(ValueError, match="unknown search field"):
        criteria_from_fields({"colour": "red"})
    with pytest.raises(ValueError, match="invalid ip"):
        criteria_from_fields({"ip": "not an ip"})
    with pytest.raises(ValueError, match="unknown search field"):
        matches(device(), {"colour": "red"})


def test_format_device_always_shows_meta_like_swift() -> None:
    assert format_device(device(meta="")) == \
        'd7r1z2-10.0.0.1:6200R10.0.0.1:6200/sdb1_""'
    assert format_device(device(ip="::1", replication_ip="::2", meta="x")) == \
        'd7r1z2-[::1]:6200R[::2]:6200/sdb1_"x"'


@pytest.mark.parametrize("text", ["d3", "r1z2-10.0.0.1:6200/sdb1", "-[::1]:6200",
                                  "R10.0.1.1:6300", "z1_ssd"])
def test_format_criteria_round_trips(text: str) -> None:
    criteria = parse_search_value(text)
    assert parse_search_value(format_criteria(criteria)) == criteria
