"""Object PUT/GET/HEAD/POST/DELETE through the proxy against fake nodes: quorum, handoffs,
error limiting, resuming broken reads, newest-wins, container update headers."""

from __future__ import annotations

import hashlib
import os

import pytest

from common.timestamp import Timestamp
from proxy.controllers.getter import StreamBroken
from proxy.server import app_factory
from ring import Ring, load_hash_secrets
from tests.unit.proxy.fakes import FakeCluster, FakeStorageServer, call

PATH = "/v1/AUTH_test/c/o"


def object_servers(cluster: FakeCluster, obj: str = "o", container: str = "c",
                   ring_name: str = "object.ring") -> tuple[list[FakeStorageServer],
                                                            list[FakeStorageServer]]:
    """(primary servers, handoff servers) of an object, in ring order."""
    secrets = load_hash_secrets(os.path.join(cluster.swift_dir, "ringstack.conf"))
    ring = Ring(os.path.join(cluster.swift_dir, ring_name), secrets)
    part, primaries = ring.get_nodes("AUTH_test", container, obj)
    handoffs = list(ring.get_more_nodes(part))
    return ([cluster.server_for("object", n.port) for n in primaries],
            [cluster.server_for("object", n.port) for n in handoffs])


def holders(cluster: FakeCluster, name: str = "/AUTH_test/c/o") -> list[FakeStorageServer]:
    return [s for s in cluster.objects
            if name in s.store and not s.store[name].get("deleted")]


@pytest.fixture
def container(app, auth):
    assert call(app, "/v1/AUTH_test/c", "PUT", headers=auth).status_int == 201
    return "/v1/AUTH_test/c"


def test_put_then_get_with_container_update_pairing(cluster, app, auth, container):
    body = b"hello world" * 100
    response = call(app, PATH, "PUT", headers=auth, body=body)
    assert response.status_int == 201
    assert response.headers["Etag"] == hashlib.md5(body).hexdigest()
    primaries, _ = object_servers(cluster)
    assert set(holders(cluster)) == set(primaries)
    puts = [s.requests_for("PUT")[-1][2] for s in primaries]
    assert len({h["X-Timestamp"] for h in puts}) == 1          # one timestamp for all
    assert {h["X-Backend-Storage-Policy-Index"] for h in puts} == {"0"}
    secrets = load_hash_secrets(os.path.join(cluster.swift_dir, "ringstack.conf"))
    container_ring = Ring(os.path.join(cluster.swift_dir, "container.ring"), secrets)
    c_part, c_nodes = container_ring.get_nodes("AUTH_test", "c")
    hosts = [h["X-Container-Host"] for h in puts]
    assert all("," not in host for host in hosts)               # 3 replicas: one each
    assert sorted(hosts) == sorted(f"127.0.0.1:{n.port}" for n in c_nodes)
    assert {h["X-Container-Partition"] for h in puts} == {str(c_part)}
    got = call(app, PATH, headers=auth)
    assert got.status_int == 200 and got.body == body
    assert got.headers["Accept-Ranges"] == "bytes"
    assert "X-Backend-Timestamp" not in got.headers             # gatekeeper
    head = call(app, PATH, "HEAD", headers=auth)
    assert head.status_int == 200 and head.headers["Content-Length"] == str(len(body))


def test_put_with_one_primary_down_uses_a_handoff(cluster, app, auth, container):
    primaries, handoffs = object_servers(cluster)
    primaries[0].stop()
    response = call(app, PATH, "PUT", headers=auth, body=b"data")
    assert response.status_int == 201
    assert set(holders(cluster)) == {primaries[1], primaries[2], handoffs[0]}


def test_put_with_two_primaries_down_still_reaches_quorum_through_handoff(cluster, app, auth,
                                                                           container):
    primaries, handoffs = object_servers(cluster)
    primaries[0].stop()
    primaries[1].stop()
    assert call(app, PATH, "PUT", headers=auth, body=b"data").status_int == 201
    assert set(holders(cluster)) == {primaries[2], handoffs[0]}


def test_put_503_when_two_of_three_replicas_are_unreachable(cluster, app, auth, container):
    primaries, handoffs = object_servers(cluster)
    primaries[0].stop()
    primaries[1].stop()
    handoffs[0].stop()
    response = call(app, PATH, "PUT", headers=auth, body=b"data")
    assert response.status_int == 503


