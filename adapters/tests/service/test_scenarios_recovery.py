"""N10, the ambiguous create, and the customer's return (reliability plan §7.2–7.3): what the
platform does when the provider's answer never arrives, over loopback HTTP against the emulator
and the merchant's endpoints, for every provider (``faspay_dana`` on SQLite and PostgreSQL,
``midtrans_snap`` on SQLite: the same test code, parameterised through ``provider_drivers``).

- A notification lost for good is recovered by reconciliation (inquiry), exactly once.
- A create whose reply was cut off after the provider processed it leaves one bill at the
  provider and an ``unknown`` attempt. Faspay's create is not idempotent: the attempt is never
  re-posted, the order gets a new bill, and reconciliation settles the old attempt as expired
  once its expiry has passed. Midtrans' is (``idempotent_create``: the order id is the key): the
  restarted order re-sends the same attempt's create and gets a fresh token for it.
- The customer's return is a trigger for an inquiry, never proof of payment; a forged return is
  refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from test_scenarios_support import (
    assert_invariants,
    effects,
    get_return,
    journal,
    paid_transitions,
    pay_without_notifying,
    provider_stack,
    return_query_for,
    verdicts,
)

from gateway_core import (
    EventKind,
    NotificationRejected,
    OutcomeUnknown,
    PaymentService,
    PaymentStatus,
    ServicePolicy,
)

ORDER = "ORDER-REC"
S = PaymentStatus

stack = provider_stack()


def _idempotent_create(stack: Any) -> bool:
    return bool(type(stack.gateway).idempotent_create)


def _location_status(reply: requests.Response) -> str:
    """The ``status`` the return endpoint passed on to the shop's page."""
    return parse_qs(urlsplit(reply.headers["Location"]).query)["status"][0]


# -- N10: the notification is lost ----------------------------------------------------------


def test_n10_lost_notification_is_recovered_once_by_reconciliation(stack: Any) -> None:
    driver = stack.driver
    bill_no = stack.start(ORDER).payment.merchant_reference
    driver.fault(stack, "drop", None, count=10)  # the endpoint is down

    driver.pay(stack, bill_no)
    stack.wait()

    (delivery,) = driver.deliveries(stack, bill_no, S.PAID)
    assert delivery["state"] == "failed"
    # The provider gave up after its re-sends (Faspay: 3, Midtrans: 5).
    assert len(delivery["attempts"]) == driver.attempts_when_unreachable
    assert stack.record(bill_no).status is S.PENDING
    assert effects(stack, ORDER, EventKind.PAID) == 0

    first = stack.service.reconcile(min_interval=0)

    assert (first.examined, first.changed) == (1, 1)
    record = stack.record(bill_no)
    assert record.status is S.PAID
    assert [t.source for t in paid_transitions(stack, record)] == ["reconcile"]
    assert effects(stack, ORDER, EventKind.PAID) == 1

    second = stack.service.reconcile(min_interval=0)

    assert second.changed == 0
    assert stack.record(bill_no) == record
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert len(stack.recorder.of_kind(EventKind.PAID)) == 1
    assert_invariants(stack, reconciled=True)


def test_n10_notification_arriving_after_reconciliation_is_a_duplicate(stack: Any) -> None:
    bill_no = stack.start(ORDER).payment.merchant_reference
    pay_without_notifying(stack, bill_no)
    stack.service.reconcile(min_interval=0)

    stack.driver.notify(stack, bill_no)  # the endpoint is back; the provider re-sends
    stack.wait()

    late = stack.driver.deliveries(stack, bill_no, S.PAID)[-1]
    assert [stack.driver.attempt_accepted(a) for a in late["attempts"]] == [True]
    assert stack.record(bill_no).status is S.PAID
    # Journalled as a duplicate whether the signature proves the status (Faspay) or an
    # inquiry confirmed it (Midtrans).
    assert [e.verdict for e in journal(stack, "notification")] == ["duplicate"]
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert_invariants(stack, reconciled=True)


# -- the ambiguous create ---------------------------------------------------------------------

#: Short enough for a test to step past it (via the reconcile worker's clock), long enough
#: that the bill is valid when it is posted.
SHORT_EXPIRY = timedelta(minutes=10)


def _ambiguous_start(stack: Any) -> datetime:
    """Start ``ORDER`` (expiring in SHORT_EXPIRY) while the create's reply is cut off by a
    reset after the emulator processed it; returns the requested expiry."""
    expires_at = datetime.now(UTC) + SHORT_EXPIRY
    stack.driver.create_fault(stack, "reset_after_read")
    with pytest.raises(OutcomeUnknown):
        stack.start(ORDER, expires_at=expires_at)
    return expires_at


def _later_worker(stack: Any, at: datetime) -> PaymentService:
    """A reconciliation worker sharing the stack's ledger, gateways and hooks, whose clock
    reads ``at`` (as if it ran then), with no expiry margin."""
    return PaymentService(
        gateways=stack.service.gateways,
        ledger=stack.ledger,
        hooks=stack.service.hooks,
        policy=ServicePolicy(reconcile_grace=timedelta(0), expiry_margin=timedelta(0)),
        clock=lambda: at,
        sleep=lambda _: None,
    )


