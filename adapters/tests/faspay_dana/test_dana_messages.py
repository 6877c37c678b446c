"""Message classes: the DANA example built field for field, round trips, and every §14
discrepancy that affects parsing.

The plugin codes each message in the direction it uses; the reverse direction (Faspay's side)
comes from the helper module ``faspay_side``.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

import attrs
import pytest
from faspay_side import read_post_data_request

from gateway_core import Customer, LineItem, Money, PaymentRequest
from gateway_faspay_dana import (
    JAKARTA,
    Address,
    CancelResponse,
    ChannelInquiryResponse,
    FaspayConfig,
    InquiryResponse,
    InvalidRequest,
    PayloadError,
    PaymentChannel,
    PostDataItem,
    PostDataRequest,
    PostDataResponse,
    ReturnQuery,
)

NOW = datetime(2020, 12, 19, 6, 0, 0, tzinfo=JAKARTA)

# The DANA integration guide's request, verbatim (reference/faspay-dana-integration-guide.txt).
GUIDE_REQUEST: dict[str, Any] = {
    "request": "Post Data Transaction",
    "merchant_id": "99999",
    "merchant": "Sophia Store",
    "bill_no": "20201222023626",
    "bill_reff": "20200324_02-2286704_336",
    "bill_date": "2020-12-19 06:04:29",
    "bill_expired": "2020-12-19 07:04:29",
    "bill_desc": "Payment Online Via Faspay",
    "bill_currency": "IDR",
    "bill_gross": "100000",
    "bill_miscfee": "100000",
    "bill_total": "200000",
    "cust_no": "01",
    "cust_name": "John Doe",
    "payment_channel": "819",
    "pay_type": "01",
    "msisdn": "8562927907",
    "email": "john@gmail.com",
    "terminal": "10",
    "billing_address": "Jl Sabang 37",
    "billing_address_city": "Jakarta",
    "billing_address_region": "DKI Jakarta",
    "billing_address_state": "Indonesia",
    "billing_address_poscode": "10170",
    "billing_address_country_code": "ID",
    "receiver_name_for_shipping": "John Doe",
    "shipping_address": "Jl. Sabang 37",
    "shipping_address_city": "Jakarta",
    "shipping_address_region": "DKI Jakarta",
    "shipping_address_state": "Indonesia",
    "shipping_address_poscode": "10170",
    "item": {
        "id": "A001",
        "product": "Invoice #2286704",
        "qty": "1",
        "amount": "100000",
        "payment_plan": "01",
        "merchant_id": "99999",
        "tenor": "00",
    },
    "reserve1": "",
    "reserve2": "",
    "signature": "7ad74a4aa1c86aeb1308ea5c44e4aa0f4d6ed4e7",
}

GUIDE_RESPONSE: dict[str, Any] = {
    "response": "Transmission of Purchase Detail Info",
    "trx_id": "9999981900021790",
    "merchant_id": "99999",
    "merchant": "Sophia Store",
    "bill_no": "20201222023626",
    "bill_items": {
        "id": "A001",
        "product": "Invoice #2286704",
        "qty": "1",
        "amount": "100000",
        "payment_plan": "01",
        "merchant_id": "99999",
        "tenor": "00",
    },
    "response_code": "00",
    "response_desc": "Success",
    "redirect_url": "https://dev.faspay.co.id/pws/100003/0830000010100000/"
    "7ad74a4aa1c86aeb1308ea5c44e4aa0f4d6ed4e7?trx_id=9999981900021790&merchant_id=99999"
    "&bill_no=20201222023626",
}


def dana_request(**changes: Any) -> PaymentRequest:
    """The guide's order as a PaymentRequest: Rp 1.000 of goods plus Rp 1.000 of fees."""
    values: dict[str, Any] = {
        "order_reference": "20200324_02-2286704_336",
        "amount": Money("2000", "IDR"),
        "extra_fees": Money("1000", "IDR"),
        "customer": Customer(
            "John Doe", email="john@gmail.com", phone="+62 856-2927-907", customer_id="01"
        ),
        "description": "Payment Online Via Faspay",
        "return_url": "https://shop.example/return",
        "merchant_reference": "20201222023626",
        "created_at": datetime(2020, 12, 19, 6, 4, 29, tzinfo=JAKARTA),
        "expires_at": datetime(2020, 12, 19, 7, 4, 29, tzinfo=JAKARTA),
        "items": [LineItem("Invoice #2286704", 1, Money("1000", "IDR"), item_id="A001")],
    }
    values.update(changes)
    return PaymentRequest(**values)


