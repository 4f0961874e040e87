"""Container databases (and the shared sqlite base): real files under tmp_path."""

from __future__ import annotations

import itertools
import os
import random
import sqlite3
import threading
import time

import eventlet
import pytest

from common.timestamp import Timestamp
from storage_node.account_db import AccountBroker
from storage_node.container_db import (
    ContainerBroker,
    ContainerNotEmpty,
    ContainerPolicyConflict,
    ContainerStillDeleted,
    ObjectRecord,
    decode_timestamps,
    encode_timestamps,
    merge_object_record,
    update_created_at,
)
from storage_node.db import (
    DatabaseAlreadyExists,
    DatabaseNotFound,
    DatabaseUnavailable,
    MetadataError,
    MetadataLimits,
    check_metadata_limits,
    chexor,
    db_file_path,
    merge_metadata,
)
from storage_node.devices import BlockingPool
from storage_node.listing import ListingParams, Subdir, filter_sorted_names, list_entries


def ts(seconds: float) -> str:
    return Timestamp(1700000000 + seconds).internal


T1, T2, T3, T4 = (ts(i) for i in range(1, 5))


@pytest.fixture
def broker(tmp_path):
    path = db_file_path(str(tmp_path / "sda1"), "containers", 7, "f" * 29 + "abc")
    created = ContainerBroker(path, "AUTH_a", "c")
    created.initialize(T1, storage_policy_index=0)
    yield created
    created.close()


def names_of(entries):
    return [entry.name if isinstance(entry, Subdir) else entry[0] for entry in entries]


# ---- creation, opening, integrity --------------------------------------------------------------

def test_initialize_creates_a_wal_database_atomically(tmp_path, broker):
    assert broker.db_file.endswith("/sda1/containers/7/abc/" + "f" * 29 + "abc/" +
                                   "f" * 29 + "abc.db")
    assert os.listdir(broker.hash_dir) == [os.path.basename(broker.db_file)]   # no temp left
    with sqlite3.connect(broker.db_file) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == ContainerBroker.schema_version
        assert raw.execute("PRAGMA application_id").fetchone()[0] == \
            ContainerBroker.application_id
    info = broker.get_info()
    assert (info.account, info.container, info.put_timestamp) == ("AUTH_a", "c", T1)
    assert (info.object_count, info.bytes_used, info.storage_policy_index) == (0, 0, 0)
    assert not info.is_deleted and broker.integrity_check() == []
    with pytest.raises(DatabaseAlreadyExists):
        ContainerBroker(broker.db_file, "AUTH_a", "c").initialize(T2)


def test_concurrent_creators_exactly_one_wins(tmp_path):
    path = db_file_path(str(tmp_path), "containers", 1, "0" * 32)
    results = []

    def create():
        try:
            ContainerBroker(path, "a", "c").initialize(T1)
            results.append("created")
        except DatabaseAlreadyExists:
            results.append("exists")

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["created"] + ["exists"] * 7
    assert ContainerBroker(path, "a", "c").get_info().put_timestamp == T1


def test_missing_database(tmp_path):
    missing = ContainerBroker(str(tmp_path / "nope.db"), "a", "c")
    assert not missing.exists() and missing.is_deleted()
    with pytest.raises(DatabaseNotFound):
        missing.get_info()


def test_corrupt_file_is_quarantined(tmp_path, broker):
    broker.close()
    with open(broker.db_file, "r+b") as handle:
        handle.write(b"this is not sqlite at all" * 100)
    with pytest.raises(DatabaseUnavailable, match="quarantined"):
        broker.get_info()
    assert not os.path.exists(broker.hash_dir)
    quarantined = tmp_path / "sda1" / "quarantined" / "containers" / os.path.basename(
        broker.hash_dir)
    assert (quarantined / "QUARANTINE_REASON").exists()


def test_an_account_database_is_not_a_container_database(tmp_path):
    path = db_file_path(str(tmp_path / "sda1"), "containers", 1, "1" * 32)
    AccountBroker(path, "a").initialize(T1)
    with pytest.raises(DatabaseUnavailable, match="quarantined"):
        ContainerBroker(path, "a", "c").get_info()


def test_a_newer_schema_is_refused_not_quarantined(broker):
    broker.close()
    with sqlite3.connect(broker.db_file) as raw:
        raw.execute("PRAGMA user_version = 99")
    with pytest.raises(DatabaseUnavailable, match="newer"):
        broker.get_info()
    assert os.path.exists(broker.db_file)


