"""Swift container ACLs (X-Container-Read / X-Container-Write): parsing, cleaning, referrers.

Pure functions with Swift's semantics (swift/common/middleware/acl.py):
- an ACL is a comma-separated list of groups (`account`, `account:user`) and referrer
  designations `.r:<host>` (`.r:*` anyone, `.r:.example.com` a domain, `.r:-host` a denial);
- `.rlistings` lets referrer-allowed clients list the container, not only read objects;
- referrers are only meaningful in read ACLs.
`acl_grants` is the one check of an ACL against a request, for tempauth and keystoneauth alike;
each supplies the names its caller goes by.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote, urlparse

REFERRER_DESIGNATORS = (".r", ".ref", ".referer", ".referrer")


def clean_acl(name: str, value: str) -> str:
    """The normalised ACL header value; ValueError (with Swift's message) when invalid."""
    name = name.lower()
    values = []
    for raw_value in value.split(","):
        raw_value = raw_value.strip()
        if not raw_value:
            continue
        if ":" not in raw_value:
            values.append(raw_value)
            continue
        first, second = (part.strip() for part in raw_value.split(":", 1))
        if not first or not first.startswith("."):
            values.append(raw_value)
        elif first in REFERRER_DESIGNATORS:
            if "write" in name:
                raise ValueError(f"Referrers not allowed in write ACL: {raw_value!r}")
            negate = False
            if second and second.startswith("-"):
                negate = True
                second = second[1:].strip()
            if second and second != "*" and second.startswith("*"):
                second = second[1:].strip()
            if not second or second == ".":
                raise ValueError("No host/domain value after referrer designation in ACL: "
                                 f"{raw_value!r}")
            values.append(f".r:{'-' if negate else ''}{second}")
        else:
            raise ValueError(f"Unknown designator {first!r} in ACL: {raw_value!r}")
    return ",".join(values)


def parse_acl(acl: str | None) -> tuple[list[str], list[str]]:
    """(referrers, groups) of a cleaned ACL."""
    referrers: list[str] = []
    groups: list[str] = []
    for value in (acl or "").split(","):
        value = value.strip()
        if not value:
            continue
        if value.startswith(".r:"):
            referrers.append(value[len(".r:"):])
        else:
            groups.append(unquote(value))
    return referrers, groups


def referrer_allowed(referrer: str | None, referrer_acl: list[str]) -> bool:
    """Whether a Referer header passes the referrer part of an ACL (later entries win)."""
    allow = False
    if referrer_acl:
        host = urlparse(referrer or "").hostname or "unknown"
        for pattern in referrer_acl:
            if pattern.startswith("-"):
                pattern = pattern[1:]
                if pattern == host or (pattern.startswith(".") and host.endswith(pattern)):
                    allow = False
            elif pattern == "*" or pattern == host or \
                    (pattern.startswith(".") and host.endswith(pattern)):
                allow = True
    return allow


def acl_grants(acl: str | None, referrer: str | None, is_object: bool,
               principals: Iterable[str]) -> bool:
    """Whether a container ACL lets a request through, as both auth middlewares read it.

    By referrer: objects, or the listing too when the ACL has `.rlistings` (Swift's rule);
    by name: when the ACL lists one of `principals`, the caller's names in the auth system's
    form (tempauth: `account`, `account:user`; keystone: `project:user`, `project:*`, ...).
    """
    referrers, groups = parse_acl(acl)
    if referrer_allowed(referrer, referrers) and (is_object or ".rlistings" in groups):
        return True
    names = set(groups)
    return any(principal in names for principal in principals)
