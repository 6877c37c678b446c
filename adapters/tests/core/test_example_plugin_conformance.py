"""The example third-party plugin (Acme Pay) passes the core's conformance kit."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from gateway_core import (
    Gateway,
    HttpRequest,
    HttpResponse,
    MockTransport,
    Money,
    PaymentStatus,
    Transport,
)
from gateway_core.testing import GatewayConformance

EXAMPLE = Path(__file__).resolve().parent.parent / "example_plugin"
SECRET = "acme-test-secret-value"

_WIRE = {PaymentStatus.PAID: "paid", PaymentStatus.FAILED: "failed"}


@pytest.fixture(autouse=True)
def _acme_on_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    yield
    for name in [m for m in sys.modules if m == "acme_pay" or m.startswith("acme_pay.")]:
        del sys.modules[name]


class _AcmeApi:
    """Acme's API, just enough for the kit: create and inquire."""

    def __init__(self) -> None:
        self.payments: dict[str, dict[str, str]] = {}
        self._ids = itertools.count(1)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.url.endswith("/payments"):
            data = json.loads(request.body)
            payment_id = f"ac_{next(self._ids)}"
            self.payments[payment_id] = {"reference": data["reference"], "status": "open"}
            answer = {"id": payment_id, "checkout_url": f"https://pay.acme.example/{payment_id}"}
            return HttpResponse(201, json.dumps(answer).encode())
        payment_id = request.url.rsplit("/", 1)[-1]
        if payment_id not in self.payments:
            return HttpResponse(404, b"{}")
        return HttpResponse(
            200, json.dumps({"id": payment_id, **self.payments[payment_id]}).encode()
        )


class TestAcmePayConformance(GatewayConformance):
    def provider_transport(self) -> Transport:
        return MockTransport(_AcmeApi())

    def make_gateway(self, transport: Transport) -> Gateway:
        from acme_pay import AcmePayGateway

        return AcmePayGateway.from_config(
            {"account": "shop_1", "api_secret": SECRET}, environ={}, transport=transport
        )

    def signed_notification(
        self, gateway: Gateway, *, merchant_reference: str, status: PaymentStatus, amount: Money
    ) -> bytes:
        return json.dumps(
            {
                "id": "ac_1",
                "reference": merchant_reference,
                "status": _WIRE[status],
                "amount_minor": amount.minor_units,
                "currency": amount.currency,
            }
        ).encode()

    def notification_headers(self, gateway: Gateway, body: bytes) -> Mapping[str, str]:
        from acme_pay import sign

        return {"Acme-Signature": sign(SECRET, body)}

    def signed_return(
        self, gateway: Gateway, *, merchant_reference: str, status: PaymentStatus
    ) -> Mapping[str, str]:
        from acme_pay import sign

        wire = _WIRE[status]
        return {
            "reference": merchant_reference,
            "status": wire,
            "sig": sign(SECRET, f"{merchant_reference}:{wire}".encode()),
        }

    def secret_values(self, gateway: Gateway) -> list[str]:
        return [SECRET]
