"""An order is paid once across every gateway (issue 9, item 2), on SQLite and PostgreSQL.

Two gateways are configured (two Faspay merchants on one emulator, as a platform with two
merchant accounts would have, or later two providers). The order-level "paid" receipt is keyed
on the order alone: once one gateway paid the order, no gateway starts another attempt; when
attempts on both gateways are paid (sequentially, or racing in several processes), the order
system gets exactly one paid event and one ``needs_review`` naming the payment to refund.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from worker_pool import run_workers

from gateway_core import (
    Customer,
    EventKind,
    LedgerError,
    Money,
    PaymentRequest,
    PaymentStatus,
    Settings,
)
from gateway_core._runtime import build_runtime
from gateway_core.testing import HookRecorder
from gateway_faspay_dana.emulator import EmulatorApp, EmulatorServer, Merchant
from gateway_faspay_dana.testing import signed_notification

MERCHANTS = {"dana": "99999", "dana_b": "88888"}


@pytest.fixture
def emulator(suite: Any) -> Iterator[EmulatorServer]:
    """One emulator with both merchants; notifications are recorded, not sent."""
    merchants = [
        Merchant(mid, merchant_name=f"Store {name}", password=suite.TEST_PASSWORD)
        for name, mid in MERCHANTS.items()
    ]
    server = EmulatorServer(EmulatorApp(merchants, retry_interval=0.05)).start()
    try:
        yield server
    finally:
        server.stop()


def _mapping(suite: Any, ledger_url: str, emulator_url: str) -> dict[str, Any]:
    return {
        "ledger": {"url": ledger_url},
        "providers": {
            name: {
                "provider": "faspay_dana",
                "merchant_id": mid,
                "merchant_name": f"Store {name}",
                "password": suite.TEST_PASSWORD,
                "base_url": emulator_url,
                "read_timeout": 2.0,
                "deadline": 6.0,
                "max_retries": 1,
            }
            for name, mid in MERCHANTS.items()
        },
    }


def _request(order: str, amount: str = "2000") -> PaymentRequest:
    return PaymentRequest(
        order_reference=order,
        amount=Money(amount, "IDR"),
        customer=Customer("Budi", email="budi@example.com", phone="081234567890"),
        description=f"Order {order}",
        return_url="http://127.0.0.1:9/return",
    )


@pytest.fixture
def runtime(suite: Any, any_store: Any, emulator: EmulatorServer) -> Iterator[Any]:
    recorder = HookRecorder()
    built = build_runtime(
        Settings.from_mapping(_mapping(suite, any_store.url, emulator.url)),
        plugins=[recorder],
        environ={},
    )
    try:
        yield SimpleNamespace(
            service=built.service, gateways=built.gateways, ledger=built.ledger, recorder=recorder
        )
    finally:
        built.close()


def _paid_body(runtime: Any, gateway_name: str, record: Any) -> bytes:
    return signed_notification(
        runtime.gateways[gateway_name],
        bill_no=record.merchant_reference,
        trx_id=record.provider_reference,
        status="2",
        amount=record.amount,
    )


def test_an_order_paid_on_one_gateway_cannot_be_started_on_another(
    runtime: Any, emulator: EmulatorServer
) -> None:
    service = runtime.service
    record = service.start_payment("dana", _request("ORDER-X1")).payment
    emulator.app.pay(record.merchant_reference, merchant_id="99999")
    outcome = service.handle_notification("dana", _paid_body(runtime, "dana", record), {})
    assert outcome.verdict == "applied"

    with pytest.raises(LedgerError, match="already has a paid payment"):
        service.start_payment("dana_b", _request("ORDER-X1"))

    assert runtime.ledger.payments_for_order("dana_b", "ORDER-X1") == []  # nothing recorded
    assert service.start_payment("dana_b", _request("ORDER-X2")).payment.attempt == 1


def test_attempts_paid_on_two_gateways_pay_the_order_once_and_review_the_second(
    runtime: Any, emulator: EmulatorServer
) -> None:
    service = runtime.service
    first = service.start_payment("dana", _request("ORDER-TWO")).payment
    second = service.start_payment("dana_b", _request("ORDER-TWO")).payment
    emulator.app.pay(first.merchant_reference, merchant_id="99999")
    emulator.app.pay(second.merchant_reference, merchant_id="88888")

    one = service.handle_notification("dana", _paid_body(runtime, "dana", first), {})
    two = service.handle_notification("dana_b", _paid_body(runtime, "dana_b", second), {})

    assert (one.verdict, two.verdict, two.reason) == ("applied", "review", "paid_twice")
    assert one.acknowledgement.accepted
    assert two.acknowledgement.accepted
    recorder = runtime.recorder
    assert [e.merchant_reference for e in recorder.of_kind(EventKind.PAID)] == [
        first.merchant_reference
    ]
    (review,) = recorder.of_kind(EventKind.NEEDS_REVIEW)
    assert (review.reason, review.gateway_name) == ("paid_twice", "dana_b")
    assert (review.merchant_reference, review.amount) == (second.merchant_reference, second.amount)
    assert service.payment("dana_b", second.merchant_reference).status is PaymentStatus.PENDING


def test_attempts_on_two_gateways_paid_in_a_race_of_processes_pay_each_order_once(
    suite: Any, any_store: Any, emulator: EmulatorServer, runtime: Any, tmp_path: Path
) -> None:
    """Four processes handle both gateways' paid notifications of six orders, each in its own
    shuffled order, released together: one paid transition and one paid event per order, one
    paid_twice review per order."""
    service = runtime.service
    items: list[dict[str, str]] = []
    bills: dict[str, list[str]] = {}
    for n in range(6):
        order = f"ORDER-RACE-{n}"
        for name, mid in MERCHANTS.items():
            record = service.start_payment(name, _request(order)).payment
            emulator.app.pay(record.merchant_reference, merchant_id=mid)
            body = _paid_body(runtime, name, record).decode("utf-8")
            items.append({"gateway": name, "body": body})
            bills.setdefault(order, []).append(record.merchant_reference)

    def shuffled(index: int) -> list[dict[str, str]]:
        mine = list(items)
        random.Random(index).shuffle(mine)
        return mine

    mapping = _mapping(suite, any_store.url, emulator.url)
    results = run_workers(
        mapping, [], tmp_path, workers=4, gateway="dana", bodies_for=shuffled, deliver=True
    )

    outcomes = [o for r in results for o in r["outcomes"]]
    assert {o["verdict"] for o in outcomes} <= {"applied", "duplicate", "review"}
    assert all(o["accepted"] for o in outcomes)
    ledger = any_store.open()
    try:
        for order in bills:
            attempts = [
                *ledger.payments_for_order("dana", order),
                *ledger.payments_for_order("dana_b", order),
            ]
            paid = [a for a in attempts if a.status is PaymentStatus.PAID]
            assert len(paid) == 1, attempts
            transitions = [
                t
                for a in attempts
                for t in ledger.transitions(a.id)
                if t.to_status is PaymentStatus.PAID
            ]
            assert len(transitions) == 1
            events = [e for a in attempts for e in ledger.outbox(payment_id=a.id)]
            kinds = Counter(e.kind for e in events)
            assert kinds[EventKind.PAID] == 1
            assert kinds[EventKind.NEEDS_REVIEW] == 1
    finally:
        ledger.close()
    delivered = [h for r in results for h in r["hooks"] if h["kind"] == "paid"]
    assert Counter(h["order_reference"] for h in delivered) == Counter(dict.fromkeys(bills, 1))
