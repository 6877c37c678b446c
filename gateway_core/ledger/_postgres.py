"""The ledger in PostgreSQL (psycopg 3), for deployments with several application servers.

psycopg is imported when a :class:`PostgresLedger` is created, so SQLite users need not
install it (``pip install 'gateway-core[postgres]'``).

Each thread gets its own connection (``threading.local``), opened on first use, with
autocommit off and READ COMMITTED isolation; every method is one explicit transaction. The
compare-and-set ``UPDATE ... WHERE status = expected`` is correct at READ COMMITTED: a second
writer waits on the row lock, re-reads the row once the first commits, and matches nothing.
A duplicate receipt insert (``ON CONFLICT DO NOTHING``) likewise waits for the first insert
to commit or roll back. A deadlock (two transactions enqueueing the same events in opposite
orders) or a serialization failure is retried from the start: nothing was committed. Workers
claim outbox events with ``FOR UPDATE SKIP LOCKED``. :meth:`PostgresLedger.migrate` holds a
transaction-level advisory lock, so servers starting together migrate once.

Tables live in ``schema`` (default ``public``); tests use a throw-away schema each.

Failing fast: every connection sets ``statement_timeout``, ``lock_timeout`` and
``idle_in_transaction_session_timeout`` (enforced by the server) and TCP keepalives; and every
transaction runs under a client-side deadline (``statement_timeout`` plus one second, kept by
a :class:`~gateway_core.ledger._watchdog.Watchdog`), which is what bounds a server that stopped
answering altogether. A connection that cannot be made, a timeout, or a connection lost on
the way becomes :class:`~gateway_core.LedgerUnavailable`. The migration is exempt from both
bounds (a future schema change may legitimately take longer).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from gateway_core._exceptions import ConfigurationError, LedgerError, LedgerUnavailable
from gateway_core._redact import redact_text
from gateway_core.ledger._connections import ThreadConnections
from gateway_core.ledger._sql import SQLLedger
from gateway_core.ledger._statements import Rollback, T, Tx
from gateway_core.ledger._watchdog import Ticket, Watchdog

if TYPE_CHECKING:
    import psycopg

#: How many times a transaction that deadlocked or lost its connection is tried in all.
_ATTEMPTS = 4

#: The client-side deadline of a transaction is ``statement_timeout`` plus this (seconds).
DEADLINE_MARGIN = 1.0

#: libpq parameters the ledger sets unless the connection string does: dead peers and
#: black-holed networks are noticed within about half a minute, even on idle connections.
_TCP_DEFAULTS = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE {p}gw_payments (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            gateway TEXT NOT NULL,
            provider TEXT NOT NULL,
            order_reference TEXT NOT NULL,
            merchant_reference TEXT NOT NULL,
            provider_reference TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,
            amount_minor BIGINT NOT NULL CHECK (amount_minor >= 0),
            currency TEXT NOT NULL CHECK (length(currency) = 3),
            merchant_id TEXT NOT NULL DEFAULT '',
            attempt INTEGER NOT NULL CHECK (attempt >= 1),
            superseded BOOLEAN NOT NULL DEFAULT FALSE,
            expires_at TIMESTAMPTZ,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL,
            version INTEGER NOT NULL CHECK (version >= 1),
            CONSTRAINT gw_payments_merchant_reference_key UNIQUE (gateway, merchant_reference),
            CONSTRAINT gw_payments_attempt_key UNIQUE (gateway, order_reference, attempt)
        )""",
        "CREATE INDEX gw_payments_reconcile_idx ON {p}gw_payments (status, updated_at)",
        "CREATE INDEX gw_payments_created_idx ON {p}gw_payments (created_at)",
        """CREATE TABLE {p}gw_transitions (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            payment_id BIGINT NOT NULL REFERENCES {p}gw_payments (id),
            from_status TEXT NOT NULL,
            to_status TEXT NOT NULL,
            source TEXT NOT NULL,
            event_key TEXT NOT NULL DEFAULT '',
            at TIMESTAMPTZ NOT NULL
        )""",
        "CREATE INDEX gw_transitions_payment_idx ON {p}gw_transitions (payment_id, id)",
        """CREATE TABLE {p}gw_receipts (
            gateway TEXT NOT NULL,
            receipt_key TEXT NOT NULL CHECK (receipt_key <> ''),
            payment_id BIGINT REFERENCES {p}gw_payments (id),
            received_at TIMESTAMPTZ NOT NULL,
            CONSTRAINT gw_receipts_pkey PRIMARY KEY (gateway, receipt_key)
        )""",
        """CREATE TABLE {p}gw_journal (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            gateway TEXT NOT NULL,
            merchant_reference TEXT NOT NULL,
            kind TEXT NOT NULL,
            verdict TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            body TEXT NOT NULL DEFAULT '',
            received_at TIMESTAMPTZ NOT NULL
        )""",
        "CREATE INDEX gw_journal_reference_idx ON {p}gw_journal (gateway, merchant_reference, id)",
        """CREATE FUNCTION {p}gw_journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'gw_journal is append-only'; END $$""",
        """CREATE TRIGGER gw_journal_append_only BEFORE UPDATE ON {p}gw_journal
        FOR EACH ROW EXECUTE FUNCTION {p}gw_journal_append_only()""",
        """CREATE TABLE {p}gw_outbox (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id TEXT NOT NULL,
            payment_id BIGINT REFERENCES {p}gw_payments (id),
            kind TEXT NOT NULL,
            payload JSONB NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            delivered_at TIMESTAMPTZ,
            last_error TEXT NOT NULL DEFAULT '',
            next_attempt_at TIMESTAMPTZ NOT NULL,
            CONSTRAINT gw_outbox_event_id_key UNIQUE (event_id)
        )""",
        "CREATE INDEX gw_outbox_due_idx ON {p}gw_outbox (next_attempt_at, id) "
        "WHERE delivered_at IS NULL",
        "CREATE INDEX gw_outbox_payment_idx ON {p}gw_outbox (payment_id, id)",
    ),
    # Fair reconciliation (the least recently examined open payment first, gateways filtered
    # in SQL) and outbox claims filtered by event kind. The new column has no default, so
    # adding it rewrites nothing; the index builds hold writes back while they run.
    2: (
        "ALTER TABLE {p}gw_payments ADD COLUMN last_examined_at TIMESTAMPTZ",
        "DROP INDEX {p}gw_payments_reconcile_idx",
        "CREATE INDEX gw_payments_reconcile_idx ON {p}gw_payments "
        "(status, gateway, last_examined_at NULLS FIRST, updated_at, id)",
        "CREATE INDEX gw_outbox_kind_due_idx ON {p}gw_outbox (kind, next_attempt_at, id) "
        "WHERE delivered_at IS NULL",
        # Pruning the journal by age (`gateway prune --older-than`).
        "CREATE INDEX gw_journal_received_idx ON {p}gw_journal (received_at)",
        # An order is paid once across every gateway: the order-paid receipts recorded per
        # gateway by version 1 are copied into the order-wide scope "*".
        "INSERT INTO {p}gw_receipts (gateway, receipt_key, payment_id, received_at) "
        "SELECT '*', receipt_key, payment_id, received_at FROM {p}gw_receipts "
        "WHERE receipt_key LIKE 'order-paid:%' ON CONFLICT DO NOTHING",
    ),
    # The plugin's opaque memory of an attempt (a JSON object) and the idempotency key of
    # its create. Rows written before keep an empty object and no key.
    3: (
        "ALTER TABLE {p}gw_payments ADD COLUMN provider_data JSONB NOT NULL DEFAULT '{{}}'",
        "ALTER TABLE {p}gw_payments ADD COLUMN idempotency_key TEXT NOT NULL DEFAULT ''",
    ),
    # The payment method the checkout chose for the attempt (the provider's own name, e.g. a
    # channel); rows written before keep '' (the gateway's default method).
    4: ("ALTER TABLE {p}gw_payments ADD COLUMN method TEXT NOT NULL DEFAULT ''",),
    # Refunds, one row each, recorded before the provider is asked (gateway_core.ledger.
    # _sql_refunds); the key is the one the provider sees, unique per gateway.
    5: (
        """CREATE TABLE {p}gw_refunds (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            payment_id BIGINT NOT NULL REFERENCES {p}gw_payments (id),
            gateway TEXT NOT NULL,
            merchant_reference TEXT NOT NULL,
            refund_key TEXT NOT NULL CHECK (refund_key <> ''),
            amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
            currency TEXT NOT NULL CHECK (length(currency) = 3),
            status TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            provider_reference TEXT NOT NULL DEFAULT '',
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL,
            version INTEGER NOT NULL CHECK (version >= 1),
            CONSTRAINT gw_refunds_key UNIQUE (gateway, refund_key)
        )""",
        "CREATE INDEX {p}gw_refunds_payment_idx ON {p}gw_refunds (payment_id, id)".replace(
            "{p}gw_refunds_payment_idx", "gw_refunds_payment_idx"
        ),
        "CREATE INDEX gw_refunds_open_idx ON {p}gw_refunds (status, updated_at)",
    ),
    # Named leases of the jobs one worker of a fleet does at a time (settling refunds,
    # pruning the journal): gateway_core.ledger._sql_leases.
    6: (
        """CREATE TABLE {p}gw_leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            lease_until TIMESTAMPTZ NOT NULL
        )""",
    ),
}


