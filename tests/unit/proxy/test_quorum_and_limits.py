"""Pure parts of the data path: quorum votes, error limiting, node iteration, the watchdog."""

from __future__ import annotations

import eventlet
import pytest

from proxy.backend import NodeIter
from proxy.error_limiter import ErrorLimiter
from proxy.quorum import choose_response, quorum_size
from proxy.settings import node_count_for
from proxy.watchdog import StallWatchdog, StreamStalled
from ring import HashSecrets, Node, Ring
from ring.builder import RingBuilder


def test_quorum_size():
    assert [quorum_size(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]


@pytest.mark.parametrize(("statuses", "expected"), [
    ([201, 201, 201], 201),
    ([201, 201, 503], 201),
    ([201, 503, 503], 503),            # one success is not a quorum
    ([404, 404, 503], 404),
    ([404, 503, 503], 503),            # never a 404 on the word of one node
    ([202, 201, 201], 202),            # the largest status of the winning class
    ([503, 503, 503], 503),            # 5xx never forms a quorum
    ([409, 404, 201], 409),
])
def test_choose_response(statuses, expected):
    assert choose_response(statuses, quorum_size(3))[0] == expected


def test_choose_response_overrides_apply_only_without_quorum():
    # DELETE: a majority of 404s is a 404 ...
    assert choose_response([404, 404, 204], 2, {404: 204}) == (404, 0)
    # ... but one 404 next to one 204 and a dead node is a successful delete
    status, index = choose_response([404, 204, 503], 2, {404: 204})
    assert status == 204 and index == 1    # the real 204's answer, not the overridden one


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _node(ring_node_port=6200, device="sda"):
    return Node(0, 1, 1, "127.0.0.1", ring_node_port, "127.0.0.1", ring_node_port, device,
                100.0, "", 0)


def test_error_limiter_window():
    clock = FakeClock()
    limiter = ErrorLimiter(60, 3, clock=clock)
    node = _node()
    limiter.record_error(node, "boom")
    clock.now += 61                        # the first error ages out of the window
    limiter.record_error(node, "boom")
    limiter.record_error(node, "boom")
    assert not limiter.is_limited(node)
    limiter.record_error(node, "boom")     # three within 60 s
    assert limiter.is_limited(node)
    assert not limiter.is_limited(_node(device="sdb"))
    clock.now += 59
    assert limiter.is_limited(node)
    clock.now += 2
    assert not limiter.is_limited(node)     # skipped for one interval, then tried again


def test_error_limiter_507_limits_at_once():
    clock = FakeClock()
    limiter = ErrorLimiter(60, 10, clock=clock)
    node = _node()
    limiter.limit(node, "507")
    assert limiter.is_limited(node)


def _ring(tmp_path, devices=6):
    builder = RingBuilder(6, 3, 0)
    for index in range(devices):
        builder.add_device(region=1, zone=index + 1, ip="127.0.0.1", port=6200 + index,
                           device="sda", weight=100)
    builder.rebalance(seed=3)
    path = str(tmp_path / "object.ring")
    builder.ring_data().save(path)
    return Ring(path, HashSecrets(b"a", b"b"))


def test_node_iter_primaries_then_handoffs(tmp_path):
    ring = _ring(tmp_path)
    limiter = ErrorLimiter(60, 10)
    nodes = list(NodeIter(ring, 5, limiter, node_count_for("2 * replicas", 3)))
    primaries = ring.get_part_nodes(5)
    assert nodes[:3] == primaries
    assert [n.handoff for n in nodes] == [False] * 3 + [True] * 3
    assert nodes[3:] == list(ring.get_more_nodes(5))[:3]


def test_node_iter_skips_error_limited_and_keeps_count(tmp_path):
    ring = _ring(tmp_path)
    limiter = ErrorLimiter(60, 10)
    primaries = ring.get_part_nodes(7)
    limiter.limit(primaries[0], "test")
    nodes = list(NodeIter(ring, 7, limiter, 4))
    assert primaries[0] not in nodes
    assert nodes[:2] == primaries[1:]
    assert len(nodes) == 4 and nodes[2].handoff and nodes[3].handoff


def test_node_iter_ends_with_the_ring(tmp_path):
    ring = _ring(tmp_path, devices=4)
    nodes = list(NodeIter(ring, 1, ErrorLimiter(60, 10), 100))
    assert len(nodes) == 4


def test_node_iter_tries_limited_nodes_last_when_the_ring_runs_out(tmp_path):
    # 4 devices, 3 of them limited (restarted servers stay limited for the interval): the
    # healthy one comes first, then the limited ones, rather than a 503 with too few nodes.
    ring = _ring(tmp_path, devices=4)
    limiter = ErrorLimiter(60, 10)
    primaries = ring.get_part_nodes(2)
    handoff = next(iter(ring.get_more_nodes(2)))
    for node in primaries:
        limiter.limit(node, "test")
    nodes = list(NodeIter(ring, 2, limiter, 6))
    assert [(n.ip, n.port) for n in nodes] == \
        [(n.ip, n.port) for n in [handoff, *primaries]]


def test_a_limited_node_that_answers_is_used_again():
    limiter = ErrorLimiter(60, 10, clock=FakeClock())
    node = _node()
    limiter.limit(node, "507")
    limiter.record_success(node)
    assert not limiter.is_limited(node)


def test_request_node_count_syntax():
    assert node_count_for("2 * replicas", 3) == 6
    assert node_count_for("5", 3) == 5
    with pytest.raises(ValueError):
        node_count_for("lots", 3)


def test_watchdog_interrupts_a_stall_and_spares_progress():
    watchdog = StallWatchdog(0.05, "test")
    watchdog.arm()
    with pytest.raises(StreamStalled):
        eventlet.sleep(1)
    assert watchdog.fired
    watchdog.cancel()

    steady = StallWatchdog(0.05, "steady")
    for _ in range(8):                      # keeps making progress: never fires
        steady.arm()
        eventlet.sleep(0.02)
        steady.disarm()
    steady.disarm()
    eventlet.sleep(0.1)                     # disarmed (e.g. writing to a slow client)
    assert not steady.fired
    steady.cancel()
