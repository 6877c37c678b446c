"""The ledger written once over SQL, for both backends.

The two backends (:mod:`._sqlite`, :mod:`._postgres`) run the same statements
(:mod:`._statements`); each renders them for its driver and supplies a transaction runner and
the few conversions that differ (timestamps, JSON). Everything that decides *what* is
written, and in which order inside a transaction, lives in :class:`SQLLedger`, so the two
cannot drift apart.
"""

from __future__ import annotations

import abc
import json
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import attrs

from gateway_core._events import EventKind
from gateway_core._exceptions import LedgerError
from gateway_core._models import Money, PaymentStatus
from gateway_core._redact import redact_excerpt, redact_text
from gateway_core.ledger import _statements as st
from gateway_core.ledger._base import MAX_ERROR_LENGTH, SCHEMA_VERSION, Ledger
from gateway_core.ledger._records import (
    ApplyResult,
    JournalEntry,
    OutboxEvent,
    PaymentRecord,
    TransitionRecord,
    to_utc,
    utc_now,
)
from gateway_core.ledger._statements import Rollback, T, Tx, check_limit, where

#: Longest journal body stored (the service keeps far less: ``journal_body_limit``).
_MAX_JOURNAL_BODY = 1024 * 1024
#: Ids per ``UPDATE ... WHERE id IN (...)`` (well under every driver's parameter limit).
_MARK_BATCH = 500


def _marks(values: Collection[object]) -> str:
    return ", ".join(["?"] * len(values))


