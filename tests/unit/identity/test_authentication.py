"""Tokens are refused once revoked, after a password change or disable, or when the project
no longer grants a role; password auth does not tell a wrong user from a wrong password."""

from __future__ import annotations

import pytest

from identity.authentication import InvalidToken
from identity.errors import BadRequest, Unauthorized


def _auth(name, password, project="test"):
    return {"identity": {"methods": ["password"], "password": {"user": {
        "name": name, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}


def test_password_auth_issues_a_scoped_token(api):
    authenticator = api.services.authenticator
    valid = authenticator.authenticate(_auth("tester", "testing"))
    assert valid.project["name"] == "test" and valid.role_names == {"member"}
    assert authenticator.validate(valid.token).user["name"] == "tester"


@pytest.mark.parametrize("auth", [
    _auth("tester", "wrong"), _auth("nobody", "testing"), _auth("tester", "testing", "admin"),
    _auth("tester", "testing", "missing"),
])
def test_refusals_are_all_401(api, auth):
    with pytest.raises(Unauthorized):
        api.services.authenticator.authenticate(auth)


@pytest.mark.parametrize("auth", [None, {}, {"identity": {"methods": "password"}},
                                  {"identity": {"methods": ["password"]}},
                                  {"identity": {"methods": ["password"], "password": {
                                      "user": {"name": "tester", "password": "x"}}}}])
def test_malformed_auth_is_400(api, auth):
    with pytest.raises(BadRequest):
        api.services.authenticator.authenticate(auth)


def test_revocations(api):
    authenticator = api.services.authenticator
    store = api.services.store
    token = authenticator.authenticate(_auth("tester", "testing"))
    rescoped = authenticator.authenticate({"identity": {"methods": ["token"], "token": {
        "id": token.token}}, "scope": {"project": {"id": token.project["id"]}}})
    assert rescoped.payload.audit_ids[1] == token.payload.audit_id
    authenticator.revoke(token.payload)
    for revoked in (token.token, rescoped.token):        # the chain goes with it
        with pytest.raises(InvalidToken, match="revoked"):
            authenticator.validate(revoked)

    fresh = authenticator.authenticate(_auth("tester", "testing"))
    authenticator.revoke_user_tokens(fresh.user["id"])
    with pytest.raises(InvalidToken, match="issued before"):
        authenticator.validate(fresh.token)
    after = authenticator.authenticate(_auth("tester", "testing"))
    authenticator.validate(after.token)

    member = store.find("roles", name="member")
    store.unassign(after.user["id"], after.project["id"], member["id"])
    with pytest.raises(InvalidToken, match="no role"):
        authenticator.validate(after.token)
    store.assign(after.user["id"], after.project["id"], member["id"])
    authenticator.validate(after.token)
    store.update("users", after.user["id"], {"enabled": False})
    with pytest.raises(InvalidToken, match="disabled"):
        authenticator.validate(after.token)
