"""The Core API actions on a Midtrans order: cancel and expire (§6, §2.11) and refund (§7),
for :class:`~gateway_midtrans_snap.MidtransSnapGateway` (which delegates here)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from gateway_core import (
    HttpRequest,
    HttpResponse,
    InvalidRequest,
    NeverSent,
    OutcomeUnknown,
    Payment,
    PaymentStatus,
    ProviderRefused,
    RefundReport,
    RefundRequest,
    StatusReport,
    TLSVerificationError,
    TransportError,
    get_logger,
)
from gateway_midtrans_snap._codes import PROVIDER
from gateway_midtrans_snap._create import rupiah
from gateway_midtrans_snap._snap_api import CANCELLED, IN_PROGRESS, TOKEN, parse_session_cancel
from gateway_midtrans_snap._status import (
    core_answer,
    refund_answer,
    refusal,
    status_report,
    succeeded,
)
from gateway_midtrans_snap._wire import encode_json

if TYPE_CHECKING:
    from gateway_midtrans_snap._gateway import MidtransSnapGateway

log = get_logger("gateway_midtrans_snap")

_REFUND_KEY: Final = re.compile(r"[A-Za-z0-9_-]{1,100}")
_DUPLICATE_REFUND: Final = "406"
_NOT_MODIFIABLE: Final = "412"
_NOT_FOUND: Final = "404"
_UNPAID: Final = frozenset({PaymentStatus.PENDING, PaymentStatus.IN_PROCESS})


def end(gw: MidtransSnapGateway, payment: Payment, action: str, *, session: bool) -> StatusReport:
    """``POST /v2/{order_id}/<action>`` (``cancel`` or ``expire``, idempotent). 404 (no
    attempt): the Snap session is cancelled when ``session``, else a refusal. 412 (the
    transaction can no longer change): Get Status answers, a still unpaid one is a refusal."""
    order_id = gw._order_id(payment)
    http = gw._core_request("POST", order_id, action, action, body=b"{}")

    def parse(response: HttpResponse) -> StatusReport | str:
        code, body = core_answer(response, operation=action, order_id=order_id)
        if code in (_NOT_FOUND, _NOT_MODIFIABLE):
            return code
        if not succeeded(code):
            raise refusal(code, body, operation=action, order_id=order_id)
        return status_report(body, code=code, payment=payment, config=gw.config, now=gw._clock())

    answer = gw._client.call(http, parse, merchant_reference=order_id)
    if isinstance(answer, StatusReport):
        log.info("midtrans %s order_id=%s: %s", action, order_id, answer.provider_status)
        return answer
    if answer == _NOT_FOUND and session:
        return cancel_session(gw, payment)
    if answer == _NOT_FOUND:
        raise ProviderRefused(
            f"Midtrans has no payment attempt to {action} for this order "
            "(the Snap page was not used); cancel the payment instead",
            provider=PROVIDER,
            merchant_reference=order_id,
            provider_code=_NOT_FOUND,
        )
    report = gw.inquire(payment)
    if report.status in _UNPAID:
        raise ProviderRefused(
            f"Midtrans refused {action}: the transaction cannot be modified "
            f"(it is {report.provider_status})",
            provider=PROVIDER,
            merchant_reference=order_id,
            provider_code=_NOT_MODIFIABLE,
        )
    return report


def cancel_session(gw: MidtransSnapGateway, payment: Payment) -> StatusReport:
    """Cancel the Snap session of an order without a payment attempt (§2.11). "Transaction
    is on progress" (the customer started paying meanwhile) cancels the attempt by order id
    instead; "token not found" (a superseded or expired page) is expired when the payment's
    expiry has passed, else a refusal."""
    order_id = payment.merchant_reference
    token = payment.provider_data.get("token")
    if not isinstance(token, str) or TOKEN.fullmatch(token) is None:
        raise ProviderRefused(
            "Midtrans has no payment attempt for this order and the Snap token is unknown",
            provider=PROVIDER,
            merchant_reference=order_id,
            provider_code=_NOT_FOUND,
        )
    http = HttpRequest(
        method="POST",
        url=f"{gw.config.snap_base}/snap/v1/transactions/{token}/cancel",
        body=b"{}",
        headers=gw._headers(),
        operation="cancel",
        idempotent=True,
    )
    outcome = gw._client.call(
        http, lambda r: parse_session_cancel(r, order_id=order_id), merchant_reference=order_id
    )
    if outcome == CANCELLED:
        log.info("midtrans cancel order_id=%s: Snap session cancelled", order_id)
        return gw._report(order_id, PaymentStatus.CANCELLED, "snap_cancel")
    if outcome == IN_PROGRESS:
        # The customer started paying meanwhile: the attempt can be cancelled by order id.
        return end(gw, payment, "cancel", session=False)
    no_attempt = gw._no_attempt(payment)
    if no_attempt.status is PaymentStatus.EXPIRED:
        return no_attempt
    raise ProviderRefused(
        f"Midtrans could not cancel the Snap session ({outcome})",
        provider=PROVIDER,
        merchant_reference=order_id,
        provider_code=outcome,
    )


def refund(gw: MidtransSnapGateway, payment: Payment, request: RefundRequest) -> RefundReport:
    """Refund ``request.amount`` (``POST /v2/{order_id}/refund`` with ``refund_key`` =
    ``request.key``; idempotent: re-sent after a lost answer).

    412 (not refundable: unsettled, or a payment type without API refunds) and 414
    (invalid amount, merchant balance) raise :class:`~gateway_core.ProviderRefused` with
    Midtrans' reason. 406 ("Duplicate refund ID") asks Get Status and answers the refund
    stored under the key, else :class:`~gateway_core.OutcomeUnknown`; so does an answer
    lost for good.
    """
    order_id = gw._order_id(payment)
    if not isinstance(request.key, str) or _REFUND_KEY.fullmatch(request.key) is None:
        raise InvalidRequest(
            "a Midtrans refund_key must be 1-100 letters, digits, - or _",
            provider=PROVIDER,
            field="key",
            merchant_reference=order_id,
        )
    try:
        units = rupiah(request.amount)
    except ValueError:
        raise InvalidRequest(
            "Midtrans refunds a whole number of rupiah (IDR, no cents)",
            provider=PROVIDER,
            field="amount",
            merchant_reference=order_id,
        ) from None
    payload: dict[str, Any] = {"refund_key": request.key, "amount": units}
    if request.reason:
        payload["reason"] = request.reason[:255]
    http = gw._core_request("POST", order_id, "refund", "refund", body=encode_json(payload))

    def parse(response: HttpResponse) -> RefundReport | None:
        code, body = core_answer(response, operation="refund", order_id=order_id)
        if code == _DUPLICATE_REFUND:
            return None
        if not succeeded(code):
            raise refusal(code, body, operation="refund", order_id=order_id)
        return refund_answer(code, body, request=request, order_id=order_id)

    try:
        report = gw._client.call(http, parse, merchant_reference=order_id)
    except TransportError as exc:
        if isinstance(exc, NeverSent | TLSVerificationError | OutcomeUnknown):
            raise
        raise OutcomeUnknown(
            f"refund {request.key}: the answer was lost ({type(exc).__name__}); "
            "settled by Get Status",
            provider=PROVIDER,
            merchant_reference=order_id,
        ) from exc
    if report is not None:
        log.info(
            "midtrans refund order_id=%s key=%s: %s", order_id, request.key, report.status.value
        )
        return report
    return stored_refund(gw, payment, request)


def stored_refund(
    gw: MidtransSnapGateway, payment: Payment, request: RefundRequest
) -> RefundReport:
    """After a 406: the refund Get Status lists under ``request.key``."""
    order_id = payment.merchant_reference
    for refund in gw.inquire(payment).refunds:
        if refund.key == request.key:
            return refund
    raise OutcomeUnknown(
        f"Midtrans says refund_key {request.key} was used, but Get Status lists no refund under it",
        provider=PROVIDER,
        merchant_reference=order_id,
    )
