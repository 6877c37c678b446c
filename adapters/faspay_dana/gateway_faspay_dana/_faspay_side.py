"""Faspay's side of the two inbound messages, for :mod:`gateway_faspay_dana.testing`.

The plugin only reads notifications and return queries (:mod:`gateway_faspay_dana._messages`);
writing them is Faspay's job, which integrators' tests play through ``testing``. The emulator
has its own message code (``emulator/_messages.py``).
"""

from __future__ import annotations

from typing import Final

from gateway_faspay_dana._messages.notification import PaymentNotification
from gateway_faspay_dana._messages.return_url import ReturnQuery
from gateway_faspay_dana._wire import to_wire_amount

_NOTIFICATION_ORDER: Final = (
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

_RETURN_ORDER: Final = (
    "trx_id",
    "merchant_id",
    "merchant",
    "bill_no",
    "bill_ref",
    "bill_total",
    "payment_reff",
    "payment_date",
    "bank_user_name",
    "status",
    "signature",
)


def notification_payload(message: PaymentNotification) -> dict[str, str]:
    """All fields of ``message`` as strings, in the docs' order; amounts in hundredths."""
    values = {
        "request": message.request,
        "trx_id": message.trx_id,
        "merchant_id": message.merchant_id,
        "merchant": message.merchant,
        "bill_no": message.bill_no,
        "payment_reff": message.payment_reff or "null",
        "payment_date": message.payment_date,
        "payment_status_code": message.payment_status_code,
        "payment_status_desc": message.payment_status_desc,
        "bill_total": to_wire_amount(message.bill_total, field="bill_total"),
        "payment_total": (
            to_wire_amount(message.payment_total, field="payment_total")
            if message.payment_total is not None
            else ""
        ),
        "payment_channel_uid": message.payment_channel_uid,
        "payment_channel": message.payment_channel,
        "signature": message.signature,
    }
    return {key: values[key] for key in _NOTIFICATION_ORDER}


def return_query(query: ReturnQuery) -> dict[str, str]:
    """The query parameters of ``query`` in the D7 example's order (``bill_ref`` spelling);
    empty ones are left out, except ``bill_no`` and ``status``."""
    values = {
        "trx_id": query.trx_id,
        "merchant_id": query.merchant_id,
        "merchant": query.merchant,
        "bill_no": query.bill_no,
        "bill_ref": query.bill_reff,
        "bill_total": to_wire_amount(query.bill_total) if query.bill_total is not None else "",
        "payment_reff": query.payment_reff,
        "payment_date": query.payment_date,
        "bank_user_name": query.bank_user_name,
        "status": query.status,
        "signature": query.signature,
    }
    always = ("bill_no", "status")
    return {key: values[key] for key in _RETURN_ORDER if values[key] or key in always}
