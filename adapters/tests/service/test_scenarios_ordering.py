"""N3, N4 and N5 (reliability plan §7.3): notifications out of order, a reversal, and two bills
of one order both paid. Over loopback HTTP from the emulator to the merchant's endpoints, for
every provider (``faspay_dana`` on SQLite and PostgreSQL, ``midtrans_snap`` on SQLite: the same
test code, parameterised through ``provider_drivers``). A paid payment is never downgraded;
money that moves unexpectedly raises one ``needs_review`` event; the order system sees each
lifecycle effect once.

Where the providers differ the test says so: Faspay signs a notification's status, so a
verified late "failed" or a "paid" after "cancelled" is money moving unexpectedly (a review);
Midtrans signs only ``order_id + status_code + gross_amount``, so every notification is
confirmed by Get Status first and a stale or contradicting one changes nothing (no review: the
provider's own record is what the ledger follows).
"""

from __future__ import annotations

from typing import Any

import pytest
from test_scenarios_support import (
    accepted,
    assert_invariants,
    effects,
    journal,
    notification_for,
    paid_transitions,
    post_notification,
    provider_stack,
    reviews,
)

from gateway_core import EventKind, PaymentStatus

ORDER = "ORDER-SEQ"
S = PaymentStatus

stack = provider_stack()


def _acks(stack: Any, bill_no: str) -> list[tuple[PaymentStatus, bool]]:
    """(status reported, acknowledged) of every delivery attempt the emulator made, the
    ``pending`` webhooks (Midtrans announces a chosen method) left out."""
    driver = stack.driver
    return [
        (d["core_status"], driver.attempt_accepted(a))
        for d in driver.deliveries(stack, bill_no)
        if d["core_status"] is not S.PENDING
        for a in d["attempts"]
    ]


def _paid_order(stack: Any, **fault: Any) -> str:
    """Start ``ORDER``, script ``fault`` for its paid notification, pay it; the reference."""
    bill_no: str = stack.start(ORDER).payment.merchant_reference
    if fault:
        stack.driver.fault(stack, fault.pop("fault"), bill_no, on_status=S.PAID, **fault)
    stack.driver.pay(stack, bill_no)
    stack.wait()
    return bill_no


def _notifications(stack: Any) -> list[tuple[str, str]]:
    return [(e.verdict, e.reason) for e in journal(stack, "notification")]


# -- N3: out of order -------------------------------------------------------------------------


def test_n3_failed_after_paid_keeps_the_payment_paid_and_raises_one_review(stack: Any) -> None:
    bill_no = _paid_order(stack, fault="reorder", status=S.FAILED)

    assert _acks(stack, bill_no) == [(S.PAID, True), (S.FAILED, True)]
    record = stack.record(bill_no)
    assert record.status is PaymentStatus.PAID
    assert len(paid_transitions(stack, record)) == 1
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert effects(stack, ORDER, EventKind.FAILED) == 0
    if stack.driver.status_signed:
        assert reviews(stack, ORDER) == ["failed_after_paid"]
        assert _notifications(stack) == [("applied", ""), ("review", "failed_after_paid")]
    else:  # Get Status still says settled: the stale "deny" is acknowledged, nothing changes
        assert reviews(stack, ORDER) == []
        assert ("review", "failed_after_paid") not in _notifications(stack)
    assert_invariants(stack)


def test_n3_repeated_failed_after_paid_raises_the_review_only_once(stack: Any) -> None:
    bill_no = _paid_order(stack)
    late_failure = notification_for(stack, stack.record(bill_no), S.FAILED)

    replies = [post_notification(stack, late_failure) for _ in range(3)]

    assert [accepted(stack, r) for r in replies] == [True] * 3
    assert stack.record(bill_no).status is PaymentStatus.PAID
    expected = ["failed_after_paid"] if stack.driver.status_signed else []
    assert reviews(stack, ORDER) == expected
    assert_invariants(stack)


def test_n3_in_process_after_paid_is_ignored(stack: Any) -> None:
    bill_no = _paid_order(stack, fault="reorder", status=S.IN_PROCESS)

    # (Midtrans' stale message is a "pending", left out of _acks: its attempt is checked here.)
    stale = stack.driver.deliveries(stack, bill_no)[-1]
    assert stale["core_status"] in (S.IN_PROCESS, S.PENDING)
    assert [stack.driver.attempt_accepted(a) for a in stale["attempts"]] == [True]
    record = stack.record(bill_no)
    assert record.status is PaymentStatus.PAID
    assert len(paid_transitions(stack, record)) == 1
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert reviews(stack, ORDER) == []
    if stack.driver.status_signed:
        assert _notifications(stack) == [("applied", ""), ("ignored", "in_process_after_paid")]
    assert_invariants(stack)


