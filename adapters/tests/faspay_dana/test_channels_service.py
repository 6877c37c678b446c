"""Channels through the whole stack: the payment service on a real ledger (SQLite, and
PostgreSQL when available), the emulator over loopback HTTP, the merchant's WSGI endpoints.
The checkout picks a method per payment; the customer pays through the emulator's simulated
bank / store / QRIS app; the emulator's notification settles the payment."""

from __future__ import annotations

import socketserver
import threading
import wsgiref.simple_server
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests

from gateway_core import (
    Customer,
    InstructionKind,
    InvalidRequest,
    Money,
    PaymentRequest,
    PaymentStatus,
    PluginHost,
    Reason,
    Settings,
    Verdict,
)
from gateway_core._runtime import Runtime, build_runtime
from gateway_core._service import ServicePolicy
from gateway_core.web import make_wsgi_app
from gateway_faspay_dana._channels import CHANNELS
from gateway_faspay_dana.testing import signed_notification

PASSWORD = "S3NT1NEL-pw-Xq7t2LmZ9vR4"
GATEWAY = "faspay"


class _Quiet(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


class _Threading(socketserver.ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True


class _Late:
    target: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.target(environ, start_response)


class ChannelStack:
    """The emulator (every channel enabled), the merchant endpoints and the service."""

    def __init__(self, ledger_url: str) -> None:
        from gateway_faspay_dana.emulator import EmulatorApp, EmulatorServer, Merchant

        late = _Late()
        self.merchant_server = wsgiref.simple_server.make_server(
            "127.0.0.1", 0, late, server_class=_Threading, handler_class=_Quiet
        )
        self.merchant_url = f"http://127.0.0.1:{self.merchant_server.server_port}"
        merchant = Merchant(
            "99999",
            merchant_name="Test Store",
            password=PASSWORD,
            notification_url=f"{self.merchant_url}/notify/{GATEWAY}",
            return_url=f"{self.merchant_url}/return/{GATEWAY}",
            channels=tuple(c.code for c in CHANNELS),
        )
        self.emulator = EmulatorApp(merchant, retry_interval=0.05)
        self.server = EmulatorServer(self.emulator).start()
        settings = Settings(
            providers={
                GATEWAY: {
                    "provider": "faspay_dana",
                    "merchant_id": "99999",
                    "merchant_name": "Test Store",
                    "password": PASSWORD,
                    "base_url": self.server.url,
                    "read_timeout": 2.0,
                    "deadline": 6.0,
                    "channels": ["dana", "bca_va", "indomaret", "qris_paydia", "ovo"],
                    "ovo_flow": "push",
                }
            },
            ledger_url=ledger_url,
        )
        self.runtime: Runtime = build_runtime(
            settings,
            host=PluginHost(),
            environ={},
            policy=ServicePolicy(reconcile_grace=timedelta(0)),
        )
        late.target = make_wsgi_app(self.runtime.service, return_page=f"{self.merchant_url}/x")
        threading.Thread(target=self.merchant_server.serve_forever, daemon=True).start()

    @property
    def service(self) -> Any:
        return self.runtime.service

    def request(self, order: str, method: str, phone: str = "081234567890") -> PaymentRequest:
        return PaymentRequest(
            order_reference=order,
            amount=Money("150000", "IDR"),
            customer=Customer("Budi", email="budi@example.com", phone=phone),
            description=f"Order {order}",
            return_url=f"{self.merchant_url}/return/{GATEWAY}",
            method=method,
        )

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = requests.post(f"{self.server.url}/_emulator/{path}", json=body or {}, timeout=5)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def wait(self) -> None:
        assert self.emulator.wait_for_deliveries(10.0), "emulator deliveries did not finish"

    def close(self) -> None:
        self.server.stop()
        self.merchant_server.shutdown()
        self.merchant_server.server_close()
        self.runtime.close()


@pytest.fixture
def channel_stack(any_store: Any) -> Iterator[ChannelStack]:
    stack = ChannelStack(any_store.url)
    try:
        yield stack
    finally:
        stack.close()


def test_the_gateway_offers_its_enabled_channels(channel_stack: ChannelStack) -> None:
    gateway = channel_stack.service.gateway(GATEWAY)
    assert gateway.payment_methods == ("dana", "bca_va", "indomaret", "qris_paydia", "ovo")
    with pytest.raises(InvalidRequest):
        channel_stack.service.start_payment(GATEWAY, channel_stack.request("O-1", "bri_va"))


def test_a_virtual_account_paid_by_transfer_settles_by_notification(
    channel_stack: ChannelStack,
) -> None:
    service = channel_stack.service
    started = service.start_payment(GATEWAY, channel_stack.request("O-VA", "bca_va"))
    shown = started.instructions
    assert shown is not None
    assert shown.kind is InstructionKind.VIRTUAL_ACCOUNT
    assert (shown.bank, shown.amount) == ("BCA", Money("150000", "IDR"))
    record = started.payment
    assert record.method == "bca_va"
    assert record.expires_at - record.created_at == timedelta(days=1)  # ASSUMPTION default
    again = service.start_payment(GATEWAY, channel_stack.request("O-VA", "bca_va"))
    assert again.reused
    assert again.instructions == shown  # rebuilt from provider_data, nothing re-sent
    channel_stack.control(f"va/{shown.number}/transfer")
    channel_stack.wait()
    assert service.payment(GATEWAY, record.merchant_reference).status is PaymentStatus.PAID


def test_switching_method_makes_a_new_attempt(channel_stack: ChannelStack) -> None:
    service = channel_stack.service
    first = service.start_payment(GATEWAY, channel_stack.request("O-SW", "indomaret"))
    second = service.start_payment(GATEWAY, channel_stack.request("O-SW", "qris_paydia"))
    assert not second.reused
    assert second.payment.merchant_reference != first.payment.merchant_reference
    qr = second.instructions
    assert qr is not None
    assert qr.kind is InstructionKind.QR
    assert qr.payload.startswith("000201")
    channel_stack.control(f"qr/{second.payment.provider_reference}/scan")
    channel_stack.wait()
    paid = service.payment(GATEWAY, second.payment.merchant_reference)
    assert paid.status is PaymentStatus.PAID


def test_ovo_without_a_phone_is_refused_before_anything_is_recorded(
    channel_stack: ChannelStack,
) -> None:
    service = channel_stack.service
    with pytest.raises(InvalidRequest):
        service.start_payment(GATEWAY, channel_stack.request("O-OVO", "ovo", phone=""))
    assert service.ledger.payments_for_order(GATEWAY, "O-OVO") == []


def test_the_default_method_is_the_first_enabled_channel(channel_stack: ChannelStack) -> None:
    started = channel_stack.service.start_payment(GATEWAY, channel_stack.request("O-D", ""))
    assert started.instructions is None  # dana: a redirect
    assert started.payment.method == ""


def test_a_notification_for_another_channel_is_held_for_review(
    channel_stack: ChannelStack,
) -> None:
    service = channel_stack.service
    started = service.start_payment(GATEWAY, channel_stack.request("O-MM", "bca_va"))
    record = started.payment
    body = signed_notification(
        service.gateway(GATEWAY),
        bill_no=record.merchant_reference,
        trx_id=record.provider_reference,
        status="2",
        amount=record.amount,
        payment_channel_uid="819",
    )
    outcome = service.handle_notification(GATEWAY, body)
    assert (outcome.verdict, outcome.reason) == (Verdict.REVIEW, Reason.METHOD_MISMATCH)
    assert service.payment(GATEWAY, record.merchant_reference).status is PaymentStatus.PENDING
