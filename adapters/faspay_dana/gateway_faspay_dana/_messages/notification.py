"""Payment notification (§10): Faspay's server-to-server message, and our reply to it.

The body is decoded by :func:`decode_notification` (size cap, format sniffing, safe JSON or
XML), read by :meth:`PaymentNotification.from_payload`, and answered with a
:class:`NotificationAck` in the body's own format. The signature is checked by the gateway,
on the raw value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Self

import attrs

from gateway_core import Money, PaymentStatus
from gateway_faspay_dana._codes import PAYMENT_STATUSES, SUCCESS, payment_status
from gateway_faspay_dana._errors import PayloadError
from gateway_faspay_dana._messages.common import (
    DIGITS,
    INBOUND_BILL_NO,
    MERCHANT_ID,
    TRX_ID,
    optional_datetime,
    status_code,
)
from gateway_faspay_dana._wire import (
    Fields,
    decode_json_object,
    decode_xml_fields,
    encode_json,
    encode_xml,
    from_wire_amount,
    sniff_format,
)

#: What :func:`~gateway_faspay_dana._wire.from_wire_amount` accepts without ``allow_decimals``.
_AMOUNT_TEXT: Final = re.compile(r"[0-9]{1,15}")


@attrs.frozen(kw_only=True)
class PaymentNotification:
    """Faspay's server-to-server notification, parsed with strict types.

    Every field must be a string, except that a JSON integer is tolerated where the field is
    numeric (``trx_id``, ``merchant_id``, ``payment_status_code``, ``bill_total``,
    ``payment_total``, ``payment_channel_uid``: §2.4 notes Faspay tolerates numbers there, so
    its own messages may use them). ``bill_no`` and ``signature`` must be strings (a number
    would lose leading zeros). Mandatory: ``trx_id``, ``merchant_id``, ``bill_no``,
    ``payment_status_code`` (a §11.2 code) and ``bill_total`` (digits, hundredths). Unknown
    fields are ignored. ``signature`` holds the value only when it is a string ("" otherwise);
    verification is the gateway's job, on the raw value.
    """

    trx_id: str
    merchant_id: str
    bill_no: str
    payment_status_code: str
    bill_total: Money
    payment_total: Money | None = None
    payment_reff: str = ""
    payment_date: str = ""
    payment_status_desc: str = ""
    merchant: str = ""
    payment_channel_uid: str = ""
    payment_channel: str = ""
    request: str = "Payment Notification"
    signature: str = attrs.field(default="", repr=False)

    @property
    def status(self) -> PaymentStatus:
        """``payment_status_code`` as the core's status."""
        return payment_status(self.payment_status_code)

    @property
    def paid_at(self) -> datetime | None:
        """``payment_date`` (Jakarta time) as an aware datetime; ``None`` if empty/unreadable."""
        return optional_datetime(self.payment_date)

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> Self:
        return cls(**notification_fields(payload))

    @classmethod
    def _from_fields(cls, payload: Mapping[str, object]) -> Self:
        """The field-by-field reading: every rule, in order; the reference for the lean one."""
        fields = Fields(payload, what="notification")
        bill_total = fields.amount("bill_total", required=True)
        assert bill_total is not None
        signature = payload.get("signature")
        return cls(
            trx_id=fields.text("trx_id", required=True, numeric=True, pattern=TRX_ID),
            merchant_id=fields.text(
                "merchant_id", required=True, numeric=True, pattern=MERCHANT_ID
            ),
            bill_no=fields.text("bill_no", required=True, pattern=INBOUND_BILL_NO),
            payment_status_code=status_code(fields, required=True),
            bill_total=bill_total,
            payment_total=fields.amount("payment_total"),
            payment_reff=fields.text("payment_reff", numeric=True, null_literal=True),
            payment_date=fields.text("payment_date", null_literal=True),
            payment_status_desc=fields.text("payment_status_desc"),
            merchant=fields.text("merchant"),
            payment_channel_uid=fields.text("payment_channel_uid", numeric=True, pattern=DIGITS),
            payment_channel=fields.text("payment_channel"),
            request=fields.text("request"),
            signature=signature if isinstance(signature, str) else "",
        )


