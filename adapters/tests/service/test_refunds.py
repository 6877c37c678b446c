"""Refunds through the payment service, on a real SQLite file and a real PostgreSQL schema,
against :class:`gateway_core.testing.FakeGateway` (whose provider side keeps its own refunds):
recorded before the provider is asked, never above the paid amount, settled exactly once
whatever reports them (the answer, an inquiry, a duplicated or reordered refund
notification), a lost answer settled by inquiry under the same key, and each refund raising
one ``refund_succeeded`` / ``refund_failed`` event.

The same rules through real HTTP against a provider's emulator are in the provider's own
tests (Midtrans Snap: ``adapters/tests/midtrans_snap``).
"""

from __future__ import annotations

import threading
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
    RefundStatus,
    ServicePolicy,
    UnsupportedOperation,
    Verdict,
)
from gateway_core.testing import FakeGateway, HookRecorder

S = PaymentStatus
R = RefundStatus


class World:
    def __init__(self, store: Any) -> None:
        self.ledger = store.open()
        self.ledger.migrate()
        self.gateway = FakeGateway()
        self.hooks = HookRecorder()
        self.now = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        host = PluginHost(entry_points=False, plugins=[self.hooks])
        self.service = PaymentService(
            gateways={"shop": self.gateway},
            ledger=self.ledger,
            hooks=host.hooks,
            policy=ServicePolicy(reconcile_grace=timedelta(0)),
            clock=lambda: self.now,
            sleep=lambda _: None,
        )

    def paid(self, order: str, amount: str = "100000") -> str:
        request = PaymentRequest(
            order_reference=order,
            amount=Money(amount, "IDR"),
            customer=Customer("Sari"),
            description="Kopi",
            return_url="https://shop.example/back",
        )
        ref = self.service.start_payment("shop", request).payment.merchant_reference
        self.gateway.settle(ref, S.PAID)
        self.notify(*self.gateway.notification(ref, S.PAID))
        assert self.service.payment("shop", ref).status is S.PAID
        return ref

    def notify(self, body: bytes, headers: dict[str, str]) -> Verdict:
        request = InboundRequest.post(body, headers)
        return self.service.receive_notification("shop", request).verdict

    def refund_events(self, kind: EventKind) -> list[Any]:
        self.service.deliver_events()
        return self.hooks.of_kind(kind)


@pytest.fixture
def world(any_store: Any) -> Iterator[World]:
    built = World(any_store)
    try:
        yield built
    finally:
        built.ledger.close()


def IDR(value: str) -> Money:
    return Money(value, "IDR")


def test_partial_then_full_refund_moves_the_payment_and_raises_one_event_each(
    world: World,
) -> None:
    ref = world.paid("O-1")
    first = world.service.refund("shop", ref, IDR("30000"), reason="size", key="O-1-r1")
    assert first.status is R.SUCCEEDED
    assert world.service.payment("shop", ref).status is S.PARTIALLY_REFUNDED
    second = world.service.refund("shop", ref, IDR("20000"), key="O-1-r2")
    assert second.status is R.SUCCEEDED
    assert world.service.payment("shop", ref).status is S.PARTIALLY_REFUNDED
    rest = world.service.refund("shop", ref)  # the remaining 50,000 under a fresh key
    assert rest.amount == IDR("50000")
    assert world.service.payment("shop", ref).status is S.REFUNDED
    events = world.refund_events(EventKind.REFUND_SUCCEEDED)
    assert [(e.refund_key, e.event_amount, e.status) for e in events] == [
        ("O-1-r1", IDR("30000"), S.PARTIALLY_REFUNDED),
        ("O-1-r2", IDR("20000"), S.PARTIALLY_REFUNDED),
        (rest.refund_key, IDR("50000"), S.REFUNDED),
    ]
    assert len({e.event_id for e in events}) == 3
    assert world.gateway.calls.count("refund") == 3
    record = world.service.payment("shop", ref)
    assert record.id is not None
    moves = [(t.from_status, t.to_status) for t in world.ledger.transitions(record.id)]
    assert moves[-2:] == [(S.PAID, S.PARTIALLY_REFUNDED), (S.PARTIALLY_REFUNDED, S.REFUNDED)]


