"""Builders of correctly signed Midtrans messages, for integrators' tests and an emulator.

::

    from gateway_midtrans_snap.testing import signed_notification, signed_return_query

    body = signed_notification(gateway, order_id="order-1-1S", status=PaymentStatus.PAID,
                               amount=Money("250000", "IDR"))
    gateway.handle_notification(body)

``credentials`` is a :class:`~gateway_midtrans_snap.MidtransConfig`, a
:class:`~gateway_midtrans_snap.MidtransSnapGateway`, or the server key itself. Keyword
``overrides`` replace fields *after* signing (so they can tamper with a signed message); an
override of ``None`` removes the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gateway_core import Money, PaymentStatus
from gateway_midtrans_snap._config import MidtransConfig
from gateway_midtrans_snap._create import RETURN_REF, RETURN_SIG
from gateway_midtrans_snap._gateway import MidtransSnapGateway
from gateway_midtrans_snap._signature import notification_signature, return_signature
from gateway_midtrans_snap._wire import format_amount

__all__ = [
    "STATES",
    "Credentials",
    "server_key_of",
    "signed_body",
    "signed_notification",
    "signed_return_query",
]

Credentials = MidtransConfig | MidtransSnapGateway | str

#: A core status → the (transaction_status, webhook status_code, fraud_status) that reports it.
STATES: Mapping[PaymentStatus, tuple[str, str, str]] = {
    PaymentStatus.PENDING: ("pending", "201", "accept"),
    PaymentStatus.IN_PROCESS: ("capture", "201", "challenge"),
    PaymentStatus.PAID: ("settlement", "200", "accept"),
    PaymentStatus.FAILED: ("deny", "202", "deny"),
    PaymentStatus.CANCELLED: ("cancel", "202", "accept"),
    PaymentStatus.EXPIRED: ("expire", "202", "accept"),
    PaymentStatus.PARTIALLY_REFUNDED: ("partial_refund", "200", "accept"),
    PaymentStatus.REFUNDED: ("refund", "200", "accept"),
    PaymentStatus.REVERSED: ("chargeback", "200", "accept"),
}


def server_key_of(credentials: Credentials) -> str:
    """The server key behind ``credentials``."""
    if isinstance(credentials, MidtransSnapGateway):
        return credentials.config.server_key
    if isinstance(credentials, MidtransConfig):
        return credentials.server_key
    if isinstance(credentials, str):
        return credentials
    raise TypeError("credentials must be a MidtransConfig, a gateway or a server key")


def signed_body(
    credentials: Credentials, fields: Mapping[str, Any], **overrides: Any
) -> dict[str, Any]:
    """``fields`` with its ``signature_key`` (over ``order_id``, ``status_code`` and
    ``gross_amount`` as given), placed last; then ``overrides`` applied."""
    body = {k: v for k, v in fields.items() if k != "signature_key"}
    body["signature_key"] = notification_signature(
        str(body["order_id"]),
        str(body["status_code"]),
        str(body["gross_amount"]),
        server_key_of(credentials),
    )
    for name, value in overrides.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return body


def signed_notification(
    credentials: Credentials,
    *,
    order_id: str,
    status: PaymentStatus | str,
    amount: Money,
    transaction_id: str = "7c1e4b52-2f0a-4d6e-9b83-51a0c9e2d741",
    payment_type: str = "bank_transfer",
    refunds: list[dict[str, Any]] | None = None,
    **overrides: Any,
) -> bytes:
    """A notification body as Midtrans POSTs it (§4.3, §4.7). ``status`` is a core status
    (see :data:`STATES`) or a ``transaction_status``. ``refunds`` are entries of
    ``refunds[]`` (``refund_amount`` etc.); their total becomes ``refund_amount``."""
    if isinstance(status, PaymentStatus):
        state, code, fraud = STATES[status]
    else:
        state, code, fraud = (
            status,
            {
                "pending": "201",
                "deny": "202",
                "cancel": "202",
                "expire": "202",
                "failure": "202",
            }.get(status, "200"),
            "accept",
        )
    fields: dict[str, Any] = {
        "transaction_time": "2025-06-01 10:02:11",
        "transaction_status": state,
        "transaction_id": transaction_id,
        "status_message": "midtrans payment notification",
        "status_code": code,
        "payment_type": payment_type,
        "order_id": order_id,
        "merchant_id": "G123450001",
        "gross_amount": format_amount(amount.to_units(0)),
        "fraud_status": fraud,
        "currency": amount.currency,
    }
    if state in ("settlement", "capture", "refund", "partial_refund", "chargeback"):
        fields["settlement_time"] = "2025-06-01 10:15:40"
    if refunds:
        fields["refunds"] = refunds
        total = sum(int(str(r["refund_amount"]).split(".")[0]) for r in refunds)
        fields["refund_amount"] = format_amount(total)
    return json.dumps(signed_body(credentials, fields, **overrides)).encode()


def signed_return_query(
    credentials: Credentials,
    *,
    order_id: str,
    transaction_status: str = "settlement",
    status_code: str = "200",
    **extra: str,
) -> dict[str, str]:
    """The query of a finish redirect: the plugin's ``snap_ref`` / ``snap_sig`` and the
    parameters Midtrans appends (§3.2)."""
    query = {
        RETURN_REF: order_id,
        RETURN_SIG: return_signature(order_id, server_key_of(credentials)),
        "order_id": order_id,
        "status_code": status_code,
        "transaction_status": transaction_status,
    }
    query.update(extra)
    return query
