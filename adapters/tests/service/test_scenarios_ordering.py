"""N3, N4 and N5 (reliability plan §7.3): notifications out of order, a reversal, and two bills
of one order both paid. Over loopback HTTP from the emulator to the merchant's endpoints, on
SQLite and PostgreSQL. A paid payment is never downgraded; money that moves unexpectedly
raises one ``needs_review`` event; the order system sees each lifecycle effect once."""

from __future__ import annotations

from typing import Any

from test_scenarios_support import (
    assert_invariants,
    effects,
    journal,
    notification_for,
    paid_transitions,
    post_notification,
    response_code,
    reviews,
)

from gateway_core import EventKind, PaymentStatus

ORDER = "ORDER-SEQ"


def _acks(stack: Any, bill_no: str) -> list[tuple[str, int | None, str | None]]:
    """(status, HTTP status, response_code) of every delivery attempt the emulator made."""
    return [
        (d["status"], a["http_status"], a["response_code"])
        for d in stack.emulator.deliveries(bill_no)
        for a in d["attempts"]
    ]


def _paid_order(stack: Any, **fault: Any) -> str:
    """Start ``ORDER``, script ``fault`` for its notifications, pay it; the bill number."""
    bill_no: str = stack.start(ORDER).payment.merchant_reference
    if fault:
        stack.emulator.add_fault("notification", bill_no=bill_no, **fault)
    stack.emulator.pay(bill_no)
    stack.wait()
    return bill_no


# -- N3: out of order -------------------------------------------------------------------------


def test_n3_failed_after_paid_keeps_the_payment_paid_and_raises_one_review(stack: Any) -> None:
    bill_no = _paid_order(stack, fault="reorder", status="3")

    assert _acks(stack, bill_no) == [("2", 200, "00"), ("3", 200, "00")]
    record = stack.record(bill_no)
    assert record.status is PaymentStatus.PAID
    assert len(paid_transitions(stack, record)) == 1
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert effects(stack, ORDER, EventKind.FAILED) == 0
    assert reviews(stack, ORDER) == ["failed_after_paid"]
    assert [(e.verdict, e.reason) for e in journal(stack, "notification")] == [
        ("applied", ""),
        ("review", "failed_after_paid"),
    ]
    assert_invariants(stack)


def test_n3_repeated_failed_after_paid_raises_the_review_only_once(stack: Any) -> None:
    bill_no = _paid_order(stack)
    late_failure = notification_for(stack, stack.record(bill_no), status="3")

    replies = [post_notification(stack, late_failure) for _ in range(3)]

    assert [(r.status_code, response_code(r)) for r in replies] == [(200, "00")] * 3
    assert stack.record(bill_no).status is PaymentStatus.PAID
    assert reviews(stack, ORDER) == ["failed_after_paid"]
    assert_invariants(stack)


def test_n3_in_process_after_paid_is_ignored(stack: Any) -> None:
    bill_no = _paid_order(stack, fault="reorder", status="1")

    assert _acks(stack, bill_no) == [("2", 200, "00"), ("1", 200, "00")]
    record = stack.record(bill_no)
    assert record.status is PaymentStatus.PAID
    assert len(paid_transitions(stack, record)) == 1
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert reviews(stack, ORDER) == []
    assert [(e.verdict, e.reason) for e in journal(stack, "notification")] == [
        ("applied", ""),
        ("ignored", "in_process_after_paid"),
    ]
    assert_invariants(stack)


def test_n3_paid_after_cancelled_stays_cancelled_and_raises_one_review(stack: Any) -> None:
    bill_no = stack.start(ORDER).payment.merchant_reference
    stack.emulator.cancel(bill_no)
    stack.wait()
    assert stack.record(bill_no).status is PaymentStatus.CANCELLED

    # Faspay (scripted) now says the cancelled bill was paid; the emulator's bill stays 8.
    stack.emulator.notify(bill_no, status="2")
    stack.wait()

    assert _acks(stack, bill_no) == [("8", 200, "00"), ("2", 200, "00")]
    record = stack.record(bill_no)
    assert record.status is PaymentStatus.CANCELLED
    assert paid_transitions(stack, record) == []
    assert effects(stack, ORDER, EventKind.CANCELLED) == 1
    assert effects(stack, ORDER, EventKind.PAID) == 0
    assert reviews(stack, ORDER) == ["paid_after_cancelled"]
    assert [(e.verdict, e.reason) for e in journal(stack, "notification")] == [
        ("applied", ""),
        ("review", "paid_after_cancelled"),
    ]
    assert_invariants(stack)


