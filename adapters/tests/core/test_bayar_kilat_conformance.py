"""The example third-party plugin unlike Faspay (Bayar Kilat: header HMAC signatures with a
timestamp, a POST-form checkout with a token from create, 204 acknowledgements, POSTed returns,
refund events, idempotent create) passes the core's conformance kit, with its provider server
answering in process."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from plugin_distributions import EXAMPLE_PLUGIN_DIR

from gateway_core import (
    Acknowledgement,
    Gateway,
    InboundRequest,
    Money,
    PaymentStatus,
    Transport,
)
from gateway_core.testing import GatewayConformance, WSGITransport

API_KEY = "kilat-api-key-Zx81"
WEBHOOK_SECRET = "kilat-webhook-secret-Qq47"
_WIRE = {PaymentStatus.PAID: "paid", PaymentStatus.FAILED: "failed"}


@pytest.fixture(autouse=True)
def _kilat_on_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN_DIR))
    yield
    for name in [m for m in sys.modules if m.startswith("bayar_kilat")]:
        del sys.modules[name]


def _event(kind: str, reference: str, amount: Money, **extra: Any) -> bytes:
    from bayar_kilat import WIRE_EXPONENT

    data = {
        "payment_id": "pay_conformance",
        "reference": reference,
        "status": kind.rpartition(".")[2],
        "amount": amount.to_units(WIRE_EXPONENT),
        "currency": amount.currency,
        **extra,
    }
    return json.dumps({"id": "evt_1", "type": kind, "account": "shop_1", "data": data}).encode()


class TestBayarKilatConformance(GatewayConformance):
    currency = "IDR"
    return_methods = ("POST", "GET")
    event_kinds = ("refund.succeeded",)

    def provider_transport(self) -> Transport:
        from bayar_kilat_server import KilatApp

        app = KilatApp(account="shop_1", api_key=API_KEY, webhook_secret=WEBHOOK_SECRET)
        app.base_url = "https://checkout.bayarkilat.example"
        return WSGITransport(app)

    def make_gateway(self, transport: Transport) -> Gateway:
        from bayar_kilat import BayarKilatGateway

        settings = {"account": "shop_1", "api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET}
        return BayarKilatGateway.from_config(settings, environ={}, transport=transport)

    def provider_accepts(self, ack: Acknowledgement) -> bool:
        return 200 <= ack.status_code < 300  # any 2xx; Bayar Kilat ignores the body

    def signed_notification(
        self, gateway: Gateway, *, merchant_reference: str, status: PaymentStatus, amount: Money
    ) -> bytes:
        return _event(f"payment.{_WIRE[status]}", merchant_reference, amount)

    def signed_event(
        self, gateway: Gateway, *, kind: str, merchant_reference: str, amount: Money
    ) -> bytes:
        return _event(kind, merchant_reference, amount, refund_id="re_1")

    def notification_headers(self, gateway: Gateway, body: bytes) -> Mapping[str, str]:
        from bayar_kilat import notification_headers

        return notification_headers(WEBHOOK_SECRET, body)

    def signed_return(
        self, gateway: Gateway, *, merchant_reference: str, status: PaymentStatus
    ) -> Mapping[str, str]:
        from bayar_kilat import signed_return_fields

        return signed_return_fields(
            WEBHOOK_SECRET,
            reference=merchant_reference,
            payment_id="pay_conformance",
            status=_WIRE[status],
        )

    def secret_values(self, gateway: Gateway) -> list[str]:
        return [API_KEY, WEBHOOK_SECRET]

    def malformed_notifications(self, gateway: Gateway) -> list[bytes]:
        return [
            b'{"type": "payment.paid", "account": "shop_1"}',  # no data
            b'{"type": "refund.succeeded", "account": "shop_1", "data": {}}',
            _event("payment.teleported", "R-1", Money("10", "IDR")),
            _event("refund.succeeded", "R-1", Money("10", "IDR")),  # no refund_id
        ]


def _gateway() -> Any:
    from bayar_kilat import BayarKilatGateway

    settings = {"account": "shop_1", "api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET}
    return BayarKilatGateway.from_config(settings, environ={})


def test_a_notification_signed_outside_the_tolerance_is_rejected() -> None:
    from bayar_kilat import notification_headers

    from gateway_core import BadSignature

    body = _event("payment.paid", "R-1", Money("2000", "IDR"))
    stale = notification_headers(WEBHOOK_SECRET, body, timestamp=int(time.time()) - 3600)
    with pytest.raises(BadSignature, match="tolerance"):
        _gateway().parse_notification(InboundRequest.post(body, stale))


def test_amounts_travel_in_whole_units() -> None:
    from bayar_kilat import notification_headers

    from gateway_core import Customer, InvalidRequest, PaymentRequest

    gateway = _gateway()
    body = _event("payment.paid", "R-1", Money("2000", "IDR"))
    assert json.loads(body)["data"]["amount"] == 2000
    headers = notification_headers(WEBHOOK_SECRET, body)
    notification = gateway.parse_notification(InboundRequest.post(body, headers))
    assert notification.amount == Money("2000", "IDR")
    request = PaymentRequest(
        order_reference="o-1",
        amount=Money("10.50", "USD"),
        customer=Customer("Buyer"),
        description="x",
        return_url="https://shop.example/r",
        merchant_reference="R-1",
    )
    with pytest.raises(InvalidRequest, match="whole units"):
        gateway.check_request(request)
