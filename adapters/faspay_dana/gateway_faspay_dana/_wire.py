"""Low-level wire formats: amounts, dates, phone numbers, and safe JSON / XML decoding.

Amounts (§4.1) are digit strings in hundredths of a rupiah: ``Money("2000", "IDR")`` is
``"200000"``, at most 15 digits. Dates (§4.2) are ``YYYY-MM-DD HH:MM:SS`` in Asia/Jakarta
(WIB, UTC+7). Inbound bodies are decoded defensively: JSON with duplicate keys, ``NaN`` or
nesting deeper than :data:`MAX_DEPTH` is refused; XML goes through ``defusedxml`` with DTDs
forbidden and must be one ``<faspay>`` element with one child per field.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from gateway_core import Money
from gateway_faspay_dana._errors import InvalidRequest, PayloadError

#: Faspay's time zone (inference, §4.2: every Indonesian integration uses WIB).
JAKARTA: Final = ZoneInfo("Asia/Jakarta")
DATETIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
CURRENCY: Final = "IDR"
MAX_AMOUNT_DIGITS: Final = 15
#: Deepest JSON nesting accepted in an inbound body (a notification is flat: depth 1).
MAX_DEPTH: Final = 16

_DIGITS = re.compile(r"[0-9]+")
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}", re.ASCII)
_DECIMAL_AMOUNT = re.compile(r"([0-9]+)\.([0-9]{2})")
_PHONE_NOISE = re.compile(r"[\s\-().]")
_STRAY_AMPERSAND = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos|#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6});)")
_BOM = b"\xef\xbb\xbf"
_BLANK = b" \t\r\n"


# -- dates ---------------------------------------------------------------------------------


#: The last datetime formatted and its text: replies in the same second reuse it.
_LAST_FORMATTED: tuple[datetime, str] | None = None


def format_datetime(value: datetime) -> str:
    """An aware datetime as Faspay writes it: Jakarta wall time, to the second."""
    global _LAST_FORMATTED
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    last = _LAST_FORMATTED  # one read: another thread may replace it meanwhile
    # The same zone, fold and wall time: the same instant, so the same Jakarta text.
    if (
        last is not None
        and last[0].tzinfo is value.tzinfo
        and last[0].fold == value.fold
        and last[0] == value
    ):
        return last[1]
    text = value.astimezone(JAKARTA).strftime(DATETIME_FORMAT)
    _LAST_FORMATTED = (value, text)
    return text


def parse_datetime(text: str, *, field: str = "datetime") -> datetime:
    """``YYYY-MM-DD HH:MM:SS`` (Jakarta time) as an aware datetime; :class:`PayloadError`."""
    if not isinstance(text, str) or _DATETIME.fullmatch(text) is None:
        raise PayloadError(f"{field} must be YYYY-MM-DD HH:MM:SS", field=field)
    try:  # the shape is checked above; fromisoformat is several times faster than strptime
        return datetime.fromisoformat(text).replace(tzinfo=JAKARTA)
    except ValueError:
        raise PayloadError(f"{field} is not a valid date", field=field) from None


def jakarta_now() -> datetime:
    """The current time in Jakarta, to the second."""
    # The same as datetime.now(JAKARTA).replace(microsecond=0), in a third of the time.
    return datetime.fromtimestamp(int(time.time()), JAKARTA)


# -- amounts -------------------------------------------------------------------------------


def to_wire_amount(money: Money, *, field: str = "amount") -> str:
    """``Money("2000", "IDR")`` → ``"200000"`` (hundredths); :class:`InvalidRequest` if the
    currency is not IDR, the amount negative, or longer than 15 digits."""
    if not isinstance(money, Money) or money.currency != CURRENCY:
        raise InvalidRequest(f"{field} must be an amount in IDR", field=field)
    minor = money.minor_units
    if minor < 0:
        raise InvalidRequest(f"{field} must not be negative", field=field)
    text = str(minor)
    if len(text) > MAX_AMOUNT_DIGITS:
        raise InvalidRequest(f"{field} exceeds Faspay's 15 digits", field=field)
    return text


#: Amounts read from the wire, by their text (``Money`` is immutable; prices repeat).
_AMOUNTS: dict[str, Money] = {}
_AMOUNTS_KEPT: Final = 1024


def from_wire_amount(text: str, *, field: str = "amount", allow_decimals: bool = False) -> Money:
    """``"200000"`` → ``Money("2000.00", "IDR")``; :class:`PayloadError` for anything but
    1–15 digits. With ``allow_decimals``, the legacy ``"8000.00"`` form (rupiah with two
    decimals, §4.1) is accepted too, for parsing other clients' requests."""
    if text.__class__ is str:
        known = _AMOUNTS.get(text)
        if known is not None:
            return known
    if isinstance(text, str) and _DIGITS.fullmatch(text) and len(text) <= MAX_AMOUNT_DIGITS:
        money = Money.from_minor_units(int(text), CURRENCY)
        if text.__class__ is str:
            if len(_AMOUNTS) >= _AMOUNTS_KEPT:
                _AMOUNTS.clear()
            _AMOUNTS[text] = money
        return money
    if allow_decimals and isinstance(text, str):
        match = _DECIMAL_AMOUNT.fullmatch(text)
        if match and len(match.group(1)) + 2 <= MAX_AMOUNT_DIGITS:
            return Money.from_minor_units(int(match.group(1) + match.group(2)), CURRENCY)
    raise PayloadError(f"{field} must be up to 15 digits (hundredths of a rupiah)", field=field)


