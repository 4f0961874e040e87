"""Roles, grants of a role to a user on a project, and the role assignment listing.

    PUT/HEAD/DELETE /v3/projects/{p}/users/{u}/roles/{r}    grant / check / revoke
    GET /v3/projects/{p}/users/{u}/roles                     the user's roles there
    GET /v3/role_assignments?user.id=&scope.project.id=&role.id=&include_names&effective

Only user-on-project assignments exist here: filters for groups, domains or the system
match nothing, as they would on a Keystone with no such assignments.
"""

from __future__ import annotations

from typing import Any

from webob import Response

from identity import policy
from identity.api import views
from identity.api.http import Call, json_response, no_content, text_field
from identity.errors import BadRequest, Forbidden, NotFound

CORE_FIELDS = frozenset({"id", "name", "description", "links", "domain_id", "options"})
UNSUPPORTED_FILTERS = ("group.id", "scope.domain.id", "scope.system",
                       "scope.OS-INHERIT:inherited_to")


def list_roles(call: Call) -> Response:
    policy.require_admin(call.caller)
    if call.query("domain_id"):
        return call.collection("roles", [])     # no domain-specific roles here
    rows = call.store.select("roles", name=call.query("name"))
    return call.collection("roles", [views.role(call, row) for row in rows])


def show_role(call: Call, role_id: str) -> Response:
    policy.require_admin(call.caller)
    return json_response(200, {"role": views.role(call, call.store.get("roles", role_id))})


def create_role(call: Call) -> Response:
    policy.require_admin(call.caller)
    data = call.member("role")
    if data.get("domain_id"):
        raise BadRequest("Domain-specific roles are not supported.")
    row = call.store.insert("roles", {
        "name": text_field(data, "name", required=True),
        "description": text_field(data, "description", max_chars=65535),
        "extra": {key: value for key, value in data.items() if key not in CORE_FIELDS}})
    return json_response(201, {"role": views.role(call, row)})


def update_role(call: Call, role_id: str) -> Response:
    policy.require_admin(call.caller)
    data = call.member("role")
    changes: dict[str, Any] = {}
    for key in ("name", "description"):
        value = text_field(data, key, max_chars=255 if key == "name" else 65535)
        if value is not None:
            changes[key] = value
    row = call.store.update("roles", role_id, changes)
    return json_response(200, {"role": views.role(call, row)})


def delete_role(call: Call, role_id: str) -> Response:
    policy.require_admin(call.caller)
    call.store.delete("roles", role_id)
    return no_content()


def _grant_parts(call: Call, project_id: str, user_id: str, role_id: str) -> None:
    policy.require_admin(call.caller)
    call.store.get("projects", project_id)
    call.store.get("users", user_id)
    call.store.get("roles", role_id)


def grant(call: Call, project_id: str, user_id: str, role_id: str) -> Response:
    _grant_parts(call, project_id, user_id, role_id)
    call.store.assign(user_id, project_id, role_id)
    return no_content()


def check_grant(call: Call, project_id: str, user_id: str, role_id: str) -> Response:
    _grant_parts(call, project_id, user_id, role_id)
    if not call.store.assignments(user_id, project_id, role_id):
        raise NotFound(f"Could not find role assignment with role: {role_id}, user or "
                       f"group: {user_id}, project, domain, or system: {project_id}.")
    return no_content()


def revoke_grant(call: Call, project_id: str, user_id: str, role_id: str) -> Response:
    _grant_parts(call, project_id, user_id, role_id)
    if not call.store.unassign(user_id, project_id, role_id):
        raise NotFound(f"Could not find role assignment with role: {role_id}, user or "
                       f"group: {user_id}, project, domain, or system: {project_id}.")
    return no_content()


def list_user_project_roles(call: Call, project_id: str, user_id: str) -> Response:
    caller = call.caller
    if caller.user["id"] != user_id:
        policy.require_admin(caller)
    call.store.get("projects", project_id)
    call.store.get("users", user_id)
    rows = call.store.roles_on_project(user_id, project_id)
    return call.collection("roles", [views.role(call, row) for row in rows])


def _named(call: Call, table: str, row_id: str, names: bool,
           cache: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    ref: dict[str, Any] = {"id": row_id}
    if not names:
        return ref
    row = _cached(call, cache, table, row_id)
    ref["name"] = row["name"]
    if "domain_id" in row:
        domain = _cached(call, cache, "domains", row["domain_id"])
        ref["domain"] = {"id": domain["id"], "name": domain["name"]}
    return ref


def _cached(call: Call, cache: dict[tuple[str, str], dict[str, Any]], table: str,
            row_id: str) -> dict[str, Any]:
    """One lookup per row for a whole listing (names repeat across assignments)."""
    key = (table, row_id)
    if key not in cache:
        cache[key] = call.store.get(table, row_id)
    return cache[key]


def list_role_assignments(call: Call) -> Response:
    caller = call.caller
    user_id = call.query("user.id")
    if not caller.is_admin and user_id != caller.user["id"]:
        raise Forbidden(policy.DENIED)
    if call.query_flag("include_subtree") and not call.query("scope.project.id"):
        raise BadRequest("include_subtree needs scope.project.id.")
    if any(call.query(name) for name in UNSUPPORTED_FILTERS):
        return call.collection("role_assignments", [])
    names = call.query_flag("include_names")
    cache: dict[tuple[str, str], dict[str, Any]] = {}
    items = []
    for row in call.store.assignments(user_id, call.query("scope.project.id"),
                                      call.query("role.id")):
        link = call.link(f"projects/{row['project_id']}/users/{row['user_id']}/roles/"
                         f"{row['role_id']}")
        items.append({
            "role": _named(call, "roles", row["role_id"], names, cache),
            "scope": {"project": _named(call, "projects", row["project_id"], names, cache)},
            "user": _named(call, "users", row["user_id"], names, cache),
            "links": {"assignment": link}})
    return call.collection("role_assignments", items)


ROUTES = [
    ("GET", "/v3/roles", list_roles, True),
    ("POST", "/v3/roles", create_role, True),
    ("GET", "/v3/roles/{role_id}", show_role, True),
    ("PATCH", "/v3/roles/{role_id}", update_role, True),
    ("DELETE", "/v3/roles/{role_id}", delete_role, True),
    ("GET", "/v3/projects/{project_id}/users/{user_id}/roles", list_user_project_roles, True),
    ("PUT", "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", grant, True),
    ("HEAD", "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", check_grant, True),
    ("DELETE", "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", revoke_grant, True),
    ("GET", "/v3/role_assignments", list_role_assignments, True),
]
