"""The ledger contract, continued: the one-transaction write of a transition
(:meth:`Ledger.commit_transition`, :meth:`Ledger.commit_record`) and the deferred writes
(:meth:`Ledger.defer_journal`, :meth:`Ledger.defer_delivered`, :meth:`Ledger.flush`), on
SQLite and PostgreSQL alike (``any_store``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from gateway_core import EventKind, Money, PaymentEvent, PaymentStatus
from gateway_core.ledger import (
    ApplyResult,
    JournalEntry,
    Ledger,
    OutboxEvent,
    PaymentRecord,
    WriteOutcome,
)
from gateway_core.ledger._deferred import MAX_ITEMS

T0 = datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
PENDING, PAID = PaymentStatus.PENDING, PaymentStatus.PAID
SIGNATURE = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def ledger(any_store: Any) -> Iterator[Ledger]:
    opened = any_store.open()
    opened.migrate()
    try:
        yield opened
    finally:
        opened.close()


def new_payment(ledger: Ledger, reference: str = "BILL-1") -> PaymentRecord:
    return ledger.insert_payment(
        PaymentRecord(
            gateway="dana",
            provider="faspay_dana",
            order_reference=f"ORDER-{reference}",
            merchant_reference=reference,
            status=PENDING,
            amount=Money("200000.00", "IDR"),
            merchant_id="99999",
            created_at=T0,
        )
    )


def event(record: PaymentRecord, kind: EventKind = EventKind.PAID) -> OutboxEvent:
    assert record.id is not None
    return OutboxEvent.from_event(
        PaymentEvent(
            event_id=f"dana:{record.merchant_reference}:{kind.value}",
            kind=kind,
            provider=record.provider,
            order_reference=record.order_reference,
            merchant_reference=record.merchant_reference,
            status=PAID,
            amount=record.amount,
            occurred_at=T0,
            gateway_name="dana",
        ),
        record.id,
        now=T0,
    )


def entry(verdict: str = "duplicate", body: str = "{}", **extra: Any) -> JournalEntry:
    return JournalEntry(
        gateway="dana",
        merchant_reference="BILL-1",
        kind="notification",
        verdict=verdict,
        body=body,
        received_at=T0,
        **extra,
    )


def commit_paid(ledger: Ledger, record: PaymentRecord, **kw: Any) -> WriteOutcome:
    assert record.id is not None
    return ledger.commit_transition(
        record.id,
        expected_status=kw.pop("expected_status", PENDING),
        new_status=PAID,
        source="notification",
        event_key="BILL-1:2",
        receipt_key=kw.pop("receipt_key", "order-paid:ORDER-BILL-1"),
        receipt_scope="*",
        **kw,
    )


def test_commit_transition_hands_back_the_committed_payment_and_the_events_added(
    ledger: Ledger,
) -> None:
    record = new_payment(ledger)
    other = new_payment(ledger, "BILL-2")
    already = event(other)
    assert ledger.commit_record(gateway="dana", events=[already]).inserted == (already.event_id,)
    # An event id already in the outbox is not added again, and not reported as added.
    outcome = commit_paid(ledger, record, events=[event(record), already], journal=entry("applied"))
    assert outcome.result is ApplyResult.APPLIED
    assert outcome.inserted == (event(record).event_id,)
    assert outcome.record is not None
    assert outcome.record == ledger.get_payment_by_id(record.id or 0)
    assert (outcome.record.status, outcome.record.version) == (PAID, record.version + 1)
    assert commit_paid(ledger, record) == WriteOutcome(ApplyResult.DUPLICATE)
    assert commit_paid(ledger, record, receipt_key="") == WriteOutcome(ApplyResult.CONFLICT)
    assert ledger.commit_record(gateway="dana", receipt_key="r", events=[event(record)]) == (
        WriteOutcome(ApplyResult.APPLIED)  # the event was there already
    )
    assert ledger.commit_record(gateway="dana", receipt_key="r") == (
        WriteOutcome(ApplyResult.DUPLICATE)
    )


def test_deferred_writes_go_with_the_next_write_transaction(ledger: Ledger, any_store: Any) -> None:
    record = new_payment(ledger)
    ledger.commit_record(gateway="dana", events=[event(record)])
    ledger.defer_journal(entry())
    ledger.defer_delivered(event(record).event_id, at=T0)
    # Nothing is written yet: another ledger object on the same store sees none of it.
    other = any_store.open()
    try:
        assert other.journal() == []
        assert other.outbox(delivered=False) != []
        # A write that rolls back (a conflict) keeps them pending...
        assert commit_paid(ledger, record, expected_status=PAID).result is ApplyResult.CONFLICT
        assert other.journal() == []
        # ...and the next write that commits carries them.
        new_payment(ledger, "BILL-9")
        assert [e.verdict for e in other.journal()] == ["duplicate"]
        [stored] = other.outbox()
        assert stored.delivered_at == T0
    finally:
        other.close()


def test_a_flush_a_read_of_the_journal_and_close_write_what_was_deferred(
    ledger: Ledger, any_store: Any
) -> None:
    ledger.defer_journal(entry("ignored"))
    ledger.flush()
    ledger.flush()  # nothing left: harmless
    assert [e.verdict for e in any_store.open().journal()] == ["ignored"]
    ledger.defer_journal(entry())
    assert [e.verdict for e in ledger.journal()] == ["ignored", "duplicate"]  # read your lines
    ledger.defer_journal(entry("applied"))
    ledger.close()
    reopened = any_store.open()
    try:
        assert [e.verdict for e in reopened.journal()] == ["ignored", "duplicate", "applied"]
    finally:
        reopened.close()


def test_a_full_buffer_is_written_by_the_deferral_that_fills_it(
    ledger: Ledger, any_store: Any
) -> None:
    for _ in range(MAX_ITEMS - 1):
        ledger.defer_journal(entry())
    other = any_store.open()
    try:
        assert other.journal() == []
        ledger.defer_journal(entry())
        assert len(other.journal(limit=10 * MAX_ITEMS)) == MAX_ITEMS
    finally:
        other.close()


def test_a_deferred_line_that_cannot_be_written_does_not_block_other_writes(
    ledger: Ledger,
) -> None:
    # Not a valid line for the store (a bad timestamp sneaks past the attrs validators).
    broken = attrs.evolve(entry(), received_at=T0)
    object.__setattr__(broken, "received_at", "not a time")
    ledger.defer_journal(broken)
    record = new_payment(ledger)  # commits, without the broken line
    assert record.id is not None
    assert ledger.journal() == []


def test_an_entry_marked_redacted_is_stored_as_it_is_others_are_redacted(ledger: Ledger) -> None:
    secret = f'{{"signature": "{SIGNATURE}"}}'
    ledger.append_journal(entry(body=secret))
    ledger.append_journal(entry(body="already [redacted] once", redacted=True))
    first, second = ledger.journal()
    assert SIGNATURE not in first.body
    assert second.body == "already [redacted] once"
    assert timedelta(0) == second.received_at - T0
