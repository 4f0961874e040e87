"""Functional tests of bin/ringstack-ring-builder: the real command run as a subprocess.

Covers every command in its Swift argument forms, the text and --json output, exit statuses,
the files written (builder, ring, backups/), and that bad input is one `error:` line with exit
status 2. One shared rebalanced ring (part power 10) is built once and copied per test.
"""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ring.builder_file import load_builder
from ring.ring_data import RingData

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bin" / "ringstack-ring-builder"
DEVICES = ["r1z1-127.0.0.1:6200/sdb1", "r1z2-127.0.0.2:6200/sdb2",
           "r1z3-127.0.0.3:6200/sdb3", "r1z4-127.0.0.4:6200/sdb4"]
SEED = "1"


def rb(cwd: Path, *args: str, stderr: int | None = subprocess.PIPE
       ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=stderr, timeout=120, check=False)


def rb_json(cwd: Path, *args: str, status: int = 0) -> dict:
    result = rb(cwd, *args, "--json")
    assert result.returncode == status, result.stderr
    return json.loads(result.stdout)


def assert_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit 2 with exactly one `error:` line on stderr and no traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def backups(directory: Path, suffix: str) -> list[Path]:
    return sorted((directory / "backups").glob(f"*.{suffix}"))


def run_many(cwd: Path, calls: Sequence[Sequence[str]]) -> list[subprocess.CompletedProcess]:
    """Independent calls (reads, or failures that write nothing) run side by side."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda args: rb(cwd, *args), calls))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A directory with object.builder and object.ring: 4 devices in 4 zones, rebalanced."""
    directory = tmp_path_factory.mktemp("built")
    outputs = {}
    for name, args in (("create", ["create", "10", "3", "1"]),
                       ("add", ["add", *[x for dev in DEVICES for x in (dev, "100")]]),
                       ("rebalance", ["rebalance", "--seed", SEED])):
        result = rb(directory, "object.builder", *args)
        assert result.returncode == 0, result.stderr
        outputs[name] = result.stdout
    return directory, outputs


@pytest.fixture
def ring_dir(built: tuple[Path, dict[str, str]], tmp_path: Path) -> Path:
    target = tmp_path / "rings"
    shutil.copytree(built[0], target)
    return target


# ---- create, add, rebalance, show ---------------------------------------------------------

def test_create_add_rebalance_write_builder_ring_and_backups(
        built: tuple[Path, dict[str, str]]) -> None:
    directory, out = built
    assert "1024 partitions" in out["create"]
    assert out["add"].splitlines() == [
        f'Device d{n - 1}r1z{n}-127.0.0.{n}:6200R127.0.0.{n}:6200/sdb{n}_"" with 100.0 weight '
        f"got id {n - 1}" for n in range(1, 5)]
    lines = out["rebalance"].splitlines()
    assert lines[0] == ("Reassigned 1024 (100.00%) partitions. Balance is now 0.00.  "
                        "Dispersion is now 0.00")
    assert re.fullmatch(r"Moved 3072 replica slots in \d+\.\d\d seconds\.", lines[1])
    ring = RingData.load(str(directory / "object.ring"))
    assert ring.part_power == 10 and ring.replica_count == 3
    assert [d.device for d in ring.devices if d] == ["sdb1", "sdb2", "sdb3", "sdb4"]
    for row in ring.replica2part2dev:
        assert len(row) == 1024
    builder = load_builder(str(directory / "object.builder"))
    assert builder.assignment is not None and builder.id == ring.builder_id
    # add and rebalance each kept the builder they replaced; there was no ring before
    assert len(backups(directory, "builder")) == 2
    assert backups(directory, "ring") == []