class SQLLedger(Ledger):
    """The ledger written once over a small backend interface (see the module docstring)."""

    #: ``?`` for sqlite3, ``%s`` for psycopg.
    placeholder: ClassVar[str] = "?"
    #: Appended to the claim's inner SELECT (``FOR UPDATE SKIP LOCKED`` on PostgreSQL).
    claim_lock_clause: ClassVar[str] = ""
    #: Column definitions of ``gw_schema_version``.
    version_table_columns: ClassVar[str]

    def __init__(self, *, table_prefix: str, clock: Callable[[], datetime] | None) -> None:
        self._prefix = table_prefix
        self._clock = clock or utc_now
        self._sql_cache: dict[str, str] = {}
        self._sql_lock = threading.Lock()

    # -- what a backend supplies -------------------------------------------------------------

    @abc.abstractmethod
    def _run(self, operation: str, work: Callable[[Tx], T], *, write: bool) -> T:
        """Run ``work`` in one transaction (a write transaction when ``write``) and commit.

        ``work`` raising :class:`Rollback` rolls back and returns its value; any other
        exception rolls back and propagates (driver errors as :class:`LedgerError`).
        Transient failures (lock timeouts, deadlocks) are retried from the start.
        """

    @abc.abstractmethod
    def _migrations(self) -> Mapping[int, tuple[str, ...]]:
        """The DDL statements of each schema version, as templates."""

    def _before_migrate(self, tx: Tx) -> None:
        """Backend-specific first steps of the migration transaction (locks, schema)."""

    def _dump_time(self, value: datetime) -> Any:
        return to_utc(value)

    def _load_time(self, value: Any) -> datetime:
        assert isinstance(value, datetime)
        return value.astimezone(UTC)

    def _dump_json(self, value: dict[str, Any]) -> Any:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    def _load_json(self, value: Any) -> dict[str, Any]:
        loaded = json.loads(value) if isinstance(value, str | bytes) else value
        if not isinstance(loaded, dict):
            raise LedgerError("outbox payload is not a JSON object")
        return loaded

    # -- helpers -----------------------------------------------------------------------------

    def _render(self, template: str, **extra: str) -> str:
        """A statement template rendered for this backend: table prefix and placeholders."""
        return template.format(
            p=self._prefix,
            skip_locked=self.claim_lock_clause,
            columns=getattr(self, "version_table_columns", ""),
            **extra,
        ).replace("?", self.placeholder)

    def _sql(self, template: str) -> str:
        """:meth:`_render`, cached (for the fixed statements)."""
        rendered = self._sql_cache.get(template)
        if rendered is None:
            rendered = self._render(template)
            with self._sql_lock:
                self._sql_cache[template] = rendered
        return rendered

    def _time_or_none(self, value: datetime | None) -> Any:
        return None if value is None else self._dump_time(value)

    def _load_time_or_none(self, value: Any) -> datetime | None:
        return None if value is None else self._load_time(value)

    def _payment(self, row: tuple[Any, ...]) -> PaymentRecord:
        return PaymentRecord(
            id=int(row[0]),
            gateway=row[1],
            provider=row[2],
            order_reference=row[3],
            merchant_reference=row[4],
            provider_reference=row[5],
            status=PaymentStatus(row[6]),
            amount=Money.from_minor_units(int(row[7]), row[8]),
            merchant_id=row[9],
            attempt=int(row[10]),
            superseded=bool(row[11]),
            expires_at=self._load_time_or_none(row[12]),
            created_at=self._load_time(row[13]),
            updated_at=self._load_time(row[14]),
            version=int(row[15]),
            last_examined_at=self._load_time_or_none(row[16]),
        )

    def _transition(self, row: tuple[Any, ...]) -> TransitionRecord:
        return TransitionRecord(
            id=int(row[0]),
            payment_id=int(row[1]),
            from_status=PaymentStatus(row[2]),
            to_status=PaymentStatus(row[3]),
            source=row[4],
            event_key=row[5],
            at=self._load_time(row[6]),
        )

    def _event(self, row: tuple[Any, ...]) -> OutboxEvent:
        return OutboxEvent(
            event_id=row[1],
            payment_id=None if row[2] is None else int(row[2]),
            kind=EventKind(row[3]),
            payload=self._load_json(row[4]),
            created_at=self._load_time(row[5]),
            attempts=int(row[6]),
            delivered_at=self._load_time_or_none(row[7]),
            last_error=row[8],
            next_attempt_at=self._load_time(row[9]),
        )

    def _journal_entry(self, row: tuple[Any, ...]) -> JournalEntry:
        return JournalEntry(
            id=int(row[0]),
            gateway=row[1],
            merchant_reference=row[2],
            kind=row[3],
            verdict=row[4],
            reason=row[5],
            body=row[6],
            received_at=self._load_time(row[7]),
        )

    def _now(self) -> datetime:
        now = self._clock()
        return now if now.tzinfo is UTC else to_utc(now)

    def _fetch_payment(self, tx: Tx, payment_id: int) -> PaymentRecord | None:
        row = tx.one(self._sql(st.SELECT_PAYMENT + " WHERE id = ?"), (payment_id,))
        return None if row is None else self._payment(row)

    def _insert_receipt(
        self, tx: Tx, gateway: str, receipt_key: str, payment_id: int | None, now: datetime
    ) -> bool:
        """Record a receipt; False when it was already there."""
        inserted = tx.execute(
            self._sql(st.INSERT_RECEIPT),
            (gateway, receipt_key, payment_id, self._dump_time(now)),
        )
        return inserted > 0

    def _insert_events(self, tx: Tx, events: Iterable[OutboxEvent]) -> None:
        for event in events:
            if not isinstance(event, OutboxEvent):
                raise TypeError("events must be OutboxEvent instances")
            tx.execute(
                self._sql(st.INSERT_EVENT),
                (
                    event.event_id,
                    event.payment_id,
                    event.kind.value,
                    self._dump_json(event.payload),
                    self._dump_time(event.created_at),
                    event.attempts,
                    self._time_or_none(event.delivered_at),
                    redact_text(event.last_error)[:MAX_ERROR_LENGTH],
                    self._dump_time(event.next_attempt_at),
                ),
            )

    def _insert_journal(self, tx: Tx, entry: JournalEntry) -> JournalEntry:
        body = redact_excerpt(entry.body, _MAX_JOURNAL_BODY)
        stored = attrs.evolve(entry, reason=redact_text(entry.reason), body=body)
        row = tx.one(
            self._sql(st.INSERT_JOURNAL),
            (
                stored.gateway,
                stored.merchant_reference,
                stored.kind,
                stored.verdict,
                stored.reason,
                stored.body,
                self._dump_time(stored.received_at),
            ),
        )
        assert row is not None
        return attrs.evolve(stored, id=int(row[0]))

    # -- lifecycle ---------------------------------------------------------------------------

    def migrate(self) -> None:
        migrations = self._migrations()

        def work(tx: Tx) -> None:
            self._before_migrate(tx)
            tx.execute(self._sql(st.VERSION_TABLE))
            row = tx.one(self._sql(st.CURRENT_VERSION))
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise LedgerError(
                    f"the ledger's schema is version {current}, newer than this library's "
                    f"{SCHEMA_VERSION}; upgrade gateway_core"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in migrations[version]:
                    tx.execute(self._sql(statement))
                tx.execute(self._sql(st.RECORD_VERSION), (version, self._dump_time(self._now())))

        self._run("migrate", work, write=True)

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

        new_id = self._run("insert_payment", work, write=True)
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
        self, payment_id: int, provider_reference: str, *, expected_version: int
    ) -> PaymentRecord:
        if not isinstance(provider_reference, str):
            raise TypeError("provider_reference must be a str")

        def work(tx: Tx) -> PaymentRecord:
            changed = tx.execute(
                self._sql(st.CAS_PROVIDER_REFERENCE),
                (provider_reference, self._dump_time(self._now()), payment_id, expected_version),
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

        return self._run("set_provider_reference", work, write=True)

    def mark_superseded(self, payment_id: int) -> PaymentRecord:
        def work(tx: Tx) -> PaymentRecord:
            tx.execute(
                self._sql(st.SUPERSEDE), (True, self._dump_time(self._now()), payment_id, False)
            )
            current = self._fetch_payment(tx, payment_id)
            if current is None:
                raise LedgerError(f"no payment with id {payment_id}")
            return current

        return self._run("mark_superseded", work, write=True)

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

        def work(tx: Tx) -> ApplyResult:
            now = self._now()
            row = tx.one(self._sql(st.PAYMENT_GATEWAY), (payment_id,))
            if row is None:
                raise LedgerError(f"no payment with id {payment_id}")
            scope = row[0] if receipt_scope is None else receipt_scope
            if receipt_key and not self._insert_receipt(tx, scope, receipt_key, payment_id, now):
                raise Rollback(ApplyResult.DUPLICATE)
            changed = tx.execute(
                self._sql(st.CAS_STATUS),
                (new_status.value, self._dump_time(now), payment_id, expected_status.value),
            )
            if not changed:
                raise Rollback(ApplyResult.CONFLICT)
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
            self._insert_events(tx, events)
            if journal is not None:
                self._insert_journal(tx, journal)
            return ApplyResult.APPLIED

        return self._run("apply_transition", work, write=True)

    def record_without_transition(
        self,
        *,
        gateway: str,
        receipt_key: str = "",
        events: Iterable[OutboxEvent] = (),
        journal: JournalEntry | None = None,
    ) -> ApplyResult:
        if not isinstance(gateway, str) or not gateway:
            raise ValueError("gateway must be a non-empty str")
        events = tuple(events)

        def work(tx: Tx) -> ApplyResult:
            if receipt_key and not self._insert_receipt(
                tx, gateway, receipt_key, None, self._now()
            ):
                raise Rollback(ApplyResult.DUPLICATE)
            self._insert_events(tx, events)
            if journal is not None:
                self._insert_journal(tx, journal)
            return ApplyResult.APPLIED

        return self._run("record_without_transition", work, write=True)

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
        return self._run("append_journal", lambda tx: self._insert_journal(tx, entry), write=True)

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

        def work(tx: Tx) -> list[JournalEntry]:
            return [self._journal_entry(row) for row in reversed(tx.all(sql, tuple(params)))]

        return self._run("journal", work, write=False)

    def prune_journal(self, older_than: datetime) -> int:
        if not isinstance(older_than, datetime) or older_than.tzinfo is None:
            raise TypeError("older_than must be an aware datetime")
        sql, cutoff = self._sql(st.PRUNE_JOURNAL), self._dump_time(older_than)
        return self._run("prune_journal", lambda tx: tx.execute(sql, (cutoff,)), write=True)

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

        return self._run("claim_events", work, write=True)

    def mark_delivered(self, event_id: str, *, at: datetime) -> None:
        params = (self._dump_time(at), event_id)

        def work(tx: Tx) -> None:
            if not tx.execute(self._sql(st.DELIVERED), params):
                raise LedgerError(f"no outbox event {event_id!r}")

        self._run("mark_delivered", work, write=True)

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

        self._run("mark_failed", work, write=True)

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

        return self._run("mark_examined", work, write=True) if ids else 0

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
