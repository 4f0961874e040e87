"""Probe: expiring objects on a real cluster. An object PUT with X-Delete-After: 1 reads as
gone once its time has passed, but stays in its container's listing and on disk until the
expirer runs; one `ringstack-server object-expirer CONF --once` deletes it on every replica
(tombstones at the delete-at time), drops it from the listing and empties the queue.
"""

from __future__ import annotations

import glob
import json
import os
import time

import pytest

from ring.hashing import hash_path
from tests.probe.test_auditor import daemon_conf, run_daemon

pytestmark = pytest.mark.slow
ACCOUNT_REPORT_WAIT_S = 3.0        # the container servers report new queue containers ~1 s


def listing_of(probe, container: str) -> list[dict]:
    storage, token = probe.auth()
    status, _headers, body = probe._http("GET", f"{storage}/{container}?format=json",
                                         {"X-Auth-Token": token})
    assert status == 200, (status, body)
    return json.loads(body)


def test_object_with_delete_after_disappears_after_one_expirer_pass(probe):
    assert probe.swift("PUT", "/exp")[0] in (201, 202)
    assert probe.swift("PUT", "/exp/brief", b"short-lived",
                       {"X-Delete-After": "1"})[0] == 201
    assert probe.swift("PUT", "/exp/lasting", b"stays")[0] == 201
    time.sleep(max(2.0, ACCOUNT_REPORT_WAIT_S))
    assert probe.swift("GET", "/exp/brief")[0] == 404          # expired: served as gone
    listing = listing_of(probe, "exp")
    assert [row["name"] for row in listing] == ["brief", "lasting"]

    output = run_daemon(probe, "object-expirer", daemon_conf(probe, 1, "object",
                                                             "object-expirer"))
    assert "1 expired" in output, output
    listing = listing_of(probe, "exp")
    assert [row["name"] for row in listing] == ["lasting"]
    ring = probe.object_ring()
    name_hash = hash_path(probe.account, "exp", "brief", ring.secrets).hex()
    part = ring.get_part(probe.account, "exp", "brief")
    hash_dirs = glob.glob(os.path.join(probe.data_dir, "srv", "*", "*", "objects", str(part),
                                       name_hash[-3:], name_hash))
    assert len(hash_dirs) == 3
    for hash_dir in hash_dirs:
        assert [n.rsplit(".", 1)[1] for n in os.listdir(hash_dir)] == ["ts"]
    assert probe.swift("GET", "/exp/lasting")[2] == b"stays"
    # Nothing is left to do: a second pass expires nothing.
    output = run_daemon(probe, "object-expirer", daemon_conf(probe, 1, "object",
                                                             "object-expirer"))
    assert "0 expired" in output, output
