"""The service catalog's administration: /v3/services, /v3/endpoints, /v3/regions (read)."""

from __future__ import annotations

from typing import Any

from webob import Response

from identity import policy
from identity.api import views
from identity.api.http import Call, bool_field, json_response, no_content, text_field
from identity.errors import BadRequest, NotFound

INTERFACES = ("public", "internal", "admin")
SERVICE_FIELDS = frozenset({"id", "type", "name", "description", "enabled", "links"})
ENDPOINT_FIELDS = frozenset({"id", "service_id", "interface", "url", "region", "region_id",
                             "enabled", "links"})


def list_services(call: Call) -> Response:
    policy.require_admin(call.caller)
    rows = call.store.select("services", type=call.query("type"), name=call.query("name"))
    return call.collection("services", [views.service(call, row) for row in rows])


def show_service(call: Call, service_id: str) -> Response:
    policy.require_admin(call.caller)
    row = call.store.get("services", service_id)
    return json_response(200, {"service": views.service(call, row)})


def create_service(call: Call) -> Response:
    policy.require_admin(call.caller)
    data = call.member("service")
    row = call.store.insert("services", {
        "type": text_field(data, "type", required=True),
        "name": text_field(data, "name") or "",
        "description": text_field(data, "description", max_chars=65535) or "",
        "enabled": bool_field(data, "enabled") is not False,
        "extra": {key: value for key, value in data.items() if key not in SERVICE_FIELDS}})
    return json_response(201, {"service": views.service(call, row)})


def update_service(call: Call, service_id: str) -> Response:
    policy.require_admin(call.caller)
    data = call.member("service")
    changes: dict[str, Any] = {}
    for key in ("type", "name", "description"):
        value = text_field(data, key, max_chars=65535)
        if value is not None:
            changes[key] = value
    enabled = bool_field(data, "enabled")
    if enabled is not None:
        changes["enabled"] = enabled
    row = call.store.update("services", service_id, changes)
    return json_response(200, {"service": views.service(call, row)})


def delete_service(call: Call, service_id: str) -> Response:
    policy.require_admin(call.caller)
    call.store.delete("services", service_id)
    return no_content()


def _interface(data: dict[str, Any], required: bool) -> str | None:
    interface = text_field(data, "interface", required=required)
    if interface is not None and interface not in INTERFACES:
        raise BadRequest(f"Invalid input for field 'interface': one of {', '.join(INTERFACES)}.")
    return interface


def _service_id(call: Call, data: dict[str, Any], required: bool) -> str | None:
    service_id = text_field(data, "service_id", required=required)
    if service_id is not None and call.store.find("services", id=service_id) is None:
        raise BadRequest(f"Could not find service: {service_id}.")
    return service_id


def list_endpoints(call: Call) -> Response:
    policy.require_admin(call.caller)
    rows = call.store.select("endpoints", service_id=call.query("service_id"),
                             interface=call.query("interface"),
                             region_id=call.query("region_id"))
    return call.collection("endpoints", [views.endpoint(call, row) for row in rows])


def show_endpoint(call: Call, endpoint_id: str) -> Response:
    policy.require_admin(call.caller)
    row = call.store.get("endpoints", endpoint_id)
    return json_response(200, {"endpoint": views.endpoint(call, row)})


def create_endpoint(call: Call) -> Response:
    policy.require_admin(call.caller)
    data = call.member("endpoint")
    row = call.store.insert("endpoints", {
        "service_id": _service_id(call, data, True), "interface": _interface(data, True),
        "url": text_field(data, "url", required=True, max_chars=2048),
        "region_id": text_field(data, "region_id") or text_field(data, "region"),
        "enabled": bool_field(data, "enabled") is not False,
        "extra": {key: value for key, value in data.items() if key not in ENDPOINT_FIELDS}})
    return json_response(201, {"endpoint": views.endpoint(call, row)})


def update_endpoint(call: Call, endpoint_id: str) -> Response:
    policy.require_admin(call.caller)
    data = call.member("endpoint")
    changes: dict[str, Any] = {}
    if data.get("service_id") is not None:
        changes["service_id"] = _service_id(call, data, True)
    if data.get("interface") is not None:
        changes["interface"] = _interface(data, True)
    url = text_field(data, "url", max_chars=2048)
    if url is not None:
        changes["url"] = url
    region = text_field(data, "region_id") or text_field(data, "region")
    if region is not None:
        changes["region_id"] = region
    enabled = bool_field(data, "enabled")
    if enabled is not None:
        changes["enabled"] = enabled
    row = call.store.update("endpoints", endpoint_id, changes)
    return json_response(200, {"endpoint": views.endpoint(call, row)})


def delete_endpoint(call: Call, endpoint_id: str) -> Response:
    policy.require_admin(call.caller)
    call.store.delete("endpoints", endpoint_id)
    return no_content()


def _region(call: Call, region_id: str) -> dict[str, Any]:
    return {"id": region_id, "description": "", "parent_region_id": None,
            "links": {"self": call.link(f"regions/{region_id}")}}


def list_regions(call: Call) -> Response:
    _ = call.caller
    regions = sorted({row["region_id"] for row in call.store.select("endpoints")
                      if row["region_id"]})
    return call.collection("regions", [_region(call, region) for region in regions])


def show_region(call: Call, region_id: str) -> Response:
    _ = call.caller
    if call.store.find("endpoints", region_id=region_id) is None:
        raise NotFound(f"Could not find region: {region_id}.")
    return json_response(200, {"region": _region(call, region_id)})


ROUTES = [
    ("GET", "/v3/services", list_services, True),
    ("POST", "/v3/services", create_service, True),
    ("GET", "/v3/services/{service_id}", show_service, True),
    ("PATCH", "/v3/services/{service_id}", update_service, True),
    ("DELETE", "/v3/services/{service_id}", delete_service, True),
    ("GET", "/v3/endpoints", list_endpoints, True),
    ("POST", "/v3/endpoints", create_endpoint, True),
    ("GET", "/v3/endpoints/{endpoint_id}", show_endpoint, True),
    ("PATCH", "/v3/endpoints/{endpoint_id}", update_endpoint, True),
    ("DELETE", "/v3/endpoints/{endpoint_id}", delete_endpoint, True),
    ("GET", "/v3/regions", list_regions, True),
    ("GET", "/v3/regions/{region_id}", show_region, True),
]
