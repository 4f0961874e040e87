"""The Keystone v3 API through webob requests: shapes clients parse, statuses, and policy."""

from __future__ import annotations

import base64

import pytest

from common.aws_sig import derive_v4_signing_key, sign_v2, sign_v4


def _ids(api):
    store = api.services.store
    return {"tester": store.find("users", name="tester")["id"],
            "reader": store.find("users", name="reader")["id"],
            "test": store.find("projects", name="test")["id"],
            "member": store.find("roles", name="member")["id"]}


def test_version_discovery_shapes(api):
    root = api.call("GET", "/")
    assert root.status_int == 300
    value = root.json["versions"]["values"][0]
    assert value["id"] == "v3.14" and value["status"] == "stable"
    assert value["links"] == [{"rel": "self", "href": "http://localhost/v3/"}]
    assert value["media-types"][0]["type"] == "application/vnd.openstack.identity-v3+json"
    for path in ("/v3", "/v3/"):
        assert api.call("GET", path).json["version"]["id"] == "v3.14"


def test_token_issue_validate_head_and_revoke(api):
    issued = api.password_auth("tester", "testing", "test")
    assert issued.status_int == 201
    token = issued.headers["X-Subject-Token"]
    body = issued.json["token"]
    assert body["methods"] == ["password"] and body["user"]["name"] == "tester"
    assert body["user"]["domain"] == {"id": "default", "name": "Default"}
    assert body["project"]["name"] == "test" and [r["name"] for r in body["roles"]] == ["member"]
    assert body["expires_at"].endswith("Z") and len(body["audit_ids"]) == 1
    swift = next(s for s in body["catalog"] if s["type"] == "object-store")
    assert {e["url"] for e in swift["endpoints"]} == {
        f"http://swift.example:8080/v1/AUTH_{body['project']['id']}"}

    own = api.call("GET", "/v3/auth/tokens", token=token, headers={"X-Subject-Token": token})
    assert own.status_int == 200 and own.json["token"]["audit_ids"] == body["audit_ids"]
    head = api.call("HEAD", "/v3/auth/tokens", token=token, headers={"X-Subject-Token": token})
    assert head.status_int == 200 and head.body == b""
    nocatalog = api.call("GET", "/v3/auth/tokens?nocatalog", token=token,
                         headers={"X-Subject-Token": token})
    assert "catalog" not in nocatalog.json["token"]

    assert api.call("DELETE", "/v3/auth/tokens", token=api.admin_token(),
                    headers={"X-Subject-Token": token}).status_int == 204
    gone = api.call("GET", "/v3/auth/tokens", token=api.admin_token(),
                    headers={"X-Subject-Token": token})
    assert gone.status_int == 404 and gone.json["error"]["code"] == 404


def test_bad_caller_is_401_bad_subject_404_and_others_tokens_403(api):
    tester = api.token("tester", "testing", "test")
    reader = api.token("reader", "reading", "test")
    service = api.token("proxy", "proxying", "service")
    bad = api.call("GET", "/v3/auth/tokens", token="garbage", headers={"X-Subject-Token": tester})
    assert bad.status_int == 401 and bad.json["error"]["title"] == "Unauthorized"
    assert "WWW-Authenticate" in bad.headers
    assert api.call("GET", "/v3/auth/tokens", headers={"X-Subject-Token": tester}
                    ).status_int == 401
    tampered = tester[:50] + ("A" if tester[50] != "A" else "B") + tester[51:]
    assert api.call("GET", "/v3/auth/tokens", token=service,
                    headers={"X-Subject-Token": tampered}).status_int == 404
    assert api.call("GET", "/v3/auth/tokens", token=reader,
                    headers={"X-Subject-Token": tester}).status_int == 403
    assert api.call("GET", "/v3/auth/tokens", token=service,
                    headers={"X-Subject-Token": tester}).status_int == 200
    assert api.call("GET", "/v3/auth/tokens", token=service).status_int == 400


