"""Reading S3 XML answers in tests (the middleware's own safe parser)."""

from __future__ import annotations

from proxy.middleware.s3api.xml import Node, parse_xml


def error_code(body: bytes) -> str | None:
    if not body:
        return None
    root = parse_xml(body)
    return root.child_text("Code") if root.tag == "Error" else None


def texts(body: bytes, *path: str) -> list[str]:
    """Text of every element at `path` below the root (e.g. "Contents", "Key")."""
    nodes: list[Node] = [parse_xml(body)]
    for tag in path:
        nodes = [child for node in nodes for child in node.find_all(tag)]
    return [node.text for node in nodes]


def text(body: bytes, *path: str) -> str | None:
    found = texts(body, *path)
    return found[0] if found else None
