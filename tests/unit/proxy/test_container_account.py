"""Container and account requests: pairing headers, policies, autocreate, listings, limits."""

from __future__ import annotations

import json
import os

from ring import Ring, load_hash_secrets
from tests.unit.proxy.fakes import FakeCluster, call


def ring(cluster: FakeCluster, name: str) -> Ring:
    secrets = load_hash_secrets(os.path.join(cluster.swift_dir, "ringstack.conf"))
    return Ring(os.path.join(cluster.swift_dir, f"{name}.ring"), secrets)


def test_container_put_pairs_account_updates_and_autocreates(cluster, app, auth):
    response = call(app, "/v1/AUTH_test/c", "PUT", headers=auth)
    assert response.status_int == 201
    # the account did not exist: it was created on its primaries first
    account_part, account_nodes = ring(cluster, "account").get_nodes("AUTH_test")
    account_primaries = [cluster.server_for("account", n.port) for n in account_nodes]
    assert all("/AUTH_test" in s.store for s in account_primaries)
    part, nodes = ring(cluster, "container").get_nodes("AUTH_test", "c")
    puts = [cluster.server_for("container", n.port).requests_for("PUT")[-1][2] for n in nodes]
    assert sorted(h["X-Account-Host"] for h in puts) == \
        sorted(f"127.0.0.1:{n.port}" for n in account_nodes)
    assert {h["X-Account-Partition"] for h in puts} == {str(account_part)}
    assert sorted(h["X-Account-Device"] for h in puts) == sorted(n.device for n in account_nodes)
    assert {h["X-Backend-Storage-Policy-Index"] for h in puts} == {"0"}
    assert {h["X-Backend-Storage-Policy-Default"] for h in puts} == {"0"}
    head = call(app, "/v1/AUTH_test/c", "HEAD", headers=auth)
    assert head.status_int == 204 and head.headers["X-Storage-Policy"] == "gold"


def test_storage_policy_by_name(cluster, app, auth):
    headers = {**auth, "X-Storage-Policy": "silver"}
    assert call(app, "/v1/AUTH_test/s", "PUT", headers=headers).status_int == 201
    head = call(app, "/v1/AUTH_test/s", "HEAD", headers=auth)
    assert head.headers["X-Storage-Policy"] == "silver"
    # a re-PUT without a policy keeps the container's own
    assert call(app, "/v1/AUTH_test/s", "PUT", headers=auth).status_int == 202
    _part, nodes = ring(cluster, "container").get_nodes("AUTH_test", "s")
    last = cluster.server_for("container", nodes[0].port).requests_for("PUT")[-1][2]
    assert last["X-Backend-Storage-Policy-Index"] == "1"
    bad = call(app, "/v1/AUTH_test/x", "PUT", headers={**auth, "X-Storage-Policy": "bronze"})
    assert bad.status_int == 400 and bad.body == b"Invalid X-Storage-Policy 'bronze'"


def test_container_put_survives_one_dead_container_server(cluster, app, auth):
    _part, nodes = ring(cluster, "container").get_nodes("AUTH_test", "c")
    cluster.server_for("container", nodes[0].port).stop()
    assert call(app, "/v1/AUTH_test/c", "PUT", headers=auth).status_int == 201
    assert call(app, "/v1/AUTH_test/c", "HEAD", headers=auth).status_int == 204


def test_container_put_503_without_a_quorum(cluster, app, auth):
    for server in cluster.containers[:3]:
        server.stop()
    assert call(app, "/v1/AUTH_test/c", "PUT", headers=auth).status_int == 503


def test_listing_passes_query_parameters(cluster, app, auth):
    call(app, "/v1/AUTH_test/c", "PUT", headers=auth)
    _part, nodes = ring(cluster, "container").get_nodes("AUTH_test", "c")
    for node in nodes:
        cluster.server_for("container", node.port).rows["/AUTH_test/c"] = {
            "apple": {"bytes": 1}, "banana": {"bytes": 2}}
    response = call(app, "/v1/AUTH_test/c?prefix=b&format=json&delimiter=/&limit=5",
                    headers=auth)
    assert response.status_int == 200
    assert [row["name"] for row in json.loads(response.body)] == ["banana"]
    queries = [q for node in nodes
               for m, _p, _h, q in cluster.server_for("container", node.port).requests
               if m == "GET"]
    assert queries and all("prefix=b" in q and "delimiter=" in q and "limit=5" in q
                           for q in queries)
    too_many = call(app, "/v1/AUTH_test/c?limit=10001", headers=auth)
    assert too_many.status_int == 412 and too_many.body == b"Maximum limit is 10000"