def test_put_503_when_two_nodes_fail_after_the_body(cluster, app, auth, container):
    primaries, _ = object_servers(cluster)
    primaries[0].put_final_status = 503
    primaries[1].put_final_status = 503
    assert call(app, PATH, "PUT", headers=auth, body=b"data").status_int == 503


def test_insufficient_storage_node_is_error_limited(cluster, app, auth, container):
    primaries, handoffs = object_servers(cluster)
    primaries[0].status_override = 507
    assert call(app, PATH, "PUT", headers=auth, body=b"one").status_int == 201
    seen = len(primaries[0].requests)
    assert handoffs[0] in holders(cluster)
    assert call(app, PATH, "PUT", headers=auth, body=b"two").status_int == 201
    assert call(app, PATH, headers=auth).body == b"two"
    assert len(primaries[0].requests) == seen      # skipped while error-limited


def test_chunked_put(cluster, app, auth, container):
    response = call(app, PATH, "PUT", headers=auth, body=b"x" * 200000, chunked=True)
    assert response.status_int == 201
    assert len(holders(cluster)) == 3
    assert call(app, PATH, headers=auth).body == b"x" * 200000


def test_etag_mismatch_is_422_and_nothing_is_stored(cluster, app, auth, container):
    response = call(app, PATH, "PUT", headers={**auth, "ETag": "0" * 32}, body=b"data")
    assert response.status_int == 422
    assert holders(cluster) == []
    good = call(app, PATH, "PUT", body=b"data",
                headers={**auth, "ETag": hashlib.md5(b"data").hexdigest()})
    assert good.status_int == 201


def test_get_falls_back_to_another_replica(cluster, app, auth, container):
    call(app, PATH, "PUT", headers=auth, body=b"data")
    primaries, _ = object_servers(cluster)
    primaries[0].stop()
    primaries[1].stop()
    for _ in range(5):                       # whatever the shuffled order
        response = call(app, PATH, headers=auth)
        assert response.status_int == 200 and response.body == b"data"


def test_get_finds_an_object_only_on_a_handoff(cluster, app, auth, container):
    primaries, handoffs = object_servers(cluster)
    primaries[0].stop()
    primaries[1].stop()
    assert call(app, PATH, "PUT", headers=auth, body=b"data").status_int == 201
    # the written primary dies; the others come back empty (no replication yet)
    primaries[2].stop()
    primaries[0].start()
    primaries[1].start()
    response = call(app, PATH, headers=auth)
    assert response.status_int == 200 and response.body == b"data"


def test_404_needs_a_majority_of_primaries(cluster, app, auth, container):
    assert call(app, PATH, headers=auth).status_int == 404
    primaries, handoffs = object_servers(cluster)
    primaries[0].stop()
    primaries[1].stop()
    # one primary's word (and a handoff's 404) is not enough to say the object is gone
    assert call(app, PATH, headers=auth).status_int == 503


def test_get_resumes_a_broken_stream_from_another_replica(cluster, auth):
    app = app_factory(cluster.conf(sorting_method="none", object_chunk_size="4096"))
    token = call(app, "/auth/v1.0",
                 headers={"X-Auth-User": "test:tester", "X-Auth-Key": "testing"}
                 ).headers["X-Auth-Token"]
    headers = {"X-Auth-Token": token}
    call(app, "/v1/AUTH_test/c", "PUT", headers=headers)
    body = os.urandom(300000)
    assert call(app, PATH, "PUT", headers=headers, body=body).status_int == 201
    primaries, _ = object_servers(cluster)
    primaries[0].truncate_gets = True          # a node that finds its copy corrupt mid-read
    response = call(app, PATH, headers=headers)
    assert response.status_int == 200 and response.body == body
    ranges = [h.get("Range") for m, _p, h, _q in primaries[1].requests if m == "GET"]
    assert ranges == [f"bytes={len(body) // 2}-{len(body) - 1}"]
    # with a client Range, the resumed request asks for the rest of that range only
    primaries[1].truncate_gets = True
    ranged = call(app, PATH, headers={**headers, "Range": "bytes=1000-200999"})
    assert ranged.status_int == 206 and ranged.body == body[1000:201000]
    assert ranged.headers["Content-Range"] == f"bytes 1000-200999/{len(body)}"


