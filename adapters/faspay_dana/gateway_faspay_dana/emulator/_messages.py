"""Messages Faspay sends to the merchant: notifications (§10) and the return URL query (§12).

These builders are public so tests can forge exactly what the emulator would send.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeET

from gateway_faspay_dana._signature import sign
from gateway_faspay_dana.emulator._channels import channel_name
from gateway_faspay_dana.emulator._clock import FASPAY_DATETIME, JAKARTA
from gateway_faspay_dana.emulator._codes import DANA, status_desc
from gateway_faspay_dana.emulator._model import Merchant

#: Field order of the notification (D6 samples).
NOTIFICATION_FIELDS = (
    "request",
    "trx_id",
    "merchant_id",
    "merchant",
    "bill_no",
    "payment_reff",
    "payment_date",
    "payment_status_code",
    "payment_status_desc",
    "bill_total",
    "payment_total",
    "payment_channel_uid",
    "payment_channel",
    "signature",
)

#: Field order of the return URL query: the D7 example's order, with the D7 table's
#: ``bill_reff``, ``payment_reff`` and ``payment_date`` added (channels reference §10).
RETURN_FIELDS = (
    "trx_id",
    "merchant_id",
    "merchant",
    "bill_no",
    "bill_ref",
    "bill_reff",
    "bill_total",
    "payment_reff",
    "payment_date",
    "bank_user_name",
    "status",
    "signature",
)

#: The fields of the D7 example URL alone (``full=False``).
RETURN_EXAMPLE_FIELDS = (
    "trx_id",
    "merchant_id",
    "merchant",
    "bill_no",
    "bill_ref",
    "bill_total",
    "bank_user_name",
    "status",
    "signature",
)


def notification_fields(
    merchant: Merchant,
    /,
    *,
    trx_id: str,
    bill_no: str,
    status: str,
    bill_total: str,
    payment_total: str | None = None,
    payment_reff: str = "null",
    payment_date: str = "",
    channel: str = DANA,
    legacy_signature: bool = False,
    language: str = "en",
    **overrides: str,
) -> dict[str, str]:
    """The notification as an ordered mapping of strings, signed as documented.

    ``signature = sign(user_id, password, bill_no, payment_status_code)``; with
    ``legacy_signature`` the status is left out, like the D6 XML sample (§14 #3).
    ``overrides`` replace any field after signing (to forge tampered messages).
    """
    parts = [merchant.user_id, merchant.password, bill_no]
    if not legacy_signature:
        parts.append(status)
    fields = {
        "request": "Payment Notification",
        "trx_id": trx_id,
        "merchant_id": merchant.merchant_id,
        "merchant": merchant.merchant_name,
        "bill_no": bill_no,
        "payment_reff": payment_reff,
        "payment_date": payment_date,
        "payment_status_code": status,
        "payment_status_desc": status_desc(status, language),
        "bill_total": bill_total,
        "payment_total": bill_total if payment_total is None else payment_total,
        "payment_channel_uid": channel,
        "payment_channel": channel_name(channel),
        "signature": sign(*parts),
    }
    fields.update(overrides)
    return fields


def render(fields: Mapping[str, str], fmt: str) -> tuple[bytes, str]:
    """Serialise ``fields`` as the body and Content-Type of a notification."""
    if fmt == "xml":
        inner = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in fields.items())
        text = f'<?xml version="1.0" encoding="utf-8"?>\n<faspay>{inner}</faspay>'
        return text.encode("utf-8"), "text/xml; charset=utf-8"
    return json.dumps(dict(fields)).encode("utf-8"), "application/json"


def notification_body(merchant: Merchant, /, fmt: str | None = None, **kwargs: Any) -> bytes:
    """A signed notification body (``fmt`` defaults to the merchant's format).

    Keyword arguments are those of :func:`notification_fields`.
    """
    body, _ = render(notification_fields(merchant, **kwargs), fmt or merchant.notification_format)
    return body


def return_query(
    merchant: Merchant,
    /,
    *,
    trx_id: str,
    bill_no: str,
    status: str,
    bill_total: str,
    bill_ref: str = "",
    bank_user_name: str = "",
    payment_reff: str = "",
    payment_date: str = "",
    full: bool = True,
    **overrides: str,
) -> dict[str, str]:
    """The return URL query parameters (:data:`RETURN_FIELDS`; with ``full=False`` only the
    D7 example's :data:`RETURN_EXAMPLE_FIELDS`).

    Every field of the D7 table is sent: ``bill_ref`` (the example's name) and ``bill_reff``
    (the table's) with the same value, ``payment_reff`` and ``payment_date`` (empty until
    paid; ASSUMPTION, channels reference §10). ``request`` and ``trx_uid`` are not sent.
    ``signature = sign(user_id, password, bill_no, status)``.
    """
    values = {
        "trx_id": trx_id,
        "merchant_id": merchant.merchant_id,
        "merchant": merchant.merchant_name,
        "bill_no": bill_no,
        "bill_ref": bill_ref,
        "bill_reff": bill_ref,
        "bill_total": bill_total,
        "payment_reff": payment_reff,
        "payment_date": payment_date,
        "bank_user_name": bank_user_name,
        "status": status,
        "signature": sign(merchant.user_id, merchant.password, bill_no, status),
    }
    keys = RETURN_FIELDS if full else RETURN_EXAMPLE_FIELDS
    query = {key: values[key] for key in keys}
    query.update(overrides)
    return query


def return_url(base: str, query: Mapping[str, str]) -> str:
    """``base`` with ``query`` appended (``&`` when ``base`` already has a query)."""
    joiner = "&" if "?" in base else "?"
    return base + joiner + urlencode(list(query.items()))


def parse_acknowledgement(body: bytes) -> dict[str, str]:
    """Read the merchant's reply (JSON or XML, sniffed from the first non-blank byte).

    Returns the top-level scalar fields as strings; ``{}`` when unreadable.
    """
    text = body.lstrip()
    try:
        if text.startswith(b"{"):
            value = json.loads(text.decode("utf-8"))
            if isinstance(value, dict):
                return {str(k): str(v) for k, v in value.items() if not isinstance(v, dict)}
            return {}
        if text.startswith(b"<"):
            root = SafeET.fromstring(text)
            return {child.tag: (child.text or "").strip() for child in root}
    except Exception:  # any unreadable reply is simply "not acknowledged"
        return {}
    return {}


def example_post_data(
    merchant: Merchant,
    /,
    bill_no: str,
    *,
    now: datetime | None = None,
    expires_in: timedelta = timedelta(hours=1),
    **overrides: Any,
) -> dict[str, Any]:
    """A valid, signed Post Data Transaction for DANA shaped like the D9 example (Rp 2.000,00).

    ``overrides`` replace fields after signing (``None`` removes the field), so tests can
    break exactly one rule. Dates are Asia/Jakarta wall time from ``now`` (default: real now).
    """
    start = (now or datetime.now(JAKARTA)).astimezone(JAKARTA)
    body: dict[str, Any] = {
        "request": "Post Data Transaction",
        "merchant_id": merchant.merchant_id,
        "merchant": merchant.merchant_name,
        "bill_no": bill_no,
        "bill_reff": bill_no,
        "bill_date": start.strftime(FASPAY_DATETIME),
        "bill_expired": (start + expires_in).strftime(FASPAY_DATETIME),
        "bill_desc": "Payment Online Via Faspay",
        "bill_currency": "IDR",
        "bill_gross": "100000",
        "bill_miscfee": "100000",
        "bill_total": "200000",
        "cust_no": "01",
        "cust_name": "John Doe",
        "payment_channel": DANA,
        "pay_type": "01",
        "msisdn": "8562927907",
        "email": "john@example.com",
        "terminal": "10",
        "item": {
            "id": "A001",
            "product": "Invoice #" + bill_no,
            "qty": "1",
            "amount": "100000",
            "payment_plan": "01",
            "merchant_id": merchant.merchant_id,
            "tenor": "00",
        },
        "reserve1": "",
        "reserve2": "",
        "signature": sign(merchant.user_id, merchant.password, bill_no),
    }
    for key, value in overrides.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body