def test_a_refund_above_what_remains_is_refused_before_anything_is_recorded_or_sent(
    world: World,
) -> None:
    ref = world.paid("O-2")
    world.service.refund("shop", ref, IDR("60000"), key="O-2-r1")
    with pytest.raises(InvalidRequest, match="exceeds what remains refundable"):
        world.service.refund("shop", ref, IDR("40001"), key="O-2-r2")
    assert [r.refund_key for r in world.service.refunds("shop", ref)] == ["O-2-r1"]
    assert world.gateway.calls.count("refund") == 1
    world.service.refund("shop", ref)
    with pytest.raises(InvalidRequest, match="nothing left to refund"):
        world.service.refund("shop", ref)


def test_the_same_key_twice_refunds_once(world: World) -> None:
    ref = world.paid("O-3")
    a = world.service.refund("shop", ref, IDR("10000"), key="O-3-r1")
    b = world.service.refund("shop", ref, IDR("10000"), key="O-3-r1")
    assert (a.id, b.id) == (a.id, a.id)
    assert b.status is R.SUCCEEDED
    assert world.gateway.calls.count("refund") == 1
    with pytest.raises(InvalidRequest, match="names another refund"):
        world.service.refund("shop", ref, IDR("20000"), key="O-3-r1")
    assert len(world.refund_events(EventKind.REFUND_SUCCEEDED)) == 1


def test_an_unpaid_payment_cannot_be_refunded_and_a_provider_refusal_fails_the_refund(
    world: World,
) -> None:
    request = PaymentRequest(
        order_reference="O-4",
        amount=IDR("5000"),
        customer=Customer("Sari"),
        description="Kopi",
        return_url="https://shop.example/back",
    )
    ref = world.service.start_payment("shop", request).payment.merchant_reference
    with pytest.raises(InvalidRequest, match="only a paid payment"):
        world.service.refund("shop", ref)
    paid = world.paid("O-5")
    world.gateway.refund_at_provider(paid, IDR("100000"), "dash-1")  # the ledger doesn't know
    failed = world.service.refund("shop", paid, IDR("1000"), key="O-5-r1")
    assert failed.status is R.FAILED
    assert [e.refund_key for e in world.refund_events(EventKind.REFUND_FAILED)] == ["O-5-r1"]
    assert world.service.payment("shop", paid).status is S.PAID


def test_a_lost_answer_stays_unknown_and_is_settled_by_inquiry_under_the_same_key(
    world: World,
) -> None:
    ref = world.paid("O-6")
    world.gateway.lose_refund_answers = 1
    with pytest.raises(OutcomeUnknown):
        world.service.refund("shop", ref, IDR("25000"), key="O-6-r1")
    (refund,) = world.service.refunds("shop", ref)
    assert refund.status is R.UNKNOWN
    assert world.service.payment("shop", ref).status is S.PAID
    report = world.service.settle_refunds(grace=timedelta(0))
    assert (report.examined, report.settled, report.resent) == (1, 1, 0)
    (refund,) = world.service.refunds("shop", ref)
    assert refund.status is R.SUCCEEDED
    assert world.service.payment("shop", ref).status is S.PARTIALLY_REFUNDED
    assert world.gateway.calls.count("refund") == 1  # settled by inquiry, never re-sent
    assert len(world.refund_events(EventKind.REFUND_SUCCEEDED)) == 1


def test_an_unknown_refund_the_provider_never_made_is_sent_again_under_its_own_key(
    world: World,
) -> None:
    ref = world.paid("O-7")
    record = world.service.payment("shop", ref)
    assert record.id is not None
    # Recorded, then the process died before the provider was asked.
    _refund, send = world.ledger.request_refund(record.id, refund_key="O-7-r1", amount=IDR("5000"))
    assert send
    report = world.service.settle_refunds(grace=timedelta(0))
    assert (report.examined, report.resent) == (1, 1)
    assert world.service.refunds("shop", ref)[0].status is R.SUCCEEDED
    assert [r.key for r in world.gateway.inquire(world.service.as_payment(record)).refunds] == [
        "O-7-r1"
    ]


