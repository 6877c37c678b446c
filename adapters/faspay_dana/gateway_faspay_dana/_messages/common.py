"""What the message families share: identifier patterns, the field rules our requests are
checked against when built, and the reading of a response's envelope (§2.4)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import attrs

from gateway_core import Money
from gateway_faspay_dana._codes import SUCCESS, payment_status
from gateway_faspay_dana._errors import InvalidRequest, PayloadError
from gateway_faspay_dana._wire import Fields, parse_datetime, to_wire_amount

CHANNEL_DANA: Final = "819"

#: Bill numbers read from Faspay: any visible ASCII, 1–32 characters.
INBOUND_BILL_NO: Final = re.compile(r"[\x21-\x7e]{1,32}")
TRX_ID: Final = re.compile(r"[0-9A-Za-z]{1,32}")
MERCHANT_ID: Final = re.compile(r"[0-9]{1,15}")
DIGITS: Final = re.compile(r"[0-9]{1,32}")
CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def _text(
    value: object,
    field: str,
    max_length: int,
    *,
    required: bool = True,
    pattern: re.Pattern[str] | None = None,
) -> None:
    if not isinstance(value, str):
        raise InvalidRequest(f"{field} must be a string", field=field)
    if not value:
        if required:
            raise InvalidRequest(f"{field} is required", field=field)
        return
    if len(value) > max_length:
        raise InvalidRequest(f"{field} is longer than Faspay's {max_length}", field=field)
    if CONTROL.search(value):
        raise InvalidRequest(f"{field} contains control characters", field=field)
    if pattern is not None and pattern.fullmatch(value) is None:
        raise InvalidRequest(f"{field} has the wrong format", field=field)


def check_text(max_length: int, *, required: bool = True, pattern: str | None = None) -> Any:
    """An attrs validator: a string of at most ``max_length`` characters, no control
    characters, matching ``pattern``; :class:`InvalidRequest` naming the field."""
    compiled = re.compile(pattern) if pattern is not None else None
    has_control = CONTROL.search

    def check(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
        # A well-formed value passes in one expression; anything else gets the full checks,
        # which name the rule it breaks.
        if (
            value.__class__ is str
            and value
            and len(value) <= max_length
            and has_control(value) is None
            and (compiled is None or compiled.fullmatch(value) is not None)
        ):
            return
        _text(value, attribute.name, max_length, required=required, pattern=compiled)

    return check


def check_amount(instance: object, attribute: attrs.Attribute[Money], value: Money) -> None:
    """An attrs validator: an amount Faspay can carry (IDR, at most 15 digits)."""
    to_wire_amount(value, field=attribute.name)


def check_aware(instance: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    """An attrs validator: a timezone-aware datetime."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidRequest(f"{attribute.name} must be a timezone-aware datetime")


def payload_error(exc: InvalidRequest) -> PayloadError:
    """``exc`` (a field rule broken by a message read from the wire) as a PayloadError."""
    return PayloadError(exc.message, field=exc.field)


def envelope(payload: Mapping[str, object]) -> tuple[Fields, str, str]:
    """(fields, response_code, response_desc) of a normal or a ``response_error`` body."""
    fields = Fields(payload, what="response")
    if "response_error" in payload:
        error = Fields(_as_mapping(payload["response_error"]), what="response_error")
        code = error.code("response_code")
        # The wrapper only ever carries failures: a missing or "00" code is still one.
        return Fields({}), "" if code == SUCCESS else code, error.text("response_desc")
    return fields, fields.code("response_code", required=True), fields.text("response_desc")


def _as_mapping(value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise PayloadError("response_error must be an object", field="response_error")
    return value


def status_code(fields: Fields, *, required: bool) -> str:
    """``payment_status_code``, refused when it is not a §11.2 code."""
    code = fields.text("payment_status_code", required=required, numeric=True)
    if code:
        payment_status(code)  # refuses codes outside §11.2
    return code


def optional_datetime(text: str) -> datetime | None:
    """A Faspay date as an aware datetime; ``None`` when empty or unreadable."""
    try:
        return parse_datetime(text) if text else None
    except PayloadError:
        return None