def test_show_text_and_json(ring_dir: Path) -> None:
    result, as_json = run_many(ring_dir, [["object.builder"], ["object.builder", "--json"]])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"object\.builder, build version \d+, id [0-9a-f]{32}", lines[0])
    assert lines[1] == ("1024 partitions, 3.000000 replicas, 1 regions, 4 zones, 4 devices, "
                        "0.00 balance, 0.00 dispersion")
    assert re.fullmatch(r"The minimum number of hours before a partition can be reassigned is 1 "
                        r"\(0:[0-5]\d:[0-5]\d remaining\)", lines[2])
    assert lines[3] == "The overload factor is unlimited (dispersion first)"
    assert lines[4] == "Ring file object.ring is up-to-date"
    header, rows = lines[5], lines[6:]
    assert header.split() == ["Devices:", "id", "region", "zone", "ip", "address:port",
                              "replication", "ip:port", "name", "weight", "partitions",
                              "balance", "flags", "meta"]
    assert len(rows) == 4
    for row in rows:
        # right-aligned numbers end under the end of their heading
        for heading, cell in (("id", r"\d+"), ("weight", r"100\.00"), ("partitions", "768"),
                              ("balance", r"0\.00")):
            end = header.index(heading) + len(heading)
            assert re.fullmatch(cell, row[:end].split()[-1]), (heading, row)
        assert row.split()[3:6] in (
            [f"127.0.0.{n}:6200", f"127.0.0.{n}:6200", f"sdb{n}"] for n in range(1, 5))

    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert (doc["partitions"], doc["replicas"], doc["min_part_hours"]) == (1024, 3.0, 1)
    assert doc["overload"] is None and doc["ring_file_state"] == "up-to-date"
    assert 0 <= doc["min_part_seconds_left"] <= 3600
    assert [d["parts"] for d in doc["devices"]] == [768] * 4
    assert all(d["balance"] == 0 and not d["removed"] for d in doc["devices"])
    assert doc["devices"][0]["ip"] == "127.0.0.1" and doc["devices"][0]["device"] == "sdb1"


# ---- add forms ----------------------------------------------------------------------------

def test_add_long_form_ipv6_meta_and_search_by_ipv6(ring_dir: Path) -> None:
    result = rb(ring_dir, "object.builder", "add", "--region", "2", "--zone", "5", "--ip",
                "::1", "--port", "6200", "--replication-ip", "10.9.0.1", "--replication-port",
                "6300", "--device", "sdx", "--weight", "50", "--meta", "new box")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ('Device d4r2z5-[::1]:6200R10.9.0.1:6300/sdx_"new box" with 50.0 '
                             "weight got id 4\n")
    result = rb(ring_dir, "object.builder", "add", "z6-[::2]:6201/sdy_m", "10",
                "r3z7-10.0.0.7:6202R10.0.1.7:6302/sdz", "20")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        'Device d5r1z6-[::2]:6201R[::2]:6201/sdy_"m" with 10.0 weight got id 5',
        'Device d6r3z7-10.0.0.7:6202R10.0.1.7:6302/sdz_"" with 20.0 weight got id 6']
    doc = rb_json(ring_dir, "object.builder", "search", "-[::1]:6200")
    assert [(d["id"], d["region"], d["meta"]) for d in doc["devices"]] == [(4, 2, "new box")]


# ---- remove, set_weight, set_info ---------------------------------------------------------

