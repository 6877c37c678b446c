"""Every channel family against the emulator over real HTTP on loopback: create → what the
customer is shown, the customer paying through the emulator's control API (a bank transfer,
a store counter, a QR scan, an OVO approval), then inquiry, cancel and the notification."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
import requests

from gateway_core import (
    Customer,
    InstructionKind,
    Money,
    Payment,
    PaymentInstructions,
    PaymentRequest,
    PaymentStatus,
    ProviderRefused,
    RedirectInstruction,
)
from gateway_faspay_dana import FaspayDanaGateway
from gateway_faspay_dana._channels import CHANNELS

try:
    from gateway_faspay_dana.emulator._control import EmulatorControl
    from gateway_faspay_dana.emulator._model import SANDBOX_PASSWORD, Merchant
except ImportError:  # pragma: no cover - the emulator is being extended concurrently
    pytest.skip("the emulator is not importable", allow_module_level=True)

AMOUNT = Money("150000", "IDR")


@pytest.fixture
def faspay_emulator_merchant() -> Merchant:
    """The emulated merchant, with every channel of the plugin's catalogue enabled."""
    return Merchant(
        merchant_id="99999",
        merchant_name="Sophia Store",
        password=SANDBOX_PASSWORD,
        channels=tuple(c.code for c in CHANNELS),
    )


@pytest.fixture
def make_gateway(faspay_merchant: dict[str, str]) -> Iterator[Callable[..., FaspayDanaGateway]]:
    made: list[FaspayDanaGateway] = []

    def make(**settings: Any) -> FaspayDanaGateway:
        values: dict[str, Any] = {**faspay_merchant, "channels": [c.method for c in CHANNELS]}
        values.update(settings)
        gateway = FaspayDanaGateway.from_config(values, environ={})
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.close()


@pytest.fixture
def control(faspay_emulator: Any) -> Iterator[EmulatorControl]:
    with EmulatorControl(faspay_emulator.url) as client:
        yield client


def request_for(method: str, bill_no: str, phone: str = "081200004321") -> PaymentRequest:
    return PaymentRequest(
        order_reference=bill_no[:-3],
        amount=AMOUNT,
        customer=Customer("Budi", email="budi@example.com", phone=phone),
        description="Kaos polos",
        return_url="https://shop.example/return",
        merchant_reference=bill_no,
        method=method,
    )


def create(
    gateway: FaspayDanaGateway, method: str, bill_no: str, phone: str = "081200004321"
) -> Payment:
    request = request_for(method, bill_no, phone)
    gateway.check_request(request)
    return gateway.create(request)


def status_of(gateway: FaspayDanaGateway, payment: Payment) -> PaymentStatus:
    return gateway.inquire(payment).status


def test_a_bank_transfer_to_a_virtual_account(
    make_gateway: Callable[..., FaspayDanaGateway], control: EmulatorControl
) -> None:
    gateway = make_gateway()
    payment = create(gateway, "bca_va", "VA-1-1P")
    shown = payment.redirect
    assert isinstance(shown, PaymentInstructions)
    assert shown.kind is InstructionKind.VIRTUAL_ACCOUNT
    assert shown.bank == "BCA"
    assert shown.number == payment.provider_reference  # ASSUMPTION §3.3: trx_id is the VA
    assert shown.amount == AMOUNT
    assert shown.expires_at == payment.expires_at
    assert gateway.redirect(attrs.evolve(payment, redirect=None)) == shown
    assert status_of(gateway, payment) is PaymentStatus.PENDING
    control.transfer(shown.number)
    assert status_of(gateway, payment) is PaymentStatus.PAID


def test_a_virtual_account_can_be_cancelled(
    make_gateway: Callable[..., FaspayDanaGateway],
) -> None:
    gateway = make_gateway()
    payment = create(gateway, "permata_va", "VA-2-1P")
    assert isinstance(payment.redirect, PaymentInstructions)
    assert payment.redirect.bank == "Permata"
    assert gateway.cancel(payment).status is PaymentStatus.CANCELLED


def test_cash_at_a_store_counter(
    make_gateway: Callable[..., FaspayDanaGateway], control: EmulatorControl
) -> None:
    gateway = make_gateway()
    payment = create(gateway, "indomaret", "RT-1-1P")
    shown = payment.redirect
    assert isinstance(shown, PaymentInstructions)
    assert shown.kind is InstructionKind.PAYMENT_CODE
    assert (shown.number, shown.bank) == (payment.provider_reference, "Indomaret")
    assert shown.amount == AMOUNT
    control.retail_pay(shown.number)
    assert status_of(gateway, payment) is PaymentStatus.PAID


