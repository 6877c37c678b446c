"""The interface every provider plugin implements."""

from __future__ import annotations

import abc
import hashlib
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar, Self

from gateway_core._exceptions import (
    InvalidRequest,
    MalformedNotification,
    NotificationRejected,
    UnsupportedOperation,
)
from gateway_core._inbound import InboundRequest, ProviderEvent, Reason, Verdict
from gateway_core._models import (
    Acknowledgement,
    Capability,
    Notification,
    Payment,
    PaymentInstructions,
    PaymentRequest,
    RedirectInstruction,
    ReturnResult,
    StatusReport,
    TrustDeclaration,
)
from gateway_core._refunds import RefundReport, RefundRequest
from gateway_core._transport import Transport

_GENERIC_REFERENCE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def default_reference(order_reference: str, attempt: int) -> str:
    """``<order>-<attempt>``, restricted to ``[A-Za-z0-9_-]`` and at most 64 characters."""
    base = _UNSAFE.sub("", order_reference)
    tail = f"-{attempt}"
    if not base or len(base) + len(tail) > 64 or base != order_reference:
        digest = hashlib.sha256(order_reference.encode("utf-8")).hexdigest()[:16]
        base = f"{base[: 64 - len(tail) - len(digest)]}{digest}" if base else digest
    return f"{base}{tail}"


#: Capabilities every gateway must have.
REQUIRED_CAPABILITIES = frozenset(
    {
        Capability.CREATE,
        Capability.REDIRECT,
        Capability.HANDLE_RETURN,
        Capability.HANDLE_NOTIFICATION,
    }
)


