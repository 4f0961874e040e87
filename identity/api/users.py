"""Users: /v3/users[/{id}], self-service password change, a user's projects.

A password change (by an admin or by the user) and disabling a user both end every token the
user holds; passwords are hashed off the event loop and never echoed back.
"""

from __future__ import annotations

from typing import Any

from webob import Response

from identity import policy
from identity.api import views
from identity.api.http import Call, bool_field, json_response, no_content, text_field
from identity.api.projects import default_domain_id
from identity.errors import BadRequest, Unauthorized
from identity.passwords import MAX_PASSWORD_BYTES, hash_password, verify_password

CORE_FIELDS = frozenset({"id", "name", "domain_id", "enabled", "password", "links",
                         "default_project_id", "password_expires_at", "options",
                         "original_password", "federated"})


def _password(data: dict[str, Any], key: str = "password") -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value.encode()) > MAX_PASSWORD_BYTES:
        raise BadRequest(f"Invalid input for field '{key}'.")
    return value


def _hash(call: Call, password: str) -> str:
    return call.services.authenticator.blocking(
        hash_password, password, call.services.settings.password_hash_cost)


def _default_project(call: Call, data: dict[str, Any]) -> str | None:
    project_id = text_field(data, "default_project_id")
    if project_id is not None and call.store.find("projects", id=project_id) is None:
        raise BadRequest(f"Could not find project: {project_id}.")
    return project_id


def _extras(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in CORE_FIELDS}


def list_users(call: Call) -> Response:
    policy.require_admin(call.caller)
    enabled = None if call.query("enabled") is None else call.query_flag("enabled")
    rows = call.store.select("users", name=call.query("name"),
                             domain_id=call.query("domain_id"), enabled=enabled)
    return call.collection("users", [views.user(call, row) for row in rows])


def show_user(call: Call, user_id: str) -> Response:
    policy.require_self_or_admin(call.caller, user_id)
    return json_response(200, {"user": views.user(call, call.store.get("users", user_id))})


def create_user(call: Call) -> Response:
    policy.require_admin(call.caller)
    data = call.member("user")
    name = text_field(data, "name", required=True)
    domain_id = default_domain_id(call, data)
    password = _password(data)
    row = call.store.insert("users", {
        "name": name, "domain_id": domain_id,
        "enabled": bool_field(data, "enabled") is not False,
        "password_hash": _hash(call, password) if password is not None else None,
        "default_project_id": _default_project(call, data), "extra": _extras(data)})
    return json_response(201, {"user": views.user(call, row)})


def update_user(call: Call, user_id: str) -> Response:
    policy.require_admin(call.caller)
    data = call.member("user")
    current = call.store.get("users", user_id)
    if "domain_id" in data and data["domain_id"] != current["domain_id"]:
        raise BadRequest("A user cannot move to another domain.")
    changes: dict[str, Any] = {"extra": {**current["extra"], **_extras(data)}}
    name = text_field(data, "name")
    if name is not None:
        if not name.strip():
            raise BadRequest("Invalid input for field 'name': empty.")
        changes["name"] = name
    if "default_project_id" in data:
        changes["default_project_id"] = _default_project(call, data)
    enabled = bool_field(data, "enabled")
    if enabled is not None:
        changes["enabled"] = enabled
    password = _password(data)
    if password is not None:
        changes["password_hash"] = _hash(call, password)
    row = call.store.update("users", user_id, changes)
    if password is not None or enabled is False:
        call.services.authenticator.revoke_user_tokens(user_id)
    return json_response(200, {"user": views.user(call, row)})


def delete_user(call: Call, user_id: str) -> Response:
    policy.require_admin(call.caller)
    call.store.delete("users", user_id)
    return no_content()


def change_password(call: Call, user_id: str) -> Response:
    """The user's own change: proven by the original password, so no token is needed."""
    data = call.member("user")
    original = _password(data, "original_password")
    new = _password(data)
    if original is None or new is None:
        raise BadRequest("'original_password' and 'password' are required.")
    user = call.store.find("users", id=user_id)
    stored = user["password_hash"] if user else None
    if user is None or not user["enabled"] or not call.services.authenticator.blocking(
            verify_password, original, stored):
        raise Unauthorized("The request you have made requires authentication.")
    call.store.update("users", user_id, {"password_hash": _hash(call, new)})
    call.services.authenticator.revoke_user_tokens(user_id)
    return no_content()


def list_user_projects(call: Call, user_id: str) -> Response:
    policy.require_self_or_admin(call.caller, user_id)
    call.store.get("users", user_id)
    rows = call.store.projects_of_user(user_id)
    return call.collection("projects", [views.project(call, row) for row in rows])


ROUTES = [
    ("GET", "/v3/users", list_users, True),
    ("POST", "/v3/users", create_user, True),
    ("GET", "/v3/users/{user_id}", show_user, True),
    ("PATCH", "/v3/users/{user_id}", update_user, True),
    ("DELETE", "/v3/users/{user_id}", delete_user, True),
    ("POST", "/v3/users/{user_id}/password", change_password, False),
    ("GET", "/v3/users/{user_id}/projects", list_user_projects, True),
]
