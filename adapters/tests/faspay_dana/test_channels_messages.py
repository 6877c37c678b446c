"""The channel catalogue and per-family message building against a scripted fake Faspay
(MockTransport): configuration, the post-data request per channel, the instructions each
family's answer becomes, their rebuild from ``provider_data``, and the OVO push."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import attrs
import pytest

from gateway_core import (
    ConfigurationError,
    Customer,
    InstructionKind,
    Money,
    Notification,
    OutcomeUnknown,
    Payment,
    PaymentInstructions,
    PaymentRequest,
    PaymentStatus,
    ProviderRefused,
    RedirectInstruction,
)
from gateway_faspay_dana import JAKARTA, FaspayConfig, FaspayDanaGateway, InvalidRequest
from gateway_faspay_dana._channels import CHANNELS, Family, by_code, by_method, known_methods
from gateway_faspay_dana._signature import sign

NOW = datetime(2020, 12, 19, 6, 0, 0, tzinfo=JAKARTA)  # the conftest's pinned clock
PASSWORD = "p@ssw0rd"

BILL_NO = "ORD-1-1P"
QR = (
    "00020101021226650013ID.PAYDIA.WWW0118936009140000000001"
    "520458125303360540515000.005802ID6304ABCD"
)

ALL_METHODS = known_methods()


@pytest.fixture
def gateway_for(make_gateway: Callable[..., FaspayDanaGateway]) -> Callable[..., FaspayDanaGateway]:
    """A gateway over the scripted fake Faspay with ``methods`` enabled (default: all)."""

    def make(*methods: str, **settings: Any) -> FaspayDanaGateway:
        return make_gateway(channels=methods or ALL_METHODS, **settings)

    return make


def request_for(method: str, **changes: Any) -> PaymentRequest:
    values: dict[str, Any] = {
        "order_reference": "ORD-1",
        "amount": Money("150000", "IDR"),
        "customer": Customer("Budi", email="budi@example.com", phone="0812-0000-1111"),
        "description": "Kaos polos",
        "return_url": "https://shop.example/return",
        "merchant_reference": BILL_NO,
        "method": method,
    }
    values.update(changes)
    return PaymentRequest(**values)


def answer(trx_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "response": "Transmisi Info Detil Pembelian",
        "trx_id": trx_id,
        "merchant_id": "99999",
        "merchant": "Sophia Store",
        "bill_no": BILL_NO,
        "response_code": "00",
        "response_desc": "Sukses",
        "redirect_url": "https://debit-sandbox.faspay.co.id/pws/100003/0830000010100000/"
        f"{sign('bot99999', PASSWORD, BILL_NO)}?trx_id={trx_id}&merchant_id=99999"
        f"&bill_no={BILL_NO}",
        **extra,
    }


def stored(payment: Payment) -> Payment:
    """The payment as the ledger hands it back: no redirect, provider_data and method kept."""
    return attrs.evolve(payment, redirect=None)


# -- the catalogue and the configuration -----------------------------------------------------


def test_the_catalogue_names_each_channel_once_with_its_documented_code() -> None:
    codes = {c.method: c.code for c in CHANNELS}
    assert len(codes) == len(CHANNELS)
    assert len(set(codes.values())) == len(CHANNELS)
    expected = {
        "dana": "819", "permata_va": "402", "bca_va": "702", "bri_va": "800", "bni_va": "801",
        "mandiri_va": "802", "maybank_va": "408", "danamon_va": "708", "indomaret": "706",
        "alfagroup": "707", "qris_shopeepay": "711", "qris_linkaja": "715", "qris_paydia": "836",
        "shopeepay": "713", "linkaja": "302", "linkaja_app": "716", "ovo": "812",
    }  # fmt: skip
    assert {m: codes[m] for m in expected} == expected
    assert by_code("999") is None  # unknown codes are tolerated, not guessed
    assert by_method("bca_va") is by_code("702")


def test_only_redirect_families_expect_a_return_url() -> None:
    for channel in CHANNELS:
        assert channel.return_url is (channel.family in (Family.EWALLET, Family.OVO))
        assert (channel.instruction is None) is (channel.family is Family.EWALLET)


def test_channels_default_to_dana_alone() -> None:
    config = FaspayConfig.from_settings(
        {"merchant_id": "99999", "merchant_name": "S", "password": "x"}, environ={}
    )
    assert config.channels == ("dana",)
    gateway = FaspayDanaGateway(config)
    assert gateway.payment_methods == ("dana",)
    assert gateway.default_expiry == timedelta(minutes=60)


def test_channels_from_a_list_or_the_environment() -> None:
    base = {"merchant_id": "99999", "merchant_name": "S", "password": "x"}
    listed = FaspayConfig.from_settings({**base, "channels": ["bca_va", "dana"]}, environ={})
    assert listed.channels == ("bca_va", "dana")
    env = FaspayConfig.from_settings(base, environ={"FASPAY_CHANNELS": " qris_paydia, ovo "})
    assert env.channels == ("qris_paydia", "ovo")
    mapping_wins = FaspayConfig.from_settings(
        {**base, "channels": ["dana"]}, environ={"FASPAY_CHANNELS": "ovo"}
    )
    assert mapping_wins.channels == ("dana",)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (["dana", "paypal"], ["'paypal'", "known:", "bca_va", "qris_paydia"]),
        ([], ["at least one"]),
        (["dana", "dana"], ["twice"]),
        ("", ["at least one"]),
        ([819], ["list of payment method names"]),
    ],
)
def test_bad_channel_settings_are_configuration_errors(value: object, words: list[str]) -> None:
    settings = {"merchant_id": "99999", "merchant_name": "S", "password": "x", "channels": value}
    with pytest.raises(ConfigurationError) as caught:
        FaspayConfig.from_settings(settings, environ={})
    assert caught.value.key == "channels"
    for word in words:
        assert word in str(caught.value)


def test_ovo_flow_setting() -> None:
    base = {"merchant_id": "99999", "merchant_name": "S", "password": "x"}
    assert FaspayConfig.from_settings(base, environ={}).ovo_flow == "redirect"
    assert FaspayConfig.from_settings({**base, "ovo_flow": "push"}, environ={}).ovo_flow == "push"
    with pytest.raises(ConfigurationError):
        FaspayConfig.from_settings({**base, "ovo_flow": "sms"}, environ={})


def test_the_default_method_is_the_first_enabled_channel(
    faspay: Any, gateway_for: Callable[..., FaspayDanaGateway]
) -> None:
    gateway = gateway_for("bni_va", "dana")
    faspay.answer(answer("9999980100000042"))
    payment = gateway.create(request_for(""))
    assert faspay.sent()["payment_channel"] == "801"
    assert isinstance(payment.redirect, PaymentInstructions)
    assert gateway.default_expiry == timedelta(days=1)


def test_a_method_not_enabled_is_refused_before_sending(
    faspay: Any, gateway_for: Callable[..., FaspayDanaGateway]
) -> None:
    gateway = gateway_for("dana")
    with pytest.raises(InvalidRequest) as caught:
        gateway.check_request(request_for("bca_va"))
    assert caught.value.field == "method"
    assert "dana" in str(caught.value)
    assert faspay.requests == []


def test_default_expiry_per_family(
    faspay: Any, gateway_for: Callable[..., FaspayDanaGateway]
) -> None:  # ASSUMPTION values
    gateway = gateway_for(bill_expiry=timedelta(minutes=45))
    assert gateway.default_expiry_for("dana") == timedelta(minutes=45)
    assert gateway.default_expiry_for("linkaja") == timedelta(minutes=45)
    assert gateway.default_expiry_for("bca_va") == timedelta(days=1)
    assert gateway.default_expiry_for("indomaret") == timedelta(days=1)
    assert gateway.default_expiry_for("qris_paydia") == timedelta(minutes=30)
    assert gateway.default_expiry_for("ovo") == timedelta(minutes=5)


# -- the post-data request per family --------------------------------------------------------


@pytest.mark.parametrize("method", ALL_METHODS)
def test_every_channel_posts_its_code_and_the_shared_fields(
    faspay: Any, gateway_for: Callable[..., FaspayDanaGateway], method: str
) -> None:
    gateway = gateway_for()
    channel = by_method(method)
    assert channel is not None
    faspay.answer(answer(f"99999{channel.code}00000001"))
    gateway.create(request_for(method))
    sent = faspay.sent()
    assert sent["payment_channel"] == channel.code
    assert (sent["pay_type"], sent["terminal"], sent["bill_currency"]) == ("1", "10", "IDR")
    assert sent["bill_total"] == "15000000"  # hundredths
    assert sent["signature"] == sign("bot99999", PASSWORD, BILL_NO)
    assert faspay.requests[-1].url.endswith("/cvr/300011/10")


def test_the_default_bill_lifetime_follows_the_channel(
    faspay: Any, gateway_for: Callable[..., FaspayDanaGateway]
) -> None:
    gateway = gateway_for()
    faspay.answer(answer("9999970200000001"))
    gateway.create(request_for("bca_va"))
    assert faspay.sent()["bill_expired"] == "2020-12-20 06:00:00"
    faspay.answer(answer("9999983600000001"))
    gateway.create(request_for("qris_paydia"))
    assert faspay.sent()["bill_expired"] == "2020-12-19 06:30:00"


@pytest.mark.parametrize(
    ("method", "minutes", "allowed"),
    [
        ("bca_va", 9, False),
        ("bca_va", 10, True),
        ("indomaret", 5, False),
        ("qris_shopeepay", 2, True),
        ("dana", 2, True),
        ("ovo", 2, True),
        ("bni_va", 30 * 24 * 60 + 1, False),
    ],
)
def test_expiry_bounds_per_channel(
    faspay: Any,
    gateway_for: Callable[..., FaspayDanaGateway],
    method: str,
    minutes: int,
    allowed: bool,
) -> None:
    gateway = gateway_for()
    request = request_for(method, created_at=NOW, expires_at=NOW + timedelta(minutes=minutes))
    if allowed:
        gateway.check_request(request)
    else:
        with pytest.raises(InvalidRequest) as caught:
            gateway.check_request(request)
        assert caught.value.field == "bill_expired"
    assert faspay.requests == []


@pytest.mark.parametrize("phone", ["", "   "])
def test_ovo_needs_the_customers_phone(
    faspay: Any, gateway_for: Callable[..., FaspayDanaGateway], phone: str
) -> None:
    gateway = gateway_for()
    request = request_for("ovo", customer=Customer("Budi", email="b@example.com", phone=phone))
    with pytest.raises(InvalidRequest) as caught:
        gateway.check_request(request)
    assert caught.value.field == "msisdn"
    assert "OVO" in str(caught.value)
    assert faspay.requests == []


# -- what each family's answer becomes -------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "trx_id", "bank"),
    [
        ("bca_va", "9999970200000042", "BCA"),
        ("permata_va", "8985999990000042", "Permata"),
        ("mandiri_va", "9999980200000042", "Mandiri"),
    ],
)
def test_a_virtual_account_is_shown_with_its_bank_number_amount_and_expiry(
    faspay: Any, gateway_for: Callable[..., FaspayDanaGateway], method: str, trx_id: str, bank: str
) -> None:
    gateway = gateway_for()
    faspay.answer(answer(trx_id))
    payment = gateway.create(request_for(method))
    shown = payment.redirect
    assert isinstance(shown, PaymentInstructions)
    assert shown.kind is InstructionKind.VIRTUAL_ACCOUNT
    assert (shown.number, shown.bank) == (trx_id, bank)
    assert shown.amount == Money("150000", "IDR")  # exactly the bill total
    assert shown.expires_at == datetime(2020, 12, 20, 6, 0, tzinfo=JAKARTA)
    assert shown.url == ""  # Faspay's hosted page is not used (§3.9 #1)
    assert payment.provider_reference == trx_id
    # The trx_id and the number shown are kept apart (§13.5).
    assert payment.provider_data == {"channel": by_method(method).code, "number": trx_id}  # type: ignore[union-attr]
    assert payment.method == method
    assert gateway.redirect(stored(payment)) == shown
    assert len(faspay.requests) == 1  # the rebuild sent nothing


def test_mandiri_instructions_name_the_multi_payment_company_code(
    faspay: Any, gateway_for: Callable[..., FaspayDanaGateway]
) -> None:
    gateway = gateway_for()
    faspay.answer(answer("9999980200000042"))
    shown = gateway.create(request_for("mandiri_va")).redirect
    assert isinstance(shown, PaymentInstructions)
    assert "88308" in shown.text


@pytest.mark.parametrize(
    ("method", "issuer"), [("indomaret", "Indomaret"), ("alfagroup", "Alfagroup")]
)
def test_a_retail_bill_is_shown_as_a_payment_code(
    faspay: Any, gateway_for: Callable[..., FaspayDanaGateway], method: str, issuer: str
) -> None:
    gateway = gateway_for()
    faspay.answer(answer("9999970700002782"))
    payment = gateway.create(request_for(method))
    shown = payment.redirect
    assert isinstance(shown, PaymentInstructions)
    assert shown.kind is InstructionKind.PAYMENT_CODE
    assert (shown.number, shown.bank) == ("9999970700002782", issuer)
    assert shown.amount == Money("150000", "IDR")
    assert "cashier" in shown.text
    assert gateway.redirect(stored(payment)) == shown


def test_a_qris_answer_is_shown_as_a_qr_payload_and_image(
    faspay: Any, gateway_for: Callable[..., FaspayDanaGateway]
) -> None:
    gateway = gateway_for()
    image = "https://debit-sandbox.faspay.co.id/__assets/qr/paydia/99999-9999983600000007.png"
    faspay.answer(
        answer(
            "9999983600000007",
            web_url=image,
            alt_url="https://debit-sandbox.faspay.co.id/qr/alt",
            qr_content=QR,
            external_id="",
        )
    )
    payment = gateway.create(request_for("qris_paydia"))
    shown = payment.redirect
    assert isinstance(shown, PaymentInstructions)
    assert shown.kind is InstructionKind.QR
    assert (shown.payload, shown.url) == (QR, image)
    assert shown.number == ""  # the trx_id is not the thing to pay
    assert shown.amount == Money("150000", "IDR")
    assert shown.expires_at == datetime(2020, 12, 19, 6, 30, tzinfo=JAKARTA)
    assert gateway.redirect(stored(payment)) == shown


def test_a_qris_answer_with_an_image_only_or_an_unusable_one(
    faspay: Any, gateway_for: Callable[..., FaspayDanaGateway]
) -> None:
    gateway = gateway_for()
    faspay.answer(answer("9999971100000007", alt_url="https://faspay.example/qr/1"))
    shown = gateway.create(request_for("qris_shopeepay")).redirect
    assert isinstance(shown, PaymentInstructions)
    assert (shown.payload, shown.url) == ("", "https://faspay.example/qr/1")
    faspay.answer(answer("9999971100000008", web_url="javascript:alert(1)", qr_content=QR))
    shown = gateway.create(request_for("qris_shopeepay")).redirect
    assert isinstance(shown, PaymentInstructions)
    assert (shown.payload, shown.url) == (QR, "")


def test_a_qris_redirect_type_answer_sends_the_customer_to_faspays_page(
    faspay: Any,
    gateway_for: Callable[..., FaspayDanaGateway],
) -> None:  # §5.3: neither qr_content nor web_url
    gateway = gateway_for()
    faspay.answer(answer("9999971500000007"))
    payment = gateway.create(request_for("qris_linkaja"))
    assert isinstance(payment.redirect, RedirectInstruction)
    assert "/pws/100003/" in payment.redirect.url
    rebuilt = gateway.redirect(stored(payment))
    assert isinstance(rebuilt, RedirectInstruction)
    assert "trx_id=9999971500000007" in rebuilt.url


@pytest.mark.parametrize("method", ["shopeepay", "linkaja", "linkaja_app", "ovo"])
def test_redirect_wallets_and_ovo_by_default_redirect(
    faspay: Any, gateway_for: Callable[..., FaspayDanaGateway], method: str
) -> None:
    gateway = gateway_for()
    faspay.answer(answer("9999971300000007"))
    payment = gateway.create(request_for(method))
    assert isinstance(payment.redirect, RedirectInstruction)
    assert payment.redirect.url.startswith("https://debit-sandbox.faspay.co.id/pws/100003/")
    assert len(faspay.requests) == 1  # no push in the redirect flow
    assert isinstance(gateway.redirect(stored(payment)), RedirectInstruction)


def test_dana_keeps_no_provider_data_and_a_legacy_payment_still_redirects(
    faspay: Any,
    gateway_for: Callable[..., FaspayDanaGateway],
) -> None:
    gateway = gateway_for("bca_va", "dana")
    faspay.answer(answer("9999981900000007"))
    payment = gateway.create(request_for("dana"))
    assert payment.provider_data == {}
    legacy = Payment(
        provider="faspay_dana",
        merchant_reference=BILL_NO,
        status=PaymentStatus.PENDING,
        amount=Money("150000", "IDR"),
        provider_reference="9999981900000007",
    )  # made before channels existed: no method, no provider_data
    assert isinstance(gateway.redirect(legacy), RedirectInstruction)


# -- OVO push (option b) ---------------------------------------------------------------------


def test_ovo_push_posts_the_form_and_shows_a_masked_number(
    faspay: Any, gateway_for: Callable[..., FaspayDanaGateway]
) -> None:
    gateway = gateway_for("ovo", ovo_flow="push")
    trx_id = "9999981200000007"
    faspay.answer(answer(trx_id))
    faspay.answer({"response_code": "00", "response_desc": "Sukses", "trx_id": trx_id})
    payment = gateway.create(request_for("ovo"))
    push = faspay.requests[-1]
    assert push.url.endswith("/pws/ovo_direct")
    assert push.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert push.idempotent is False
    form = {k: v[0] for k, v in parse_qs(push.body.decode()).items()}
    assert form == {
        "trx_id": trx_id,
        "ovo_number": "081200001111",
        "signature": sign("bot99999", PASSWORD, trx_id),  # over trx_id, not bill_no
    }
    shown = payment.redirect
    assert isinstance(shown, PaymentInstructions)
    assert shown.kind is InstructionKind.PUSH
    assert "08******1111" in shown.text
    assert shown.expires_at == datetime(2020, 12, 19, 6, 5, tzinfo=JAKARTA)
    assert "081200001111" not in json.dumps(dict(payment.provider_data))
    assert gateway.redirect(stored(payment)) == shown
    assert len(faspay.requests) == 2  # a double click never pushes again


def test_the_documented_push_signature_vector() -> None:  # §4.2 test vector
    assert sign("bot12345", "Rahasia#1", "1234581200000007") == (
        "52ef71cda3daedea661276aed525e6da083443c0"
    )


def test_an_ovo_push_without_an_answer_waits(
    faspay: Any, gateway_for: Callable[..., FaspayDanaGateway]
) -> None:  # ASSUMPTION C18
    gateway = gateway_for("ovo", ovo_flow="push")
    faspay.answer(answer("9999981200000007"))
    original: Callable[..., Any] = faspay.transport.send

    def send(request: Any, *args: Any, **kwargs: Any) -> Any:
        if request.url.endswith("/pws/ovo_direct"):
            raise OutcomeUnknown("read timed out", provider="faspay_dana")
        return original(request, *args, **kwargs)

    faspay.transport.send = send  # type: ignore[method-assign]
    payment = gateway.create(request_for("ovo"))
    shown = payment.redirect
    assert isinstance(shown, PaymentInstructions)
    assert shown.kind is InstructionKind.PUSH
    assert payment.provider_data["ovo_push"] == "unconfirmed"


def test_a_refused_ovo_push_cancels_the_bill_and_raises(
    faspay: Any, gateway_for: Callable[..., FaspayDanaGateway]
) -> None:
    gateway = gateway_for("ovo", ovo_flow="push")
    faspay.answer(answer("9999981200000007"))
    faspay.answer(
        {"response_error": {"response_code": "18", "response_desc": "MSISDN is not found"}}
    )
    faspay.answer(
        {
            "response": "Canceling Payment",
            "trx_id": "9999981200000007",
            "merchant_id": "99999",
            "bill_no": BILL_NO,
            "payment_status_code": "8",
            "response_code": "00",
        }
    )
    with pytest.raises(ProviderRefused) as caught:
        gateway.create(request_for("ovo"))
    assert caught.value.provider_code == "18"
    assert faspay.requests[-1].url.endswith("/cvr/100005/10")


def test_an_xml_push_answer_is_read(
    faspay: Any, gateway_for: Callable[..., FaspayDanaGateway]
) -> None:  # ASSUMPTION: either format
    gateway = gateway_for("ovo", ovo_flow="push")
    faspay.answer(answer("9999981200000007"))
    faspay.answer(
        body=b"<faspay><response_error><response_code>18</response_code>"
        b"<response_desc>no</response_desc></response_error></faspay>"
    )
    faspay.answer({"response_code": "00", "payment_status_code": "8", "bill_no": BILL_NO})
    with pytest.raises(ProviderRefused):
        gateway.create(request_for("ovo"))


# -- notifications name the channel ----------------------------------------------------------


def notification(code: str) -> Notification:
    return Notification(
        provider="faspay_dana",
        merchant_reference=BILL_NO,
        status=PaymentStatus.PAID,
        event_key=f"{BILL_NO}:2",
        fields={"payment_channel_uid": code},
    )


def test_a_notification_for_another_channel_is_a_mismatch(
    faspay: Any, gateway_for: Callable[..., FaspayDanaGateway]
) -> None:
    gateway = gateway_for()
    faspay.answer(answer("9999970200000042"))
    va = stored(gateway.create(request_for("bca_va")))
    assert gateway.channel_mismatch(va, notification("702")) is False
    assert gateway.channel_mismatch(va, notification("819")) is True
    assert gateway.channel_mismatch(va, notification("")) is False
    legacy = attrs.evolve(va, provider_data={}, method="")
    assert gateway.channel_mismatch(legacy, notification("819")) is False
    assert gateway.channel_mismatch(legacy, notification("702")) is True