def test_unscoped_token_rescope_and_auth_listings(api):
    unscoped = api.call("POST", "/v3/auth/tokens", {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "id": _ids(api)["reader"], "password": "reading"}}}, "scope": "unscoped"}})
    assert unscoped.status_int == 201 and "project" not in unscoped.json["token"]
    token = unscoped.headers["X-Subject-Token"]
    projects = api.ok("GET", "/v3/auth/projects", token=token)["projects"]
    assert [p["name"] for p in projects] == ["test"]
    assert api.call("GET", "/v3/auth/catalog", token=token).status_int == 403
    scoped = api.call("POST", "/v3/auth/tokens", {"auth": {
        "identity": {"methods": ["token"], "token": {"id": token}},
        "scope": {"project": {"id": projects[0]["id"]}}}})
    assert scoped.status_int == 201 and scoped.json["token"]["methods"] == ["token"]
    catalog = api.ok("GET", "/v3/auth/catalog", token=scoped.headers["X-Subject-Token"])
    assert {s["type"] for s in catalog["catalog"]} == {"identity", "object-store"}
    no_scope = api.call("POST", "/v3/auth/tokens", {"auth": {"identity": {
        "methods": ["password"], "password": {"user": {"id": _ids(api)["reader"],
                                                       "password": "reading"}}}}})
    assert no_scope.json["token"]["project"]["name"] == "test"   # the default project
    domain_scope = api.call("POST", "/v3/auth/tokens", {"auth": {
        "identity": {"methods": ["token"], "token": {"id": token}},
        "scope": {"domain": {"id": "default"}}}})
    assert domain_scope.status_int == 401


@pytest.mark.parametrize("raw", [b"{", b"[]", b"null", b'"x"', b"\xff\xfe"])
def test_malformed_bodies_are_400(api, raw):
    response = api.call("POST", "/v3/auth/tokens", raw=raw)
    assert response.status_int == 400 and response.json["error"]["code"] == 400


def test_unknown_paths_and_methods(api):
    assert api.call("GET", "/v3/nothing").status_int == 404
    assert api.call("PUT", "/v3/auth/tokens").status_int == 405
    assert api.call("GET", "/v3/users/nobody", token=api.admin_token()).status_int == 404


