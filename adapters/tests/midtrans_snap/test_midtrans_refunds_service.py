"""Refunds of a Midtrans Snap payment through the payment service, over loopback HTTP against
the Midtrans emulator, on a real SQLite file and a real PostgreSQL schema.

A payment is paid, partially refunded twice, then fully refunded with
:meth:`PaymentService.refund`; the emulator's refund webhooks (two per refund: without, then
with ``bank_confirmed_at``) reach the merchant's notification endpoint duplicated and
reordered. Each refund has exactly one effect (one ``refund_succeeded`` event, one entry in the
ledger), the refunded total never exceeds the paid amount, and a refund whose answer was lost
(the connection reset after Midtrans processed it) is settled by inquiry
(``service.settle_refunds()`` or reconcile) under its own key, never refunded twice.

The stack comes from ``adapters/tests/service/provider_drivers.py`` (the same one the shared
notification scenarios use for ``midtrans_snap``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "service"))

from provider_drivers import MidtransDriver, ProviderStack

from gateway_core import (
    EventKind,
    InvalidRequest,
    Money,
    OutcomeUnknown,
    PaymentStatus,
    RefundStatus,
)

S = PaymentStatus
R = RefundStatus
ORDER = "ORDER-RF"
PAID = "100000"


def IDR(value: str) -> Money:
    return Money(value, "IDR")


@pytest.fixture
def stack(any_store: Any) -> Iterator[ProviderStack]:
    with MidtransDriver().stack(any_store) as built:
        yield built


def _paid(stack: ProviderStack) -> str:
    """A payment of ``PAID`` rupiah, paid by GoPay (refundable by API) and notified."""
    reference: str = stack.start(ORDER, amount=PAID).payment.merchant_reference
    stack.driver.pay(stack, reference)
    stack.wait()
    assert stack.record(reference).status is S.PAID
    return reference


def _refund_deliveries(stack: ProviderStack, reference: str) -> list[dict[str, Any]]:
    return [
        d
        for d in stack.emulator.deliveries(order_id=reference)
        if d["status"] in ("partial_refund", "refund")
    ]


def _post(stack: ProviderStack, body: str) -> requests.Response:
    return requests.post(
        stack.notify_url,
        data=body.encode("utf-8"),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )


def _refund_events(stack: ProviderStack) -> list[Any]:
    stack.service.deliver_events()
    return stack.recorder.of_kind(EventKind.REFUND_SUCCEEDED)


def _state(stack: ProviderStack, reference: str) -> dict[str, Any]:
    """What a duplicate must leave alone: the payment, its transitions, refunds, outbox."""
    record = stack.record(reference)
    return {
        "payment": record,
        "transitions": stack.ledger.transitions(record.id),
        "refunds": stack.service.refunds(stack.gateway_name, reference),
        "outbox": [e.event_id for e in stack.ledger.outbox(record.id)],
    }


def _refunded_total(stack: ProviderStack, reference: str) -> Money:
    total = sum(
        r.amount.minor_units
        for r in stack.service.refunds(stack.gateway_name, reference)
        if r.status is R.SUCCEEDED
    )
    return Money.from_minor_units(total, "IDR")


def test_partial_twice_then_full_with_webhooks_duplicated_and_reordered(
    stack: ProviderStack,
) -> None:
    reference = _paid(stack)
    # Every refund webhook is delivered three times, and the first partial refund's webhook
    # is held back until the next webhook of the order has gone (the later event first).
    stack.emulator.add_fault(
        "notification",
        "duplicate",
        count=20,
        times=2,
        order_id=reference,
        on_status="partial_refund",
    )
    stack.emulator.add_fault(
        "notification", "duplicate", count=20, times=2, order_id=reference, on_status="refund"
    )
    stack.emulator.add_fault("notification", "hold", order_id=reference, on_status="partial_refund")

    first = stack.service.refund(stack.gateway_name, reference, IDR("30000"), key=f"{ORDER}-r1")
    assert first.status is R.SUCCEEDED
    assert stack.record(reference).status is S.PARTIALLY_REFUNDED
    second = stack.service.refund(stack.gateway_name, reference, IDR("20000"), key=f"{ORDER}-r2")
    assert second.status is R.SUCCEEDED
    assert stack.record(reference).status is S.PARTIALLY_REFUNDED
    # What is left is all that can be refunded: a fresh key for the remaining 50,000.
    with pytest.raises(InvalidRequest):
        stack.service.refund(stack.gateway_name, reference, IDR("50001"), key=f"{ORDER}-big")
    rest = stack.service.refund(stack.gateway_name, reference)
    assert (rest.status, rest.amount) == (R.SUCCEEDED, IDR("50000"))
    stack.wait()
    stack.emulator.release_held()
    stack.wait()

    record = stack.record(reference)
    assert record.status is S.REFUNDED
    refunds = stack.service.refunds(stack.gateway_name, reference)
    assert [(r.refund_key, r.amount, r.status) for r in refunds] == [
        (f"{ORDER}-r1", IDR("30000"), R.SUCCEEDED),
        (f"{ORDER}-r2", IDR("20000"), R.SUCCEEDED),
        (rest.refund_key, IDR("50000"), R.SUCCEEDED),
    ]
    assert _refunded_total(stack, reference) == IDR(PAID)  # never above what was paid
    # Midtrans holds the same three refunds, each made once.
    at_midtrans = stack.emulator.transaction(reference)
    assert at_midtrans["transaction_status"] == "refund"
    keys = [r["refund_key"] for r in at_midtrans["refunds"]]
    assert keys == [f"{ORDER}-r1", f"{ORDER}-r2", rest.refund_key]
    # The webhooks came duplicated, the first refund's after the second's: all acknowledged.
    deliveries = _refund_deliveries(stack, reference)
    totals = [json.loads(d["body"])["refund_amount"] for d in deliveries]  # in sending order
    assert totals.index("30000.00") > totals.index("50000.00")
    assert totals.count("50000.00") >= 3
    assert totals.count("100000.00") >= 3
    attempts = [a for d in deliveries for a in d["attempts"]]
    assert attempts
    assert {a["http_status"] for a in attempts} == {200}
    # Exactly one effect per refund, and one per payment move.
    events = _refund_events(stack)
    assert [(e.refund_key, e.event_amount) for e in events] == [
        (f"{ORDER}-r1", IDR("30000")),
        (f"{ORDER}-r2", IDR("20000")),
        (rest.refund_key, IDR("50000")),
    ]
    assert len({e.event_id for e in events}) == 3
    assert stack.recorder.of_kind(EventKind.REFUND_FAILED) == []
    assert stack.recorder.of_kind(EventKind.NEEDS_REVIEW) == []
    moves = [(t.from_status, t.to_status) for t in stack.ledger.transitions(record.id)]
    assert moves == [
        (S.UNKNOWN, S.PENDING),
        (S.PENDING, S.PAID),
        (S.PAID, S.PARTIALLY_REFUNDED),
        (S.PARTIALLY_REFUNDED, S.REFUNDED),
    ]

    # Every refund webhook once more, newest first: acknowledged, nothing changes.
    before = _state(stack, reference)
    for delivery in reversed(deliveries):
        reply = _post(stack, delivery["body"])
        assert reply.status_code == 200, reply.text
    assert _state(stack, reference) == before
    assert len(_refund_events(stack)) == 3


def test_refunds_reported_only_by_webhooks_are_applied_once_each(stack: ProviderStack) -> None:
    """Refunds made at Midtrans' dashboard (not through the service) reach the ledger by their
    webhooks alone, confirmed by Get Status: duplicated, each is recorded once."""
    reference = _paid(stack)
    stack.emulator.add_fault("notification", "duplicate", count=20, times=3, order_id=reference)

    stack.emulator.refund(reference, 40000, refund_key="dash-1", reason="dashboard")
    stack.wait()
    stack.emulator.refund(reference, 60000, refund_key="dash-2", reason="dashboard")
    stack.wait()

    record = stack.record(reference)
    assert record.status is S.REFUNDED
    refunds = stack.service.refunds(stack.gateway_name, reference)
    assert sorted((r.refund_key, r.amount, r.status) for r in refunds) == [
        ("dash-1", IDR("40000"), R.SUCCEEDED),
        ("dash-2", IDR("60000"), R.SUCCEEDED),
    ]
    assert _refunded_total(stack, reference) == IDR(PAID)
    events = _refund_events(stack)
    assert sorted(e.refund_key for e in events) == ["dash-1", "dash-2"]
    with pytest.raises(InvalidRequest):  # nothing is left to refund
        stack.service.refund(stack.gateway_name, reference, IDR("1"))


@pytest.mark.parametrize("settle", ["settle_refunds", "reconcile"])
def test_lost_refund_answer_is_settled_by_inquiry_once(stack: ProviderStack, settle: str) -> None:
    reference = _paid(stack)
    tries = int(stack.settings["max_retries"]) + 1
    # Midtrans processes the refund, but every answer is cut off (connection reset), and its
    # webhooks are lost too: only an inquiry can tell.
    stack.emulator.add_fault("refund", "reset_after_read", count=tries)
    stack.emulator.add_fault("notification", "drop", count=10, order_id=reference)
    key = f"{ORDER}-lost"

    with pytest.raises(OutcomeUnknown):
        stack.service.refund(stack.gateway_name, reference, IDR("25000"), key=key)

    (refund,) = stack.service.refunds(stack.gateway_name, reference)
    assert (refund.refund_key, refund.status) == (key, R.UNKNOWN)
    assert stack.record(reference).status is S.PAID  # nothing applied on a lost answer
    # Sent under its own key each time; Midtrans made one refund of it.
    sent = [e for e in stack.emulator.requests_log("refund") if e.get("order_id") == reference]
    assert len(sent) == tries
    assert [r["refund_key"] for r in stack.emulator.transaction(reference)["refunds"]] == [key]
    # While it is open, no other refund may take the money it holds.
    with pytest.raises(InvalidRequest):
        stack.service.refund(stack.gateway_name, reference, IDR("75001"))

    if settle == "settle_refunds":
        report = stack.service.settle_refunds(grace=timedelta(0))
        assert (report.examined, report.settled, report.resent) == (1, 1, 0)
    else:
        report = stack.service.reconcile(min_interval=0)
        assert report.refunds_settled == 1

    (refund,) = stack.service.refunds(stack.gateway_name, reference)
    assert (refund.status, refund.amount) == (R.SUCCEEDED, IDR("25000"))
    assert stack.record(reference).status is S.PARTIALLY_REFUNDED
    events = _refund_events(stack)
    assert [(e.refund_key, e.event_amount) for e in events] == [(key, IDR("25000"))]
    # Settling again changes nothing, and Midtrans still holds the one refund.
    again = stack.service.settle_refunds(grace=timedelta(0))
    assert (again.examined, again.settled, again.resent) == (0, 0, 0)
    assert [r["refund_key"] for r in stack.emulator.transaction(reference)["refunds"]] == [key]
    assert len(_refund_events(stack)) == 1
    # The rest can still be refunded, exactly up to the paid amount.
    rest = stack.service.refund(stack.gateway_name, reference)
    assert (rest.status, rest.amount) == (R.SUCCEEDED, IDR("75000"))
    assert stack.record(reference).status is S.REFUNDED
    assert _refunded_total(stack, reference) == IDR(PAID)


def test_refund_answer_lost_once_is_retried_under_the_same_key(stack: ProviderStack) -> None:
    """One reset after Midtrans processed the refund: the plugin re-sends the same
    ``refund_key`` and Midtrans answers with the refund it already made (§7.4)."""
    reference = _paid(stack)
    stack.emulator.add_fault("refund", "reset_after_read")

    refund = stack.service.refund(stack.gateway_name, reference, IDR("10000"), key="once")

    assert refund.status is R.SUCCEEDED
    sent = [e for e in stack.emulator.requests_log("refund") if e.get("order_id") == reference]
    assert len(sent) == 2
    assert [r["refund_key"] for r in stack.emulator.transaction(reference)["refunds"]] == ["once"]
    stack.wait()
    assert [e.refund_key for e in _refund_events(stack)] == ["once"]
    assert _refunded_total(stack, reference) == IDR("10000")