class Gateway(abc.ABC):
    """A payment provider, as the core sees it: pure protocol translation.

    A gateway builds and signs requests, parses and verifies provider messages, maps provider
    codes to :class:`~gateway_core.PaymentStatus`, and builds the acknowledgement the provider
    expects. It keeps no state between calls and never calls hooks: the
    :class:`~gateway_core.PaymentService` does that.

    Subclasses set three class attributes:

    ``name``
        the provider name used in configuration (``"faspay_dana"``);
    ``capabilities``
        the operations implemented (optional ones are ``INQUIRE`` and ``CANCEL``);
    ``trust``
        what the provider's notification and return signatures prove.

    Inbound messages flow one way: the gateway parses (:meth:`parse_notification`,
    :meth:`parse_return`) an :class:`~gateway_core.InboundRequest` (never a web framework's
    request), the payment service decides, and the gateway renders the reply for the
    service's verdict (:meth:`reply`).
    """

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]] = REQUIRED_CAPABILITIES
    trust: ClassVar[TrustDeclaration]
    #: Configuration keys whose values are secrets (never echoed in errors or logs).
    secret_settings: ClassVar[frozenset[str]] = frozenset()
    #: Optional ``"module:function"`` of a local emulator's command line, run by
    #: ``gateway emulator <provider> ...``; the function takes ``argv`` and returns an exit code.
    emulator_entry: ClassVar[str] = ""
    #: Optional ``"module:factory"`` returning a :class:`gateway_core.sandbox.Sandbox` (a
    #: local emulator the ``gateway demo`` command can drive).
    sandbox_entry: ClassVar[str] = ""
    #: True when the provider's create accepts an idempotency key (the same key sent again
    #: answers with the bill it already made instead of making a second one). The payment
    #: service then mints a key per attempt (``PaymentRequest.idempotency_key``), keeps it in
    #: the ledger, and re-sends an ambiguous create with the same key instead of leaving the
    #: attempt unknown. A plugin sends the key wherever its provider expects it.
    idempotent_create: ClassVar[bool] = False

    @classmethod
    @abc.abstractmethod
    def from_config(
        cls,
        settings: Mapping[str, Any],
        *,
        environ: Mapping[str, str] | None = None,
        transport: Transport | None = None,
    ) -> Self:
        """Build a gateway from settings (values in ``settings`` win over ``environ``).

        Raise :class:`~gateway_core.ConfigurationError` naming the bad key; never include a
        secret value in the message.
        """

    @property
    @abc.abstractmethod
    def merchant_id(self) -> str:
        """The merchant identity this instance acts for, checked against inbound messages."""

    @abc.abstractmethod
    def create(self, request: PaymentRequest) -> Payment:
        """Create the payment at the provider; the result carries the redirect when known,
        and in ``provider_data`` whatever ``redirect``, ``inquire`` and ``cancel`` will need
        later (JSON-serialisable; the ledger stores it and hands it back).

        Raises :class:`~gateway_core.OutcomeUnknown` when the request may have been processed
        but no usable answer came back.
        """

    @abc.abstractmethod
    def redirect(self, payment: Payment) -> RedirectInstruction | PaymentInstructions:
        """Where to send the customer to pay ``payment`` (a GET link or a POST form), or
        the instructions to show (a virtual-account number, a QR payload). ``payment``
        carries the ``provider_data`` its ``create`` returned."""

    @abc.abstractmethod
    def parse_notification(self, request: InboundRequest) -> Notification | ProviderEvent:
        """Parse and verify a server-to-server notification (``request.body`` holds the raw
        bytes): a :class:`~gateway_core.Notification` for a status change, a
        :class:`~gateway_core.ProviderEvent` for anything else (a refund, a dispute).

        Raises :class:`~gateway_core.NotificationRejected` (``BadSignature``,
        ``MalformedNotification``) for anything that does not verify; never another
        exception, whatever the bytes. Builds no reply: :meth:`reply` does.
        """

    @abc.abstractmethod
    def parse_return(self, request: InboundRequest) -> ReturnResult:
        """Parse and verify the customer's return, by GET (``request.query``) or by POST
        (``request.form``); ``request.params`` holds both.

        Raises :class:`~gateway_core.NotificationRejected` for anything that does not
        verify; never another exception.
        """

    @abc.abstractmethod
    def reply(
        self,
        verdict: Verdict,
        message: Notification | ProviderEvent | None,
        reason: Reason,
        request: InboundRequest | None,
        *,
        accepted: bool,
    ) -> Acknowledgement:
        """The reply the provider expects for one inbound message, rendered for the
        verdict the payment service decided. The service calls it exactly once per message.

        ``accepted`` says whether the reply is the provider's success reply (the service
        decides it: a duplicate or a review may be accepted, per its policy). ``message`` is
        None when parsing failed or never happened (a refused or unreadable request);
        ``request`` (None when not known) lets the reply follow the format the provider used.
        Never raises.
        """

    # -- conveniences built on the three above ------------------------------------------------

    def handle_notification(
        self, body: bytes, headers: Mapping[str, str] | None = None
    ) -> Notification | ProviderEvent:
        """:meth:`parse_notification` of a POST of ``body``. A rejection carries the
        provider's failure reply as ``acknowledgement`` (from :meth:`reply`), for callers
        outside the payment service."""
        request = InboundRequest.post(body, headers)
        try:
            return self.parse_notification(request)
        except NotificationRejected as exc:
            exc.acknowledgement = self.reply(
                Verdict.REJECTED, None, Reason.of(exc.reason), request, accepted=False
            )
            raise

    def handle_return(
        self, query: Mapping[str, str], headers: Mapping[str, str] | None = None
    ) -> ReturnResult:
        """:meth:`parse_return` of a GET with the query string ``query``."""
        if not isinstance(query, Mapping):
            raise MalformedNotification("a return's query must be a mapping", provider=self.name)
        return self.parse_return(InboundRequest.get(query, headers))

    def acknowledge(
        self,
        notification: Notification | ProviderEvent,
        *,
        accepted: bool = True,
        reason: str = "",
    ) -> Acknowledgement:
        """:meth:`reply` for a parsed message: the success reply, or (``accepted=False``)
        the failure reply with ``reason`` (a :class:`~gateway_core.Reason` value)."""
        verdict = Verdict.APPLIED if accepted else Verdict.REJECTED
        return self.reply(verdict, notification, Reason.of(reason), None, accepted=accepted)

    def make_reference(self, order_reference: str, attempt: int) -> str:
        """The merchant reference (the provider-side bill number) for attempt ``attempt`` of
        an order. The default is ``<order>-<attempt>``, restricted to ``[A-Za-z0-9_-]`` and
        at most 64 characters (a digest replaces what does not fit). A provider with stricter
        rules, or whose signatures could collide across references, overrides it."""
        return default_reference(order_reference, attempt)

    def check_reference(self, reference: str) -> None:
        """Raise :class:`~gateway_core.InvalidRequest` when ``reference`` (generated or
        supplied by the integrator) breaks the provider's rules. The default accepts 1–64
        characters of ``[A-Za-z0-9_-]``."""
        if not isinstance(reference, str) or _GENERIC_REFERENCE.fullmatch(reference) is None:
            raise InvalidRequest(
                "merchant_reference must be 1-64 letters, digits, - or _",
                provider=self.name,
                field="merchant_reference",
            )

    def check_request(self, request: PaymentRequest) -> None:
        """Raise :class:`~gateway_core.InvalidRequest` when ``request`` (its reference set)
        breaks a rule the provider would refuse, without sending anything. The payment
        service calls it before it records an attempt, so a user mistake leaves no ledger row
        and uses no attempt number. The default checks nothing more than the reference."""
        self.check_reference(request.merchant_reference)

    @property
    def default_expiry(self) -> timedelta | None:
        """How long a payment stays payable when the request sets no expiry (None: the
        payment service's policy decides)."""
        return None

    @property
    def payment_methods(self) -> tuple[str, ...]:
        """The payment methods this gateway offers, by the provider's own names (a bank's
        virtual account, a QR code, a wallet...): :attr:`PaymentRequest.method` picks one per
        payment. Empty (the default): one method, and ``method`` must be empty."""
        return ()

    def notification_mismatch(self, payment: Payment, notification: Notification) -> str:
        """A :class:`~gateway_core.Reason` value when a verified ``notification`` contradicts
        what only the plugin can check about ``payment`` (e.g. it names another payment
        method than the attempt's: ``"method_mismatch"``), else ``""``. The payment service
        holds such a notification for review, like an amount mismatch. Default: none."""
        return ""

    def default_expiry_for(self, method: str) -> timedelta | None:
        """How long a payment by ``method`` stays payable when the request sets no expiry
        (default: :attr:`default_expiry`); providers with per-method rules override it."""
        return self.default_expiry

    @property
    def default_currency(self) -> str | None:
        """The ISO 4217 code tools use when an amount is given without a currency
        (``gateway create``, ``gateway demo``): a provider that takes one currency only says
        which. None (the default): the caller must name the currency."""
        return None

    def inquire(self, payment: Payment) -> StatusReport:
        """Ask the provider for the payment's current status (capability ``INQUIRE``)."""
        raise UnsupportedOperation(f"{self.name} cannot inquire", provider=self.name)

    def cancel(self, payment: Payment, reason: str = "") -> StatusReport:
        """Cancel an unpaid payment at the provider (capability ``CANCEL``)."""
        raise UnsupportedOperation(f"{self.name} cannot cancel", provider=self.name)

    def refund(self, payment: Payment, request: RefundRequest) -> RefundReport:
        """Refund ``request.amount`` of a paid ``payment`` (capability ``REFUND``).

        Sending the same ``request.key`` again must never refund twice: it is the provider's
        idempotency key (or merchant refund id). Raise
        :class:`~gateway_core.ProviderRefused` when the provider refuses (not refundable,
        amount too large) and :class:`~gateway_core.OutcomeUnknown` when the answer is lost;
        the payment service then settles the refund from :meth:`inquire`'s
        ``StatusReport.refunds``."""
        raise UnsupportedOperation(f"{self.name} cannot refund", provider=self.name)

    def close(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Release resources (pooled connections)."""

    def supports(self, capability: Capability) -> bool:
        """True when the provider declares ``capability``."""
        return capability in self.capabilities
