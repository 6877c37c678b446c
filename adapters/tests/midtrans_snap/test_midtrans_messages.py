"""The messages the plugin sends (protocol reference §1–§2, §5–§7), checked on a mock
transport: what goes on the wire, not what a provider does with it."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from midtrans_support import API, NOW, SERVER_KEY, SNAP, FakeMidtrans, later, make_gateway

from gateway_core import (
    Customer,
    HttpRequest,
    InvalidRequest,
    LineItem,
    Money,
    PaymentRequest,
    ProviderRefused,
    RedirectInstruction,
)
from gateway_midtrans_snap import return_signature

BASIC = "Basic U0ItTWlkLXNlcnZlci1FbXUxYXRvci1TaGFyZWQtS2V5LTAxOg=="


def _request(**changes: Any) -> PaymentRequest:
    values: dict[str, Any] = {
        "order_reference": "cart-8812",
        "merchant_reference": "ORDER-2025-0001S",
        "amount": Money("250000", "IDR"),
        "customer": Customer("Sari Wulandari", email="sari@example.test", phone="+6281200000001"),
        "description": "Kaos dan topi",
        "return_url": "https://shop.example.test/return/midtrans",
        "created_at": NOW,
        "expires_at": later(60),
    }
    values.update(changes)
    return PaymentRequest(**values)


def _sent_body(request: PaymentRequest, **settings: Any) -> tuple[dict[str, Any], HttpRequest]:
    gateway, transport = make_gateway(**settings)
    gateway.create(request)
    (sent,) = transport.requests
    return json.loads(sent.body), sent


def _total(items: list[dict[str, Any]]) -> int:
    return sum(item["price"] * item["quantity"] for item in items)


def test_create_posts_to_snap_with_basic_auth_and_json() -> None:
    body, sent = _sent_body(_request())
    assert (sent.method, sent.url) == ("POST", f"{SNAP}/snap/v1/transactions")
    assert sent.headers["Authorization"] == BASIC
    assert sent.headers["Accept"] == sent.headers["Content-Type"] == "application/json"
    assert sent.operation == "create"
    assert not sent.idempotent
    assert body["transaction_details"] == {"order_id": "ORDER-2025-0001S", "gross_amount": 250000}
    assert body["custom_field1"] == "cart-8812"


def test_the_reference_example_items_add_up() -> None:
    """§2.9: 2 × 100000 + 60000 − 10000 = 250000, the discount as a negative line."""
    items = (
        LineItem("Kaos Polos", 2, Money("100000", "IDR"), item_id="SKU-TEE"),
        LineItem("Topi", 1, Money("60000", "IDR"), item_id="SKU-CAP"),
    )
    body, _ = _sent_body(_request(items=items))
    lines = body["item_details"]
    assert lines[:2] == [
        {"id": "SKU-TEE", "price": 100000, "quantity": 2, "name": "Kaos Polos"},
        {"id": "SKU-CAP", "price": 60000, "quantity": 1, "name": "Topi"},
    ]
    assert lines[2] == {"id": "adjustment", "price": -10000, "quantity": 1, "name": "Discount"}
    assert _total(lines) == body["transaction_details"]["gross_amount"]


def test_fees_and_other_charges_lines() -> None:
    items = (LineItem("Tea", 3, Money("1000", "IDR")),)
    body, _ = _sent_body(
        _request(amount=Money("5000", "IDR"), items=items, extra_fees=Money("1500", "IDR"))
    )
    lines = body["item_details"]
    assert [line["id"] for line in lines] == ["item-1", "fees", "adjustment"]
    assert lines[2]["name"] == "Other charges"
    assert lines[2]["price"] == 500
    assert _total(lines) == 5000


@pytest.mark.parametrize(
    "items",
    [
        (),
        (LineItem("Half a rupiah", 1, Money("0.50", "IDR")),),
        tuple(LineItem(f"Item {n}", 1, Money("1", "IDR")) for n in range(60)),
    ],
    ids=["no-items", "cents", "too-many"],
)
def test_a_single_summary_line_when_items_cannot_be_sent(items: tuple[LineItem, ...]) -> None:
    body, _ = _sent_body(_request(items=items))
    assert body["item_details"] == [
        {"id": "order", "price": 250000, "quantity": 1, "name": "Kaos dan topi"}
    ]


def test_item_names_are_cut_and_cleaned() -> None:
    items = (LineItem("X" * 80 + "|", 1, Money("250000", "IDR")),)
    body, _ = _sent_body(_request(items=items))
    assert body["item_details"][0]["name"] == "X" * 50


def test_customer_details() -> None:
    body, _ = _sent_body(_request())
    assert body["customer_details"] == {
        "first_name": "Sari",
        "last_name": "Wulandari",
        "email": "sari@example.test",
        "phone": "+6281200000001",
    }


def test_expiry_from_the_request() -> None:
    body, _ = _sent_body(_request(expires_at=NOW + timedelta(minutes=90, seconds=1)))
    assert body["expiry"] == {
        "start_time": "2025-06-01 10:00:00 +0700",
        "unit": "minute",
        "duration": 91,
    }


@pytest.mark.parametrize("minutes", [2, 60 * 24 * 8, -10])
def test_expiry_outside_snaps_bounds_is_refused_before_sending(minutes: int) -> None:
    gateway, transport = make_gateway()
    with pytest.raises(InvalidRequest) as info:
        gateway.check_request(_request(expires_at=later(minutes)))
    assert info.value.field == "expires_at"
    with pytest.raises(InvalidRequest):
        gateway.create(_request(expires_at=later(minutes)))
    assert transport.requests == []


def test_enabled_payments_from_the_method_or_the_configuration() -> None:
    body, _ = _sent_body(_request(method="bca_va"))
    assert body["enabled_payments"] == ["bca_va"]
    body, _ = _sent_body(_request(method="cstore"))
    assert body["enabled_payments"] == ["alfamart", "indomaret"]
    body, _ = _sent_body(_request(), enabled_payments=["gopay", "other_qris"])
    assert body["enabled_payments"] == ["gopay", "other_qris"]
    body, _ = _sent_body(_request())
    assert "enabled_payments" not in body


def test_payment_methods_list_what_the_configuration_enables() -> None:
    gateway, _ = make_gateway(enabled_payments=["gopay", "bca_va"])
    assert gateway.payment_methods == ("gopay", "bca_va")
    with pytest.raises(InvalidRequest) as info:
        gateway.check_request(_request(method="credit_card"))
    assert info.value.field == "method"
    everything, _ = make_gateway()
    assert {"credit_card", "bca_va", "gopay", "bank_transfer"} <= set(everything.payment_methods)


def test_the_return_links_carry_the_plugins_signature() -> None:
    body, _ = _sent_body(_request(return_url="https://shop.example.test/return?x=1"))
    finish = body["callbacks"]["finish"]
    assert body["callbacks"]["error"] == finish
    query = dict(parse_qsl(urlsplit(finish).query))
    assert query == {
        "x": "1",
        "snap_ref": "ORDER-2025-0001S",
        "snap_sig": return_signature("ORDER-2025-0001S", SERVER_KEY),
    }


def test_a_return_url_too_long_for_midtrans_is_refused() -> None:
    gateway, _ = make_gateway()
    with pytest.raises(InvalidRequest) as info:
        gateway.check_request(_request(return_url="https://shop.example/" + "r" * 230))
    assert info.value.field == "return_url"


@pytest.mark.parametrize(
    ("amount", "field"),
    [(Money("10.50", "IDR"), "amount"), (Money("10", "USD"), "amount")],
)
def test_idr_in_whole_rupiah_only(amount: Money, field: str) -> None:
    gateway, _ = make_gateway()
    with pytest.raises(InvalidRequest) as info:
        gateway.check_request(_request(amount=amount))
    assert info.value.field == field


def test_idempotency_key_and_notification_override_headers() -> None:
    _, sent = _sent_body(
        _request(idempotency_key="k" * 32), notification_url="https://shop.example.test/notify"
    )
    assert sent.headers["Idempotency-Key"] == "k" * 32
    assert sent.headers["X-Override-Notification"] == "https://shop.example.test/notify"
    _, sent = _sent_body(_request(idempotency_key="k" * 47))  # Midtrans ignores > 46
    assert "Idempotency-Key" not in sent.headers
    assert "X-Override-Notification" not in sent.headers


def test_create_answers_a_pending_payment_with_the_page() -> None:
    gateway, _ = make_gateway()
    payment = gateway.create(_request())
    assert payment.provider_reference == payment.merchant_reference == "ORDER-2025-0001S"
    assert isinstance(payment.redirect, RedirectInstruction)
    assert payment.redirect.url == payment.provider_data["redirect_url"]
    assert payment.redirect.url.endswith(payment.provider_data["token"])
    assert "redirection" not in repr(payment.redirect)  # masked: the token opens the page


def test_re_creating_the_same_order_answers_a_new_token() -> None:
    """§2.10: the payment service's re-send of an ambiguous create (same order id)."""
    fake = FakeMidtrans()
    gateway, _ = make_gateway(fake)
    first = gateway.create(_request())
    second = gateway.create(_request())
    assert first.provider_reference == second.provider_reference
    assert first.provider_data["token"] != second.provider_data["token"]


def test_a_create_for_a_utilized_order_id_is_refused_naming_what_midtrans_holds() -> None:
    fake = FakeMidtrans()
    gateway, transport = make_gateway(fake)
    gateway.create(_request())
    fake.choose("ORDER-2025-0001S")
    with pytest.raises(ProviderRefused) as info:
        gateway.create(_request())
    assert info.value.provider_code == "utilized"
    assert "'pending'" in str(info.value)
    assert transport.requests[-1].url == f"{API}/v2/ORDER-2025-0001S/status"


def test_core_requests_encode_the_order_id_as_one_path_segment() -> None:
    gateway, transport = make_gateway()
    payment = gateway.create(_request())
    gateway.inquire(payment)
    (status,) = [r for r in transport.requests if r.operation == "inquire"]
    assert (status.method, status.url) == ("GET", f"{API}/v2/ORDER-2025-0001S/status")
    assert status.idempotent
    assert status.headers["Authorization"] == BASIC


def test_decimal_amounts_go_out_as_integers() -> None:
    body, _ = _sent_body(_request(amount=Money(Decimal("99000.00"), "IDR")))
    assert body["transaction_details"]["gross_amount"] == 99000
    assert isinstance(body["item_details"][0]["price"], int)
