"""Bootstrap: the roles, the admin, the catalog and any seeded users, created idempotently.

Running it again changes nothing that is already right: existing rows are kept, a seeded
password is only rewritten when it no longer verifies (which, as any password change, ends
that user's tokens), and a catalog URL that moved (a new port) is updated in place.

A plan reads (JSON seed files use the same keys):

    {"admin": {"user": "admin", "password": "...", "project": "admin"},
     "region": "RegionOne",
     "roles": ["admin", "member", "reader", "service"],
     "users": [{"name": "tester", "password": "testing", "project": "test",
                "roles": ["member"]}, ...],
     "services": [{"type": "identity", "name": "keystone",
                   "url": "http://127.0.0.1:5000/v3"}, ...]}
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from identity.passwords import hash_password, verify_password
from identity.store import DEFAULT_DOMAIN_ID, Store

DEFAULT_ROLES = ("admin", "member", "reader", "service")
INTERFACES = ("public", "internal", "admin")


class PlanError(ValueError):
    """A bootstrap plan (or seed file) that is missing something or malformed."""


@dataclasses.dataclass
class Report:
    created: list[str] = dataclasses.field(default_factory=list)
    updated: list[str] = dataclasses.field(default_factory=list)
    ids: dict[str, str] = dataclasses.field(default_factory=dict)
    projects: dict[str, str] = dataclasses.field(default_factory=dict)   # name -> id


def _text(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise PlanError(f"{where}: '{key}' must be a non-empty string")
    return value


class Bootstrapper:
    """Applies a plan to a store."""

    def __init__(self, store: Store, hash_cost: int, region: str = "RegionOne"):
        self.store = store
        self.hash_cost = hash_cost
        self.region = region
        self.report = Report()

    def apply(self, plan: dict[str, Any]) -> Report:
        if not isinstance(plan, dict):
            raise PlanError("the plan must be a JSON object")
        self.region = plan.get("region") or self.region
        for name in plan.get("roles") or DEFAULT_ROLES:
            self.role(name)
        admin = plan.get("admin")
        if admin is not None:
            if not isinstance(admin, dict):
                raise PlanError("admin: must be an object")
            user = self.user(_text(admin, "user", "admin"), admin.get("password"),
                             _text(admin, "project", "admin"), ["admin"])
            self.report.ids["admin_user_id"] = user["id"]
            self.report.ids["admin_project_id"] = user["default_project_id"]
        for entry in plan.get("users") or []:
            if not isinstance(entry, dict):
                raise PlanError("users: each entry must be an object")
            roles = entry.get("roles") or ["member"]
            self.user(_text(entry, "name", "users"), entry.get("password"),
                      _text(entry, "project", "users"), list(roles))
        for entry in plan.get("services") or []:
            if not isinstance(entry, dict):
                raise PlanError("services: each entry must be an object")
            self.service(_text(entry, "type", "services"), entry.get("name") or "",
                         _text(entry, "url", "services"))
        return self.report

    def role(self, name: str) -> dict[str, Any]:
        row = self.store.find("roles", name=name)
        if row is None:
            row = self.store.insert("roles", {"name": name})
            self.report.created.append(f"role {name}")
        return row

    def project(self, name: str) -> dict[str, Any]:
        row = self.store.find("projects", name=name, domain_id=DEFAULT_DOMAIN_ID)
        if row is None:
            row = self.store.insert("projects", {"name": name, "domain_id": DEFAULT_DOMAIN_ID})
            self.report.created.append(f"project {name}")
        self.report.projects[name] = row["id"]
        return row

    def user(self, name: str, password: Any, project_name: str,
             roles: list[str]) -> dict[str, Any]:
        if password is not None and not isinstance(password, str):
            raise PlanError(f"user {name}: password must be a string")
        project = self.project(project_name)
        row = self.store.find("users", name=name, domain_id=DEFAULT_DOMAIN_ID)
        if row is None:
            row = self.store.insert("users", {
                "name": name, "domain_id": DEFAULT_DOMAIN_ID, "default_project_id": project["id"],
                "password_hash": hash_password(password, self.hash_cost) if password else None})
            self.report.created.append(f"user {name}")
        elif password and not verify_password(password, row["password_hash"]):
            row = self.store.update("users", row["id"], {
                "password_hash": hash_password(password, self.hash_cost)})
            self.store.update("users", row["id"], {"revoked_before": time.time()})
            self.report.updated.append(f"user {name} password")
        for role_name in roles:
            role = self.role(role_name)
            if not self.store.assignments(row["id"], project["id"], role["id"]):
                self.store.assign(row["id"], project["id"], role["id"])
                self.report.created.append(f"role {role_name} for {name} on {project_name}")
        return row

    def service(self, service_type: str, name: str, url: str) -> dict[str, Any]:
        service = self.store.find("services", type=service_type, name=name or None)
        if service is None:
            service = self.store.insert("services", {"type": service_type, "name": name})
            self.report.created.append(f"service {service_type}")
        for interface in INTERFACES:
            endpoint = self.store.find("endpoints", service_id=service["id"],
                                       interface=interface, region_id=self.region)
            if endpoint is None:
                self.store.insert("endpoints", {"service_id": service["id"],
                                                "interface": interface, "url": url,
                                                "region_id": self.region})
                self.report.created.append(f"{interface} endpoint of {service_type}")
            elif endpoint["url"] != url:
                self.store.update("endpoints", endpoint["id"], {"url": url})
                self.report.updated.append(f"{interface} endpoint of {service_type}")
        return service
