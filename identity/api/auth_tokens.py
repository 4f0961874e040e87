"""/v3/auth/*: issuing, validating and revoking tokens; a token's catalog and projects.

Validation answers 404 for a subject token that is invalid for any reason (tampered,
expired, revoked, its user disabled ...) and 401 for a bad caller token, as Keystone does.
"""

from __future__ import annotations

from webob import Response

from identity import policy
from identity.api import views
from identity.api.http import Call, json_response, no_content
from identity.authentication import InvalidToken, ValidToken
from identity.catalog import token_catalog
from identity.errors import BadRequest, Forbidden, NotFound
from identity.token_body import token_body

SUBJECT_HEADER = "X-Subject-Token"


def issue_token(call: Call) -> Response:
    valid = call.services.authenticator.authenticate(call.body().get("auth"))
    include_catalog = not call.query_flag("nocatalog")
    return json_response(201, token_body(call.store, valid, include_catalog),
                         {SUBJECT_HEADER: valid.token})


def _subject(call: Call) -> ValidToken:
    caller = call.caller
    token = call.request.headers.get(SUBJECT_HEADER, "")
    if not token:
        raise BadRequest("X-Subject-Token is required.")
    try:
        subject = call.services.authenticator.validate(token)
    except InvalidToken:
        # As Keystone: the subject is validated first, since the policy's target is its user.
        raise NotFound("Could not find token.") from None
    if not policy.may_check_token(caller, subject.user["id"]):
        raise Forbidden(policy.DENIED)
    return subject


def validate_token(call: Call) -> Response:
    subject = _subject(call)
    include_catalog = not call.query_flag("nocatalog")
    body = token_body(call.store, subject, include_catalog)
    response = json_response(200, body, {SUBJECT_HEADER: subject.token})
    if call.request.method == "HEAD":
        response.body = b""
    return response


def revoke_token(call: Call) -> Response:
    subject = _subject(call)
    call.services.authenticator.revoke(subject.payload)
    return no_content()


def auth_catalog(call: Call) -> Response:
    caller = call.caller
    if caller.project is None:
        raise Forbidden("A catalog needs a project-scoped token.")
    catalog = token_catalog(call.store, caller.project["id"], caller.user["id"])
    return json_response(200, {"catalog": catalog, "links": {
        "self": call.request.path_url, "previous": None, "next": None}})


def auth_projects(call: Call) -> Response:
    projects = [views.project(call, row) for row in call.store.projects_of_user(
        call.caller.user["id"]) if row["enabled"]]
    return call.collection("projects", projects)


def auth_domains(call: Call) -> Response:
    _ = call.caller      # authenticated callers only, even for an empty list
    return call.collection("domains", [])     # no domain-scoped role assignments here


ROUTES = [
    ("POST", "/v3/auth/tokens", issue_token, False),
    ("GET", "/v3/auth/tokens", validate_token, True),
    ("HEAD", "/v3/auth/tokens", validate_token, True),
    ("DELETE", "/v3/auth/tokens", revoke_token, True),
    ("GET", "/v3/auth/catalog", auth_catalog, True),
    ("GET", "/v3/auth/projects", auth_projects, True),
    ("GET", "/v3/auth/domains", auth_domains, True),
]