def test_migrations_run_once_on_open(broker):
    class NextBroker(ContainerBroker):
        schema_version = 2
        migrations = {2: lambda conn: conn.execute(
            "ALTER TABLE container_stat ADD COLUMN note TEXT DEFAULT 'migrated'")}

    broker.close()
    upgraded = NextBroker(broker.db_file, "AUTH_a", "c")
    assert upgraded.get_info().put_timestamp == T1
    upgraded.close()
    with sqlite3.connect(broker.db_file) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 2
        assert raw.execute("SELECT note FROM container_stat").fetchone()[0] == "migrated"
    NextBroker(broker.db_file, "AUTH_a", "c").get_info()      # no second migration


def test_idle_connections_are_reused_only_for_the_same_file(tmp_path, broker):
    broker.put_object("o", T2, 1, "t", "e")
    first = broker._conn
    broker.close()
    again = ContainerBroker(broker.db_file, "AUTH_a", "c")
    assert again.get_info().object_count == 1 and again._conn is first      # reused
    again.close()
    # The database is moved away (quarantined) and, from another thread, another one is
    # created at its path and written (it has a live WAL) while `first` sits idle here.
    os.rename(broker.hash_dir, str(tmp_path / "moved"))

    def recreate():
        with ContainerBroker(broker.db_file, "AUTH_a", "c") as other:
            other.initialize(T3)
            other.put_object("new", T3, 5, "t", "e")

    thread = threading.Thread(target=recreate)
    thread.start()
    thread.join()
    fresh = ContainerBroker(broker.db_file, "AUTH_a", "c")
    info = fresh.get_info()
    assert (info.put_timestamp, info.object_count) == (T3, 1) and fresh._conn is not first
    fresh.close()
    # Closing `first` would have deleted the new database's WAL by name: it was kept open.
    assert os.path.exists(broker.db_file + "-wal")
    assert ContainerBroker(broker.db_file, "AUTH_a", "c").get_info().object_count == 1
    # A missing file is simply not found (its idle connection, if any, is closed).
    ContainerBroker(broker.db_file, "AUTH_a", "c").close()
    os.rename(broker.hash_dir, str(tmp_path / "moved-again"))
    with pytest.raises(DatabaseNotFound):
        ContainerBroker(broker.db_file, "AUTH_a", "c").get_info()


def test_rows_cannot_be_updated_in_place(broker):
    broker.put_object("o", T1, 1, "t", "e")
    with pytest.raises(sqlite3.IntegrityError, match="UPDATE not allowed"), \
            sqlite3.connect(broker.db_file) as raw:
        raw.execute("UPDATE object SET size = 5")


# ---- metadata ----------------------------------------------------------------------------------

def test_merge_metadata_newest_wins_per_name():
    current = {"X-Container-Meta-A": ["1", T2], "X-Container-Meta-B": ["2", T2]}
    merged = merge_metadata(current, {"X-Container-Meta-A": ("old", T1),
                                      "X-Container-Meta-B": ("new", T3),
                                      "X-Container-Meta-C": ("", T3)})
    assert merged == {"X-Container-Meta-A": ["1", T2], "X-Container-Meta-B": ["new", T3],
                      "X-Container-Meta-C": ["", T3]}
    # Equal timestamps keep what is there; replays change nothing.
    assert merge_metadata(merged, {"X-Container-Meta-B": ("other", T3)}) == merged


def test_metadata_limits_count_only_set_user_metadata():
    limits = MetadataLimits(max_count=2, max_overall_size=10)
    check_metadata_limits({"X-Container-Meta-Ab": ("cdef", T1), "X-Container-Meta-X": ("", T1),
                           "X-Container-Sysmeta-Big": ("z" * 100, T1)}, limits)
    with pytest.raises(MetadataError, match="Too many metadata items; max 2"):
        check_metadata_limits({f"X-Account-Meta-{i}": ("v", T1) for i in range(3)}, limits)
    with pytest.raises(MetadataError, match="Total metadata too large; max 10"):
        check_metadata_limits({"X-Container-Meta-Abc": ("12345678", T1)}, limits)


