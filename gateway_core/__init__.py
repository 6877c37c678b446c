"""gateway_core: a pluggable payment gateway adapter.

The platform configures gateways by name (:class:`Settings`, :class:`Gateways`), loads
provider plugins through the ``gateway_core`` entry-point group (:class:`PluginHost`), and
receives payment events through pluggy hooks (:mod:`gateway_core.hookspecs`).
"""

import importlib
from typing import TYPE_CHECKING, Any

from gateway_core._config import Gateways, Settings, SettingsReader, build_gateway
from gateway_core._events import EventKind, PaymentEvent
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
from gateway_core._inbound import InboundRequest, ProviderEvent, Reason, Verdict
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
from gateway_core._plugins import Hooks, PluginHost
from gateway_core._redact import (
    get_logger,
    redact_text,
    register_secret,
    register_secret_pattern,
)
from gateway_core._registry import ProviderInfo, ProviderRegistry
from gateway_core._transport import HttpRequest, HttpResponse, MockTransport, Transport
from gateway_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from gateway_core._async_service import AsyncPaymentService
    from gateway_core._requests_transport import RequestsTransport
    from gateway_core._retry import ProviderClient, RetryPolicy
    from gateway_core._runtime import Runtime, build_runtime
    from gateway_core._service import (
        DeliveryReport,
        NotificationOutcome,
        PaymentService,
        ReconcileReport,
        ReturnOutcome,
        ServicePolicy,
        StartedPayment,
    )
    from gateway_core.asgi import make_asgi_app
    from gateway_core.ledger import PaymentRecord

_LAZY = {
    "AsyncPaymentService": "gateway_core._async_service",
    "make_asgi_app": "gateway_core.asgi",
    "ProviderClient": "gateway_core._retry",
    "RetryPolicy": "gateway_core._retry",
    "RequestsTransport": "gateway_core._requests_transport",
    "Runtime": "gateway_core._runtime",
    "build_runtime": "gateway_core._runtime",
    "DeliveryReport": "gateway_core._service",
    "NotificationOutcome": "gateway_core._service",
    "PaymentService": "gateway_core._service",
    "ReconcileReport": "gateway_core._service",
    "ReturnOutcome": "gateway_core._service",
    "ServicePolicy": "gateway_core._service",
    "StartedPayment": "gateway_core._service",
    "PaymentRecord": "gateway_core.ledger",
}


def __getattr__(name: str) -> Any:
    # The transport, retry, service and runtime layers (requests, tenacity, sqlite3...) load on
    # first use, so importing gateway_core (and discovering plugins) stays cheap.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gateway_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
