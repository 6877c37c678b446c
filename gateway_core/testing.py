"""Test helpers shipped with the library: the conformance kit for provider plugins
(:class:`GatewayConformance`, in :mod:`gateway_core._conformance`), the mock and in-process
WSGI transports, a fake gateway, and a hook recorder.

A provider plugin proves it honours the core's contract by subclassing
:class:`GatewayConformance` in its own test-suite::

    from gateway_core.testing import GatewayConformance, WSGITransport

    class TestMyProviderConformance(GatewayConformance):
        def provider_transport(self):
            return WSGITransport(my_emulator_app)   # where create/inquire/cancel are answered

        def make_gateway(self, transport):
            return MyGateway.from_config({...}, transport=transport)

        def signed_notification(self, gateway, *, merchant_reference, status, amount):
            return my_builder(...)  # bytes, exactly as the provider would POST them

        def signed_return(self, gateway, *, merchant_reference, status):
            return {...}            # the return's fields

See :mod:`gateway_core._conformance` for every hook and check, and ``docs/writing-plugins.md``.
"""

from __future__ import annotations

import threading

from gateway_core._conformance import GatewayConformance, KitTransport
from gateway_core._events import EventKind, PaymentEvent
from gateway_core._fake_gateway import FakeGateway
from gateway_core._transport import HttpRequest, HttpResponse, MockTransport
from gateway_core._wsgi_transport import WSGITransport
from gateway_core.hookspecs import hookimpl

__all__ = [
    "FakeGateway",
    "GatewayConformance",
    "HookRecorder",
    "HttpRequest",
    "HttpResponse",
    "KitTransport",
    "MockTransport",
    "WSGITransport",
]


class HookRecorder:
    """An order-system plugin that records every lifecycle and provider event it receives.

    ``fail_next`` makes the next N deliveries raise (to test redelivery). ``effects`` counts
    events by (order_reference, kind) after de-duplicating on ``event_id``, the way a careful
    order system would.
    """

    def __init__(self, *, fail_next: int = 0) -> None:
        self._lock = threading.Lock()
        self.events: list[PaymentEvent] = []
        self.fail_next = fail_next
        self._seen: set[str] = set()
        self.effects: dict[tuple[str, EventKind], int] = {}

    def _record(self, event: PaymentEvent) -> None:
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                raise RuntimeError("order system unavailable (HookRecorder.fail_next)")
            self.events.append(event)
            if event.event_id not in self._seen:
                self._seen.add(event.event_id)
                key = (event.order_reference, event.kind)
                self.effects[key] = self.effects.get(key, 0) + 1

    def kinds(self) -> list[EventKind]:
        """Kinds of the events received, in order."""
        return [event.kind for event in self.events]

    def of_kind(self, kind: EventKind) -> list[PaymentEvent]:
        """The events received of one kind."""
        return [event for event in self.events if event.kind is kind]

    @hookimpl
    def gateway_payment_created(self, event: PaymentEvent) -> None:
        self._record(event)

    @hookimpl
    def gateway_payment_paid(self, event: PaymentEvent) -> None:
        self._record(event)

    @hookimpl
    def gateway_payment_failed(self, event: PaymentEvent) -> None:
        self._record(event)

    @hookimpl
    def gateway_payment_expired(self, event: PaymentEvent) -> None:
        self._record(event)

    @hookimpl
    def gateway_payment_cancelled(self, event: PaymentEvent) -> None:
        self._record(event)

    @hookimpl
    def gateway_payment_reversed(self, event: PaymentEvent) -> None:
        self._record(event)

    @hookimpl
    def gateway_payment_needs_review(self, event: PaymentEvent) -> None:
        self._record(event)

    @hookimpl
    def gateway_provider_event(self, event: PaymentEvent) -> None:
        self._record(event)

    @hookimpl
    def gateway_refund_succeeded(self, event: PaymentEvent) -> None:
        self._record(event)

    @hookimpl
    def gateway_refund_failed(self, event: PaymentEvent) -> None:
        self._record(event)