@pytest.fixture
def built(config: FaspayConfig) -> dict[str, Any]:
    return PostDataRequest.from_payment_request(dana_request(), config, now=NOW).to_payload()


# -- the DANA example --------------------------------------------------------------------


def test_dana_request_has_the_guides_keys(built: dict[str, Any]) -> None:
    assert list(built) == list(GUIDE_REQUEST)


def test_dana_request_has_the_guides_amounts(built: dict[str, Any]) -> None:
    assert (built["bill_gross"], built["bill_miscfee"], built["bill_total"]) == (
        "100000",
        "100000",
        "200000",
    )


def test_dana_request_has_the_guides_signature(built: dict[str, Any]) -> None:
    assert built["signature"] == "7ad74a4aa1c86aeb1308ea5c44e4aa0f4d6ed4e7"


def test_dana_request_matches_the_guide_field_for_field(built: dict[str, Any]) -> None:
    # What a PaymentRequest cannot carry (addresses) is sent empty; pay_type and
    # payment_plan use the documented one-character "1" (the guide writes "01", §14 #7);
    # item is an array (§14 #8).
    expected = copy.deepcopy(GUIDE_REQUEST)
    for key in list(expected):
        if key.startswith(("billing_address", "shipping_address")):
            expected[key] = ""
    expected["pay_type"] = "1"
    expected["item"] = [{**GUIDE_REQUEST["item"], "payment_plan": "1"}]
    assert built == expected


def test_guide_request_parses_with_its_item_object_and_01_pay_type() -> None:
    parsed = read_post_data_request(GUIDE_REQUEST)
    assert parsed.pay_type == "01"
    assert parsed.bill_total == Money("2000", "IDR")
    assert parsed.items == (
        PostDataItem(
            product="Invoice #2286704",
            qty=1,
            amount=Money("1000", "IDR"),
            merchant_id="99999",
            item_id="A001",
            payment_plan="01",
        ),
    )
    assert parsed.billing == Address(
        "Jl Sabang 37", "Jakarta", "DKI Jakarta", "Indonesia", "10170", "ID"
    )


def test_guide_request_round_trips_through_the_message_class() -> None:
    parsed = read_post_data_request(GUIDE_REQUEST)
    again = parsed.to_payload()
    assert again == {**GUIDE_REQUEST, "item": [GUIDE_REQUEST["item"]]}


def test_legacy_decimal_amounts_and_numbers_parse_in_requests() -> None:
    payload = {**GUIDE_REQUEST, "bill_total": "2000.00", "merchant_id": 99999, "item": []}
    payload["item"] = [{**GUIDE_REQUEST["item"], "amount": "1000.00", "qty": 1}]
    parsed = read_post_data_request(payload)
    assert parsed.bill_total == Money("2000", "IDR")
    assert parsed.items[0].amount == Money("1000", "IDR")


def test_guide_response_reads_trx_id_and_redirect_url() -> None:
    response = PostDataResponse.from_payload(GUIDE_RESPONSE)
    assert response.succeeded
    assert response.trx_id == "9999981900021790"
    assert response.redirect_url == GUIDE_RESPONSE["redirect_url"]
    assert response.bill_items[0].payment_plan == "01"


def test_response_bill_items_may_be_an_array() -> None:
    payload = {**GUIDE_RESPONSE, "bill_items": [GUIDE_RESPONSE["bill_items"]] * 2}
    assert len(PostDataResponse.from_payload(payload).bill_items) == 2


def test_an_odd_bill_items_echo_never_fails_a_created_bill() -> None:
    payload = {**GUIDE_RESPONSE, "bill_items": "n/a"}
    assert PostDataResponse.from_payload(payload).bill_items == ()


