"""The interface every provider plugin implements."""

from __future__ import annotations

import abc
import hashlib
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar, Self

from gateway_core._exceptions import InvalidRequest, UnsupportedOperation
from gateway_core._models import (
    Acknowledgement,
    Capability,
    Notification,
    Payment,
    PaymentRequest,
    RedirectInstruction,
    ReturnResult,
    StatusReport,
    TrustDeclaration,
)
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

    Inbound methods take raw bytes and plain mappings, never a web framework's request.
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
        """Create the payment at the provider; the result carries the redirect when known.

        Raises :class:`~gateway_core.OutcomeUnknown` when the request may have been processed
        but no usable answer came back.
        """

    @abc.abstractmethod
    def redirect(self, payment: Payment) -> RedirectInstruction:
        """Where to send the customer to pay ``payment``."""

    @abc.abstractmethod
    def handle_return(
        self, query: Mapping[str, str], headers: Mapping[str, str] | None = None
    ) -> ReturnResult:
        """Parse and verify the customer's return (the query string of the return URL).

        Raises :class:`~gateway_core.NotificationRejected` (``BadSignature``,
        ``MalformedNotification``) for anything that does not verify; never another exception.
        """

    @abc.abstractmethod
    def handle_notification(
        self, body: bytes, headers: Mapping[str, str] | None = None
    ) -> Notification:
        """Parse and verify a server-to-server notification from the raw body bytes.

        Raises :class:`~gateway_core.NotificationRejected` with a provider-format failure
        acknowledgement attached; never another exception, whatever the bytes.
        """

    @abc.abstractmethod
    def acknowledge(
        self, notification: Notification, *, accepted: bool = True, reason: str = ""
    ) -> Acknowledgement:
        """The reply the provider expects for ``notification`` (success or failure)."""

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

    def close(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Release resources (pooled connections)."""

    def supports(self, capability: Capability) -> bool:
        """True when the provider declares ``capability``."""
        return capability in self.capabilities