# -- phone numbers -------------------------------------------------------------------------


def normalise_msisdn(phone: str) -> str:
    """A customer phone number in the DANA example's form (``8562927907``).

    Spaces, dashes, dots and parentheses are dropped; a ``+62``, ``62`` or ``0`` prefix is
    removed; what is left must be 6 to 15 digits. Raises :class:`InvalidRequest` (naming the
    field, not the number).
    """
    if not isinstance(phone, str) or not phone.strip():
        raise InvalidRequest("the customer's phone number (msisdn) is required", field="msisdn")
    digits = _PHONE_NOISE.sub("", phone)
    for prefix in ("+62", "62", "0"):
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
            break
    if _DIGITS.fullmatch(digits) is None or not 6 <= len(digits) <= 15:
        raise InvalidRequest(
            "the customer's phone number (msisdn) must be an Indonesian mobile number",
            field="msisdn",
        )
    return digits


# -- reading decoded payloads --------------------------------------------------------------


class Fields:
    """Typed reads of one decoded message (JSON object, XML fields or query mapping).

    Empty forms (missing, ``""``, ``null``, ``[]``, ``{}``: §14 #14) read as ``""``. A JSON
    integer is accepted only where ``numeric=True`` (Faspay is known to send numbers for
    numeric fields, §2.4); booleans, floats, lists and objects are refused.
    """

    def __init__(self, payload: Mapping[str, object], *, what: str = "message") -> None:
        if not isinstance(payload, Mapping):
            raise PayloadError(f"{what} must be an object")
        self._payload = payload

    def has(self, key: str) -> bool:
        """True when ``key`` is present with a non-empty value."""
        return self.raw(key) not in ("", None)

    def raw(self, key: str) -> object:
        """The value as decoded, with empty forms folded to ``""``."""
        value = self._payload.get(key)
        if value is None or (isinstance(value, list | dict) and not value):
            return ""
        return value

    def text(
        self,
        key: str,
        *,
        required: bool = False,
        numeric: bool = False,
        pattern: re.Pattern[str] | None = None,
        max_length: int = 255,
        null_literal: bool = False,
    ) -> str:
        """A string field; :class:`PayloadError` naming ``key`` when it breaks a rule."""
        value = self.raw(key)
        if numeric and isinstance(value, int) and not isinstance(value, bool):
            if value < 0 or value.bit_length() > 64:
                raise PayloadError(f"{key} is out of range", field=key)
            value = str(value)
        if not isinstance(value, str):
            raise PayloadError(f"{key} must be a string", field=key)
        if null_literal and value == "null":
            value = ""
        if not value:
            if required:
                raise PayloadError(f"{key} is required", field=key)
            return ""
        if len(value) > max_length:
            raise PayloadError(f"{key} is longer than {max_length} characters", field=key)
        if pattern is not None and pattern.fullmatch(value) is None:
            raise PayloadError(f"{key} has the wrong format", field=key)
        return value

    def code(self, key: str, *, required: bool = False) -> str:
        """A two-digit code such as ``response_code``; an integer is zero-padded."""
        value = self.raw(key)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 99:
            return f"{value:02d}"
        return self.text(key, required=required, pattern=_CODE)

    def amount(
        self, key: str, *, required: bool = False, allow_decimals: bool = False
    ) -> Money | None:
        """An amount field in hundredths, as IDR :class:`Money`; ``None`` when empty."""
        text = self.text(key, required=required, numeric=True, max_length=32)
        if not text:
            return None
        return from_wire_amount(text, field=key, allow_decimals=allow_decimals)


_CODE = re.compile(r"[0-9A-Za-z]{1,4}")


