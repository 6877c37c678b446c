"""The Midtrans Snap plugin against the Midtrans emulator over real loopback HTTP, through the
emulator's own pytest fixtures (``midtrans_snap_gateway``, ``midtrans_control``) and its page
in a plain HTTP client: create, the customer's return parsed by the plugin, status, the
emulator's webhooks verified by the plugin (tampered ones refused), cancel, expire and refunds
(partial twice, then full; over-refund refused; the same key answered once). (The plugin's own
over-HTTP tests are ``test_midtrans_over_http.py``.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from midtrans_emulator_support import MerchantEndpoint, press, running_merchant

from gateway_core import (
    Customer,
    GatewayError,
    InboundRequest,
    LineItem,
    Money,
    Payment,
    PaymentRequest,
    PaymentStatus,
    ProviderRefused,
    RefundRequest,
    RefundStatus,
)
from gateway_midtrans_snap.emulator import Merchant

RETURN_URL = "https://shop.example.test/return/midtrans"


@pytest.fixture
def shop() -> Iterator[MerchantEndpoint]:
    yield from running_merchant()


@pytest.fixture
def midtrans_emulator_merchant(shop: MerchantEndpoint) -> Merchant:
    return Merchant(notification_url=shop.url)


def request(reference: str, amount: int = 120000) -> PaymentRequest:
    price = Money(Decimal(amount), "IDR")
    return PaymentRequest(
        order_reference=reference.split("-")[0],
        amount=price,
        customer=Customer("Sari Wulandari", email="sari@example.test", phone="+6281200000001"),
        description="Kaos",
        return_url=RETURN_URL,
        items=[LineItem("Kaos Polos", 1, price)],
        merchant_reference=reference,
    )


def created(gateway: Any, reference: str, amount: int = 120000) -> Payment:
    payment: Payment = gateway.create(request(reference, amount))
    assert payment.status is PaymentStatus.PENDING
    return payment


def test_create_then_pay_on_the_page_then_status_and_return(
    midtrans_snap_gateway: Any, midtrans_emulator: Any, midtrans_control: Any
) -> None:
    gateway = midtrans_snap_gateway
    payment = created(gateway, "ORD1-1S")
    assert payment.redirect is not None
    assert payment.redirect.url.startswith(f"{midtrans_emulator.url}/snap/v3/redirection/")
    assert gateway.inquire(payment).status is PaymentStatus.PENDING
    reply = press(payment.redirect.url, "pay")
    location = reply.headers["Location"]
    assert location.startswith(RETURN_URL + "?snap_ref=ORD1-1S&snap_sig=")
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert query["transaction_status"] == "settlement"
    result = gateway.parse_return(InboundRequest(method="GET", query=query))
    assert result.merchant_reference == "ORD1-1S"
    report = gateway.inquire(payment)
    assert report.status is PaymentStatus.PAID
    session = midtrans_control.sessions()[0]
    assert session["order_id"] == "ORD1-1S"
    assert session["gross_amount"] == 120000


def test_the_emulators_webhooks_verify_and_tampered_ones_do_not(
    midtrans_snap_gateway: Any, midtrans_control: Any, shop: MerchantEndpoint
) -> None:
    gateway = midtrans_snap_gateway
    payment = created(gateway, "ORD2-1S")
    press(payment.redirect.url, "pay")
    assert midtrans_control.wait_for_deliveries(10)
    statuses = []
    for body in shop.bodies():
        raw = json.dumps(body).encode()
        notification = gateway.parse_notification(
            InboundRequest(method="POST", headers={"content-type": "application/json"}, body=raw)
        )
        statuses.append(notification.status)
    assert statuses == [PaymentStatus.PENDING, PaymentStatus.PAID]
    forged = dict(shop.bodies()[-1], gross_amount="1.00")
    with pytest.raises(GatewayError):
        gateway.parse_notification(InboundRequest(method="POST", body=json.dumps(forged).encode()))


def test_partial_refunds_twice_then_full(
    midtrans_snap_gateway: Any, midtrans_control: Any, shop: MerchantEndpoint
) -> None:
    gateway = midtrans_snap_gateway
    payment = created(gateway, "ORD3-1S")
    press(payment.redirect.url, "pay")

    def refund(key: str, amount: int) -> Any:
        return gateway.refund(
            payment, RefundRequest("ORD3-1S", Money(Decimal(amount), "IDR"), key, "size")
        )

    first = refund("ORD3-r1", 50000)
    assert first.status in (RefundStatus.SUCCEEDED, RefundStatus.PENDING)
    assert first.amount == Money(Decimal(50000), "IDR")
    assert first.key == "ORD3-r1"
    assert refund("ORD3-r1", 50000).key == "ORD3-r1"  # the same key: answered, not repeated
    refund("ORD3-r2", 30000)
    with pytest.raises(ProviderRefused):
        refund("ORD3-r3", 40001)
    refund("ORD3-r3", 40000)
    report = gateway.inquire(payment)
    assert report.status is PaymentStatus.REFUNDED
    assert sorted(r.key for r in report.refunds) == ["ORD3-r1", "ORD3-r2", "ORD3-r3"]
    assert midtrans_control.transaction("ORD3-1S")["refund_amount"] == "120000.00"
    assert midtrans_control.wait_for_deliveries(10)
    refund_hooks = midtrans_control.deliveries(order_id="ORD3-1S", event="refund")
    assert len(refund_hooks) == 6


def test_cancel_and_expire_through_the_plugin(
    midtrans_snap_gateway: Any, midtrans_control: Any
) -> None:
    gateway = midtrans_snap_gateway
    untouched = created(gateway, "ORD4-1S")
    assert gateway.cancel(untouched).status is PaymentStatus.CANCELLED
    assert midtrans_control.sessions()[0]["state"] == "canceled"
    pending = created(gateway, "ORD5-1S")
    press(pending.redirect.url, "pending", method="bca_va")
    assert gateway.cancel(pending).status is PaymentStatus.CANCELLED
    assert midtrans_control.transaction("ORD5-1S")["transaction_status"] == "cancel"
    expiring = created(gateway, "ORD6-1S")
    press(expiring.redirect.url, "pending", method="bca_va")
    assert gateway.expire(expiring).status is PaymentStatus.EXPIRED
    assert midtrans_control.transaction("ORD6-1S")["status_code"] == "407"
