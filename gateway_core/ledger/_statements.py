"""The SQL both backends share, written once with ``?`` placeholders and a ``{p}`` table
prefix (each backend renders them for its driver), and the transaction seam they run on."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Rollback(Exception):
    """Raised inside a transaction function: roll back and return ``value``."""

    def __init__(self, value: object) -> None:
        super().__init__()
        self.value = value


class Tx(Protocol):
    """The slice of a DB-API cursor the shared code uses, inside one transaction."""

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run a statement; return the number of rows it changed."""

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        """Run a query; return its first row."""

    def all(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a query; return all its rows."""


PAYMENT_COLUMNS = (
    "id, gateway, provider, order_reference, merchant_reference, provider_reference, status, "
    "amount_minor, currency, merchant_id, attempt, superseded, expires_at, created_at, "
    "updated_at, version, last_examined_at, provider_data, idempotency_key, method"
)
OUTBOX_COLUMNS = (
    "id, event_id, payment_id, kind, payload, created_at, attempts, delivered_at, last_error, "
    "next_attempt_at"
)
JOURNAL_COLUMNS = "id, gateway, merchant_reference, kind, verdict, reason, body, received_at"
TRANSITION_COLUMNS = "id, payment_id, from_status, to_status, source, event_key, at"

INSERT_PAYMENT = (
    "INSERT INTO {p}gw_payments (gateway, provider, order_reference, merchant_reference, "
    "provider_reference, status, amount_minor, currency, merchant_id, attempt, superseded, "
    "expires_at, created_at, updated_at, version, last_examined_at, provider_data, "
    "idempotency_key, method) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING RETURNING id"
)
SELECT_PAYMENT = "SELECT " + PAYMENT_COLUMNS + " FROM {p}gw_payments"  # noqa: S608
PAYMENT_GATEWAY = "SELECT gateway FROM {p}gw_payments WHERE id = ?"
INSERT_RECEIPT = (
    "INSERT INTO {p}gw_receipts (gateway, receipt_key, payment_id, received_at) "
    "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
HAS_RECEIPT = "SELECT 1 FROM {p}gw_receipts WHERE gateway = ? AND receipt_key = ?"
CAS_STATUS = (
    "UPDATE {p}gw_payments SET status = ?, version = version + 1, updated_at = ? "
    "WHERE id = ? AND status = ?"
)
# The same, handing back the payment as committed (no re-read after the transaction).
CAS_STATUS_RETURNING = CAS_STATUS + " RETURNING " + PAYMENT_COLUMNS
PAYMENT_EXISTS = "SELECT 1 FROM {p}gw_payments WHERE id = ?"
CAS_PROVIDER_REFERENCE = (
    "UPDATE {p}gw_payments SET provider_reference = ?, version = version + 1, updated_at = ? "
    "WHERE id = ? AND version = ?"
)
CAS_PROVIDER_REFERENCE_AND_DATA = (
    "UPDATE {p}gw_payments SET provider_reference = ?, provider_data = ?, "
    "version = version + 1, updated_at = ? WHERE id = ? AND version = ?"
)
SUPERSEDE = (
    "UPDATE {p}gw_payments SET superseded = ?, version = version + 1, updated_at = ? "
    "WHERE id = ? AND superseded = ?"
)
INSERT_TRANSITION = (
    "INSERT INTO {p}gw_transitions (payment_id, from_status, to_status, source, event_key, at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
SELECT_TRANSITIONS = (
    "SELECT " + TRANSITION_COLUMNS + " FROM {p}gw_transitions "  # noqa: S608
    "WHERE payment_id = ? ORDER BY id"
)
INSERT_EVENT = (
    "INSERT INTO {p}gw_outbox (event_id, payment_id, kind, payload, created_at, attempts, "
    "delivered_at, last_error, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (event_id) DO NOTHING"
)
SELECT_OUTBOX = "SELECT " + OUTBOX_COLUMNS + " FROM {p}gw_outbox"  # noqa: S608
# ``{kinds}`` is empty (every kind) or `` AND kind IN (?, ...)``: a process claims only the
# kinds it has handlers for, so an event nobody here handles costs no write.
CLAIM = (
    SELECT_OUTBOX + " WHERE delivered_at IS NULL AND next_attempt_at <= ?{kinds} "
    "ORDER BY next_attempt_at, id LIMIT ?{skip_locked}"
)
ANY_DUE = (
    "SELECT 1 FROM {p}gw_outbox WHERE delivered_at IS NULL AND next_attempt_at <= ?{kinds} LIMIT 1"
)
LEASE = "UPDATE {p}gw_outbox SET next_attempt_at = ? WHERE id IN ({ids})"
DELIVERED = "UPDATE {p}gw_outbox SET delivered_at = COALESCE(delivered_at, ?) WHERE event_id = ?"
FAILED = (
    "UPDATE {p}gw_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
    "WHERE event_id = ? AND delivered_at IS NULL"
)
EVENT_EXISTS = "SELECT 1 FROM {p}gw_outbox WHERE event_id = ?"
INSERT_JOURNAL = (
    "INSERT INTO {p}gw_journal (gateway, merchant_reference, kind, verdict, reason, body, "
    "received_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id"
)
SELECT_JOURNAL = "SELECT " + JOURNAL_COLUMNS + " FROM {p}gw_journal"  # noqa: S608
PRUNE_JOURNAL = "DELETE FROM {p}gw_journal WHERE received_at < ?"
COUNTS = "SELECT status, COUNT(*) FROM {p}gw_payments GROUP BY status"
# ``{statuses}`` is a ``?`` list; ``{only_gateways}`` is empty or `` AND gateway IN (?, ...)``.
# Least recently examined first (never examined before all), then the longest unchanged, so
# a payment answered "unchanged" goes to the back of the queue and every open payment is
# reached within ceil(open / limit) runs.
TO_RECONCILE = (
    SELECT_PAYMENT + " WHERE status IN ({statuses}) AND updated_at < ?{only_gateways} "
    "ORDER BY last_examined_at NULLS FIRST, updated_at, id LIMIT ?"
)
COUNT_TO_RECONCILE = (
    "SELECT gateway, COUNT(*) FROM {p}gw_payments WHERE status IN ({statuses}) "
    "AND updated_at < ? GROUP BY gateway"
)
# Deliberately leaves ``version`` and ``updated_at`` alone: an examination is not a change,
# so it never breaks a compare-and-set and never restarts the reconcile grace period.
MARK_EXAMINED = "UPDATE {p}gw_payments SET last_examined_at = ? WHERE id IN ({ids})"
VERSION_TABLE = "CREATE TABLE IF NOT EXISTS {p}gw_schema_version ({columns})"
CURRENT_VERSION = "SELECT COALESCE(MAX(version), 0) FROM {p}gw_schema_version"
RECORD_VERSION = "INSERT INTO {p}gw_schema_version (version, applied_at) VALUES (?, ?)"


def where(conditions: list[str]) -> str:
    return " WHERE " + " AND ".join(conditions) if conditions else ""


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError("limit must be a non-negative int")
    return limit
