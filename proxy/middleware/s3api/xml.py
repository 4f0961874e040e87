"""S3's XML: building response documents and safely parsing request bodies, stdlib only.

Building: a document is a root name and a list of `(name, value)` fields, where a value is
text, a number, a bool (`true`/`false`), None (element left out), or a nested list of fields;
a repeated element is simply a repeated field name.

Parsing: request bodies (CreateBucketConfiguration, Delete, CompleteMultipartUpload) are read
with expat directly, refusing any DTD, entity declaration or external reference (what
defusedxml guards against: billion laughs, external entity expansion), and bounded in size.
Namespaces are dropped: S3 accepts its elements with or without the S3 namespace.
"""

from __future__ import annotations

import dataclasses
import xml.parsers.expat
from collections.abc import Iterable, Iterator
from xml.sax.saxutils import escape

S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

Fields = Iterable[tuple[str, object]]


class XmlError(ValueError):
    """A request body that is not well-formed XML, or that tries DTD/entity tricks."""


# ---- building -------------------------------------------------------------------------------

def _render(fields: Fields, out: list[str]) -> None:
    for name, value in fields:
        if value is None:
            continue
        if isinstance(value, list):
            out.append(f"<{name}>")
            _render(value, out)
            out.append(f"</{name}>")
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else escape(str(value))
        out.append(f"<{name}>{text}</{name}>")


def build_document(root: str, fields: Fields, namespace: str | None = S3_NAMESPACE) -> bytes:
    """`<?xml ...?><root xmlns=...>fields</root>` as UTF-8 bytes."""
    out = [f'<{root} xmlns="{namespace}">' if namespace else f"<{root}>"]
    _render(fields, out)
    out.append(f"</{root}>")
    return XML_DECLARATION + "".join(out).encode("utf-8")


# ---- parsing --------------------------------------------------------------------------------

@dataclasses.dataclass
class Node:
    """One element: local name (namespace dropped), its text and its children."""

    tag: str
    text: str = ""
    children: list[Node] = dataclasses.field(default_factory=list)

    def find(self, tag: str) -> Node | None:
        return next((child for child in self.children if child.tag == tag), None)

    def find_all(self, tag: str) -> Iterator[Node]:
        return (child for child in self.children if child.tag == tag)

    def child_text(self, tag: str) -> str | None:
        child = self.find(tag)
        return child.text if child is not None else None


def _refuse(*_args: object) -> None:
    raise XmlError("DTDs and entities are not allowed")


def parse_xml(body: bytes) -> Node:
    """The root element of `body`; XmlError when malformed or using DTDs/entities."""
    parser = xml.parsers.expat.ParserCreate(namespace_separator="}")
    stack: list[Node] = []
    result: list[Node] = []

    def start(name: str, _attrs: dict[str, str]) -> None:
        node = Node(name.rsplit("}", 1)[-1])
        if stack:
            stack[-1].children.append(node)
        else:
            result.append(node)
        stack.append(node)

    def end(_name: str) -> None:
        node = stack.pop()
        node.text = node.text.strip() if node.children else node.text

    def data(text: str) -> None:
        if stack:
            stack[-1].text += text

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(body, True)
    except xml.parsers.expat.ExpatError as err:
        raise XmlError(str(err)) from None
    if not result:
        raise XmlError("no root element")
    return result[0]
