"""storage_node.ondisk: which files of a hash directory count, and how metadata merges."""

from __future__ import annotations

import itertools
import random

import pytest

from common.timestamp import Timestamp
from storage_node.ondisk import (
    OnDiskState,
    file_name,
    get_ondisk_files,
    is_expired,
    merge_metadata,
    parse_file_name,
)

T1, T2, T3, T4 = (Timestamp(1_700_000_000 + i) for i in range(1, 5))


def name(ts: Timestamp, ext: str) -> str:
    return file_name(ts, ext)


def names_of(state: OnDiskState) -> tuple[str | None, str | None, str | None]:
    return (state.data_file.name if state.data_file else None,
            state.tombstone.name if state.tombstone else None,
            state.meta_file.name if state.meta_file else None)


# ---- parsing ----------------------------------------------------------------------------------

def test_parse_file_name_accepts_canonical_names_only():
    parsed = parse_file_name("1700000001.00000.data")
    assert parsed is not None and parsed.ext == ".data" and parsed.timestamp == T1
    offset = Timestamp(T1, offset=10)
    assert parse_file_name(offset.internal + ".ts").timestamp == offset
    for junk in ("1700000001.data", "1700000001.00000.tmp", "abc.data", ".lock",
                 "1700000001.00000", "hashes.pkl", "1700000001.0000.meta", ""):
        assert parse_file_name(junk) is None, junk


def test_file_name_rejects_unknown_extensions():
    assert file_name(T1, ".meta") == "1700000001.00000.meta"
    with pytest.raises(ValueError):
        file_name(T1, ".durable")


# ---- the rules --------------------------------------------------------------------------------

def test_empty_directory():
    state = get_ondisk_files([])
    assert names_of(state) == (None, None, None)
    assert not state.exists and not state.deleted and state.timestamp is None
    assert state.obsolete == () and state.unexpected == ()


def test_single_data():
    state = get_ondisk_files([name(T1, ".data")])
    assert names_of(state) == (name(T1, ".data"), None, None)
    assert state.exists and state.timestamp == T1 and state.obsolete == ()


def test_newest_data_wins_older_data_obsolete():
    state = get_ondisk_files([name(T1, ".data"), name(T3, ".data"), name(T2, ".data")])
    assert names_of(state)[0] == name(T3, ".data")
    assert set(state.obsolete) == {name(T1, ".data"), name(T2, ".data")}


def test_tombstone_newer_than_data_means_deleted():
    state = get_ondisk_files([name(T1, ".data"), name(T2, ".ts")])
    assert names_of(state) == (None, name(T2, ".ts"), None)
    assert state.deleted and not state.exists and state.timestamp == T2
    assert state.obsolete == (name(T1, ".data"),)


def test_data_newer_than_tombstone_wins():
    state = get_ondisk_files([name(T1, ".ts"), name(T2, ".data")])
    assert names_of(state) == (name(T2, ".data"), None, None)
    assert state.obsolete == (name(T1, ".ts"),)


def test_tombstone_wins_a_tie_with_data():
    state = get_ondisk_files([name(T2, ".data"), name(T2, ".ts")])
    assert names_of(state) == (None, name(T2, ".ts"), None)
    assert state.obsolete == (name(T2, ".data"),)


def test_meta_newer_than_data_counts():
    state = get_ondisk_files([name(T1, ".data"), name(T2, ".meta")])
    assert names_of(state) == (name(T1, ".data"), None, name(T2, ".meta"))
    assert state.timestamp == T2 and state.obsolete == ()


def test_only_newest_meta_counts():
    state = get_ondisk_files([name(T1, ".data"), name(T2, ".meta"), name(T3, ".meta")])
    assert names_of(state)[2] == name(T3, ".meta")
    assert state.obsolete == (name(T2, ".meta"),)


def test_meta_older_than_or_equal_to_data_is_obsolete():
    state = get_ondisk_files([name(T1, ".meta"), name(T2, ".data"), name(T2, ".meta")])
    assert names_of(state) == (name(T2, ".data"), None, None)
    assert set(state.obsolete) == {name(T1, ".meta"), name(T2, ".meta")}
    assert state.timestamp == T2


def test_meta_with_tombstone_is_obsolete():
    state = get_ondisk_files([name(T1, ".data"), name(T2, ".ts"), name(T3, ".meta")])
    assert names_of(state) == (None, name(T2, ".ts"), None)
    assert set(state.obsolete) == {name(T1, ".data"), name(T3, ".meta")}


def test_meta_between_data_and_newer_data_is_obsolete():
    state = get_ondisk_files([name(T1, ".data"), name(T2, ".meta"), name(T3, ".data")])
    assert names_of(state) == (name(T3, ".data"), None, None)
    assert set(state.obsolete) == {name(T1, ".data"), name(T2, ".meta")}


def test_orphan_meta_is_kept_but_not_an_object():
    state = get_ondisk_files([name(T1, ".meta"), name(T2, ".meta")])
    assert names_of(state) == (None, None, name(T2, ".meta"))
    assert not state.exists and state.obsolete == (name(T1, ".meta"),)