def test_ambiguous_create_leaves_one_bill_and_an_unknown_attempt(stack: Any) -> None:
    _ambiguous_start(stack)

    (attempt,) = stack.ledger.payments_for_order(stack.gateway_name, ORDER)
    assert attempt.status is S.UNKNOWN
    assert attempt.provider_reference == ""
    bill_no = attempt.merchant_reference
    # Faspay: sent once, never re-posted; Midtrans: re-sent within the call under the same
    # order id (which cannot make a second payment), every answer lost.
    assert stack.driver.creates(stack, bill_no) == stack.driver.create_tries(stack)
    assert set(stack.driver.bills(stack)) == {bill_no}
    assert stack.driver.provider_status(stack, bill_no) is S.PENDING  # the provider made it
    tries = stack.driver.create_tries(stack)
    assert verdicts(journal(stack, "create")) == [("unknown", "outcome_unknown")] * tries
    assert effects(stack, ORDER, EventKind.CREATED) == 0
    assert_invariants(stack)


def test_order_restarted_after_ambiguous_create_gets_a_new_payable_bill(stack: Any) -> None:
    _ambiguous_start(stack)

    started = stack.start(ORDER)

    if _idempotent_create(stack):
        # The same attempt's create is re-sent under its order id: one attempt, one order at
        # the provider, a fresh token (the lost one stops working), payable.
        (attempt,) = stack.ledger.payments_for_order(stack.gateway_name, ORDER)
        assert attempt.attempt == 1
        assert not attempt.superseded
        assert attempt.merchant_reference == started.payment.merchant_reference
        assert attempt.status is S.PENDING
        tries = stack.driver.create_tries(stack) + 1
        assert stack.driver.creates(stack, attempt.merchant_reference) == tries
        assert set(stack.driver.bills(stack)) == {attempt.merchant_reference}
        page = requests.get(started.redirect.url, timeout=10)
        assert page.status_code == 200
        stack.driver.pay(stack, attempt.merchant_reference)
        stack.wait()
        assert stack.record(attempt.merchant_reference).status is S.PAID
        assert effects(stack, ORDER, EventKind.CREATED) == 1
        assert effects(stack, ORDER, EventKind.PAID) == 1
        assert_invariants(stack)
        return

    first, second = stack.ledger.payments_for_order(stack.gateway_name, ORDER)
    assert first.superseded
    assert first.status is S.UNKNOWN
    assert second.attempt == 2
    assert second.merchant_reference == started.payment.merchant_reference
    assert second.merchant_reference != first.merchant_reference
    assert second.status is S.PENDING
    assert not started.reused
    assert stack.driver.creates(stack, first.merchant_reference) == 1
    assert stack.driver.creates(stack, second.merchant_reference) == 1
    page = requests.get(started.redirect.url, timeout=10)
    assert page.status_code == 200  # the customer can pay the new bill
    assert stack.emulator.bill(second.merchant_reference)["status"] == "1"
    assert effects(stack, ORDER, EventKind.CREATED) == 1
    assert_invariants(stack)


def test_reconciliation_settles_the_unknown_attempt_as_expired_after_its_expiry(
    stack: Any,
) -> None:
    """Faspay only: with an idempotent create (Midtrans) the restarted order re-sends the
    unknown attempt's create (``test_order_restarted_...``), so no unknown attempt is left
    behind for reconciliation to expire."""
    if _idempotent_create(stack):
        pytest.skip("idempotent create: the restart re-sends the unknown attempt, none is left")
    expires_at = _ambiguous_start(stack)
    started = stack.start(ORDER)  # attempt 2, default (one hour) expiry
    first_bill = stack.ledger.payments_for_order(stack.gateway_name, ORDER)[0].merchant_reference

    # Before the expiry the unknown attempt is left waiting: the customer never saw it, but
    # the provider may still hold a payable bill.
    early = stack.service.reconcile(min_interval=0)
    assert early.waiting == 1
    assert stack.record(first_bill).status is S.UNKNOWN

    later = _later_worker(stack, expires_at + timedelta(seconds=1)).reconcile(min_interval=0)

    assert later.changed == 1
    first = stack.record(first_bill)
    assert first.status is S.EXPIRED
    assert first.id is not None
    assert [(t.to_status, t.source) for t in stack.ledger.transitions(first.id)] == [
        (S.EXPIRED, "reconcile")
    ]
    assert stack.record(started.payment.merchant_reference).status is S.PENDING
    # Attempt 1 was superseded by attempt 2, which is still payable: its expiry is recorded
    # but not announced, or an order system would cancel an order that is still open.
    assert effects(stack, ORDER, EventKind.EXPIRED) == 0

    # At the provider the bill was never paid, and it expires too (its notification is then
    # a duplicate for the merchant).
    stack.driver.advance_clock(stack, SHORT_EXPIRY.total_seconds() + 60)
    stack.wait()
    assert stack.driver.provider_status(stack, first_bill) is S.EXPIRED
    assert stack.record(first_bill).status is S.EXPIRED
    assert paid_transitions(stack, stack.record(first_bill)) == []
    assert effects(stack, ORDER, EventKind.EXPIRED) == 0

    # The order is still payable, once, through attempt 2.
    stack.driver.pay(stack, started.payment.merchant_reference)
    stack.wait()
    assert stack.record(started.payment.merchant_reference).status is S.PAID
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert_invariants(stack)