def test_update_metadata_is_durable_and_checked(broker):
    broker.update_metadata({"X-Container-Meta-Color": ("blue", T2),
                            "X-Container-Read": (".r:*", T2)})
    broker.update_metadata({"X-Container-Meta-Color": ("red", T1)})
    limits = MetadataLimits(max_count=1, max_overall_size=100)
    with pytest.raises(MetadataError):
        broker.update_metadata({"X-Container-Meta-Other": ("x", T3)}, limits)
    reopened = ContainerBroker(broker.db_file, "AUTH_a", "c")
    assert reopened.get_metadata() == {"X-Container-Meta-Color": ["blue", T2],
                                       "X-Container-Read": [".r:*", T2]}


# ---- object rows and their merge rules ---------------------------------------------------------

def test_encode_and_decode_timestamps_as_swift():
    t1, t2, t3 = Timestamp("1700000000.00000"), Timestamp("1700000000.00010"), \
        Timestamp("1700000001.00000")
    assert encode_timestamps(t1) == "1700000000.00000"
    assert encode_timestamps(t1, t1, t1) == "1700000000.00000"
    # Strings checked against Swift 2.38's encode_timestamps (deltas in 10 us ticks, hex).
    assert encode_timestamps(t1, t2, t2) == "1700000000.00000+a+0"
    assert encode_timestamps(t1, t2, t3) == "1700000000.00000+a+18696"
    assert encode_timestamps(t1, t1, t3) == "1700000000.00000+0+186a0"
    assert encode_timestamps(t3, t1, t1) == "1700000001.00000-186a0+0"
    for encoded, parts in (("1700000000.00000+a+18696", (t1, t2, t3)),
                           ("1700000001.00000-186a0", (t3, t1, t1)),
                           ("1700000000.00000_2+a+18696",
                            (Timestamp("1700000000.00000_2"), t2, t3)),
                           ("1700000000.00000", (t1, t1, t1))):
        assert decode_timestamps(encoded) == parts
    offset = Timestamp("1700000000.00000_0000000000000002")
    assert decode_timestamps(encode_timestamps(offset, t2, t3)) == (offset, t2, t3)


def test_merge_object_record_rules():
    put = ObjectRecord("o", T2, 5, "text/plain", "e2")
    assert merge_object_record(put, None) == put
    assert merge_object_record(ObjectRecord("o", T1, 9, "x", "e1"), put) is None      # older
    assert merge_object_record(ObjectRecord("o", T2, 9, "x", "e9"), put) is None      # replay
    newer = ObjectRecord("o", T3, 7, "image/png", "e3")
    assert merge_object_record(newer, put) == newer
    tombstone = ObjectRecord("o", T3, 0, "application/deleted", "noetag", deleted=1)
    assert merge_object_record(tombstone, put) == tombstone
    assert merge_object_record(put, tombstone) is None        # the delete outranks the put


def test_fast_post_changes_content_type_but_not_data():
    put = ObjectRecord("o", T2, 5, "text/plain;swift_bytes=50", "e2")
    post = ObjectRecord("o", update_created_at(T2, T3, T4), 5, "image/png", "e2")
    merged = merge_object_record(post, put)
    assert (merged.size, merged.etag, merged.content_type) == (5, "e2",
                                                               "image/png;swift_bytes=50")
    assert decode_timestamps(merged.created_at) == (Timestamp(T2), Timestamp(T3),
                                                    Timestamp(T4))
    # A later PUT brings new data; the newer content type of the POST survives.
    late_put = ObjectRecord("o", ts(2.5), 9, "text/html", "e9")
    again = merge_object_record(late_put, merged)
    assert (again.size, again.etag, again.content_type) == (9, "e9", "image/png")


def test_counts_follow_puts_and_deletes(broker):
    assert broker.put_object("a", T2, 10, "t", "e")
    assert broker.put_object("b", T2, 20, "t", "e")
    assert not broker.put_object("a", T1, 99, "t", "old")       # older: ignored
    assert broker.put_object("a", T3, 15, "t", "e")
    info = broker.get_info()
    assert (info.object_count, info.bytes_used) == (2, 35)
    assert broker.delete_object("a", T4)
    assert not broker.put_object("a", T3, 15, "t", "e")         # a late PUT stays dead
    info = broker.get_info()
    assert (info.object_count, info.bytes_used) == (1, 20)
    rows = [record for _row, record in broker.get_items_since(-1, 10)]
    assert {(r.name, r.deleted) for r in rows} == {("a", 1), ("b", 0)}   # the tombstone stays
    assert names_of(broker.list_objects(ListingParams(limit=10), 0)) == ["b"]
    assert broker.reclaim_tombstones(ts(3.5)) == 0
    assert broker.reclaim_tombstones(ts(5)) == 1
    assert [r.name for _row, r in broker.get_items_since(-1, 10)] == ["b"]


