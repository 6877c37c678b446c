"""The Midtrans Snap gateway: the hosted Snap payment page, its notifications, Get Status,
cancel, expire and refunds.

Pure protocol translation: build requests, verify Midtrans' messages, map its statuses to the
core's vocabulary, reply the way Midtrans expects. Network calls go through a
:class:`gateway_core.ProviderClient` (retries, deadline): the Snap create is sent as not
idempotent (the payment service re-sends an ambiguous one with the same order id, see
:attr:`MidtransSnapGateway.idempotent_create`); Get Status, cancel, expire and refund (keyed
by ``refund_key``) as idempotent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final, Self
from urllib.parse import quote

from gateway_core import (
    Acknowledgement,
    Capability,
    Gateway,
    HttpRequest,
    HttpResponse,
    InboundRequest,
    InvalidRequest,
    MalformedNotification,
    Notification,
    Payment,
    PaymentRequest,
    PaymentStatus,
    ProviderClient,
    ProviderEvent,
    ProviderRefused,
    Reason,
    RedirectInstruction,
    RefundReport,
    RefundRequest,
    ReturnResult,
    SignedField,
    StatusReport,
    Transport,
    TrustDeclaration,
    Verdict,
    get_logger,
    register_secret,
)
from gateway_midtrans_snap._actions import end, refund
from gateway_midtrans_snap._codes import (
    CURRENCY,
    CURRENT_PAYMENTS,
    PROVIDER,
    payment_types,
)
from gateway_midtrans_snap._config import MidtransConfig
from gateway_midtrans_snap._create import snap_body
from gateway_midtrans_snap._inbound import parse_notification, parse_return, render_reply
from gateway_midtrans_snap._references import check_reference, make_reference
from gateway_midtrans_snap._signature import basic_authorization
from gateway_midtrans_snap._snap_api import (
    OrderUtilized,
    parse_create,
    usable_url,
)
from gateway_midtrans_snap._status import (
    core_answer,
    refusal,
    status_report,
    succeeded,
)
from gateway_midtrans_snap._wire import encode_json, jakarta_now

log = get_logger("gateway_midtrans_snap")

#: A Snap page that expired without an attempt leaves no trace at Get Status (404, and no
#: webhook, §2.7): after the payment's expiry plus this margin for clock skew it is expired.
EXPIRY_GRACE: Final = timedelta(minutes=5)
#: Idempotency-Key values longer than this are ignored by Midtrans (§1.3).
MAX_IDEMPOTENCY_KEY: Final = 46
_ORDER_ID: Final = re.compile(r"[A-Za-z0-9_.~-]{1,50}")
_NOT_FOUND: Final = "404"


class MidtransSnapGateway(Gateway):
    """Midtrans Snap: a hosted payment page for every payment the merchant activated.

    Build it with :meth:`from_config` (settings mapping + environment) or from a
    :class:`MidtransConfig`. ``transport`` defaults to a :class:`gateway_core.RequestsTransport`
    with the configured timeouts; ``clock`` returns the current aware datetime (tests pin it).
    """

    name: ClassVar[str] = PROVIDER
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    trust: ClassVar[TrustDeclaration] = TrustDeclaration(
        # SHA-512(order_id + status_code + gross_amount + server_key): the order id (which is
        # also the provider reference this plugin reports) and the amount, not the
        # transaction_status (a refund webhook carries the settlement's signature, §7.5), no
        # timestamp or nonce (replayable). Confirm every change by Get Status.
        notification_covers=frozenset(
            {SignedField.MERCHANT_REFERENCE, SignedField.PROVIDER_REFERENCE, SignedField.AMOUNT}
        ),
        notification_replayable=True,
        # The plugin's own snap_ref/snap_sig in the return links: the order, never a status.
        return_covers=frozenset({SignedField.MERCHANT_REFERENCE}),
        return_settles=False,
        notification_settles=False,
    )
    secret_settings: ClassVar[frozenset[str]] = frozenset({"server_key"})
    emulator_entry: ClassVar[str] = "gateway_midtrans_snap.emulator:main"
    sandbox_entry: ClassVar[str] = "gateway_midtrans_snap.sandbox:sandbox"
    #: Snap has no idempotency key for create, but the order id plays its part (§2.10):
    #: re-posting an order id that has no payment attempt yet answers a new token for the
    #: same order (the previous token stops working), and an order id can never be paid
    #: twice. An ambiguous create is therefore re-sent with the same order id by the payment
    #: service; the attempt's key also travels as ``Idempotency-Key`` (honoured by Midtrans'
    #: Core API, harmless where not).
    idempotent_create: ClassVar[bool] = True

    def __init__(
        self,
        config: MidtransConfig,
        *,
        transport: Transport | None = None,
        client: ProviderClient | None = None,
        clock: Callable[[], datetime] = jakarta_now,
    ) -> None:
        self.config = config
        self._clock = clock
        self._authorization = basic_authorization(config.server_key)
        register_secret(
            config.server_key, self._authorization, self._authorization.split(" ", 1)[1]
        )
        if client is None:
            client = ProviderClient.over_http(
                provider=PROVIDER,
                connect_timeout=config.connect_timeout,
                read_timeout=config.read_timeout,
                max_retries=config.max_retries,
                deadline=config.deadline,
                transport=transport,
            )
        self._client = client

    @classmethod
    def from_config(
        cls,
        settings: Mapping[str, Any],
        *,
        environ: Mapping[str, str] | None = None,
        transport: Transport | None = None,
    ) -> Self:
        """Build from settings (see :meth:`MidtransConfig.from_settings`)."""
        return cls(MidtransConfig.from_settings(settings, environ), transport=transport)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(merchant_id={self.config.merchant_id!r}, "
            f"environment={self.config.environment!r})"
        )

    @property
    def merchant_id(self) -> str:
        """The configured Midtrans merchant id (``""`` when not configured)."""
        return self.config.merchant_id

    @property
    def default_currency(self) -> str:
        """``"IDR"``: Snap takes rupiah."""
        return CURRENCY

    @property
    def default_expiry(self) -> timedelta:
        """``expiry_minutes`` (24 hours unless set: Snap's own default, §2.7)."""
        return self.config.expiry

    @property
    def payment_methods(self) -> tuple[str, ...]:
        """The ``enabled_payments`` of the configuration, else every current Snap payment
        name and the groups ``bank_transfer`` and ``cstore``."""
        return self.config.enabled_payments or (*CURRENT_PAYMENTS, "bank_transfer", "cstore")

    def close(self) -> None:
        self._client.close()

    # -- references and checks ---------------------------------------------------------------

    def make_reference(self, order_reference: str, attempt: int) -> str:
        """``<order>-<attempt>S``: a Midtrans order id, at most 50 characters, never ending
        in a digit (see :mod:`gateway_midtrans_snap._references` for why)."""
        return make_reference(order_reference, attempt)

    def check_reference(self, reference: str) -> None:
        """Midtrans' ``order_id`` rules, plus: it must not end in a digit or a dot."""
        check_reference(reference)

    def check_request(self, request: PaymentRequest) -> None:
        """Build (and discard) the Snap body: every rule ``create`` enforces before sending
        (IDR in whole rupiah, the method, the expiry bounds, the return link's length)."""
        check_reference(request.merchant_reference)
        snap_body(request, self.config, self._clock())

    # -- outbound ----------------------------------------------------------------------------

    def create(self, request: PaymentRequest) -> Payment:
        """Create the Snap transaction (``POST /snap/v1/transactions``) and return it as
        pending, with the page's token and URL in ``provider_data`` and the redirect.

        A create refused because the order id already has a payment attempt (§2.10) asks Get
        Status and raises :class:`~gateway_core.ProviderRefused` (``provider_code
        "utilized"``) naming what Midtrans holds. (``create`` accepts any order id Midtrans
        documents; the plugin's stricter rule, :meth:`check_reference`, is applied by the
        payment service to every reference it records.)
        """
        order_id = self._order_id(request)
        body = snap_body(request, self.config, self._clock())
        headers = self._headers()
        key = request.idempotency_key
        if key and len(key) <= MAX_IDEMPOTENCY_KEY:
            headers["Idempotency-Key"] = key
        if self.config.notification_url:
            headers["X-Override-Notification"] = self.config.notification_url
        http = HttpRequest(
            method="POST",
            url=f"{self.config.snap_base}/snap/v1/transactions",
            body=encode_json(body),
            headers=headers,
            operation="create",
            idempotent=False,
        )
        try:
            answer = self._client.call(
                http, lambda r: parse_create(r, order_id=order_id), merchant_reference=order_id
            )
        except OrderUtilized as exc:
            raise self._utilized(request, exc) from None
        log.info("midtrans create order_id=%s: token issued", order_id)
        data = {"token": answer.token, "redirect_url": answer.redirect_url}
        return Payment(
            provider=PROVIDER,
            merchant_reference=order_id,
            status=PaymentStatus.PENDING,
            amount=request.amount,
            provider_reference=order_id,
            redirect=RedirectInstruction(url=answer.redirect_url),
            order_reference=request.order_reference,
            expires_at=request.expires_at,
            provider_status="token",
            provider_data=data,
            method=request.method,
        )

    def _utilized(self, request: PaymentRequest, exc: OrderUtilized) -> ProviderRefused:
        unpaid = Payment(
            provider=PROVIDER,
            merchant_reference=request.merchant_reference,
            status=PaymentStatus.PENDING,
            amount=request.amount,
            provider_reference=request.merchant_reference,
            expires_at=request.expires_at,
        )
        try:
            held = self.inquire(unpaid).provider_status or "unknown"
        except Exception:
            held = "unknown"
        return ProviderRefused(
            f"{exc.message}; Midtrans holds it as {held!r}: a new attempt needs a new order id",
            provider=PROVIDER,
            merchant_reference=request.merchant_reference,
            provider_code="utilized",
        )

    def redirect(self, payment: Payment) -> RedirectInstruction:
        """The Snap page again (a reload, a second press of "pay"), from ``provider_data``,
        with nothing sent. The URL embeds the page token: it is masked in ``repr`` and never
        logged."""
        if isinstance(payment.redirect, RedirectInstruction):
            return payment.redirect
        url = payment.provider_data.get("redirect_url")
        if not usable_url(url):
            raise InvalidRequest(
                "the payment has no Snap redirect_url in provider_data",
                provider=PROVIDER,
                field="provider_data",
                merchant_reference=payment.merchant_reference,
            )
        assert isinstance(url, str)
        return RedirectInstruction(url=url)

    def inquire(self, payment: Payment) -> StatusReport:
        """The order's status (``GET /v2/{order_id}/status``, idempotent), with its refunds.

        Until the customer picks a payment method Midtrans knows no transaction (404): the
        order is ``pending``, or ``expired`` once its expiry has passed (a Snap page expires
        without a webhook, §2.7).
        """
        order_id = self._order_id(payment)
        http = self._core_request("GET", order_id, "status", "inquire")

        def parse(response: HttpResponse) -> StatusReport | None:
            code, body = core_answer(response, operation="inquire", order_id=order_id)
            if code == _NOT_FOUND:
                return None
            if not succeeded(code):
                raise refusal(code, body, operation="inquire", order_id=order_id)
            return status_report(
                body, code=code, payment=payment, config=self.config, now=self._clock()
            )

        report = self._client.call(http, parse, merchant_reference=order_id)
        return report if report is not None else self._no_attempt(payment)

    def cancel(self, payment: Payment, reason: str = "") -> StatusReport:
        """Cancel the unpaid order: ``POST /v2/{order_id}/cancel`` when a payment attempt
        exists (a pending one, or a card capture before settlement), else the Snap session
        itself (``POST /snap/v1/transactions/{token}/cancel``, §2.11). When Midtrans says the
        transaction can no longer be changed (412: settled, expired, already cancelled), Get
        Status answers instead; a payment still unpaid then is a refusal."""
        return end(self, payment, "cancel", session=True)

    def expire(self, payment: Payment) -> StatusReport:
        """Expire the pending payment attempt now (``POST /v2/{order_id}/expire``, answered
        ``407``). Midtrans can only expire an attempt: an order whose page was never used is
        refused (cancel it instead). Not part of the core's interface: call it on the
        gateway."""
        return end(self, payment, "expire", session=False)

    def refund(self, payment: Payment, request: RefundRequest) -> RefundReport:
        """Refund ``request.amount`` (``POST /v2/{order_id}/refund`` with ``refund_key`` =
        ``request.key``; idempotent: re-sent after a lost answer).

        412 (not refundable: unsettled, or a payment type without API refunds) and 414
        (invalid amount, merchant balance) raise :class:`~gateway_core.ProviderRefused` with
        Midtrans' reason. 406 ("Duplicate refund ID") asks Get Status and answers the refund
        stored under the key, else :class:`~gateway_core.OutcomeUnknown`; so does an answer
        lost for good.
        """
        return refund(self, payment, request)

    # -- inbound -----------------------------------------------------------------------------

    def parse_notification(self, request: InboundRequest) -> Notification | ProviderEvent:
        """Verify and parse a notification; see
        :func:`gateway_midtrans_snap._inbound.parse_notification`."""
        try:
            return parse_notification(self.config, request.body)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            # parse_notification rejects on its own; this keeps the contract for any input.
            raise MalformedNotification(
                "Midtrans notification is unreadable", provider=PROVIDER
            ) from None

    def parse_return(self, request: InboundRequest) -> ReturnResult:
        """Verify the customer's return (finish, unfinish or error redirect, by GET)."""
        return parse_return(self.config, request.params)

    def reply(
        self,
        verdict: Verdict,
        message: Notification | ProviderEvent | None,
        reason: Reason,
        request: InboundRequest | None,
        *,
        accepted: bool,
    ) -> Acknowledgement:
        """``200 OK`` when accepted; else a non-2xx so Midtrans retries (§4.2)."""
        return render_reply(reason, accepted=accepted)

    def notification_mismatch(self, payment: Payment, notification: Notification) -> str:
        """``"method_mismatch"`` when the notification's ``payment_type`` cannot come from the
        attempt's method (a ``bca_va`` attempt paid by card)."""
        if not payment.method:
            return ""
        paid_by = notification.fields.get("payment_type")
        allowed = payment_types(payment.method)
        if isinstance(paid_by, str) and paid_by and allowed and paid_by not in allowed:
            return Reason.METHOD_MISMATCH.value
        return ""

    # -- helpers -----------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "Authorization": self._authorization,
        }

    def _core_request(
        self, method: str, order_id: str, action: str, operation: str, body: bytes = b""
    ) -> HttpRequest:
        return HttpRequest(
            method=method,
            url=f"{self.config.api_base}/v2/{quote(order_id, safe='')}/{action}",
            body=body,
            headers=self._headers(),
            operation=operation,
            idempotent=True,
        )

    def _order_id(self, payment: Payment | PaymentRequest) -> str:
        order_id = payment.merchant_reference
        if not isinstance(order_id, str) or _ORDER_ID.fullmatch(order_id) is None:
            raise InvalidRequest(
                "the payment has no usable Midtrans order_id (merchant_reference)",
                provider=PROVIDER,
                field="merchant_reference",
            )
        return order_id

    def _no_attempt(self, payment: Payment) -> StatusReport:
        expires_at = payment.expires_at
        if expires_at is not None and self._clock() >= expires_at + EXPIRY_GRACE:
            return self._report(payment.merchant_reference, PaymentStatus.EXPIRED, "snap_expired")
        return self._report(payment.merchant_reference, PaymentStatus.PENDING, "no_attempt")

    @staticmethod
    def _report(order_id: str, status: PaymentStatus, named: str) -> StatusReport:
        return StatusReport(
            provider=PROVIDER,
            merchant_reference=order_id,
            provider_reference=order_id,
            status=status,
            provider_status=named,
        )