def test_user_lifecycle_and_policy(api):
    admin = api.admin_token()
    created = api.call("POST", "/v3/users", {"user": {
        "name": "alice", "password": "pw1", "email": "a@example.com"}}, admin)
    assert created.status_int == 201
    user = created.json["user"]
    assert user["domain_id"] == "default" and user["email"] == "a@example.com"
    assert "password" not in user and "pw1" not in created.text
    duplicate = api.call("POST", "/v3/users", {"user": {"name": "ALICE"}}, admin)
    assert duplicate.status_int == 409
    assert api.call("POST", "/v3/users", {"user": {"password": "x"}}, admin).status_int == 400
    assert api.call("POST", "/v3/users", {"user": {"name": "b", "enabled": "yes"}},
                    admin).status_int == 400
    assert [u["name"] for u in api.ok("GET", "/v3/users?name=alice")["users"]] == ["alice"]

    project = api.ok("POST", "/v3/projects", {"project": {"name": "demo"}})["project"]
    assert project["domain_id"] == "default" and project["is_domain"] is False
    member = _ids(api)["member"]
    grant = f"/v3/projects/{project['id']}/users/{user['id']}/roles/{member}"
    assert api.call("HEAD", grant, token=admin).status_int == 404
    assert api.call("PUT", grant, token=admin).status_int == 204
    assert api.call("HEAD", grant, token=admin).status_int == 204

    alice = api.token("alice", "pw1", "demo")
    assert api.call("GET", f"/v3/users/{user['id']}", token=alice).status_int == 200
    assert api.call("GET", f"/v3/users/{_ids(api)['tester']}", token=alice).status_int == 403
    assert api.call("GET", "/v3/users", token=alice).status_int == 403
    assert api.call("POST", "/v3/projects", {"project": {"name": "x"}}, alice).status_int == 403
    assert api.call("GET", f"/v3/projects/{project['id']}", token=alice).status_int == 200
    own = api.ok("GET", f"/v3/role_assignments?user.id={user['id']}", token=alice)
    assert len(own["role_assignments"]) == 1
    assert api.call("GET", "/v3/role_assignments", token=alice).status_int == 403

    # Disabling ends alice's tokens; enabling again does not bring them back.
    api.ok("PATCH", f"/v3/users/{user['id']}", {"user": {"enabled": False}})
    assert api.password_auth("alice", "pw1", "demo").status_int == 401
    api.ok("PATCH", f"/v3/users/{user['id']}", {"user": {"enabled": True}})
    assert api.call("GET", f"/v3/users/{user['id']}", token=alice).status_int == 401

    # Self-service password change: needs the original, ends every earlier token.
    alice = api.token("alice", "pw1", "demo")
    wrong = api.call("POST", f"/v3/users/{user['id']}/password", {"user": {
        "original_password": "nope", "password": "pw2"}})
    assert wrong.status_int == 401
    changed = api.call("POST", f"/v3/users/{user['id']}/password", {"user": {
        "original_password": "pw1", "password": "pw2"}})
    assert changed.status_int == 204
    assert api.call("GET", f"/v3/users/{user['id']}", token=alice).status_int == 401
    assert api.password_auth("alice", "pw1", "demo").status_int == 401
    alice = api.token("alice", "pw2", "demo")

    assert api.call("DELETE", grant, token=admin).status_int == 204
    assert api.call("DELETE", grant, token=admin).status_int == 404
    assert api.call("GET", f"/v3/users/{user['id']}", token=alice).status_int == 401
    assert api.call("DELETE", f"/v3/users/{user['id']}", token=admin).status_int == 204
    assert api.call("DELETE", f"/v3/users/{user['id']}", token=admin).status_int == 404


def test_role_assignments_with_names_and_filters(api):
    ids = _ids(api)
    listing = api.ok("GET", f"/v3/role_assignments?scope.project.id={ids['test']}"
                            "&include_names=True")["role_assignments"]
    by_user = {a["user"]["name"]: a for a in listing}
    assert set(by_user) == {"tester", "reader"}
    tester = by_user["tester"]
    assert tester["role"]["name"] == "member"
    assert tester["scope"]["project"] == {"id": ids["test"], "name": "test",
                                          "domain": {"id": "default", "name": "Default"}}
    assert tester["user"]["domain"]["name"] == "Default"
    assert tester["links"]["assignment"].endswith(
        f"/v3/projects/{ids['test']}/users/{ids['tester']}/roles/{ids['member']}")
    plain = api.ok("GET", f"/v3/role_assignments?role.id={ids['member']}&effective")
    assert [a["user"] for a in plain["role_assignments"]] == [{"id": ids["tester"]}]
    assert api.ok("GET", "/v3/role_assignments?group.id=g")["role_assignments"] == []
    roles = api.ok("GET", "/v3/roles")["roles"]
    assert {r["name"] for r in roles} == {"admin", "member", "reader", "service"}
    assert api.call("POST", "/v3/roles", {"role": {"name": "Member"}},
                    api.admin_token()).status_int == 409