def test_merge_items_batch_with_duplicates(broker):
    written = broker.merge_items([ObjectRecord("x", T1, 1, "t", "e1"),
                                  ObjectRecord("x", T3, 3, "t", "e3"),
                                  ObjectRecord("x", T2, 2, "t", "e2"),
                                  ObjectRecord("y", T1, 4, "t", "e")])
    assert written == 2
    rows = {r.name: r for _row, r in broker.get_items_since(-1, 10)}
    assert rows["x"].etag == "e3"
    assert broker.get_info().bytes_used == 7


def test_hash_is_independent_of_arrival_order(tmp_path):
    records = [ObjectRecord(f"o{i}", ts(i), i, "t", "e") for i in range(30)]
    hashes = []
    for order in range(3):
        shuffled = records[:]
        random.Random(order).shuffle(shuffled)
        path = db_file_path(str(tmp_path / f"d{order}"), "containers", 1, "2" * 32)
        created = ContainerBroker(path, "a", "c")
        created.initialize(T1)
        for record in shuffled:
            created.merge_items([record])
        hashes.append(created.get_info().hash)
    assert len(set(hashes)) == 1 and hashes[0] != "0" * 32
    assert chexor(chexor("0" * 32, "n", T1), "n", T1) == "0" * 32


def test_storage_policies_and_misplaced_objects(broker):
    broker.put_object("in-policy", T2, 10, "t", "e", storage_policy_index=0)
    broker.put_object("misplaced", T2, 99, "t", "e", storage_policy_index=1)
    info = broker.get_info()
    assert (info.object_count, info.bytes_used) == (1, 10)      # the container's own policy
    assert broker.get_policy_stats() == {0: {"object_count": 1, "bytes_used": 10},
                                         1: {"object_count": 1, "bytes_used": 99}}
    assert names_of(broker.list_objects(ListingParams(limit=10), 1)) == ["misplaced"]
    broker.delete_object("in-policy", T3)
    with pytest.raises(ContainerNotEmpty):          # the misplaced object still counts
        broker.delete_container(T4)


# ---- container state -----------------------------------------------------------------------------

def test_update_or_recreate(broker):
    assert broker.update_or_recreate(T2, 0, None) is False
    assert broker.get_info().put_timestamp == T2
    with pytest.raises(ContainerPolicyConflict) as caught:
        broker.update_or_recreate(T3, 1, 1)
    assert caught.value.current_policy_index == 0
    assert broker.delete_container(T3) == (True, True)
    info = broker.get_info()
    assert info.is_deleted and info.status == "DELETED"
    with pytest.raises(ContainerStillDeleted):
        broker.update_or_recreate(ts(2.5), 1, 1)        # older than the delete
    assert broker.update_or_recreate(T4, 1, 1) is True      # recreated with a new policy
    info = broker.get_info()
    assert (info.is_deleted, info.storage_policy_index, info.status) == (False, 1, "")


def test_delete_container_rules(broker):
    broker.put_object("o", T2, 1, "t", "e")
    with pytest.raises(ContainerNotEmpty):
        broker.delete_container(T3)
    broker.delete_object("o", T3)
    assert broker.delete_container(ts(-1)) == (True, False)      # older than the PUT
    assert broker.delete_container(T4) == (True, True)
    assert broker.delete_container(ts(5)) == (False, True)        # already deleted
    assert broker.is_deleted()
    # An object row revives a deleted container, as in Swift.
    broker.put_object("late", ts(6), 1, "t", "e")
    assert not broker.is_deleted()


def test_delete_clears_metadata(broker):
    broker.update_metadata({"X-Container-Meta-A": ("1", T2)})
    broker.delete_container(T3)
    assert broker.get_metadata() == {"X-Container-Meta-A": ["", T3]}


def test_reported_numbers(broker):
    assert broker.get_info().needs_report
    broker.reported(broker.get_info())
    assert not broker.get_info().needs_report
    broker.put_object("o", T2, 1, "t", "e")
    assert broker.get_info().needs_report


# ---- listings against the in-memory oracle ---------------------------------------------------

NAMES = ["a", "a/", "a/b", "a/b/c", "a/c", "a-b", "a0", "b", "b/x/y", "ph/2023/", "ph/2023/x",
         "ph/z", "é", "é/ü", "日本/語", "\U0001f600", "\x00r", "z"]


