"""The payment method the checkout picks per payment (``PaymentRequest.method``): refused
before anything is recorded when the gateway does not offer it, stored with the attempt (a
real SQLite ledger file), handed back to the gateway, given its own expiry, and an attempt
is reused only for the same method.

Fast: a :class:`gateway_core.testing.FakeGateway` subclass, a fixed clock; no HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pytest

from gateway_core import (
    Customer,
    InvalidRequest,
    Money,
    Payment,
    PaymentRequest,
    PaymentService,
    PluginHost,
    RedirectInstruction,
)
from gateway_core.ledger import SQLiteLedger
from gateway_core.testing import FakeGateway

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


class ChannelGateway(FakeGateway):
    """A provider with two methods: a bank transfer payable for a day, a QR for 15 minutes."""

    name: ClassVar[str] = "fake_channels"

    def __init__(self) -> None:
        super().__init__()
        self.seen_methods: list[str] = []
        self.redirected_methods: list[str] = []

    @property
    def payment_methods(self) -> tuple[str, ...]:
        return ("bank_va", "qr")

    def default_expiry_for(self, method: str) -> timedelta | None:
        return {"bank_va": timedelta(days=1), "qr": timedelta(minutes=15)}.get(method)

    def create(self, request: PaymentRequest) -> Payment:
        self.seen_methods.append(request.method)
        return super().create(request)

    def redirect(self, payment: Payment) -> RedirectInstruction:
        self.redirected_methods.append(payment.method)
        instruction = super().redirect(payment)
        assert isinstance(instruction, RedirectInstruction)
        return instruction


def make_service(gateways: dict[str, FakeGateway], ledger: SQLiteLedger) -> PaymentService:
    hooks = PluginHost(entry_points=False).hooks
    return PaymentService(gateways=gateways, ledger=ledger, hooks=hooks, clock=lambda: NOW)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[PaymentService, ChannelGateway]]:
    gateway = ChannelGateway()
    ledger = SQLiteLedger(str(tmp_path / "ledger.sqlite3"))
    ledger.migrate()
    service = make_service({"shop": gateway}, ledger)
    try:
        yield service, gateway
    finally:
        ledger.close()


def request(order: str, method: str = "", amount: str = "10000") -> PaymentRequest:
    return PaymentRequest(
        order_reference=order,
        amount=Money(Decimal(amount), "IDR"),
        customer=Customer("Sari"),
        description="Kopi",
        return_url="https://shop.example/back",
        method=method,
    )


def test_a_method_the_gateway_does_not_offer_is_refused_and_nothing_is_recorded(
    world: tuple[PaymentService, ChannelGateway],
) -> None:
    service, gateway = world
    with pytest.raises(InvalidRequest) as caught:
        service.start_payment("shop", request("O-1", method="crypto"))
    assert caught.value.field == "method"
    assert "bank_va" in str(caught.value)
    assert "qr" in str(caught.value)
    assert service.ledger.payments_for_order("shop", "O-1") == []
    assert gateway.seen_methods == []


def test_the_method_is_sent_stored_and_sets_the_default_expiry(
    world: tuple[PaymentService, ChannelGateway],
) -> None:
    service, gateway = world
    qr = service.start_payment("shop", request("O-2", method="qr")).payment
    assert gateway.seen_methods == ["qr"]
    stored = service.payment("shop", qr.merchant_reference)
    assert stored.method == "qr"
    assert stored.expires_at == NOW + timedelta(minutes=15)
    va = service.start_payment("shop", request("O-3", method="bank_va")).payment
    assert service.payment("shop", va.merchant_reference).expires_at == NOW + timedelta(days=1)


def test_a_double_click_reuses_the_attempt_but_a_switched_method_makes_a_new_one(
    world: tuple[PaymentService, ChannelGateway],
) -> None:
    service, gateway = world
    first = service.start_payment("shop", request("O-4", method="qr"))
    again = service.start_payment("shop", request("O-4", method="qr"))
    assert again.reused
    assert again.payment.merchant_reference == first.payment.merchant_reference
    assert gateway.redirected_methods[-1] == "qr"
    switched = service.start_payment("shop", request("O-4", method="bank_va"))
    assert not switched.reused
    assert switched.payment.merchant_reference != first.payment.merchant_reference
    attempts = service.ledger.payments_for_order("shop", "O-4")
    assert [(a.method, a.superseded) for a in attempts] == [("qr", True), ("bank_va", False)]


def test_a_gateway_with_one_method_refuses_any_method_name(tmp_path: Path) -> None:
    ledger = SQLiteLedger(str(tmp_path / "ledger.sqlite3"))
    ledger.migrate()
    try:
        service = make_service({"plain": FakeGateway()}, ledger)
        with pytest.raises(InvalidRequest, match="only its default method"):
            service.start_payment("plain", request("O-5", method="qr"))
        assert service.start_payment("plain", request("O-5")).payment.method == ""
    finally:
        ledger.close()