def test_services_and_endpoints(api):
    service = api.ok("POST", "/v3/services", {"service": {"type": "image",
                                                          "name": "glance"}})["service"]
    endpoint = api.ok("POST", "/v3/endpoints", {"endpoint": {
        "service_id": service["id"], "interface": "public", "region_id": "RegionOne",
        "url": "http://image.example:9292"}})["endpoint"]
    assert endpoint["region"] == "RegionOne" and endpoint["enabled"] is True
    listed = api.ok("GET", f"/v3/endpoints?service_id={service['id']}")["endpoints"]
    assert [e["id"] for e in listed] == [endpoint["id"]]
    bad = api.call("POST", "/v3/endpoints", {"endpoint": {
        "service_id": service["id"], "interface": "sideways", "url": "http://x"}},
        api.admin_token())
    assert bad.status_int == 400
    assert [r["id"] for r in api.ok("GET", "/v3/regions")["regions"]] == ["RegionOne"]
    api.ok("DELETE", f"/v3/services/{service['id']}")
    assert api.ok("GET", f"/v3/endpoints?service_id={service['id']}")["endpoints"] == []


def _s3_request(api, access, string_to_sign, signature, token=None):
    return api.call("POST", "/v3/s3tokens", {"credentials": {
        "access": access, "token": base64.b64encode(string_to_sign).decode(),
        "signature": signature}}, token)


def test_ec2_credentials_and_s3tokens(api):
    ids = _ids(api)
    tester = api.token("tester", "testing", "test")
    path = f"/v3/users/{ids['tester']}/credentials/OS-EC2"
    created = api.call("POST", path, {"tenant_id": ids["test"]}, tester)
    assert created.status_int == 201
    credential = created.json["credential"]
    assert credential["tenant_id"] == ids["test"] and credential["trust_id"] is None
    access, secret = credential["access"], credential["secret"]
    stored = api.services.store.ec2_credential(access)
    assert secret not in stored["secret_sealed"]                 # sealed at rest
    assert [c["access"] for c in api.ok("GET", path, token=tester)["credentials"]] == [access]
    assert api.ok("GET", f"{path}/{access}", token=tester)["credential"]["secret"] == secret
    reader = api.token("reader", "reading", "test")
    assert api.call("GET", path, token=reader).status_int == 403
    assert api.call("POST", path, {}, tester).status_int == 400

    v4 = (b"AWS4-HMAC-SHA256\n20260102T030405Z\n20260102/us-east-1/s3/aws4_request\n"
          b"abcdef")
    key = derive_v4_signing_key(secret, "20260102", "us-east-1", "s3")
    answer = _s3_request(api, access, v4, sign_v4(key, v4))
    assert answer.status_int == 200
    assert answer.json["token"]["project"]["id"] == ids["test"]
    assert [r["name"] for r in answer.json["token"]["roles"]] == ["member"]
    assert "s3_signing_key" not in answer.json                  # not for anonymous callers
    service = api.token("proxy", "proxying", "service")
    privileged = _s3_request(api, access, v4, sign_v4(key, v4), service)
    assert privileged.json["s3_signing_key"] == key.hex()
    assert "s3_signing_key" not in _s3_request(api, access, v4, sign_v4(key, v4),
                                               tester).json
    v2 = b"GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/bucket/key"
    v2_answer = _s3_request(api, access, v2, sign_v2(secret, v2), service)
    assert v2_answer.status_int == 200 and "s3_signing_key" not in v2_answer.json

    refused = [_s3_request(api, access, v4, sign_v4(key, v4 + b"x")),
               _s3_request(api, "unknown", v4, sign_v4(key, v4)),
               _s3_request(api, access, v2, sign_v2("wrong", v2)),
               _s3_request(api, access, v4, sign_v4(key, v4), "bad-token")]
    assert [r.status_int for r in refused] == [401, 401, 401, 401]
    assert refused[0].json["error"] == {"code": 401, "title": "Unauthorized",
                                        "message": refused[0].json["error"]["message"]}
    malformed = api.call("POST", "/v3/s3tokens", {"credentials": {
        "access": access, "token": "not base64!", "signature": "x"}})
    assert malformed.status_int == 400
    assert api.call("POST", "/v3/s3tokens", {"nothing": 1}).status_int == 400

    api.ok("PATCH", f"/v3/users/{ids['tester']}", {"user": {"enabled": False}})
    assert _s3_request(api, access, v4, sign_v4(key, v4)).status_int == 401
    api.ok("PATCH", f"/v3/users/{ids['tester']}", {"user": {"enabled": True}})
    tester = api.token("tester", "testing", "test")
    assert api.call("DELETE", f"{path}/{access}", token=tester).status_int == 204
    assert _s3_request(api, access, v4, sign_v4(key, v4)).status_int == 401


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/v3/users", {"user": {"name": 5}}),
    ("POST", "/v3/users", {"user": "alice"}),
    ("POST", "/v3/users", {"user": {"name": "x", "password": ["pw"]}}),
    ("POST", "/v3/users", {"user": {"name": "x", "domain_id": "missing"}}),
    ("POST", "/v3/users", {"user": {"name": "x", "default_project_id": "missing"}}),
    ("POST", "/v3/users", {"user": {"name": "x" * 300}}),
    ("POST", "/v3/projects", {"project": {"name": "x", "domain_id": 5}}),
    ("POST", "/v3/projects", {"project": {"name": "x", "is_domain": True}}),
    ("POST", "/v3/roles", {"role": {"name": "x", "domain_id": "default"}}),
    ("POST", "/v3/services", {"service": {"name": "no type"}}),
    ("POST", "/v3/endpoints", {"endpoint": {"service_id": "missing", "interface": "public",
                                            "url": "http://x"}}),
    ("POST", "/v3/users/missing/password", {"user": {"password": "x"}}),
    ("POST", "/v3/auth/tokens", {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": "tester", "domain": {"id": 5}, "password": "testing"}}}}}),
    ("POST", "/v3/auth/tokens", {"auth": {"identity": {"methods": ["token"], "token": {}}}}),
    ("POST", "/v3/auth/tokens", {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": "tester", "domain": {"id": "default"}, "password": "testing"}}},
        "scope": {"project": {"name": "test"}}}}),
    ("POST", "/v3/auth/tokens", {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": "tester", "domain": {"id": "default"}, "password": "testing"}}},
        "scope": 7}}),
])
def test_bad_input_is_a_4xx_never_a_500(api, method, path, body):
    response = api.call(method, path, body, api.admin_token())
    assert 400 <= response.status_int < 500, response.text
    assert response.json["error"]["code"] == response.status_int


