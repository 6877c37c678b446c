"""The XML twins of the API (``/pws/<function>/<stage>``, channels reference §9).

One internal model, two serialisations: a request body parsed here becomes the same dict the
JSON endpoints get, and the handler's answer (a dict) is rendered here as ``<faspay>...``.

Parsing (§9.2): root ``<faspay>``, one child per field, text only; repeated ``<item>`` siblings
become the ``item`` list; whitespace between elements ignored; a stray ``&`` (official plugins
build XML by concatenation without escaping) is repaired before parsing; parsed with
``defusedxml`` (DTDs, entities and external references refused).

Rendering (§9.3): one element per field, lists as repeated elements (``<bill_items>`` per item,
``<payment_channel>`` per channel — ASSUMPTION), ``redirect_url`` left out ("available only on
JSON format"), the ``response_error`` wrapper as ``<faspay><response_error>...`` (ASSUMPTION
for the root). Content-Type ``text/xml`` (ASSUMPTION; not observed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from gateway_faspay_dana.emulator._validation import MalformedRequest

XML_CONTENT_TYPE: Final = "text/xml; charset=utf-8"

#: ``/pws/<function>/<stage>`` function codes and the endpoint they are the twin of (§9.1).
XML_FUNCTIONS: Final[dict[str, str]] = {
    "100001": "channel_inquiry",
    "300011": "create",
    "300002": "create",
    "100004": "inquiry",
    "100005": "cancel",
}

#: Fields the XML answers never carry (§9.3).
JSON_ONLY: Final = frozenset({"redirect_url"})

_BARE_AMP = re.compile(rb"&(?!(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#x[0-9A-Fa-f]+);)")


def xml_endpoint(path: str) -> str | None:
    """The endpoint name of an XML API path (``/pws/300011/183xx00010100000``), or None.

    The stage segment is ignored and a trailing slash accepted (ASSUMPTION, §9.1).
    """
    parts = [p for p in path.split("/") if p]
    if len(parts) == 3 and parts[0] == "pws" and parts[1] in XML_FUNCTIONS:
        return XML_FUNCTIONS[parts[1]]
    return None


def parse_xml(raw: bytes) -> dict[str, Any]:
    """A ``<faspay>`` request body as the dict the JSON handlers take."""
    try:
        root = SafeET.fromstring(_BARE_AMP.sub(b"&amp;", raw))
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise MalformedRequest(f"body is not XML: {type(exc).__name__}") from None
    if root.tag != "faspay":
        raise MalformedRequest("XML root element is not <faspay>")
    body: dict[str, Any] = {}
    items: list[dict[str, str]] = []
    for child in root:
        if child.tag == "item":
            items.append(_flat(child))
        elif len(child):
            body[child.tag] = _flat(child)
        else:
            body[child.tag] = (child.text or "").strip()
    if items:
        body["item"] = items
    return body


def _flat(element: Element) -> dict[str, str]:
    return {sub.tag: (sub.text or "").strip() for sub in element}


def render_xml(data: Mapping[str, Any]) -> bytes:
    """The ``<faspay>`` document for an answer built as a dict."""
    parts: list[str] = []
    for key, value in data.items():
        if key in JSON_ONLY:
            continue
        parts.append(_element(key, value))
    text = '<?xml version="1.0" encoding="UTF-8"?>\n<faspay>' + "".join(parts) + "</faspay>"
    return text.encode("utf-8")


def _element(key: str, value: Any) -> str:
    if isinstance(value, Mapping):
        inner = "".join(_element(k, v) for k, v in value.items())
        return f"<{key}>{inner}</{key}>"
    if isinstance(value, list):
        return "".join(_element(key, entry) for entry in value)
    return f"<{key}>{escape('' if value is None else str(value))}</{key}>"


def scalar_fields(raw: bytes) -> dict[str, str]:
    """The top-level text fields of an XML answer (for tests and the control API)."""
    root = SafeET.fromstring(raw)
    return {child.tag: (child.text or "").strip() for child in root if not len(child)}
