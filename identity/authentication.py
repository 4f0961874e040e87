"""Who a request is: password and token authentication, and validation of tokens.

An authentic token (identity.tokens) is still refused when it expired, its audit id (or one
it was rescoped from) was revoked, its user was deleted, disabled or changed password after it
was issued, or its project was deleted, disabled or no longer grants the user any role: roles
are looked up at validation time, so removing a role takes effect at once.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from identity.errors import BadRequest, NotFound, Unauthorized
from identity.keys import KeyRepositoryError
from identity.passwords import hash_password, verify_password
from identity.store import Store
from identity.tokens import TokenError, TokenPayload, TokenProvider

AUTH_FAILED = "The request you have made requires authentication."
Blocking = Callable[..., Any]


class InvalidToken(Exception):
    """A token that must not be honoured; the message says why (for logs, not callers)."""


def _run_inline(function: Callable[..., Any], *args: Any) -> Any:
    return function(*args)


@dataclasses.dataclass(frozen=True)
class ValidToken:
    """A token that passed every check, with the rows it refers to."""

    token: str
    payload: TokenPayload
    user: dict[str, Any]
    user_domain: dict[str, Any]
    project: dict[str, Any] | None
    project_domain: dict[str, Any] | None
    roles: tuple[dict[str, Any], ...]

    @property
    def role_names(self) -> frozenset[str]:
        return frozenset(role["name"].lower() for role in self.roles)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.role_names

    @property
    def is_service(self) -> bool:
        return bool({"admin", "service"} & self.role_names)


class Authenticator:
    """Turns credentials into tokens and tokens back into a ValidToken."""

    def __init__(self, store: Store, provider: TokenProvider,
                 blocking: Blocking = _run_inline, dummy_hash_cost: int = 2 ** 14):
        self.store = store
        self.provider = provider
        # Password hashing is slow on purpose: servers run it off their event loop.
        self.blocking = blocking
        # A hash to check against when the user does not exist, so that a wrong user name
        # costs the same time as a wrong password.
        self._dummy_hash = hash_password("x" * 16, dummy_hash_cost)

    # -- validation ----------------------------------------------------------------------

    def validate(self, token: str, now: float | None = None) -> ValidToken:
        try:
            payload = self.provider.open(token, now)
        except TokenError as err:
            raise InvalidToken(str(err)) from None
        except KeyRepositoryError as err:
            raise InvalidToken(f"no usable keys: {err}") from None
        return self._check(token, payload)

    def _check(self, token: str, payload: TokenPayload) -> ValidToken:
        if self.store.audit_id_revoked(payload.audit_ids):
            raise InvalidToken("token revoked")
        try:
            user = self.store.get("users", payload.user_id)
        except NotFound:
            raise InvalidToken("user gone") from None
        user_domain = self.store.get("domains", user["domain_id"])
        if not user["enabled"] or not user_domain["enabled"]:
            raise InvalidToken("user disabled")
        if payload.issued_at <= user["revoked_before"]:
            raise InvalidToken("token issued before the user's tokens were revoked")
        project = project_domain = None
        roles: tuple[dict[str, Any], ...] = ()
        if payload.project_id is not None:
            project, project_domain, roles = self._project_scope(user, payload.project_id)
        return ValidToken(token, payload, user, user_domain, project, project_domain, roles)

    def _project_scope(self, user: dict[str, Any], project_id: str
                       ) -> tuple[dict[str, Any], dict[str, Any], tuple[dict[str, Any], ...]]:
        try:
            project = self.store.get("projects", project_id)
        except NotFound:
            raise InvalidToken("project gone") from None
        domain = self.store.get("domains", project["domain_id"])
        if not project["enabled"] or not domain["enabled"]:
            raise InvalidToken("project disabled")
        roles = tuple(self.store.roles_on_project(user["id"], project_id))
        if not roles:
            raise InvalidToken("user has no role on the project")
        return project, domain, roles

    # -- authentication ------------------------------------------------------------------

    def authenticate(self, auth: Any) -> ValidToken:
        """A new token from a POST /v3/auth/tokens `auth` object."""
        if not isinstance(auth, dict) or not isinstance(auth.get("identity"), dict):
            raise BadRequest("auth.identity is required")
        identity = auth["identity"]
        methods = identity.get("methods")
        if not isinstance(methods, list) or not methods or \
                not all(isinstance(m, str) for m in methods):
            raise BadRequest("auth.identity.methods must be a list of method names")
        if "password" in methods:
            user = self._password_user(identity.get("password"))
            parent = None
        elif "token" in methods:
            parent = self._parent_token(identity.get("token"))
            user = parent.user
        else:
            raise Unauthorized("Unsupported authentication method: " + ", ".join(methods))
        project_id = self._scope_project(auth.get("scope"), user)
        return self.issue(user, project_id, ["token"] if parent else ["password"], parent)

    def issue(self, user: dict[str, Any], project_id: str | None, methods: list[str],
              parent: ValidToken | None = None) -> ValidToken:
        payload = self.provider.new_payload(
            user["id"], project_id, methods,
            expires_at=parent.payload.expires_at if parent else None,
            parent_audit_id=parent.payload.audit_ids[-1] if parent else None)
        token = self.provider.seal(payload)
        try:
            return self._check(token, payload)
        except InvalidToken:
            raise Unauthorized(AUTH_FAILED) from None

    def _password_user(self, method: Any) -> dict[str, Any]:
        if not isinstance(method, dict) or not isinstance(method.get("user"), dict):
            raise BadRequest("auth.identity.password.user is required")
        reference = method["user"]
        password = reference.get("password")
        if not isinstance(password, str):
            raise BadRequest("auth.identity.password.user.password is required")
        user = self.find_user(reference)
        stored = user["password_hash"] if user else self._dummy_hash
        matches = self.blocking(verify_password, password, stored)
        if user is None or not matches or not user["enabled"]:
            raise Unauthorized(AUTH_FAILED)
        domain = self.store.get("domains", user["domain_id"])
        if not domain["enabled"]:
            raise Unauthorized(AUTH_FAILED)
        return user

    def find_user(self, reference: dict[str, Any]) -> dict[str, Any] | None:
        """The user an auth body names by id, or by name within a domain; None if none."""
        if isinstance(reference.get("id"), str):
            return self.store.find("users", id=reference["id"])
        name = reference.get("name")
        if not isinstance(name, str):
            raise BadRequest("a user needs an id, or a name and a domain")
        domain = self.find_domain(reference.get("domain"))
        if domain is None:
            return None
        return self.store.find("users", name=name, domain_id=domain["id"])

    def find_domain(self, reference: Any) -> dict[str, Any] | None:
        if not isinstance(reference, dict):
            raise BadRequest("a name must come with its domain (id or name)")
        if isinstance(reference.get("id"), str):
            return self.store.find("domains", id=reference["id"])
        if isinstance(reference.get("name"), str):
            return self.store.find("domains", name=reference["name"])
        raise BadRequest("a domain needs an id or a name")

    def _parent_token(self, method: Any) -> ValidToken:
        if not isinstance(method, dict) or not isinstance(method.get("id"), str):
            raise BadRequest("auth.identity.token.id is required")
        try:
            return self.validate(method["id"])
        except InvalidToken:
            raise Unauthorized(AUTH_FAILED) from None

    def _scope_project(self, scope: Any, user: dict[str, Any]) -> str | None:
        if scope is None:
            # Keystone scopes to the user's default project when it can, else unscoped.
            default = user.get("default_project_id")
            if default and self.store.roles_on_project(user["id"], default):
                return default
            return None
        if scope == "unscoped":
            return None
        if not isinstance(scope, dict):
            raise BadRequest("auth.scope must be an object")
        if "project" not in scope:
            # Domain, system and trust scopes have no assignments here to grant them.
            raise Unauthorized("Only project scope is supported by this identity service.")
        reference = scope["project"]
        if not isinstance(reference, dict):
            raise BadRequest("auth.scope.project must be an object")
        if isinstance(reference.get("id"), str):
            project = self.store.find("projects", id=reference["id"])
        elif isinstance(reference.get("name"), str):
            domain = self.find_domain(reference.get("domain"))
            project = domain and self.store.find("projects", name=reference["name"],
                                                 domain_id=domain["id"])
        else:
            raise BadRequest("auth.scope.project needs an id, or a name and a domain")
        if not project:
            raise Unauthorized(AUTH_FAILED)
        return project["id"]

    # -- changes that end tokens ---------------------------------------------------------

    def revoke(self, payload: TokenPayload) -> None:
        self.store.revoke_audit_id(payload.audit_id, payload.expires_at)

    def revoke_user_tokens(self, user_id: str) -> float:
        """End every token of the user issued until now; returns the cut-off time."""
        cutoff = time.time()
        self.store.update("users", user_id, {"revoked_before": cutoff})
        return cutoff