def test_user_and_project_updates(api):
    ids = _ids(api)
    updated = api.ok("PATCH", f"/v3/users/{ids['reader']}", {"user": {
        "name": "reader2", "description": "reads", "email": "r@example.com"}})["user"]
    assert (updated["name"], updated["description"], updated["email"]) == \
        ("reader2", "reads", "r@example.com")
    assert api.password_auth("reader2", "reading", "test").status_int == 201   # same password
    project = api.ok("PATCH", f"/v3/projects/{ids['test']}", {"project": {
        "description": "tests", "enabled": False}})["project"]
    assert project["enabled"] is False
    assert api.password_auth("tester", "testing", "test").status_int == 401
    moved = api.call("PATCH", f"/v3/projects/{ids['test']}", {"project": {
        "domain_id": "elsewhere"}}, api.admin_token())
    assert moved.status_int == 400


def test_s3tokens_accepts_both_base64_alphabets(api):
    ids = _ids(api)
    credential = api.ok("POST", f"/v3/users/{ids['tester']}/credentials/OS-EC2",
                        {"tenant_id": ids["test"]})["credential"]
    string_to_sign = b"PUT\n\n\n\n/b/\xfb\xff?"          # encodes with + and / (or - and _)
    signature = sign_v2(credential["secret"], string_to_sign)
    for encoded in (base64.b64encode(string_to_sign), base64.urlsafe_b64encode(string_to_sign),
                    base64.urlsafe_b64encode(string_to_sign).rstrip(b"=")):
        response = api.call("POST", "/v3/s3tokens", {"credentials": {
            "access": credential["access"], "token": encoded.decode(), "signature": signature}})
        assert response.status_int == 200, (encoded, response.text)
