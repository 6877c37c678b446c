"""The plugin against the Midtrans emulator over loopback HTTP: the payment page, Get
Status, refunds, cancel and expire, and the emulator's own webhooks verifying (and, tampered,
not). Needs the ``midtrans_emulator`` fixture (the Midtrans emulator's pytest plugin);
skipped, naming it, when it is not installed. See ``midtrans_emulator_support`` for what the
tests use of it."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from midtrans_emulator_support import customer_chooses, customer_pays, emulator_or_skip, settings

from gateway_core import (
    BadSignature,
    Customer,
    InboundRequest,
    Money,
    Payment,
    PaymentRequest,
    PaymentStatus,
    ProviderRefused,
    RefundRequest,
    RefundStatus,
)
from gateway_midtrans_snap import MidtransSnapGateway

S = PaymentStatus


class _Webhooks(ThreadingHTTPServer):
    """A merchant endpoint on loopback that keeps every webhook body and answers 200."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: list[bytes] = []
        self.arrived = threading.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/notify/midtrans"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[bytes]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.bodies) >= count, timeout)
            return list(self.bodies)


class _Handler(BaseHTTPRequestHandler):
    server: _Webhooks

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.arrived:
            self.server.bodies.append(body)
            self.server.arrived.notify_all()
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def emulator(request: pytest.FixtureRequest) -> Any:
    return emulator_or_skip(request)


@pytest.fixture
def webhooks() -> Iterator[_Webhooks]:
    server = _Webhooks()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def gateway(emulator: Any, webhooks: _Webhooks) -> Iterator[MidtransSnapGateway]:
    gw = MidtransSnapGateway.from_config(
        settings(emulator, notification_url=webhooks.url), environ={}
    )
    yield gw
    gw.close()


def _create(gateway: MidtransSnapGateway, reference: str, amount: str = "120000") -> Payment:
    now = datetime.now(UTC)
    return gateway.create(
        PaymentRequest(
            order_reference=f"order-{reference}",
            merchant_reference=reference,
            amount=Money(amount, "IDR"),
            customer=Customer("Sari Wulandari", email="sari@example.test"),
            description="Kaos",
            return_url="http://127.0.0.1:9/return/midtrans",
            created_at=now,
            expires_at=now + timedelta(hours=1),
        )
    )


def _paid(gateway: MidtransSnapGateway, emulator: Any, reference: str) -> Payment:
    payment = _create(gateway, reference)
    customer_chooses(emulator, payment.provider_data["token"], "credit_card")
    customer_pays(emulator, reference)
    return payment


def test_the_payment_page_opens_and_the_order_waits(
    gateway: MidtransSnapGateway, emulator: Any
) -> None:
    payment = _create(gateway, "HTTP-PAGE-1S")
    parts = urlsplit(gateway.redirect(payment).url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    connection.request("GET", parts.path)
    response = connection.getresponse()
    assert response.status == 200
    assert "text/html" in response.getheader("Content-Type", "")
    connection.close()
    assert gateway.inquire(payment).status is S.PENDING


def test_paid_then_refunded_partially_twice_then_fully(
    gateway: MidtransSnapGateway, emulator: Any
) -> None:
    payment = _paid(gateway, emulator, "HTTP-REFUND-1S")
    assert gateway.inquire(payment).status is S.PAID
    money = "IDR"
    first = gateway.refund(payment, RefundRequest("HTTP-REFUND-1S", Money("20000", money), "r1"))
    again = gateway.refund(payment, RefundRequest("HTTP-REFUND-1S", Money("20000", money), "r1"))
    assert first.status is RefundStatus.SUCCEEDED
    assert again.provider_reference == first.provider_reference  # the same key: one refund
    gateway.refund(payment, RefundRequest("HTTP-REFUND-1S", Money("30000", money), "r2"))
    assert gateway.inquire(payment).status is S.PARTIALLY_REFUNDED
    with pytest.raises(ProviderRefused):
        gateway.refund(payment, RefundRequest("HTTP-REFUND-1S", Money("70001", money), "r3"))
    gateway.refund(payment, RefundRequest("HTTP-REFUND-1S", Money("70000", money), "r3"))
    report = gateway.inquire(payment)
    assert report.status is S.REFUNDED
    assert [r.key for r in report.refunds] == ["r1", "r2", "r3"]
    assert sum(r.amount.amount for r in report.refunds) == 120000


def test_cancel_and_expire(gateway: MidtransSnapGateway, emulator: Any) -> None:
    unused = _create(gateway, "HTTP-CANCEL-1S")
    assert gateway.cancel(unused).status is S.CANCELLED
    chosen = _create(gateway, "HTTP-CANCEL-2S")
    customer_chooses(emulator, chosen.provider_data["token"])
    assert gateway.cancel(chosen).status is S.CANCELLED
    assert gateway.inquire(chosen).status is S.CANCELLED
    pending = _create(gateway, "HTTP-EXPIRE-1S")
    customer_chooses(emulator, pending.provider_data["token"])
    assert gateway.expire(pending).status is S.EXPIRED
    assert gateway.inquire(pending).status is S.EXPIRED


def test_the_emulators_webhooks_verify_and_tampered_ones_do_not(
    gateway: MidtransSnapGateway, emulator: Any, webhooks: _Webhooks
) -> None:
    _paid(gateway, emulator, "HTTP-HOOK-1S")
    bodies = webhooks.wait_for(2)
    parsed = [gateway.parse_notification(InboundRequest.post(body)) for body in bodies]
    assert {n.merchant_reference for n in parsed} == {"HTTP-HOOK-1S"}
    assert S.PAID in {n.status for n in parsed}
    for body in bodies:
        data = json.loads(body)
        data["gross_amount"] = "1.00"
        with pytest.raises(BadSignature):
            gateway.parse_notification(InboundRequest.post(json.dumps(data).encode()))
