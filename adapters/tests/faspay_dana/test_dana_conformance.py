"""The core's conformance suite, run against the Faspay DANA gateway."""

from __future__ import annotations

from collections.abc import Mapping

from gateway_core import Gateway, HttpRequest, HttpResponse, Money, PaymentStatus
from gateway_core.testing import GatewayConformance, MockTransport
from gateway_faspay_dana import FaspayDanaGateway
from gateway_faspay_dana.testing import signed_notification, signed_return_query

PASSWORD = "conformance-Secret-9f2"


def _no_network(request: HttpRequest) -> HttpResponse:
    raise AssertionError("the conformance suite needs no network")


class TestFaspayDanaConformance(GatewayConformance):
    def make_gateway(self) -> Gateway:
        settings = {"merchant_id": "99999", "merchant_name": "Sophia Store", "password": PASSWORD}
        return FaspayDanaGateway.from_config(
            settings, environ={}, transport=MockTransport(_no_network)
        )

    def signed_notification(
        self, gateway: Gateway, *, merchant_reference: str, status: PaymentStatus
    ) -> bytes:
        assert isinstance(gateway, FaspayDanaGateway)
        return signed_notification(
            gateway,
            bill_no=merchant_reference,
            trx_id="9999981900000001",
            status=status,
            amount=Money("2000", "IDR"),
        )

    def signed_return(
        self, gateway: Gateway, *, merchant_reference: str, status: PaymentStatus
    ) -> Mapping[str, str]:
        assert isinstance(gateway, FaspayDanaGateway)
        return signed_return_query(
            gateway, bill_no=merchant_reference, status=status, trx_id="9999981900000001"
        )

    def secret_values(self, gateway: Gateway) -> list[str]:
        return [PASSWORD]

    def malformed_notifications(self, gateway: Gateway) -> list[bytes]:
        return [
            b"<faspay><bill_no>1</bill_no>",  # truncated XML
            b'{"request": "Payment Notification", "bill_no": "1"}',  # no signature
            b"<faspay><bill_no>1</bill_no><signature>x</signature></faspay>",
        ]


class TestFaspayDanaXmlConformance(TestFaspayDanaConformance):
    def signed_notification(
        self, gateway: Gateway, *, merchant_reference: str, status: PaymentStatus
    ) -> bytes:
        assert isinstance(gateway, FaspayDanaGateway)
        return signed_notification(
            gateway,
            bill_no=merchant_reference,
            trx_id="9999981900000001",
            status=status,
            amount=Money("2000", "IDR"),
            fmt="xml",
        )