def test_sql_listing_agrees_with_the_in_memory_walk(broker):
    broker.merge_items([ObjectRecord(name, T2, 1, "t", "e") for name in NAMES])
    broker.put_object("deleted/x", T2, 1, "t", "e")
    broker.delete_object("deleted/x", T3)
    rows = [(name,) for name in sorted(NAMES)]
    for prefix, delimiter, marker, end_marker, path, reverse, limit in itertools.product(
            [None, "a", "ph/", "é"], [None, "/", "-"], ["", "a/", "b"], [None, "ph/z"],
            [None, "", "ph"], (False, True), (1, 4, 100)):
        params = ListingParams(limit=limit, marker=marker, end_marker=end_marker,
                               prefix=prefix, delimiter=delimiter, path=path, reverse=reverse)
        expected = names_of(list_entries(lambda r: filter_sorted_names(rows, r), params))
        assert names_of(broker.list_objects(params, 0)) == expected, params
    assert names_of(broker.list_objects(ListingParams(limit=1, allow_reserved=True), 0)) == \
        ["\x00r"]


def test_listing_queries_are_index_range_scans(broker):
    conn = broker._connect()
    for order, bounds in (("ASC", "name > ? AND name < ?"), ("DESC", "name >= ?")):
        plan = " ".join(row[3] for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT name, created_at, size, content_type, etag FROM object "
            f"WHERE deleted = 0 AND storage_policy_index = ? AND {bounds} "
            f"ORDER BY name {order} LIMIT ?", [0, "a", "b", 10][:bounds.count("?") + 1] + [10]))
        assert "USING INDEX ix_object_listing" in plan and "TEMP B-TREE" not in plan, plan


def test_hundred_thousand_objects_insert_and_page_quickly(broker):
    """The listing benchmark: 100,000 rows in 1,000-row transactions, then every page of
    10,000 (each page one index range scan)."""
    started = time.monotonic()
    for batch in range(100):
        broker.merge_items(ObjectRecord(f"photos/{batch:03d}/{i:04d}.jpg", T2, 1000,
                                        "image/jpeg", "e") for i in range(1000))
    inserted = time.monotonic()
    info = broker.get_info()
    assert (info.object_count, info.bytes_used) == (100_000, 100_000_000)
    seen, marker, slowest_page = 0, "", 0.0
    while True:
        page_started = time.monotonic()
        page = broker.list_objects(ListingParams(limit=10_000, marker=marker), 0)
        slowest_page = max(slowest_page, time.monotonic() - page_started)
        if not page:
            break
        assert page[0][0] > marker
        seen += len(page)
        marker = page[-1][0]
    listed = time.monotonic()
    assert seen == 100_000
    # The whole namespace folds into 100 subdirs with one range scan per directory.
    subdirs = broker.list_objects(ListingParams(limit=10_000, prefix="photos/", delimiter="/"), 0)
    assert len(subdirs) == 100 and all(isinstance(entry, Subdir) for entry in subdirs)
    # Generous bounds (a loaded 2-core machine): typically ~3 s to insert, < 0.1 s a page.
    assert inserted - started < 60, f"insert took {inserted - started:.1f}s"
    assert slowest_page < 2.0, f"slowest page took {slowest_page:.2f}s"
    assert listed - inserted < 10


# ---- running off the hub ------------------------------------------------------------------

def test_blocking_pool_runs_on_threads_and_raises_through():
    pool = BlockingPool(2)
    main = threading.get_ident()
    assert pool.run(threading.get_ident) != main
    with pytest.raises(ZeroDivisionError):
        pool.run(lambda: 1 / 0)
    pool.shutdown()


def test_blocking_pool_keeps_the_hub_running():
    pool = BlockingPool(2)
    ticks = []

    def ticker():
        for _ in range(5):
            ticks.append(time.monotonic())
            eventlet.sleep(0.01)

    green = eventlet.spawn(ticker)
    pool.run(time.sleep, 0.2)            # blocks a real thread, not the hub
    green.wait()
    assert len(ticks) == 5
    pool.shutdown()


def test_blocking_pool_works_from_several_hubs():
    """Servers in tests run in OS threads with their own hubs; one pool serves them all."""
    pool = BlockingPool(4)
    results = []

    def in_thread(value):
        results.append(pool.run(lambda: value * 2))

    threads = [threading.Thread(target=in_thread, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == [0, 2, 4, 6, 8, 10]
    pool.shutdown()
