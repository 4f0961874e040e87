"""storage_node.auditor and storage_node.db_auditor on real object files and real sqlite
databases in a temp directory."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil

import pytest

from common import server_main
from common.config import Config
from common.timestamp import Timestamp
from ring.hashing import HashSecrets, hash_path
from storage_node import recon
from storage_node.account_db import AccountBroker
from storage_node.auditor import AuditorSettings, ObjectAuditor, RateLimiter
from storage_node.container_db import ContainerBroker
from storage_node.db import db_file_path
from storage_node.db_auditor import DbAuditor, DbAuditorSettings
from storage_node.devices import DiskIOPool
from storage_node.diskfile import DiskFileManager

SECRETS = HashSecrets(b"pre", b"suf")


class Clock:
    """A fake clock whose sleep moves time: throttling tests run instantly and exactly."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


@pytest.fixture
def node(tmp_path):
    devices = tmp_path / "srv"
    (devices / "sda").mkdir(parents=True)
    (devices / "sdb").mkdir(parents=True)
    swift_dir = tmp_path / "etc"
    swift_dir.mkdir()
    (swift_dir / "ringstack.conf").write_text(
        "[ringstack-hash]\npath_prefix = pre\npath_suffix = suf\n\n"
        "[storage-policy:0]\nname = gold\ndefault = yes\n")
    return {"devices": str(devices), "swift_dir": str(swift_dir),
            "recon": str(tmp_path / "recon")}


def put_object(node, device: str, name: str, body: bytes, policy: int = 0,
               meta: dict[str, str] | None = None) -> str:
    """Write an object with the real DiskFile; returns its hash directory."""
    manager = DiskFileManager(node["devices"], SECRETS, mount_check=False, io=DiskIOPool(0))
    account, container, obj = name.split("/", 2)
    diskfile = manager.get_diskfile(device, 7, account, container, obj, policy)
    diskfile.write_whole(body, {"X-Timestamp": Timestamp.now().internal,
                                "Content-Type": "application/octet-stream",
                                "Content-Length": str(len(body)),
                                "ETag": hashlib.md5(body).hexdigest()})
    if meta:
        diskfile.write_metadata({"X-Timestamp": Timestamp.now().internal, **meta})
    return diskfile.hash_dir


def auditor_for(node, **overrides) -> ObjectAuditor:
    settings = AuditorSettings(devices=node["devices"], mount_check=False,
                               swift_dir=node["swift_dir"], files_per_second=0,
                               bytes_per_second=0, disk_chunk_bytes=1000,
                               recon_cache_path=node["recon"])
    settings = AuditorSettings(**{**settings.__dict__, **overrides})
    return ObjectAuditor(settings, logging.getLogger("test-auditor"))


def data_file(hash_dir: str) -> str:
    [name] = [n for n in os.listdir(hash_dir) if n.endswith(".data")]
    return os.path.join(hash_dir, name)


def quarantined(node, device: str, datadir: str = "objects") -> list[str]:
    root = os.path.join(node["devices"], device, "quarantined", datadir)
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


def test_sound_objects_pass_and_stats_reach_the_recon_cache(node):
    put_object(node, "sda", "a/c/one", b"x" * 2500)
    put_object(node, "sdb", "a/c/two", b"y" * 10, meta={"X-Object-Meta-Color": "red"})
    put_object(node, "sdb", "a/c/empty", b"")
    stats = auditor_for(node).audit_pass()
    assert (stats.files_processed, stats.bytes_processed, stats.quarantined,
            stats.errors) == (3, 2510, 0, 0)
    assert stats.devices["sda"].files_processed == 1
    assert stats.devices["sdb"].bytes_processed == 10
    cache = recon.load_recon_cache(os.path.join(node["recon"], recon.OBJECT_RECON))
    reported = cache["object_auditor_stats"]
    assert reported["files_processed"] == 3 and reported["quarantined"] == 0
    assert reported["last_pass"] >= reported["start_time"]
    assert reported["devices"]["sdb"]["files_processed"] == 2
    assert quarantined(node, "sda") == [] and quarantined(node, "sdb") == []


def test_flipped_body_byte_is_quarantined_and_the_suffix_invalidated(node):
    body = os.urandom(5000)
    hash_dir = put_object(node, "sda", "a/c/rotten", body)
    good_dir = put_object(node, "sda", "a/c/fine", body)
    path = data_file(hash_dir)
    with open(path, "r+b") as handle:
        handle.seek(4321)
        handle.write(bytes([body[4321] ^ 0x01]))
    partition_dir = os.path.dirname(os.path.dirname(hash_dir))
    os.unlink(os.path.join(partition_dir, "hashes.invalid"))
    stats = auditor_for(node).audit_pass()
    assert stats.quarantined == 1 and stats.devices["sda"].quarantined == 1
    assert not os.path.exists(hash_dir) and os.path.isdir(good_dir)
    name_hash = os.path.basename(hash_dir)
    assert quarantined(node, "sda") == [name_hash]
    moved = os.path.join(node["devices"], "sda", "quarantined", "objects", name_hash)
    assert os.listdir(moved) == [os.path.basename(path)]
    with open(os.path.join(partition_dir, "hashes.invalid")) as handle:
        assert handle.read().split() == [name_hash[-3:]]
    # The next pass finds nothing left to quarantine.
    assert auditor_for(node).audit_pass().quarantined == 0


