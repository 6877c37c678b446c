"""The outbox claims only the event kinds this process handles (issue 9, item 4).

An order system that implements only ``gateway_payment_paid`` must get a new paid event in
the first delivery pass, however many ``created`` events (which nobody here handles) are
waiting before it, and those events must cost nothing: no claim, no attempt, no write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway_core import (
    EventKind,
    Money,
    PaymentEvent,
    PaymentService,
    PaymentStatus,
    PluginHost,
    hookimpl,
)
from gateway_core.ledger import Ledger, OutboxEvent, PaymentRecord

UNHANDLED = 1_000
NOW = datetime.now(UTC).replace(microsecond=0)


class PaidOnly:
    """An order system that cares about paid payments only."""

    def __init__(self) -> None:
        self.paid: list[str] = []

    @hookimpl
    def gateway_payment_paid(self, event: PaymentEvent) -> None:
        self.paid.append(event.event_id)


def event(record: PaymentRecord, kind: EventKind, n: int, at: datetime) -> OutboxEvent:
    assert record.id is not None
    return OutboxEvent.from_event(
        PaymentEvent(
            event_id=f"{kind.value}-{n}",
            kind=kind,
            provider=record.provider,
            order_reference=record.order_reference,
            merchant_reference=record.merchant_reference,
            status=PaymentStatus.PAID if kind is EventKind.PAID else PaymentStatus.PENDING,
            amount=record.amount,
            occurred_at=at,
            gateway_name=record.gateway,
        ),
        record.id,
        now=at,
    )


class WriteCounter:
    """Counts the ledger's write transactions (wraps its transaction runner)."""

    def __init__(self, ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
        self.writes: list[str] = []
        run: Callable[..., Any] = ledger._run  # type: ignore[attr-defined]

        def counting(operation: str, work: Any, *, write: bool) -> Any:
            if write:
                self.writes.append(operation)
            return run(operation, work, write=write)

        monkeypatch.setattr(ledger, "_run", counting)


@pytest.fixture
def ledger(any_store: Any) -> Iterator[Ledger]:
    with any_store.open() as opened:
        opened.migrate()
        yield opened


@pytest.fixture
def backlog(ledger: Ledger) -> PaymentRecord:
    """One payment with 1,000 due ``created`` events, an hour old."""
    record = ledger.insert_payment(
        PaymentRecord(
            gateway="shop",
            provider="stub",
            order_reference="order-1",
            merchant_reference="order-1-1",
            status=PaymentStatus.PENDING,
            amount=Money("10.00", "USD"),
            created_at=NOW - timedelta(hours=1),
        )
    )
    created = [
        event(record, EventKind.CREATED, n, NOW - timedelta(hours=1) + timedelta(milliseconds=n))
        for n in range(UNHANDLED)
    ]
    ledger.record_without_transition(gateway="shop", events=created)
    return record


def test_a_new_paid_event_is_delivered_in_the_first_pass_behind_unhandled_ones(
    ledger: Ledger, backlog: PaymentRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_system = PaidOnly()
    host = PluginHost(entry_points=False, plugins=[order_system])
    service = PaymentService(gateways={}, ledger=ledger, hooks=host.hooks, clock=lambda: NOW)
    paid = event(backlog, EventKind.PAID, 0, NOW)
    ledger.record_without_transition(gateway="shop", events=[paid])
    before = {e.event_id: e for e in ledger.outbox(delivered=False)}
    counter = WriteCounter(ledger, monkeypatch)

    first = service.deliver_events()

    assert (first.delivered, first.failed) == (1, 0)
    assert order_system.paid == ["paid-0"]
    # The claim, then the pass's delivery marks in one transaction.
    assert counter.writes == ["claim_events", "flush_deferred"]
    counter.writes.clear()
    for _ in range(3):
        again = service.deliver_events()
        assert (again.delivered, again.failed) == (0, 0)
    assert counter.writes == []  # nothing this process handles is due: reads only
    after = {e.event_id: e for e in ledger.outbox(delivered=False)}
    assert set(after) == set(before) - {"paid-0"}
    for event_id, stored in after.items():
        assert (stored.attempts, stored.last_error) == (0, "")
        assert stored.next_attempt_at == before[event_id].next_attempt_at


def test_unhandled_events_stay_pending_for_a_process_that_handles_them(
    ledger: Ledger, backlog: PaymentRecord
) -> None:
    paid_only = PluginHost(entry_points=False, plugins=[PaidOnly()])
    PaymentService(gateways={}, ledger=ledger, hooks=paid_only.hooks).deliver_events()
    assert len(ledger.outbox(delivered=False)) == UNHANDLED

    class CreatedToo:
        def __init__(self) -> None:
            self.seen = 0

        @hookimpl
        def gateway_payment_created(self, event: PaymentEvent) -> None:
            self.seen += 1

    handler = CreatedToo()
    host = PluginHost(entry_points=False, plugins=[handler])
    report = PaymentService(gateways={}, ledger=ledger, hooks=host.hooks).redeliver()
    assert (report.delivered, handler.seen) == (UNHANDLED, UNHANDLED)
    assert ledger.outbox(delivered=False) == []
