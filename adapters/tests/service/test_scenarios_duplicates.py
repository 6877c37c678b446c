"""N1 and N2 (reliability plan §7.3): the same paid notification delivered five times in a row,
and sixteen times at once together with four customer returns, over loopback HTTP against the
merchant's WSGI endpoints, for every provider (``faspay_dana``, ``midtrans_snap``: the same
test code, parameterised by provider through ``provider_drivers``), Faspay on SQLite and
PostgreSQL, Midtrans on SQLite and (in this module) PostgreSQL. One transition to ``paid``, one
``paid`` effect in the order system, every delivery acknowledged."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from test_scenarios_support import (
    accepted,
    assert_invariants,
    effects,
    get_return,
    journal,
    notification_for,
    paid_transitions,
    pay_without_notifying,
    post_notification,
    provider_body,
    provider_stack,
    return_query_for,
    reviews,
)

from gateway_core import EventKind, PaymentStatus

ORDER = "ORDER-DUP"
S = PaymentStatus

stack = provider_stack(midtrans_postgres=True)


def _notification_verdicts(stack: Any) -> list[str]:
    return [e.verdict for e in journal(stack, "notification")]


def test_n1_five_sequential_duplicates_from_the_provider_pay_the_order_once(stack: Any) -> None:
    driver = stack.driver
    started = stack.start(ORDER)
    bill_no = started.payment.merchant_reference
    driver.fault(stack, "duplicate", bill_no, times=4, on_status=S.PAID)

    driver.pay(stack, bill_no)
    stack.wait()

    deliveries = driver.deliveries(stack, bill_no, S.PAID)
    assert len(deliveries) == 5
    assert {d["body"] for d in deliveries} == {deliveries[0]["body"]}  # the same message
    attempts = [a for d in deliveries for a in d["attempts"]]
    assert len(attempts) == 5  # each acknowledged at the first attempt
    assert [driver.attempt_accepted(a) for a in attempts] == [True] * 5
    record = stack.record(bill_no)
    assert record.status is PaymentStatus.PAID
    assert len(paid_transitions(stack, record)) == 1
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert len(stack.recorder.of_kind(EventKind.PAID)) == 1  # not even redelivered
    assert reviews(stack, ORDER) == []
    if driver.status_signed:
        assert _notification_verdicts(stack) == ["applied"] + ["duplicate"] * 4
    else:
        # Each copy was confirmed by an inquiry; the first paid the order (unless the pending
        # notification's inquiry already saw the settlement), the others changed nothing.
        verdicts = _notification_verdicts(stack)
        assert verdicts.count("applied") <= 1
        assert set(verdicts) <= {"applied", "duplicate"}
    assert_invariants(stack)


def test_n1_same_signed_body_posted_five_times_is_acknowledged_every_time(stack: Any) -> None:
    started = stack.start(ORDER)
    bill_no = started.payment.merchant_reference
    pay_without_notifying(stack, bill_no)
    assert stack.record(bill_no).status is PaymentStatus.PENDING
    body = provider_body(stack, bill_no, S.PAID)

    with requests.Session() as session:
        replies = [post_notification(stack, body, session=session) for _ in range(5)]

    assert [accepted(stack, r) for r in replies] == [True] * 5
    record = stack.record(bill_no)
    assert record.status is PaymentStatus.PAID
    assert len(paid_transitions(stack, record)) == 1
    assert [t.source for t in paid_transitions(stack, record)] == ["notification"]
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert reviews(stack, ORDER) == []
    assert_invariants(stack)


def test_n2_sixteen_concurrent_notifications_and_four_returns_pay_the_order_once(
    stack: Any,
) -> None:
    started = stack.start(ORDER)
    bill_no = started.payment.merchant_reference
    pay_without_notifying(stack, bill_no)
    body = provider_body(stack, bill_no, S.PAID)
    query = return_query_for(stack, started.payment, status="2")
    barrier = threading.Barrier(20, timeout=10)

    def notify(_: int) -> tuple[str, bool]:
        barrier.wait()
        reply = post_notification(stack, body)
        return "notify", accepted(stack, reply)

    def customer_returns(_: int) -> tuple[str, int, str | None]:
        barrier.wait()
        reply = get_return(stack, query)
        return "return", reply.status_code, reply.headers.get("Location")

    with ThreadPoolExecutor(max_workers=20) as pool:
        notifying = [pool.submit(notify, n) for n in range(16)]
        returning = [pool.submit(customer_returns, n) for n in range(4)]
        notified = [f.result() for f in notifying]
        returned = [f.result() for f in returning]

    assert notified == [("notify", True)] * 16
    assert [status for _, status, _ in returned] == [303] * 4
    record = stack.record(bill_no)
    assert record.status is PaymentStatus.PAID
    assert len(paid_transitions(stack, record)) == 1
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert len({e.event_id for e in stack.recorder.of_kind(EventKind.PAID)}) == 1
    assert reviews(stack, ORDER) == []
    verdicts = sorted(_notification_verdicts(stack))
    if stack.driver.status_signed:
        assert verdicts == ["applied"] + ["duplicate"] * 15 or (
            # The customer's return may have won the race: its inquiry applied ``paid`` first.
            verdicts == ["duplicate"] * 16
        )
    else:
        # Each copy is confirmed by inquiry: one applies ``paid`` (unless the return won), and
        # every other one is journalled a duplicate.
        assert verdicts.count("applied") <= 1
        assert set(verdicts) <= {"applied", "duplicate"}
        assert len(verdicts) == 16
    assert_invariants(stack)


def test_n2_emulator_burst_of_sixteen_deliveries_with_returns_pays_the_order_once(
    stack: Any,
) -> None:
    driver = stack.driver
    started = stack.start(ORDER)
    bill_no = started.payment.merchant_reference
    driver.fault(stack, "burst", bill_no, times=16, on_status=S.PAID)
    query = return_query_for(stack, started.payment, status="2")

    driver.pay(stack, bill_no)
    with ThreadPoolExecutor(max_workers=4) as pool:
        returned = list(pool.map(lambda _: get_return(stack, query), range(4)))
    stack.wait()

    assert [r.status_code for r in returned] == [303] * 4
    deliveries = driver.deliveries(stack, bill_no, S.PAID)
    assert len(deliveries) == 16
    first_attempts = [d["attempts"][0] for d in deliveries]
    assert [driver.attempt_accepted(a) for a in first_attempts] == [True] * 16
    record = stack.record(bill_no)
    assert record.status is PaymentStatus.PAID
    assert len(paid_transitions(stack, record)) == 1
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert reviews(stack, ORDER) == []
    assert_invariants(stack)


def test_n2_sixteen_concurrent_late_failures_after_paid_raise_one_review(stack: Any) -> None:
    """Faspay signs the status: a verified "failed" after "paid" is money moving the wrong
    way, one review. Midtrans does not sign ``transaction_status``: each copy is confirmed by
    Get Status, which still says settled, so nothing changes and nothing needs review."""
    started = stack.start(ORDER)
    bill_no = started.payment.merchant_reference
    stack.driver.pay(stack, bill_no)
    stack.wait()
    late_failure = notification_for(stack, stack.record(bill_no), S.FAILED)
    barrier = threading.Barrier(16, timeout=10)

    def notify(_: int) -> bool:
        barrier.wait()
        return accepted(stack, post_notification(stack, late_failure))

    with ThreadPoolExecutor(max_workers=16) as pool:
        replies = list(pool.map(notify, range(16)))

    assert replies == [True] * 16
    record = stack.record(bill_no)
    assert record.status is PaymentStatus.PAID
    assert len(paid_transitions(stack, record)) == 1
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert effects(stack, ORDER, EventKind.FAILED) == 0
    expected = ["failed_after_paid"] if stack.driver.status_signed else []
    assert reviews(stack, ORDER) == expected
    assert_invariants(stack)
