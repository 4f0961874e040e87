"""`ringstack-ring-builder`: swift-ring-builder's commands, arguments, output and exit statuses.

This module owns the command line only: reading arguments (Swift's positional device strings,
via ring.device_spec, and its long options), the text and `--json` output, the progress bar, and
which file is written when. What a ring is and how it is built belongs to ring.builder; the file
formats to ring.builder_file and ring.ring_data.

Exit statuses are Swift's: 0 success, 1 warning (the builder was not improved, or the result
needs attention), 2 error (nothing was written). Errors are one `error: ...` line on stderr.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from ring import device_spec
from ring.device import Device, format_address
from ring.device_spec import format_criteria, format_device
from ring.errors import RingBuilderError, RingError

if TYPE_CHECKING:
    from ring.builder import RingBuilder

# ring.builder and ring.builder_file (numpy planning, scipy max-flow) are imported where a
# builder is first needed, so that --help and argument errors answer without that start-up cost.

PROG = "ringstack-ring-builder"
EXIT_SUCCESS = 0
EXIT_WARNING = 1
EXIT_ERROR = 2
PROGRESS_MIN_PARTS = 1 << 16
PROGRESS_WIDTH = 30
BALANCE_WARNING = 1.0          # percent; above it a rebalance exits with a warning
OVERLOAD_WARNING = 1.0         # a plain factor above this is almost always a typo for a percent
DISPERSION_LEVELS = (1, 2)     # region and zone tiers; --verbose shows hosts and devices too


class CliError(Exception):
    """A command that cannot be done as asked: one message, exit status 2.

    `lines` are printed (to stdout) before the message, e.g. the devices a search matched;
    `data` goes into the JSON error document."""

    def __init__(self, message: str, lines: Sequence[str] = (),
                 data: dict[str, Any] | None = None):
        super().__init__(message)
        self.lines = list(lines)
        self.data = data or {}


@dataclasses.dataclass
class Outcome:
    """What a command reports: text lines, the JSON document, and the exit status."""

    lines: list[str]
    data: dict[str, Any]
    status: int = EXIT_SUCCESS


# ---- options ------------------------------------------------------------------------------

def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected a whole number, not {text!r}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected a number, not {text!r}") from None


@dataclasses.dataclass(frozen=True)
class Option:
    """One option; `convert` None makes it a flag."""

    dest: str
    names: tuple[str, ...]
    convert: Callable[[str], Any] | None
    help: str


SEARCH_OPTIONS = (
    Option("id", ("-u", "--id"), _integer, "device id"),
    Option("region", ("-r", "--region"), _integer, "region"),
    Option("zone", ("-z", "--zone"), _integer, "zone"),
    Option("ip", ("-i", "--ip"), str, "IP address or hostname"),
    Option("port", ("-p", "--port"), _integer, "port"),
    Option("replication_ip", ("-j", "--replication-ip"), str, "replication IP address"),
    Option("replication_port", ("-q", "--replication-port"), _integer, "replication port"),
    Option("device", ("-d", "--device"), str, "device name (e.g. sdb1)"),
    Option("meta", ("-m", "--meta"), str, "text contained in the device's meta"),
)
WEIGHT_OPTION = Option("weight", ("-w", "--weight"), _number, "device weight")
YES_OPTION = Option("yes", ("-y", "--yes"), None, "act on every device a search matches")
CHANGE_OPTIONS = (
    Option("ip", ("-I", "--change-ip"), str, "new IP address or hostname"),
    Option("port", ("-P", "--change-port"), _integer, "new port"),
    Option("replication_ip", ("-J", "--change-replication-ip"), str,
           "new replication IP address"),
    Option("replication_port", ("-Q", "--change-replication-port"), _integer,
           "new replication port"),
    Option("device", ("-D", "--change-device"), str, "new device name"),
    Option("meta", ("-M", "--change-meta"), str, "new meta"),
)
CHANGE_PREFIX = "change_"
ADD_OPTIONS = (*SEARCH_OPTIONS, WEIGHT_OPTION)
REBALANCE_OPTIONS = (
    Option("seed", ("-s", "--seed"), _integer, "seed for a reproducible rebalance"),
    Option("force", ("-f", "--force"), None, "save even if no partition could be reassigned"),
)
DISPERSION_OPTIONS = (
    Option("verbose", ("-v", "--verbose"), None, "show every tier: hosts and devices too"),
    Option("recalculate", ("--recalculate",), None,
           "accepted for compatibility (ringstack always computes the report afresh)"),
)
SEARCH_FIELDS = frozenset(o.dest for o in (*SEARCH_OPTIONS, WEIGHT_OPTION))


def parse_options(args: Sequence[str], options: Sequence[Option]
                  ) -> tuple[dict[str, Any], list[str]]:
    """Split `args` into option values and positional arguments.

    Only exact option names count as options, so a search value such as `-10.0.0.1` or
    `-[::1]:6200` stays positional; `--name=value` works for long names; `--` ends options."""
    by_name = {name: option for option in options for name in option.names}
    values: dict[str, Any] = {}
    positional: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            positional.extend(args[index:])
            break
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        option = by_name.get(name)
        if option is None:
            if arg.startswith("--"):
                raise CliError(f"unknown option {name}")
            positional.append(arg)
            continue
        if option.dest in values:
            raise CliError(f"{name} given twice")
        if option.convert is None:
            if eq:
                raise CliError(f"{name} takes no value")
            values[option.dest] = True
            continue
        if not eq:
            if index >= len(args):
                raise CliError(f"{name} needs a value")
            inline = args[index]
            index += 1
        try:
            values[option.dest] = option.convert(inline)
        except ValueError as err:
            raise CliError(f"{name}: {err}") from None
    return values, positional


# ---- context and shared helpers -----------------------------------------------------------

def ring_path_for(builder_path: str) -> str:
    """object.builder -> object.ring, beside it."""
    root = builder_path[:-len(".builder")] if builder_path.endswith(".builder") else builder_path
    return root + ".ring"


@dataclasses.dataclass
class Context:
    """The builder file a command works on."""

    builder_path: str
    stderr: TextIO

    @property
    def ring_path(self) -> str:
        return ring_path_for(self.builder_path)

    def load(self) -> RingBuilder:
        if not os.path.exists(self.builder_path):
            raise CliError(f"builder file {self.builder_path} does not exist (create it with: "
                           f"{PROG} {self.builder_path} create <part_power> <replicas> "
                           f"<min_part_hours>)")
        from ring.builder_file import load_builder
        return load_builder(self.builder_path)

    def save(self, builder: RingBuilder) -> None:
        from ring.builder_file import save_builder
        save_builder(builder, self.builder_path)


def _no_arguments(command: str, args: Sequence[str]) -> None:
    if args:
        raise CliError(f"{command} takes no arguments (got {' '.join(args)})")


def _remaining(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(seconds)))


def describe_overload(overload: float | None) -> str:
    if overload is None:
        return "unlimited (dispersion first)"
    return f"{overload * 100:.2f}% ({overload:.6f})"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], aligns: str,
                 gap: str = " ", indent: str = "") -> list[str]:
    """Columns padded to their widest cell; `aligns` has one 'l' or 'r' per column."""
    widths = [max(len(str(row[col])) for row in (headers, *rows)) for col in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = [str(cell).rjust(width) if align == "r" else str(cell).ljust(width)
                  for cell, width, align in zip(cells, widths, aligns, strict=True)]
        return (indent + gap.join(padded)).rstrip()

    return [line(headers)] + [line(row) for row in rows]


def _address_cells(pairs: Sequence[tuple[str, int]]) -> list[str]:
    """ip:port cells with the colons lined up, as swift-ring-builder prints them."""
    ips = [format_address(ip, port).rpartition(":")[0] for ip, port in pairs]
    ip_width = max((len(ip) for ip in ips), default=0)
    port_width = max((len(str(port)) for _, port in pairs), default=0)
    return [f"{ip:>{ip_width}}:{port:<{port_width}}" for ip, (_, port) in zip(ips, pairs,
                                                                              strict=True)]


def device_table(builder: RingBuilder, devices: Sequence[Device]) -> list[str]:
    parts = builder.parts_per_device()
    balance = builder.balance_per_device()
    addresses = _address_cells([(d.ip, d.port) for d in devices])
    replication = _address_cells([(d.replication_ip, d.replication_port) for d in devices])
    rows = [[str(d.id), str(d.region), str(d.zone), address, repl, d.device, f"{d.weight:.2f}",
             str(parts.get(d.id, 0)), f"{balance.get(d.id, 0.0):.2f}",
             "DEL" if d.id in builder.removed else "", d.meta]
            for d, address, repl in zip(devices, addresses, replication, strict=True)]
    headers = ["id", "region", "zone", "ip address:port", "replication ip:port", "name",
               "weight", "partitions", "balance", "flags", "meta"]
    table = render_table(headers, rows, "rrrlllrrrll", indent=" " * len("Devices: "))
    # Swift's header starts with "Devices:"; the rows are indented to keep the columns.
    table[0] = "Devices:" + table[0][len("Devices:"):]
    return table


def device_json(builder: RingBuilder, devices: Sequence[Device]) -> list[dict[str, Any]]:
    parts = builder.parts_per_device()
    balance = builder.balance_per_device()
    return [{**d.to_dict(), "parts": parts.get(d.id, 0), "balance": balance.get(d.id, 0.0),
             "removed": d.id in builder.removed} for d in devices]


def _criteria_list(values: dict[str, Any], positional: Sequence[str],
                   command: str) -> list[dict[str, Any]]:
    """Criteria from either search values or the search options (never both)."""
    fields = {name: value for name, value in values.items() if name in SEARCH_FIELDS}
    if fields and positional:
        raise CliError(f"{command}: give either search values or --id/--ip/... options, not both "
                       f"(unexpected {' '.join(positional)})")
    if fields:
        return [device_spec.criteria_from_fields(fields)]
    if not positional:
        raise CliError(f"{command} needs a search value (e.g. d3, z1-10.0.0.1, /sdb1) "
                       f"or search options (--id, --zone, --ip, ...)")
    return [device_spec.parse_search_value(value) for value in positional]


def _find(builder: RingBuilder, criteria: dict[str, Any]) -> list[Device]:
    found = builder.search(lambda d: device_spec.matches(d, criteria))
    if not found:
        raise CliError(f"search value {format_criteria(criteria)!r} matched no devices")
    return found


def _confirm_many(found: Sequence[Device], criteria: dict[str, Any], yes: bool,
                  verb: str) -> None:
    if len(found) > 1 and not yes:
        raise CliError(
            f"search value {format_criteria(criteria)!r} matched {len(found)} devices; "
            f"add --yes to {verb} all of them",
            lines=["Matched more than one device:"] + [f"    {format_device(d)}" for d in found],
            data={"matches": [d.to_dict() for d in found]})


def _pairs(positional: Sequence[str], command: str, first: str,
           second: str) -> list[tuple[str, str]]:
    if not positional or len(positional) % 2:
        raise CliError(f"{command} takes pairs of <{first}> <{second}> "
                       f"(got {len(positional)} argument{'s' if len(positional) != 1 else ''})")
    return list(zip(positional[::2], positional[1::2], strict=True))


def _parse_number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise CliError(f"invalid {what} {text!r}: expected a number") from None


def _parse_integer(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CliError(f"invalid {what} {text!r}: expected a whole number") from None


def ring_file_state(builder: RingBuilder, ring_path: str) -> tuple[str, str]:
    """('up-to-date' | 'obsolete' | 'missing' | 'invalid', the sentence swift prints)."""
    import numpy as np

    from ring.ring_data import RingData
    if not os.path.exists(ring_path):
        return "missing", f"Ring file {ring_path} not found, probably it hasn't been written yet"
    try:
        on_disk = RingData.load(ring_path)
    except RingError as err:
        return "invalid", f"Ring file {ring_path} is invalid: {err}"
    try:
        current = builder.ring_data()
    except RingBuilderError:
        return "obsolete", f"Ring file {ring_path} is obsolete (the builder needs a rebalance)"
    # The version is left out: settings such as min_part_hours bump it without changing
    # anything a server would read from the ring.
    same = (on_disk.part_power == current.part_power
            and on_disk.builder_id == current.builder_id
            and on_disk.devices == current.devices
            and len(on_disk.replica2part2dev) == len(current.replica2part2dev)
            and all(np.array_equal(a, b) for a, b in zip(on_disk.replica2part2dev,
                                                         current.replica2part2dev, strict=True)))
    if same:
        return "up-to-date", f"Ring file {ring_path} is up-to-date"
    return "obsolete", f"Ring file {ring_path} is obsolete"


def write_ring_file(builder: RingBuilder, ring_path: str) -> str | None:
    """Write the ring, keeping the previous one in backups/; returns the backup's path."""
    from ring.builder_file import backup_existing
    ring = builder.ring_data()
    backup = backup_existing(ring_path)
    ring.save(ring_path)
    return backup


