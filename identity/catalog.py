"""The service catalog as a token shows it: enabled services with their enabled endpoints,
`$(project_id)s` / `$(tenant_id)s` in URLs filled in with the token's project.

An endpoint whose URL needs a project is left out of a catalog without one (an unscoped
token), as Keystone does, rather than shown with the placeholder in it.
"""

from __future__ import annotations

import re
from typing import Any

from identity.store import Store

PLACEHOLDER = re.compile(r"\$\((project_id|tenant_id|user_id)\)s")


def fill_url(url: str, values: dict[str, str | None]) -> str | None:
    """`url` with its placeholders filled; None when one of them has no value."""
    missing = False

    def replace(match: re.Match[str]) -> str:
        nonlocal missing
        value = values.get(match.group(1))
        if value is None:
            missing = True
            return ""
        return value

    filled = PLACEHOLDER.sub(replace, url)
    return None if missing else filled


def token_catalog(store: Store, project_id: str | None, user_id: str) -> list[dict[str, Any]]:
    values = {"project_id": project_id, "tenant_id": project_id, "user_id": user_id}
    catalog = []
    for service in store.select("services", enabled=True):
        endpoints = []
        for endpoint in store.select("endpoints", service_id=service["id"], enabled=True):
            url = fill_url(endpoint["url"], values)
            if url is None:
                continue
            endpoints.append({"id": endpoint["id"], "interface": endpoint["interface"],
                              "region": endpoint["region_id"],
                              "region_id": endpoint["region_id"], "url": url})
        catalog.append({"id": service["id"], "type": service["type"], "name": service["name"],
                        "endpoints": endpoints})
    return catalog