def test_remove_needs_yes_for_several_matches_then_rebalance_drops_it(ring_dir: Path) -> None:
    builder_before = (ring_dir / "object.builder").read_bytes()
    result = rb(ring_dir, "object.builder", "remove", "-127.0.0.1", "r1")
    assert_error(result, "'r1' matched 4 devices", "--yes")
    assert result.stdout.splitlines()[0] == "Matched more than one device:"
    assert len(result.stdout.splitlines()) == 5
    assert (ring_dir / "object.builder").read_bytes() == builder_before

    result = rb(ring_dir, "object.builder", "remove", "--zone", "4", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ('d3r1z4-127.0.0.4:6200R127.0.0.4:6200/sdb4_"" marked for removal '
                             "and will be removed next rebalance.\n")
    lines = rb(ring_dir, "object.builder").stdout.splitlines()
    assert lines[4].startswith("Ring file object.ring is obsolete")
    assert lines[-1].split()[0] == "3" and lines[-1].split()[-1] == "DEL"
    assert rb(ring_dir, "object.builder", "pretend_min_part_hours_passed").returncode == 0
    rings_before = len(backups(ring_dir, "ring"))
    result = rb(ring_dir, "object.builder", "rebalance", "--seed", "2")
    assert result.returncode == 0, result.stderr
    assert re.match(r"Reassigned \d+ \(\d+\.\d\d%\) partitions\. Balance is now 0\.00\.  "
                    r"Dispersion is now 0\.00", result.stdout)
    assert 'Removed device d3r1z4-127.0.0.4:6200R127.0.0.4:6200/sdb4_""' in result.stdout
    ring = RingData.load(str(ring_dir / "object.ring"))
    assert all(3 not in row for row in ring.replica2part2dev)
    assert len(backups(ring_dir, "ring")) == rings_before + 1


def test_set_weight_both_forms_then_rebalance_follows_weights(ring_dir: Path) -> None:
    result = rb(ring_dir, "object.builder", "set_weight", "d0", "80", "z2-127.0.0.2", "90.5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        'd0r1z1-127.0.0.1:6200R127.0.0.1:6200/sdb1_"" weight set to 80.0',
        'd1r1z2-127.0.0.2:6200R127.0.0.2:6200/sdb2_"" weight set to 90.5']
    doc = rb_json(ring_dir, "object.builder", "set_weight", "--id", "3", "--yes", "95")
    assert [d["weight"] for d in doc["updated"]] == [95.0]

    assert rb(ring_dir, "object.builder", "pretend_min_part_hours_passed").returncode == 0
    doc = rb_json(ring_dir, "object.builder", "rebalance", "--seed", "3")
    assert set(doc) >= {"parts_moved", "slots_moved", "balance", "dispersion", "seconds",
                        "removed_devices"}
    assert doc["parts_moved"] > 0 and doc["slots_moved"] >= doc["parts_moved"]
    assert doc["removed_devices"] == [] and doc["dispersion"] == 0 and doc["saved"] is True
    devices = rb_json(ring_dir, "object.builder")["devices"]
    assert [d["weight"] for d in devices] == [80.0, 90.5, 100.0, 95.0]
    parts = [d["parts"] for d in devices]
    assert parts[0] < parts[1] < parts[3] < parts[2] and sum(parts) == 3072


def test_set_info_both_forms_then_rebalance_writes_the_change(ring_dir: Path) -> None:
    result = rb(ring_dir, "object.builder", "set_info", "d1", "10.0.0.9:6201R10.1.0.9:6301/sdc_ssd")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ('Device d1r1z2-127.0.0.2:6200R127.0.0.2:6200/sdb2_"" is now '
                             'd1r1z2-10.0.0.9:6201R10.1.0.9:6301/sdc_"ssd"\n')
    result = rb(ring_dir, "object.builder", "set_info", "--id", "2", "--change-port", "7000",
                "--change-meta", "moved")
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith(
        'is now d2r1z3-127.0.0.3:7000R127.0.0.3:7000/sdb3_"moved"')
    # Addresses do not change placement: as with swift, write_ring publishes them directly.
    result = rb(ring_dir, "object.builder", "write_ring")
    assert result.returncode == 0, result.stderr
    ring = RingData.load(str(ring_dir / "object.ring"))
    assert (ring.devices[1].ip, ring.devices[1].port, ring.devices[1].device) == \
        ("10.0.0.9", 6201, "sdc")
    assert ring.devices[2].meta == "moved"


# ---- settings -----------------------------------------------------------------------------

def test_set_replicas_min_part_hours_and_overload(ring_dir: Path) -> None:
    cases = [
        (["set_replicas", "3.5"], 0, "The replica count is now 3.500000.", ("replicas", 3.5)),
        (["set_min_part_hours", "2"], 0,
         "The minimum number of hours before a partition can be reassigned is now set to 2",
         ("min_part_hours", 2)),
        (["set_overload", "0.1"], 0, "The overload factor is now 10.00% (0.100000)",
         ("overload", 0.1)),
        (["set_overload", "25%"], 0, "The overload factor is now 25.00% (0.250000)",
         ("overload", 0.25)),
        (["set_overload", "5"], 1, "!?! Warning overload is greater than 100% !?!",
         ("overload", 5.0)),
        (["set_overload", "unlimited"], 0,
         "The overload factor is now unlimited (dispersion first)", ("overload", None)),
        (["set_overload", "none", "--json"], 0, "{", ("overload", None)),
    ]
    # each change on its own copy, so that they can run side by side
    copies = []
    for index in range(len(cases)):
        copies.append(ring_dir.parent / f"copy{index}")
        shutil.copytree(ring_dir, copies[-1])
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda pair: rb(pair[0], "object.builder", *pair[1][0]),
                                zip(copies, cases, strict=True)))
    for directory, (args, status, first, (field, value)), result in zip(copies, cases, results,
                                                                        strict=True):
        assert result.returncode == status, (args, result.stderr)
        assert result.stdout.splitlines()[0] == first
        assert getattr(load_builder(str(directory / "object.builder")), field) == value, args
    assert json.loads(results[-1].stdout) == {"overload": None}


