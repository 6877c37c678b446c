"""The Midtrans emulator's refunds over real loopback HTTP (protocol reference §7, §11.6):
partial twice then full, 414 above what remains, ``refund_key`` idempotency (same amount →
the stored answer, another amount → 406), 412 for states and methods, two webhooks per refund,
the direct refund and a bank rejection, dashboard refunds, Get Status' ``refunds[]``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from midtrans_emulator_support import (
    SERVER_KEY,
    MerchantEndpoint,
    core,
    create,
    running_merchant,
    sha512_signature,
)

from gateway_midtrans_snap.emulator import Merchant


@pytest.fixture
def shop() -> Iterator[MerchantEndpoint]:
    yield from running_merchant()


@pytest.fixture
def midtrans_emulator_merchant(shop: MerchantEndpoint) -> Merchant:
    return Merchant(notification_url=shop.url)


@pytest.fixture
def paid(midtrans_emulator: Any, midtrans_control: Any) -> str:
    """A GoPay order of 120 000 paid (settlement)."""
    create(midtrans_emulator.url, "RF-1", 120000)
    midtrans_control.pay("RF-1", "gopay")
    assert midtrans_control.wait_for_deliveries(10)
    return "RF-1"


def refund(base: str, ident: str, **body: Any) -> Any:
    reply = core(base, "POST", ident, "refund", body)
    data = reply.json()
    assert reply.status_code == (200 if data["status_code"] == "200" else int(data["status_code"]))
    return data


def test_partial_twice_then_full_and_nothing_more(
    midtrans_emulator: Any, paid: str, shop: MerchantEndpoint, midtrans_control: Any
) -> None:
    base = midtrans_emulator.url
    first = refund(base, paid, refund_key="r1", amount=50000, reason="size")
    assert (first["status_code"], first["transaction_status"]) == ("200", "partial_refund")
    assert first["refund_amount"] == "50000.00"
    assert first["refund_key"] == "r1"
    second = refund(base, paid, refund_key="r2", amount=30000)
    assert second["transaction_status"] == "partial_refund"
    over = refund(base, paid, refund_key="r3", amount=40001)
    assert over["status_code"] == "414"
    full = refund(base, paid, refund_key="r3", amount=40000)
    assert (full["transaction_status"], full["refund_amount"]) == ("refund", "40000.00")
    assert refund(base, paid, refund_key="r4", amount=1)["status_code"] == "412"
    status = core(base, "GET", paid, "status").json()
    assert status["transaction_status"] == "refund"
    assert status["refund_amount"] == "120000.00"
    assert [r["refund_key"] for r in status["refunds"]] == ["r1", "r2", "r3"]
    assert [r["refund_amount"] for r in status["refunds"]] == ["50000.00", "30000.00", "40000.00"]
    assert all("bank_confirmed_at" in r for r in status["refunds"])
    ids = [r["refund_chargeback_id"] for r in status["refunds"]]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3


@pytest.mark.parametrize("amount", [0, -5, 120001, "abc", 10.5])
def test_an_invalid_amount_is_414(midtrans_emulator: Any, paid: str, amount: Any) -> None:
    assert (
        refund(midtrans_emulator.url, paid, refund_key="bad", amount=amount)["status_code"] == "414"
    )
    assert core(midtrans_emulator.url, "GET", paid, "status").json()["transaction_status"] == (
        "settlement"
    )


def test_refund_key_same_amount_replays_other_amount_is_406(
    midtrans_emulator: Any, paid: str, midtrans_control: Any
) -> None:
    base = midtrans_emulator.url
    first = refund(base, paid, refund_key="k-1", amount=10000)
    assert refund(base, paid, refund_key="k-1", amount=10000) == first
    duplicate = refund(base, paid, refund_key="k-1", amount=20000)
    assert (duplicate["status_code"], duplicate["status_message"]) == ("406", "Duplicate refund ID")
    assert midtrans_control.transaction(paid)["refund_amount"] == "10000.00"


def test_a_failed_key_can_be_retried(
    midtrans_emulator: Any, paid: str, midtrans_control: Any
) -> None:
    midtrans_control.configure_merchant("G123450001", refund_balance=5000)
    assert (
        refund(midtrans_emulator.url, paid, refund_key="bal", amount=10000)["status_code"] == "414"
    )
    midtrans_control.configure_merchant("G123450001", refund_balance=None)
    assert (
        refund(midtrans_emulator.url, paid, refund_key="bal", amount=10000)["status_code"] == "200"
    )


def test_two_webhooks_per_refund_the_second_bank_confirmed(
    midtrans_emulator: Any, paid: str, shop: MerchantEndpoint, midtrans_control: Any
) -> None:
    before = len(shop.bodies())
    refund(midtrans_emulator.url, paid, refund_key="wh-1", amount=20000)
    assert midtrans_control.wait_for_deliveries(10)
    first, second = shop.bodies()[before:]
    for body in (first, second):
        assert body["transaction_status"] == "partial_refund"
        assert body["status_code"] == "200"
        assert body["gross_amount"] == "120000.00"
        assert body["refund_amount"] == "20000.00"
        assert body["signature_key"] == sha512_signature(paid, "200", "120000.00", SERVER_KEY)
    assert "bank_confirmed_at" not in first["refunds"][0]
    assert "bank_confirmed_at" in second["refunds"][0]
    kinds = [d["kind"] for d in midtrans_control.deliveries(order_id=paid, event="refund")]
    assert kinds == ["original", "followup"]


def test_not_refundable_states_and_methods_are_412(
    midtrans_emulator: Any, midtrans_control: Any
) -> None:
    base = midtrans_emulator.url
    create(base, "RF-VA", 50000)
    midtrans_control.pay("RF-VA", "bca_va")
    assert refund(base, "RF-VA", amount=1000)["status_code"] == "412"
    create(base, "RF-PEND", 50000)
    midtrans_control.choose("RF-PEND", "gopay")
    assert refund(base, "RF-PEND", amount=1000)["status_code"] == "412"
    create(base, "RF-SHOPEE", 50000)
    midtrans_control.pay("RF-SHOPEE", "shopeepay")
    assert refund(base, "RF-SHOPEE", amount=1000)["status_code"] == "412"
    assert refund(base, "RF-SHOPEE")["transaction_status"] == "refund"
    assert refund(base, "NOPE", amount=1)["status_code"] == "404"


def test_a_refund_without_key_or_amount_refunds_the_rest(midtrans_emulator: Any, paid: str) -> None:
    base = midtrans_emulator.url
    refund(base, paid, amount=20000)
    rest = refund(base, paid)
    assert (rest["transaction_status"], rest["refund_amount"]) == ("refund", "100000.00")
    assert len(rest["refund_key"]) == 36


def test_direct_refund_and_a_bank_rejection(
    midtrans_emulator: Any, paid: str, shop: MerchantEndpoint, midtrans_control: Any
) -> None:
    base = midtrans_emulator.url
    before = len(shop.bodies())
    midtrans_control.add_fault("refund_direct", "bank_reject")
    rejected = core(
        base, "POST", paid, "refund/online/direct", {"refund_key": "d1", "amount": 1000}
    )
    assert rejected.json()["status_code"] == "202"
    assert rejected.json()["refund_amount"] == "0.00"
    assert rejected.json()["transaction_status"] == "settlement"
    assert midtrans_control.wait_for_deliveries(10)
    assert len(shop.bodies()) == before
    accepted = core(
        base, "POST", paid, "refund/online/direct", {"refund_key": "d1", "amount": 1000}
    )
    assert accepted.json()["status_message"] == "Success, refund request is approved by the bank"
    assert midtrans_control.wait_for_deliveries(10)
    assert len(shop.bodies()) == before + 2


def test_a_dashboard_refund_follows_the_same_rules(
    midtrans_emulator: Any, paid: str, midtrans_control: Any
) -> None:
    made = midtrans_control.refund(paid, 70000, reason="dashboard", refund_key="dash-1")
    assert made["transaction_status"] == "partial_refund"
    with pytest.raises(Exception) as refused:
        midtrans_control.refund(paid, 60000)
    assert "invalid amount" in str(refused.value)
    status = core(midtrans_emulator.url, "GET", paid, "status").json()
    assert status["refunds"][0]["reason"] == "dashboard"
