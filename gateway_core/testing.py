"""Test helpers shipped with the library: a conformance suite for provider plugins, the mock
transport, and a hook recorder.

A provider plugin proves it honours the core's contract by subclassing
:class:`GatewayConformance` in its own test-suite::

    from gateway_core.testing import GatewayConformance

    class TestMyProviderConformance(GatewayConformance):
        def make_gateway(self):
            return MyGateway.from_config({...}, transport=MockTransport(handler))

        def signed_notification(self, gateway, *, merchant_reference, status):
            return my_builder(...)  # bytes, exactly as the provider would POST them

        def signed_return(self, gateway, *, merchant_reference, status):
            return {...}            # the return URL's query

The three are required (a ``Test*`` subclass without them is a ``TypeError``): the kit
knows no provider's wire format, so every message it feeds the gateway comes from the plugin
under test. ``malformed_notifications`` may add near misses in the provider's own format.

The suite checks: a signed notification and return round-trip; a forged or garbage one is
rejected (and :meth:`Gateway.reply` renders a provider-format failure reply for it) and no
other exception; replies have the promised shape; declared capabilities match the implemented
methods; secrets never reach ``repr``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest

from gateway_core._events import EventKind, PaymentEvent
from gateway_core._exceptions import NotificationRejected
from gateway_core._fake_gateway import FakeGateway
from gateway_core._gateway import REQUIRED_CAPABILITIES, Gateway
from gateway_core._inbound import InboundRequest, Reason, Verdict
from gateway_core._models import (
    Acknowledgement,
    Capability,
    Notification,
    PaymentStatus,
    TrustDeclaration,
)
from gateway_core._transport import HttpRequest, HttpResponse, MockTransport
from gateway_core.hookspecs import hookimpl

__all__ = [
    "FakeGateway",
    "GatewayConformance",
    "HookRecorder",
    "HttpRequest",
    "HttpResponse",
    "MockTransport",
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


_GARBAGE: tuple[bytes, ...] = (
    b"",
    b"\x00\xff\xfe",
    b"{",
    b"[]",
    b"null",
    b'{"signature": ["a"]}',
    b"<notification><reference>1</reference>",
    b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'>]><x>&a;</x>",
    b"A" * 100_000,
)


#: What a ``Test*`` subclass of :class:`GatewayConformance` must implement: the kit holds no
#: provider's sample inputs, every message it feeds the gateway comes from the plugin under test.
_REQUIRED_HOOKS = ("make_gateway", "signed_notification", "signed_return")


class GatewayConformance:
    """The behaviour every provider plugin owes the core. Subclass it in a ``Test*`` class."""

    #: A status the provider can notify, used for the round-trip checks.
    notified_status: PaymentStatus = PaymentStatus.PAID
    merchant_reference: str = "CONFORMANCE-1"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("Test"):
            return  # an intermediate base class of the plugin's own
        missing = [
            name
            for name in _REQUIRED_HOOKS
            if getattr(cls, name) is getattr(GatewayConformance, name)
        ]
        if missing:
            raise TypeError(f"{cls.__qualname__} must implement {', '.join(missing)}")

    def make_gateway(self) -> Gateway:
        """A configured gateway (with a mock transport; no network is needed)."""
        raise NotImplementedError

    def signed_notification(
        self, gateway: Gateway, *, merchant_reference: str, status: PaymentStatus
    ) -> bytes:
        """A notification body correctly signed for ``gateway``'s credentials."""
        raise NotImplementedError

    def signed_return(
        self, gateway: Gateway, *, merchant_reference: str, status: PaymentStatus
    ) -> Mapping[str, str]:
        """A return-URL query correctly signed for ``gateway``'s credentials."""
        raise NotImplementedError

    def notification_headers(self, gateway: Gateway, body: bytes) -> Mapping[str, str]:
        """Headers the provider sends with ``body`` (a header signature, say); default none."""
        return {}

    def secret_values(self, gateway: Gateway) -> list[str]:
        """Values that must never show in ``repr`` (default: none known)."""
        return []

    def malformed_notifications(self, gateway: Gateway) -> list[bytes]:
        """Near misses in the provider's own format (a truncated body, a missing field),
        checked like the kit's generic garbage; default none."""
        return []

    # -- helpers -------------------------------------------------------------------------

    @pytest.fixture
    def gateway(self) -> Any:
        gw = self.make_gateway()
        yield gw
        gw.close()

    def _forge(self, body: bytes) -> bytes:
        """Flip one character of the signature-bearing body outside its framing."""
        text = body.decode("utf-8", "replace")
        for old, new in (("a", "b"), ("b", "a"), ("1", "2"), ("2", "1"), ("0", "9")):
            idx = text.rfind(old)
            if idx != -1:
                return (text[:idx] + new + text[idx + 1 :]).encode()
        return body + b" "

    # -- the contract --------------------------------------------------------------------

    def test_declares_name_capabilities_and_trust(self, gateway: Gateway) -> None:
        assert isinstance(type(gateway).name, str)
        assert type(gateway).name.isidentifier()
        assert type(gateway).capabilities >= REQUIRED_CAPABILITIES
        assert isinstance(type(gateway).trust, TrustDeclaration)

    def test_capabilities_are_honest(self, gateway: Gateway) -> None:
        cls = type(gateway)
        for capability, method in ((Capability.INQUIRE, "inquire"), (Capability.CANCEL, "cancel")):
            implemented = getattr(cls, method) is not getattr(Gateway, method)
            assert implemented == (capability in cls.capabilities), (
                f"{cls.__name__} declares {capability.value}={capability in cls.capabilities} "
                f"but {'implements' if implemented else 'does not implement'} {method}()"
            )

    def test_default_currency_is_none_or_an_iso_code(self, gateway: Gateway) -> None:
        currency = gateway.default_currency
        assert currency is None or (len(currency) == 3 and currency.isalpha()), currency

    def test_signed_notification_round_trips(self, gateway: Gateway) -> None:
        body = self.signed_notification(
            gateway, merchant_reference=self.merchant_reference, status=self.notified_status
        )
        notification = gateway.parse_notification(
            InboundRequest.post(body, self.notification_headers(gateway, body))
        )
        assert isinstance(notification, Notification)
        assert notification.merchant_reference == self.merchant_reference
        assert notification.status is self.notified_status
        assert notification.provider == type(gateway).name
        assert notification.event_key

    def test_same_notification_has_the_same_event_key(self, gateway: Gateway) -> None:
        body = self.signed_notification(
            gateway, merchant_reference=self.merchant_reference, status=self.notified_status
        )
        headers = self.notification_headers(gateway, body)
        first = gateway.parse_notification(InboundRequest.post(body, headers))
        second = gateway.parse_notification(InboundRequest.post(body, headers))
        assert first.event_key == second.event_key

    def test_forged_notification_is_rejected_with_a_failure_reply(self, gateway: Gateway) -> None:
        body = self.signed_notification(
            gateway, merchant_reference=self.merchant_reference, status=self.notified_status
        )
        headers = self.notification_headers(gateway, body)  # signed for the original body
        request = InboundRequest.post(self._forge(body), headers)
        with pytest.raises(NotificationRejected) as info:
            gateway.parse_notification(request)
        reason = Reason.of(info.value.reason)
        ack = gateway.reply(Verdict.REJECTED, None, reason, request, accepted=False)
        assert isinstance(ack, Acknowledgement)
        assert not ack.accepted
        assert ack.status_code >= 400

    @pytest.mark.parametrize("body", _GARBAGE, ids=lambda b: repr(b[:12]))
    def test_garbage_is_rejected_never_raised_otherwise(
        self, gateway: Gateway, body: bytes
    ) -> None:
        with pytest.raises(NotificationRejected):
            gateway.parse_notification(InboundRequest.post(body))

    def test_malformed_provider_bodies_are_rejected(self, gateway: Gateway) -> None:
        for body in self.malformed_notifications(gateway):
            with pytest.raises(NotificationRejected):
                gateway.parse_notification(InboundRequest.post(body))

    def test_acknowledgement_shape(self, gateway: Gateway) -> None:
        body = self.signed_notification(
            gateway, merchant_reference=self.merchant_reference, status=self.notified_status
        )
        request = InboundRequest.post(body, self.notification_headers(gateway, body))
        notification = gateway.parse_notification(request)
        ok = gateway.reply(Verdict.APPLIED, notification, Reason.NONE, request, accepted=True)
        assert ok.accepted
        assert ok.status_code == 200
        assert ok.content_type
        assert isinstance(ok.body, bytes)
        assert ok.body
        refused = gateway.reply(
            Verdict.REJECTED, notification, Reason.STATUS_UNCONFIRMED, request, accepted=False
        )
        assert not refused.accepted
        assert refused.body != ok.body

    def test_signed_return_round_trips(self, gateway: Gateway) -> None:
        query = self.signed_return(
            gateway, merchant_reference=self.merchant_reference, status=self.notified_status
        )
        result = gateway.parse_return(InboundRequest.get(query))
        assert result.merchant_reference == self.merchant_reference
        assert result.status is self.notified_status

    def test_forged_return_is_rejected(self, gateway: Gateway) -> None:
        query = dict(
            self.signed_return(
                gateway, merchant_reference=self.merchant_reference, status=self.notified_status
            )
        )
        forged = {k: v for k, v in query.items()}
        for key, value in query.items():
            if value == self.merchant_reference:
                forged[key] = value + "X"
        assert forged != query, "signed_return must contain the merchant reference"
        with pytest.raises(NotificationRejected):
            gateway.parse_return(InboundRequest.get(forged))

    def test_repr_keeps_secrets_out(self, gateway: Gateway) -> None:
        text = repr(gateway)
        for secret in self.secret_values(gateway):
            assert secret not in text