@pytest.mark.parametrize("method", ["qris_paydia", "qris_shopeepay"])
def test_a_qris_code_scanned_by_an_app(
    make_gateway: Callable[..., FaspayDanaGateway], control: EmulatorControl, method: str
) -> None:
    gateway = make_gateway()
    payment = create(gateway, method, f"QR-{method[-3:]}-1P")
    shown = payment.redirect
    assert isinstance(shown, PaymentInstructions)
    assert shown.kind is InstructionKind.QR
    assert shown.payload.startswith("000201")
    assert shown.amount == AMOUNT
    if shown.url:
        image = requests.get(shown.url, timeout=5)
        assert image.status_code == 200
    control.qr_scan(payment.provider_reference)
    assert status_of(gateway, payment) is PaymentStatus.PAID


def test_an_ovo_push_approved_in_the_app(
    make_gateway: Callable[..., FaspayDanaGateway], control: EmulatorControl
) -> None:
    gateway = make_gateway(ovo_flow="push")
    payment = create(gateway, "ovo", "OVO-1-1P")
    shown = payment.redirect
    assert isinstance(shown, PaymentInstructions)
    assert shown.kind is InstructionKind.PUSH
    assert "08******4321" in shown.text
    assert payment.provider_data["ovo_push"] == "sent"
    assert status_of(gateway, payment) in (PaymentStatus.PENDING, PaymentStatus.IN_PROCESS)
    control.ovo_respond(payment.provider_reference, "approve")
    assert status_of(gateway, payment) is PaymentStatus.PAID


def test_an_ovo_push_declined_in_the_app(
    make_gateway: Callable[..., FaspayDanaGateway],
) -> None:  # the emulator's payer declines numbers ending 0000 at once
    gateway = make_gateway(ovo_flow="push")
    payment = create(gateway, "ovo", "OVO-3-1P", phone="081200000000")
    assert isinstance(payment.redirect, PaymentInstructions)
    assert status_of(gateway, payment) is PaymentStatus.FAILED


def test_an_ovo_push_to_a_number_without_ovo_is_refused(
    make_gateway: Callable[..., FaspayDanaGateway],
) -> None:  # ASSUMPTION: response_code 18; the emulator scripts numbers ending 8888
    gateway = make_gateway(ovo_flow="push")
    with pytest.raises(ProviderRefused) as caught:
        create(gateway, "ovo", "OVO-4-1P", phone="081200008888")
    assert caught.value.provider_code == "18"


def test_ovo_through_faspays_page_is_a_redirect(
    make_gateway: Callable[..., FaspayDanaGateway],
) -> None:
    gateway = make_gateway()
    payment = create(gateway, "ovo", "OVO-2-1P")
    assert isinstance(payment.redirect, RedirectInstruction)
    page = requests.get(payment.redirect.url, timeout=5)
    assert page.status_code == 200


@pytest.mark.parametrize("method", ["shopeepay", "linkaja", "linkaja_app", "dana"])
def test_a_redirect_wallet_sends_the_customer_to_its_page(
    make_gateway: Callable[..., FaspayDanaGateway], method: str
) -> None:
    gateway = make_gateway()
    payment = create(gateway, method, f"EW-{method[:3]}-1P")
    assert isinstance(payment.redirect, RedirectInstruction)
    assert payment.redirect.url.startswith(gateway.config.api_base)
    page = requests.get(payment.redirect.url, timeout=5)
    assert page.status_code == 200


def test_the_notification_names_the_channel_of_the_attempt(
    make_gateway: Callable[..., FaspayDanaGateway],
    control: EmulatorControl,
    faspay_notification: Callable[..., bytes],
) -> None:
    gateway = make_gateway()
    va = create(gateway, "bni_va", "NT-1-1P")
    assert isinstance(va.redirect, PaymentInstructions)
    control.transfer(va.redirect.number)
    notification = gateway.handle_notification(faspay_notification("NT-1-1P", "2"))
    assert notification.status is PaymentStatus.PAID
    assert notification.fields["payment_channel_uid"] == "801"
    assert gateway.channel_mismatch(va, notification) is False
    dana = create(gateway, "dana", "NT-2-1P")
    assert gateway.channel_mismatch(dana, notification) is True


def test_the_channel_inquiry_lists_the_enabled_codes(
    make_gateway: Callable[..., FaspayDanaGateway],
) -> None:
    codes = {channel.code for channel in make_gateway().channel_inquiry()}
    assert {c.code for c in CHANNELS} <= codes
