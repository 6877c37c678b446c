"""The payment ledger: attempts, transitions, receipts, the journal and the hook outbox.

One interface (:class:`Ledger`), two backends that pass the same contract suite:

- :class:`SQLiteLedger`, the embedded default (standard library, WAL mode), for one machine;
- :class:`PostgresLedger` (psycopg 3, imported only when used), for several servers.

:func:`open_ledger` picks one from a URL and migrates the schema::

    ledger = open_ledger("sqlite:////var/lib/shop/payments.db")  # absolute: four slashes
    ledger = open_ledger("postgresql://shop@db.internal/shop?schema=payments")
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from gateway_core._exceptions import ConfigurationError
from gateway_core.ledger._base import (
    ORDER_SCOPE,
    SCHEMA_VERSION,
    ApplyResult,
    JournalEntry,
    Ledger,
    OutboxEvent,
    PaymentRecord,
    TransitionRecord,
    WriteOutcome,
)
from gateway_core.ledger._refund_records import RefundRecord, RefundRefused, RefundSettlement
from gateway_core.ledger._sqlite import SQLiteLedger

if TYPE_CHECKING:
    from gateway_core.ledger._postgres import PostgresLedger


def __getattr__(name: str) -> Any:
    # The PostgreSQL backend is imported when first named: a SQLite deployment never pays
    # for it (its module and its statement tables).
    if name == "PostgresLedger":
        from gateway_core.ledger._postgres import PostgresLedger

        return PostgresLedger
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Plain sorted() order, as the project checks it (ruff's RUF022 would put constants first).
__all__ = [  # noqa: RUF022
    "ApplyResult",
    "JournalEntry",
    "Ledger",
    "ORDER_SCOPE",
    "OutboxEvent",
    "PaymentRecord",
    "PostgresLedger",
    "RefundRecord",
    "RefundRefused",
    "RefundSettlement",
    "SCHEMA_VERSION",
    "SQLiteLedger",
    "TransitionRecord",
    "WriteOutcome",
    "open_ledger",
]

_SQLITE_PREFIX = "sqlite:///"
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_ledger(
    url: str,
    *,
    migrate: bool = True,
    clock: Callable[[], datetime] | None = None,
) -> Ledger:
    """Open the ledger named by ``url`` and (unless ``migrate=False``) migrate its schema.

    ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db`` open a SQLite file;
    query parameters ``synchronous`` (``FULL``, the default, ``NORMAL`` or ``EXTRA``) and
    ``busy_timeout`` (milliseconds, the longest a transaction waits for the file's lock)
    tune it. ``sqlite:///:memory:`` is refused: each thread has its own
    connection and would see its own empty database. ``postgresql://...`` (or
    ``postgres://...``) opens PostgreSQL; a ``schema`` query parameter chooses the schema
    (default ``public``); ``statement_timeout``, ``lock_timeout`` and
    ``idle_in_transaction_session_timeout`` (milliseconds) bound the ledger's queries; the
    rest goes to libpq unchanged.
    """
    if not isinstance(url, str) or not url:
        raise ConfigurationError("the ledger URL is empty", key="ledger.url")
    ledger: Ledger
    if url.startswith(_SQLITE_PREFIX):
        ledger = _open_sqlite(url, clock)
    elif url.startswith(_POSTGRES_SCHEMES):
        ledger = _open_postgres(url, clock)
    elif url.startswith("sqlite:"):
        raise ConfigurationError(
            "a SQLite ledger URL is sqlite:///relative/path.db or sqlite:////absolute/path.db",
            key="ledger.url",
        )
    else:
        scheme = url.split(":", 1)[0] if ":" in url else ""
        raise ConfigurationError(
            f"unsupported ledger URL scheme {scheme!r}: use sqlite:/// or postgresql://",
            key="ledger.url",
        )
    if migrate:
        try:
            ledger.migrate()
        except BaseException:
            ledger.close()
            raise
    return ledger


def _open_sqlite(url: str, clock: Callable[[], datetime] | None) -> SQLiteLedger:
    rest = url[len(_SQLITE_PREFIX) :]
    path, _, query = rest.partition("?")
    path = unquote(path)
    if not path:
        raise ConfigurationError("the SQLite ledger URL names no file", key="ledger.url")
    options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=False))
    synchronous = options.pop("synchronous", "FULL")
    busy_timeout = options.pop("busy_timeout", "5000")
    if options:
        raise ConfigurationError(
            f"unknown SQLite ledger URL options: {sorted(options)}", key="ledger.url"
        )
    try:
        busy_timeout_ms = int(busy_timeout)
    except ValueError:
        raise ConfigurationError(
            "busy_timeout must be a whole number of milliseconds", key="ledger.url"
        ) from None
    return SQLiteLedger(
        path,
        synchronous=synchronous,
        busy_timeout_ms=busy_timeout_ms,
        clock=clock,
    )


def _open_postgres(url: str, clock: Callable[[], datetime] | None) -> PostgresLedger:
    from gateway_core.ledger._postgres import PostgresLedger
    from gateway_core.ledger._postgres import mask_conninfo as _mask_conninfo

    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigurationError(
            f"invalid PostgreSQL URL {_mask_conninfo(url)}", key="ledger.url"
        ) from exc
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in pairs if key == "schema"]
    if len(schemas) > 1:
        raise ConfigurationError("the ledger URL sets schema twice", key="ledger.url")
    timeouts: dict[str, int] = {}
    for key, option in _POSTGRES_TIMEOUTS.items():
        values = [value for name, value in pairs if name == key]
        if len(values) > 1:
            raise ConfigurationError(f"the ledger URL sets {key} twice", key="ledger.url")
        if values:
            timeouts[option] = _milliseconds(key, values[0])
    rest = [
        (key, value) for key, value in pairs if key != "schema" and key not in _POSTGRES_TIMEOUTS
    ]
    conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment))
    return PostgresLedger(
        conninfo, schema=schemas[0] if schemas else "public", clock=clock, **timeouts
    )


#: The PostgreSQL URL's own options (milliseconds): URL name -> ``PostgresLedger`` argument.
_POSTGRES_TIMEOUTS = {
    "statement_timeout": "statement_timeout_ms",
    "lock_timeout": "lock_timeout_ms",
    "idle_in_transaction_session_timeout": "idle_in_transaction_timeout_ms",
}


def _milliseconds(key: str, text: str) -> int:
    if not text.isdigit():
        raise ConfigurationError(
            f"{key} must be a whole number of milliseconds (0 turns it off)", key="ledger.url"
        )
    return int(text)
