"""Midtrans Core API answers (Get Status, Cancel, Expire, Refund; protocol reference §5–§7)
turned into the core's :class:`~gateway_core.StatusReport` and
:class:`~gateway_core.RefundReport`.

Core API bodies carry ``status_code`` as a string; like the official clients, success is
decided from it (below 400, or ``407``: an expired transaction), never from the HTTP status
nor from ``status_message`` (§1.5).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from gateway_core import (
    HttpResponse,
    MalformedResponse,
    Payment,
    PaymentStatus,
    ProviderConfigurationError,
    ProviderError,
    ProviderRefused,
    ProviderTemporaryError,
    RefundReport,
    RefundRequest,
    RefundStatus,
    StatusReport,
)
from gateway_midtrans_snap._codes import (
    PAID_STATUSES,
    PROVIDER,
    payment_status,
    provider_status,
)
from gateway_midtrans_snap._config import MidtransConfig
from gateway_midtrans_snap._signature import signature_matches
from gateway_midtrans_snap._wire import (
    currency_of,
    decode_json_object,
    parse_amount,
    parse_time,
    printable,
    refund_reports,
    text_field,
)

_CODE: Final = re.compile(r"[0-9]{3}")
#: Codes that say the provider is broken or busy for now: retried when the call is idempotent.
_TEMPORARY: Final = frozenset({"429", "500", "502", "503", "504"})
_CREDENTIALS: Final = frozenset({"401", "403"})


def core_answer(
    response: HttpResponse, *, operation: str, order_id: str
) -> tuple[str, dict[str, Any]]:
    """The answer's ``status_code`` (from the body, else the HTTP status) and its body."""
    body = decode_json_object(response.body)
    if body is None:
        if str(response.status_code) in _CREDENTIALS:
            raise _credentials(operation, order_id)
        raise MalformedResponse(
            f"Midtrans' answer to {operation} is not a JSON object (HTTP {response.status_code})",
            provider=PROVIDER,
            merchant_reference=order_id,
        )
    code = text_field(body, "status_code") or str(response.status_code)
    if _CODE.fullmatch(code) is None:
        raise MalformedResponse(
            f"Midtrans' answer to {operation} has no readable status_code",
            provider=PROVIDER,
            merchant_reference=order_id,
        )
    return code, body


def succeeded(code: str) -> bool:
    """True for a success ``status_code``: below 400, or ``407`` (expired, not an error)."""
    return int(code) < 400 or code == "407"


def _credentials(operation: str, order_id: str) -> ProviderConfigurationError:
    return ProviderConfigurationError(
        f"Midtrans refused {operation}: unauthorized (server key, or a key of the other "
        "environment?)",
        provider=PROVIDER,
        merchant_reference=order_id,
        provider_code="401",
    )


def refusal(code: str, body: Mapping[str, Any], *, operation: str, order_id: str) -> ProviderError:
    """The error for a refusal ``code``: credentials, temporary (retryable), or a refusal."""
    if code in _CREDENTIALS:
        return _credentials(operation, order_id)
    message = f"Midtrans refused {operation} ({code}): {printable(body.get('status_message'))}"
    kind: type[ProviderError] = ProviderTemporaryError if code in _TEMPORARY else ProviderRefused
    return kind(message, provider=PROVIDER, merchant_reference=order_id, provider_code=code)


def order_status(
    status: PaymentStatus,
    state: str,
    body: Mapping[str, Any],
    expires_at: datetime | None,
    now: datetime,
) -> PaymentStatus:
    """The Snap order's status from its latest attempt's.

    A ``deny`` ends one attempt, not the order: while the page is open the customer may try
    another method (§4.9), so it is ``pending`` until the payment's expiry, ``failed`` after.
    A ``deny`` after a settlement (a reversal: Permata VA, Mandiri Bill, Indomaret, L3) is
    ``reversed``.
    """
    if state != "deny":
        return status
    if body.get("settlement_time"):
        return PaymentStatus.REVERSED
    if expires_at is None or now < expires_at:
        return PaymentStatus.PENDING
    return PaymentStatus.FAILED


def status_report(
    body: Mapping[str, Any],
    *,
    code: str,
    payment: Payment,
    config: MidtransConfig,
    now: datetime,
) -> StatusReport:
    """A Get Status (or Cancel / Expire) answer as a :class:`~gateway_core.StatusReport`.

    The answer must name the payment's ``order_id``; its ``signature_key``, when present (Get
    Status carries one), must verify with the answer's own ``status_code``. The order id is
    the report's ``provider_reference`` (a Snap order may see several attempts, each with its
    own ``transaction_id``, which is the ``payment_reference``).
    """
    order_id = payment.merchant_reference

    def malformed(problem: str) -> MalformedResponse:
        return MalformedResponse(
            f"Midtrans' status answer {problem}", provider=PROVIDER, merchant_reference=order_id
        )

    if text_field(body, "order_id") not in ("", order_id):
        raise malformed("names another order_id")
    state = text_field(body, "transaction_status").strip().lower()
    if not state:
        raise malformed("has no transaction_status")
    fraud = text_field(body, "fraud_status")
    gross = body.get("gross_amount")
    signature = body.get("signature_key")
    if signature is not None and not (
        isinstance(gross, str)
        and signature_matches(
            signature,
            order_id=order_id,
            status_code=code,
            gross_amount=gross,
            server_key=config.server_key,
        )
    ):
        raise malformed("carries a signature_key that does not verify")
    status = order_status(payment_status(state, fraud), state, body, payment.expires_at, now)
    try:
        amount = parse_amount(gross, currency_of(body)) if status in PAID_STATUSES else None
        refunds = refund_reports(body, order_id)
    except ValueError as exc:
        raise malformed(f"is unreadable: {exc}") from None
    paid_at = None
    if status in PAID_STATUSES:
        paid_at = parse_time(body.get("settlement_time")) or parse_time(
            body.get("transaction_time")
        )
    return StatusReport(
        provider=PROVIDER,
        merchant_reference=order_id,
        provider_reference=order_id,
        status=status,
        provider_status=provider_status(state, fraud),
        paid_at=paid_at,
        payment_reference=text_field(body, "transaction_id"),
        amount=amount,
        description=printable(body.get("status_message")),
        merchant_id=text_field(body, "merchant_id") if config.merchant_id else "",
        refunds=refunds,
    )


def refund_answer(
    code: str, body: Mapping[str, Any], *, request: RefundRequest, order_id: str
) -> RefundReport:
    """A successful refund answer (§7.4): ``200`` accepted (this refund's amount in
    ``refund_amount``), ``202`` refused by the bank (a direct refund; nothing refunded)."""
    echoed = text_field(body, "refund_key")
    if echoed and echoed != request.key:
        raise MalformedResponse(
            "Midtrans answered the refund for another refund_key",
            provider=PROVIDER,
            merchant_reference=order_id,
        )
    failed = code == "202"
    amount = request.amount
    if not failed and body.get("refund_amount") is not None:
        try:
            amount = parse_amount(body.get("refund_amount"), request.amount.currency)
        except ValueError:
            raise MalformedResponse(
                "Midtrans' refund answer has an unreadable refund_amount",
                provider=PROVIDER,
                merchant_reference=order_id,
            ) from None
    return RefundReport(
        provider=PROVIDER,
        merchant_reference=order_id,
        key=request.key,
        status=RefundStatus.FAILED if failed else RefundStatus.SUCCEEDED,
        amount=amount,
        provider_reference=text_field(body, "refund_chargeback_id"),
        provider_status=text_field(body, "transaction_status").lower() or code,
        description=printable(body.get("status_message")),
    )
