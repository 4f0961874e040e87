"""Who may do what: Keystone's default rules reduced to the three roles used here.

- `admin` on any project: every administrative call;
- `service` (the proxy's user): validating others' tokens and s3tokens signing keys;
- anyone else: read itself and its own token, list its own projects and role assignments,
  manage its own EC2 credentials, change its own password.
"""

from __future__ import annotations

from identity.authentication import ValidToken
from identity.errors import Forbidden

DENIED = "You are not authorized to perform the requested action."


def require_admin(caller: ValidToken) -> None:
    if not caller.is_admin:
        raise Forbidden(DENIED)


def require_self_or_admin(caller: ValidToken, user_id: str) -> None:
    if caller.user["id"] != user_id and not caller.is_admin:
        raise Forbidden(DENIED)


def may_check_token(caller: ValidToken, subject_user_id: str) -> bool:
    return caller.user["id"] == subject_user_id or caller.is_service
