"""The Faspay Debit API gateway: DANA (channel 819) and the other channels of the same API
(virtual accounts, retail, QRIS, e-wallets; :mod:`gateway_faspay_dana._channels`).

Pure protocol translation: build and sign requests, parse and verify Faspay's messages, map
codes to the core's vocabulary, build the acknowledgement Faspay expects. Network calls go
through a :class:`gateway_core.ProviderClient` (retries, deadline); ``create`` is sent as not
idempotent (Faspay has no idempotency key), inquiry, channel inquiry and cancel as idempotent.

Inbound messages (notification, return) are parsed and replied to by
:mod:`gateway_faspay_dana._inbound`: parsing never raises anything but
:class:`~gateway_core.NotificationRejected`, and the reply follows the body's own format.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any, ClassVar, Final, Protocol, Self, TypeVar
from urllib.parse import urlencode

from gateway_core import (
    Acknowledgement,
    Capability,
    Gateway,
    HttpRequest,
    HttpResponse,
    InboundRequest,
    MalformedResponse,
    Notification,
    Payment,
    PaymentInstructions,
    PaymentRequest,
    PaymentStatus,
    ProviderConfigurationError,
    ProviderEvent,
    ProviderRefused,
    Reason,
    RedirectInstruction,
    ReturnResult,
    SignedField,
    StatusReport,
    Transport,
    TrustDeclaration,
    Verdict,
    get_logger,
    register_secret,
)
from gateway_faspay_dana._channels import Channel, Family, by_code
from gateway_faspay_dana._codes import (
    SUCCESS,
    provider_error,
)
from gateway_faspay_dana._config import OVO_PUSH, FaspayConfig
from gateway_faspay_dana._errors import PROVIDER, InvalidRequest, PayloadError
from gateway_faspay_dana._inbound import parse_notification, parse_return, render_reply
from gateway_faspay_dana._instructions import (
    channel_of,
    instructions,
    instructions_for,
    provider_data,
    usable_url,
)
from gateway_faspay_dana._messages.cancel import CancelRequest, CancelResponse
from gateway_faspay_dana._messages.channels import (
    ChannelInquiryRequest,
    ChannelInquiryResponse,
    PaymentChannel,
)
from gateway_faspay_dana._messages.common import INBOUND_BILL_NO, TRX_ID
from gateway_faspay_dana._messages.create import PostDataRequest, PostDataResponse, channel_for
from gateway_faspay_dana._messages.inquiry import InquiryRequest, InquiryResponse
from gateway_faspay_dana._messages.ovo import OvoPushResponse
from gateway_faspay_dana._ovo_push import push_ovo
from gateway_faspay_dana._references import check_reference, make_reference
from gateway_faspay_dana._signature import bill_signature, channel_inquiry_signature
from gateway_faspay_dana._wire import (
    CURRENCY,
    decode_json_object,
    encode_json,
    jakarta_now,
)

T = TypeVar("T")

log = get_logger("gateway_faspay_dana")

PATH_CHANNEL_INQUIRY: Final = "/cvr/100001/10"
PATH_POST_DATA: Final = "/cvr/300011/10"
PATH_INQUIRY: Final = "/cvr/100004/10"
PATH_CANCEL: Final = "/cvr/100005/10"
PATH_REDIRECT: Final = "/pws/100003"

_JSON_HEADERS: Final = {"Content-Type": "application/json", "Accept": "application/json"}
_REASON: Final = re.compile(r"[^\x20-\x7e]+")


class _Caller(Protocol):
    """What the gateway needs from :class:`gateway_core.ProviderClient`."""

    def call(
        self,
        request: HttpRequest,
        parse: Callable[[HttpResponse], T],
        *,
        merchant_reference: str = "",
    ) -> T: ...

    def close(self) -> None: ...


class FaspayDanaGateway(Gateway):
    """Faspay Debit API: DANA (``819``) and the configured ``channels`` (payment methods).

    Build it with :meth:`from_config` (settings mapping + environment) or directly from a
    :class:`FaspayConfig`. ``transport`` defaults to a :class:`gateway_core.RequestsTransport`
    with the configured timeouts; ``client`` (a :class:`gateway_core.ProviderClient`) defaults
    to one over ``transport`` with the configured retries and deadline. ``clock`` returns the
    current aware datetime (tests pin it).
    """

    name: ClassVar[str] = PROVIDER
    # Faspay's Debit API cannot refund (a refund is arranged with Faspay).
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability) - {Capability.REFUND}
    trust: ClassVar[TrustDeclaration] = TrustDeclaration(
        notification_covers=frozenset({SignedField.MERCHANT_REFERENCE, SignedField.STATUS}),
        notification_replayable=True,
        return_covers=frozenset({SignedField.MERCHANT_REFERENCE, SignedField.STATUS}),
        return_settles=False,
        # sha1(md5(user_id + password + bill_no + status)): the same value for every delivery
        # of that status, unkeyed per message, and equal to signatures the customer's browser
        # sees (the return URL; the redirect URL of a bill named bill_no + status). It names a
        # bill and a status, it does not prove the payment: confirm by inquiry.
        notification_settles=False,
    )
    secret_settings: ClassVar[frozenset[str]] = frozenset({"password"})
    emulator_entry: ClassVar[str] = "gateway_faspay_dana.emulator:main"
    sandbox_entry: ClassVar[str] = "gateway_faspay_dana.sandbox:sandbox"

    def __init__(
        self,
        config: FaspayConfig,
        *,
        transport: Transport | None = None,
        client: _Caller | None = None,
        clock: Callable[[], datetime] = jakarta_now,
    ) -> None:
        self.config = config
        self._clock = clock
        # The password, and the one signature that is constant for the merchant. Per-bill
        # signatures are not registered one by one (the set would grow with every bill and
        # slow every log line): the redacting filter already scrubs anything shaped like a
        # hex signature, and this module logs none.
        register_secret(config.password, channel_inquiry_signature(config.user_id, config.password))
        if client is None:
            from gateway_core import ProviderClient

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
        """Build from settings (see :meth:`FaspayConfig.from_settings`)."""
        return cls(FaspayConfig.from_settings(settings, environ), transport=transport)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(merchant_id={self.config.merchant_id!r}, "
            f"environment={self.config.environment!r})"
        )

    @property
    def merchant_id(self) -> str:
        return self.config.merchant_id

    def close(self) -> None:
        self._client.close()

    # -- outbound ----------------------------------------------------------------------------

    def create(self, request: PaymentRequest) -> Payment:
        """Post the bill (``/cvr/300011/10``, not idempotent) on the channel of
        ``request.method`` and return it as pending, with Faspay's ``trx_id`` and what the
        customer is shown: the redirect (DANA and the other redirect wallets, OVO through
        Faspay's page), or :class:`~gateway_core.PaymentInstructions` (a VA number, a retail
        payment code, a QR, an OVO push). With ``ovo_flow = "push"`` an OVO bill is pushed
        to the customer's OVO app right away (``/pws/ovo_direct``).

        Raises :class:`InvalidRequest` before sending when the data breaks a Faspay rule or
        the channel's (a method not enabled, OVO without a phone, an expiry out of bounds).
        (The plugin's stricter reference policy, :meth:`check_reference`, is applied by the
        payment service to every reference it records; ``create`` alone accepts any bill
        number Faspay documents, such as the docs' all-digit examples.)
        """
        message = PostDataRequest.from_payment_request(request, self.config, now=self._clock())
        channel = channel_for(request.method, self.config)
        bill_no = message.bill_no
        response: PostDataResponse = self._call(
            "create",
            PATH_POST_DATA,
            message.to_payload(),
            partial(PostDataResponse.from_payload, sent=message),
            bill_no=bill_no,
            idempotent=False,
        )
        data = provider_data(channel, response)
        if channel.family is Family.OVO and self.config.ovo_flow == OVO_PUSH:
            data.update(self._push_ovo(request, response.trx_id, bill_no))
        shown: RedirectInstruction | PaymentInstructions | None = instructions_for(
            channel,
            data,
            amount=request.amount,
            expires_at=message.bill_expired,
            provider_reference=response.trx_id,
        )
        if shown is None:
            shown = RedirectInstruction(
                url=self._usable_redirect(response.redirect_url)
                or self._redirect_url(response.trx_id, bill_no)
            )
        return Payment(
            provider=PROVIDER,
            merchant_reference=bill_no,
            status=PaymentStatus.PENDING,
            amount=request.amount,
            provider_reference=response.trx_id,
            order_reference=request.order_reference,
            expires_at=message.bill_expired,
            provider_data=data,
            method=request.method,
            redirect=shown,
        )

    def make_reference(self, order_reference: str, attempt: int) -> str:
        """``<order>-<attempt>P``: at most 32 characters, never ending in a digit (see
        :mod:`gateway_faspay_dana._references` for why)."""
        return make_reference(order_reference, attempt)

    def check_reference(self, reference: str) -> None:
        """Faspay's ``bill_no`` rules, plus: it must not end in a digit."""
        check_reference(reference)

    def check_request(self, request: PaymentRequest) -> None:
        """Build (and discard) the post-data message: every rule ``create`` would enforce
        before sending (currency, phone, lengths, expiry, the channel's rules), with nothing
        sent."""
        check_reference(request.merchant_reference)
        PostDataRequest.from_payment_request(request, self.config, now=self._clock())

    def redirect(self, payment: Payment) -> RedirectInstruction | PaymentInstructions:
        """What the customer is shown again (a double click, a reload), with nothing sent:
        the instructions rebuilt from ``provider_data`` (VA number, payment code, QR, OVO
        push), else the ``/pws/100003/<stage>/<signature>`` URL built from the payment's
        ``trx_id`` and ``bill_no`` (§7). An OVO push is never sent twice."""
        if isinstance(payment.redirect, RedirectInstruction | PaymentInstructions):
            return payment.redirect
        trx_id, bill_no = self._references(payment)
        shown = instructions(channel_of(payment), payment)
        return shown or RedirectInstruction(url=self._redirect_url(trx_id, bill_no))

    @property
    def payment_methods(self) -> tuple[str, ...]:
        """The enabled channels' method names (``channels``; the first is the default)."""
        return self.config.channels

    def default_expiry_for(self, method: str) -> timedelta:
        """The channel's default lifetime (ASSUMPTION values, see
        :mod:`gateway_faspay_dana._channels`): ``bill_expiry_minutes`` for the redirect
        e-wallets, 1 day for VA and retail, 30 minutes for QRIS, 5 minutes for OVO."""
        channel = (
            channel_for(method, self.config) if method in ("", *self.payment_methods) else None
        )
        if channel is None:
            return self.config.bill_expiry
        return channel.default_expiry(self.config.bill_expiry)

    def channel_mismatch(self, payment: Payment, notification: Notification) -> bool:
        """True when ``notification`` names a channel (``payment_channel_uid``) other than the
        one ``payment`` was created on. A notification without a channel code matches."""
        code = notification.fields.get("payment_channel_uid", "")
        return isinstance(code, str) and bool(code) and code != channel_of(payment).code

    def notification_mismatch(self, payment: Payment, notification: Notification) -> str:
        """``"method_mismatch"`` for a notification naming another channel than the one the
        attempt was created on (held for review by the payment service)."""
        return Reason.METHOD_MISMATCH.value if self.channel_mismatch(payment, notification) else ""

    def channel(self, code: str) -> Channel | None:
        """The catalogue's channel for a Faspay code, when this gateway enables it."""
        found = by_code(code)
        return found if found is not None and found.method in self.config.channels else None

    def channel_inquiry(self) -> list[PaymentChannel]:
        """The payment channels enabled for the merchant (``/cvr/100001/10``, idempotent).

        Each entry is a ``PaymentChannel(code, name)``, e.g. ``("819", "DANA")``.
        """
        message = ChannelInquiryRequest.for_config(self.config)
        response = self._call(
            "channel_inquiry",
            PATH_CHANNEL_INQUIRY,
            message.to_payload(),
            ChannelInquiryResponse.from_payload,
            bill_no="",
            idempotent=True,
        )
        return list(response.channels)

    @property
    def default_expiry(self) -> timedelta:
        """The default method's default lifetime (``bill_expiry``, 60 minutes unless set,
        for DANA)."""
        return self.default_expiry_for("")

    @property
    def default_currency(self) -> str:
        """``"IDR"``: Faspay's Debit API takes rupiah only."""
        return CURRENCY

    def inquire(self, payment: Payment) -> StatusReport:
        """The bill's status from Faspay (``/cvr/100004/10``, idempotent)."""
        trx_id, bill_no = self._references(payment)
        message = InquiryRequest.for_bill(self.config, trx_id=trx_id, bill_no=bill_no)
        response = self._call(
            "inquire",
            PATH_INQUIRY,
            message.to_payload(),
            InquiryResponse.from_payload,
            bill_no=bill_no,
            idempotent=True,
            status_answers=_STATUS_ANSWERS,
        )
        return StatusReport(
            provider=PROVIDER,
            merchant_reference=bill_no,
            provider_reference=response.trx_id or trx_id,
            status=response.status,
            provider_status=response.payment_status_code,
            paid_at=response.paid_at,
            payment_reference=response.payment_reff,
            # Only a paid (or reversed) bill's payment_total is an amount paid to compare.
            amount=(
                response.payment_total
                if response.status in (PaymentStatus.PAID, PaymentStatus.REVERSED)
                else None
            ),
            description=_printable(response.payment_status_desc),
            merchant_id=response.merchant_id,
        )

    def cancel(self, payment: Payment, reason: str = "") -> StatusReport:
        """Cancel the unpaid bill (``/cvr/100005/10``).

        Sent as idempotent: cancelling twice leaves the bill cancelled. A payment the core
        already knows as paid is refused here, with ``provider_code "81"`` (Already Been Paid)
        and no request sent. When Faspay refuses because the bill already ended (``54``
        expired, ``17`` cancelled, ``81`` paid, ``80`` reversed) and says its status, that
        status is returned; other refusals raise.
        """
        trx_id, bill_no = self._references(payment)
        if payment.status is PaymentStatus.PAID:
            raise ProviderRefused(
                "a paid payment cannot be cancelled",
                provider=PROVIDER,
                merchant_reference=bill_no,
                provider_code="81",
            )
        message = CancelRequest.for_bill(self.config, trx_id=trx_id, bill_no=bill_no, reason=reason)
        response = self._call(
            "cancel",
            PATH_CANCEL,
            message.to_payload(),
            CancelResponse.from_payload,
            bill_no=bill_no,
            idempotent=True,
            status_answers=_STATUS_ANSWERS,
        )
        return StatusReport(
            provider=PROVIDER,
            merchant_reference=bill_no,
            provider_reference=response.trx_id or trx_id,
            status=response.status,
            provider_status=response.payment_status_code,
            description=_printable(response.payment_status_desc),
        )

    # -- inbound -----------------------------------------------------------------------------

    def parse_notification(self, request: InboundRequest) -> Notification | ProviderEvent:
        """Parse and verify a notification (JSON or XML, sniffed from the body); see
        :func:`gateway_faspay_dana._inbound.parse_notification`."""
        return parse_notification(self.config, request.body)

    def parse_return(self, request: InboundRequest) -> ReturnResult:
        """Parse and verify the customer's return (its query, or a POSTed form)."""
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
        """The §10.4 reply, in the format of the notification (or of the request's body when
        it did not parse); see :func:`gateway_faspay_dana._inbound.render_reply`."""
        body = request.body if request is not None else b""
        return render_reply(self.config, self._clock(), message, reason, body, accepted=accepted)

    # -- helpers -----------------------------------------------------------------------------

    def _call(
        self,
        operation: str,
        path: str,
        payload: Mapping[str, object],
        from_payload: Callable[[Mapping[str, object]], Any],
        *,
        bill_no: str,
        idempotent: bool,
        status_answers: frozenset[str] = frozenset(),
    ) -> Any:
        request = HttpRequest(
            method="POST",
            url=self.config.api_base + path,
            body=encode_json(payload),
            headers=dict(_JSON_HEADERS),
            operation=operation,
            idempotent=idempotent,
        )

        def parse(response: HttpResponse) -> Any:
            return _parse_response(
                response,
                from_payload,
                operation=operation,
                bill_no=bill_no,
                status_answers=status_answers,
            )

        result = self._client.call(request, parse, merchant_reference=bill_no)
        log.info("faspay %s bill_no=%s response_code=%s", operation, bill_no, SUCCESS)
        return result

    def _references(self, payment: Payment) -> tuple[str, str]:
        trx_id, bill_no = payment.provider_reference, payment.merchant_reference
        if not isinstance(bill_no, str) or INBOUND_BILL_NO.fullmatch(bill_no) is None:
            raise InvalidRequest("the payment has no usable bill_no", field="bill_no")
        if not isinstance(trx_id, str) or TRX_ID.fullmatch(trx_id) is None:
            raise InvalidRequest(
                "the payment has no Faspay trx_id (provider_reference)",
                field="trx_id",
                merchant_reference=bill_no,
            )
        return trx_id, bill_no

    def _push_ovo(self, request: PaymentRequest, trx_id: str, bill_no: str) -> dict[str, str]:
        """Push an OVO bill to the customer's app; see :func:`push_ovo`."""

        def parse(response: HttpResponse) -> OvoPushResponse:
            answer: OvoPushResponse = _parse_response(
                response,
                OvoPushResponse.from_payload,
                operation="ovo_push",
                bill_no=bill_no,
                decode=OvoPushResponse.from_body,
            )
            return answer

        def cancel() -> object:
            unpaid = Payment(
                provider=PROVIDER,
                merchant_reference=bill_no,
                status=PaymentStatus.PENDING,
                amount=request.amount,
                provider_reference=trx_id,
            )
            return self.cancel(unpaid, "OVO push refused")

        return push_ovo(
            self._client,
            self.config,
            trx_id=trx_id,
            bill_no=bill_no,
            phone=request.customer.phone,
            parse=parse,
            cancel=cancel,
        )

    def _redirect_url(self, trx_id: str, bill_no: str) -> str:
        config = self.config
        signature = bill_signature(config.user_id, config.password, bill_no)
        query = urlencode({"trx_id": trx_id, "merchant_id": config.merchant_id, "bill_no": bill_no})
        return f"{config.api_base}{PATH_REDIRECT}/{config.stage}/{signature}?{query}"

    def _usable_redirect(self, url: str) -> str:
        """Faspay's ``redirect_url`` if it is an absolute http(s) URL, else ``""`` (we then
        build the documented one rather than fail a bill Faspay has already created)."""
        if _PLAIN_HTTP_URL.match(url) is not None:
            return url  # what usable_url accepts, without splitting it
        usable = usable_url(url)
        if url and not usable:
            log.warning("create: unusable redirect_url ignored")
        return usable


#: An absolute http(s) URL with a plain host name (a fast path of ``usable_url``).
_PLAIN_HTTP_URL: Final = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#]|\Z)")
#: Payment status codes that end a bill: paid, reversed, expired, cancelled (and failed).
_FINAL_STATUS_CODES = frozenset({"2", "3", "4", "7", "8"})
#: Refusals that still tell the bill's status: expired, cancelled, already paid, reversed.
_STATUS_ANSWERS = frozenset({"54", "17", "81", "80"})


def _parse_response(
    response: HttpResponse,
    from_payload: Callable[[Mapping[str, object]], Any],
    *,
    operation: str,
    bill_no: str,
    status_answers: frozenset[str] = frozenset(),
    decode: Callable[[bytes], Any] | None = None,
) -> Any:
    """Faspay's answer as a message; a ProviderError subclass for anything but ``"00"``.

    ``status_answers`` are refusal codes that still describe the bill (``54`` expired with
    ``payment_status_code 7``, per the cancel example of the docs): when the answer carries a
    final payment status, it is returned as the bill's status instead of raised.
    """
    try:
        if decode is not None:
            message = decode(response.body)
        else:
            message = from_payload(decode_json_object(response.body))
    except PayloadError as exc:
        if response.status_code in (401, 403):
            raise ProviderConfigurationError(
                f"Faspay refused {operation} with HTTP {response.status_code} "
                "(credentials or IP allow-list?)",
                provider=PROVIDER,
                merchant_reference=bill_no,
            ) from None
        log.warning(
            "faspay %s bill_no=%s unreadable answer (HTTP %s, %s)",
            operation,
            bill_no,
            response.status_code,
            exc.field or "body",
        )
        raise MalformedResponse(
            f"Faspay's answer to {operation} is unreadable (HTTP {response.status_code}): {exc}",
            provider=PROVIDER,
            merchant_reference=bill_no,
        ) from None
    code = getattr(message, "response_code", "")
    answered = getattr(message, "bill_no", "")
    if bill_no and answered and answered != bill_no:
        raise MalformedResponse(
            f"Faspay answered {operation} for another bill_no",
            provider=PROVIDER,
            merchant_reference=bill_no,
        )
    final = getattr(message, "payment_status_code", "") in _FINAL_STATUS_CODES
    if code in status_answers and final:
        log.info("faspay %s bill_no=%s response_code=%s (a final status)", operation, bill_no, code)
        return message
    if code != SUCCESS:
        log.warning("faspay %s bill_no=%s response_code=%s", operation, bill_no, code or "-")
        raise provider_error(
            code,
            operation=operation,
            merchant_reference=bill_no,
            description=getattr(message, "response_desc", ""),
        )
    return message


def _printable(text: str) -> str:
    return _REASON.sub(" ", text).strip() if isinstance(text, str) else ""