# -- building from a PaymentRequest ---------------------------------------------------


def test_without_items_one_item_carries_the_gross_amount(config: FaspayConfig) -> None:
    message = PostDataRequest.from_payment_request(
        dana_request(items=(), extra_fees=None), config, now=NOW
    )
    assert message.items == (
        PostDataItem(
            product="Payment Online Via Faspay",
            qty=1,
            amount=Money("2000", "IDR"),
            merchant_id="99999",
        ),
    )
    assert message.bill_miscfee == Money(0, "IDR")
    assert message.bill_gross == message.bill_total


def test_expiry_defaults_to_the_configured_window(config: FaspayConfig) -> None:
    message = PostDataRequest.from_payment_request(
        dana_request(created_at=None, expires_at=None), config, now=NOW
    )
    assert message.bill_date == NOW
    assert message.bill_expired == NOW + timedelta(minutes=60)


def test_a_customer_without_id_is_sent_as_guest(config: FaspayConfig) -> None:
    request = dana_request(customer=Customer("Ani", email="ani@example.com", phone="0812345678"))
    assert PostDataRequest.from_payment_request(request, config, now=NOW).cust_no == "guest"


def test_bill_reff_defaults_to_the_bill_no(config: FaspayConfig) -> None:
    request = dana_request(order_reference="")
    assert PostDataRequest.from_payment_request(request, config, now=NOW).bill_reff == (
        "20201222023626"
    )


BAD_REQUESTS = [
    pytest.param({"merchant_reference": ""}, "bill_no", id="no bill_no"),
    pytest.param({"merchant_reference": "x" * 33}, "bill_no", id="bill_no over 32"),
    pytest.param({"merchant_reference": "INV/1"}, "bill_no", id="bill_no with a slash"),
    pytest.param({"description": "d" * 129}, "bill_desc", id="description over 128"),
    pytest.param({"description": ""}, "bill_desc", id="no description"),
    pytest.param(
        {"expires_at": datetime(2021, 1, 18, 6, 4, 30, tzinfo=JAKARTA)},
        "bill_expired",
        id="expiry over 30 days",
    ),
    pytest.param(
        {"expires_at": datetime(2020, 12, 19, 6, 4, 29, tzinfo=JAKARTA)},
        "bill_expired",
        id="expiry not after bill_date",
    ),
    pytest.param(
        {
            "created_at": datetime(2020, 12, 18, 5, 0, 0, tzinfo=JAKARTA),
            "expires_at": datetime(2020, 12, 18, 6, 0, 0, tzinfo=JAKARTA),
        },
        "bill_expired",
        id="expiry in the past",
    ),
    pytest.param({"customer": Customer("John Doe", phone="08562927907")}, "email", id="no e-mail"),
    pytest.param({"customer": Customer("John Doe", email="j@x.id")}, "msisdn", id="no phone"),
    pytest.param(
        {"customer": Customer("", email="j@x.id", phone="08562927907")},
        "cust_name",
        id="no customer name",
    ),
    pytest.param(
        {"amount": Money("10", "USD"), "extra_fees": None, "items": ()},
        "bill_currency",
        id="not IDR",
    ),
    pytest.param({"extra_fees": Money("3000", "IDR")}, "bill_miscfee", id="fees over amount"),
    pytest.param(
        {"items": [LineItem("p" * 51, 1, Money("1000", "IDR"))]}, "product", id="product over 50"
    ),
    pytest.param(
        {"amount": Money.from_minor_units(10**15, "IDR"), "extra_fees": None, "items": ()},
        "bill_total",
        id="amount over 15 digits",
    ),
]


