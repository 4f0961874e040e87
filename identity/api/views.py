"""How each resource looks in Keystone v3 JSON (what openstackclient and the SDK parse)."""

from __future__ import annotations

from typing import Any

from identity.api.http import Call


def _extra(row: dict[str, Any]) -> dict[str, Any]:
    return dict(row.get("extra") or {})


def domain(call: Call, row: dict[str, Any]) -> dict[str, Any]:
    return {**_extra(row), "id": row["id"], "name": row["name"],
            "description": row["description"], "enabled": row["enabled"], "tags": [],
            "options": {}, "links": {"self": call.link(f"domains/{row['id']}")}}


def project(call: Call, row: dict[str, Any]) -> dict[str, Any]:
    return {**_extra(row), "id": row["id"], "name": row["name"],
            "domain_id": row["domain_id"], "description": row["description"],
            "enabled": row["enabled"], "parent_id": row["domain_id"], "is_domain": False,
            "tags": [], "options": {}, "links": {"self": call.link(f"projects/{row['id']}")}}


def user(call: Call, row: dict[str, Any]) -> dict[str, Any]:
    view = {**_extra(row), "id": row["id"], "name": row["name"], "domain_id": row["domain_id"],
            "enabled": row["enabled"], "password_expires_at": None, "options": {},
            "links": {"self": call.link(f"users/{row['id']}")}}
    if row.get("default_project_id"):
        view["default_project_id"] = row["default_project_id"]
    return view


def role(call: Call, row: dict[str, Any]) -> dict[str, Any]:
    return {**_extra(row), "id": row["id"], "name": row["name"], "domain_id": None,
            "description": row["description"], "options": {},
            "links": {"self": call.link(f"roles/{row['id']}")}}


def service(call: Call, row: dict[str, Any]) -> dict[str, Any]:
    return {**_extra(row), "id": row["id"], "type": row["type"], "name": row["name"],
            "description": row["description"], "enabled": row["enabled"],
            "links": {"self": call.link(f"services/{row['id']}")}}


def endpoint(call: Call, row: dict[str, Any]) -> dict[str, Any]:
    return {**_extra(row), "id": row["id"], "service_id": row["service_id"],
            "interface": row["interface"], "url": row["url"], "region": row["region_id"],
            "region_id": row["region_id"], "enabled": row["enabled"],
            "links": {"self": call.link(f"endpoints/{row['id']}")}}


def ec2_credential(call: Call, row: dict[str, Any], secret: str) -> dict[str, Any]:
    path = f"users/{row['user_id']}/credentials/OS-EC2/{row['access']}"
    return {"access": row["access"], "secret": secret, "user_id": row["user_id"],
            "tenant_id": row["project_id"], "trust_id": None,
            "links": {"self": call.link(path)}}
