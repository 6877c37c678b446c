"""The machinery under :class:`~gateway_core.ledger._sql.SQLLedger`: what a backend supplies
(a transaction runner, timestamp and JSON conversions), statement rendering and caching, row
conversions, the inserts several operations share (receipts, outbox events, journal entries),
and migrations. The operations themselves, and the order of writes inside each transaction,
are in :mod:`gateway_core.ledger._sql`.
"""

from __future__ import annotations

import abc
import json
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import attrs

from gateway_core._events import EventKind
from gateway_core._exceptions import LedgerError, LedgerUnavailable
from gateway_core._models import Money, PaymentStatus
from gateway_core._redact import get_logger, redact_excerpt, redact_text
from gateway_core.ledger import _statements as st
from gateway_core.ledger._base import MAX_ERROR_LENGTH, SCHEMA_VERSION, Ledger
from gateway_core.ledger._deferred import Deferred, DeferredItems
from gateway_core.ledger._records import (
    JournalEntry,
    OutboxEvent,
    PaymentRecord,
    TransitionRecord,
    to_utc,
    utc_now,
)
from gateway_core.ledger._statements import Rollback, T, Tx

_log = get_logger("gateway_core.ledger")

#: Longest journal body stored (the service keeps far less: ``journal_body_limit``).
_MAX_JOURNAL_BODY = 1024 * 1024
#: Ids per ``UPDATE ... WHERE id IN (...)`` (well under every driver's parameter limit).
_MARK_BATCH = 500


def _marks(values: Collection[object]) -> str:
    return ", ".join(["?"] * len(values))


class SQLMachinery(Ledger):
    """What every SQL ledger runs on: the backend interface, statement rendering, row
    conversions, the inserts shared by several operations, and migrations."""

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
        self._deferred = Deferred()

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

    def _load_json(self, value: Any, *, what: str = "outbox payload") -> dict[str, Any]:
        loaded = json.loads(value) if isinstance(value, str | bytes) else value
        if not isinstance(loaded, dict):
            raise LedgerError(f"{what} is not a JSON object")
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
            provider_data=self._load_json(row[17], what="provider_data"),
            idempotency_key=row[18],
            method=row[19],
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

    def _insert_events(self, tx: Tx, events: Iterable[OutboxEvent]) -> tuple[str, ...]:
        """Add the events not already in the outbox; the ids of those added."""
        inserted: list[str] = []
        for event in events:
            if not isinstance(event, OutboxEvent):
                raise TypeError("events must be OutboxEvent instances")
            added = tx.execute(
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
            if added > 0:
                inserted.append(event.event_id)
        return tuple(inserted)

    def _insert_journal(self, tx: Tx, entry: JournalEntry) -> JournalEntry:
        # Redacted once, where it entered (the service's entries say so); others again here.
        body = entry.body if entry.redacted else redact_excerpt(entry.body, _MAX_JOURNAL_BODY)
        if len(body) > _MAX_JOURNAL_BODY:
            body = redact_excerpt(body, _MAX_JOURNAL_BODY)
        stored = attrs.evolve(entry, reason=redact_text(entry.reason), body=body, redacted=False)
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

    # -- deferred writes (see gateway_core.ledger._deferred) -------------------------------------

    def _write(self, operation: str, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in a write transaction that first writes what was deferred; deferred
        items go back to the buffer when the transaction rolls back or fails."""
        items = self._deferred.take()
        if not items:
            return self._run(operation, work, write=True)
        rolled_back = False

        def both(tx: Tx) -> T:
            nonlocal rolled_back
            rolled_back = False
            self._write_deferred(tx, items)
            try:
                return work(tx)
            except Rollback:
                rolled_back = True
                raise

        try:
            result = self._run(operation, both, write=True)
        except LedgerUnavailable:
            self._deferred.put_back(items)
            raise
        except Exception as exc:
            # Never let a deferred item break the writes that carry it: try once more
            # without them; if that commits, they were the trouble and are dropped.
            try:
                result = self._run(operation, work, write=True)
            except BaseException:
                self._deferred.put_back(items)
                raise
            dropped = len(items.journal) + len(items.delivered)
            _log.warning("%d deferred ledger writes dropped: %s", dropped, type(exc).__name__)
            return result
        except BaseException:
            self._deferred.put_back(items)
            raise
        if rolled_back:
            self._deferred.put_back(items)
        return result

    def _write_deferred(self, tx: Tx, items: DeferredItems) -> None:
        for entry in items.journal:
            self._insert_journal(tx, entry)
        for event_id, at in items.delivered:  # sorted by id: one lock order for every writer
            tx.execute(self._sql(st.DELIVERED), (self._dump_time(at), event_id))

    def defer_journal(self, entry: JournalEntry) -> None:
        if not isinstance(entry, JournalEntry):
            raise TypeError("defer_journal takes a JournalEntry")
        if self._deferred.add_journal(entry):
            self.flush()

    def defer_delivered(self, event_id: str, *, at: datetime) -> None:
        if self._deferred.add_delivered(str(event_id), to_utc(at)):
            self.flush()

    def flush(self) -> None:
        if len(self._deferred):
            self._write("flush_deferred", lambda tx: None)

    def _flush_before_close(self) -> None:
        """Write what was deferred, if the store answers; never raises (closing must)."""
        try:
            self.flush()
        except Exception as exc:  # at worst a no-change journal line or a mark is lost
            _log.warning("deferred ledger writes lost at close: %s", type(exc).__name__)

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