def test_refund_notifications_duplicated_and_reordered_have_one_effect_each(world: World) -> None:
    ref = world.paid("O-8")
    world.gateway.refund_at_provider(ref, IDR("30000"), "dash-1")
    early = world.gateway.refund_notification(ref)  # reports one refund
    world.gateway.refund_at_provider(ref, IDR("70000"), "dash-2")
    late = world.gateway.refund_notification(ref)  # reports both
    assert world.notify(*late) is Verdict.APPLIED
    assert world.notify(*late) is Verdict.DUPLICATE
    assert world.notify(*early) is Verdict.DUPLICATE  # older news, already applied
    assert world.service.payment("shop", ref).status is S.REFUNDED
    refunds = world.service.refunds("shop", ref)
    assert sorted((r.refund_key, r.amount, r.status) for r in refunds) == [
        ("provider:dash-1", IDR("30000"), R.SUCCEEDED),
        ("provider:dash-2", IDR("70000"), R.SUCCEEDED),
    ]
    assert len(world.refund_events(EventKind.REFUND_SUCCEEDED)) == 2


def test_a_refund_notification_for_a_refund_the_service_asked_settles_it_once(
    world: World,
) -> None:
    ref = world.paid("O-9")
    world.gateway.lose_refund_answers = 1
    with pytest.raises(OutcomeUnknown):
        world.service.refund("shop", ref, IDR("40000"), key="O-9-r1")
    note = world.gateway.refund_notification(ref)
    assert world.notify(*note) is Verdict.APPLIED
    assert world.notify(*note) is Verdict.DUPLICATE
    (refund,) = world.service.refunds("shop", ref)
    assert (refund.refund_key, refund.status) == ("O-9-r1", R.SUCCEEDED)
    assert world.service.settle_refunds(grace=timedelta(0)).examined == 0
    assert len(world.refund_events(EventKind.REFUND_SUCCEEDED)) == 1


def test_racing_refunds_never_exceed_the_paid_amount(world: World) -> None:
    ref = world.paid("O-10")
    outcomes: list[str] = []

    def ask(n: int) -> None:
        try:
            world.service.refund("shop", ref, IDR("30000"), key=f"O-10-r{n}")
            outcomes.append("ok")
        except InvalidRequest:
            outcomes.append("refused")

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] * 3 + ["refused"] * 3
    total = sum(r.amount.minor_units for r in world.service.refunds("shop", ref))
    assert total == IDR("90000").minor_units
    assert world.service.payment("shop", ref).status is S.PARTIALLY_REFUNDED


def test_a_provider_that_cannot_refund_says_so(world: World) -> None:
    class NoRefunds(FakeGateway):
        name = "fake_norefund"
        capabilities = FakeGateway.capabilities - {__import__("gateway_core").Capability.REFUND}

    world.service.gateways["plain"] = NoRefunds()  # type: ignore[index]
    with pytest.raises(UnsupportedOperation):
        world.service.refund("plain", "anything")


def test_reports_settling_one_refund_at_the_same_moment_settle_it_once(world: World) -> None:
    """Two deliveries of the same refund report racing (a webhook and its duplicate on two
    threads): the ledger settles the refund once, the other sees it settled, none fails."""
    ref = world.paid("O-11")
    record = world.service.payment("shop", ref)
    assert record.id is not None
    for round_ in range(8):
        refund, _ = world.ledger.request_refund(
            record.id, refund_key=f"O-11-r{round_}", amount=IDR("1000")
        )
        assert refund.id is not None
        results: list[Any] = []
        errors: list[BaseException] = []
        barrier = threading.Barrier(4)

        def settle(
            refund_id: int = refund.id,
            barrier: threading.Barrier = barrier,
            results: list[Any] = results,
            errors: list[BaseException] = errors,
        ) -> None:
            barrier.wait()
            try:
                results.append(world.ledger.settle_refund(refund_id, status=R.SUCCEEDED))
            except BaseException as exc:  # the test reports any failure
                errors.append(exc)

        threads = [threading.Thread(target=settle) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(r.changed for r in results) == [False, False, False, True]
    assert world.service.payment("shop", ref).status is S.PARTIALLY_REFUNDED