# ---- rebalance ----------------------------------------------------------------------------

def test_rebalance_with_nothing_to_move_warns_and_saves_nothing(ring_dir: Path) -> None:
    builder_before = (ring_dir / "object.builder").read_bytes()
    ring_before = (ring_dir / "object.ring").read_bytes()
    saved = len(backups(ring_dir, "builder"))
    result = rb(ring_dir, "object.builder", "rebalance")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "No partitions could be reassigned."
    # min_part_hours counts whole hours, so the wait ends at the next hour boundary
    assert re.fullmatch(r"The time between rebalances must be at least min_part_hours: 1 hours "
                        r"\(0:[0-5]\d:[0-5]\d remaining\)", lines[1]) \
        or lines[1] == "There is no need to do so at this time"
    assert (ring_dir / "object.builder").read_bytes() == builder_before
    assert (ring_dir / "object.ring").read_bytes() == ring_before
    assert len(backups(ring_dir, "builder")) == saved

    doc = rb_json(ring_dir, "object.builder", "rebalance", "--force", "--seed", "5")
    assert doc["saved"] is True and doc["parts_moved"] == 0 and doc["seed"] == 5
    assert len(backups(ring_dir, "builder")) == saved + 1
    assert len(backups(ring_dir, "ring")) == 1


def test_rebalance_saves_but_warns_when_weights_cannot_be_met(tmp_path: Path) -> None:
    """Dispersion comes first: a zone with most of the weight still gets one replica."""
    assert rb(tmp_path, "object.builder", "create", "6", "3", "1").returncode == 0
    assert rb(tmp_path, "object.builder", "add", "z1-10.0.0.1:6200/sdb", "100",
              "z2-10.0.0.2:6200/sdb", "100", "z3-10.0.0.3:6200/sdb", "300",
              "z3-10.0.0.3:6200/sdc", "300").returncode == 0
    result = rb(tmp_path, "object.builder", "rebalance", "--seed", SEED)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ("Reassigned 64 (100.00%) partitions. Balance is now 166.67.  "
                        "Dispersion is now 0.00")
    assert "NOTE: Balance of 166.67 indicates you should push this ring" in result.stdout
    assert RingData.load(str(tmp_path / "object.ring")).part_power == 6


def read_until_closed(fd: int) -> bytes:
    data = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:          # EIO once the last writer has closed the pty
            return data
        if not chunk:
            return data
        data += chunk


def test_progress_on_big_rings_goes_to_stderr(tmp_path: Path) -> None:
    """2**16 partitions is where the progress display starts (the only big ring here)."""
    assert rb(tmp_path, "big.builder", "create", "16", "3", "1").returncode == 0
    pairs = [x for dev in DEVICES for x in (dev, "100")]
    assert rb(tmp_path, "big.builder", "add", *pairs).returncode == 0
    result = rb(tmp_path, "big.builder", "rebalance", "--seed", SEED)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["rebalance: gathering", "rebalance: placing"]
    assert result.stdout.startswith("Reassigned 65536 (100.00%) partitions.")

    primary, secondary = pty.openpty()
    with ThreadPoolExecutor(max_workers=1) as pool:
        drawn = pool.submit(read_until_closed, primary)   # a full pty would block the child
        try:
            result = rb(tmp_path, "big.builder", "rebalance", "--force", stderr=secondary)
        finally:
            os.close(secondary)
        text = drawn.result(timeout=60).decode()
    os.close(primary)
    assert result.returncode == 0
    assert "\r[" + "#" * 30 + "] placing" in text
    assert "\r[" + " " * 30 + "] gathering" in text


# ---- reports ------------------------------------------------------------------------------

