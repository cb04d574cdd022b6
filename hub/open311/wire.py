"""GeoReport v2's two formats: XML (schemaless, built with the standard library) and its JSON mapping.

The format is the path's suffix (`/services.xml`, `/requests.json`). In XML a list is an element
per item inside the list's element (`<service_requests><request>…`, `<formats><format>…`), None
an empty element, booleans `true`/`false`; in JSON the list is the answer itself, as the spec's
examples show. Errors are `[{code, description}]`, in XML `<errors><error>…`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from xml.etree import ElementTree

from fastapi.responses import Response

FORMATS = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}
# The element of one item in a list, by the list's name.
ITEM_NAMES = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill(element: ElementTree.Element, name: str, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _fill(ElementTree.SubElement(element, key), key, inner)
    elif isinstance(value, list | tuple):
        item = ITEM_NAMES.get(name, "item")
        for inner in value:
            _fill(ElementTree.SubElement(element, item), item, inner)
    else:
        element.text = _text(value)


def to_xml(root: str, value: Mapping[str, Any] | Sequence[Any]) -> bytes:
    element = ElementTree.Element(root)
    _fill(element, root, value)
    return ElementTree.tostring(element, encoding="utf-8", xml_declaration=True)


def answer(fmt: str, root: str, value: Mapping[str, Any] | Sequence[Any], status_code: int = 200) -> Response:
    """`value` in the asked format; `root` names the XML root element (the JSON has none)."""
    body = to_xml(root, value) if fmt == "xml" else json.dumps(value, ensure_ascii=False).encode()
    return Response(body, status_code=status_code, media_type=FORMATS[fmt])


def errors(fmt: str, status_code: int, description: str) -> Response:
    return answer(fmt if fmt in FORMATS else "xml", "errors", [{"code": status_code, "description": description}],
                  status_code)  # fmt: skip
