"""The conformance kit's base: what the plugin under test supplies, the kit's transport and
fixtures (the checks are in :mod:`gateway_core._conformance` and
:mod:`gateway_core._conformance_inbound`)."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator, Mapping
from urllib.parse import urlencode

import attrs
import pytest

from gateway_core._exceptions import NotificationRejected, TransportError
from gateway_core._gateway import Gateway
from gateway_core._inbound import InboundRequest, ProviderEvent
from gateway_core._models import (
    Acknowledgement,
    Customer,
    Money,
    Notification,
    Payment,
    PaymentRequest,
    PaymentStatus,
)
from gateway_core._transport import HttpRequest, HttpResponse, Transport

__all__ = ["ConformanceBase", "KitTransport"]

_FORM = "application/x-www-form-urlencoded"
UNPAID = (PaymentStatus.PENDING, PaymentStatus.IN_PROCESS)


class KitTransport:
    """The provider's transport, watched by the kit: every request is kept, and
    :meth:`lose_next_answer` makes the next request of one operation reach the provider while
    its answer is lost (a :class:`~gateway_core.TransportError` after sending)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.requests: list[HttpRequest] = []
        self._lock = threading.Lock()
        self._lose: dict[str, int] = {}

    def lose_next_answer(self, operation: str, count: int = 1) -> None:
        with self._lock:
            self._lose[operation] = self._lose.get(operation, 0) + count

    def send(self, request: HttpRequest, *, timeout: float | None = None) -> HttpResponse:
        with self._lock:
            self.requests.append(request)
        response = self.inner.send(request, timeout=timeout)
        with self._lock:
            if self._lose.get(request.operation, 0) > 0:
                self._lose[request.operation] -= 1
                raise TransportError("the answer was lost on the way back (conformance kit)")
        return response

    def close(self) -> None:
        self.inner.close()

    def of(self, operation: str) -> list[HttpRequest]:
        return [r for r in self.requests if r.operation == operation]


def fail(gateway: Gateway, message: str) -> None:
    pytest.fail(f"plugin {type(gateway).name!r}: {message}", pytrace=False)


def check(gateway: Gateway, condition: object, message: str) -> None:
    if not condition:
        fail(gateway, message)


class ConformanceBase:
    """Hooks and helpers of :class:`~gateway_core.testing.GatewayConformance`."""

    #: A status the provider notifies, for the round trips.
    notified_status: PaymentStatus = PaymentStatus.PAID
    merchant_reference: str = "CONFORMANCE-1"
    #: Amounts (decimal strings in ``currency``) created and notified, each round-tripped.
    amounts: tuple[str, ...] = ("1", "2000", "987654")
    #: The currency of the checks (default: the gateway's ``default_currency``, else USD).
    currency: str = ""
    #: How the provider sends the customer back: each is checked.
    return_methods: tuple[str, ...] = ("GET", "POST")
    #: Kinds of the provider's non-status events (``"refund.succeeded"``), built by
    #: :meth:`signed_event`.
    event_kinds: tuple[str, ...] = ()

    # -- what the plugin under test supplies -----------------------------------------------

    def provider_transport(self) -> Transport:
        """A transport on which the provider answers (see the module docstring)."""
        raise NotImplementedError

    def make_gateway(self, transport: Transport) -> Gateway:
        """A configured gateway sending through ``transport``."""
        raise NotImplementedError

    def signed_notification(
        self, gateway: Gateway, *, merchant_reference: str, status: PaymentStatus, amount: Money
    ) -> bytes:
        """A notification body correctly signed for ``gateway``'s credentials."""
        raise NotImplementedError

    def signed_return(
        self, gateway: Gateway, *, merchant_reference: str, status: PaymentStatus
    ) -> Mapping[str, str]:
        """The fields of a correctly signed customer return."""
        raise NotImplementedError

    def signed_event(
        self, gateway: Gateway, *, kind: str, merchant_reference: str, amount: Money
    ) -> bytes:
        """A correctly signed non-status event of ``kind`` (one of ``event_kinds``)."""
        raise NotImplementedError

    def notification_headers(self, gateway: Gateway, body: bytes) -> Mapping[str, str]:
        """Headers the provider sends with ``body`` (a header signature); default none."""
        return {}

    def provider_accepts(self, ack: Acknowledgement) -> bool:
        """The provider's own rule for "delivered" (default: any 2xx, empty body allowed)."""
        return 200 <= ack.status_code < 300

    def payment_request(
        self, gateway: Gateway, *, merchant_reference: str, amount: Money, idempotency_key: str = ""
    ) -> PaymentRequest:
        """The request the create checks send; override for a provider's required fields."""
        return PaymentRequest(
            order_reference=f"order-{merchant_reference}",
            amount=amount,
            customer=Customer("Conformance Buyer", email="buyer@example.com", phone="081234567890"),
            description="Conformance order",
            return_url="https://shop.example/return",
            merchant_reference=merchant_reference,
            # The payment service mints a key per attempt for an idempotent create: so does the kit.
            idempotency_key=(idempotency_key or secrets.token_hex(16))
            if gateway.idempotent_create
            else "",
        )

    def secret_values(self, gateway: Gateway) -> list[str]:
        """Values that must never show in ``repr`` (default: none known)."""
        return []

    def malformed_notifications(self, gateway: Gateway) -> list[bytes]:
        """Near misses in the provider's own format, rejected like the kit's garbage."""
        return []

    # -- fixtures and helpers ---------------------------------------------------------------

    @pytest.fixture
    def kit_transport(self) -> Iterator[KitTransport]:
        transport = KitTransport(self.provider_transport())
        yield transport
        transport.close()

    @pytest.fixture
    def gateway(self, kit_transport: KitTransport) -> Iterator[Gateway]:
        gw = self.make_gateway(kit_transport)
        yield gw
        gw.close()

    def _money(self, gateway: Gateway, amount: str = "2000") -> Money:
        return Money(amount, self.currency or gateway.default_currency or "USD")

    def _notification(
        self, gateway: Gateway, *, amount: Money | None = None, body: bytes | None = None
    ) -> InboundRequest:
        if body is None:
            body = self.signed_notification(
                gateway,
                merchant_reference=self.merchant_reference,
                status=self.notified_status,
                amount=amount or self._money(gateway),
            )
        return InboundRequest.post(body, self.notification_headers(gateway, body))

    def _parse(self, gateway: Gateway, request: InboundRequest) -> Notification | ProviderEvent:
        try:
            return gateway.parse_notification(request)
        except NotificationRejected as exc:
            fail(gateway, f"rejected a correctly signed notification: {exc.reason}: {exc}")
            raise

    def _create(self, gateway: Gateway, reference: str, amount: Money, key: str = "") -> Payment:
        request = self.payment_request(
            gateway, merchant_reference=reference, amount=amount, idempotency_key=key
        )
        payment = gateway.create(request)
        check(gateway, isinstance(payment, Payment), f"create returned {type(payment).__name__}")
        return payment

    @staticmethod
    def _stored(payment: Payment) -> Payment:
        """The payment as the ledger hands it back: no redirect, only ``provider_data``."""
        return attrs.evolve(payment, redirect=None, status=PaymentStatus.PENDING)

    def _return_request(self, fields: Mapping[str, str], method: str) -> InboundRequest:
        if method == "GET":
            return InboundRequest.get(fields)
        return InboundRequest.post(urlencode(dict(fields)).encode(), {"Content-Type": _FORM})