@pytest.mark.parametrize("damage", ["truncate", "trailer", "metadata", "length"])
def test_bad_footers_are_quarantined(node, damage):
    hash_dir = put_object(node, "sdb", "a/c/o", b"payload" * 100)
    path = data_file(hash_dir)
    size = os.path.getsize(path)
    with open(path, "r+b") as handle:
        if damage == "truncate":
            handle.truncate(size - 5)
        elif damage == "trailer":
            handle.seek(size - 24)
            handle.write(b"XXXX")
        elif damage == "metadata":
            handle.seek(700 + 3)                     # inside the msgpack metadata
            handle.write(b"\xff")
        else:
            handle.seek(0, os.SEEK_END)
            handle.write(b"extra")                   # sizes no longer add up
    assert auditor_for(node).audit_pass().quarantined == 1
    assert quarantined(node, "sdb") == [os.path.basename(hash_dir)]


def test_corrupt_meta_and_tombstone_files_are_quarantined(node):
    meta_dir = put_object(node, "sda", "a/c/m", b"abc", meta={"X-Object-Meta-K": "v"})
    [meta_name] = [n for n in os.listdir(meta_dir) if n.endswith(".meta")]
    with open(os.path.join(meta_dir, meta_name), "r+b") as handle:
        handle.write(b"garbage")
    manager = DiskFileManager(node["devices"], SECRETS, mount_check=False, io=DiskIOPool(0))
    gone = manager.get_diskfile("sda", 7, "a", "c", "deleted")
    gone.delete(Timestamp.now())
    [ts_name] = os.listdir(gone.hash_dir)
    with open(os.path.join(gone.hash_dir, ts_name), "r+b") as handle:
        handle.write(b"\x00\x00")
    assert auditor_for(node).audit_pass().quarantined == 2
    assert quarantined(node, "sda") == sorted([os.path.basename(meta_dir), gone.name_hash])


def test_a_file_in_the_wrong_hash_directory_is_quarantined(node):
    hash_dir = put_object(node, "sda", "a/c/original", b"data")
    wrong_hash = hash_path("a", "c", "elsewhere", SECRETS).hex()
    wrong_dir = os.path.join(os.path.dirname(os.path.dirname(hash_dir)), wrong_hash[-3:],
                             wrong_hash)
    os.makedirs(os.path.dirname(wrong_dir), exist_ok=True)
    shutil.copytree(hash_dir, wrong_dir)
    stats = auditor_for(node).audit_pass()
    assert stats.quarantined == 1
    assert quarantined(node, "sda") == [wrong_hash] and os.path.isdir(hash_dir)


def test_other_policies_are_audited_into_their_own_quarantine(node):
    body = b"z" * 300
    hash_dir = put_object(node, "sdb", "a/c/p1", body, policy=1)
    with open(data_file(hash_dir), "r+b") as handle:
        handle.write(b"Z")
    stats = auditor_for(node).audit_pass()
    assert stats.quarantined == 1
    assert quarantined(node, "sdb", "objects-1") == [os.path.basename(hash_dir)]
    counts = recon.quarantined_counts(node["devices"])
    assert counts["sdb"] == {"objects": 1, "objects-1": 1, "containers": 0, "accounts": 0}