def test_dispersion(ring_dir: Path) -> None:
    result, verbose, filtered = run_many(ring_dir, [
        ["object.builder", "dispersion"], ["object.builder", "dispersion", "--verbose"],
        ["object.builder", "dispersion", "r1z2", "--json"]])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Dispersion is 0.000000, Balance is 0.000000, Overload is unlimited"
    assert lines[1] == "Required overload is 0.000000%"
    assert set(lines[2]) == {"-"} and lines[3].split() == ["Tier", "Parts", "%", "Max", "0",
                                                           "1", "2", "3"]
    assert [line.split() for line in lines[5:]] == [
        ["r1", "1024", "0.00", "3", "0", "0", "0", "1024"],
        *[[f"r1z{n}", "768", "0.00", "1", "256", "768", "0", "0"] for n in range(1, 5)]]

    tiers = [line.split()[0] for line in verbose.stdout.splitlines()[5:]]
    assert "r1z1-127.0.0.1" in tiers and "r1z4-127.0.0.4/d3" in tiers and len(tiers) == 13

    doc = json.loads(filtered.stdout)
    assert doc["dispersion"] == 0 and doc["worst_tier"] is None
    assert [t["tier"] for t in doc["tiers"]] == ["r1z2", "r1z2-127.0.0.2", "r1z2-127.0.0.2/d1"]
    assert doc["tiers"][0]["histogram"] == [256, 768, 0, 0]


def test_list_parts(ring_dir: Path) -> None:
    result, by_zone, two = run_many(ring_dir, [
        ["object.builder", "list_parts", "d0"],
        ["object.builder", "list_parts", "--zone", "1", "--json"],
        ["object.builder", "list_parts", "d0", "d1", "--json"]])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Partition", "Matches"]
    assert len(lines) == 1 + 768
    ring = RingData.load(str(ring_dir / "object.ring"))
    on_d0 = {p for row in ring.replica2part2dev for p, dev in enumerate(row) if dev == 0}
    assert {int(line.split()[0]) for line in lines[1:]} == on_d0
    assert all(line.split()[1] == "1" for line in lines[1:])

    doc = json.loads(by_zone.stdout)
    assert doc["devices"] == [0] and len(doc["partitions"]) == 768
    doc = json.loads(two.stdout)
    assert doc["partitions"][0]["matches"] == 2       # most matches first
    assert sum(p["matches"] for p in doc["partitions"]) == 2 * 768


def test_search(ring_dir: Path) -> None:
    result, by_device, nothing = run_many(ring_dir, [
        ["object.builder", "search", "z1"],
        ["object.builder", "search", "--device", "sdb3", "--json"],
        ["object.builder", "search", "z9"]])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Devices:") and len(lines) == 2
    assert lines[1].split()[:6] == ["0", "1", "1", "127.0.0.1:6200", "127.0.0.1:6200", "sdb1"]
    doc = json.loads(by_device.stdout)
    assert [(d["id"], d["parts"]) for d in doc["devices"]] == [(2, 768)]
    assert_error(nothing, "'z9' matched no devices")


def test_validate_and_write_ring(ring_dir: Path, tmp_path: Path) -> None:
    validate, validate_json = run_many(ring_dir, [["object.builder", "validate"],
                                                  ["object.builder", "validate", "--json"]])
    assert (validate.returncode, validate.stdout) == (0, "Ring is valid\n")
    assert json.loads(validate_json.stdout) == {"valid": True}
    result = rb(ring_dir, "object.builder", "write_ring")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "Wrote object.ring"
    assert len(backups(ring_dir, "ring")) == 1
    RingData.load(str(ring_dir / "object.ring"))

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert rb(fresh, "object.builder", "create", "4", "1", "0").returncode == 0
    show, validate, write = run_many(fresh, [["object.builder"],
                                             ["object.builder", "validate"],
                                             ["object.builder", "write_ring"]])
    assert "Ring file object.ring not found, probably it hasn't been written yet" in show.stdout
    assert "16 partitions, 1.000000 replicas, 0 regions, 0 zones, 0 devices" in show.stdout
    assert_error(validate, "not been rebalanced")
    assert_error(write, "rebalance")
    assert not (fresh / "object.ring").exists()


# ---- help and bad input -------------------------------------------------------------------

def test_help_lists_every_command(tmp_path: Path) -> None:
    result, command = run_many(tmp_path, [["--help"], ["object.builder", "set_info", "-h"]])
    assert result.returncode == 0 and result.stderr == ""
    for name in ("create", "add", "remove", "set_weight", "set_info", "set_replicas",
                 "set_min_part_hours", "set_overload", "rebalance", "validate", "dispersion",
                 "list_parts", "search", "pretend_min_part_hours_passed", "write_ring"):
        assert re.search(rf"^  {name}\b", result.stdout, re.MULTILINE), name
    assert command.returncode == 0
    assert "--change-replication-port" in command.stdout and "Search values" in command.stdout


