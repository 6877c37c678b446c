"""gateway_core: a pluggable payment gateway adapter.

The platform configures gateways by name (:class:`Settings`, :class:`Gateways`), loads
provider plugins through the ``gateway_core`` entry-point group (:class:`PluginHost`), and
receives payment events through pluggy hooks (:mod:`gateway_core.hookspecs`).

Every public name is imported on first use (PEP 562 ``__getattr__``): ``import gateway_core``
loads no submodule, so neither ``attrs``, ``pluggy``, ``importlib.metadata``, ``requests``,
``tenacity`` nor a ledger backend; ``from gateway_core import X`` and ``gateway_core.X`` load
the module defining ``X`` (and what it needs) the first time.
"""

# Neither typing nor __future__ is imported at run time: type checkers treat any name
# TYPE_CHECKING as true, and the one annotation naming a typing construct is a string.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from gateway_core._async_service import AsyncPaymentService
    from gateway_core._config import (
        Gateways,
        PluginConfig,
        Settings,
        SettingsReader,
        build_gateway,
    )
    from gateway_core._events import (
        EventKind,
        PaymentEvent,
    )
    from gateway_core._exceptions import (
        AmountMismatch,
        BadSignature,
        ConfigurationError,
        GatewayError,
        InvalidRequest,
        InvalidTransition,
        LedgerError,
        LedgerUnavailable,
        MalformedNotification,
        MalformedResponse,
        NeverSent,
        NotificationRejected,
        OutcomeUnknown,
        PluginError,
        ProviderConfigurationError,
        ProviderError,
        ProviderRefused,
        ProviderTemporaryError,
        ProviderUnavailable,
        ReferenceMismatch,
        TLSVerificationError,
        TransportError,
        UnknownPayment,
        UnsupportedOperation,
    )
    from gateway_core._gateway import Gateway
    from gateway_core._inbound import (
        InboundRequest,
        ProviderEvent,
        Reason,
        Verdict,
    )
    from gateway_core._models import (
        Acknowledgement,
        Capability,
        Customer,
        InstructionKind,
        LineItem,
        Money,
        Notification,
        Payment,
        PaymentInstructions,
        PaymentRequest,
        PaymentStatus,
        RedirectInstruction,
        RedirectMethod,
        ReturnResult,
        SignedField,
        StatusReport,
        TrustDeclaration,
    )
    from gateway_core._plugins import (
        Hooks,
        PluginHost,
    )
    from gateway_core._redact import (
        get_logger,
        redact_text,
        register_secret,
        register_secret_pattern,
    )
    from gateway_core._refunds import RefundReport, RefundRequest, RefundStatus
    from gateway_core._registry import (
        ProviderInfo,
        ProviderRegistry,
    )
    from gateway_core._requests_transport import RequestsTransport
    from gateway_core._retry import (
        ProviderClient,
        RetryPolicy,
    )
    from gateway_core._runtime import (
        Runtime,
        build_runtime,
    )
    from gateway_core._service import (
        DeliveryReport,
        NotificationOutcome,
        PaymentService,
        ReconcileReport,
        ReturnOutcome,
        ServicePolicy,
        StartedPayment,
    )
    from gateway_core._transport import (
        HttpRequest,
        HttpResponse,
        MockTransport,
        Transport,
    )
    from gateway_core.asgi import make_asgi_app
    from gateway_core.hookspecs import hookimpl
    from gateway_core.ledger import PaymentRecord