def test_newest_wins(cluster, app, auth, container):
    call(app, PATH, "PUT", headers=auth, body=b"new")
    primaries, _ = object_servers(cluster)
    stale = dict(primaries[0].store["/AUTH_test/c/o"])
    stale.update(body=b"old", etag=hashlib.md5(b"old").hexdigest(),
                 timestamp=Timestamp(stale["timestamp"].seconds - 100))
    primaries[0].store["/AUTH_test/c/o"] = stale
    for _ in range(5):
        response = call(app, PATH, headers={**auth, "X-Newest": "true"})
        assert response.body == b"new"


def test_a_newer_tombstone_beats_older_data(cluster, auth):
    app = app_factory(cluster.conf(sorting_method="none"))
    token = call(app, "/auth/v1.0",
                 headers={"X-Auth-User": "test:tester", "X-Auth-Key": "testing"}
                 ).headers["X-Auth-Token"]
    headers = {"X-Auth-Token": token}
    call(app, "/v1/AUTH_test/c", "PUT", headers=headers)
    call(app, PATH, "PUT", headers=headers, body=b"data")
    primaries, _ = object_servers(cluster)
    record = primaries[0].store["/AUTH_test/c/o"]
    # the first node consulted missed the data but holds a newer delete
    primaries[0].store["/AUTH_test/c/o"] = {
        "timestamp": Timestamp(record["timestamp"].seconds + 10), "deleted": True}
    assert call(app, PATH, headers=headers).status_int == 404


def test_post_updates_metadata_everywhere(cluster, app, auth, container):
    call(app, PATH, "PUT", headers=auth, body=b"data")
    response = call(app, PATH, "POST", headers={**auth, "X-Object-Meta-Color": "blue"})
    assert response.status_int == 202
    assert all(s.store["/AUTH_test/c/o"]["meta"].get("X-Object-Meta-Color") == "blue"
               for s in holders(cluster))
    assert call(app, PATH, "HEAD", headers=auth).headers["X-Object-Meta-Color"] == "blue"


def test_delete_quorum(cluster, app, auth, container):
    call(app, PATH, "PUT", headers=auth, body=b"data")
    assert call(app, PATH, "DELETE", headers=auth).status_int == 204
    assert holders(cluster) == []
    assert call(app, PATH, headers=auth).status_int == 404
    # only one replica ever had it: the majority says "not found"
    primaries, _ = object_servers(cluster, obj="lonely")
    primaries[0].store["/AUTH_test/c/lonely"] = {
        "timestamp": Timestamp.now(), "body": b"x", "etag": hashlib.md5(b"x").hexdigest(),
        "meta": {}}
    assert call(app, "/v1/AUTH_test/c/lonely", "DELETE", headers=auth).status_int == 404


def test_put_into_a_missing_container_is_404(cluster, app, auth):
    assert call(app, "/v1/AUTH_test/nope/o", "PUT", headers=auth, body=b"x").status_int == 404


def test_content_type_is_guessed(cluster, app, auth, container):
    call(app, "/v1/AUTH_test/c/photo.jpg", "PUT", headers=auth, body=b"jpeg")
    assert call(app, "/v1/AUTH_test/c/photo.jpg", "HEAD",
                headers=auth).headers["Content-Type"] == "image/jpeg"
    call(app, "/v1/AUTH_test/c/blob", "PUT", headers=auth, body=b"?")
    assert call(app, "/v1/AUTH_test/c/blob", "HEAD",
                headers=auth).headers["Content-Type"] == "application/octet-stream"


def test_delete_after_becomes_delete_at(cluster, app, auth, container):
    before = int(Timestamp.now().seconds)
    call(app, PATH, "PUT", headers={**auth, "X-Delete-After": "3600"}, body=b"x")
    primaries, _ = object_servers(cluster)
    headers = primaries[0].requests_for("PUT")[-1][2]
    assert "X-Delete-After" not in headers
    assert before + 3600 <= int(headers["X-Delete-At"]) <= before + 3602
    assert headers["X-Delete-At-Container"].isdigit()
    assert headers["X-Delete-At-Host"].startswith("127.0.0.1:")
    bad = call(app, PATH, "PUT", headers={**auth, "X-Delete-After": "soon"}, body=b"x")
    assert bad.status_int == 400 and bad.body == b"Non-integer X-Delete-After"
    past = call(app, PATH, "PUT", headers={**auth, "X-Delete-At": "1000"}, body=b"x")
    assert past.status_int == 400 and past.body == b"X-Delete-At in past"