def test_rate_limiter_spreads_units_over_time():
    clock = Clock()
    limit = RateLimiter(1000.0, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        limit.wait(500)            # 5000 units at 1000/s: 4.5 s of waiting after the first
    assert clock.slept == pytest.approx(4.5)
    unlimited = RateLimiter(0, clock=clock, sleep=clock.sleep)
    unlimited.wait(10 ** 9)
    assert clock.slept == pytest.approx(4.5)


def test_auditor_reads_no_faster_than_bytes_per_second(node):
    for index in range(4):
        put_object(node, "sda", f"a/c/o{index}", b"q" * 2000)
    clock = Clock()
    settings = AuditorSettings(devices=node["devices"], mount_check=False,
                               swift_dir=node["swift_dir"], files_per_second=2,
                               bytes_per_second=1000, disk_chunk_bytes=500,
                               recon_cache_path=node["recon"])
    auditor = ObjectAuditor(settings, logging.getLogger("t"), sleep=clock.sleep)
    auditor._bytes_limit = RateLimiter(1000, clock=clock, sleep=clock.sleep)
    auditor._files_limit = RateLimiter(2, clock=clock, sleep=clock.sleep)
    stats = auditor.audit_pass()
    assert stats.bytes_processed == 8000
    # 8000 bytes at 1000 B/s: 7.5 s of sleeping (the first chunk goes at once).
    assert clock.slept == pytest.approx(7.5, abs=0.01)


def test_once_from_the_server_entry_point(node, tmp_path):
    hash_dir = put_object(node, "sda", "a/c/cli", b"abcdef" * 50)
    with open(data_file(hash_dir), "r+b") as handle:
        handle.write(b"!")
    conf = tmp_path / "object-server.conf"
    conf.write_text(f"[DEFAULT]\ndevices = {node['devices']}\nmount_check = false\n"
                    f"swift_dir = {node['swift_dir']}\nrecon_cache_path = {node['recon']}\n"
                    "[object-auditor]\nfiles_per_second = 0\nbytes_per_second = 0\n")
    assert server_main.main(["object-auditor", str(conf), "--once"]) == 0
    assert quarantined(node, "sda") == [os.path.basename(hash_dir)]
    with open(os.path.join(node["recon"], "object.recon")) as handle:
        assert json.load(handle)["object_auditor_stats"]["quarantined"] == 1


# ---- databases ----------------------------------------------------------------------------------

def make_container_db(node, device: str, account: str, container: str, rows: int = 5) -> str:
    name_hash = hash_path(account, container, secrets=SECRETS).hex()
    path = db_file_path(os.path.join(node["devices"], device), "containers", 3, name_hash)
    broker = ContainerBroker(path, account, container)
    broker.initialize(Timestamp.now().internal)
    for index in range(rows):
        broker.put_object(f"o{index}", Timestamp.now().internal, 10, "text/plain", "e" * 32)
    broker.close()
    return path


def make_account_db(node, device: str, account: str) -> str:
    name_hash = hash_path(account, secrets=SECRETS).hex()
    path = db_file_path(os.path.join(node["devices"], device), "accounts", 5, name_hash)
    broker = AccountBroker(path, account)
    broker.initialize(Timestamp.now().internal)
    broker.put_container("c", Timestamp.now().internal, "0", 1, 2)
    broker.close()
    return path


def db_auditor_for(node, kind: str) -> DbAuditor:
    settings = DbAuditorSettings(devices=node["devices"], mount_check=False,
                                 swift_dir=node["swift_dir"], files_per_second=0,
                                 recon_cache_path=node["recon"])
    return DbAuditor(settings, kind, logging.getLogger("t"))


def test_db_auditor_passes_sound_databases(node):
    make_container_db(node, "sda", "AUTH_a", "c1")
    make_container_db(node, "sdb", "AUTH_a", "c2")
    make_account_db(node, "sda", "AUTH_a")
    stats = db_auditor_for(node, "container").audit_pass()
    assert (stats.passes, stats.failures, stats.quarantined) == (2, 0, 0)
    assert db_auditor_for(node, "account").audit_pass().passes == 1
    cache = recon.load_recon_cache(os.path.join(node["recon"], recon.CONTAINER_RECON))
    assert cache["container_auditor_stats"]["passes"] == 2


def test_db_auditor_quarantines_a_corrupt_database(node):
    good = make_container_db(node, "sda", "AUTH_a", "good")
    bad = make_container_db(node, "sda", "AUTH_a", "bad", rows=200)
    with open(bad, "r+b") as handle:
        handle.seek(4096 + 100)                    # into the tables' pages
        handle.write(os.urandom(4096))
    stats = db_auditor_for(node, "container").audit_pass()
    assert stats.quarantined == 1 and stats.passes == 1
    assert os.path.exists(good) and not os.path.exists(bad)
    name_hash = os.path.basename(os.path.dirname(bad))
    moved = os.path.join(node["devices"], "sda", "quarantined", "containers", name_hash)
    assert os.path.exists(os.path.join(moved, os.path.basename(bad)))
    assert os.path.exists(os.path.join(moved, "QUARANTINE_REASON"))


def test_db_auditor_quarantines_a_database_in_the_wrong_directory(node):
    real = make_account_db(node, "sdb", "AUTH_x")
    other_hash = hash_path("AUTH_y", secrets=SECRETS).hex()
    wrong = db_file_path(os.path.join(node["devices"], "sdb"), "accounts", 5, other_hash)
    os.makedirs(os.path.dirname(wrong))
    shutil.copy(real, wrong)
    stats = db_auditor_for(node, "account").audit_pass()
    assert stats.quarantined == 1 and stats.passes == 1
    assert os.path.exists(real) and not os.path.exists(wrong)


def test_db_auditor_settings_from_config(node):
    conf = Config({"devices": node["devices"], "kinds": "account", "interval": "5"},
                  "<t>", "db-auditor")
    settings = DbAuditorSettings.from_config(conf)
    assert settings.kinds == ("account",) and settings.interval_s == 5.0
    assert settings.recon_cache_path == os.path.join(os.path.dirname(node["devices"]),
                                                     "recon")