# ---- progress -----------------------------------------------------------------------------

class ProgressBar:
    """The `progress` callback of RingBuilder.rebalance: a redrawn bar on a terminal, one line
    per stage otherwise (so logs stay readable)."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        isatty = getattr(stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.stage: str | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.tty:
            filled = PROGRESS_WIDTH * done // total if total > 0 else PROGRESS_WIDTH
            filled = max(0, min(PROGRESS_WIDTH, filled))
            bar = "#" * filled + " " * (PROGRESS_WIDTH - filled)
            self.stream.write(f"\r[{bar}] {stage:<12}")
            self.stream.flush()
        elif stage != self.stage:
            self.stream.write(f"rebalance: {stage}\n")
            self.stream.flush()
        self.stage = stage

    def finish(self) -> None:
        if self.tty and self.stage is not None:
            self.stream.write("\n")
            self.stream.flush()


# ---- commands -----------------------------------------------------------------------------

def cmd_show(ctx: Context, args: Sequence[str]) -> Outcome:
    _no_arguments("show", args)
    builder = ctx.load()
    devices = sorted(builder.devices.values(), key=lambda d: d.id)
    regions = len({d.region for d in devices})
    zones = len({(d.region, d.zone) for d in devices})
    balance = builder.get_balance()
    try:
        dispersion: float | None = builder.get_dispersion()
        problem = None
    except RingBuilderError as err:
        # Dispersion is measured against the replica plan of the current devices, which may be
        # impossible (e.g. too few devices left); show must still work so it can be fixed.
        dispersion, problem = None, str(err)
    seconds_left = builder.min_part_seconds_left()
    state, state_line = ring_file_state(builder, ctx.ring_path)
    lines = [
        f"{ctx.builder_path}, build version {builder.version}, id {builder.id}",
        f"{builder.parts} partitions, {builder.replicas:.6f} replicas, {regions} regions, "
        f"{zones} zones, {len(devices)} devices, {balance:.2f} balance, "
        f"{'n/a' if dispersion is None else f'{dispersion:.2f}'} dispersion",
        f"The minimum number of hours before a partition can be reassigned is "
        f"{builder.min_part_hours} ({_remaining(seconds_left)} remaining)",
        f"The overload factor is {describe_overload(builder.overload)}",
        state_line,
    ]
    if problem:
        lines.append(f"The builder cannot be rebalanced as it is: {problem}")
    if devices:
        lines += device_table(builder, devices)
    data = {
        "builder_file": ctx.builder_path, "ring_file": ctx.ring_path, "ring_file_state": state,
        "id": builder.id, "version": builder.version, "part_power": builder.part_power,
        "partitions": builder.parts, "replicas": builder.replicas,
        "min_part_hours": builder.min_part_hours, "min_part_seconds_left": seconds_left,
        "overload": builder.overload, "regions": regions, "zones": zones,
        "balance": balance, "dispersion": dispersion,
        "problem": problem, "rebalanced": builder.assignment is not None,
        "devices_changed": builder.devices_changed,
        "devices": device_json(builder, devices),
    }
    return Outcome(lines, data)


def cmd_create(ctx: Context, args: Sequence[str]) -> Outcome:
    if len(args) != 3:
        raise CliError("create takes <part_power> <replicas> <min_part_hours>")
    from ring.builder import RingBuilder
    if os.path.exists(ctx.builder_path):
        raise CliError(f"{ctx.builder_path} already exists; refusing to overwrite it")
    directory = os.path.dirname(ctx.builder_path) or "."
    if not os.path.isdir(directory):
        raise CliError(f"directory {directory} does not exist")
    builder = RingBuilder(_parse_integer(args[0], "part_power"),
                          _parse_number(args[1], "replicas"),
                          _parse_integer(args[2], "min_part_hours"))
    ctx.save(builder)
    lines = [f"Created {ctx.builder_path}: {builder.parts} partitions, "
             f"{builder.replicas:.6f} replicas, min_part_hours {builder.min_part_hours}"]
    return Outcome(lines, {"builder_file": ctx.builder_path, "id": builder.id,
                           "part_power": builder.part_power, "replicas": builder.replicas,
                           "min_part_hours": builder.min_part_hours})


def _add_fields_from_options(values: dict[str, Any]) -> dict[str, Any]:
    missing = [f"--{name}" for name in ("zone", "ip", "port", "device", "weight")
               if name not in values]
    if missing:
        raise CliError(f"add needs {', '.join(missing)} (and optionally --region, "
                       f"--replication-ip, --replication-port, --meta, --id)")
    fields = dict(values)
    fields.setdefault("region", device_spec.DEFAULT_REGION)
    return fields


def cmd_add(ctx: Context, args: Sequence[str]) -> Outcome:
    values, positional = parse_options(args, ADD_OPTIONS)
    if values:
        if positional:
            raise CliError(f"add: give either <value> <weight> pairs or options, not both "
                           f"(unexpected {' '.join(positional)})")
        wanted = [_add_fields_from_options(values)]
    else:
        wanted = []
        for value, weight in _pairs(positional, "add", "device-value", "weight"):
            fields = device_spec.parse_add_value(value)
            fields["weight"] = _parse_number(weight, "weight")
            wanted.append(fields)
    builder = ctx.load()
    added = [builder.add_device(**fields) for fields in wanted]
    ctx.save(builder)
    lines = [f"Device {format_device(d)} with {d.weight} weight got id {d.id}" for d in added]
    return Outcome(lines, {"added": [d.to_dict() for d in added]})


def cmd_remove(ctx: Context, args: Sequence[str]) -> Outcome:
    values, positional = parse_options(args, (*SEARCH_OPTIONS, WEIGHT_OPTION, YES_OPTION))
    criteria_list = _criteria_list(values, positional, "remove")
    builder = ctx.load()
    removed: list[Device] = []
    for criteria in criteria_list:
        found = _find(builder, criteria)
        _confirm_many(found, criteria, values.get("yes", False), "remove")
        removed += [builder.remove_device(d.id) for d in found]
    ctx.save(builder)
    lines = [f"{format_device(d)} marked for removal and will be removed next rebalance."
             for d in removed]
    return Outcome(lines, {"removed": [d.to_dict() for d in removed]})


def cmd_set_weight(ctx: Context, args: Sequence[str]) -> Outcome:
    values, positional = parse_options(args, (*SEARCH_OPTIONS, YES_OPTION))
    if set(values) & SEARCH_FIELDS:
        if len(positional) != 1:
            raise CliError("set_weight with search options takes exactly one <weight>")
        pairs = [(_criteria_list(values, [], "set_weight")[0], positional[0])]
    else:
        pairs = [(device_spec.parse_search_value(search), weight)
                 for search, weight in _pairs(positional, "set_weight", "search-value", "weight")]
    builder = ctx.load()
    updated: list[Device] = []
    for criteria, weight_text in pairs:
        weight = _parse_number(weight_text, "weight")
        found = _find(builder, criteria)
        _confirm_many(found, criteria, values.get("yes", False), "change the weight of")
        updated += [builder.set_weight(d.id, weight) for d in found]
    ctx.save(builder)
    lines = [f"{format_device(d)} weight set to {d.weight}" for d in updated]
    return Outcome(lines, {"updated": [d.to_dict() for d in updated]})


def cmd_set_info(ctx: Context, args: Sequence[str]) -> Outcome:
    values, positional = parse_options(args, (*SEARCH_OPTIONS, WEIGHT_OPTION, *(
        dataclasses.replace(o, dest=CHANGE_PREFIX + o.dest) for o in CHANGE_OPTIONS),
        YES_OPTION))
    change = {name[len(CHANGE_PREFIX):]: value for name, value in values.items()
              if name.startswith(CHANGE_PREFIX)}
    if change or set(values) & SEARCH_FIELDS:
        if positional:
            raise CliError(f"set_info: give either <search-value> <change-value> pairs or "
                           f"options, not both (unexpected {' '.join(positional)})")
        if not change:
            raise CliError("set_info needs at least one of --change-ip, --change-port, "
                           "--change-replication-ip, --change-replication-port, "
                           "--change-device, --change-meta")
        pairs = [(_criteria_list(values, [], "set_info")[0], change)]
    else:
        pairs = [(device_spec.parse_search_value(search), device_spec.parse_change_value(new))
                 for search, new in _pairs(positional, "set_info", "search-value", "change-value")]
    builder = ctx.load()
    lines, changes = [], []
    for criteria, new in pairs:
        found = _find(builder, criteria)
        _confirm_many(found, criteria, values.get("yes", False), "change")
        for device in found:
            after = builder.set_info(device.id, **new)
            lines.append(f"Device {format_device(device)} is now {format_device(after)}")
            changes.append({"before": device.to_dict(), "after": after.to_dict()})
    ctx.save(builder)
    return Outcome(lines, {"updated": changes})


def cmd_set_replicas(ctx: Context, args: Sequence[str]) -> Outcome:
    if len(args) != 1:
        raise CliError("set_replicas takes one <replicas> (e.g. 3 or 3.5)")
    replicas = _parse_number(args[0], "replica count")
    builder = ctx.load()
    builder.set_replicas(replicas)
    ctx.save(builder)
    return Outcome([f"The replica count is now {builder.replicas:.6f}.",
                    "The change will take effect after the next rebalance."],
                   {"replicas": builder.replicas})


def cmd_set_min_part_hours(ctx: Context, args: Sequence[str]) -> Outcome:
    if len(args) != 1:
        raise CliError("set_min_part_hours takes one <hours>")
    hours = _parse_integer(args[0], "min_part_hours")
    builder = ctx.load()
    builder.set_min_part_hours(hours)
    ctx.save(builder)
    return Outcome([f"The minimum number of hours before a partition can be reassigned is now "
                    f"set to {builder.min_part_hours}"],
                   {"min_part_hours": builder.min_part_hours})


def parse_overload(text: str) -> float | None:
    """`0.1`, `10%`, or `none`/`unlimited` (no limit: dispersion always comes first)."""
    value = text.strip()
    if value.lower() in ("none", "unlimited"):
        return None
    percent = value.endswith("%")
    try:
        number = float(value.rstrip("%"))
    except ValueError:
        raise ValueError(f"invalid overload {text!r}: expected a factor such as 0.1, a percentage "
                         f"such as 10%, or 'unlimited'") from None
    return number / 100.0 if percent else number


def cmd_set_overload(ctx: Context, args: Sequence[str]) -> Outcome:
    if len(args) != 1:
        raise CliError("set_overload takes one <overload> (0.1, 10% or unlimited)")
    overload = parse_overload(args[0])
    builder = ctx.load()
    builder.set_overload(overload)
    ctx.save(builder)
    lines = [f"The overload factor is now {describe_overload(builder.overload)}",
             "The change will take effect after the next rebalance."]
    status = EXIT_SUCCESS
    if overload is not None and overload > OVERLOAD_WARNING and not args[0].endswith("%"):
        lines.insert(0, "!?! Warning overload is greater than 100% !?!")
        status = EXIT_WARNING
    return Outcome(lines, {"overload": builder.overload}, status)


def cmd_rebalance(ctx: Context, args: Sequence[str]) -> Outcome:
    values, positional = parse_options(args, REBALANCE_OPTIONS)
    seed = values.get("seed")
    if positional:
        if len(positional) > 1 or seed is not None:
            raise CliError(f"rebalance takes at most one seed (unexpected {' '.join(positional)})")
        seed = _parse_integer(positional[0], "seed")
    builder = ctx.load()
    devices_changed = builder.devices_changed
    seconds_left = builder.min_part_seconds_left()
    removing = {d: format_device(builder.devices[d]) for d in sorted(builder.removed)}
    progress = ProgressBar(ctx.stderr) if builder.parts >= PROGRESS_MIN_PARTS else None
    try:
        result = builder.rebalance(seed=seed, progress=progress)
    finally:
        if progress:
            progress.finish()
    data: dict[str, Any] = {
        "parts_moved": result.parts_moved, "slots_moved": result.slots_moved,
        "balance": result.balance, "dispersion": result.dispersion,
        "seconds": result.seconds, "removed_devices": result.removed_devices,
        "over_quota_slots": result.over_quota_slots, "seed": builder.last_seed,
    }
    if not (result.parts_moved or result.removed_devices or devices_changed
            or values.get("force")):
        lines = ["No partitions could be reassigned."]
        if seconds_left > 0:
            lines.append(f"The time between rebalances must be at least min_part_hours: "
                         f"{builder.min_part_hours} hours ({_remaining(seconds_left)} remaining)")
        else:
            lines.append("There is no need to do so at this time")
        data.update(saved=False, min_part_seconds_left=seconds_left, warning=" ".join(lines))
        return Outcome(lines, data, EXIT_WARNING)
    builder.validate()
    ctx.save(builder)
    write_ring_file(builder, ctx.ring_path)
    lines = [f"Reassigned {result.parts_moved} ({100.0 * result.parts_moved / builder.parts:.2f}%)"
             f" partitions. Balance is now {result.balance:.2f}.  Dispersion is now "
             f"{result.dispersion:.2f}",
             f"Moved {result.slots_moved} replica slots in {result.seconds:.2f} seconds."]
    lines += [f"Removed device {removing.get(d, f'd{d}')}" for d in result.removed_devices]
    notes: list[str] = []
    if result.dispersion > 0:
        notes = [f"NOTE: Dispersion of {result.dispersion:.6f} indicates some parts are not "
                 "optimally dispersed.", "      You may want to adjust some device weights, "
                 "set an overload or review the dispersion report."]
    elif result.balance > BALANCE_WARNING:
        notes = [f"NOTE: Balance of {result.balance:.2f} indicates you should push this ring, "
                 "wait at least", f"      {builder.min_part_hours} hours, and rebalance/repush."]
    data["saved"] = True
    if not notes:
        return Outcome(lines, data)
    data["warning"] = " ".join(" ".join(note.split()) for note in notes)
    rule = "-" * 79
    return Outcome([*lines, rule, *notes, rule], data, EXIT_WARNING)


def cmd_validate(ctx: Context, args: Sequence[str]) -> Outcome:
    _no_arguments("validate", args)
    builder = ctx.load()
    builder.validate()
    return Outcome(["Ring is valid"], {"valid": True})


def cmd_dispersion(ctx: Context, args: Sequence[str]) -> Outcome:
    values, positional = parse_options(args, DISPERSION_OPTIONS)
    if len(positional) > 1:
        raise CliError("dispersion takes at most one tier filter (a regular expression such as "
                       "r1z1 or 'r1z1-.*')")
    try:
        pattern = re.compile(positional[0]) if positional else None
    except re.error as err:
        raise CliError(f"invalid tier filter {positional[0]!r}: {err}") from None
    builder = ctx.load()
    if builder.assignment is None:
        raise CliError(f"{ctx.builder_path} has no assignments; rebalance it first")
    report = [t for t in builder.dispersion_report()
              if pattern is None or pattern.match(t.tier)]
    shown = [t for t in report
             if values.get("verbose") or pattern is not None or t.level in DISPERSION_LEVELS]
    dispersion, balance = builder.get_dispersion(), builder.get_balance()
    required = builder.required_overload()
    overload = ("unlimited" if builder.overload is None
                else f"{builder.overload * 100:.2f}%")
    lines = [f"Dispersion is {dispersion:.6f}, Balance is {balance:.6f}, Overload is {overload}",
             f"Required overload is {required * 100:.6f}%"]
    worst = max(report, key=lambda t: t.percent_over, default=None)
    status = EXIT_SUCCESS
    if worst is not None and worst.percent_over > 0:
        lines.append(f"Worst tier is {worst.percent_over:.6f} ({worst.tier})")
        status = EXIT_WARNING
    if shown:
        width = max(len(t.histogram) for t in shown)
        headers = ["Tier", "Parts", "%", "Max", *(str(i) for i in range(width))]
        rows = [[t.tier, str(t.parts), f"{t.percent_over:.2f}", str(t.max_replicas),
                 *(str(n) for n in t.histogram), *([""] * (width - len(t.histogram)))]
                for t in shown]
        table = render_table(headers, rows, "l" + "r" * (len(headers) - 1), gap="  ")
        rule = "-" * max(len(line) for line in table)
        lines += [rule, table[0], rule, *table[1:]]
    data = {"dispersion": dispersion, "balance": balance, "overload": builder.overload,
            "required_overload": required,
            "worst_tier": worst.tier if worst is not None and worst.percent_over > 0 else None,
            "tiers": [{"tier": t.tier, "level": t.level, "parts": t.parts,
                       "parts_over": t.parts_over, "percent_over": t.percent_over,
                       "max_replicas": t.max_replicas, "histogram": t.histogram}
                      for t in shown]}
    return Outcome(lines, data, status)


def _matching_devices(ctx: Context, args: Sequence[str], command: str,
                      options: Sequence[Option]) -> tuple[RingBuilder, list[Device]]:
    """Every device matching any of the search values (no --yes: nothing is changed)."""
    values, positional = parse_options(args, options)
    criteria_list = _criteria_list(values, positional, command)
    builder = ctx.load()
    found: dict[int, Device] = {}
    for criteria in criteria_list:
        found.update((d.id, d) for d in _find(builder, criteria))
    return builder, [found[d] for d in sorted(found)]


def cmd_list_parts(ctx: Context, args: Sequence[str]) -> Outcome:
    builder, devices = _matching_devices(ctx, args, "list_parts",
                                         (*SEARCH_OPTIONS, WEIGHT_OPTION))
    if builder.assignment is None:
        raise CliError(f"{ctx.builder_path} has not been rebalanced yet; rebalance it first")
    parts = builder.partitions_on(d.id for d in devices)
    lines = render_table(["Partition", "Matches"], [[str(p), str(n)] for p, n in parts], "rr",
                         gap="   ")
    if not parts:
        lines.append("The matching devices hold no partitions.")
    return Outcome(lines, {"devices": [d.id for d in devices],
                           "partitions": [{"partition": p, "matches": n} for p, n in parts]})


def cmd_search(ctx: Context, args: Sequence[str]) -> Outcome:
    builder, devices = _matching_devices(ctx, args, "search", (*SEARCH_OPTIONS, WEIGHT_OPTION))
    return Outcome(device_table(builder, devices), {"devices": device_json(builder, devices)})


def cmd_pretend_min_part_hours_passed(ctx: Context, args: Sequence[str]) -> Outcome:
    _no_arguments("pretend_min_part_hours_passed", args)
    builder = ctx.load()
    builder.pretend_min_part_hours_passed()
    ctx.save(builder)
    return Outcome(["Every partition may be reassigned at the next rebalance "
                    "(min_part_hours treated as passed)."], {"min_part_seconds_left": 0})


def cmd_write_ring(ctx: Context, args: Sequence[str]) -> Outcome:
    _no_arguments("write_ring", args)
    builder = ctx.load()
    backup = write_ring_file(builder, ctx.ring_path)
    lines = [f"Wrote {ctx.ring_path}"]
    if backup:
        lines.append(f"The previous ring is kept as {backup}")
    return Outcome(lines, {"ring_file": ctx.ring_path, "backup": backup})


# ---- command table and help ---------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    run: Callable[[Context, Sequence[str]], Outcome]
    synopsis: tuple[str, ...]
    summary: str
    options: tuple[Option, ...] = ()


COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("default", cmd_show, ("",),
            "Show the builder: settings, whether the ring file is up to date, and the devices "
            "(`default` may be omitted)."),
    Command("create", cmd_create, ("create <part_power> <replicas> <min_part_hours>",),
            "Create a new builder file with 2**part_power partitions. Refuses to overwrite an "
            "existing file."),
    Command("add", cmd_add, (
        "add [r<region>]z<zone>-<ip>:<port>[R<r_ip>:<r_port>]/<device>_<meta> <weight> "
        "[<value> <weight> ...]",
        "add --region <region> --zone <zone> --ip <ip> --port <port> "
        "[--replication-ip <r_ip>] [--replication-port <r_port>] --device <device> "
        "--weight <weight> [--meta <meta>] [--id <id>]"),
        "Add devices (region defaults to 1; IPv6 in brackets, e.g. z1-[::1]:6200/sdb).",
        ADD_OPTIONS),
    Command("remove", cmd_remove, ("remove <search-value> [<search-value> ...] [--yes]",
                                   "remove --id <id> | --zone <zone> | ... [--yes]"),
            "Mark devices for removal; they give up their partitions at the next rebalance.",
            (*SEARCH_OPTIONS, WEIGHT_OPTION, YES_OPTION)),
    Command("set_weight", cmd_set_weight, (
        "set_weight <search-value> <weight> [<search-value> <weight> ...] [--yes]",
        "set_weight --id <id> | --zone <zone> | ... <weight> [--yes]"),
        "Change device weights; takes effect at the next rebalance.",
        (*SEARCH_OPTIONS, YES_OPTION)),
    Command("set_info", cmd_set_info, (
        "set_info <search-value> <ip>:<port>[R<r_ip>:<r_port>]/<device>_<meta> "
        "[<search-value> <change-value> ...] [--yes]",
        "set_info --id <id> | ... [--change-ip <ip>] [--change-port <port>] "
        "[--change-replication-ip <ip>] [--change-replication-port <port>] "
        "[--change-device <name>] [--change-meta <meta>] [--yes]"),
        "Change device addresses, names or meta; any part of the change value may be omitted "
        "(e.g. :6201, /sdc, _ssd). Rebalance afterwards to write the ring.",
        (*SEARCH_OPTIONS, WEIGHT_OPTION, *CHANGE_OPTIONS, YES_OPTION)),
    Command("set_replicas", cmd_set_replicas, ("set_replicas <replicas>",),
            "Change the replica count (fractions allowed, e.g. 3.5)."),
    Command("set_min_part_hours", cmd_set_min_part_hours, ("set_min_part_hours <hours>",),
            "Change how many hours must pass before a partition's replica is moved again."),
    Command("set_overload", cmd_set_overload, ("set_overload <overload>",),
            "Change how far devices may exceed their weight's share to improve dispersion: a "
            "factor (0.1), a percentage (10%), or unlimited/none (dispersion always first, "
            "the default)."),
    Command("rebalance", cmd_rebalance, ("rebalance [--seed <seed>] [--force]",),
            "Reassign partitions, then save the builder and write the ring file (the previous "
            "versions are kept in backups/). Exits 1 without saving if nothing could be moved "
            "(unless --force), and 1 after saving if balance or dispersion need attention.",
            REBALANCE_OPTIONS),
    Command("validate", cmd_validate, ("validate",),
            "Check the builder's assignment: every replica on a distinct, known device."),
    Command("dispersion", cmd_dispersion, ("dispersion [--verbose] [<tier-filter>]",),
            "Report how replicas are spread over regions and zones (--verbose: hosts and "
            "devices too). A tier filter is a regular expression matched against tier names "
            "(r1, r1z2, r1z2-10.0.0.1, r1z2-10.0.0.1/d7) and shows every tier it matches.",
            DISPERSION_OPTIONS),
    Command("list_parts", cmd_list_parts, ("list_parts <search-value> [<search-value> ...]",
                                           "list_parts --id <id> | --zone <zone> | ..."),
            "List the partitions with replicas on the matching devices, most replicas first.",
            (*SEARCH_OPTIONS, WEIGHT_OPTION)),
    Command("search", cmd_search, ("search <search-value> [<search-value> ...]",
                                   "search --id <id> | --zone <zone> | ..."),
            "Show the devices matching the search.", (*SEARCH_OPTIONS, WEIGHT_OPTION)),
    Command("pretend_min_part_hours_passed", cmd_pretend_min_part_hours_passed,
            ("pretend_min_part_hours_passed",),
            "Let the next rebalance move any partition, as if min_part_hours had passed."),
    Command("write_ring", cmd_write_ring, ("write_ring",),
            "Write the ring file from the (rebalanced) builder again."),
)}

SEARCH_HELP = """\
Search values (swift-ring-builder syntax; every part is optional, in this order):
  d<id> r<region> z<zone> -<ip> :<port> R<replication ip> :<replication port> /<device> _<meta>
  e.g. d74, z1-127.0.0.1, r1z2-10.0.0.1:6200/sdb1, -[::1]:6200, /sdb1_ssd (meta: substring)
  or the options --id --region --zone --ip --port --replication-ip --replication-port
  --device --meta --weight. A search that matches several devices needs --yes to change them."""
HELP_WIDTH = 92


def _wrap(text: str, indent: str, first: str = "") -> list[str]:
    return textwrap.wrap(text, HELP_WIDTH, initial_indent=first or indent,
                         subsequent_indent=indent, break_on_hyphens=False)


def usage() -> str:
    lines = [f"usage: {PROG} <builder_file> [<command> [<args>]] [--json]", ""]
    lines += _wrap("Build and change a ring like OpenStack's swift-ring-builder: the builder "
                   "file holds the devices and settings; rebalance writes <name>.ring beside "
                   "<name>.builder.", "")
    lines += ["", "Commands:"]
    for command in COMMANDS.values():
        for synopsis in command.synopsis:
            lines += _wrap(synopsis or "(no command, or default)", "      ", "  ")
        lines += _wrap(command.summary, "        ")
    lines += ["", SEARCH_HELP, "",
              "--json: print one JSON document instead of text (any command).",
              f"Exit status: {EXIT_SUCCESS} success, {EXIT_WARNING} warning, {EXIT_ERROR} error.",
              f"Details of one command: {PROG} <builder_file> <command> --help"]
    return "\n".join(lines)


def command_help(command: Command) -> str:
    lines = []
    for synopsis in command.synopsis:
        lines += _wrap(f"{PROG} <builder_file> {synopsis}".rstrip(), "       ", "usage: ")
    lines += [""] + _wrap(command.summary, "")
    options = [(", ".join(o.names) + ("" if o.convert is None else " <value>"), o.help)
               for o in command.options]
    options.append(("--json", "print one JSON document instead of text"))
    width = max(len(names) for names, _ in options)
    lines += ["", "Options:"] + [f"  {names:<{width}}  {text}" for names, text in options]
    if any(o.dest == "id" for o in command.options):
        lines += ["", SEARCH_HELP]
    return "\n".join(lines)


# ---- entry point --------------------------------------------------------------------------

def _json_default(value: Any) -> Any:
    """numpy scalars and arrays (the builder's counts) as plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


class Output:
    """Where results go: text lines, or one JSON document, on stdout; errors on stderr."""

    def __init__(self, as_json: bool, stdout: TextIO, stderr: TextIO):
        self.as_json = as_json
        self.stdout = stdout
        self.stderr = stderr

    def emit(self, outcome: Outcome) -> int:
        if self.as_json:
            self.stdout.write(json.dumps(outcome.data, indent=2, default=_json_default) + "\n")
        elif outcome.lines:
            self.stdout.write("\n".join(outcome.lines) + "\n")
        return outcome.status

    def error(self, message: str, lines: Sequence[str] = (),
              data: dict[str, Any] | None = None) -> int:
        message = " ".join(message.split())  # one line, whatever the exception text held
        if self.as_json:
            document = {"error": message, **(data or {})}
            self.stdout.write(json.dumps(document, indent=2, default=_json_default) + "\n")
        elif lines:
            self.stdout.write("\n".join(lines) + "\n")
        self.stderr.write(f"error: {message}\n")
        return EXIT_ERROR


def _run(args: list[str], out: Output) -> int:
    if not args:
        raise CliError(f"no builder file given (usage: {PROG} <builder_file> [<command> ...]; "
                       f"see {PROG} --help)")
    wants_help = any(arg in ("-h", "--help") for arg in args)
    if args[0] in ("-h", "--help", "help"):
        topic = COMMANDS.get(args[1]) if len(args) > 1 else None
        out.stdout.write((command_help(topic) if topic else usage()) + "\n")
        return EXIT_SUCCESS
    path, name, rest = args[0], (args[1] if len(args) > 1 else "default"), args[2:]
    if path in COMMANDS and not os.path.exists(path):
        raise CliError(f"the builder file comes first: {PROG} <builder_file> {path} ...")
    command = COMMANDS.get(name)
    if wants_help:
        out.stdout.write((command_help(command) if command else usage()) + "\n")
        return EXIT_SUCCESS
    if command is None:
        raise CliError(f"unknown command {name!r} (see {PROG} --help)")
    return out.emit(command.run(Context(path, out.stderr), rest))


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Run one ring-builder command; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    # --json is global and may appear anywhere, as an operator appends it to any command.
    as_json = "--json" in args
    args = [arg for arg in args if arg != "--json"]
    out = Output(as_json, stdout or sys.stdout, stderr or sys.stderr)
    try:
        return _run(args, out)
    except CliError as err:
        return out.error(str(err), err.lines, err.data)
    except (RingError, ValueError) as err:
        return out.error(str(err))
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep the interpreter's final flush
        # from reporting the same broken pipe again.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        return out.error(f"{where}{err.strerror or err}")


if __name__ == "__main__":
    sys.exit(main())
