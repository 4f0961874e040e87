"""Quorum rules: which answer the client gets when storage nodes disagree. Pure functions.

Swift's rule (`best_response`): look at the status classes 1xx, 2xx, 3xx, 4xx in that order;
the first class with at least `quorum` answers wins, and within it the largest status (e.g. 202
over 201, 404 over 400). 5xx never forms a quorum: too few good answers is a 503. When no class
reaches a quorum, `overrides` (e.g. DELETE's {404: 204}) may turn some statuses into others and
the vote is taken again; an overridden answer is never chosen as the one whose body is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SERVICE_UNAVAILABLE = 503


def quorum_size(replicas: int) -> int:
    """A majority of `replicas` (at least 1)."""
    return max(1, int(replicas) // 2 + 1)


def _vote(statuses: Sequence[int], quorum: int, avoid: frozenset[int]) -> int | None:
    for hundred in (100, 200, 300, 400):
        in_class = [s for s in statuses if hundred <= s < hundred + 100]
        if len(in_class) >= quorum:
            best = max(in_class)
            for index, status in enumerate(statuses):
                if status == best and index not in avoid:
                    return index
            # only overridden answers have that status: answer it without their details
            return -best
    return None


def choose_response(statuses: Sequence[int], quorum: int,
                    overrides: Mapping[int, int] | None = None) -> tuple[int, int | None]:
    """(status for the client, index of the node answer to copy headers/body from, or None)."""
    found = _vote(statuses, quorum, frozenset())
    if found is None and overrides:
        transformed = [overrides.get(s, s) for s in statuses]
        avoid = frozenset(i for i, s in enumerate(statuses) if s in overrides)
        found = _vote(transformed, quorum, avoid)
        if found is not None and found >= 0:
            return transformed[found], found
    if found is None:
        return SERVICE_UNAVAILABLE, None
    if found < 0:
        return -found, None
    return statuses[found], found