def test_container_delete(cluster, app, auth):
    call(app, "/v1/AUTH_test/c", "PUT", headers=auth)
    _part, nodes = ring(cluster, "container").get_nodes("AUTH_test", "c")
    for node in nodes:
        cluster.server_for("container", node.port).rows["/AUTH_test/c"] = {"o": {}}
    assert call(app, "/v1/AUTH_test/c", "DELETE", headers=auth).status_int == 409
    for node in nodes:
        cluster.server_for("container", node.port).rows.clear()
    assert call(app, "/v1/AUTH_test/c", "DELETE", headers=auth).status_int == 204
    assert call(app, "/v1/AUTH_test/c", "DELETE", headers=auth).status_int == 404
    assert call(app, "/v1/AUTH_test/c", "HEAD", headers=auth).status_int == 404


def test_container_metadata_post_and_limits(cluster, app, auth):
    call(app, "/v1/AUTH_test/c", "PUT", headers=auth)
    ok = call(app, "/v1/AUTH_test/c", "POST", headers={**auth, "X-Container-Meta-Team": "blue"})
    assert ok.status_int == 204
    assert call(app, "/v1/AUTH_test/c", "HEAD",
                headers=auth).headers["X-Container-Meta-Team"] == "blue"
    removed = call(app, "/v1/AUTH_test/c", "POST",
                   headers={**auth, "X-Remove-Container-Meta-Team": "x"})
    assert removed.status_int == 204
    assert "X-Container-Meta-Team" not in call(app, "/v1/AUTH_test/c", "HEAD",
                                               headers=auth).headers
    cases = [
        ({"X-Container-Meta-" + "n" * 129: "v"}, b"Metadata name too long: x-container-meta-"),
        ({"X-Container-Meta-Big": "v" * 257},
         b"Metadata value longer than 256: x-container-meta-Big"),
        ({f"X-Container-Meta-K{i}": "v" for i in range(91)}, b"Too many metadata items; max 90"),
        ({f"X-Container-Meta-K{i}": "v" * 250 for i in range(20)},
         b"Total metadata too large; max 4096"),
    ]
    for headers, message in cases:
        response = call(app, "/v1/AUTH_test/c", "POST", headers={**auth, **headers})
        assert response.status_int == 400 and response.body.startswith(message), response.body


def test_name_lengths(cluster, app, auth):
    long_container = call(app, "/v1/AUTH_test/" + "c" * 257, "PUT", headers=auth)
    assert long_container.status_int == 400
    assert long_container.body == b"Container name length of 257 longer than 256"
    call(app, "/v1/AUTH_test/c", "PUT", headers=auth)
    long_object = call(app, "/v1/AUTH_test/c/" + "o" * 1025, "PUT", headers=auth, body=b"x")
    assert long_object.status_int == 400
    assert long_object.body == b"Object name length of 1025 longer than 1024"


def test_account_autocreate_reads_and_management(cluster, app, auth):
    head = call(app, "/v1/AUTH_test", "HEAD", headers=auth)
    assert head.status_int == 204 and head.headers["X-Account-Container-Count"] == "0"
    listing = call(app, "/v1/AUTH_test?format=json", headers=auth)
    assert listing.status_int == 200 and listing.body == b"[]"
    # account admins cannot create or delete accounts; reseller admins can
    assert call(app, "/v1/AUTH_test", "PUT", headers=auth).status_int == 403
    admin = call(app, "/auth/v1.0", headers={"X-Auth-User": "admin:admin", "X-Auth-Key": "admin"})
    admin_headers = {"X-Auth-Token": admin.headers["X-Auth-Token"]}
    assert call(app, "/v1/AUTH_other", "PUT", headers=admin_headers).status_int == 201
    assert call(app, "/v1/AUTH_other", "HEAD", headers=admin_headers).status_int == 204
    posted = call(app, "/v1/AUTH_test", "POST", headers={**auth, "X-Account-Meta-Quota": "9"})
    assert posted.status_int == 204       # autocreated by the POST
    assert call(app, "/v1/AUTH_test", "HEAD",
                headers=auth).headers["X-Account-Meta-Quota"] == "9"
    assert call(app, "/v1/AUTH_test?x=1", "DELETE", headers=admin_headers).status_int == 400


def test_info_helpers_for_middlewares(cluster, app, auth):
    from proxy.controllers.base import get_account_info, get_container_info, get_object_info
    call(app, "/v1/AUTH_test/c", "PUT", headers={**auth, "X-Container-Read": ".r:*",
                                                 "X-Container-Meta-Color": "red"})
    call(app, "/v1/AUTH_test/c/o", "PUT", headers={**auth, "X-Object-Meta-Size": "L"}, body=b"x")
    env = {"PATH_INFO": "/v1/AUTH_test/c/o", "REQUEST_METHOD": "GET"}
    info = get_container_info(env, app)
    assert info["status"] == 204 and info["read_acl"] == ".r:*"
    assert info["meta"] == {"color": "red"} and info["storage_policy"] == "0"
    assert get_container_info(env, app) is info          # cached for the request
    assert get_account_info(env, app)["status"] == 204
    obj = get_object_info(env, app)
    assert (obj["status"], obj["length"], obj["meta"]) == (200, "1", {"size": "L"})