def test_unexpected_files_reported_never_obsolete():
    state = get_ondisk_files(["junk", name(T1, ".data"), ".lock", "x.tmp"])
    assert set(state.unexpected) == {"junk", ".lock", "x.tmp"}
    assert state.obsolete == ()


def test_reclaim_removes_old_tombstone_and_orphan_meta():
    assert get_ondisk_files([name(T1, ".ts")], reclaim_before=T2).obsolete == (
        name(T1, ".ts"),)
    assert get_ondisk_files([name(T3, ".ts")], reclaim_before=T2).tombstone is not None
    assert get_ondisk_files([name(T1, ".meta")], reclaim_before=T2).obsolete == (
        name(T1, ".meta"),)
    # Data is never reclaimed by age.
    state = get_ondisk_files([name(T1, ".data")], reclaim_before=T4)
    assert state.exists and state.obsolete == ()


def test_offsets_order_rewrites_at_one_instant():
    later = Timestamp(T1, offset=1)
    state = get_ondisk_files([name(T1, ".data"), name(later, ".data")])
    assert state.data_file.timestamp == later


def _oracle(names: list[str]) -> tuple[str | None, str | None, str | None, set[str]]:
    """A deliberately naive restatement of the rules, to check the real one against."""
    files = [parse_file_name(n) for n in names]
    durable = [f for f in files if f.ext in (".data", ".ts")]
    current = max(durable, key=lambda f: (f.timestamp, f.ext == ".ts"), default=None)
    metas = [f for f in files if f.ext == ".meta"]
    if current is None:
        meta = max(metas, key=lambda f: f.timestamp, default=None)
    elif current.ext == ".data":
        meta = max((m for m in metas if m.timestamp > current.timestamp),
                   key=lambda f: f.timestamp, default=None)
    else:
        meta = None
    keep = {f.name for f in (current, meta) if f is not None}
    data = current.name if current is not None and current.ext == ".data" else None
    tomb = current.name if current is not None and current.ext == ".ts" else None
    return data, tomb, meta.name if meta else None, set(names) - keep


def test_rules_match_a_naive_oracle_on_every_small_directory():
    candidates = [name(ts, ext) for ts in (T1, T2, T3) for ext in (".data", ".ts", ".meta")]
    for size in range(0, 5):
        for combo in itertools.combinations(candidates, size):
            shuffled = list(combo)
            random.Random(size).shuffle(shuffled)
            state = get_ondisk_files(shuffled)
            data, tomb, meta, obsolete = _oracle(list(combo))
            assert names_of(state) == (data, tomb, meta), combo
            assert set(state.obsolete) == obsolete, combo
            # What must never happen: a kept file listed as obsolete, or a name lost.
            kept = {n for n in names_of(state) if n}
            assert not kept & set(state.obsolete)
            assert kept | set(state.obsolete) == set(combo)


# ---- metadata merge and expiry ----------------------------------------------------------------

DATA_META = {"X-Timestamp": T1.internal, "Content-Type": "text/plain", "ETag": "abc",
             "Content-Length": "3", "name": "/a/c/o", "X-Object-Meta-Old": "1",
             "X-Object-Sysmeta-Slo": "yes", "Content-Disposition": "inline",
             "X-Static-Large-Object": "True"}


def test_merge_without_meta_is_the_data_metadata():
    assert merge_metadata(DATA_META, None) == DATA_META


def test_meta_replaces_user_meta_and_allowed_headers_keeps_reserved_and_sysmeta():
    merged = merge_metadata(DATA_META, {"X-Timestamp": T2.internal, "X-Object-Meta-New": "2"})
    assert merged["X-Timestamp"] == T2.internal
    assert merged["X-Object-Meta-New"] == "2"
    assert "X-Object-Meta-Old" not in merged and "Content-Disposition" not in merged
    for key in ("ETag", "Content-Length", "X-Object-Sysmeta-Slo", "X-Static-Large-Object",
                "Content-Type"):
        assert merged[key] == DATA_META[key]
    assert "Content-Type-Timestamp" not in merged


def test_meta_content_type_counts_only_if_newer_than_data():
    newer = merge_metadata(DATA_META, {"X-Timestamp": T2.internal, "Content-Type": "x/new",
                                       "Content-Type-Timestamp": T2.internal})
    assert newer["Content-Type"] == "x/new"
    assert newer["Content-Type-Timestamp"] == T2.internal
    older = merge_metadata(DATA_META, {"X-Timestamp": T2.internal, "Content-Type": "x/old",
                                       "Content-Type-Timestamp": T1.internal})
    assert older["Content-Type"] == "text/plain" and "Content-Type-Timestamp" not in older


def test_is_expired():
    now = Timestamp(1_700_000_100)
    assert not is_expired({}, now)
    assert not is_expired({"X-Delete-At": "1700000101"}, now)
    assert is_expired({"X-Delete-At": "1700000100"}, now)
    assert not is_expired({"X-Delete-At": "garbage"}, now)
