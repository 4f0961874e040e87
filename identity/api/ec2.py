"""EC2 credentials (/v3/users/{u}/credentials/OS-EC2) and S3 signature checks (/v3/s3tokens).

s3tokens is Keystone's: the proxy sends the access key, the base64 string to sign and the
signature; identity recomputes the signature with the secret and answers a token body scoped
to the credential's project. A caller authenticated as `admin` or `service` also gets the
SigV4 derived key of the request's scope (`s3_signing_key`, hex), so the proxy can check more
requests and aws-chunked chunk signatures of that day/region/service itself; the secret never
leaves identity. Every refusal is the same 401, whatever failed.
"""

from __future__ import annotations

from typing import Any

from webob import Response

from identity import policy
from identity.api import views
from identity.api.http import Call, json_response, no_content
from identity.authentication import InvalidToken
from identity.credentials import (
    CredentialSealError,
    check_signature,
    decode_string_to_sign,
    new_access_key,
    new_secret_key,
)
from identity.errors import BadRequest, NotFound, Unauthorized
from identity.token_body import token_body

S3_REFUSED = "Credential signature mismatch or unknown access key."
MAX_STRING_TO_SIGN_BYTES = 64 * 1024


def _view(call: Call, row: dict[str, Any]) -> dict[str, Any]:
    return views.ec2_credential(call, row, call.services.sealer.unseal(row["secret_sealed"]))


def _own_credential(call: Call, user_id: str, access: str) -> dict[str, Any]:
    policy.require_self_or_admin(call.caller, user_id)
    row = call.store.ec2_credential(access)
    if row["user_id"] != user_id:
        raise NotFound(f"Could not find credential: {access}.")
    return row


def create_credential(call: Call, user_id: str) -> Response:
    policy.require_self_or_admin(call.caller, user_id)
    project_id = call.body().get("tenant_id")
    if not isinstance(project_id, str) or not project_id:
        raise BadRequest("'tenant_id' is a required property")
    call.store.get("users", user_id)
    call.store.get("projects", project_id)
    secret = new_secret_key()
    row = call.store.add_ec2_credential(new_access_key(), call.services.sealer.seal(secret),
                                        user_id, project_id)
    return json_response(201, {"credential": views.ec2_credential(call, row, secret)})


def list_credentials(call: Call, user_id: str) -> Response:
    policy.require_self_or_admin(call.caller, user_id)
    call.store.get("users", user_id)
    items = [_view(call, row) for row in call.store.ec2_credentials(user_id)]
    return call.collection("credentials", items)


def show_credential(call: Call, user_id: str, access: str) -> Response:
    return json_response(200, {"credential": _view(call, _own_credential(call, user_id,
                                                                          access))})


def delete_credential(call: Call, user_id: str, access: str) -> Response:
    _own_credential(call, user_id, access)
    call.store.delete_ec2_credential(access)
    return no_content()


def _privileged_caller(call: Call) -> bool:
    """True for an admin or service caller; a token that is present but bad is a 401."""
    token = call.request.headers.get("X-Auth-Token")
    if not token:
        return False
    try:
        return call.services.authenticator.validate(token).is_service
    except InvalidToken:
        raise Unauthorized("The request you have made requires authentication.") from None


def s3tokens(call: Call) -> Response:
    privileged = _privileged_caller(call)
    credentials = call.body().get("credentials")
    if not isinstance(credentials, dict):
        raise BadRequest("Expecting to find credentials in request body.")
    access, token, signature = (credentials.get(key) for key in ("access", "token",
                                                                   "signature"))
    if not all(isinstance(value, str) and value for value in (access, token, signature)):
        raise BadRequest("credentials need 'access', 'token' and 'signature'.")
    if len(token) > MAX_STRING_TO_SIGN_BYTES * 2:
        raise BadRequest("credentials.token is too long.")
    try:
        string_to_sign = decode_string_to_sign(token)
    except ValueError as err:
        raise BadRequest(str(err)) from None
    try:
        row = call.store.ec2_credential(access)
        secret = call.services.sealer.unseal(row["secret_sealed"])
    except (NotFound, CredentialSealError):
        raise Unauthorized(S3_REFUSED) from None
    check = check_signature(secret, string_to_sign, signature)
    if not check.valid:
        raise Unauthorized(S3_REFUSED)
    user = call.store.find("users", id=row["user_id"])
    if user is None:
        raise Unauthorized(S3_REFUSED)
    valid = call.services.authenticator.issue(user, row["project_id"], ["ec2credential"])
    body = token_body(call.store, valid)
    if privileged and check.signing_key is not None:
        body["s3_signing_key"] = check.signing_key.hex()
    return json_response(200, body, {"X-Subject-Token": valid.token})


ROUTES = [
    ("POST", "/v3/users/{user_id}/credentials/OS-EC2", create_credential, True),
    ("GET", "/v3/users/{user_id}/credentials/OS-EC2", list_credentials, True),
    ("GET", "/v3/users/{user_id}/credentials/OS-EC2/{access}", show_credential, True),
    ("DELETE", "/v3/users/{user_id}/credentials/OS-EC2/{access}", delete_credential, True),
    ("POST", "/v3/s3tokens", s3tokens, False),
]
