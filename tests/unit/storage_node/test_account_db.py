"""Account databases: container rows, totals, merge rules and listings on real sqlite files."""

from __future__ import annotations

import sqlite3

import pytest

from common.timestamp import Timestamp
from storage_node.account_db import (
    AccountBroker,
    ContainerRecord,
    container_row_deleted,
    merge_container_record,
)
from storage_node.db import ZERO_TIMESTAMP, DatabaseAlreadyExists, db_file_path
from storage_node.listing import ListingParams, Subdir


def ts(seconds: float) -> str:
    return Timestamp(1700000000 + seconds).internal


T1, T2, T3, T4 = (ts(i) for i in range(1, 5))
ZERO = ZERO_TIMESTAMP


@pytest.fixture
def broker(tmp_path):
    created = AccountBroker(db_file_path(str(tmp_path / "sda1"), "accounts", 3, "a" * 32),
                            "AUTH_test")
    created.initialize(T1)
    yield created
    created.close()


def names_of(entries):
    return [entry.name if isinstance(entry, Subdir) else entry[0] for entry in entries]


def test_initialize(broker):
    info = broker.get_info()
    assert (info.account, info.put_timestamp, info.delete_timestamp, info.status) == (
        "AUTH_test", T1, ZERO, "")
    assert (info.container_count, info.object_count, info.bytes_used) == (0, 0, 0)
    assert not info.is_deleted and not info.is_status_deleted and broker.empty()
    with sqlite3.connect(broker.db_file) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(DatabaseAlreadyExists):
        AccountBroker(broker.db_file, "AUTH_test").initialize(T2)
    assert broker.integrity_check() == []


def test_totals_follow_container_reports(broker):
    assert broker.put_container("c1", T1, ZERO, 3, 30, 0, ts(10))
    assert broker.put_container("c2", T1, ZERO, 5, 50, 1, ts(10))
    info = broker.get_info()
    assert (info.container_count, info.object_count, info.bytes_used) == (2, 8, 80)
    assert broker.get_policy_stats() == {
        0: {"container_count": 1, "object_count": 3, "bytes_used": 30},
        1: {"container_count": 1, "object_count": 5, "bytes_used": 50}}
    # A newer report replaces the numbers.
    broker.put_container("c1", T1, ZERO, 4, 40, 0, ts(11))
    assert broker.get_info().object_count == 9
    # The container is deleted: it stops counting but its row stays (a tombstone).
    broker.put_container("c2", T1, T2, 0, 0, 1, ts(12))
    info = broker.get_info()
    assert (info.container_count, info.object_count, info.bytes_used) == (1, 4, 40)
    assert broker.get_policy_stats()[1] == {"container_count": 0, "object_count": 0,
                                            "bytes_used": 0}
    rows = {record.name: record for _row, record in broker.get_items_since(-1, 10)}
    assert rows["c2"].deleted == 1 and rows["c1"].deleted == 0
    assert names_of(broker.list_containers(ListingParams(limit=10))) == ["c1"]


def test_a_stale_report_does_not_overwrite_a_newer_one(broker):
    broker.put_container("c", T1, ZERO, 10, 100, 0, stats_timestamp=ts(20))
    # An old report replayed late (an async pending) loses to the newer numbers...
    assert not broker.put_container("c", T1, ZERO, 2, 20, 0, stats_timestamp=ts(15))
    info = broker.get_info()
    assert (info.object_count, info.bytes_used) == (10, 100)
    # ...but still contributes a newer put or delete timestamp.
    broker.put_container("c", T1, T2, 2, 20, 0, stats_timestamp=ts(15))
    row = broker.get_items_since(-1, 1)[0][1]
    assert (row.delete_timestamp, row.object_count, row.deleted) == (T2, 10, 0)


def test_merge_container_record_rules():
    old = ContainerRecord("c", T2, T1, 5, 50, 0, 0, ts(10))
    new = ContainerRecord("c", T1, T3, 0, 0, 0, 1, ts(11))
    merged = merge_container_record(new, old)
    # Newest put and newest delete each win; numbers from the newest report; deleted when
    # deleted after the last put and empty.
    assert merged == ContainerRecord("c", T2, T3, 0, 0, 1, 0, ts(11))
    assert merge_container_record(old, None) == ContainerRecord("c", T2, T1, 5, 50, 0, 0,
                                                                ts(10))
    assert container_row_deleted(T1, T2, 0) == 1
    assert container_row_deleted(T1, T2, 3) == 0          # not empty: not deleted
    assert container_row_deleted(T3, T2, 0) == 0          # put again after the delete


def test_recreated_container_takes_the_new_policy(broker):
    broker.put_container("c", T1, ZERO, 0, 0, 0, ts(10))
    broker.put_container("c", T1, T2, 0, 0, 0, ts(11))
    broker.put_container("c", T3, T2, 0, 0, 1, ts(12))
    row = broker.get_items_since(-1, 1)[0][1]
    assert (row.deleted, row.storage_policy_index) == (0, 1)
    assert broker.get_policy_stats()[1]["container_count"] == 1


def test_listing_with_prefix_delimiter_markers_and_reverse(broker):
    for name in ["alpha", "beta", "beta-1", "beta-2", "gamma", "été", "\x00hidden"]:
        broker.put_container(name, T1, ZERO, 1, 1, 0, ts(10))
    assert names_of(broker.list_containers(ListingParams(limit=100))) == [
        "alpha", "beta", "beta-1", "beta-2", "gamma", "été"]
    assert names_of(broker.list_containers(ListingParams(limit=100, delimiter="-"))) == [
        "alpha", "beta", "beta-", "gamma", "été"]
    assert names_of(broker.list_containers(ListingParams(limit=2, marker="beta",
                                                         reverse=True))) == ["alpha"]
    assert names_of(broker.list_containers(ListingParams(limit=100, prefix="beta-",
                                                         end_marker="beta-2"))) == ["beta-1"]
    assert names_of(broker.list_containers(ListingParams(limit=1, allow_reserved=True))) == [
        "\x00hidden"]
    row = broker.list_containers(ListingParams(limit=1))[0]
    assert row == ("alpha", 1, 1, T1, 0)


def test_delete_and_status(broker):
    broker.update_metadata({"X-Account-Meta-Color": ("blue", T1)})
    broker.put_container("c", T1, ZERO, 1, 1, 0, ts(10))
    broker.delete_db(T2)
    info = broker.get_info()
    # DELETEd: deleted whatever it holds (the reaper empties it later).
    assert info.status == "DELETED" and info.is_deleted and info.is_status_deleted
    assert info.container_count == 1
    assert broker.get_metadata() == {"X-Account-Meta-Color": ["", T2]}
    assert broker.is_deleted()


def test_put_timestamp_only_moves_forward(broker):
    broker.update_put_timestamp(T3)
    broker.update_put_timestamp(T2)
    assert broker.get_info().put_timestamp == T3


def test_hash_changes_with_rows(broker):
    empty_hash = broker.get_info().hash
    broker.put_container("c", T1, ZERO, 1, 1, 0, ts(10))
    assert broker.get_info().hash != empty_hash