def _import_psycopg() -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(
            "the PostgreSQL ledger needs psycopg 3: pip install 'gateway-core[postgres]'",
            key="ledger.url",
        ) from exc


def mask_conninfo(conninfo: str) -> str:
    """``conninfo`` with any password replaced, fit for messages and ``repr``."""
    if "://" in conninfo:
        try:
            parts = urlsplit(conninfo)
        except ValueError:
            return "postgresql://[redacted]"
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":[redacted]"
            netloc = f"{userinfo}@{host}"
        query = re.sub(r"(?i)(password=)[^&]*", r"\1[redacted]", parts.query)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    return re.sub(r"(?i)(password\s*=\s*)('[^']*'|\S+)", r"\1[redacted]", conninfo)


class _PostgresTx:
    __slots__ = ("_cur",)

    def __init__(self, cur: psycopg.Cursor[tuple[Any, ...]]) -> None:
        self._cur = cur

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        self._cur.execute(sql, params or None)
        return self._cur.rowcount

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        self._cur.execute(sql, params or None)
        return self._cur.fetchone()

    def all(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        self._cur.execute(sql, params or None)
        return self._cur.fetchall()


class PostgresLedger(SQLLedger):
    """The ledger in a PostgreSQL database (see the module docstring).

    ``conninfo`` is a libpq connection string or ``postgresql://`` URL. ``schema`` holds the
    tables (created by :meth:`migrate` when missing). ``connect_timeout`` (seconds) applies
    when the connection string sets none. ``statement_timeout_ms``, ``lock_timeout_ms`` and
    ``idle_in_transaction_timeout_ms`` set the server's session parameters of the same names
    (0 turns one off); a transaction that gets no answer within ``statement_timeout_ms`` plus
    one second has its connection cut client-side. Connections open lazily, on first use in
    each thread.
    """

    placeholder: ClassVar[str] = "%s"
    claim_lock_clause: ClassVar[str] = " FOR UPDATE SKIP LOCKED"
    version_table_columns: ClassVar[str] = (
        "version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL"
    )

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "public",
        connect_timeout: int = 5,
        statement_timeout_ms: int = 5000,
        lock_timeout_ms: int = 2000,
        idle_in_transaction_timeout_ms: int = 30_000,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not isinstance(schema, str) or not _SCHEMA_NAME.match(schema):
            raise ConfigurationError(
                "the PostgreSQL schema must be a plain identifier (letters, digits, _)",
                key="schema",
            )
        super().__init__(table_prefix=f'"{schema}".', clock=clock)
        _import_psycopg()
        from psycopg.conninfo import conninfo_to_dict

        try:
            params = conninfo_to_dict(conninfo)
        except Exception as exc:
            raise ConfigurationError(
                f"invalid PostgreSQL connection string {mask_conninfo(conninfo)}", key="ledger.url"
            ) from exc
        self._conninfo = conninfo
        self._connect_kwargs: dict[str, Any] = {}
        if "connect_timeout" not in params:
            self._connect_kwargs["connect_timeout"] = connect_timeout
        for key, value in _TCP_DEFAULTS.items():
            if key not in params and (key != "tcp_user_timeout" or _libpq_version() >= 120000):
                self._connect_kwargs[key] = value
        self._session = {
            "statement_timeout": _milliseconds("statement_timeout", statement_timeout_ms),
            "lock_timeout": _milliseconds("lock_timeout", lock_timeout_ms),
            "idle_in_transaction_session_timeout": _milliseconds(
                "idle_in_transaction_session_timeout", idle_in_transaction_timeout_ms
            ),
        }
        #: The client-side bound of one transaction (seconds), or None.
        self.deadline: float | None = (
            statement_timeout_ms / 1000 + DEADLINE_MARGIN if statement_timeout_ms else None
        )
        self._watchdog = Watchdog(f"ledger-{schema}")
        self._schema = schema
        self._lock_key = int.from_bytes(
            hashlib.sha256(f"gateway_core.ledger:{schema}".encode()).digest()[:8],
            "big",
            signed=True,
        )
        self._connections: ThreadConnections[Any] = ThreadConnections(
            self._connect, lambda conn: conn.close(), lambda conn: not conn.closed
        )

    @property
    def schema(self) -> str:
        """The schema holding the ledger's tables."""
        return self._schema

    def __repr__(self) -> str:
        return f"PostgresLedger({mask_conninfo(self._conninfo)!r}, schema={self._schema!r})"

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        import psycopg

        conn = psycopg.connect(self._conninfo, autocommit=False, **self._connect_kwargs)
        ticket = self._watchdog.arm(conn.fileno(), self.deadline or 30.0)
        try:
            conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
            names = list(self._session)
            conn.execute(
                "SELECT " + ", ".join("set_config(%s, %s, false)" for _ in names),
                [item for name in names for item in (name, str(self._session[name]))],
            )
            conn.commit()
        except BaseException:
            conn.close()
            raise
        finally:
            self._watchdog.disarm(ticket)
        return conn

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        """This thread's connection, opened on first use (and again after it broke)."""
        conn: psycopg.Connection[tuple[Any, ...]] = self._connections.get()
        return conn

    def _check_open(self) -> None:
        self._connections.check_open()

    def close(self) -> None:
        self._flush_before_close()
        self._connections.close()
        self._watchdog.stop()

    def ping(self, timeout: float = 2.0) -> None:
        """``SELECT 1``, cut off client-side after ``timeout`` seconds (opening a connection
        is bounded by ``connect_timeout``); :class:`LedgerUnavailable` when it fails."""
        self._bounded("ping", lambda tx: tx.one("SELECT 1"), timeout)

    # -- transactions ------------------------------------------------------------------------

    def _run(self, operation: str, work: Callable[[Tx], T], *, write: bool) -> T:
        return self._bounded(operation, work, None if operation == "migrate" else self.deadline)

    def _bounded(self, operation: str, work: Callable[[Tx], T], seconds: float | None) -> T:
        import psycopg
        from psycopg import errors

        deadline = None if seconds is None else time.monotonic() + seconds
        attempt = 0
        while True:
            attempt += 1
            committing = False
            conn: psycopg.Connection[tuple[Any, ...]] | None = None
            ticket: Ticket | None = None
            try:
                conn = self._connection()
                if deadline is not None:
                    ticket = self._watchdog.arm(conn.fileno(), deadline - time.monotonic())
                try:
                    with conn.cursor() as cur:
                        try:
                            result = work(_PostgresTx(cur))
                        except Rollback as rollback:
                            conn.rollback()
                            return rollback.value  # type: ignore[return-value]
                        except BaseException:
                            _rollback(conn)
                            raise
                        committing = True
                        conn.commit()
                        return result
                finally:
                    if ticket is not None:
                        self._watchdog.disarm(ticket)
            except (errors.DeadlockDetected, errors.SerializationFailure) as exc:
                if conn is not None:
                    _rollback(conn)
                if attempt < _ATTEMPTS and not _past(deadline):
                    continue
                raise _ledger_error(operation, exc) from exc
            except psycopg.OperationalError as exc:
                if conn is None:  # could not connect at all
                    raise _unavailable(operation, exc) from exc
                if ticket is not None and ticket.fired:
                    conn.close()
                    raise LedgerUnavailable(
                        f"PostgreSQL ledger {operation}: no answer within {seconds:g} s "
                        "(the connection was closed)"
                    ) from exc
                if not (conn.broken or conn.closed):  # a statement or lock timeout, say
                    _rollback(conn)
                    raise _unavailable(operation, exc) from exc
                conn.close()
                # A connection lost before COMMIT was sent committed nothing: retry on a new
                # one. Lost during COMMIT, the outcome is unknown: report it.
                if not committing and attempt < _ATTEMPTS and not _past(deadline):
                    continue
                raise _unavailable(operation, exc) from exc
            except psycopg.Error as exc:
                if conn is not None:
                    _rollback(conn)
                raise _ledger_error(operation, exc) from exc

    # -- dialect -----------------------------------------------------------------------------

    def _migrations(self) -> Mapping[int, tuple[str, ...]]:
        return _MIGRATIONS

    def _before_migrate(self, tx: Tx) -> None:
        # Serialises concurrent migrations of this schema (released at commit). CREATE SCHEMA
        # needs the CREATE privilege on the database even with IF NOT EXISTS: only when missing.
        tx.execute("SET LOCAL statement_timeout = 0")  # the migration is exempt
        tx.execute("SET LOCAL lock_timeout = 0")
        tx.one("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
        if tx.one("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self._schema,)) is None:
            tx.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')

    def _dump_json(self, value: dict[str, Any]) -> Any:
        from psycopg.types.json import Jsonb

        return Jsonb(value)

    def schema_version(self) -> int:
        def work(tx: Tx) -> int:
            exists = tx.one(
                "SELECT to_regclass(%s) IS NOT NULL", (f'"{self._schema}".gw_schema_version',)
            )
            if not exists or not exists[0]:
                return 0
            row = tx.one(self._sql("SELECT COALESCE(MAX(version), 0) FROM {p}gw_schema_version"))
            return int(row[0]) if row else 0

        return self._run("schema_version", work, write=False)


def _rollback(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    if conn.closed or conn.broken:
        return
    with contextlib.suppress(Exception):  # the transaction is gone with the connection
        conn.rollback()


def _ledger_error(operation: str, exc: BaseException) -> LedgerError:
    text = " ".join(str(exc).split())  # one line: libpq's messages run over several
    return LedgerError(f"PostgreSQL ledger {operation} failed: {redact_text(text)}")


def _unavailable(operation: str, exc: BaseException) -> LedgerUnavailable:
    text = " ".join(str(exc).split())  # libpq's messages run over several lines
    return LedgerUnavailable(f"PostgreSQL ledger {operation} failed: {redact_text(text)}")


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _milliseconds(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{name} must be a whole number of milliseconds", key=name)
    return value


def _libpq_version() -> int:
    import psycopg

    return int(psycopg.pq.version())
