"""The ledger contract: every test runs against SQLite and PostgreSQL alike.

PostgreSQL is the server named by ``$GATEWAY_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``); each test gets a throw-away schema. When the
server is unreachable its tests are skipped, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import sqlite3
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from gateway_core import EventKind, LedgerError, Money, PaymentEvent, PaymentStatus
from gateway_core.ledger import (
    SCHEMA_VERSION,
    ApplyResult,
    JournalEntry,
    Ledger,
    OutboxEvent,
    PaymentRecord,
    PostgresLedger,
    SQLiteLedger,
)
from gateway_core.ledger._postgres import mask_conninfo

POSTGRES_URL = os.environ.get("GATEWAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
T0 = datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
PENDING = PaymentStatus.PENDING
PAID = PaymentStatus.PAID
SIGNATURE = "0123456789abcdef0123456789abcdef01234567"


# -- the two backends ------------------------------------------------------------------------


@attrs.frozen
class Store:
    """Where a ledger lives; picklable, so a spawned process can open the same store."""

    kind: str
    target: str
    schema: str = ""

    def open(self, clock: Callable[[], datetime] | None = None) -> Ledger:
        if self.kind == "sqlite":
            return SQLiteLedger(self.target, clock=clock)
        return PostgresLedger(self.target, schema=self.schema, clock=clock)

    def raw(self, sql: str) -> None:
        """Run one statement outside the ledger (``{p}`` is the table prefix)."""
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.target, isolation_level=None)
            try:
                conn.execute(sql.format(p=""))
            finally:
                conn.close()
            return
        import psycopg

        with psycopg.connect(self.target, autocommit=True) as pg:
            pg.execute(sql.format(p=f'"{self.schema}".'))


@functools.cache
def _postgres_problem() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            pass
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip()}"
    return None


def require_postgres() -> None:
    problem = _postgres_problem()
    if problem is None:
        return
    message = (
        f"PostgreSQL is not reachable at {mask_conninfo(POSTGRES_URL)} "
        f"(set GATEWAY_TEST_POSTGRES to use another server): {problem}"
    )
    if os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}:
        pytest.fail(f"CI=true needs PostgreSQL: {message}", pytrace=False)
    pytest.skip(message)


def _drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Store]:
    if request.param == "sqlite":
        yield Store("sqlite", str(tmp_path / "ledger.db"))
        return
    require_postgres()
    schema = f"gw_test_{uuid.uuid4().hex[:16]}"
    try:
        yield Store("postgres", POSTGRES_URL, schema)
    finally:
        _drop_schema(schema)


@pytest.fixture
def ledger(store: Store) -> Iterator[Ledger]:
    with store.open() as opened:
        opened.migrate()
        yield opened


# -- builders --------------------------------------------------------------------------------


def new_payment(
    ledger: Ledger, reference: str = "BILL-1", *, gateway: str = "dana", **fields: Any
) -> PaymentRecord:
    values: dict[str, Any] = {
        "gateway": gateway,
        "provider": "faspay_dana",
        "order_reference": f"ORDER-{reference}",
        "merchant_reference": reference,
        "status": PENDING,
        "amount": Money("200000.00", "IDR"),
        "merchant_id": "99999",
        "expires_at": T0 + timedelta(hours=2),
        "created_at": T0,
    }
    values.update(fields)
    return ledger.insert_payment(PaymentRecord(**values))


def payment_event(
    record: PaymentRecord, kind: EventKind = EventKind.PAID, *, event_id: str = ""
) -> PaymentEvent:
    return PaymentEvent(
        event_id=event_id or f"{record.gateway}:{record.merchant_reference}:{kind.value}",
        kind=kind,
        provider=record.provider,
        order_reference=record.order_reference,
        merchant_reference=record.merchant_reference,
        status=PAID,
        amount=record.amount,
        occurred_at=T0 + timedelta(minutes=5),
        provider_reference="TRX-1",
        previous_status=PENDING,
        reason="",
        gateway_name=record.gateway,
    )


def outbox_event(
    record: PaymentRecord, kind: EventKind = EventKind.PAID, *, event_id: str = ""
) -> OutboxEvent:
    assert record.id is not None
    return OutboxEvent.from_event(payment_event(record, kind, event_id=event_id), record.id, now=T0)


def entry(reference: str = "BILL-1", body: str = "{}", verdict: str = "applied") -> JournalEntry:
    return JournalEntry(
        gateway="dana",
        merchant_reference=reference,
        kind="notification",
        verdict=verdict,
        reason="",
        body=body,
        received_at=T0,
    )


def pay(
    ledger: Ledger, record: PaymentRecord, *, receipt_key: str = "BILL-1:2", **kw: Any
) -> ApplyResult:
    assert record.id is not None
    return ledger.apply_transition(
        record.id,
        expected_status=kw.pop("expected_status", PENDING),
        new_status=kw.pop("new_status", PAID),
        source="notification",
        event_key=receipt_key,
        receipt_key=receipt_key,
        **kw,
    )


def current(ledger: Ledger, record: PaymentRecord) -> PaymentRecord:
    assert record.id is not None
    found = ledger.get_payment_by_id(record.id)
    assert found is not None
    return found


# -- schema ----------------------------------------------------------------------------------


def test_a_fresh_store_has_schema_version_zero_until_migrated(store: Store) -> None:
    with store.open() as ledger:
        assert ledger.schema_version() == 0
        ledger.migrate()
        assert ledger.schema_version() == SCHEMA_VERSION


def test_migrating_twice_is_harmless_and_keeps_data(store: Store, ledger: Ledger) -> None:
    record = new_payment(ledger)
    ledger.migrate()
    with store.open() as other:
        other.migrate()
        assert other.schema_version() == SCHEMA_VERSION
        assert other.get_payment("dana", "BILL-1") == record


def test_concurrent_migrations_of_a_fresh_store_all_succeed(store: Store) -> None:
    ledgers = [store.open() for _ in range(6)]
    barrier = threading.Barrier(len(ledgers))

    def migrate(ledger: Ledger) -> int:
        barrier.wait(timeout=30)
        ledger.migrate()
        return ledger.schema_version()

    try:
        with ThreadPoolExecutor(len(ledgers)) as pool:
            versions = list(pool.map(migrate, ledgers))
    finally:
        for ledger in ledgers:
            ledger.close()
    assert versions == [SCHEMA_VERSION] * len(ledgers)


def test_a_store_newer_than_the_library_is_refused(store: Store, ledger: Ledger) -> None:
    store.raw(
        "INSERT INTO {p}gw_schema_version (version, applied_at) "
        "VALUES (999, '2030-01-01T00:00:00+00:00')"
    )
    with pytest.raises(LedgerError, match="newer than this library"):
        ledger.migrate()


def test_a_closed_ledger_refuses_work(ledger: Ledger) -> None:
    ledger.close()
    with pytest.raises(LedgerError, match="closed"):
        ledger.get_payment("dana", "BILL-1")


# -- payments --------------------------------------------------------------------------------


def test_insert_sets_id_and_version_and_reads_back_equal(ledger: Ledger) -> None:
    record = new_payment(ledger, provider_reference="", attempt=1)
    assert record.id is not None
    assert record.version == 1
    assert ledger.get_payment("dana", "BILL-1") == record
    assert ledger.get_payment_by_id(record.id) == record
    assert ledger.get_payment("dana", "NOPE") is None
    assert ledger.get_payment("other", "BILL-1") is None
    assert ledger.get_payment_by_id(record.id + 1000) is None


def test_amount_round_trips_exactly_in_minor_units(ledger: Ledger) -> None:
    for reference, amount in [("A", Money("12.34", "USD")), ("B", Money("5", "JPY"))]:
        record = new_payment(ledger, reference, amount=amount)
        stored = current(ledger, record)
        assert stored.amount == amount
        assert stored.amount.currency == amount.currency


def test_a_duplicate_merchant_reference_at_the_same_gateway_is_refused(ledger: Ledger) -> None:
    new_payment(ledger)
    with pytest.raises(LedgerError, match="already has a payment") as raised:
        new_payment(ledger, order_reference="ORDER-OTHER")
    assert raised.value.merchant_reference == "BILL-1"
    # The same bill number at another gateway is a different payment.
    assert new_payment(ledger, gateway="ovo").id is not None


def test_an_order_cannot_have_two_attempts_with_the_same_number(ledger: Ledger) -> None:
    new_payment(ledger, "BILL-1", order_reference="ORDER-9", attempt=1)
    with pytest.raises(LedgerError, match="attempt 1"):
        new_payment(ledger, "BILL-2", order_reference="ORDER-9", attempt=1)


def test_payments_for_order_come_by_attempt(ledger: Ledger) -> None:
    second = new_payment(ledger, "BILL-B", order_reference="ORDER-9", attempt=2)
    first = new_payment(ledger, "BILL-A", order_reference="ORDER-9", attempt=1)
    new_payment(ledger, "BILL-C", order_reference="ORDER-10")
    assert ledger.payments_for_order("dana", "ORDER-9") == [first, second]
    assert ledger.payments_for_order("ovo", "ORDER-9") == []


def test_set_provider_reference_is_a_compare_and_set_on_version(ledger: Ledger) -> None:
    record = new_payment(ledger)
    assert record.id is not None
    updated = ledger.set_provider_reference(record.id, "TRX-1", expected_version=1)
    assert (updated.provider_reference, updated.version) == ("TRX-1", 2)
    with pytest.raises(LedgerError, match="changed since version 1"):
        ledger.set_provider_reference(record.id, "TRX-2", expected_version=1)
    assert current(ledger, record) == updated
    with pytest.raises(LedgerError, match="no payment"):
        ledger.set_provider_reference(record.id + 1000, "TRX-3", expected_version=1)


def test_mark_superseded_flags_once_and_bumps_the_version_once(ledger: Ledger) -> None:
    record = new_payment(ledger)
    assert record.id is not None
    flagged = ledger.mark_superseded(record.id)
    assert (flagged.superseded, flagged.version) == (True, 2)
    assert ledger.mark_superseded(record.id) == flagged
    with pytest.raises(LedgerError):
        ledger.mark_superseded(record.id + 1000)


# -- transitions -----------------------------------------------------------------------------


def test_an_applied_transition_commits_status_transition_event_receipt_and_journal(
    ledger: Ledger,
) -> None:
    record = new_payment(ledger)
    event = outbox_event(record)
    result = pay(ledger, record, events=[event], journal=entry())
    assert result is ApplyResult.APPLIED
    after = current(ledger, record)
    assert (after.status, after.version) == (PAID, 2)
    assert after.updated_at > record.updated_at
    [transition] = ledger.transitions(after.id or 0)
    assert (transition.from_status, transition.to_status) == (PENDING, PAID)
    assert (transition.source, transition.event_key) == ("notification", "BILL-1:2")
    assert [e.event_id for e in ledger.outbox(payment_id=record.id)] == [event.event_id]
    assert ledger.has_receipt("dana", "BILL-1:2")
    assert not ledger.has_receipt("ovo", "BILL-1:2")
    assert [j.verdict for j in ledger.journal("dana", "BILL-1")] == ["applied"]


def test_the_same_receipt_twice_is_a_duplicate_that_changes_nothing(ledger: Ledger) -> None:
    record = new_payment(ledger)
    assert pay(ledger, record, events=[outbox_event(record)], journal=entry()) is (
        ApplyResult.APPLIED
    )
    before = current(ledger, record)
    again = pay(
        ledger,
        before,
        expected_status=PAID,
        new_status=PaymentStatus.REVERSED,
        events=[outbox_event(record, EventKind.REVERSED)],
        journal=entry(verdict="duplicate"),
    )
    assert again is ApplyResult.DUPLICATE
    assert current(ledger, record) == before
    assert len(ledger.transitions(record.id or 0)) == 1
    assert len(ledger.outbox()) == 1
    assert len(ledger.journal()) == 1


def test_a_moved_status_is_a_conflict_that_writes_nothing(ledger: Ledger) -> None:
    record = new_payment(ledger)
    result = pay(
        ledger,
        record,
        expected_status=PaymentStatus.UNKNOWN,
        events=[outbox_event(record)],
        journal=entry(),
    )
    assert result is ApplyResult.CONFLICT
    assert current(ledger, record) == record
    assert ledger.transitions(record.id or 0) == []
    assert ledger.outbox() == []
    assert ledger.journal() == []
    # The receipt was rolled back with the rest, so the right transition can still use it.
    assert not ledger.has_receipt("dana", "BILL-1:2")
    assert pay(ledger, record) is ApplyResult.APPLIED


def test_without_a_receipt_key_only_the_status_guards_the_change(ledger: Ledger) -> None:
    record = new_payment(ledger)
    assert pay(ledger, record, receipt_key="") is ApplyResult.APPLIED
    assert pay(ledger, record, receipt_key="") is ApplyResult.CONFLICT


def test_receipts_are_scoped_to_the_gateway(ledger: Ledger) -> None:
    dana = new_payment(ledger, gateway="dana")
    ovo = new_payment(ledger, gateway="ovo")
    assert pay(ledger, dana) is ApplyResult.APPLIED
    assert pay(ledger, ovo) is ApplyResult.APPLIED


def test_a_failing_outbox_insert_rolls_the_whole_transition_back(ledger: Ledger) -> None:
    record = new_payment(ledger)
    assert record.id is not None
    # An event for a payment that does not exist breaks the outbox's foreign key, after the
    # receipt, the status change and the transition row were written in the same transaction.
    orphan = attrs.evolve(outbox_event(record), payment_id=record.id + 1000)
    with pytest.raises(LedgerError, match="apply_transition failed"):
        pay(ledger, record, events=[orphan], journal=entry())
    assert current(ledger, record) == record
    assert ledger.transitions(record.id) == []
    assert not ledger.has_receipt("dana", "BILL-1:2")
    assert ledger.outbox() == []
    assert ledger.journal() == []
    assert pay(ledger, record, events=[outbox_event(record)]) is ApplyResult.APPLIED


def test_a_transition_of_an_unknown_payment_is_an_error(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="no payment"):
        ledger.apply_transition(
            4242, expected_status=PENDING, new_status=PAID, source="notification"
        )


def test_an_event_id_already_in_the_outbox_is_not_enqueued_again(ledger: Ledger) -> None:
    record = new_payment(ledger)
    event = outbox_event(record)
    assert pay(ledger, record, events=[event, event]) is ApplyResult.APPLIED
    assert (
        ledger.record_without_transition(gateway="dana", receipt_key="other", events=[event])
        is ApplyResult.APPLIED
    )
    assert len(ledger.outbox()) == 1


def test_record_without_transition_dedupes_on_the_receipt(ledger: Ledger) -> None:
    record = new_payment(ledger)
    review = outbox_event(record, EventKind.NEEDS_REVIEW, event_id="review-1")
    first = ledger.record_without_transition(
        gateway="dana", receipt_key="review:1", events=[review], journal=entry(verdict="review")
    )
    second = ledger.record_without_transition(
        gateway="dana",
        receipt_key="review:1",
        events=[outbox_event(record, EventKind.NEEDS_REVIEW, event_id="review-2")],
        journal=entry(verdict="review"),
    )
    assert (first, second) == (ApplyResult.APPLIED, ApplyResult.DUPLICATE)
    assert [e.event_id for e in ledger.outbox()] == ["review-1"]
    assert len(ledger.journal()) == 1
    assert current(ledger, record) == record
    assert ledger.transitions(record.id or 0) == []
    # Without a receipt key nothing is deduplicated.
    assert ledger.record_without_transition(gateway="dana", journal=entry()) is (
        ApplyResult.APPLIED
    )
    assert ledger.record_without_transition(gateway="dana", journal=entry()) is (
        ApplyResult.APPLIED
    )
    assert len(ledger.journal()) == 3


# -- journal ---------------------------------------------------------------------------------


def test_the_journal_stores_bodies_redacted(ledger: Ledger) -> None:
    body = f'{{"signature": "{SIGNATURE}", "email": "john.doe@example.com"}}'
    stored = ledger.append_journal(entry(body=body))
    [read] = ledger.journal()
    assert read == stored
    assert read.id is not None
    assert SIGNATURE not in read.body
    assert "john.doe@example.com" not in read.body
    assert read.body.count("[redacted]") == 2


def test_the_journal_is_append_only(store: Store, ledger: Ledger) -> None:
    assert not any(hasattr(ledger, name) for name in ("update_journal", "delete_journal"))
    ledger.append_journal(entry(body="original"))
    with pytest.raises(Exception, match="append-only"):
        store.raw("UPDATE {p}gw_journal SET body = 'forged'")
    assert [j.body for j in ledger.journal()] == ["original"]


def test_journal_filters_and_returns_the_latest_entries_oldest_first(ledger: Ledger) -> None:
    for n in range(5):
        ledger.append_journal(entry("BILL-1", body=f"a{n}"))
        ledger.append_journal(entry("BILL-2", body=f"b{n}"))
    assert [j.body for j in ledger.journal("dana", "BILL-1", limit=3)] == ["a2", "a3", "a4"]
    assert [j.body for j in ledger.journal(merchant_reference="BILL-2", limit=2)] == ["b3", "b4"]
    assert len(ledger.journal(gateway="dana")) == 10
    assert ledger.journal(gateway="ovo") == []


# -- outbox ----------------------------------------------------------------------------------


def test_an_outbox_row_gives_back_the_event(ledger: Ledger) -> None:
    record = new_payment(ledger)
    event = payment_event(record)
    assert record.id is not None
    pay(ledger, record, events=[OutboxEvent.from_event(event, record.id, now=T0)])
    [stored] = ledger.outbox()
    assert stored.to_event() == event
    assert (stored.kind, stored.payment_id, stored.attempts) == (EventKind.PAID, record.id, 0)
    assert stored.created_at == stored.next_attempt_at == T0


def test_claims_lease_events_until_delivered_or_failed(ledger: Ledger) -> None:
    record = new_payment(ledger)
    first = outbox_event(record, EventKind.CREATED)
    second = outbox_event(record, EventKind.PAID)
    later = attrs.evolve(
        outbox_event(record, EventKind.FAILED), next_attempt_at=T0 + timedelta(hours=1)
    )
    ledger.record_without_transition(gateway="dana", events=[first, second, later])

    claimed = ledger.claim_events(now=T0, lease_seconds=60)
    assert [e.event_id for e in claimed] == [first.event_id, second.event_id]
    assert all(e.next_attempt_at == T0 + timedelta(seconds=60) for e in claimed)
    assert ledger.claim_events(now=T0 + timedelta(seconds=59)) == []  # leased
    again = ledger.claim_events(now=T0 + timedelta(seconds=60), limit=1)  # the lease ran out
    assert [e.event_id for e in again] == [first.event_id]

    ledger.mark_delivered(first.event_id, at=T0 + timedelta(seconds=61))
    ledger.mark_failed(
        second.event_id,
        error=f"hook raised for john@example.com, signature {SIGNATURE}",
        next_attempt_at=T0 + timedelta(minutes=10),
    )
    failed = {e.event_id: e for e in ledger.outbox()}[second.event_id]
    assert failed.attempts == 1
    assert "john@example.com" not in failed.last_error
    assert SIGNATURE not in failed.last_error
    assert "hook raised" in failed.last_error
    assert ledger.claim_events(now=T0 + timedelta(minutes=9)) == []
    due = ledger.claim_events(now=T0 + timedelta(hours=2))
    assert [e.event_id for e in due] == [second.event_id, later.event_id]
    assert [e.event_id for e in ledger.outbox(delivered=True)] == [first.event_id]
    assert [e.event_id for e in ledger.outbox(delivered=False)] == [
        second.event_id,
        later.event_id,
    ]


def test_delivery_marks_keep_the_first_delivery_and_ignore_late_failures(ledger: Ledger) -> None:
    record = new_payment(ledger)
    event = outbox_event(record)
    ledger.record_without_transition(gateway="dana", events=[event])
    ledger.mark_delivered(event.event_id, at=T0 + timedelta(seconds=1))
    ledger.mark_delivered(event.event_id, at=T0 + timedelta(seconds=2))
    ledger.mark_failed(event.event_id, error="late", next_attempt_at=T0)
    [stored] = ledger.outbox()
    assert stored.delivered_at == T0 + timedelta(seconds=1)
    assert (stored.attempts, stored.last_error) == (0, "")
    with pytest.raises(LedgerError, match="no outbox event"):
        ledger.mark_delivered("nope", at=T0)
    with pytest.raises(LedgerError, match="no outbox event"):
        ledger.mark_failed("nope", error="x", next_attempt_at=T0)


def test_claims_take_only_the_given_kinds_and_leave_the_rest_untouched(ledger: Ledger) -> None:
    record = new_payment(ledger)
    created = [outbox_event(record, EventKind.CREATED, event_id=f"c-{n}") for n in range(5)]
    paid = outbox_event(record, EventKind.PAID, event_id="p-1")
    failed = outbox_event(record, EventKind.FAILED, event_id="f-1")
    ledger.record_without_transition(gateway="dana", events=[*created, paid, failed])

    claimed = ledger.claim_events(now=T0, limit=1, kinds={EventKind.PAID, EventKind.FAILED})
    assert [e.event_id for e in claimed] == ["p-1"]
    assert ledger.claim_events(now=T0, kinds=[EventKind.EXPIRED]) == []
    assert ledger.claim_events(now=T0, kinds=()) == []
    untouched = {e.event_id: e for e in ledger.outbox()}
    for event in created:
        assert untouched[event.event_id].next_attempt_at == T0
        assert untouched[event.event_id].attempts == 0
    rest = ledger.claim_events(now=T0)  # no kinds: every kind
    assert [e.event_id for e in rest] == [*(e.event_id for e in created), "f-1"]


def test_the_outbox_filters_by_payment(ledger: Ledger) -> None:
    one = new_payment(ledger, "BILL-1")
    two = new_payment(ledger, "BILL-2")
    ledger.record_without_transition(gateway="dana", events=[outbox_event(one), outbox_event(two)])
    assert [e.payment_id for e in ledger.outbox(payment_id=two.id)] == [two.id]


def test_concurrent_claimers_never_share_a_leased_event(ledger: Ledger) -> None:
    record = new_payment(ledger)
    events = [outbox_event(record, event_id=f"ev-{n:03d}") for n in range(60)]
    ledger.record_without_transition(gateway="dana", events=events)
    barrier = threading.Barrier(4)

    def drain(_: int) -> list[str]:
        barrier.wait(timeout=30)
        mine: list[str] = []
        while batch := ledger.claim_events(now=T0, limit=7):
            mine.extend(e.event_id for e in batch)
        return mine

    with ThreadPoolExecutor(4) as pool:
        claimed = [eid for batch in pool.map(drain, range(4)) for eid in batch]
    assert sorted(claimed) == [e.event_id for e in events]


# -- time and queries ------------------------------------------------------------------------


def test_timestamps_come_back_timezone_aware_in_utc(ledger: Ledger) -> None:
    jakarta = timezone(timedelta(hours=7))
    created = datetime(2024, 5, 1, 17, 0, 0, 654321, tzinfo=jakarta)
    record = new_payment(ledger, created_at=created, expires_at=created + timedelta(hours=1))
    stored = current(ledger, record)
    for value in (stored.created_at, stored.updated_at, stored.expires_at):
        assert value is not None
        assert value.utcoffset() == timedelta(0)
    assert stored.created_at == created
    assert stored.created_at.hour == 10
    assert stored.expires_at == created + timedelta(hours=1)
    with pytest.raises(ValueError, match="timezone-aware"):
        attrs.evolve(record, created_at=datetime(2024, 5, 1, 10, 0))


def test_payments_to_reconcile_are_the_oldest_in_the_given_statuses(ledger: Ledger) -> None:
    def at(minutes: int) -> datetime:
        return T0 + timedelta(minutes=minutes)

    old = new_payment(ledger, "OLD", created_at=at(0), updated_at=at(10))
    oldest = new_payment(ledger, "OLDEST", created_at=at(0), updated_at=at(5))
    unknown = new_payment(ledger, "UNKNOWN", status=PaymentStatus.UNKNOWN, updated_at=at(20))
    new_payment(ledger, "PAID", status=PAID, updated_at=at(1))
    new_payment(ledger, "FRESH", updated_at=at(60))
    superseded = new_payment(ledger, "SUPERSEDED", superseded=True, updated_at=at(30))
    statuses = {PENDING, PaymentStatus.UNKNOWN}
    found = ledger.payments_to_reconcile(statuses=statuses, updated_before=at(60), limit=10)
    assert [p.merchant_reference for p in found] == [
        oldest.merchant_reference,
        old.merchant_reference,
        unknown.merchant_reference,
        superseded.merchant_reference,
    ]
    limited = ledger.payments_to_reconcile(statuses=statuses, updated_before=at(60), limit=2)
    assert limited == [oldest, old]
    assert ledger.payments_to_reconcile(statuses=(), updated_before=at(60), limit=10) == []


def test_payments_to_reconcile_take_the_least_recently_examined_first(ledger: Ledger) -> None:
    def at(minutes: int) -> datetime:
        return T0 + timedelta(minutes=minutes)

    first = new_payment(ledger, "FIRST", updated_at=at(1))
    second = new_payment(ledger, "SECOND", updated_at=at(2))
    third = new_payment(ledger, "THIRD", updated_at=at(3))
    assert first.id is not None
    assert second.id is not None
    assert third.id is not None
    statuses = {PENDING}

    def order() -> list[str]:
        found = ledger.payments_to_reconcile(statuses=statuses, updated_before=at(60), limit=10)
        return [p.merchant_reference for p in found]

    assert order() == ["FIRST", "SECOND", "THIRD"]  # never examined: longest unchanged first
    assert ledger.mark_examined([second.id, first.id], at=at(10)) == 2
    assert order() == ["THIRD", "FIRST", "SECOND"]  # never examined first; ties: unchanged
    ledger.mark_examined([first.id], at=at(15))
    assert order() == ["THIRD", "SECOND", "FIRST"]
    assert ledger.mark_examined([], at=at(11)) == 0
    assert ledger.mark_examined([999_999], at=at(11)) == 0


def test_marking_examined_is_not_a_change(ledger: Ledger) -> None:
    record = new_payment(ledger, updated_at=T0 + timedelta(minutes=1))
    assert record.id is not None
    assert record.last_examined_at is None
    ledger.mark_examined([record.id], at=T0 + timedelta(hours=1))
    stored = current(ledger, record)
    assert stored.last_examined_at == T0 + timedelta(hours=1)
    assert (stored.version, stored.updated_at) == (record.version, record.updated_at)
    assert attrs.evolve(stored, last_examined_at=None) == record
    # The compare-and-set on the version still takes the record read before the stamp.
    updated = ledger.set_provider_reference(record.id, "TRX-9", expected_version=record.version)
    assert updated.last_examined_at == T0 + timedelta(hours=1)


def test_payments_to_reconcile_filter_by_gateway_before_the_limit(ledger: Ledger) -> None:
    for n in range(5):
        new_payment(ledger, f"OVO-{n}", gateway="ovo", updated_at=T0 + timedelta(minutes=n))
    new_payment(ledger, "DANA-1", updated_at=T0 + timedelta(minutes=10))
    new_payment(ledger, "GONE-1", gateway="gone", updated_at=T0 + timedelta(minutes=11))

    def refs(gateways: Any) -> list[str]:
        found = ledger.payments_to_reconcile(
            statuses={PENDING}, updated_before=T0 + timedelta(hours=1), limit=2, gateways=gateways
        )
        return [p.merchant_reference for p in found]

    assert refs({"dana"}) == ["DANA-1"]
    assert refs(["dana", "gone"]) == ["DANA-1", "GONE-1"]
    assert refs(None) == ["OVO-0", "OVO-1"]
    assert refs(()) == []
    counts = ledger.count_to_reconcile(statuses={PENDING}, updated_before=T0 + timedelta(hours=1))
    assert counts == {"ovo": 5, "dana": 1, "gone": 1}
    assert ledger.count_to_reconcile(statuses={PENDING}, updated_before=T0) == {}
    assert ledger.count_to_reconcile(statuses=(), updated_before=T0 + timedelta(hours=1)) == {}


def test_list_payments_is_newest_first_and_filters(ledger: Ledger) -> None:
    for n in range(4):
        new_payment(
            ledger,
            f"BILL-{n}",
            gateway="dana" if n % 2 == 0 else "ovo",
            status=PAID if n == 3 else PENDING,
            created_at=T0 + timedelta(minutes=n),
        )
    assert [p.merchant_reference for p in ledger.list_payments()] == [
        "BILL-3",
        "BILL-2",
        "BILL-1",
        "BILL-0",
    ]
    assert [p.merchant_reference for p in ledger.list_payments(gateway="ovo")] == [
        "BILL-3",
        "BILL-1",
    ]
    assert [p.merchant_reference for p in ledger.list_payments(status=PENDING, limit=2)] == [
        "BILL-2",
        "BILL-1",
    ]
    counts = ledger.counts_by_status()
    assert counts[PENDING] == 3
    assert counts[PAID] == 1
    assert counts[PaymentStatus.REVERSED] == 0
    assert set(counts) == set(PaymentStatus)


# -- concurrency -----------------------------------------------------------------------------


def test_sixteen_threads_applying_one_notification_apply_it_once(ledger: Ledger) -> None:
    record = new_payment(ledger)
    event = outbox_event(record)
    barrier = threading.Barrier(16)

    def deliver(_: int) -> ApplyResult:
        ledger.has_receipt("dana", "warm-up")  # open this thread's connection first
        barrier.wait(timeout=30)
        return pay(ledger, record, events=[event], journal=entry())

    with ThreadPoolExecutor(16) as pool:
        results = Counter(pool.map(deliver, range(16)))
    assert results[ApplyResult.APPLIED] == 1
    assert results[ApplyResult.DUPLICATE] == 15
    assert len(ledger.transitions(record.id or 0)) == 1
    assert len(ledger.outbox()) == 1
    assert len(ledger.journal()) == 1
    assert current(ledger, record).version == 2


def test_sixteen_threads_racing_different_receipts_change_the_status_once(
    ledger: Ledger,
) -> None:
    record = new_payment(ledger)
    barrier = threading.Barrier(16)

    def deliver(n: int) -> ApplyResult:
        ledger.has_receipt("dana", "warm-up")
        barrier.wait(timeout=30)
        return pay(ledger, record, receipt_key=f"source-{n}")

    with ThreadPoolExecutor(16) as pool:
        results = Counter(pool.map(deliver, range(16)))
    assert results == Counter({ApplyResult.APPLIED: 1, ApplyResult.CONFLICT: 15})
    assert len(ledger.transitions(record.id or 0)) == 1


def _deliver_from_process(
    store: Store,
    payment_id: int,
    event: OutboxEvent,
    attempts: int,
    barrier: Any,
    results: Any,
) -> None:
    """Runs in a spawned process: apply the same notification ``attempts`` times."""
    counts: Counter[str] = Counter()
    try:
        with store.open() as ledger:
            ledger.has_receipt("dana", "warm-up")
            barrier.wait(timeout=60)
            for _ in range(attempts):
                result = ledger.apply_transition(
                    payment_id,
                    expected_status=PENDING,
                    new_status=PAID,
                    source="notification",
                    event_key="BILL-1:2",
                    receipt_key="BILL-1:2",
                    events=[event],
                )
                counts[result.value] += 1
    except Exception as exc:
        counts[f"error: {type(exc).__name__}: {exc}"] += 1
    results.put(dict(counts))


def test_four_processes_applying_one_notification_apply_it_once(
    store: Store, ledger: Ledger
) -> None:
    record = new_payment(ledger)
    assert record.id is not None
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    results = context.Queue()
    processes = [
        context.Process(
            target=_deliver_from_process,
            args=(store, record.id, outbox_event(record), 20, barrier, results),
        )
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    try:
        totals: Counter[str] = Counter()
        for _ in processes:
            totals.update(results.get(timeout=120))
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():  # pragma: no cover - only when the test already failed
                process.kill()
    assert totals == Counter({"applied": 1, "duplicate": 79})
    assert len(ledger.transitions(record.id)) == 1
    assert len(ledger.outbox()) == 1
    assert current(ledger, record).status is PAID


# -- PostgreSQL only -------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_postgres_connection_dropped_by_the_server_is_replaced() -> None:
    require_postgres()
    store = Store("postgres", POSTGRES_URL, f"gw_test_{uuid.uuid4().hex[:16]}")
    try:
        with store.open() as ledger:
            assert isinstance(ledger, PostgresLedger)
            ledger.migrate()
            record = new_payment(ledger)
            backend = ledger._connection().info.backend_pid
            store.raw(f"SELECT pg_terminate_backend({backend:d})")
            assert current(ledger, record) == record
            assert ledger._connection().info.backend_pid != backend
    finally:
        _drop_schema(store.schema)
