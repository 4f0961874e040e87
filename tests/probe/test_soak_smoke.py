"""Smoke run of bench/soak_bench.py (opt-in, `-m bench`): a small seeded soak with one
kill -9 and restart, checked for the promises the benchmark reports on: nothing acknowledged
is lost or served with the wrong bytes, and replication restores every replica."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.bench

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_soak_bench_small_run() -> None:
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "bench", "soak_bench.py"), "--objects", "120",
         "--faults", "1", "--seed", "3", "--skip-throughput", "--max-passes", "4"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr[-3000:]
    report = json.loads(lines[-1])
    assert "error" not in report, report
    assert report["faults_done"] == 1, report["fault_log"]
    assert report["objects_acknowledged"] > 0
    assert report["objects_lost"] == 0, report["lost_examples"]
    assert report["objects_wrong_content"] == 0, report["wrong_examples"]
    assert report["converged"], report["short_examples"]
    assert report["replicas_bad_on_disk"] == 0
    assert result.returncode == 0