#: (key, required, pattern, max_length, "null" reads as empty) of each string field, as
#: :meth:`PaymentNotification.from_payload` reads them with :class:`Fields`.
_PLAIN_FIELDS: tuple[tuple[str, bool, re.Pattern[str] | None, int, bool], ...] = (
    ("trx_id", True, TRX_ID, 255, False),
    ("merchant_id", True, MERCHANT_ID, 255, False),
    ("bill_no", True, INBOUND_BILL_NO, 255, False),
    ("payment_status_code", True, None, 255, False),
    ("bill_total", True, _AMOUNT_TEXT, 32, False),
    ("payment_total", False, _AMOUNT_TEXT, 32, False),
    ("payment_reff", False, None, 255, True),
    ("payment_date", False, None, 255, True),
    ("payment_status_desc", False, None, 255, False),
    ("merchant", False, None, 255, False),
    ("payment_channel_uid", False, DIGITS, 255, False),
    ("payment_channel", False, None, 255, False),
    ("request", False, None, 255, False),
)


def _read_plain(payload: Mapping[str, object]) -> dict[str, Any] | None:
    """The fields of a notification whose every field is a well-formed string (or absent
    when optional): what Faspay sends. ``None`` for anything else, which the field-by-field
    reading then refuses or accepts with the same rules (one pass, no second model)."""
    if payload.__class__ is not dict:
        return None
    get = payload.get
    out: dict[str, Any] = {}
    for key, required, pattern, max_length, null_literal in _PLAIN_FIELDS:
        value = get(key)
        if value.__class__ is not str:
            if value is None and not required:
                out[key] = ""
                continue
            return None
        if null_literal and value == "null":
            value = ""
        if not value:
            if required:
                return None
        elif len(value) > max_length or (pattern is not None and not pattern.fullmatch(value)):
            return None
        out[key] = value
    if out["payment_status_code"] not in PAYMENT_STATUSES:
        return None
    out["bill_total"] = from_wire_amount(out["bill_total"], field="bill_total")
    paid = out["payment_total"]
    out["payment_total"] = from_wire_amount(paid, field="payment_total") if paid else None
    signature = get("signature")
    out["signature"] = signature if signature.__class__ is str else ""
    return out


def notification_fields(payload: Mapping[str, object]) -> dict[str, Any]:
    """The fields of :class:`PaymentNotification` read from ``payload``, as keyword arguments
    (what the gateway verifies, without building the message class first); a
    :class:`PayloadError` naming the first field that breaks a rule."""
    lean = _read_plain(payload)
    if lean is not None:
        return lean
    # Anything unusual (a number, a missing or broken field): the field-by-field reading,
    # whose first complaint names the field.
    return attrs.asdict(PaymentNotification._from_fields(payload), recurse=False)


def decode_notification(body: bytes, *, max_bytes: int) -> tuple[str, dict[str, object]]:
    """(format, decoded fields) of a notification body; :class:`PayloadError` otherwise.

    The body is size-capped first, then its format sniffed from the first non-blank byte
    (``<`` XML, ``{`` JSON), then decoded safely (see :mod:`gateway_faspay_dana._wire`).
    """
    if not isinstance(body, bytes | bytearray):
        raise PayloadError("body must be bytes")
    if len(body) > max_bytes:
        raise PayloadError(f"body is larger than {max_bytes} bytes")
    fmt = sniff_format(body)
    if fmt == "xml":
        return fmt, decode_xml_fields(body)
    if fmt == "json":
        return fmt, decode_json_object(body)
    raise PayloadError("body is neither a JSON object nor an XML document")


@attrs.frozen(kw_only=True)
class NotificationAck:
    """Our reply to a notification; ``response_code "00"`` accepts it.

    The JSON form carries ``merchant``; the XML form, as in the docs' sample, does not.
    """

    trx_id: str = ""
    merchant_id: str = ""
    merchant: str = ""
    bill_no: str = ""
    response_code: str = SUCCESS
    response_desc: str = "Success"
    response_date: str = ""
    response: str = "Payment Notification"

    def to_payload(self) -> dict[str, str]:
        return {
            "response": self.response,
            "trx_id": self.trx_id,
            "merchant_id": self.merchant_id,
            "merchant": self.merchant,
            "bill_no": self.bill_no,
            "response_code": self.response_code,
            "response_desc": self.response_desc,
            "response_date": self.response_date,
        }

    def to_bytes(self, fmt: str = "json") -> bytes:
        """The reply body in ``fmt`` (``"json"`` or ``"xml"``)."""
        payload = self.to_payload()
        if fmt == "xml":
            payload.pop("merchant")
            return encode_xml(payload.items())
        return encode_json(payload)