#: Public name -> the private module defining it, imported on first access.
_LAZY: dict[str, str] = {
    "Acknowledgement": "gateway_core._models",
    "AmountMismatch": "gateway_core._exceptions",
    "AsyncPaymentService": "gateway_core._async_service",
    "BadSignature": "gateway_core._exceptions",
    "Capability": "gateway_core._models",
    "ConfigurationError": "gateway_core._exceptions",
    "Customer": "gateway_core._models",
    "DeliveryReport": "gateway_core._service",
    "EventKind": "gateway_core._events",
    "Gateway": "gateway_core._gateway",
    "GatewayError": "gateway_core._exceptions",
    "Gateways": "gateway_core._config",
    "Hooks": "gateway_core._plugins",
    "HttpRequest": "gateway_core._transport",
    "HttpResponse": "gateway_core._transport",
    "InboundRequest": "gateway_core._inbound",
    "InstructionKind": "gateway_core._models",
    "InvalidRequest": "gateway_core._exceptions",
    "InvalidTransition": "gateway_core._exceptions",
    "LedgerError": "gateway_core._exceptions",
    "LedgerUnavailable": "gateway_core._exceptions",
    "LineItem": "gateway_core._models",
    "MalformedNotification": "gateway_core._exceptions",
    "MalformedResponse": "gateway_core._exceptions",
    "MockTransport": "gateway_core._transport",
    "Money": "gateway_core._models",
    "NeverSent": "gateway_core._exceptions",
    "Notification": "gateway_core._models",
    "NotificationOutcome": "gateway_core._service",
    "NotificationRejected": "gateway_core._exceptions",
    "OutcomeUnknown": "gateway_core._exceptions",
    "Payment": "gateway_core._models",
    "PaymentEvent": "gateway_core._events",
    "PaymentInstructions": "gateway_core._models",
    "PaymentRecord": "gateway_core.ledger",
    "PaymentRequest": "gateway_core._models",
    "PaymentService": "gateway_core._service",
    "PaymentStatus": "gateway_core._models",
    "PluginConfig": "gateway_core._config",
    "PluginError": "gateway_core._exceptions",
    "PluginHost": "gateway_core._plugins",
    "ProviderClient": "gateway_core._retry",
    "ProviderConfigurationError": "gateway_core._exceptions",
    "ProviderError": "gateway_core._exceptions",
    "ProviderEvent": "gateway_core._inbound",
    "ProviderInfo": "gateway_core._registry",
    "ProviderRefused": "gateway_core._exceptions",
    "ProviderRegistry": "gateway_core._registry",
    "ProviderTemporaryError": "gateway_core._exceptions",
    "ProviderUnavailable": "gateway_core._exceptions",
    "Reason": "gateway_core._inbound",
    "ReconcileReport": "gateway_core._service",
    "RedirectInstruction": "gateway_core._models",
    "RedirectMethod": "gateway_core._models",
    "ReferenceMismatch": "gateway_core._exceptions",
    "RefundReport": "gateway_core._refunds",
    "RefundRequest": "gateway_core._refunds",
    "RefundStatus": "gateway_core._refunds",
    "RequestsTransport": "gateway_core._requests_transport",
    "RetryPolicy": "gateway_core._retry",
    "ReturnOutcome": "gateway_core._service",
    "ReturnResult": "gateway_core._models",
    "Runtime": "gateway_core._runtime",
    "ServicePolicy": "gateway_core._service",
    "Settings": "gateway_core._config",
    "SettingsReader": "gateway_core._config",
    "SignedField": "gateway_core._models",
    "StartedPayment": "gateway_core._service",
    "StatusReport": "gateway_core._models",
    "TLSVerificationError": "gateway_core._exceptions",
    "Transport": "gateway_core._transport",
    "TransportError": "gateway_core._exceptions",
    "TrustDeclaration": "gateway_core._models",
    "UnknownPayment": "gateway_core._exceptions",
    "UnsupportedOperation": "gateway_core._exceptions",
    "Verdict": "gateway_core._inbound",
    "build_gateway": "gateway_core._config",
    "build_runtime": "gateway_core._runtime",
    "get_logger": "gateway_core._redact",
    "hookimpl": "gateway_core.hookspecs",
    "make_asgi_app": "gateway_core.asgi",
    "redact_text": "gateway_core._redact",
    "register_secret": "gateway_core._redact",
    "register_secret_pattern": "gateway_core._redact",
}


def __getattr__(name: str) -> "Any":
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gateway_core' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__version__ = "0.1.0"

__all__ = [
    "Acknowledgement",
    "AmountMismatch",
    "AsyncPaymentService",
    "BadSignature",
    "Capability",
    "ConfigurationError",
    "Customer",
    "DeliveryReport",
    "EventKind",
    "Gateway",
    "GatewayError",
    "Gateways",
    "Hooks",
    "HttpRequest",
    "HttpResponse",
    "InboundRequest",
    "InstructionKind",
    "InvalidRequest",
    "InvalidTransition",
    "LedgerError",
    "LedgerUnavailable",
    "LineItem",
    "MalformedNotification",
    "MalformedResponse",
    "MockTransport",
    "Money",
    "NeverSent",
    "Notification",
    "NotificationOutcome",
    "NotificationRejected",
    "OutcomeUnknown",
    "Payment",
    "PaymentEvent",
    "PaymentInstructions",
    "PaymentRecord",
    "PaymentRequest",
    "PaymentService",
    "PaymentStatus",
    "PluginConfig",
    "PluginError",
    "PluginHost",
    "ProviderClient",
    "ProviderConfigurationError",
    "ProviderError",
    "ProviderEvent",
    "ProviderInfo",
    "ProviderRefused",
    "ProviderRegistry",
    "ProviderTemporaryError",
    "ProviderUnavailable",
    "Reason",
    "ReconcileReport",
    "RedirectInstruction",
    "RedirectMethod",
    "ReferenceMismatch",
    "RefundReport",
    "RefundRequest",
    "RefundStatus",
    "RequestsTransport",
    "RetryPolicy",
    "ReturnOutcome",
    "ReturnResult",
    "Runtime",
    "ServicePolicy",
    "Settings",
    "SettingsReader",
    "SignedField",
    "StartedPayment",
    "StatusReport",
    "TLSVerificationError",
    "Transport",
    "TransportError",
    "TrustDeclaration",
    "UnknownPayment",
    "UnsupportedOperation",
    "Verdict",
    "__version__",
    "build_gateway",
    "build_runtime",
    "get_logger",
    "hookimpl",
    "make_asgi_app",
    "redact_text",
    "register_secret",
    "register_secret_pattern",
]
