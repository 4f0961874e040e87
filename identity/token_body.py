"""The JSON body of a token, as Keystone v3 renders it for POST/GET /v3/auth/tokens and
POST /v3/s3tokens (keystoneauth reads user, project, roles, catalog and times from it)."""

from __future__ import annotations

import datetime
from typing import Any

from identity.authentication import ValidToken
from identity.catalog import token_catalog
from identity.store import Store


def iso_time(unix_s: float) -> str:
    """Keystone's timestamp form: 2015-11-05T22:00:11.000000Z."""
    moment = datetime.datetime.fromtimestamp(unix_s, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _domain(row: dict[str, Any]) -> dict[str, str]:
    return {"id": row["id"], "name": row["name"]}


def token_body(store: Store, valid: ValidToken, include_catalog: bool = True
               ) -> dict[str, Any]:
    payload = valid.payload
    token: dict[str, Any] = {
        "methods": list(payload.methods),
        "user": {"id": valid.user["id"], "name": valid.user["name"],
                 "domain": _domain(valid.user_domain), "password_expires_at": None},
        "audit_ids": list(payload.audit_ids),
        "issued_at": iso_time(payload.issued_at),
        "expires_at": iso_time(payload.expires_at),
    }
    if valid.project is not None and valid.project_domain is not None:
        token["project"] = {"id": valid.project["id"], "name": valid.project["name"],
                            "domain": _domain(valid.project_domain)}
        token["is_domain"] = False
        token["roles"] = [{"id": role["id"], "name": role["name"]} for role in valid.roles]
        if include_catalog:
            token["catalog"] = token_catalog(store, valid.project["id"], valid.user["id"])
    return {"token": token}
