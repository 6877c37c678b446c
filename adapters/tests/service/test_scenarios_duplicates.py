"""N1 and N2 (reliability plan §7.3): the same paid notification delivered five times in a row,
and sixteen times at once together with four customer returns, over loopback HTTP against the
merchant's WSGI endpoints, on SQLite and PostgreSQL. One transition to ``paid``, one ``paid``
effect in the order system, every delivery acknowledged ``"00"``."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from test_scenarios_support import (
    assert_invariants,
    effects,
    get_return,
    journal,
    notification_for,
    paid_transitions,
    pay_without_notifying,
    post_notification,
    provider_body,
    response_code,
    return_query_for,
    reviews,
)

from gateway_core import EventKind, PaymentStatus

ORDER = "ORDER-DUP"


def test_n1_five_sequential_duplicates_from_the_provider_pay_the_order_once(stack: Any) -> None:
    started = stack.start(ORDER)
    bill_no = started.payment.merchant_reference
    stack.emulator.add_fault("notification", "duplicate", times=4, bill_no=bill_no)

    stack.emulator.pay(bill_no)
    stack.wait()

    deliveries = stack.emulator.deliveries(bill_no)
    assert len(deliveries) == 5
    assert {d["body"] for d in deliveries} == {deliveries[0]["body"]}  # the same message
    attempts = [a for d in deliveries for a in d["attempts"]]
    assert len(attempts) == 5  # each acknowledged at the first attempt
    assert [(a["http_status"], a["response_code"]) for a in attempts] == [(200, "00")] * 5
    record = stack.record(bill_no)
    assert record.status is PaymentStatus.PAID
    assert len(paid_transitions(stack, record)) == 1
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert len(stack.recorder.of_kind(EventKind.PAID)) == 1  # not even redelivered
    assert reviews(stack, ORDER) == []
    notified = [e.verdict for e in journal(stack, "notification")]
    assert notified == ["applied"] + ["duplicate"] * 4
    assert_invariants(stack)


def test_n1_same_signed_body_posted_five_times_is_acknowledged_every_time(stack: Any) -> None:
    started = stack.start(ORDER)
    bill_no = started.payment.merchant_reference
    pay_without_notifying(stack, bill_no)
    body = provider_body(stack, bill_no)

    with requests.Session() as session:
        replies = [post_notification(stack, body, session=session) for _ in range(5)]

    assert [(r.status_code, response_code(r)) for r in replies] == [(200, "00")] * 5
    record = stack.record(bill_no)
    assert record.status is PaymentStatus.PAID
    assert len(paid_transitions(stack, record)) == 1
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert reviews(stack, ORDER) == []
    assert_invariants(stack)


def test_n2_sixteen_concurrent_notifications_and_four_returns_pay_the_order_once(
    stack: Any,
) -> None:
    started = stack.start(ORDER)
    bill_no = started.payment.merchant_reference
    pay_without_notifying(stack, bill_no)
    body = provider_body(stack, bill_no)
    query = return_query_for(stack, started.payment, status="2")
    barrier = threading.Barrier(20, timeout=10)

    def notify(_: int) -> tuple[str, int, str | None]:
        barrier.wait()
        reply = post_notification(stack, body)
        return "notify", reply.status_code, response_code(reply)

    def customer_returns(_: int) -> tuple[str, int, str | None]:
        barrier.wait()
        reply = get_return(stack, query)
        return "return", reply.status_code, reply.headers.get("Location")

    with ThreadPoolExecutor(max_workers=20) as pool:
        notifying = [pool.submit(notify, n) for n in range(16)]
        returning = [pool.submit(customer_returns, n) for n in range(4)]
        notified = [f.result() for f in notifying]
        returned = [f.result() for f in returning]

    assert notified == [("notify", 200, "00")] * 16
    assert [status for _, status, _ in returned] == [303] * 4
    record = stack.record(bill_no)
    assert record.status is PaymentStatus.PAID
    assert len(paid_transitions(stack, record)) == 1
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert len({e.event_id for e in stack.recorder.of_kind(EventKind.PAID)}) == 1
    assert reviews(stack, ORDER) == []
    verdicts = [e.verdict for e in journal(stack, "notification")]
    assert sorted(verdicts) == ["applied"] + ["duplicate"] * 15 or (
        # The customer's return may have won the race: its inquiry applied ``paid`` first.
        sorted(verdicts) == ["duplicate"] * 16
    )
    assert_invariants(stack)


def test_n2_emulator_burst_of_sixteen_deliveries_with_returns_pays_the_order_once(
    stack: Any,
) -> None:
    started = stack.start(ORDER)
    bill_no = started.payment.merchant_reference
    stack.emulator.add_fault("notification", "burst", times=16, bill_no=bill_no)
    query = return_query_for(stack, started.payment, status="2")

    stack.emulator.pay(bill_no)
    with ThreadPoolExecutor(max_workers=4) as pool:
        returned = list(pool.map(lambda _: get_return(stack, query), range(4)))
    stack.wait()

    assert [r.status_code for r in returned] == [303] * 4
    deliveries = stack.emulator.deliveries(bill_no)
    assert len(deliveries) == 16
    first_attempts = [d["attempts"][0] for d in deliveries]
    assert [(a["http_status"], a["response_code"]) for a in first_attempts] == [(200, "00")] * 16
    record = stack.record(bill_no)
    assert record.status is PaymentStatus.PAID
    assert len(paid_transitions(stack, record)) == 1
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert reviews(stack, ORDER) == []
    assert_invariants(stack)


def test_n2_sixteen_concurrent_late_failures_after_paid_raise_one_review(stack: Any) -> None:
    started = stack.start(ORDER)
    bill_no = started.payment.merchant_reference
    stack.emulator.pay(bill_no)
    stack.wait()
    late_failure = notification_for(stack, stack.record(bill_no), status="3")
    barrier = threading.Barrier(16, timeout=10)

    def notify(_: int) -> tuple[int, str | None]:
        barrier.wait()
        reply = post_notification(stack, late_failure)
        return reply.status_code, response_code(reply)

    with ThreadPoolExecutor(max_workers=16) as pool:
        replies = list(pool.map(notify, range(16)))

    assert replies == [(200, "00")] * 16
    record = stack.record(bill_no)
    assert record.status is PaymentStatus.PAID
    assert len(paid_transitions(stack, record)) == 1
    assert effects(stack, ORDER, EventKind.PAID) == 1
    assert effects(stack, ORDER, EventKind.FAILED) == 0
    assert reviews(stack, ORDER) == ["failed_after_paid"]
    assert_invariants(stack)