def test_silver_policy_uses_its_own_ring(cluster, app, auth):
    response = call(app, "/v1/AUTH_test/s", "PUT", headers={**auth, "X-Storage-Policy": "silver"})
    assert response.status_int == 201
    assert call(app, "/v1/AUTH_test/s/o", "PUT", headers=auth, body=b"x").status_int == 201
    primaries, _ = object_servers(cluster, container="s", ring_name="object-1.ring")
    puts = [s.requests_for("PUT")[-1][2] for s in primaries]
    assert {h["X-Backend-Storage-Policy-Index"] for h in puts} == {"1"}


def test_if_none_match_star(cluster, app, auth, container):
    headers = {**auth, "If-None-Match": "*"}
    assert call(app, PATH, "PUT", headers=headers, body=b"one").status_int == 201
    assert call(app, PATH, "PUT", headers=headers, body=b"two").status_int == 412
    assert call(app, PATH, headers=auth).body == b"one"
    bad = call(app, PATH, "PUT", headers={**auth, "If-None-Match": "abc"}, body=b"x")
    assert bad.status_int == 400


def _token_app(cluster, **conf):
    app = app_factory(cluster.conf(**conf))
    token = call(app, "/auth/v1.0",
                 headers={"X-Auth-User": "test:tester", "X-Auth-Key": "testing"}
                 ).headers["X-Auth-Token"]
    return app, {"X-Auth-Token": token}


def test_a_node_that_does_not_answer_in_time_is_passed_over(cluster):
    app, headers = _token_app(cluster, node_timeout="0.3", sorting_method="none")
    call(app, "/v1/AUTH_test/c", "PUT", headers=headers)
    call(app, PATH, "PUT", headers=headers, body=b"data")
    primaries, _ = object_servers(cluster)
    primaries[0].hang_s = 1.0
    response = call(app, PATH, headers=headers)
    assert response.status_int == 200 and response.body == b"data"


def test_a_stalled_body_is_resumed_after_the_recoverable_timeout(cluster):
    app, headers = _token_app(cluster, recoverable_node_timeout="0.2", sorting_method="none")
    call(app, "/v1/AUTH_test/c", "PUT", headers=headers)
    body = os.urandom(100000)
    call(app, PATH, "PUT", headers=headers, body=body)
    primaries, _ = object_servers(cluster)
    primaries[0].stall_gets_s = 2.0
    response = call(app, PATH, headers=headers)
    assert response.status_int == 200 and response.body == body
    assert any(h.get("Range") for m, _p, h, _q in primaries[1].requests if m == "GET")


def test_bad_bytes_sent_before_a_break_never_make_a_complete_body(cluster):
    app, headers = _token_app(cluster, sorting_method="none")
    call(app, "/v1/AUTH_test/c", "PUT", headers=headers)
    body = os.urandom(100000)
    call(app, PATH, "PUT", headers=headers, body=body)
    primaries, _ = object_servers(cluster)
    primaries[0].corrupt_gets = True
    with pytest.raises(StreamBroken, match="MD5 mismatch"):
        _ = call(app, PATH, headers=headers).body  # the server drops the client connection
    primaries[0].corrupt_gets = False
    primaries[0].stop()                            # (quarantined, in a real object server)
    assert call(app, PATH, headers=headers).body == body


def test_utf8_names(cluster, app, auth):
    container, obj = "/v1/AUTH_test/caf%C3%A9", "/v1/AUTH_test/caf%C3%A9/%E2%98%83%20snow"
    assert call(app, container, "PUT", headers=auth).status_int == 201
    assert call(app, obj, "PUT", headers=auth, body=b"cold").status_int == 201
    assert len(holders(cluster, "/AUTH_test/café/☃ snow")) == 3
    assert call(app, obj, headers=auth).body == b"cold"
    odd_header = call(app, obj, "POST", headers={**auth, "X-Object-Meta-\xff": "v"})
    assert odd_header.status_int == 400 and odd_header.body == b"Invalid header name"
