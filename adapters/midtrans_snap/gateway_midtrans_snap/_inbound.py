"""Inbound messages: the HTTP notification (protocol reference §4), the customer's return
(§3.2) and the reply Midtrans expects (§4.2).

Parsing never raises anything but :class:`~gateway_core.NotificationRejected`. A notification
is verified (``signature_key``, constant-time) before any other field is read. The signature
binds ``order_id``, ``status_code`` and ``gross_amount`` but not ``transaction_status``: what
it reports is confirmed by Get Status before it is applied (the gateway's trust declaration
says so; the payment service does it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from gateway_core import (
    Acknowledgement,
    BadSignature,
    MalformedNotification,
    Notification,
    PaymentStatus,
    Reason,
    ReturnResult,
)
from gateway_midtrans_snap._codes import (
    PAID_STATUSES,
    PROVIDER,
    REFUND_STATES,
    payment_status,
    provider_status,
)
from gateway_midtrans_snap._config import MidtransConfig
from gateway_midtrans_snap._create import RETURN_REF, RETURN_SIG
from gateway_midtrans_snap._signature import return_signature_matches, signature_matches
from gateway_midtrans_snap._wire import (
    currency_of,
    decode_json_object,
    parse_amount,
    parse_time,
    refund_reports,
    text_field,
)

_CODE: Final = re.compile(r"[0-9]{3}")
_ORDER_ID: Final = re.compile(r"[\x21-\x7e]{1,64}")
_STATE: Final = re.compile(r"[A-Za-z_]{1,32}")
#: Unsigned fields kept on the notification (no personal data: no card, VA or phone).
_KEPT: Final = (
    "transaction_id",
    "transaction_status",
    "fraud_status",
    "payment_type",
    "status_code",
    "transaction_time",
    "settlement_time",
    "currency",
    "merchant_id",
    "refund_amount",
)
#: Rejections worth Midtrans' retries, and the status that gets the most of them (503: four
#: retries, §4.2): the ledger or the confirming inquiry may answer later.
_RETRY_LATER: Final = frozenset(
    {Reason.STATUS_UNCONFIRMED, Reason.LEDGER_UNAVAILABLE, Reason.OUTCOME_UNKNOWN}
)


def _malformed(problem: str, reference: str = "") -> MalformedNotification:
    return MalformedNotification(
        f"Midtrans notification {problem}", provider=PROVIDER, merchant_reference=reference
    )


def parse_notification(config: MidtransConfig, body: object) -> Notification:
    """Verify and parse one notification body."""
    if not isinstance(body, bytes | bytearray):
        raise _malformed("body is not bytes")
    if len(body) > config.max_notification_bytes:
        raise _malformed("is too large")
    data = decode_json_object(body)
    if data is None:
        raise _malformed("is not a JSON object")
    order_id = data.get("order_id")
    code = text_field(data, "status_code")
    gross = data.get("gross_amount")
    if not isinstance(order_id, str) or _ORDER_ID.fullmatch(order_id) is None:
        raise _malformed("has no usable order_id")
    if _CODE.fullmatch(code) is None or not isinstance(gross, str):
        raise _malformed("lacks status_code or gross_amount", order_id)
    if not signature_matches(
        data.get("signature_key"),
        order_id=order_id,
        status_code=code,
        gross_amount=gross,
        server_key=config.server_key,
    ):
        raise BadSignature(
            "Midtrans notification signature_key does not verify",
            provider=PROVIDER,
            merchant_reference=order_id,
        )
    state = data.get("transaction_status")
    fraud = data.get("fraud_status", "") or ""
    if not isinstance(state, str) or _STATE.fullmatch(state) is None:
        raise _malformed("has no usable transaction_status", order_id)
    if not isinstance(fraud, str) or (fraud and _STATE.fullmatch(fraud) is None):
        raise _malformed("has an unusable fraud_status", order_id)
    try:
        amount = parse_amount(gross, currency_of(data))
        refunds = refund_reports(data, order_id)
    except ValueError as exc:
        raise _malformed(f"is unreadable: {exc}", order_id) from None
    status = payment_status(state, fraud)
    named = provider_status(state, fraud)
    transaction_id = text_field(data, "transaction_id")
    return Notification(
        provider=PROVIDER,
        merchant_reference=order_id,
        status=status,
        event_key=event_key(order_id, transaction_id, named, data, len(refunds)),
        # The order id, not the attempt's transaction_id: the order's only stable name.
        provider_reference=order_id,
        provider_status=named,
        merchant_id=text_field(data, "merchant_id") if config.merchant_id else "",
        amount=amount,
        paid_at=parse_time(data.get("settlement_time")) if status in PAID_STATUSES else None,
        payment_reference=transaction_id,
        body_format="json",
        refunds=refunds,
        fields={name: data[name] for name in _KEPT if name in data},
    )


def event_key(
    order_id: str, transaction_id: str, named: str, data: Mapping[str, Any], refund_count: int
) -> str:
    """Stable per (order, attempt, status) and, for refunds, per refund state (how many
    refunds and their total): a re-delivery, and the second webhook Midtrans sends for the same
    refund once the bank confirms it (§7.5), get the same key; a further refund a new one."""
    key = f"{order_id}:{transaction_id or '-'}:{named}"
    if named in REFUND_STATES:
        key += f":r{refund_count}:{text_field(data, 'refund_amount') or '-'}"
    return key


def parse_return(config: MidtransConfig, params: Mapping[str, object]) -> ReturnResult:
    """Verify the customer's return (finish, unfinish or error redirect).

    Midtrans signs nothing here; the plugin's own ``snap_ref`` / ``snap_sig`` (put into the
    ``callbacks`` links at create) name the order. Midtrans' ``order_id`` must agree with
    them; ``transaction_status`` is a hint only (the status is confirmed by inquiry).
    """
    reference = params.get(RETURN_REF)
    if not isinstance(reference, str) or not return_signature_matches(
        params.get(RETURN_SIG), order_id=reference, server_key=config.server_key
    ):
        raise BadSignature(
            "a return without a valid snap_ref/snap_sig (not a link this gateway made)",
            provider=PROVIDER,
        )
    order_id = params.get("order_id")
    if order_id is not None and order_id != reference:
        raise BadSignature(
            "the return's order_id differs from its signed reference",
            provider=PROVIDER,
            merchant_reference=reference,
        )
    state = params.get("transaction_status")
    if isinstance(state, str) and _STATE.fullmatch(state):
        status, named = payment_status(state), state.lower()
    else:
        status, named = PaymentStatus.PENDING, ""
    return ReturnResult(
        provider=PROVIDER,
        merchant_reference=reference,
        status=status,
        provider_reference=reference,
        provider_status=named,
    )


def render_reply(reason: Reason, *, accepted: bool) -> Acknowledgement:
    """Midtrans takes any 2xx as delivered (§4.2): ``200 OK``. A refusal is a non-2xx chosen
    for Midtrans' retry classes: ``503`` (four retries) when a later attempt may succeed,
    ``404`` for an unknown order, ``400`` for a message that will never verify."""
    if accepted:
        return Acknowledgement(200, "text/plain; charset=utf-8", b"OK", accepted=True)
    if reason in _RETRY_LATER:
        status = 503
    elif reason is Reason.UNKNOWN_PAYMENT:
        status = 404
    else:
        status = 400
    body = json.dumps({"status": "rejected", "reason": reason.value or "rejected"}).encode()
    return Acknowledgement(status, "application/json", body, accepted=False)