@pytest.mark.parametrize(("changes", "field"), BAD_REQUESTS)
def test_field_rules_are_enforced_before_sending(
    config: FaspayConfig, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        PostDataRequest.from_payment_request(dana_request(**changes), config, now=NOW)
    assert info.value.field == field
    assert info.value.provider == "faspay_dana"


def test_an_order_reference_over_32_characters_is_shortened_for_bill_reff(
    config: FaspayConfig,
) -> None:
    """Issue 9, item 8: a long order reference used to make every create fail."""
    long_a, long_b = "ORDER-" + "a" * 40, "ORDER-" + "a" * 39 + "b"
    message_a = PostDataRequest.from_payment_request(
        dana_request(order_reference=long_a), config, now=NOW
    )
    message_b = PostDataRequest.from_payment_request(
        dana_request(order_reference=long_b), config, now=NOW
    )
    assert len(message_a.bill_reff) == len(message_b.bill_reff) == 32
    assert message_a.bill_reff.startswith(long_a[:21])
    assert message_a.bill_reff != message_b.bill_reff
    short = PostDataRequest.from_payment_request(
        dana_request(order_reference="ORDER-1001"), config, now=NOW
    )
    assert short.bill_reff == "ORDER-1001"


def test_invalid_request_is_a_value_error_naming_the_bill(config: FaspayConfig) -> None:
    with pytest.raises(ValueError) as info:
        PostDataRequest.from_payment_request(dana_request(description="d" * 200), config, now=NOW)
    assert isinstance(info.value, InvalidRequest)
    assert info.value.merchant_reference == "20201222023626"


# -- round trips --------------------------------------------------------------------------

# The other messages: test_dana_round_trips.py.


def test_post_data_request_round_trips(config: FaspayConfig) -> None:
    message = PostDataRequest.from_payment_request(dana_request(), config, now=NOW)
    message = attrs.evolve(message, billing=Address("Jl Sabang 37", country_code="ID"))
    assert read_post_data_request(message.to_payload()) == message


# -- §14 discrepancies that affect parsing ----------------------------------------------------


@pytest.mark.parametrize("key", ["bill_ref", "bill_reff"])
def test_return_reads_bill_ref_and_bill_reff(key: str) -> None:  # §14 #1
    query = ReturnQuery.from_query({"bill_no": "4370", "status": "0", key: "REF-1"})
    assert query.bill_reff == "REF-1"


def test_return_refuses_disagreeing_bill_ref_and_bill_reff() -> None:  # §14 #1
    with pytest.raises(PayloadError):
        ReturnQuery.from_query(
            {"bill_no": "4370", "status": "0", "bill_ref": "A", "bill_reff": "B"}
        )


@pytest.mark.parametrize("plan", ["1", "01", 1])
def test_payment_plan_1_and_01_are_both_read(plan: object) -> None:  # §14 #7
    item = PostDataItem.from_payload({**GUIDE_REQUEST["item"], "payment_plan": plan})
    assert item.payment_plan in ("1", "01")


@pytest.mark.parametrize("pay_type", ["1", "01"])
def test_pay_type_1_and_01_are_both_read(pay_type: str) -> None:  # §14 #7
    assert read_post_data_request({**GUIDE_REQUEST, "pay_type": pay_type}).pay_type == pay_type


@pytest.mark.parametrize(
    "item", [GUIDE_REQUEST["item"], [GUIDE_REQUEST["item"]]], ids=["object", "array"]
)
def test_item_is_read_as_an_object_or_an_array(item: object) -> None:  # §14 #8
    assert len(read_post_data_request({**GUIDE_REQUEST, "item": item}).items) == 1


def test_channels_are_read_from_the_nested_array() -> None:  # §14 #12
    payload = {
        "response": "Request List of Payment Gateway",
        "merchant_id": "98765",
        "merchant": "Faspay sandbox",
        "payment_channel": [
            {"pg_code": "707", "pg_name": "ALFAGROUP"},
            {"pg_code": "819", "pg_name": "DANA"},
        ],
        "response_code": "00",
        "response_desc": "Sukses",
    }
    channels = ChannelInquiryResponse.from_payload(payload).channels
    assert channels == (PaymentChannel("707", "ALFAGROUP"), PaymentChannel("819", "DANA"))


@pytest.mark.parametrize(
    "extra",
    [
        {"payment_channel": {"pg_code": "819", "pg_name": "DANA"}},
        {"pg_code": "819", "pg_name": "DANA"},
    ],
    ids=["single object", "flat as in the docs table"],
)
def test_a_single_or_flat_channel_is_read_too(extra: dict[str, Any]) -> None:  # §14 #12
    payload = {"response_code": "00", **extra}
    assert ChannelInquiryResponse.from_payload(payload).channels == (PaymentChannel("819", "DANA"),)


def test_cancel_reason_is_read_from_payment_cancel() -> None:  # §14 #13
    payload = {"response_code": "00", "payment_status_code": "8", "payment_cancel": "Barang Habis"}
    assert CancelResponse.from_payload(payload).payment_cancel == "Barang Habis"


def test_cancel_reason_falls_back_to_the_tables_payment_cancel_msg() -> None:  # §14 #13
    payload = {"response_code": "00", "payment_status_code": "8", "payment_cancel_msg": "Habis"}
    assert CancelResponse.from_payload(payload).payment_cancel == "Habis"


def test_docs_expired_cancel_example_parses() -> None:  # §9, §14 #14
    payload = {
        "response": "Canceling Payment",
        "trx_id": "9999970700002782",
        "merchant_id": "99999",
        "merchant": "Sophia Store",
        "bill_no": "8226",
        "trx_status_code": "3",
        "trx_status_desc": "Order Expired",
        "payment_status_code": "7",
        "payment_status_desc": "Payment Expired",
        "payment_cancel_date": [],
        "payment_cancel": "Barang Habis",
        "response_code": "54",
        "response_desc": "Transaksi Anda telah kedaluwarsa.",
    }
    response = CancelResponse.from_payload(payload)
    assert response.response_code == "54"
    assert response.payment_cancel_date == ""


EMPTY_FORMS = [
    pytest.param({"payment_reff": ""}, id="empty string"),
    pytest.param({"payment_reff": []}, id="empty array"),
    pytest.param({"payment_reff": {}}, id="empty object"),
    pytest.param({"payment_reff": None}, id="null"),
    pytest.param({"payment_reff": "null"}, id="the string null"),
    pytest.param({}, id="missing"),
]


@pytest.mark.parametrize("form", EMPTY_FORMS)
def test_empty_payment_reff_has_many_forms(form: dict[str, Any]) -> None:  # §14 #14, #15
    payload = {
        "response_code": "00",
        "payment_status_code": "0",
        "payment_date": [],
        **form,
    }
    response = InquiryResponse.from_payload(payload)
    assert response.payment_reff == ""
    assert response.payment_date == ""


def test_response_error_wrapper_reads_as_a_failed_response() -> None:  # §2.4
    payload = {"response_error": {"response_code": "40", "response_desc": "Not registered"}}
    for cls in (PostDataResponse, InquiryResponse, CancelResponse, ChannelInquiryResponse):
        response = cls.from_payload(payload)
        assert (response.response_code, response.response_desc) == ("40", "Not registered")


def test_a_response_error_wrapper_is_a_failure_even_without_a_code() -> None:
    response = PostDataResponse.from_payload({"response_error": {"response_desc": "?"}})
    assert response.response_code == ""
    assert not response.succeeded


def test_a_successful_post_data_response_must_carry_trx_id() -> None:
    with pytest.raises(PayloadError):
        PostDataResponse.from_payload({"response_code": "00", "bill_no": "1"})


def test_a_failed_response_need_not_carry_the_success_fields() -> None:
    response = InquiryResponse.from_payload({"response_code": "14", "response_desc": "Invalid"})
    assert response.payment_status_code == ""


def test_numbers_are_tolerated_in_numeric_response_fields() -> None:
    payload = {"response_code": 0, "payment_status_code": 2, "trx_id": 9876530200004184}
    response = InquiryResponse.from_payload(payload)
    assert (response.response_code, response.payment_status_code) == ("00", "2")
    assert response.trx_id == "9876530200004184"


@pytest.mark.parametrize("value", [True, 1.5, ["x"], {"a": 1}])
def test_other_types_are_refused_in_responses(value: object) -> None:
    with pytest.raises(PayloadError):
        InquiryResponse.from_payload({"response_code": "00", "payment_status_code": value})
