"""The ledger written once over SQL, for both backends.

The two backends (:mod:`._sqlite`, :mod:`._postgres`) run the same statements
(:mod:`._statements`); each renders them for its driver and supplies a transaction runner and
the few conversions that differ (timestamps, JSON). Everything that decides *what* is
written, and in which order inside a transaction, lives in :class:`SQLLedger`, so the two
cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs

from gateway_core._events import EventKind
from gateway_core._exceptions import LedgerError
from gateway_core._models import PaymentStatus, json_object
from gateway_core._redact import redact_text
from gateway_core.ledger import _statements as st
from gateway_core.ledger._base import MAX_ERROR_LENGTH, WriteOutcome
from gateway_core.ledger._records import (
    ApplyResult,
    JournalEntry,
    OutboxEvent,
    PaymentRecord,
    TransitionRecord,
    to_utc,
)
from gateway_core.ledger._sql_leases import SQLLeases
from gateway_core.ledger._sql_machinery import _MARK_BATCH, _marks
from gateway_core.ledger._sql_refunds import SQLRefunds
from gateway_core.ledger._sql_stats import SQLStats
from gateway_core.ledger._statements import Rollback, Tx, check_limit, where


class SQLLedger(SQLStats, SQLLeases, SQLRefunds):
    """The ledger written once over a small backend interface (see the module docstring)."""

    # -- payments ----------------------------------------------------------------------------

    def insert_payment(self, record: PaymentRecord) -> PaymentRecord:
        if not isinstance(record, PaymentRecord):
            raise TypeError("insert_payment takes a PaymentRecord")
        if record.id is not None:
            raise LedgerError(
                "this payment record is already stored (it has an id)",
                provider=record.provider,
                merchant_reference=record.merchant_reference,
            )
        params = (
            record.gateway,
            record.provider,
            record.order_reference,
            record.merchant_reference,
            record.provider_reference,
            record.status.value,
            record.amount.minor_units,
            record.amount.currency,
            record.merchant_id,
            record.attempt,
            record.superseded,
            self._time_or_none(record.expires_at),
            self._dump_time(record.created_at),
            self._dump_time(record.updated_at),
            self._time_or_none(record.last_examined_at),
            self._dump_json(record.provider_data),
            record.idempotency_key,
            record.method,
        )

        def work(tx: Tx) -> int:
            row = tx.one(self._sql(st.INSERT_PAYMENT), params)
            if row is not None:
                return int(row[0])
            taken = tx.one(
                self._sql(
                    "SELECT 1 FROM {p}gw_payments WHERE gateway = ? AND merchant_reference = ?"
                ),
                (record.gateway, record.merchant_reference),
            )
            if taken is not None:
                raise LedgerError(
                    f"gateway {record.gateway!r} already has a payment with this merchant "
                    "reference",
                    provider=record.provider,
                    merchant_reference=record.merchant_reference,
                )
            raise LedgerError(
                f"order {record.order_reference!r} at gateway {record.gateway!r} already has "
                f"attempt {record.attempt}",
                provider=record.provider,
                merchant_reference=record.merchant_reference,
            )

        new_id = self._write("insert_payment", work)
        return attrs.evolve(record, id=new_id, version=1)

    def get_payment(self, gateway: str, merchant_reference: str) -> PaymentRecord | None:
        def work(tx: Tx) -> PaymentRecord | None:
            row = tx.one(
                self._sql(st.SELECT_PAYMENT + " WHERE gateway = ? AND merchant_reference = ?"),
                (gateway, merchant_reference),
            )
            return None if row is None else self._payment(row)

        return self._run("get_payment", work, write=False)

    def get_payment_by_id(self, payment_id: int) -> PaymentRecord | None:
        return self._run(
            "get_payment_by_id", lambda tx: self._fetch_payment(tx, payment_id), write=False
        )

    def payments_for_order(self, gateway: str, order_reference: str) -> list[PaymentRecord]:
        def work(tx: Tx) -> list[PaymentRecord]:
            rows = tx.all(
                self._sql(
                    st.SELECT_PAYMENT + " WHERE gateway = ? AND order_reference = ? "
                    "ORDER BY attempt, id"
                ),
                (gateway, order_reference),
            )
            return [self._payment(row) for row in rows]

        return self._run("payments_for_order", work, write=False)

    def set_provider_reference(
        self,
        payment_id: int,
        provider_reference: str,
        *,
        expected_version: int,
        provider_data: Mapping[str, Any] | None = None,
    ) -> PaymentRecord:
        if not isinstance(provider_reference, str):
            raise TypeError("provider_reference must be a str")
        if provider_data is None:
            statement = st.CAS_PROVIDER_REFERENCE
            values: tuple[Any, ...] = (provider_reference,)
        else:
            statement = st.CAS_PROVIDER_REFERENCE_AND_DATA
            values = (provider_reference, self._dump_json(json_object(provider_data)))

        def work(tx: Tx) -> PaymentRecord:
            changed = tx.execute(
                self._sql(statement),
                (*values, self._dump_time(self._now()), payment_id, expected_version),
            )
            current = self._fetch_payment(tx, payment_id)
            if current is None:
                raise LedgerError(f"no payment with id {payment_id}")
            if not changed:
                raise LedgerError(
                    f"payment {payment_id} changed since version {expected_version} "
                    f"(now version {current.version})",
                    provider=current.provider,
                    merchant_reference=current.merchant_reference,
                )
            return current

        return self._write("set_provider_reference", work)

    def mark_superseded(self, payment_id: int) -> PaymentRecord:
        def work(tx: Tx) -> PaymentRecord:
            tx.execute(
                self._sql(st.SUPERSEDE), (True, self._dump_time(self._now()), payment_id, False)
            )
            current = self._fetch_payment(tx, payment_id)
            if current is None:
                raise LedgerError(f"no payment with id {payment_id}")
            return current

        return self._write("mark_superseded", work)

    # -- transitions, receipts ---------------------------------------------------------------

    def apply_transition(
        self,
        payment_id: int,
        *,
        expected_status: PaymentStatus,
        new_status: PaymentStatus,
        source: str,
        event_key: str = "",
        receipt_key: str = "",
        receipt_scope: str | None = None,
        events: Iterable[OutboxEvent] = (),
        journal: JournalEntry | None = None,
    ) -> ApplyResult:
        return self.commit_transition(
            payment_id,
            expected_status=expected_status,
            new_status=new_status,
            source=source,
            event_key=event_key,
            receipt_key=receipt_key,
            receipt_scope=receipt_scope,
            events=events,
            journal=journal,
        ).result

    def commit_transition(
        self,
        payment_id: int,
        *,
        expected_status: PaymentStatus,
        new_status: PaymentStatus,
        source: str,
        event_key: str = "",
        receipt_key: str = "",
        receipt_scope: str | None = None,
        events: Iterable[OutboxEvent] = (),
        journal: JournalEntry | None = None,
    ) -> WriteOutcome:
        # Validates the arguments before any I/O (source, statuses, types).
        TransitionRecord(
            payment_id=payment_id,
            from_status=expected_status,
            to_status=new_status,
            source=source,
            event_key=event_key,
        )
        if not isinstance(receipt_key, str):
            raise TypeError("receipt_key must be a str")
        if receipt_scope is not None and (not isinstance(receipt_scope, str) or not receipt_scope):
            raise ValueError("receipt_scope must be a non-empty str")
        events = tuple(events)

        def work(tx: Tx) -> WriteOutcome:
            now = self._now()
            if receipt_key:
                scope = receipt_scope
                if scope is None:  # the payment's gateway
                    row = tx.one(self._sql(st.PAYMENT_GATEWAY), (payment_id,))
                    if row is None:
                        raise LedgerError(f"no payment with id {payment_id}")
                    scope = row[0]
                if not self._insert_receipt(tx, scope, receipt_key, payment_id, now):
                    raise Rollback(WriteOutcome(ApplyResult.DUPLICATE))
            row = tx.one(
                self._sql(st.CAS_STATUS_RETURNING),
                (new_status.value, self._dump_time(now), payment_id, expected_status.value),
            )
            if row is None:
                if tx.one(self._sql(st.PAYMENT_EXISTS), (payment_id,)) is None:
                    raise LedgerError(f"no payment with id {payment_id}")
                raise Rollback(WriteOutcome(ApplyResult.CONFLICT))
            tx.execute(
                self._sql(st.INSERT_TRANSITION),
                (
                    payment_id,
                    expected_status.value,
                    new_status.value,
                    source,
                    event_key,
                    self._dump_time(now),
                ),
            )
            inserted = self._insert_events(tx, events)
            if journal is not None:
                self._insert_journal(tx, journal)
            return WriteOutcome(ApplyResult.APPLIED, self._payment(row), inserted)

        return self._write("apply_transition", work)

    def record_without_transition(
        self,
        *,
        gateway: str,
        receipt_key: str = "",
        events: Iterable[OutboxEvent] = (),
        journal: JournalEntry | None = None,
    ) -> ApplyResult:
        return self.commit_record(
            gateway=gateway, receipt_key=receipt_key, events=events, journal=journal
        ).result

    def commit_record(
        self,
        *,
        gateway: str,
        receipt_key: str = "",
        events: Iterable[OutboxEvent] = (),
        journal: JournalEntry | None = None,
    ) -> WriteOutcome:
        if not isinstance(gateway, str) or not gateway:
            raise ValueError("gateway must be a non-empty str")
        events = tuple(events)

        def work(tx: Tx) -> WriteOutcome:
            if receipt_key and not self._insert_receipt(
                tx, gateway, receipt_key, None, self._now()
            ):
                raise Rollback(WriteOutcome(ApplyResult.DUPLICATE))
            inserted = self._insert_events(tx, events)
            if journal is not None:
                self._insert_journal(tx, journal)
            return WriteOutcome(ApplyResult.APPLIED, None, inserted)

        return self._write("record_without_transition", work)

    def has_receipt(self, gateway: str, receipt_key: str) -> bool:
        return self._run(
            "has_receipt",
            lambda tx: tx.one(self._sql(st.HAS_RECEIPT), (gateway, receipt_key)) is not None,
            write=False,
        )

    def transitions(self, payment_id: int) -> list[TransitionRecord]:
        def work(tx: Tx) -> list[TransitionRecord]:
            rows = tx.all(self._sql(st.SELECT_TRANSITIONS), (payment_id,))
            return [self._transition(row) for row in rows]

        return self._run("transitions", work, write=False)

    # -- journal -----------------------------------------------------------------------------

    def append_journal(self, entry: JournalEntry) -> JournalEntry:
        if not isinstance(entry, JournalEntry):
            raise TypeError("append_journal takes a JournalEntry")
        return self._write("append_journal", lambda tx: self._insert_journal(tx, entry))

    def journal(
        self,
        gateway: str | None = None,
        merchant_reference: str | None = None,
        limit: int = 1000,
    ) -> list[JournalEntry]:
        conditions: list[str] = []
        params: list[Any] = []
        if gateway is not None:
            conditions.append("gateway = ?")
            params.append(gateway)
        if merchant_reference is not None:
            conditions.append("merchant_reference = ?")
            params.append(merchant_reference)
        params.append(check_limit(limit))
        sql = self._sql(st.SELECT_JOURNAL + where(conditions) + " ORDER BY id DESC LIMIT ?")
        self.flush()  # a reader of this ledger sees the lines it deferred

        def work(tx: Tx) -> list[JournalEntry]:
            return [self._journal_entry(row) for row in reversed(tx.all(sql, tuple(params)))]

        return self._run("journal", work, write=False)

    def prune_journal(self, older_than: datetime) -> int:
        if not isinstance(older_than, datetime) or older_than.tzinfo is None:
            raise TypeError("older_than must be an aware datetime")
        sql, cutoff = self._sql(st.PRUNE_JOURNAL), self._dump_time(older_than)
        return self._write("prune_journal", lambda tx: tx.execute(sql, (cutoff,)))

    # -- outbox ------------------------------------------------------------------------------

    def claim_events(
        self,
        *,
        now: datetime,
        limit: int = 100,
        lease_seconds: float = 60,
        lease_from: datetime | None = None,
        kinds: Collection[EventKind] | None = None,
    ) -> list[OutboxEvent]:
        now = to_utc(now)
        check_limit(limit)
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        lease_until = (to_utc(lease_from) if lease_from else now) + timedelta(seconds=lease_seconds)
        wanted = () if kinds is None else tuple(sorted({EventKind(k).value for k in kinds}))
        if kinds is not None and not wanted:
            return []
        only = f" AND kind IN ({', '.join(['?'] * len(wanted))})" if wanted else ""
        due = (self._dump_time(now), *wanted)
        any_due = self._render(st.ANY_DUE, kinds=only)
        # A read first: most calls find nothing due, and need no write transaction (on SQLite
        # a write transaction takes the database's single write lock).
        if not self._run("claim_events", lambda tx: tx.all(any_due, due), write=False):
            return []
        claim = self._render(st.CLAIM, kinds=only)

        def work(tx: Tx) -> list[OutboxEvent]:
            rows = tx.all(claim, (*due, limit))
            if not rows:
                return []
            ids = tuple(int(row[0]) for row in rows)
            lease = self._render(st.LEASE, ids=", ".join(["?"] * len(ids)))
            tx.execute(lease, (self._dump_time(lease_until), *ids))
            return [attrs.evolve(self._event(row), next_attempt_at=lease_until) for row in rows]

        return self._write("claim_events", work)

    def mark_delivered(self, event_id: str, *, at: datetime) -> None:
        params = (self._dump_time(at), event_id)

        def work(tx: Tx) -> None:
            if not tx.execute(self._sql(st.DELIVERED), params):
                raise LedgerError(f"no outbox event {event_id!r}")

        self._write("mark_delivered", work)

    def mark_failed(self, event_id: str, *, error: str, next_attempt_at: datetime) -> None:
        params = (
            redact_text(str(error))[:MAX_ERROR_LENGTH],
            self._dump_time(next_attempt_at),
            event_id,
        )

        def work(tx: Tx) -> None:
            if tx.execute(self._sql(st.FAILED), params):
                return
            if tx.one(self._sql(st.EVENT_EXISTS), (event_id,)) is None:
                raise LedgerError(f"no outbox event {event_id!r}")

        self._write("mark_failed", work)

    def outbox(
        self, payment_id: int | None = None, delivered: bool | None = None
    ) -> list[OutboxEvent]:
        conditions: list[str] = []
        params: list[Any] = []
        if payment_id is not None:
            conditions.append("payment_id = ?")
            params.append(payment_id)
        if delivered is not None:
            conditions.append("delivered_at IS NOT NULL" if delivered else "delivered_at IS NULL")
        sql = self._sql(st.SELECT_OUTBOX + where(conditions) + " ORDER BY id")
        self.flush()  # and the deliveries it recorded

        def work(tx: Tx) -> list[OutboxEvent]:
            return [self._event(row) for row in tx.all(sql, tuple(params))]

        return self._run("outbox", work, write=False)

    # -- queries -----------------------------------------------------------------------------

    def payments_to_reconcile(
        self,
        *,
        statuses: Collection[PaymentStatus],
        updated_before: datetime,
        limit: int,
        gateways: Collection[str] | None = None,
    ) -> list[PaymentRecord]:
        wanted = sorted({PaymentStatus(s).value for s in statuses})
        check_limit(limit)
        names = None if gateways is None else sorted({str(g) for g in gateways})
        if not wanted or limit == 0 or names == []:
            return []
        only = "" if names is None else f" AND gateway IN ({', '.join(['?'] * len(names))})"
        sql = self._render(st.TO_RECONCILE, statuses=_marks(wanted), only_gateways=only)
        params = (*wanted, self._dump_time(updated_before), *(names or ()), limit)

        def work(tx: Tx) -> list[PaymentRecord]:
            return [self._payment(row) for row in tx.all(sql, params)]

        return self._run("payments_to_reconcile", work, write=False)

    def count_to_reconcile(
        self, *, statuses: Collection[PaymentStatus], updated_before: datetime
    ) -> dict[str, int]:
        wanted = sorted({PaymentStatus(s).value for s in statuses})
        if not wanted:
            return {}
        sql = self._render(st.COUNT_TO_RECONCILE, statuses=_marks(wanted))
        params = (*wanted, self._dump_time(updated_before))
        rows = self._run("count_to_reconcile", lambda tx: tx.all(sql, params), write=False)
        return {str(gateway): int(count) for gateway, count in rows}

    def mark_examined(self, payment_ids: Iterable[int], *, at: datetime) -> int:
        ids = sorted({int(i) for i in payment_ids})  # one lock order for concurrent markers
        stamp = self._dump_time(to_utc(at))

        def work(tx: Tx) -> int:
            changed = 0
            for start in range(0, len(ids), _MARK_BATCH):
                chunk = ids[start : start + _MARK_BATCH]
                sql = self._render(st.MARK_EXAMINED, ids=_marks(chunk))
                changed += tx.execute(sql, (stamp, *chunk))
            return changed

        return self._write("mark_examined", work) if ids else 0

    def list_payments(
        self,
        *,
        gateway: str | None = None,
        status: PaymentStatus | None = None,
        limit: int = 100,
    ) -> list[PaymentRecord]:
        conditions: list[str] = []
        params: list[Any] = []
        if gateway is not None:
            conditions.append("gateway = ?")
            params.append(gateway)
        if status is not None:
            conditions.append("status = ?")
            params.append(PaymentStatus(status).value)
        params.append(check_limit(limit))
        sql = self._sql(
            st.SELECT_PAYMENT + where(conditions) + " ORDER BY created_at DESC, id DESC LIMIT ?"
        )

        def work(tx: Tx) -> list[PaymentRecord]:
            return [self._payment(row) for row in tx.all(sql, tuple(params))]

        return self._run("list_payments", work, write=False)

    def counts_by_status(self) -> dict[PaymentStatus, int]:
        rows = self._run("counts_by_status", lambda tx: tx.all(self._sql(st.COUNTS)), write=False)
        counts = dict.fromkeys(PaymentStatus, 0)
        for status, count in rows:
            counts[PaymentStatus(status)] = int(count)
        return counts