def test_reconciliation_expires_an_unknown_attempt_nobody_restarted(stack: Any) -> None:
    """Every provider: the create's answer was lost and the shop never retried the order.
    Nobody holds the provider's page (its URL was in the lost answer), so once the attempt's
    expiry has passed, reconciliation settles it as expired, exactly once."""
    expires_at = _ambiguous_start(stack)
    (attempt,) = stack.ledger.payments_for_order(stack.gateway_name, ORDER)

    early = stack.service.reconcile(min_interval=0)
    assert (early.waiting, early.changed) == (1, 0)
    assert stack.record(attempt.merchant_reference).status is S.UNKNOWN

    worker = _later_worker(stack, expires_at + timedelta(seconds=1))
    later = worker.reconcile(min_interval=0)
    again = worker.reconcile(min_interval=0)

    assert (later.changed, again.changed) == (1, 0)
    record = stack.record(attempt.merchant_reference)
    assert record.status is S.EXPIRED
    assert [(t.to_status, t.source) for t in stack.ledger.transitions(record.id)] == [
        (S.EXPIRED, "reconcile")
    ]
    assert effects(stack, ORDER, EventKind.PAID) == 0
    # The order's only attempt: its expiry is announced (unlike a superseded attempt's).
    assert effects(stack, ORDER, EventKind.EXPIRED) == 1
    assert_invariants(stack)


def test_return_claiming_paid_for_an_unpaid_bill_does_not_mark_it_paid(stack: Any) -> None:
    started = stack.start(ORDER)
    bill_no = started.payment.merchant_reference
    inquiries = stack.driver.inquiries(stack)

    reply = get_return(stack, return_query_for(stack, started.payment, status="2"))

    assert reply.status_code == 303
    assert _location_status(reply) == "pending"
    assert stack.driver.inquiries(stack) == inquiries + 1  # it asked
    record = stack.record(bill_no)
    assert record.status is S.PENDING
    assert paid_transitions(stack, record) == []
    assert effects(stack, ORDER, EventKind.PAID) == 0
    # The claim is journalled; the inquiry's answer ("still pending") changed nothing.
    assert verdicts(journal(stack, "return")) == [("received", "claimed paid"), ("duplicate", "")]
    assert_invariants(stack)


def test_return_claiming_paid_while_the_customer_is_on_the_page_moves_only_to_in_process(
    stack: Any,
) -> None:
    started = stack.start(ORDER)
    bill_no = started.payment.merchant_reference
    stack.driver.open_page(stack, bill_no)

    outcome = stack.service.handle_return(
        stack.gateway_name, return_query_for(stack, started.payment, status="2")
    )

    assert outcome.claimed.status is S.PAID
    assert outcome.inquired
    assert outcome.payment.status is S.IN_PROCESS
    assert stack.record(bill_no).status is S.IN_PROCESS
    assert effects(stack, ORDER, EventKind.PAID) == 0
    assert_invariants(stack)


def test_return_after_a_lost_notification_confirms_paid_by_inquiry(stack: Any) -> None:
    started = stack.start(ORDER)
    bill_no = started.payment.merchant_reference
    pay_without_notifying(stack, bill_no)

    reply = get_return(stack, return_query_for(stack, started.payment, status="2"))

    assert reply.status_code == 303
    assert _location_status(reply) == "paid"
    record = stack.record(bill_no)
    assert record.status is S.PAID
    assert [t.source for t in paid_transitions(stack, record)] == ["return"]
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert_invariants(stack)


def test_forged_return_is_rejected_by_the_service(stack: Any) -> None:
    started = stack.start(ORDER)
    pay_without_notifying(stack, started.payment.merchant_reference)
    query = stack.driver.forge_return(return_query_for(stack, started.payment, status="2"))
    inquiries = stack.driver.inquiries(stack)

    with pytest.raises(NotificationRejected) as info:
        stack.service.handle_return(stack.gateway_name, query)

    assert info.value.reason == "bad_signature"
    assert stack.driver.inquiries(stack) == inquiries  # no provider call
    assert stack.record(started.payment.merchant_reference).status is S.PENDING
    assert effects(stack, ORDER, EventKind.PAID) == 0


def test_forged_return_gets_http_400_and_changes_nothing(stack: Any) -> None:
    started = stack.start(ORDER)
    pay_without_notifying(stack, started.payment.merchant_reference)
    # signed for another bill
    query = stack.driver.retarget_return(return_query_for(stack, started.payment, status="2"))

    reply = get_return(stack, query)

    assert reply.status_code == 400
    assert "Location" not in reply.headers
    assert stack.record(started.payment.merchant_reference).status is S.PENDING
    assert effects(stack, ORDER, EventKind.PAID) == 0