def test_bad_input_is_one_error_line_and_exit_2(ring_dir: Path) -> None:
    (ring_dir / "corrupt.builder").write_bytes(b"RSBUILD\x00" + b"\x00" * 40)
    (ring_dir / "text.builder").write_text("this is not a ring builder file at all\n" * 3)
    cases = [
        ([], "no builder file given"),
        (["object.builder", "frobnicate"], "unknown command 'frobnicate'"),
        (["create", "object.builder"], "the builder file comes first"),
        (["missing.builder"], "missing.builder does not exist"),
        (["corrupt.builder"], "checksum mismatch"),
        (["text.builder", "search", "d0"], "not a RSBUILD file"),
        (["object.builder", "create", "10", "3", "1"], "already exists"),
        (["new.builder", "create", "10", "3"], "create takes <part_power>"),
        (["new.builder", "create", "ten", "3", "1"], "invalid part_power 'ten'"),
        (["new.builder", "create", "40", "3", "1"], "part power must be"),
        (["object.builder", "add", "z1-10.0.0.9:6200/sdq"], "pairs of <device-value> <weight>"),
        (["object.builder", "add", "z1-10.0.0.9/sdq", "100"], "needs a port"),
        (["object.builder", "add", "z1-10.0.0.9:6200/sdq", "heavy"], "invalid weight 'heavy'"),
        (["object.builder", "add", "z1-10.0.0.9:6200/sdq", "-1"], "weight must be"),
        (["object.builder", "add", "--zone", "1", "--ip", "10.0.0.9"], "--port, --device"),
        (["object.builder", "add", "--zone", "one"], "--zone: expected a whole number"),
        (["object.builder", "add", "--colour", "red"], "unknown option --colour"),
        (["object.builder", "add", "z5-10.0.0.5:6200/sdb", "100", "z1-127.0.0.1:6200/sdb1",
          "100"], "already uses 127.0.0.1:6200/sdb1"),     # all or nothing: z5 is not added
        (["object.builder", "remove"], "needs a search value"),
        (["object.builder", "remove", "q7"], "invalid search value 'q7'"),
        (["object.builder", "remove", "d9"], "'d9' matched no devices"),
        (["object.builder", "remove", "d1", "--id", "2"], "not both"),
        (["object.builder", "set_weight", "d0"], "pairs of <search-value> <weight>"),
        (["object.builder", "set_weight", "--id", "0"], "exactly one <weight>"),
        (["object.builder", "set_weight", "--region", "1", "95"], "matched 4 devices"),
        (["object.builder", "set_info", "d0", "sdc"], "invalid change value 'sdc'"),
        (["object.builder", "set_info", "--id", "0"], "--change-ip"),
        (["object.builder", "set_info", "d1", "127.0.0.1:6200/sdb1"], "already uses"),
        (["object.builder", "set_replicas", "many"], "invalid replica count"),
        (["object.builder", "set_replicas", "0.5"], "between 1 and 255"),
        (["object.builder", "set_min_part_hours", "1.5"], "invalid min_part_hours"),
        (["object.builder", "set_overload", "lots"], "invalid overload 'lots'"),
        (["object.builder", "set_overload", "-5%"], "overload must be"),
        (["object.builder", "rebalance", "--seed"], "--seed needs a value"),
        (["object.builder", "rebalance", "abc"], "invalid seed 'abc'"),
        (["object.builder", "dispersion", "r1["], "invalid tier filter"),
        (["object.builder", "validate", "now"], "validate takes no arguments"),
    ]
    before = (ring_dir / "object.builder").read_bytes()
    for (_, fragment), result in zip(cases, run_many(ring_dir, [c[0] for c in cases]),
                                        strict=True):
        assert_error(result, fragment)
        assert "Traceback" not in result.stdout + result.stderr
    assert (ring_dir / "object.builder").read_bytes() == before
    assert not (ring_dir / "new.builder").exists()


def test_errors_in_json_mode_are_a_json_document(ring_dir: Path) -> None:
    result = rb(ring_dir, "object.builder", "--json", "set_weight", "z1-127.0.0.1", "1", "r1",
                "2")
    assert_error(result, "matched 4 devices")
    doc = json.loads(result.stdout)
    assert "matched 4 devices" in doc["error"] and len(doc["matches"]) == 4
