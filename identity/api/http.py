"""What every handler needs: the shared services, the request, its caller, JSON in and out.

A handler receives a `Call` and the path's named parts and returns a webob Response or raises
an IdentityError (identity.errors maps it to Keystone's JSON).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from webob import Request, Response

from identity.authentication import Authenticator, InvalidToken, ValidToken
from identity.credentials import SecretSealer
from identity.errors import BadRequest, Unauthorized
from identity.settings import IdentitySettings
from identity.store import Store

MAX_BODY_BYTES = 1 << 20
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


@dataclasses.dataclass
class Services:
    """The parts one identity process shares between requests."""

    settings: IdentitySettings
    store: Store
    authenticator: Authenticator
    sealer: SecretSealer


class Call:
    """One request being handled."""

    def __init__(self, request: Request, services: Services):
        self.request = request
        self.services = services
        self.store = services.store
        self._caller: ValidToken | None = None

    @property
    def caller(self) -> ValidToken:
        """The validated X-Auth-Token; 401 without a good one."""
        if self._caller is None:
            token = self.request.headers.get("X-Auth-Token", "")
            if not token:
                raise Unauthorized("The request you have made requires authentication.")
            try:
                self._caller = self.services.authenticator.validate(token)
            except InvalidToken:
                raise Unauthorized("The request you have made requires authentication.") \
                    from None
        return self._caller

    @property
    def base_url(self) -> str:
        """Where clients reach this service, for links."""
        return self.services.settings.public_endpoint or self.request.host_url

    def link(self, path: str) -> str:
        return f"{self.base_url}/v3/{path}"

    def body(self) -> dict[str, Any]:
        """The request's JSON object; 400 when it is missing, too big or not an object."""
        if self.request.content_length and self.request.content_length > MAX_BODY_BYTES:
            raise BadRequest("Request body is too large.")
        raw = self.request.body_file.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            raise BadRequest("Request body is too large.")
        try:
            data = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("Malformed request body: not JSON.") from None
        if not isinstance(data, dict):
            raise BadRequest("The request body must be a JSON object.")
        return data

    def member(self, key: str) -> dict[str, Any]:
        """The body's `{key: {...}}` object (e.g. {"user": {...}})."""
        value = self.body().get(key)
        if not isinstance(value, dict):
            raise BadRequest(f"Expecting to find {key} in request body.")
        return value

    def query(self, name: str) -> str | None:
        return self.request.GET.get(name)

    def query_flag(self, name: str) -> bool:
        """Keystone's query booleans: present and not a false word (`?effective` is true)."""
        value = self.request.GET.get(name)
        return value is not None and value.strip().lower() not in FALSE_WORDS

    def collection(self, key: str, items: list[dict[str, Any]]) -> Response:
        return json_response(200, {key: items, "links": {
            "self": self.request.path_url, "previous": None, "next": None}})


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    response = Response(status=status, content_type="application/json", charset="utf-8",
                        body=json.dumps(body).encode())
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def no_content() -> Response:
    response = Response(status=204)
    response.content_type = None
    return response


def text_field(data: dict[str, Any], key: str, required: bool = False,
               max_chars: int = 255) -> str | None:
    """A string attribute of a request body, checked for type and length."""
    value = data.get(key)
    if value is None:
        if required:
            raise BadRequest(f"'{key}' is a required property")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadRequest(f"Invalid input for field '{key}': expected a non-empty string.")
    if len(value) > max_chars:
        raise BadRequest(f"Invalid input for field '{key}': longer than {max_chars}.")
    return value


def bool_field(data: dict[str, Any], key: str) -> bool | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise BadRequest(f"Invalid input for field '{key}': expected a boolean.")
    return value
