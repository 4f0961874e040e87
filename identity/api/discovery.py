"""Version discovery: `/` lists the versions (300 Multiple Choices), `/v3` describes v3.

keystoneauth reads `id` (v3.14 -> 3.14), `status` and the `self` link, and picks the version
by the media type; the shapes are Keystone's own.
"""

from __future__ import annotations

from webob import Response

from identity.api.http import Call, json_response

VERSION_ID = "v3.14"
VERSION_UPDATED = "2020-04-07T00:00:00Z"
MEDIA_TYPE = "application/vnd.openstack.identity-v3+json"


def _version(call: Call) -> dict:
    return {"id": VERSION_ID, "status": "stable", "updated": VERSION_UPDATED,
            "links": [{"rel": "self", "href": f"{call.base_url}/v3/"}],
            "media-types": [{"base": "application/json", "type": MEDIA_TYPE}]}


def versions(call: Call) -> Response:
    return json_response(300, {"versions": {"values": [_version(call)]}},
                         {"Location": f"{call.base_url}/v3/"})


def version_v3(call: Call) -> Response:
    return json_response(200, {"version": _version(call)})


ROUTES = [
    ("GET", "/", versions, False),
    ("GET", "/v3", version_v3, False),
    ("GET", "/v3/", version_v3, False),
]