# -- N4: reversal -----------------------------------------------------------------------------


def test_n4_reversal_after_paid_moves_paid_to_reversed_once(stack: Any) -> None:
    bill_no = _paid_order(stack)

    stack.emulator.reverse(bill_no)
    stack.wait()
    stack.emulator.notify(bill_no)  # Faspay re-sends the reversal
    stack.wait()

    assert _acks(stack, bill_no) == [("2", 200, "00"), ("4", 200, "00"), ("4", 200, "00")]
    record = stack.record(bill_no)
    assert record.status is PaymentStatus.REVERSED
    assert record.id is not None
    moves = [(t.from_status, t.to_status) for t in stack.ledger.transitions(record.id)]
    assert moves == [
        (PaymentStatus.UNKNOWN, PaymentStatus.PENDING),
        (PaymentStatus.PENDING, PaymentStatus.PAID),
        (PaymentStatus.PAID, PaymentStatus.REVERSED),
    ]
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert effects(stack, ORDER, EventKind.REVERSED) == 1
    assert reviews(stack, ORDER) == []
    assert_invariants(stack)


def test_n4_late_resend_of_the_paid_notification_after_reversal_is_a_plain_duplicate(
    stack: Any,
) -> None:
    bill_no = _paid_order(stack)
    (paid,) = stack.emulator.deliveries(bill_no)
    stack.emulator.reverse(bill_no)
    stack.wait()

    # Faspay's retry of the original "2" (byte for byte) arrives after the reversal.
    reply = post_notification(stack, paid["body"].encode("utf-8"))

    assert (reply.status_code, response_code(reply)) == (200, "00")
    assert stack.record(bill_no).status is PaymentStatus.REVERSED
    assert reviews(stack, ORDER) == []
    assert [e.verdict for e in journal(stack, "notification")][-1] == "duplicate"


# -- N5: a superseded bill paid as well -------------------------------------------------------


def test_n5_both_bills_of_one_order_paid_pays_the_order_once_and_reviews_the_second(
    stack: Any,
) -> None:
    first = stack.start(ORDER, amount="2000")
    second = stack.start(ORDER, amount="3000")  # the cart changed: a new bill
    bill_a = first.payment.merchant_reference
    bill_b = second.payment.merchant_reference
    assert bill_a != bill_b
    assert stack.record(bill_a).superseded
    assert second.payment.attempt == 2

    stack.emulator.pay(bill_a)  # the customer paid the old link after all...
    stack.wait()
    stack.emulator.pay(bill_b)  # ...and the new one
    stack.wait()

    assert _acks(stack, bill_a) == [("2", 200, "00")]
    assert _acks(stack, bill_b) == [("2", 200, "00")]
    assert stack.record(bill_a).status is PaymentStatus.PAID
    assert stack.record(bill_b).status is PaymentStatus.PENDING  # not a second paid
    assert paid_transitions(stack, stack.record(bill_b)) == []
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert [e.merchant_reference for e in stack.recorder.of_kind(EventKind.PAID)] == [bill_a]
    assert reviews(stack, ORDER) == ["paid_twice"]
    (review,) = stack.recorder.of_kind(EventKind.NEEDS_REVIEW)
    assert review.merchant_reference == bill_b  # the bill to refund
    assert ("review", "paid_twice") in [(e.verdict, e.reason) for e in journal(stack)]
    assert_invariants(stack)


def test_n5_reconciling_the_second_paid_bill_raises_no_further_review(stack: Any) -> None:
    first = stack.start(ORDER, amount="2000")
    second = stack.start(ORDER, amount="3000")
    stack.emulator.pay(first.payment.merchant_reference)
    stack.emulator.pay(second.payment.merchant_reference)
    stack.wait()

    bills = [first.payment.merchant_reference, second.payment.merchant_reference]
    # The two notifications raced: whichever was applied first paid the order.
    before = sorted(stack.record(b).status.value for b in bills)
    assert before == ["paid", "pending"]

    report = stack.service.reconcile(min_interval=0)

    assert (report.examined, report.changed) == (1, 0)  # the pending one was asked again
    assert sorted(stack.record(b).status.value for b in bills) == before
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert reviews(stack, ORDER) == ["paid_twice"]
    assert_invariants(stack)
