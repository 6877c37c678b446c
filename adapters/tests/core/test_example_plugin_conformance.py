"""The example third-party plugin (Acme Pay) passes the core's conformance suite."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from gateway_core import Gateway, HttpResponse, MockTransport, PaymentStatus
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


class TestAcmePayConformance(GatewayConformance):
    def make_gateway(self) -> Gateway:
        from acme_pay import AcmePayGateway

        transport = MockTransport(lambda request: HttpResponse(200, b'{"id": "ac_1"}'))
        return AcmePayGateway.from_config(
            {"account": "shop_1", "api_secret": SECRET}, environ={}, transport=transport
        )

    def signed_notification(
        self, gateway: Gateway, *, merchant_reference: str, status: PaymentStatus
    ) -> bytes:
        return json.dumps(
            {
                "id": "ac_1",
                "reference": merchant_reference,
                "status": _WIRE[status],
                "amount_minor": 1000,
                "currency": "USD",
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
