"""The gateway's outbound calls against a scripted fake Faspay (message building only)."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import pytest

from gateway_core import (
    Capability,
    Customer,
    MalformedResponse,
    Money,
    OutcomeUnknown,
    Payment,
    PaymentRequest,
    PaymentStatus,
    ProviderClient,
    ProviderConfigurationError,
    ProviderError,
    ProviderRefused,
    ProviderTemporaryError,
    RedirectInstruction,
    RetryPolicy,
    SignedField,
    StatusReport,
)
from gateway_faspay_dana import (
    JAKARTA,
    FaspayConfig,
    FaspayDanaGateway,
    InvalidRequest,
    PaymentChannel,
)

NOW = datetime(2020, 12, 19, 6, 0, 0, tzinfo=JAKARTA)
BILL_NO = "20201222023626"
TRX_ID = "9999981900021790"
SIGNATURE = "7ad74a4aa1c86aeb1308ea5c44e4aa0f4d6ed4e7"  # sign(bot99999, p@ssw0rd, BILL_NO)


def payment_request(**changes: Any) -> PaymentRequest:
    values: dict[str, Any] = {
        "order_reference": "ORDER-1",
        "amount": Money("2000", "IDR"),
        "customer": Customer("John Doe", email="john@gmail.com", phone="08562927907"),
        "description": "Payment Online Via Faspay",
        "return_url": "https://shop.example/return",
        "merchant_reference": BILL_NO,
    }
    values.update(changes)
    return PaymentRequest(**values)


def pending_payment(**changes: Any) -> Payment:
    values: dict[str, Any] = {
        "provider": "faspay_dana",
        "merchant_reference": BILL_NO,
        "status": PaymentStatus.PENDING,
        "amount": Money("2000", "IDR"),
        "provider_reference": TRX_ID,
    }
    values.update(changes)
    return Payment(**values)


def created(**changes: Any) -> dict[str, Any]:
    answer = {
        "response": "Transmission of Purchase Detail Info",
        "trx_id": TRX_ID,
        "merchant_id": "99999",
        "merchant": "Sophia Store",
        "bill_no": BILL_NO,
        "response_code": "00",
        "response_desc": "Success",
        "redirect_url": f"https://debit-sandbox.faspay.co.id/pws/100003/0830000010100000/"
        f"{SIGNATURE}?trx_id={TRX_ID}&merchant_id=99999&bill_no={BILL_NO}",
    }
    answer.update(changes)
    return {k: v for k, v in answer.items() if v is not None}


def inquired(**changes: Any) -> dict[str, Any]:
    answer = {
        "response": "Inquiry Payment Status",
        "trx_id": TRX_ID,
        "merchant_id": "99999",
        "merchant": "Sophia Store",
        "bill_no": BILL_NO,
        "payment_reff": "123",
        "payment_date": "2020-12-19 06:30:00",
        "payment_status_code": "2",
        "payment_status_desc": "Payment Sukses",
        "response_code": "00",
        "response_desc": "Sukses",
    }
    answer.update(changes)
    return answer


def cancelled(**changes: Any) -> dict[str, Any]:
    answer = {
        "response": "Canceling Payment",
        "trx_id": TRX_ID,
        "merchant_id": "99999",
        "merchant": "Sophia Store",
        "bill_no": BILL_NO,
        "trx_status_code": "8",
        "trx_status_desc": "Cancelled",
        "payment_status_code": "8",
        "payment_status_desc": "Payment Cancelled",
        "payment_cancel_date": "2020-12-19 06:10:00",
        "payment_cancel": "Out of stock",
        "response_code": "00",
        "response_desc": "Sukses",
    }
    answer.update(changes)
    return answer


# -- declarations ---------------------------------------------------------------------------


def test_declares_every_capability_but_refund() -> None:
    assert frozenset(Capability) - {Capability.REFUND} == FaspayDanaGateway.capabilities


def test_trust_covers_only_the_bill_and_the_status() -> None:
    trust = FaspayDanaGateway.trust
    covered = frozenset({SignedField.MERCHANT_REFERENCE, SignedField.STATUS})
    assert trust.notification_covers == covered
    assert trust.return_covers == covered
    assert trust.notification_replayable is True
    assert trust.return_settles is False


def test_declares_its_secret_setting_and_emulator() -> None:
    assert FaspayDanaGateway.secret_settings == frozenset({"password"})
    assert FaspayDanaGateway.emulator_entry == "gateway_faspay_dana.emulator:main"


def test_its_default_currency_is_rupiah(gateway: FaspayDanaGateway) -> None:
    """``gateway create`` and ``gateway demo`` take it when no ``--currency`` is given."""
    assert gateway.default_currency == "IDR"


# -- create -----------------------------------------------------------------------------------


def test_create_posts_the_signed_bill_once_as_not_idempotent(
    gateway: FaspayDanaGateway, faspay: Any
) -> None:
    faspay.answer(created())
    gateway.create(payment_request())
    [request] = faspay.requests
    assert request.method == "POST"
    assert request.url == "https://debit-sandbox.faspay.co.id/cvr/300011/10"
    assert request.idempotent is False
    assert request.operation == "create"
    assert request.headers["Content-Type"] == "application/json"


def test_create_sends_the_exact_payload(gateway: FaspayDanaGateway, faspay: Any) -> None:
    faspay.answer(created())
    gateway.create(payment_request())
    assert faspay.sent() == {
        "request": "Post Data Transaction",
        "merchant_id": "99999",
        "merchant": "Sophia Store",
        "bill_no": BILL_NO,
        "bill_reff": "ORDER-1",
        "bill_date": "2020-12-19 06:00:00",
        "bill_expired": "2020-12-19 07:00:00",
        "bill_desc": "Payment Online Via Faspay",
        "bill_currency": "IDR",
        "bill_gross": "200000",
        "bill_miscfee": "0",
        "bill_total": "200000",
        "cust_no": "guest",
        "cust_name": "John Doe",
        "payment_channel": "819",
        "pay_type": "1",
        "msisdn": "8562927907",
        "email": "john@gmail.com",
        "terminal": "10",
        "billing_address": "",
        "billing_address_city": "",
        "billing_address_region": "",
        "billing_address_state": "",
        "billing_address_poscode": "",
        "billing_address_country_code": "",
        "receiver_name_for_shipping": "John Doe",
        "shipping_address": "",
        "shipping_address_city": "",
        "shipping_address_region": "",
        "shipping_address_state": "",
        "shipping_address_poscode": "",
        "item": [
            {
                "product": "Payment Online Via Faspay",
                "qty": "1",
                "amount": "200000",
                "payment_plan": "1",
                "merchant_id": "99999",
                "tenor": "00",
            }
        ],
        "reserve1": "",
        "reserve2": "",
        "signature": SIGNATURE,
    }


def test_create_returns_a_pending_payment_with_faspays_redirect(
    gateway: FaspayDanaGateway, faspay: Any
) -> None:
    faspay.answer(created())
    payment = gateway.create(payment_request())
    assert payment == Payment(
        provider="faspay_dana",
        merchant_reference=BILL_NO,
        status=PaymentStatus.PENDING,
        amount=Money("2000", "IDR"),
        provider_reference=TRX_ID,
        redirect=RedirectInstruction(url=created()["redirect_url"]),
        order_reference="ORDER-1",
        expires_at=datetime(2020, 12, 19, 7, 0, 0, tzinfo=JAKARTA),
    )


@pytest.mark.parametrize("redirect_url", [None, "", "javascript:alert(1)", "/relative/path"])
def test_create_builds_the_redirect_when_faspay_sends_none_usable(
    gateway: FaspayDanaGateway, faspay: Any, redirect_url: str | None
) -> None:
    faspay.answer(created(redirect_url=redirect_url))
    payment = gateway.create(payment_request())
    assert payment.redirect == RedirectInstruction(
        url=f"https://debit-sandbox.faspay.co.id/pws/100003/0830000010100000/{SIGNATURE}"
        f"?trx_id={TRX_ID}&merchant_id=99999&bill_no={BILL_NO}"
    )


def test_create_refuses_a_bad_bill_no_without_sending(
    gateway: FaspayDanaGateway, faspay: Any
) -> None:
    with pytest.raises(InvalidRequest) as info:
        gateway.create(payment_request(merchant_reference="bill no with spaces"))
    assert info.value.field == "bill_no"
    assert faspay.requests == []


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("03", ProviderConfigurationError),
        ("55", ProviderConfigurationError),
        ("56", ProviderConfigurationError),
        ("13", ProviderRefused),
        ("30", ProviderRefused),
        ("83", ProviderRefused),
        ("66", ProviderTemporaryError),
        ("96", ProviderTemporaryError),
    ],
)
def test_create_maps_response_codes_to_error_classes(
    gateway: FaspayDanaGateway, faspay: Any, code: str, error: type[ProviderError]
) -> None:
    faspay.answer({"response_code": code, "response_desc": "whatever"})
    with pytest.raises(error) as info:
        gateway.create(payment_request())
    assert type(info.value) is error
    assert info.value.provider == "faspay_dana"
    assert info.value.provider_code == code
    assert info.value.merchant_reference == BILL_NO


def test_create_reads_the_response_error_wrapper(
    gateway: FaspayDanaGateway, faspay: Any
) -> None:  # §2.4
    faspay.answer({"response_error": {"response_code": "40", "response_desc": "Unregistered"}})
    with pytest.raises(ProviderConfigurationError) as info:
        gateway.create(payment_request())
    assert info.value.provider_code == "40"


def test_a_success_without_trx_id_is_malformed(gateway: FaspayDanaGateway, faspay: Any) -> None:
    faspay.answer(created(trx_id=None))
    with pytest.raises(MalformedResponse):
        gateway.create(payment_request())


def test_an_answer_for_another_bill_is_malformed(gateway: FaspayDanaGateway, faspay: Any) -> None:
    faspay.answer(created(bill_no="SOMEONE-ELSE"))
    with pytest.raises(MalformedResponse):
        gateway.create(payment_request())


@pytest.mark.parametrize(
    "body",
    [b"", b"<html>502 Bad Gateway</html>", b"[]", b'"00"', b"{not json"],
    ids=["empty", "html", "array", "string", "broken"],
)
def test_unreadable_answers_are_malformed(
    gateway: FaspayDanaGateway, faspay: Any, body: bytes
) -> None:
    faspay.answer(body=body)
    with pytest.raises(MalformedResponse):
        gateway.create(payment_request())


def test_a_403_html_page_blames_our_setup(gateway: FaspayDanaGateway, faspay: Any) -> None:
    faspay.answer(body=b"<html>Forbidden</html>", status=403)
    with pytest.raises(ProviderConfigurationError):
        gateway.create(payment_request())


# -- redirect ---------------------------------------------------------------------------------


def test_redirect_returns_the_payments_own_redirect(gateway: FaspayDanaGateway) -> None:
    redirect = RedirectInstruction(url="https://debit-sandbox.faspay.co.id/pws/x")
    assert gateway.redirect(pending_payment(redirect=redirect)) is redirect


def test_redirect_is_built_for_the_configured_environment(
    make_gateway: Any,
) -> None:
    gateway = make_gateway(environment="production")
    url = gateway.redirect(pending_payment()).url
    assert url == (
        f"https://web.faspay.co.id/pws/100003/2830000010100000/{SIGNATURE}"
        f"?trx_id={TRX_ID}&merchant_id=99999&bill_no={BILL_NO}"
    )


def test_redirect_needs_the_trx_id(gateway: FaspayDanaGateway) -> None:
    with pytest.raises(InvalidRequest):
        gateway.redirect(pending_payment(provider_reference=""))


# -- channel inquiry --------------------------------------------------------------------------


def test_channel_inquiry_is_signed_with_user_and_password_only(
    gateway: FaspayDanaGateway, faspay: Any
) -> None:
    faspay.answer(
        {
            "response": "Request List of Payment Gateway",
            "merchant_id": "99999",
            "merchant": "Sophia Store",
            "payment_channel": [{"pg_code": "819", "pg_name": "DANA"}],
            "response_code": "00",
            "response_desc": "Sukses",
        }
    )
    channels = gateway.channel_inquiry()
    [request] = faspay.requests
    assert request.url == "https://debit-sandbox.faspay.co.id/cvr/100001/10"
    assert request.idempotent is True
    assert faspay.sent() == {
        "request": "Request List of Payment Gateway",
        "merchant_id": "99999",
        "merchant": "Sophia Store",
        "signature": "1ac4d5a611ec5376d8da43bbe33aaea1719076b6",
    }
    assert channels == [PaymentChannel("819", "DANA")]


# -- inquiry ----------------------------------------------------------------------------------


def test_inquiry_sends_the_signed_pair_as_idempotent(
    gateway: FaspayDanaGateway, faspay: Any
) -> None:
    faspay.answer(inquired())
    gateway.inquire(pending_payment())
    [request] = faspay.requests
    assert request.url == "https://debit-sandbox.faspay.co.id/cvr/100004/10"
    assert (request.idempotent, request.operation) == (True, "inquire")
    assert faspay.sent() == {
        "request": "Inquiry Payment Status",
        "trx_id": TRX_ID,
        "merchant_id": "99999",
        "bill_no": BILL_NO,
        "signature": SIGNATURE,
    }


def test_inquiry_reports_the_bills_status(gateway: FaspayDanaGateway, faspay: Any) -> None:
    faspay.answer(inquired())
    assert gateway.inquire(pending_payment()) == StatusReport(
        provider="faspay_dana",
        merchant_reference=BILL_NO,
        provider_reference=TRX_ID,
        status=PaymentStatus.PAID,
        provider_status="2",
        paid_at=datetime(2020, 12, 19, 6, 30, 0, tzinfo=JAKARTA),
        payment_reference="123",
        description="Payment Sukses",
        merchant_id="99999",
    )


def test_inquiry_of_an_unpaid_bill_has_no_payment_details(
    gateway: FaspayDanaGateway, faspay: Any
) -> None:
    faspay.answer(
        inquired(
            payment_reff="",
            payment_date=[],
            payment_status_code="0",
            payment_status_desc="Unprocessed",
        )
    )
    report = gateway.inquire(pending_payment())
    assert (report.status, report.paid_at, report.payment_reference) == (
        PaymentStatus.PENDING,
        None,
        "",
    )


def test_inquiry_with_an_undocumented_status_is_malformed(
    gateway: FaspayDanaGateway, faspay: Any
) -> None:
    faspay.answer(inquired(payment_status_code="6"))
    with pytest.raises(MalformedResponse):
        gateway.inquire(pending_payment())


def test_inquiry_needs_the_trx_id_and_sends_nothing_without_it(
    gateway: FaspayDanaGateway, faspay: Any
) -> None:
    with pytest.raises(InvalidRequest):
        gateway.inquire(pending_payment(provider_reference=""))
    assert faspay.requests == []


def test_inquiry_refusals_raise(gateway: FaspayDanaGateway, faspay: Any) -> None:
    faspay.answer({"response_code": "14", "response_desc": "Invalid Order"})
    with pytest.raises(ProviderRefused) as info:
        gateway.inquire(pending_payment())
    assert info.value.provider_code == "14"


# -- cancel -----------------------------------------------------------------------------------


def test_cancel_sends_the_reason_as_idempotent(gateway: FaspayDanaGateway, faspay: Any) -> None:
    faspay.answer(cancelled())
    gateway.cancel(pending_payment(), "Out of stock")
    [request] = faspay.requests
    assert request.url == "https://debit-sandbox.faspay.co.id/cvr/100005/10"
    assert (request.idempotent, request.operation) == (True, "cancel")
    assert faspay.sent() == {
        "request": "Canceling Payment",
        "trx_id": TRX_ID,
        "merchant_id": "99999",
        "merchant": "Sophia Store",
        "bill_no": BILL_NO,
        "payment_cancel": "Out of stock",
        "signature": SIGNATURE,
    }


def test_cancel_reports_the_cancelled_status(gateway: FaspayDanaGateway, faspay: Any) -> None:
    faspay.answer(cancelled())
    report = gateway.cancel(pending_payment(), "Out of stock")
    assert (report.status, report.provider_status) == (PaymentStatus.CANCELLED, "8")


def test_cancel_reason_defaults_and_is_cut_to_50(gateway: FaspayDanaGateway, faspay: Any) -> None:
    faspay.answer(cancelled())
    faspay.answer(cancelled())
    gateway.cancel(pending_payment())
    gateway.cancel(pending_payment(), "x" * 80)
    assert faspay.sent(0)["payment_cancel"] == "Cancelled by merchant"
    assert faspay.sent(1)["payment_cancel"] == "x" * 50


def test_cancel_of_a_paid_payment_is_refused_without_a_request(
    gateway: FaspayDanaGateway, faspay: Any
) -> None:
    with pytest.raises(ProviderRefused) as info:
        gateway.cancel(pending_payment(status=PaymentStatus.PAID))
    assert info.value.provider_code == "81"
    assert faspay.requests == []


def test_cancel_of_an_expired_bill_reports_it_expired(
    gateway: FaspayDanaGateway, faspay: Any
) -> None:
    # The docs' cancel example: response_code 54 with payment_status_code 7. The refusal
    # still tells the bill's final status, which the core needs to settle the payment.
    faspay.answer(
        cancelled(
            payment_status_code="7",
            payment_cancel_date=[],
            response_code="54",
            response_desc="Transaksi Anda telah kedaluwarsa.",
        )
    )
    report = gateway.cancel(pending_payment())
    assert report.status is PaymentStatus.EXPIRED
    assert report.provider_status == "7"


def test_a_refusal_without_a_final_status_still_raises(
    gateway: FaspayDanaGateway, faspay: Any
) -> None:
    faspay.answer(
        cancelled(
            payment_status_code="1",
            payment_cancel_date=[],
            response_code="54",
            response_desc="Transaksi Anda telah kedaluwarsa.",
        )
    )
    with pytest.raises(ProviderRefused) as info:
        gateway.cancel(pending_payment())
    assert info.value.provider_code == "54"


# -- with the core's retrying client ---------------------------------------------------------


def retrying_gateway(config: FaspayConfig, faspay: Any) -> FaspayDanaGateway:
    client = ProviderClient(
        faspay.transport,
        RetryPolicy(max_retries=2),
        provider="faspay_dana",
        sleep=lambda seconds: None,
    )
    return FaspayDanaGateway(config, client=client, clock=lambda: NOW)


def test_an_unreadable_create_answer_is_an_unknown_outcome(
    config: FaspayConfig, faspay: Any
) -> None:
    gateway = retrying_gateway(config, faspay)
    faspay.answer(body=b"<html>oops</html>")
    with pytest.raises(OutcomeUnknown):
        gateway.create(payment_request())
    assert len(faspay.requests) == 1


def test_a_temporary_inquiry_error_is_retried(config: FaspayConfig, faspay: Any) -> None:
    gateway = retrying_gateway(config, faspay)
    faspay.answer({"response_code": "96", "response_desc": "System Malfunction"})
    faspay.answer(inquired())
    assert gateway.inquire(pending_payment()).status is PaymentStatus.PAID
    assert len(faspay.requests) == 2


def test_from_config_wires_the_core_client(faspay: Any) -> None:
    settings = {"merchant_id": "99999", "merchant_name": "Sophia Store", "password": "p@ssw0rd"}
    gateway = FaspayDanaGateway.from_config(settings, environ={}, transport=faspay.transport)
    faspay.answer(inquired())
    assert gateway.inquire(pending_payment()).status is PaymentStatus.PAID


# -- logging ----------------------------------------------------------------------------------


def test_outbound_logs_name_operation_bill_and_code_but_no_secret(
    gateway: FaspayDanaGateway, faspay: Any, caplog: pytest.LogCaptureFixture
) -> None:
    faspay.answer(created())
    faspay.answer({"response_code": "14"})
    with caplog.at_level(logging.DEBUG, logger="gateway_faspay_dana"):
        gateway.create(payment_request())
        with pytest.raises(ProviderRefused):
            gateway.inquire(pending_payment())
    assert f"create bill_no={BILL_NO} response_code=00" in caplog.text
    assert f"inquire bill_no={BILL_NO} response_code=14" in caplog.text
    assert "p@ssw0rd" not in caplog.text
    assert SIGNATURE not in caplog.text
    assert "john@gmail.com" not in caplog.text


def test_json_bodies_are_ascii(gateway: FaspayDanaGateway, faspay: Any) -> None:
    faspay.answer(created())
    gateway.create(payment_request(description="Pembayaran café"))
    body = faspay.requests[0].body
    assert body.isascii()
    assert json.loads(body)["bill_desc"] == "Pembayaran café"


def test_an_inquiry_answer_for_another_bill_is_malformed(
    gateway: FaspayDanaGateway, faspay: Any
) -> None:
    faspay.answer(inquired(bill_no="SOMEONE-ELSE"))
    with pytest.raises(MalformedResponse):
        gateway.inquire(pending_payment())


def test_a_create_answer_for_another_bill_is_an_unknown_outcome(
    config: FaspayConfig, faspay: Any
) -> None:
    gateway = retrying_gateway(config, faspay)
    faspay.answer(created(bill_no="SOMEONE-ELSE"))
    with pytest.raises(OutcomeUnknown):
        gateway.create(payment_request())
