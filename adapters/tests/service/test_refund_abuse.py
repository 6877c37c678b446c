"""Refund abuse (security review): nothing but a confirmed provider report or the merchant's own
call records or settles a refund, and never above what was paid, on a real SQLite file and a
real PostgreSQL schema.

* a provider-reported refund named by *another* payment's refund key settles nothing there
  (refund keys are unique per gateway; a report is about one payment);
* for a provider whose signature proves the status but whose notifications must still be
  confirmed (``notification_settles=False``), a refund list riding on an unchanged status word
  (``paid`` with refunds, ``partially_refunded`` again with one more) is confirmed by inquiry
  too, and refused when the provider does not list it;
* a refund notification reporting more than was paid: ``needs_review``, never past
  ``refunded``;
* a cancelled payment cannot be refunded; a key reused with another amount is refused;
* over-refund by concurrent requests from separate *processes* on one PostgreSQL ledger: the
  refunded total never exceeds the paid amount.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway_core import (
    Customer,
    EventKind,
    InboundRequest,
    InvalidRequest,
    Money,
    OutcomeUnknown,
    PaymentRequest,
    PaymentService,
    PaymentStatus,
    PluginHost,
    Reason,
    RefundStatus,
    ServicePolicy,
    Verdict,
)
from gateway_core.testing import FakeGateway, HookRecorder

S = PaymentStatus
R = RefundStatus


def IDR(value: str) -> Money:
    return Money(value, "IDR")


class World:
    def __init__(self, store: Any, gateway: FakeGateway | None = None) -> None:
        self.ledger = store.open()
        self.ledger.migrate()
        self.gateway = gateway or FakeGateway()
        self.hooks = HookRecorder()
        now = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        self.service = PaymentService(
            gateways={"shop": self.gateway},
            ledger=self.ledger,
            hooks=PluginHost(entry_points=False, plugins=[self.hooks]).hooks,
            policy=ServicePolicy(reconcile_grace=timedelta(0)),
            clock=lambda: now,
            sleep=lambda _: None,
        )

    def started(self, order: str, amount: str = "100000") -> str:
        request = PaymentRequest(
            order_reference=order,
            amount=IDR(amount),
            customer=Customer("Sari"),
            description="Kopi",
            return_url="https://shop.example/back",
        )
        return self.service.start_payment("shop", request).payment.merchant_reference

    def paid(self, order: str, amount: str = "100000") -> str:
        ref = self.started(order, amount)
        self.gateway.settle(ref, S.PAID)
        self.service.inquire("shop", ref)
        assert self.status(ref) is S.PAID
        return ref

    def status(self, ref: str) -> PaymentStatus:
        status: PaymentStatus = self.service.payment("shop", ref).status
        return status

    def notify(self, body: bytes, headers: dict[str, str]) -> Any:
        return self.service.receive_notification("shop", InboundRequest.post(body, headers))

    def reviews(self) -> list[Any]:
        self.service.deliver_events()
        return self.hooks.of_kind(EventKind.NEEDS_REVIEW)


@pytest.fixture
def world(any_store: Any) -> Iterator[World]:
    built = World(any_store)
    try:
        yield built
    finally:
        built.ledger.close()


@pytest.fixture
def confirming_world(any_store: Any) -> Iterator[World]:
    """A provider whose signature proves the status, but whose notifications are confirmed
    by inquiry before they change anything (like Faspay)."""
    built = World(any_store, FakeGateway.with_trust(notification_settles=False)())
    try:
        yield built
    finally:
        built.ledger.close()


def test_a_refund_reported_under_another_payments_key_settles_nothing_there(
    world: World,
) -> None:
    a = world.paid("O-A")
    b = world.paid("O-B")
    world.gateway.lose_refund_answers = 1
    with pytest.raises(OutcomeUnknown):
        world.service.refund("shop", a, IDR("25000"), key="O-A-r1")
    (open_refund,) = world.service.refunds("shop", a)
    assert open_refund.status is R.UNKNOWN
    # B's refund notification lists A's key (a provider bug, or a key the attacker learnt).
    body, headers = world.gateway.notification(
        b,
        S.PARTIALLY_REFUNDED,
        refunds=[{"key": "O-A-r1", "amount": "25000", "id": "rf-77"}],
    )
    world.notify(body, headers)

    assert world.service.refunds("shop", a)[0].status is R.UNKNOWN  # A's refund untouched
    assert world.status(a) is S.PAID
    assert world.service.refunds("shop", b) == []
    assert world.status(b) is S.PAID
    assert [e.reason for e in world.reviews()] == [Reason.REFERENCE_MISMATCH.value]
    assert world.hooks.of_kind(EventKind.REFUND_SUCCEEDED) == []


def test_a_refund_list_on_an_unchanged_status_is_confirmed_and_refused_when_unlisted(
    confirming_world: World,
) -> None:
    world = confirming_world
    ref = world.paid("O-C")
    # "paid" again, correctly signed, carrying a refund the provider never made.
    body, headers = world.gateway.notification(
        ref, S.PAID, refunds=[{"key": "", "amount": "40000", "id": "dash-9"}]
    )
    outcome = world.notify(body, headers)
    assert (outcome.verdict, outcome.reason) == (Verdict.REJECTED, Reason.STATUS_UNCONFIRMED)
    assert not outcome.acknowledgement.accepted
    assert world.service.refunds("shop", ref) == []
    assert world.status(ref) is S.PAID

    # A real refund, then "partially_refunded" again (SAME status) with one refund more.
    world.service.refund("shop", ref, IDR("10000"), key="O-C-r1")
    assert world.status(ref) is S.PARTIALLY_REFUNDED
    body, headers = world.gateway.notification(
        ref,
        S.PARTIALLY_REFUNDED,
        refunds=[
            {"key": "O-C-r1", "amount": "10000", "id": "rf-1"},
            {"key": "", "amount": "90000", "id": "dash-10"},
        ],
    )
    outcome = world.notify(body, headers)
    assert outcome.verdict is Verdict.REJECTED
    assert [r.refund_key for r in world.service.refunds("shop", ref)] == ["O-C-r1"]
    assert world.status(ref) is S.PARTIALLY_REFUNDED

    # The provider's own refund notification (every refund listed) is confirmed and accepted.
    outcome = world.notify(*world.gateway.refund_notification(ref))
    assert outcome.acknowledgement.accepted
    assert world.status(ref) is S.PARTIALLY_REFUNDED


def test_a_refund_notification_reporting_more_than_was_paid_is_a_review(world: World) -> None:
    ref = world.paid("O-D")
    body, headers = world.gateway.notification(
        ref,
        S.REFUNDED,
        refunds=[
            {"key": "", "amount": "60000", "id": "rf-a"},
            {"key": "", "amount": "60000", "id": "rf-b"},
        ],
    )
    world.notify(body, headers)
    refunds = world.service.refunds("shop", ref)
    assert [(r.refund_key, r.status) for r in refunds] == [("provider:rf-a", R.SUCCEEDED)]
    assert world.status(ref) is S.PARTIALLY_REFUNDED
    assert Reason.REFUND_EXCEEDS_PAID.value in [e.reason for e in world.reviews()]
    total = sum(r.amount.minor_units for r in refunds if r.status is R.SUCCEEDED)
    assert total <= IDR("100000").minor_units


def test_a_cancelled_payment_cannot_be_refunded_and_a_key_names_one_amount(world: World) -> None:
    ref = world.started("O-E")
    world.service.cancel("shop", ref)
    assert world.status(ref) is S.CANCELLED
    with pytest.raises(InvalidRequest, match="only a paid payment"):
        world.service.refund("shop", ref, IDR("1000"), key="O-E-r1")
    paid = world.paid("O-F")
    world.service.refund("shop", paid, IDR("1000"), key="O-F-r1")
    with pytest.raises(InvalidRequest, match="names another refund"):
        world.service.refund("shop", paid, IDR("99000"), key="O-F-r1")
    other = world.paid("O-G")
    with pytest.raises(InvalidRequest, match="names another refund"):
        world.service.refund("shop", other, IDR("1000"), key="O-F-r1")  # another payment's
    assert world.service.refunds("shop", other) == []
    assert world.gateway.calls.count("refund") == 1


_RACER = textwrap.dedent(
    """
    import sys
    from gateway_core import Money
    from gateway_core.ledger import PostgresLedger, RefundRefused
    target, schema, payment_id, index, go = sys.argv[1:6]
    ledger = PostgresLedger(target, schema=schema)
    import os, time
    while not os.path.exists(go):
        time.sleep(0.001)
    won = 0
    for n in range(5):
        try:
            ledger.request_refund(
                int(payment_id), refund_key=f"race-{index}-{n}", amount=Money("15000", "IDR")
            )
            won += 1
        except RefundRefused:
            pass
    ledger.close()
    print(won)
    """
)


@pytest.mark.postgres
def test_refunds_racing_from_separate_processes_never_exceed_the_paid_amount(
    suite: Any, tmp_path: Any
) -> None:
    """Six processes each try five refunds of 15,000 on one 100,000 payment at once: at most
    six (90,000) can be recorded; PostgreSQL's row lock serialises the totals."""
    suite.require_postgres()
    import uuid

    schema = f"gw_test_{uuid.uuid4().hex[:16]}"
    store = suite.Store("postgres", suite.POSTGRES_URL, schema)
    built = World(store)
    try:
        ref = built.paid("O-RACE")
        record = built.service.payment("shop", ref)
        go = tmp_path / "go"
        racers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _RACER,
                    suite.POSTGRES_URL,
                    schema,
                    str(record.id),
                    str(i),
                    str(go),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(6)
        ]
        go.write_text("go")
        won = [int(p.communicate(timeout=60)[0].strip()) for p in racers]
        assert all(p.returncode == 0 for p in racers)
        refunds = built.service.refunds("shop", ref)
        assert sum(won) == len(refunds) == 6
        assert sum(r.amount.minor_units for r in refunds) <= record.amount.minor_units
    finally:
        built.ledger.close()
        suite.drop_schema(schema)