def test_n3_paid_after_cancelled_stays_cancelled_and_raises_one_review(stack: Any) -> None:
    bill_no = stack.start(ORDER).payment.merchant_reference
    stack.driver.cancel(stack, bill_no)
    stack.wait()
    assert stack.record(bill_no).status is PaymentStatus.CANCELLED

    # The provider (scripted) now says the cancelled payment was paid; its records stay
    # cancelled.
    stack.driver.notify(stack, bill_no, S.PAID)
    stack.wait()

    if stack.driver.status_signed:
        assert _acks(stack, bill_no) == [(S.CANCELLED, True), (S.PAID, True)]
    else:
        # An unsigned "paid" Get Status does not confirm is refused (a non-2xx): Midtrans
        # retries it (503: four retries) and every copy is refused again.
        acks = _acks(stack, bill_no)
        assert acks[0] == (S.CANCELLED, True)
        assert acks[1:] == [(S.PAID, False)] * (len(acks) - 1)
        assert len(acks) - 1 == 5
    record = stack.record(bill_no)
    assert record.status is PaymentStatus.CANCELLED
    assert paid_transitions(stack, record) == []
    assert effects(stack, ORDER, EventKind.CANCELLED) == 1
    assert effects(stack, ORDER, EventKind.PAID) == 0
    if stack.driver.status_signed:
        assert reviews(stack, ORDER) == ["paid_after_cancelled"]
        assert _notifications(stack)[-2:] == [("applied", ""), ("review", "paid_after_cancelled")]
    else:  # Get Status says cancelled: the claim is not believed, nothing to review
        assert reviews(stack, ORDER) == []
        refused = [("rejected", "status_unconfirmed")] * 5
        assert _notifications(stack)[-5:] == refused
    assert_invariants(stack)


# -- N4: reversal -----------------------------------------------------------------------------


def test_n4_reversal_after_paid_moves_paid_to_reversed_once(stack: Any) -> None:
    bill_no = _paid_order(stack)

    stack.driver.reverse(stack, bill_no)
    stack.wait()
    stack.driver.notify(stack, bill_no)  # the provider re-sends the reversal
    stack.wait()

    assert _acks(stack, bill_no) == [(S.PAID, True), (S.REVERSED, True), (S.REVERSED, True)]
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
    (paid,) = stack.driver.deliveries(stack, bill_no, S.PAID)
    stack.driver.reverse(stack, bill_no)
    stack.wait()
    before = len(journal(stack, "notification"))

    # The provider's retry of the original paid message (byte for byte) arrives after the
    # reversal.
    reply = post_notification(stack, paid["body"].encode("utf-8"))

    assert accepted(stack, reply)
    assert stack.record(bill_no).status is PaymentStatus.REVERSED
    assert reviews(stack, ORDER) == []
    assert [e.verdict for e in journal(stack, "notification")[before:]] == ["duplicate"]


# -- N5: a superseded bill paid as well -------------------------------------------------------


def test_n5_both_bills_of_one_order_paid_pays_the_order_once_and_reviews_the_second(
    stack: Any, request: pytest.FixtureRequest
) -> None:
    first = stack.start(ORDER, amount="2000")
    second = stack.start(ORDER, amount="3000")  # the cart changed: a new bill
    bill_a = first.payment.merchant_reference
    bill_b = second.payment.merchant_reference
    assert bill_a != bill_b
    assert stack.record(bill_a).superseded
    assert second.payment.attempt == 2

    stack.driver.pay(stack, bill_a)  # the customer paid the old link after all...
    stack.wait()
    stack.driver.pay(stack, bill_b)  # ...and the new one
    stack.wait()

    assert _acks(stack, bill_a) == [(S.PAID, True)]
    assert _acks(stack, bill_b) == [(S.PAID, True)]
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


def test_n5_reconciling_the_second_paid_bill_raises_no_further_review(
    stack: Any, request: pytest.FixtureRequest
) -> None:
    first = stack.start(ORDER, amount="2000")
    second = stack.start(ORDER, amount="3000")
    stack.driver.pay(stack, first.payment.merchant_reference)
    stack.driver.pay(stack, second.payment.merchant_reference)
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
