"""One exception tree for the whole library, split by who failed.

::

    GatewayError
    ├── ConfigurationError ............ the integrator's settings are wrong
    │   └── PluginError ............... a plugin could not be loaded or registered
    ├── TransportError ................ the network between us and the provider failed
    │   ├── NeverSent ................. provably never reached the provider (safe to retry)
    │   ├── OutcomeUnknown ............ may have reached it; a non-idempotent call stops here
    │   ├── ProviderUnavailable ....... retries of an idempotent call ran out
    │   └── TLSVerificationError ...... the provider's certificate was not trusted (never retried)
    ├── ProviderError ................. the provider answered and refused
    │   ├── ProviderConfigurationError  ... because of our credentials, IP or contract
    │   ├── ProviderRefused ........... a business refusal of this request
    │   ├── ProviderTemporaryError .... the provider says it is broken; try later
    │   └── MalformedResponse ......... the answer could not be understood
    ├── NotificationRejected .......... an inbound notification or return is not acceptable
    │   ├── MalformedNotification ..... not parseable, wrong shape, too large
    │   ├── BadSignature .............. signature missing, malformed or wrong
    │   ├── UnknownPayment ............ no such payment in the ledger
    │   └── ReferenceMismatch ......... merchant or provider transaction id disagree
    │       └── AmountMismatch ........ the amount disagrees with the ledger
    ├── InvalidRequest ................ the request breaks a provider rule; nothing was sent
    ├── UnsupportedOperation .......... the provider does not declare this capability
    └── LedgerError ................... the payment store failed or was misused
        ├── InvalidTransition ......... a status change the state machine forbids
        └── LedgerUnavailable ......... the store did not answer in time or cannot be reached

Every error carries context (``provider``, ``merchant_reference``, ``provider_code``) and never
a secret: messages are built from identifiers the library chose to show.
"""

from __future__ import annotations

from gateway_core._models import Acknowledgement


class GatewayError(Exception):
    """Base of every error raised by gateway_core and its plugins."""

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        merchant_reference: str = "",
        provider_code: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.merchant_reference = merchant_reference
        self.provider_code = provider_code

    def __str__(self) -> str:
        context = [
            f"{name}={value}"
            for name, value in (
                ("provider", self.provider),
                ("merchant_reference", self.merchant_reference),
                ("provider_code", self.provider_code),
            )
            if value
        ]
        return f"{self.message} ({', '.join(context)})" if context else self.message


class ConfigurationError(GatewayError):
    """Settings are missing or invalid. ``key`` names the offending setting."""

    def __init__(self, message: str, *, key: str = "", provider: str = "") -> None:
        super().__init__(message, provider=provider)
        self.key = key


class InvalidRequest(GatewayError, ValueError):
    """A request's data breaks a provider rule; nothing was sent and nothing was recorded.
    ``field`` names the offending field. It is also a :class:`ValueError`: the caller passed
    a bad value."""

    def __init__(
        self,
        message: str,
        *,
        field: str = "",
        provider: str = "",
        merchant_reference: str = "",
    ) -> None:
        super().__init__(message, provider=provider, merchant_reference=merchant_reference)
        self.field = field


class PluginError(ConfigurationError):
    """A plugin failed to import, implements an unknown hook, or registers a taken name."""

    def __init__(self, message: str, *, plugin: str) -> None:
        super().__init__(message)
        self.plugin = plugin


class TransportError(GatewayError):
    """The exchange with the provider failed below the level of its protocol."""

    #: True when the provider may have received and acted on the request.
    may_have_been_received: bool = True


class NeverSent(TransportError):
    """The request provably never reached the provider (refused, connect timeout)."""

    may_have_been_received = False


class OutcomeUnknown(TransportError):
    """A non-idempotent request may have been processed, but no usable answer came back.

    Never retried blindly: the payment service records the attempt as unknown and settles it
    by inquiry or reconciliation.
    """


class ProviderUnavailable(TransportError):
    """An idempotent call kept failing until its retries or deadline ran out."""


class TLSVerificationError(TransportError):
    """The provider's TLS certificate did not verify. Never retried."""

    may_have_been_received = False


class ProviderError(GatewayError):
    """The provider answered with a refusal. ``provider_code`` is its code."""


class ProviderConfigurationError(ProviderError):
    """Refused because of our side's setup: credentials, merchant id, IP allow-list, contract."""


class ProviderRefused(ProviderError):
    """A business refusal of this particular request (bad amount, already paid, expired...)."""


class ProviderTemporaryError(ProviderError):
    """The provider reports an internal fault; the same request may succeed later."""


class MalformedResponse(ProviderError):
    """The provider's answer could not be parsed or lacked required fields."""


class NotificationRejected(GatewayError):
    """An inbound notification (or customer return) is not acceptable.

    ``reason`` is a short stable code (``bad_signature``, ``malformed`` ...) for logs and
    metrics. ``acknowledgement`` is the provider-format failure reply, when the plugin could
    build one.
    """

    reason = "rejected"

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        merchant_reference: str = "",
        acknowledgement: Acknowledgement | None = None,
    ) -> None:
        super().__init__(message, provider=provider, merchant_reference=merchant_reference)
        self.acknowledgement = acknowledgement


class MalformedNotification(NotificationRejected):
    """The body could not be parsed, was too large, or lacked required fields."""

    reason = "malformed"


class BadSignature(NotificationRejected):
    """The signature is missing, of the wrong shape, or does not match."""

    reason = "bad_signature"


class UnknownPayment(NotificationRejected):
    """No payment with this merchant reference exists in the ledger."""

    reason = "unknown_payment"


class ReferenceMismatch(NotificationRejected):
    """The merchant or provider transaction id disagrees with the ledger."""

    reason = "reference_mismatch"


class AmountMismatch(ReferenceMismatch):
    """The amount (or currency) disagrees with the ledger."""

    reason = "amount_mismatch"


class UnsupportedOperation(GatewayError):
    """The provider does not declare the capability needed for this call."""


class LedgerError(GatewayError):
    """The payment store failed or was used inconsistently."""


class InvalidTransition(LedgerError):
    """A status change the state machine does not allow."""


class LedgerUnavailable(LedgerError):
    """The store could not be reached, or did not answer within its bounds (a lock or
    statement timeout, a busy SQLite file, a server that stopped responding). Nothing was
    committed, or, for a commit cut off on its way, the outcome is unknown: either way, try
    again later. The web endpoints answer the provider's failure reply, so it re-sends."""
