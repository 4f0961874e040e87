"""Timestamps (Swift's wire format and ordering) and the config loader's typed getters."""

from __future__ import annotations

import pytest

from common.config import ConfigError, load_section
from common.constraints import Constraints
from common.timestamp import InvalidTimestamp, Timestamp


def test_timestamp_forms_and_order():
    stamp = Timestamp("1700000000.12345")
    assert stamp.normal == "1700000000.12345" and stamp.internal == "1700000000.12345"
    assert Timestamp("1700000000.1").normal == "1700000000.10000"
    assert Timestamp(1700000000.123456).normal == "1700000000.12346"
    with_offset = Timestamp(stamp, offset=10)
    assert with_offset.internal == "1700000000.12345_000000000000000a"
    assert Timestamp(with_offset.internal) == with_offset
    assert stamp < with_offset < Timestamp("1700000000.12346")
    assert stamp == "1700000000.12345" and stamp.http_date == "Tue, 14 Nov 2023 22:13:21 GMT"
    assert sorted([Timestamp(3), Timestamp(1), Timestamp(2)]) == [1, 2, 3]


@pytest.mark.parametrize("bad", ["", "abc", "-1", "1.2.3", "1e5", "12_zz", "nan"])
def test_bad_timestamps_are_refused(bad):
    with pytest.raises(InvalidTimestamp):
        Timestamp(bad)


def test_config_sections_defaults_and_typed_getters(tmp_path):
    path = tmp_path / "server.conf"
    path.write_text("[DEFAULT]\nbind_port = 6200\nworkers = 2\n\n[object-server]\n"
                    "workers = 4\nmount_check = yes\nratio = 0.5\nnames = a, b,\n c\n"
                    "bad_int = ten\n")
    conf = load_section(str(path), "object-server")
    assert conf.get_int("bind_port", 0) == 6200 and conf.get_int("workers", 1) == 4
    assert conf.get_bool("mount_check", False) is True
    assert conf.get_float("ratio", 1.0) == 0.5
    assert conf.get_list("names") == ["a", "b", "c"]
    assert conf.get_int("absent", 7) == 7
    with pytest.raises(ConfigError, match=r"\[object-server\] bad_int: not an integer"):
        conf.get_int("bad_int", 1)
    with pytest.raises(ConfigError, match="must be >= 5"):
        conf.get_int("workers", 1, minimum=5)
    with pytest.raises(ConfigError, match="no \\[proxy-server\\] section"):
        load_section(str(path), "proxy-server")
    with pytest.raises(ConfigError, match="cannot read"):
        load_section(str(tmp_path / "absent.conf"), "x")


def test_constraints_defaults_and_overrides(tmp_path):
    path = tmp_path / "ringstack.conf"
    path.write_text("[swift-constraints]\nmax_meta_count = 10\n")
    limits = Constraints.from_config(load_section(str(path), "swift-constraints"))
    assert limits.max_meta_count == 10 and limits.max_meta_overall_size == 4096
    assert limits.as_info()["valid_api_versions"] == ["v1", "v1.0"]
