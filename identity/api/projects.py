"""Domains and projects: /v3/domains[/{id}], /v3/projects[/{id}]."""

from __future__ import annotations

from typing import Any

from webob import Response

from identity import policy
from identity.api import views
from identity.api.http import Call, bool_field, json_response, no_content, text_field
from identity.errors import BadRequest, Forbidden
from identity.store import DEFAULT_DOMAIN_ID

CORE_FIELDS = frozenset({"id", "name", "domain_id", "description", "enabled", "links",
                         "parent_id", "is_domain", "tags", "options"})


def _enabled_filter(call: Call) -> bool | None:
    value = call.query("enabled")
    return None if value is None else call.query_flag("enabled")


def _extras(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in CORE_FIELDS}


# -- domains ---------------------------------------------------------------------------------

def list_domains(call: Call) -> Response:
    policy.require_admin(call.caller)
    rows = call.store.select("domains", name=call.query("name"), enabled=_enabled_filter(call))
    return call.collection("domains", [views.domain(call, row) for row in rows])


def show_domain(call: Call, domain_id: str) -> Response:
    caller = call.caller
    row = call.store.get("domains", domain_id)
    if not caller.is_admin and domain_id not in (caller.user["domain_id"],
                                                 (caller.project or {}).get("domain_id")):
        raise Forbidden(policy.DENIED)
    return json_response(200, {"domain": views.domain(call, row)})


def create_domain(call: Call) -> Response:
    policy.require_admin(call.caller)
    data = call.member("domain")
    row = call.store.insert("domains", {
        "name": text_field(data, "name", required=True),
        "description": text_field(data, "description", max_chars=65535) or "",
        "enabled": bool_field(data, "enabled") is not False, "extra": _extras(data)})
    return json_response(201, {"domain": views.domain(call, row)})


def update_domain(call: Call, domain_id: str) -> Response:
    policy.require_admin(call.caller)
    data = call.member("domain")
    current = call.store.get("domains", domain_id)
    changes = _changes(data)
    changes["extra"] = {**current["extra"], **_extras(data)}
    row = call.store.update("domains", domain_id, changes)
    return json_response(200, {"domain": views.domain(call, row)})


def delete_domain(call: Call, domain_id: str) -> Response:
    policy.require_admin(call.caller)
    row = call.store.get("domains", domain_id)
    if domain_id == DEFAULT_DOMAIN_ID:
        raise Forbidden("The default domain cannot be deleted.")
    if row["enabled"]:
        raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
    call.store.delete("domains", domain_id)
    return no_content()


# -- projects --------------------------------------------------------------------------------

def _changes(data: dict[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    name = text_field(data, "name")
    if name is not None:
        if not name.strip():
            raise BadRequest("Invalid input for field 'name': empty.")
        changes["name"] = name
    description = text_field(data, "description", max_chars=65535)
    if description is not None:
        changes["description"] = description
    enabled = bool_field(data, "enabled")
    if enabled is not None:
        changes["enabled"] = enabled
    return changes


def default_domain_id(call: Call, data: dict[str, Any]) -> str:
    """The body's domain_id, else the caller's project's domain, else the default one."""
    domain_id = text_field(data, "domain_id") or text_field(data, "parent_id")
    if domain_id is None:
        project = call.caller.project
        domain_id = project["domain_id"] if project else DEFAULT_DOMAIN_ID
    if call.store.find("domains", id=domain_id) is None:
        raise BadRequest(f"Could not find domain: {domain_id}.")
    return domain_id


def list_projects(call: Call) -> Response:
    policy.require_admin(call.caller)
    rows = call.store.select("projects", name=call.query("name"),
                             domain_id=call.query("domain_id"), enabled=_enabled_filter(call))
    return call.collection("projects", [views.project(call, row) for row in rows])


def show_project(call: Call, project_id: str) -> Response:
    caller = call.caller
    row = call.store.get("projects", project_id)
    if not caller.is_admin and not call.store.roles_on_project(caller.user["id"], project_id):
        raise Forbidden(policy.DENIED)
    return json_response(200, {"project": views.project(call, row)})


def create_project(call: Call) -> Response:
    policy.require_admin(call.caller)
    data = call.member("project")
    if data.get("is_domain"):
        raise BadRequest("Projects acting as domains are not supported.")
    row = call.store.insert("projects", {
        "name": text_field(data, "name", required=True),
        "domain_id": default_domain_id(call, data),
        "description": text_field(data, "description", max_chars=65535) or "",
        "enabled": bool_field(data, "enabled") is not False, "extra": _extras(data)})
    return json_response(201, {"project": views.project(call, row)})


def update_project(call: Call, project_id: str) -> Response:
    policy.require_admin(call.caller)
    data = call.member("project")
    current = call.store.get("projects", project_id)
    if "domain_id" in data and data["domain_id"] != current["domain_id"]:
        raise BadRequest("A project cannot move to another domain.")
    changes = _changes(data)
    changes["extra"] = {**current["extra"], **_extras(data)}
    row = call.store.update("projects", project_id, changes)
    return json_response(200, {"project": views.project(call, row)})


def delete_project(call: Call, project_id: str) -> Response:
    policy.require_admin(call.caller)
    call.store.delete("projects", project_id)
    return no_content()


ROUTES = [
    ("GET", "/v3/domains", list_domains, True),
    ("POST", "/v3/domains", create_domain, True),
    ("GET", "/v3/domains/{domain_id}", show_domain, True),
    ("PATCH", "/v3/domains/{domain_id}", update_domain, True),
    ("DELETE", "/v3/domains/{domain_id}", delete_domain, True),
    ("GET", "/v3/projects", list_projects, True),
    ("POST", "/v3/projects", create_project, True),
    ("GET", "/v3/projects/{project_id}", show_project, True),
    ("PATCH", "/v3/projects/{project_id}", update_project, True),
    ("DELETE", "/v3/projects/{project_id}", delete_project, True),
]