# -- JSON ----------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) != len(pairs):  # a key came twice: name the first repeated one
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise PayloadError("duplicate key in JSON object", field=key)
            seen.add(key)
    return result


def _no_constants(name: str) -> object:
    raise PayloadError(f"{name} is not valid JSON")


# Built once: json.loads and json.dumps with options build a new decoder or encoder per call.
_DECODER: Final = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)


def _too_deep(data: bytes, limit: int) -> bool:
    if data.count(b"{") + data.count(b"[") <= limit:
        return False  # cannot nest deeper than it has brackets: the common, fast path
    depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def decode_json_object(body: bytes, *, max_depth: int = MAX_DEPTH) -> dict[str, object]:
    """A UTF-8 JSON object from ``body``; :class:`PayloadError` for anything else.

    Refuses duplicate keys (at any level), ``NaN``/``Infinity``, and nesting deeper than
    ``max_depth`` (checked before parsing, so the parser's recursion is never at risk).
    """
    if not isinstance(body, bytes | bytearray):
        raise PayloadError("body must be bytes")
    if _too_deep(bytes(body), max_depth):
        raise PayloadError("JSON nested too deeply")
    try:
        data = bytes(body)
        # "utf-8-sig" by hand: that codec is written in Python, plain UTF-8 is not.
        text = (data[len(_BOM) :] if data.startswith(_BOM) else data).decode("utf-8")
        value = _DECODER.decode(text)
    except PayloadError:
        raise
    except (ValueError, RecursionError):
        raise PayloadError("body is not valid UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise PayloadError("JSON body must be an object")
    return value


def encode_json(payload: Mapping[str, object]) -> bytes:
    """Compact ASCII JSON (non-ASCII characters as ``\\u`` escapes)."""
    return _ENCODER.encode(payload).encode("ascii")


# -- XML -----------------------------------------------------------------------------------


def decode_xml_fields(body: bytes, *, root: str = "faspay") -> dict[str, object]:
    """The fields of a ``<faspay>`` document: ``{child tag: stripped text}``.

    Parsed with ``defusedxml`` (DTDs, entities and external references forbidden). A stray
    ``&`` (seen in merchant names; Faspay's own plugin escapes it, §10.1) is escaped and the
    parse retried; only an ``&`` that does not start one of XML's five entities or a character
    reference is touched, which is exactly the text a parser would reject. A field with child
    elements is returned as a non-string marker, so typed reads reject it; a repeated field is
    refused.
    """
    import xml.etree.ElementTree as ElementTree

    from defusedxml.ElementTree import fromstring

    if not isinstance(body, bytes | bytearray):
        raise PayloadError("body must be bytes")
    data = bytes(body)
    try:
        try:
            element = fromstring(data, forbid_dtd=True)
        except ElementTree.ParseError:
            if b"&" not in data:
                raise
            element = fromstring(_STRAY_AMPERSAND.sub(b"&amp;", data), forbid_dtd=True)
    except (ElementTree.ParseError, ValueError, LookupError):
        raise PayloadError("body is not a well-formed, safe XML document") from None
    if element.tag != root:
        raise PayloadError(f"XML root element must be <{root}>")
    fields: dict[str, object] = {}
    for child in element:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if tag in fields:
            raise PayloadError("repeated XML element", field=tag)
        fields[tag] = _NESTED if len(child) else (child.text or "").strip()
    return fields


class _Nested:
    """Marks an XML field that has child elements (never a valid field value)."""

    def __repr__(self) -> str:
        return "<nested element>"


_NESTED = _Nested()


def encode_xml(fields: Iterable[tuple[str, str]], *, root: str = "faspay") -> bytes:
    """``<?xml ...?><faspay><k>v</k>...</faspay>`` in UTF-8, values escaped."""
    inner = "".join(f"<{key}>{_xml_escape(value)}</{key}>" for key, value in fields)
    return f'<?xml version="1.0" encoding="utf-8"?><{root}>{inner}</{root}>'.encode()


def sniff_format(body: object) -> str | None:
    """``"xml"`` or ``"json"`` from the first non-blank byte (``<`` or ``{``), else ``None``."""
    if not isinstance(body, bytes | bytearray):
        return None
    data = bytes(body).lstrip(_BLANK)
    if data.startswith(_BOM):
        data = data[len(_BOM) :].lstrip(_BLANK)
    first = data[:1]
    if first == b"<":
        return "xml"
    if first == b"{":
        return "json"
    return None


def _xml_escape(value: str) -> str:
    """Escape element text (``xml.sax.saxutils.escape`` without importing urllib and ssl)."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
