"""The JSON bodies the emulator writes about a transaction: Get Status (§5.2), webhooks
(§4.3, §7.5), action answers (§6, §7.4) and Core errors (§1.5, §5.3, §8).

ASSUMPTIONS: ``status_message`` of Get Status is ``"Success, transaction is found"`` for every
state; ``refunds[]`` of a webhook lists every refund so far, the newest one without
``bank_confirmed_at`` in the first of its two webhooks; the Core error ``id`` is a fresh UUID.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from gateway_midtrans_snap.emulator import _model as m

WEBHOOK_MESSAGE = "midtrans payment notification"

#: Core API error texts (§5.3, §6.1, §7.4, §1.2).
ERRORS: dict[str, str] = {
    "400": "Bad request: the request body is not valid JSON",
    "401": "Transaction cannot be authorized with the current client/server key.",
    "404": "Transaction doesn't exist.",
    "406": "Duplicate refund ID",
    "412": "Merchant cannot modify the status of the transaction",
    "414": "Refund request is rejected due to invalid amount",
    "202": "The request with this Idempotency-Key is still being processed",
}

ACTION_MESSAGES = {
    m.CANCEL: "Success, transaction is canceled",
    m.EXPIRE: "Success, transaction has expired",
    "approve": "Success, transaction is approved",
    "deny": "Success, transaction is denied",
}


def wall(moment: datetime | None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in Jakarta time ('' for None)."""
    return "" if moment is None else moment.astimezone(m.JAKARTA).strftime(m.WALL_FORMAT)


def core_error(code: str, message: str | None = None) -> dict[str, Any]:
    """``{"status_code", "status_message", "id"}``."""
    return {
        "status_code": code,
        "status_message": message or ERRORS.get(code, "Error"),
        "id": str(uuid.uuid4()),
    }


def refund_entry(refund: m.Refund, *, confirmed: bool = True) -> dict[str, Any]:
    """One entry of ``refunds[]``."""
    entry: dict[str, Any] = {
        "refund_chargeback_id": refund.refund_chargeback_id,
        "refund_chargeback_uuid": refund.refund_chargeback_uuid,
        "refund_amount": m.rupiah(refund.amount),
        "created_at": wall(refund.created_at),
        "reason": refund.reason,
        "refund_key": refund.refund_key,
        "refund_method": refund.refund_method,
    }
    if confirmed and refund.bank_confirmed_at is not None:
        entry["bank_confirmed_at"] = wall(refund.bank_confirmed_at)
    return entry


def transaction_fields(txn: m.Transaction, *, status: str | None = None) -> dict[str, Any]:
    """The fields shared by webhooks and Get Status, without status_code/signature."""
    shown = status or txn.status
    fields: dict[str, Any] = {
        "transaction_id": txn.transaction_id,
        "order_id": txn.order_id,
        "merchant_id": txn.merchant_id,
        "gross_amount": m.rupiah(txn.gross_amount),
        "currency": "IDR",
        "payment_type": txn.payment_type,
        "transaction_time": wall(txn.transaction_time),
        "transaction_status": shown,
    }
    if txn.fraud_status:
        fields["fraud_status"] = txn.fraud_status
    if txn.expiry_time is not None and txn.payment_type != "credit_card":
        fields["expiry_time"] = wall(txn.expiry_time)
    if txn.settlement_time is not None and shown not in (m.PENDING, m.CAPTURE):
        fields["settlement_time"] = wall(txn.settlement_time)
    for key, value in txn.extras.items():
        fields[key] = value
    if txn.payment_type == "bank_transfer" and "va_numbers" in txn.extras:
        paid = txn.settlement_time is not None and shown != m.PENDING
        fields["payment_amounts"] = (
            [{"paid_at": wall(txn.settlement_time), "amount": m.rupiah(txn.gross_amount)}]
            if paid
            else []
        )
    if txn.payment_type == "credit_card" and txn.status in (m.DENY,):
        fields.pop("approval_code", None)
        fields["channel_response_code"] = "05"
        fields["channel_response_message"] = "Denied"
    fields.update(txn.custom)
    return fields


