"""The embedded ledger: one SQLite file (standard library), WAL mode.

Several threads and several processes on one machine may share the file. Each thread gets its
own connection (``threading.local``); every write runs in ``BEGIN IMMEDIATE``, which takes the
database's single write lock up front, so concurrent writers queue on ``busy_timeout`` instead
of failing half-way with ``SQLITE_BUSY``; readers never block writers in WAL mode. A write
that meets ``database is locked`` early (SQLite reports some conflicts without waiting) is
retried from the start, which is safe because nothing of it was committed; but the whole
transaction, retries included, waits at most ``busy_timeout``: then it fails with
:class:`~gateway_core.LedgerUnavailable`, so a file locked from outside costs a request
seconds, not minutes.

Durability: ``synchronous=FULL`` (the default) syncs the WAL on every commit, so a commit
that returned, and any acknowledgement sent after it, survives a power cut.
``synchronous=NORMAL`` is the explicit faster choice: it never corrupts the database and
keeps every transaction across an application crash, but a power cut may lose the last
transactions before the next checkpoint. WAL needs the processes to share one host: don't
put the file on a network file system.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from gateway_core._exceptions import ConfigurationError, LedgerError, LedgerUnavailable
from gateway_core._redact import redact_text
from gateway_core.ledger._connections import ThreadConnections
from gateway_core.ledger._records import to_utc
from gateway_core.ledger._sql import SQLLedger
from gateway_core.ledger._statements import Rollback, T, Tx

_SYNCHRONOUS = frozenset({"NORMAL", "FULL", "EXTRA"})

#: How many times a transaction that met ``database is locked`` is tried in all (within its
#: ``busy_timeout``).
_ATTEMPTS = 5
_RETRY_PAUSE = 0.05


_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE gw_payments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            gateway TEXT NOT NULL,
            provider TEXT NOT NULL,
            order_reference TEXT NOT NULL,
            merchant_reference TEXT NOT NULL,
            provider_reference TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,
            amount_minor INTEGER NOT NULL CHECK (amount_minor >= 0),
            currency TEXT NOT NULL CHECK (length(currency) = 3),
            merchant_id TEXT NOT NULL DEFAULT '',
            attempt INTEGER NOT NULL CHECK (attempt >= 1),
            superseded INTEGER NOT NULL DEFAULT 0 CHECK (superseded IN (0, 1)),
            expires_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            version INTEGER NOT NULL CHECK (version >= 1),
            CONSTRAINT gw_payments_merchant_reference_key UNIQUE (gateway, merchant_reference),
            CONSTRAINT gw_payments_attempt_key UNIQUE (gateway, order_reference, attempt)
        )""",
        "CREATE INDEX gw_payments_reconcile_idx ON gw_payments (status, updated_at)",
        "CREATE INDEX gw_payments_created_idx ON gw_payments (created_at)",
        """CREATE TABLE gw_transitions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            payment_id INTEGER NOT NULL REFERENCES gw_payments (id),
            from_status TEXT NOT NULL,
            to_status TEXT NOT NULL,
            source TEXT NOT NULL,
            event_key TEXT NOT NULL DEFAULT '',
            at TEXT NOT NULL
        )""",
        "CREATE INDEX gw_transitions_payment_idx ON gw_transitions (payment_id, id)",
        """CREATE TABLE gw_receipts (
            gateway TEXT NOT NULL,
            receipt_key TEXT NOT NULL CHECK (receipt_key <> ''),
            payment_id INTEGER REFERENCES gw_payments (id),
            received_at TEXT NOT NULL,
            CONSTRAINT gw_receipts_pkey PRIMARY KEY (gateway, receipt_key)
        ) WITHOUT ROWID""",
        """CREATE TABLE gw_journal (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            gateway TEXT NOT NULL,
            merchant_reference TEXT NOT NULL,
            kind TEXT NOT NULL,
            verdict TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            body TEXT NOT NULL DEFAULT '',
            received_at TEXT NOT NULL
        )""",
        "CREATE INDEX gw_journal_reference_idx ON gw_journal (gateway, merchant_reference, id)",
        """CREATE TRIGGER gw_journal_append_only BEFORE UPDATE ON gw_journal
        BEGIN SELECT RAISE(ABORT, 'gw_journal is append-only'); END""",
        """CREATE TABLE gw_outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL,
            payment_id INTEGER REFERENCES gw_payments (id),
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            delivered_at TEXT,
            last_error TEXT NOT NULL DEFAULT '',
            next_attempt_at TEXT NOT NULL,
            CONSTRAINT gw_outbox_event_id_key UNIQUE (event_id)
        )""",
        "CREATE INDEX gw_outbox_due_idx ON gw_outbox (next_attempt_at, id) "
        "WHERE delivered_at IS NULL",
        "CREATE INDEX gw_outbox_payment_idx ON gw_outbox (payment_id, id)",
    ),
    # Fair reconciliation (the least recently examined open payment first, gateways filtered
    # in SQL) and outbox claims filtered by event kind.
    2: (
        "ALTER TABLE gw_payments ADD COLUMN last_examined_at TEXT",
        "DROP INDEX gw_payments_reconcile_idx",
        "CREATE INDEX gw_payments_reconcile_idx ON gw_payments "
        "(status, gateway, last_examined_at, updated_at, id)",
        "CREATE INDEX gw_outbox_kind_due_idx ON gw_outbox (kind, next_attempt_at, id) "
        "WHERE delivered_at IS NULL",
        # Pruning the journal by age (`gateway prune --older-than`).
        "CREATE INDEX gw_journal_received_idx ON gw_journal (received_at)",
        # An order is paid once across every gateway: the order-paid receipts recorded per
        # gateway by version 1 are copied into the order-wide scope "*".
        "INSERT INTO gw_receipts (gateway, receipt_key, payment_id, received_at) "
        "SELECT '*', receipt_key, payment_id, received_at FROM gw_receipts "
        "WHERE receipt_key LIKE 'order-paid:%' ON CONFLICT DO NOTHING",
    ),
    # The plugin's opaque memory of an attempt (a JSON object) and the idempotency key of
    # its create. Rows written before keep an empty object and no key.
    3: (
        "ALTER TABLE gw_payments ADD COLUMN provider_data TEXT NOT NULL DEFAULT '{{}}'",
        "ALTER TABLE gw_payments ADD COLUMN idempotency_key TEXT NOT NULL DEFAULT ''",
    ),
    # The payment method the checkout chose for the attempt (the provider's own name, e.g. a
    # channel); rows written before keep '' (the gateway's default method).
    4: ("ALTER TABLE gw_payments ADD COLUMN method TEXT NOT NULL DEFAULT ''",),
    # Refunds, one row each, recorded before the provider is asked (gateway_core.ledger.
    # _sql_refunds); the key is the one the provider sees, unique per gateway.
    5: (
        """CREATE TABLE gw_refunds (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            payment_id INTEGER NOT NULL REFERENCES gw_payments (id),
            gateway TEXT NOT NULL,
            merchant_reference TEXT NOT NULL,
            refund_key TEXT NOT NULL CHECK (refund_key <> ''),
            amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
            currency TEXT NOT NULL CHECK (length(currency) = 3),
            status TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            provider_reference TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            version INTEGER NOT NULL CHECK (version >= 1),
            CONSTRAINT gw_refunds_key UNIQUE (gateway, refund_key)
        )""",
        "CREATE INDEX gw_refunds_payment_idx ON gw_refunds (payment_id, id)".replace(
            "gw_refunds_payment_idx", "gw_refunds_payment_idx"
        ),
        "CREATE INDEX gw_refunds_open_idx ON gw_refunds (status, updated_at)",
    ),
    # Named leases of the jobs one worker of a fleet does at a time (settling refunds,
    # pruning the journal): gateway_core.ledger._sql_leases.
    6: (
        """CREATE TABLE gw_leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            lease_until TEXT NOT NULL
        )""",
    ),
}


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _is_unreachable(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "unable to open" in text or "disk i/o" in text or "readonly" in text


class _SQLiteTx:
    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        cursor = self._conn.execute(sql, params)
        row: tuple[Any, ...] | None = cursor.fetchone()
        cursor.close()
        return row

    def all(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._conn.execute(sql, params).fetchall()
        return rows


def _check_path(path: str | os.PathLike[str]) -> Path:
    text = os.fspath(path)
    if not isinstance(text, str) or not text:
        raise ConfigurationError("the SQLite ledger needs a file path", key="ledger.url")
    if text == ":memory:" or text.startswith("file:") or "mode=memory" in text:
        raise ConfigurationError(
            "an in-memory SQLite database cannot be a ledger: every thread opens its own "
            "connection and would see a different, empty database; use a file path",
            key="ledger.url",
        )
    return Path(text).expanduser().absolute()


class SQLiteLedger(SQLLedger):
    """The ledger in one SQLite file (see the module docstring for the concurrency model).

    ``path`` is the database file (created on first use; its directory must exist).
    ``synchronous`` is ``"FULL"`` (default: a committed transaction survives a power cut),
    ``"EXTRA"``, or ``"NORMAL"`` (faster; survives application crashes only);
    ``busy_timeout_ms`` (at least 5000) is the longest a transaction waits for the file's
    lock, retries included.
    ``clock`` (returning aware datetimes) stamps ``updated_at`` and transitions; tests
    inject one. Call :meth:`migrate` once before use (``open_ledger`` does).
    """

    placeholder: ClassVar[str] = "?"
    version_table_columns: ClassVar[str] = "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 5000,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(table_prefix="", clock=clock)
        self._path = _check_path(path)
        sync = str(synchronous).upper()
        if sync not in _SYNCHRONOUS:
            raise ConfigurationError(
                f"synchronous must be one of {sorted(_SYNCHRONOUS)}, got {synchronous!r}",
                key="synchronous",
            )
        if isinstance(busy_timeout_ms, bool) or not isinstance(busy_timeout_ms, int):
            raise ConfigurationError("busy_timeout_ms must be an int", key="busy_timeout_ms")
        if busy_timeout_ms < 5000:
            raise ConfigurationError(
                "busy_timeout_ms must be at least 5000: shorter waits turn ordinary write "
                "contention into errors",
                key="busy_timeout_ms",
            )
        self._synchronous = sync
        self._busy_timeout_ms = busy_timeout_ms
        self._connections: ThreadConnections[sqlite3.Connection] = ThreadConnections(
            self._connect, sqlite3.Connection.close
        )

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def synchronous(self) -> str:
        """The ``PRAGMA synchronous`` level of every connection."""
        return self._synchronous

    def __repr__(self) -> str:
        return f"SQLiteLedger({str(self._path)!r}, synchronous={self._synchronous!r})"

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path,
            timeout=self._busy_timeout_ms / 1000,
            isolation_level=None,  # no implicit transactions: this class issues BEGIN/COMMIT
            check_same_thread=False,  # used by one thread; closed by whichever calls close()
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms:d}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise LedgerError(
                    f"SQLite refused WAL mode for {self._path} (journal_mode={mode!r}); "
                    "is it on a network file system?"
                )
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        return self._connections.get()

    def _check_open(self) -> None:
        self._connections.check_open()

    def close(self) -> None:
        self._flush_before_close()
        self._connections.close()

    def ping(self, timeout: float = 2.0) -> None:
        """A cheap read (in WAL mode a writer never blocks it), bounded by ``busy_timeout``
        rather than ``timeout``; :class:`LedgerError` when the file cannot be read."""
        self._run("ping", lambda tx: tx.one("SELECT 1 FROM sqlite_master LIMIT 1"), write=False)

    # -- transactions ------------------------------------------------------------------------

    def _run(self, operation: str, work: Callable[[Tx], T], *, write: bool) -> T:
        budget = self._busy_timeout_ms / 1000
        started = time.monotonic()
        attempt = 0
        conn: sqlite3.Connection | None = None
        shortened = False
        try:
            while True:
                attempt += 1
                try:
                    conn = self._connection()
                    return self._once(conn, work, write)
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc):
                        raise self._error(operation, exc) from exc
                    pause = _RETRY_PAUSE * attempt
                    left = budget - (time.monotonic() - started) - pause
                    if attempt >= _ATTEMPTS or left < _RETRY_PAUSE:
                        raise LedgerUnavailable(
                            f"SQLite ledger {operation}: the file stayed locked for "
                            f"{time.monotonic() - started:.1f} s ({self._path})"
                        ) from exc
                    time.sleep(pause)
                    if conn is not None:  # the retry waits only for what is left
                        conn.execute(f"PRAGMA busy_timeout = {int(left * 1000):d}")
                        shortened = True
                except sqlite3.Error as exc:
                    raise self._error(operation, exc) from exc
        finally:
            if shortened and conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms:d}")

    def _error(self, operation: str, exc: sqlite3.Error) -> LedgerError:
        message = f"SQLite ledger {operation} failed ({self._path}): {redact_text(str(exc))}"
        if isinstance(exc, sqlite3.OperationalError) and _is_unreachable(exc):
            return LedgerUnavailable(message)
        return LedgerError(message)

    @staticmethod
    def _once(conn: sqlite3.Connection, work: Callable[[Tx], T], write: bool) -> T:
        if write:
            conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(_SQLiteTx(conn))
        except Rollback as rollback:
            _rollback(conn)
            return rollback.value  # type: ignore[return-value]
        except BaseException:
            _rollback(conn)
            raise
        if conn.in_transaction:
            try:
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        return result

    # -- dialect -----------------------------------------------------------------------------

    def _migrations(self) -> Mapping[int, tuple[str, ...]]:
        return _MIGRATIONS

    def _dump_time(self, value: datetime) -> Any:
        # Fixed width (microseconds, +00:00), so text order is time order in SQL comparisons.
        if value.tzinfo is not UTC:
            value = to_utc(value)
        return value.isoformat(timespec="microseconds")

    def _load_time(self, value: Any) -> datetime:
        return datetime.fromisoformat(value).astimezone(UTC)

    def schema_version(self) -> int:
        def work(tx: Tx) -> int:
            exists = tx.one(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'gw_schema_version'"
            )
            if exists is None:
                return 0
            row = tx.one("SELECT COALESCE(MAX(version), 0) FROM gw_schema_version")
            return int(row[0]) if row else 0

        return self._run("schema_version", work, write=False)


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):  # the transaction may be gone already
            conn.execute("ROLLBACK")
