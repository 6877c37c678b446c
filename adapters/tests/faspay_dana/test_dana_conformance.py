"""The core's conformance kit, run against the Faspay DANA gateway, with the emulator (in
process, through a WSGI transport) answering create, inquire and cancel."""

from __future__ import annotations

from collections.abc import Mapping

from gateway_core import Acknowledgement, Gateway, Money, PaymentStatus, Transport
from gateway_core.testing import GatewayConformance, WSGITransport
from gateway_faspay_dana import FaspayDanaGateway
from gateway_faspay_dana.emulator import EmulatorApp, Merchant, parse_acknowledgement
from gateway_faspay_dana.testing import signed_notification, signed_return_query

PASSWORD = "conformance-Secret-9f2"


class TestFaspayDanaConformance(GatewayConformance):
    # Faspay's references never end in a digit (docs/faspay-dana.md).
    merchant_reference = "CONFORMANCE-1P"
    return_methods = ("GET",)

    def provider_transport(self) -> Transport:
        return WSGITransport(EmulatorApp(Merchant("99999", password=PASSWORD)))

    def make_gateway(self, transport: Transport) -> Gateway:
        settings = {
            "merchant_id": "99999",
            "merchant_name": "Sophia Store",
            "password": PASSWORD,
            "base_url": "https://faspay.emulator.test",
        }
        return FaspayDanaGateway.from_config(settings, environ={}, transport=transport)

    def provider_accepts(self, ack: Acknowledgement) -> bool:
        # Faspay's rule: a 200 whose body says response_code "00".
        return (
            ack.status_code == 200 and parse_acknowledgement(ack.body).get("response_code") == "00"
        )

    def signed_notification(
        self, gateway: Gateway, *, merchant_reference: str, status: PaymentStatus, amount: Money
    ) -> bytes:
        assert isinstance(gateway, FaspayDanaGateway)
        return signed_notification(
            gateway,
            bill_no=merchant_reference,
            trx_id="9999981900000001",
            status=status,
            amount=amount,
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
        self, gateway: Gateway, *, merchant_reference: str, status: PaymentStatus, amount: Money
    ) -> bytes:
        assert isinstance(gateway, FaspayDanaGateway)
        return signed_notification(
            gateway,
            bill_no=merchant_reference,
            trx_id="9999981900000001",
            status=status,
            amount=amount,
            fmt="xml",
        )