def status_body(txn: m.Transaction, server_key: str) -> dict[str, Any]:
    """``GET /v2/{id}/status`` (§5.2), signed with its own status_code."""
    code = m.status_code(txn.status, txn.fraud_status)
    body: dict[str, Any] = {
        "status_code": code,
        "status_message": "Success, transaction is found",
        **transaction_fields(txn),
    }
    if txn.refunds:
        body["refund_amount"] = m.rupiah(txn.refunded)
        body["refunds"] = [refund_entry(r) for r in txn.refunds]
    body["signature_key"] = m.signature(txn.order_id, code, body["gross_amount"], server_key)
    return body


def webhook_body(
    txn: m.Transaction,
    server_key: str,
    *,
    status: str | None = None,
    cancel_code: str = "202",
    unconfirmed: str | None = None,
) -> dict[str, Any]:
    """A webhook for ``txn`` (its current status, or a scripted ``status``); ``unconfirmed``
    names a refund key shown without ``bank_confirmed_at`` (the first refund webhook)."""
    shown = status or txn.status
    fraud = txn.fraud_status
    code = m.webhook_code(shown, fraud, cancel_code=cancel_code)
    body: dict[str, Any] = {
        **transaction_fields(txn, status=shown),
        "status_message": WEBHOOK_MESSAGE,
        "status_code": code,
    }
    if txn.refunds and shown in (m.REFUND, m.PARTIAL_REFUND):
        body["refund_amount"] = m.rupiah(txn.refunded)
        body["refunds"] = [
            refund_entry(r, confirmed=r.refund_key != unconfirmed) for r in txn.refunds
        ]
    body["signature_key"] = m.signature(txn.order_id, code, body["gross_amount"], server_key)
    return body


def action_body(txn: m.Transaction, action: str) -> dict[str, Any]:
    """The answer of ``/cancel``, ``/expire``, ``/approve`` or ``/deny`` (§6)."""
    code = "407" if action == m.EXPIRE else "200"
    body: dict[str, Any] = {
        "status_code": code,
        "status_message": ACTION_MESSAGES[action],
        **transaction_fields(txn),
    }
    for key in ("merchant_id", "currency", "expiry_time", "payment_amounts"):
        body.pop(key, None)
    return body


def refund_body(txn: m.Transaction, refund: m.Refund) -> dict[str, Any]:
    """The answer of an accepted refund (§7.4): ``refund_amount`` is this refund's."""
    message = "Success, refund request is approved"
    if refund.direct:
        message += " by the bank"
    return {
        "status_code": "200",
        "status_message": message,
        "transaction_id": txn.transaction_id,
        "order_id": txn.order_id,
        "payment_type": txn.payment_type,
        "transaction_time": wall(txn.transaction_time),
        "transaction_status": txn.status,
        "gross_amount": m.rupiah(txn.gross_amount),
        "refund_chargeback_id": refund.refund_chargeback_id,
        "refund_chargeback_uuid": refund.refund_chargeback_uuid,
        "refund_amount": m.rupiah(refund.amount),
        "refund_key": refund.refund_key,
    }


def bank_rejected_body(txn: m.Transaction, refund_key: str) -> dict[str, Any]:
    """A direct refund the bank rejected (§7.4): ``202``, status unchanged, nothing refunded."""
    return {
        "status_code": "202",
        "status_message": "Refund denied by the bank",
        "transaction_id": txn.transaction_id,
        "order_id": txn.order_id,
        "payment_type": txn.payment_type,
        "transaction_time": wall(txn.transaction_time),
        "transaction_status": txn.status,
        "gross_amount": m.rupiah(txn.gross_amount),
        "refund_amount": "0.00",
        "refund_key": refund_key,
    }


def record(txn: m.Transaction) -> dict[str, Any]:
    """The control plane's view of a transaction."""
    return {
        **transaction_fields(txn),
        "token": txn.token,
        "method": txn.method,
        "status_code": m.status_code(txn.status, txn.fraud_status),
        "refund_amount": m.rupiah(txn.refunded),
        "refunds": [refund_entry(r) for r in txn.refunds],
        "history": [dict(h) for h in txn.history],
        "notification_urls": list(txn.notification_urls),
    }
