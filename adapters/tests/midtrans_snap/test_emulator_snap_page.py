"""The Midtrans emulator's payment page in a plain HTTP client (protocol reference §3, §11.8):
the HTML page of a token, its forms, and the redirect to the finish / unfinish / error URL with
``order_id``, ``status_code`` and ``transaction_status`` appended to the URL's own query."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from midtrans_emulator_support import Forms, core, create, press

from gateway_midtrans_snap.emulator import Merchant

FINISH = "https://shop.example.test/pay/finish?cart=8812"
ERROR = "https://shop.example.test/pay/error"


@pytest.fixture
def midtrans_emulator_merchant() -> Merchant:
    return Merchant(
        finish_url="https://shop.example.test/dashboard/finish",
        unfinish_url="https://shop.example.test/dashboard/unfinish",
    )


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def open_page(base: str, order_id: str, **extra: Any) -> str:
    callbacks = {"callbacks": {"finish": FINISH, "error": ERROR}}
    reply = create(base, order_id, 99000, **{**callbacks, **extra})
    assert reply.status_code == 201
    return str(reply.json()["redirect_url"])


def test_the_page_is_html_with_one_form_per_outcome(midtrans_emulator: Any) -> None:
    url = open_page(
        midtrans_emulator.url, "PG-0", enabled_payments=["bank_transfer", "credit_card"]
    )
    page = requests.get(url, timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "PG-0" in page.text
    assert "99,000" in page.text
    forms = Forms()
    forms.feed(page.text)
    assert set(forms.forms) == {
        f"snap-{o}"
        for o in ("pay", "pending", "card", "challenge", "deny", "error", "cancel", "leave")
    }
    assert "bca_va" in page.text
    assert "gopay" not in page.text


def test_pay_redirects_to_the_finish_url_with_the_query(
    midtrans_emulator: Any, midtrans_control: Any
) -> None:
    reply = press(open_page(midtrans_emulator.url, "PG-1"), "pay")
    assert reply.status_code == 302
    location = reply.headers["Location"]
    assert location.startswith("https://shop.example.test/pay/finish?cart=8812&")
    assert query(location) == {
        "cart": "8812",
        "merchant_id": "G123450001",
        "order_id": "PG-1",
        "status_code": "200",
        "transaction_status": "settlement",
    }
    assert midtrans_control.transaction("PG-1")["payment_type"] == "gopay"
    token = midtrans_control.sessions()[0]["token"]
    paid_page = requests.get(f"{midtrans_emulator.url}/snap/v3/redirection/{token}", timeout=10)
    assert paid_page.status_code == 200
    assert "paid" in paid_page.text


def test_pending_instructions_then_paid_through_the_control_api(
    midtrans_emulator: Any, midtrans_control: Any
) -> None:
    reply = press(open_page(midtrans_emulator.url, "PG-2"), "pending", method="bni_va")
    assert query(reply.headers["Location"])["transaction_status"] == "pending"
    assert query(reply.headers["Location"])["status_code"] == "201"
    txn = midtrans_control.transaction("PG-2")
    assert txn["va_numbers"][0]["bank"] == "bni"
    midtrans_control.pay("PG-2")
    assert core(midtrans_emulator.url, "GET", "PG-2", "status").json()["transaction_status"] == (
        "settlement"
    )


def test_card_and_challenge(midtrans_emulator: Any) -> None:
    card = press(open_page(midtrans_emulator.url, "PG-3"), "card")
    assert query(card.headers["Location"])["transaction_status"] == "capture"
    assert query(card.headers["Location"])["status_code"] == "200"
    challenge = press(open_page(midtrans_emulator.url, "PG-4"), "challenge")
    assert query(challenge.headers["Location"])["status_code"] == "201"


def test_denials_return_to_the_page_then_go_to_the_error_url(
    midtrans_emulator: Any, midtrans_control: Any
) -> None:
    url = open_page(midtrans_emulator.url, "PG-5")
    for number in range(1, 4):
        again = press(url, "deny")
        assert again.status_code == 303
        assert again.headers["Location"].endswith(f"?denied={number}")
    last = press(url, "deny")
    assert last.headers["Location"].startswith(ERROR + "?")
    assert query(last.headers["Location"])["transaction_status"] == "deny"
    assert query(last.headers["Location"])["status_code"] == "202"
    assert len(midtrans_control.transactions("PG-5")) == 4
    # a denied order is still open: the customer can pay with another attempt
    assert query(press(url, "pay").headers["Location"])["transaction_status"] == "settlement"


def test_error_goes_to_the_error_url(midtrans_emulator: Any) -> None:
    reply = press(open_page(midtrans_emulator.url, "PG-6"), "error")
    assert reply.headers["Location"].startswith(ERROR + "?")
    assert query(reply.headers["Location"])["transaction_status"] == "failure"


def test_leave_and_cancel_go_to_the_unfinish_url(
    midtrans_emulator: Any, midtrans_control: Any
) -> None:
    left = press(open_page(midtrans_emulator.url, "PG-7"), "leave")
    assert left.headers["Location"] == (
        "https://shop.example.test/dashboard/unfinish?order_id=PG-7"
    )
    url = open_page(midtrans_emulator.url, "PG-8")
    press(url, "pending")
    cancelled = press(url, "cancel")
    assert query(cancelled.headers["Location"])["transaction_status"] == "cancel"
    assert midtrans_control.transaction("PG-8")["transaction_status"] == "cancel"


def test_an_unknown_or_expired_token_shows_the_error_page(
    midtrans_emulator: Any, midtrans_control: Any
) -> None:
    assert (
        requests.get(f"{midtrans_emulator.url}/snap/v3/redirection/nope", timeout=10).status_code
        == 404
    )
    url = open_page(midtrans_emulator.url, "PG-9", page_expiry={"duration": 10, "unit": "minute"})
    assert requests.get(url, timeout=10).status_code == 200
    midtrans_control.advance_clock(601)
    assert requests.get(url, timeout=10).status_code == 404
    assert midtrans_control.deliveries(order_id="PG-9") == []
