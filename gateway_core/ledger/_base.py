"""The ledger's records, its interface, and the SQL both backends share.

The two backends (:mod:`._sqlite`, :mod:`._postgres`) run the same statements, written once
here with ``?`` placeholders and a ``{p}`` table prefix; each backend renders them for its
driver and supplies a transaction runner and the few conversions that differ (timestamps,
JSON). Everything that decides *what* is written, and in which order inside a transaction,
lives in :class:`SQLLedger`, so the two cannot drift apart.
"""

from __future__ import annotations

import abc
import enum
import json
import re
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self, TypeVar

import attrs

from gateway_core._events import EventKind, PaymentEvent
from gateway_core._exceptions import LedgerError
from gateway_core._models import Money, PaymentStatus
from gateway_core._redact import redact_text

#: The version of the ledger's tables this library writes; :meth:`Ledger.migrate` brings a
#: store up to it and records it in ``gw_schema_version``.
SCHEMA_VERSION = 1

#: Longest ``last_error`` kept for an outbox event (after redaction).
MAX_ERROR_LENGTH = 2000

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Time


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def to_utc(value: datetime) -> datetime:
    """``value`` converted to UTC; a naive datetime is refused (its zone would be a guess)."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError("ledger timestamps must be timezone-aware")
    return value.astimezone(UTC)


def _to_utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else to_utc(value)


# --------------------------------------------------------------------------------------------
# Records


def _is_text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{attribute.name} must be a str, not {type(value).__name__}")


def _non_empty(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _is_text(instance, attribute, value)
    if not value:
        raise ValueError(f"{attribute.name} must not be empty")


def _is_int(minimum: int) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{attribute.name} must be an int")
        if value < minimum:
            raise ValueError(f"{attribute.name} must be at least {minimum}")

    return check


def _optional_id(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _is_int(1)(instance, attribute, value)


_TOKEN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _token(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _is_text(instance, attribute, value)
    assert isinstance(value, str)
    if not _TOKEN.match(value):
        raise ValueError(f"{attribute.name} must be a short lowercase token, not {value!r}")


def _one_of(allowed: frozenset[str]) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value not in allowed:
            raise ValueError(f"{attribute.name} must be one of {sorted(allowed)}, not {value!r}")

    return check


@attrs.frozen(kw_only=True)
class PaymentRecord:
    """One payment attempt as the ledger stores it.

    ``merchant_reference`` is the bill number sent to the provider; it is unique per
    ``gateway`` (the gateway's configured name). ``attempt`` counts the attempts of one order
    from 1 and is unique per (gateway, order). ``version`` is 0 for a record not yet stored
    and grows by one with every change the ledger makes, which makes it usable for
    compare-and-set (:meth:`Ledger.set_provider_reference`). Timestamps are UTC.
    """

    id: int | None = attrs.field(default=None, validator=_optional_id)
    gateway: str = attrs.field(validator=_non_empty)
    provider: str = attrs.field(validator=_non_empty)
    order_reference: str = attrs.field(validator=_non_empty)
    merchant_reference: str = attrs.field(validator=_non_empty)
    provider_reference: str = attrs.field(default="", validator=_is_text)
    status: PaymentStatus = attrs.field(validator=attrs.validators.instance_of(PaymentStatus))
    amount: Money = attrs.field(validator=attrs.validators.instance_of(Money))
    merchant_id: str = attrs.field(default="", validator=_is_text)
    attempt: int = attrs.field(default=1, validator=_is_int(1))
    superseded: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    expires_at: datetime | None = attrs.field(default=None, converter=_to_utc_or_none)
    created_at: datetime = attrs.field(factory=utc_now, converter=to_utc)
    updated_at: datetime = attrs.field(converter=to_utc)
    version: int = attrs.field(default=0, validator=_is_int(0))

    @updated_at.default
    def _updated_defaults_to_created(self) -> datetime:
        return self.created_at

    def __attrs_post_init__(self) -> None:
        if self.amount.amount < 0:
            raise ValueError("a payment amount cannot be negative")


@attrs.frozen(kw_only=True)
class TransitionRecord:
    """One status change of one payment, written in the same transaction as the change."""

    #: What may cause a transition.
    SOURCES: ClassVar[frozenset[str]] = frozenset(
        {"create", "notification", "inquiry", "return", "reconcile", "cancel", "operator"}
    )

    id: int | None = attrs.field(default=None, validator=_optional_id)
    payment_id: int = attrs.field(validator=_is_int(1))
    from_status: PaymentStatus = attrs.field(validator=attrs.validators.instance_of(PaymentStatus))
    to_status: PaymentStatus = attrs.field(validator=attrs.validators.instance_of(PaymentStatus))
    source: str = attrs.field(validator=_one_of(SOURCES))
    event_key: str = attrs.field(default="", validator=_is_text)
    at: datetime = attrs.field(factory=utc_now, converter=to_utc)


@attrs.frozen(kw_only=True)
class JournalEntry:
    """One inbound message or outbound call and what the platform decided about it.

    ``body`` must already be redacted by the caller; the ledger redacts it (and ``reason``)
    once more before storing, so what comes back from :meth:`Ledger.journal` may differ from
    what was appended. The journal is append-only.
    """

    #: The kinds the core writes (any short lowercase token is accepted).
    KINDS: ClassVar[frozenset[str]] = frozenset(
        {"notification", "return", "create", "inquiry", "cancel", "reconcile"}
    )
    #: The verdicts the core writes (any short lowercase token is accepted).
    VERDICTS: ClassVar[frozenset[str]] = frozenset(
        {"applied", "duplicate", "rejected", "review", "ignored", "unknown"}
    )

    id: int | None = attrs.field(default=None, validator=_optional_id)
    gateway: str = attrs.field(validator=_non_empty)
    merchant_reference: str = attrs.field(validator=_is_text)
    kind: str = attrs.field(validator=_token)
    verdict: str = attrs.field(validator=_token)
    reason: str = attrs.field(default="", validator=_is_text)
    body: str = attrs.field(default="", validator=_is_text, repr=False)
    received_at: datetime = attrs.field(factory=utc_now, converter=to_utc)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else to_utc(value).isoformat()


@attrs.frozen(kw_only=True)
class OutboxEvent:
    """A hook event waiting to be delivered (at least once) to the order system.

    ``payload`` is a JSON-serialisable snapshot of the :class:`~gateway_core.PaymentEvent`
    (build it with :meth:`from_event`, read it back with :meth:`to_event`). ``event_id`` is
    unique: inserting an event whose id is already in the outbox does nothing, so a retried
    transaction cannot enqueue the same event twice. A worker claims due events
    (:meth:`Ledger.claim_events`), which moves ``next_attempt_at`` forward by a lease, then
    marks each delivered or failed.
    """

    event_id: str = attrs.field(validator=_non_empty)
    payment_id: int | None = attrs.field(validator=_optional_id)
    kind: EventKind = attrs.field(validator=attrs.validators.instance_of(EventKind))
    payload: dict[str, Any] = attrs.field(factory=dict, hash=False, repr=False)
    created_at: datetime = attrs.field(factory=utc_now, converter=to_utc)
    attempts: int = attrs.field(default=0, validator=_is_int(0))
    delivered_at: datetime | None = attrs.field(default=None, converter=_to_utc_or_none)
    last_error: str = attrs.field(default="", validator=_is_text)
    next_attempt_at: datetime = attrs.field(converter=to_utc)

    @next_attempt_at.default
    def _due_when_created(self) -> datetime:
        return self.created_at

    @classmethod
    def from_event(
        cls, event: PaymentEvent, payment_id: int | None, *, now: datetime | None = None
    ) -> Self:
        """An undelivered outbox row for ``event``, due at once (``now`` defaults to now)."""
        payload: dict[str, Any] = {
            "event_id": event.event_id,
            "kind": event.kind.value,
            "provider": event.provider,
            "order_reference": event.order_reference,
            "merchant_reference": event.merchant_reference,
            "status": event.status.value,
            "amount": str(event.amount.amount),
            "currency": event.amount.currency,
            "occurred_at": _iso(event.occurred_at),
            "provider_reference": event.provider_reference,
            "previous_status": (
                None if event.previous_status is None else event.previous_status.value
            ),
            "reason": event.reason,
            "gateway_name": event.gateway_name,
        }
        return cls(
            event_id=event.event_id,
            payment_id=payment_id,
            kind=event.kind,
            payload=payload,
            created_at=now if now is not None else utc_now(),
        )

    def to_event(self) -> PaymentEvent:
        """The :class:`~gateway_core.PaymentEvent` this row carries."""
        p = self.payload
        try:
            previous = p.get("previous_status")
            return PaymentEvent(
                event_id=str(p["event_id"]),
                kind=EventKind(p["kind"]),
                provider=str(p["provider"]),
                order_reference=str(p["order_reference"]),
                merchant_reference=str(p["merchant_reference"]),
                status=PaymentStatus(p["status"]),
                amount=Money(Decimal(str(p["amount"])), str(p["currency"])),
                occurred_at=to_utc(datetime.fromisoformat(str(p["occurred_at"]))),
                provider_reference=str(p.get("provider_reference", "")),
                previous_status=None if previous is None else PaymentStatus(previous),
                reason=str(p.get("reason", "")),
                gateway_name=str(p.get("gateway_name", "")),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise LedgerError(
                f"outbox event {self.event_id!r} has an unreadable payload ({type(exc).__name__})"
            ) from None


class ApplyResult(enum.Enum):
    """What :meth:`Ledger.apply_transition` (or :meth:`Ledger.record_without_transition`) did."""

    #: Committed: the status changed (if asked) and the events and journal entry were written.
    APPLIED = "applied"
    #: The receipt key was already recorded: nothing was written.
    DUPLICATE = "duplicate"
    #: The payment's status was no longer the expected one: nothing was written.
    CONFLICT = "conflict"


# --------------------------------------------------------------------------------------------
# The interface


class Ledger(abc.ABC):
    """The store of payment attempts, their transitions, inbound receipts, the journal and the
    outbox of hook events.

    Every method is safe to call from several threads at once, and several processes (or
    servers) may share one store. Status changes are compare-and-set: of two workers applying
    a change from the same status, exactly one wins. A transition, its outbox events, its
    receipt and its journal entry are committed together or not at all.
    """

    # -- lifecycle ---------------------------------------------------------------------------

    @abc.abstractmethod
    def migrate(self) -> None:
        """Create or upgrade the tables to :data:`SCHEMA_VERSION` and record it.

        Idempotent, and safe when several processes call it at the same moment. Raises
        :class:`~gateway_core.LedgerError` when the store is newer than this library.
        """

    @abc.abstractmethod
    def schema_version(self) -> int:
        """The schema version recorded in the store (0 before the first :meth:`migrate`)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close every connection this object opened; it cannot be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- payments ----------------------------------------------------------------------------

    @abc.abstractmethod
    def insert_payment(self, record: PaymentRecord) -> PaymentRecord:
        """Store a new attempt; returns it with ``id`` set and ``version`` 1.

        Raises :class:`~gateway_core.LedgerError` when the gateway already has a payment with
        this ``merchant_reference``, or the order already has this ``attempt`` number.
        """

    @abc.abstractmethod
    def get_payment(self, gateway: str, merchant_reference: str) -> PaymentRecord | None:
        """The payment with this bill number at this gateway, or ``None``."""

    @abc.abstractmethod
    def get_payment_by_id(self, payment_id: int) -> PaymentRecord | None:
        """The payment with this id, or ``None``."""

    @abc.abstractmethod
    def payments_for_order(self, gateway: str, order_reference: str) -> list[PaymentRecord]:
        """Every attempt for one order at one gateway, by attempt number."""

    @abc.abstractmethod
    def set_provider_reference(
        self, payment_id: int, provider_reference: str, *, expected_version: int
    ) -> PaymentRecord:
        """Record the provider's transaction id, if the payment is still at ``expected_version``.

        Returns the updated record. Raises :class:`~gateway_core.LedgerError` when the payment
        does not exist or has changed since (its version differs).
        """

    @abc.abstractmethod
    def mark_superseded(self, payment_id: int) -> PaymentRecord:
        """Flag the attempt as replaced by a newer one (idempotent); returns the record."""

    # -- transitions, receipts ---------------------------------------------------------------

    @abc.abstractmethod
    def apply_transition(
        self,
        payment_id: int,
        *,
        expected_status: PaymentStatus,
        new_status: PaymentStatus,
        source: str,
        event_key: str = "",
        receipt_key: str = "",
        events: Iterable[OutboxEvent] = (),
        journal: JournalEntry | None = None,
    ) -> ApplyResult:
        """Change the payment's status from ``expected_status`` to ``new_status``, in one
        transaction with its receipt, transition row, outbox events and journal entry.

        In order: when ``receipt_key`` is given it is recorded (unique per gateway) and an
        existing receipt makes the call a :attr:`ApplyResult.DUPLICATE`; the status is changed
        only if it is still ``expected_status``, else :attr:`ApplyResult.CONFLICT`; the
        transition is recorded; each event is added to the outbox unless its ``event_id`` is
        already there; the journal entry is appended. DUPLICATE and CONFLICT write nothing.
        The state machine is the caller's business: this is a compare-and-set, nothing more.
        Raises :class:`~gateway_core.LedgerError` for an unknown payment or a failed write
        (after which nothing was written either).
        """

    @abc.abstractmethod
    def record_without_transition(
        self,
        *,
        gateway: str,
        receipt_key: str = "",
        events: Iterable[OutboxEvent] = (),
        journal: JournalEntry | None = None,
    ) -> ApplyResult:
        """Like :meth:`apply_transition` without the status change (needs-review events,
        quarantined notifications): DUPLICATE when the receipt exists, else APPLIED."""

    @abc.abstractmethod
    def has_receipt(self, gateway: str, receipt_key: str) -> bool:
        """Whether this receipt key has been recorded for this gateway."""

    @abc.abstractmethod
    def transitions(self, payment_id: int) -> list[TransitionRecord]:
        """The payment's transitions, oldest first."""

    # -- journal -----------------------------------------------------------------------------

    @abc.abstractmethod
    def append_journal(self, entry: JournalEntry) -> JournalEntry:
        """Append an entry (body and reason redacted again); returns it as stored."""

    @abc.abstractmethod
    def journal(
        self,
        gateway: str | None = None,
        merchant_reference: str | None = None,
        limit: int = 1000,
    ) -> list[JournalEntry]:
        """The latest ``limit`` entries matching the filters, oldest first."""

    # -- outbox ------------------------------------------------------------------------------

    @abc.abstractmethod
    def claim_events(
        self,
        *,
        now: datetime,
        limit: int = 100,
        lease_seconds: float = 60,
        lease_from: datetime | None = None,
    ) -> list[OutboxEvent]:
        """Claim up to ``limit`` undelivered events due at ``now``, oldest first.

        The lease runs from ``lease_from`` (default ``now``): claiming events scheduled for
        later (``now`` in the future) still leases them from the real present.

        Claiming moves each event's ``next_attempt_at`` to ``now + lease_seconds``, so another
        worker will not pick it up during the lease; a worker that dies mid-delivery leaves
        the event to be claimed again when the lease ends (delivery is at least once).
        """

    @abc.abstractmethod
    def mark_delivered(self, event_id: str, *, at: datetime) -> None:
        """Record a successful delivery (the first delivery time is kept)."""

    @abc.abstractmethod
    def mark_failed(self, event_id: str, *, error: str, next_attempt_at: datetime) -> None:
        """Record a failed delivery: one more attempt, the (redacted) error, the next try.

        An event already delivered is left as it is.
        """

    @abc.abstractmethod
    def outbox(
        self, payment_id: int | None = None, delivered: bool | None = None
    ) -> list[OutboxEvent]:
        """Outbox events, oldest first, optionally for one payment and/or delivery state."""

    # -- queries -----------------------------------------------------------------------------

    @abc.abstractmethod
    def payments_to_reconcile(
        self,
        *,
        statuses: Collection[PaymentStatus],
        updated_before: datetime,
        limit: int,
    ) -> list[PaymentRecord]:
        """Payments in one of ``statuses`` not changed since ``updated_before``, oldest first.

        Superseded attempts are included: a replaced bill can still be paid.
        """

    @abc.abstractmethod
    def list_payments(
        self,
        *,
        gateway: str | None = None,
        status: PaymentStatus | None = None,
        limit: int = 100,
    ) -> list[PaymentRecord]:
        """The most recently created payments, newest first, optionally filtered."""

    @abc.abstractmethod
    def counts_by_status(self) -> dict[PaymentStatus, int]:
        """How many payments are in each status (every status present, zero included)."""


# --------------------------------------------------------------------------------------------
# The shared SQL implementation


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


_PAYMENT_COLUMNS = (
    "id, gateway, provider, order_reference, merchant_reference, provider_reference, status, "
    "amount_minor, currency, merchant_id, attempt, superseded, expires_at, created_at, "
    "updated_at, version"
)
_OUTBOX_COLUMNS = (
    "id, event_id, payment_id, kind, payload, created_at, attempts, delivered_at, last_error, "
    "next_attempt_at"
)
_JOURNAL_COLUMNS = "id, gateway, merchant_reference, kind, verdict, reason, body, received_at"
_TRANSITION_COLUMNS = "id, payment_id, from_status, to_status, source, event_key, at"

_INSERT_PAYMENT = (
    "INSERT INTO {p}gw_payments (gateway, provider, order_reference, merchant_reference, "
    "provider_reference, status, amount_minor, currency, merchant_id, attempt, superseded, "
    "expires_at, created_at, updated_at, version) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT DO NOTHING RETURNING id"
)
_SELECT_PAYMENT = "SELECT " + _PAYMENT_COLUMNS + " FROM {p}gw_payments"  # noqa: S608
_PAYMENT_GATEWAY = "SELECT gateway FROM {p}gw_payments WHERE id = ?"
_INSERT_RECEIPT = (
    "INSERT INTO {p}gw_receipts (gateway, receipt_key, payment_id, received_at) "
    "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_HAS_RECEIPT = "SELECT 1 FROM {p}gw_receipts WHERE gateway = ? AND receipt_key = ?"
_CAS_STATUS = (
    "UPDATE {p}gw_payments SET status = ?, version = version + 1, updated_at = ? "
    "WHERE id = ? AND status = ?"
)
_CAS_PROVIDER_REFERENCE = (
    "UPDATE {p}gw_payments SET provider_reference = ?, version = version + 1, updated_at = ? "
    "WHERE id = ? AND version = ?"
)
_SUPERSEDE = (
    "UPDATE {p}gw_payments SET superseded = ?, version = version + 1, updated_at = ? "
    "WHERE id = ? AND superseded = ?"
)
_INSERT_TRANSITION = (
    "INSERT INTO {p}gw_transitions (payment_id, from_status, to_status, source, event_key, at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_SELECT_TRANSITIONS = (
    "SELECT " + _TRANSITION_COLUMNS + " FROM {p}gw_transitions "  # noqa: S608
    "WHERE payment_id = ? ORDER BY id"
)
_INSERT_EVENT = (
    "INSERT INTO {p}gw_outbox (event_id, payment_id, kind, payload, created_at, attempts, "
    "delivered_at, last_error, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (event_id) DO NOTHING"
)
_SELECT_OUTBOX = "SELECT " + _OUTBOX_COLUMNS + " FROM {p}gw_outbox"  # noqa: S608
_CLAIM = (
    _SELECT_OUTBOX + " WHERE delivered_at IS NULL AND next_attempt_at <= ? "
    "ORDER BY next_attempt_at, id LIMIT ?{skip_locked}"
)
_ANY_DUE = "SELECT 1 FROM {p}gw_outbox WHERE delivered_at IS NULL AND next_attempt_at <= ? LIMIT 1"
_LEASE = "UPDATE {p}gw_outbox SET next_attempt_at = ? WHERE id IN ({ids})"
_DELIVERED = "UPDATE {p}gw_outbox SET delivered_at = COALESCE(delivered_at, ?) WHERE event_id = ?"
_FAILED = (
    "UPDATE {p}gw_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
    "WHERE event_id = ? AND delivered_at IS NULL"
)
_EVENT_EXISTS = "SELECT 1 FROM {p}gw_outbox WHERE event_id = ?"
_INSERT_JOURNAL = (
    "INSERT INTO {p}gw_journal (gateway, merchant_reference, kind, verdict, reason, body, "
    "received_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id"
)
_SELECT_JOURNAL = "SELECT " + _JOURNAL_COLUMNS + " FROM {p}gw_journal"  # noqa: S608
_COUNTS = "SELECT status, COUNT(*) FROM {p}gw_payments GROUP BY status"
_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS {p}gw_schema_version ({columns})"
_CURRENT_VERSION = "SELECT COALESCE(MAX(version), 0) FROM {p}gw_schema_version"
_RECORD_VERSION = "INSERT INTO {p}gw_schema_version (version, applied_at) VALUES (?, ?)"


def _where(conditions: list[str]) -> str:
    return " WHERE " + " AND ".join(conditions) if conditions else ""


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError("limit must be a non-negative int")
    return limit


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
        row = tx.one(self._sql(_SELECT_PAYMENT + " WHERE id = ?"), (payment_id,))
        return None if row is None else self._payment(row)

    def _insert_receipt(
        self, tx: Tx, gateway: str, receipt_key: str, payment_id: int | None, now: datetime
    ) -> bool:
        """Record a receipt; False when it was already there."""
        inserted = tx.execute(
            self._sql(_INSERT_RECEIPT),
            (gateway, receipt_key, payment_id, self._dump_time(now)),
        )
        return inserted > 0

    def _insert_events(self, tx: Tx, events: Iterable[OutboxEvent]) -> None:
        for event in events:
            if not isinstance(event, OutboxEvent):
                raise TypeError("events must be OutboxEvent instances")
            tx.execute(
                self._sql(_INSERT_EVENT),
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
        stored = attrs.evolve(entry, reason=redact_text(entry.reason), body=redact_text(entry.body))
        row = tx.one(
            self._sql(_INSERT_JOURNAL),
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
            tx.execute(self._sql(_VERSION_TABLE))
            row = tx.one(self._sql(_CURRENT_VERSION))
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise LedgerError(
                    f"the ledger's schema is version {current}, newer than this library's "
                    f"{SCHEMA_VERSION}; upgrade gateway_core"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in migrations[version]:
                    tx.execute(self._sql(statement))
                tx.execute(self._sql(_RECORD_VERSION), (version, self._dump_time(self._now())))

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
        )

        def work(tx: Tx) -> int:
            row = tx.one(self._sql(_INSERT_PAYMENT), params)
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
                self._sql(_SELECT_PAYMENT + " WHERE gateway = ? AND merchant_reference = ?"),
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
                    _SELECT_PAYMENT + " WHERE gateway = ? AND order_reference = ? "
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
                self._sql(_CAS_PROVIDER_REFERENCE),
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
                self._sql(_SUPERSEDE), (True, self._dump_time(self._now()), payment_id, False)
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
        events = tuple(events)

        def work(tx: Tx) -> ApplyResult:
            now = self._now()
            row = tx.one(self._sql(_PAYMENT_GATEWAY), (payment_id,))
            if row is None:
                raise LedgerError(f"no payment with id {payment_id}")
            if receipt_key and not self._insert_receipt(tx, row[0], receipt_key, payment_id, now):
                raise Rollback(ApplyResult.DUPLICATE)
            changed = tx.execute(
                self._sql(_CAS_STATUS),
                (new_status.value, self._dump_time(now), payment_id, expected_status.value),
            )
            if not changed:
                raise Rollback(ApplyResult.CONFLICT)
            tx.execute(
                self._sql(_INSERT_TRANSITION),
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
            lambda tx: tx.one(self._sql(_HAS_RECEIPT), (gateway, receipt_key)) is not None,
            write=False,
        )

    def transitions(self, payment_id: int) -> list[TransitionRecord]:
        def work(tx: Tx) -> list[TransitionRecord]:
            rows = tx.all(self._sql(_SELECT_TRANSITIONS), (payment_id,))
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
        params.append(_check_limit(limit))
        sql = self._sql(_SELECT_JOURNAL + _where(conditions) + " ORDER BY id DESC LIMIT ?")

        def work(tx: Tx) -> list[JournalEntry]:
            return [self._journal_entry(row) for row in reversed(tx.all(sql, tuple(params)))]

        return self._run("journal", work, write=False)

    # -- outbox ------------------------------------------------------------------------------

    def claim_events(
        self,
        *,
        now: datetime,
        limit: int = 100,
        lease_seconds: float = 60,
        lease_from: datetime | None = None,
    ) -> list[OutboxEvent]:
        now = to_utc(now)
        _check_limit(limit)
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        lease_until = (to_utc(lease_from) if lease_from else now) + timedelta(seconds=lease_seconds)
        due = (self._dump_time(now),)
        # A read first: most calls find nothing due, and need no write transaction (on SQLite
        # a write transaction takes the database's single write lock).
        if not self._run("claim_events", lambda tx: tx.all(self._sql(_ANY_DUE), due), write=False):
            return []

        def work(tx: Tx) -> list[OutboxEvent]:
            rows = tx.all(self._sql(_CLAIM), (self._dump_time(now), limit))
            if not rows:
                return []
            ids = tuple(int(row[0]) for row in rows)
            lease = self._render(_LEASE, ids=", ".join(["?"] * len(ids)))
            tx.execute(lease, (self._dump_time(lease_until), *ids))
            return [attrs.evolve(self._event(row), next_attempt_at=lease_until) for row in rows]

        return self._run("claim_events", work, write=True)

    def mark_delivered(self, event_id: str, *, at: datetime) -> None:
        params = (self._dump_time(at), event_id)

        def work(tx: Tx) -> None:
            if not tx.execute(self._sql(_DELIVERED), params):
                raise LedgerError(f"no outbox event {event_id!r}")

        self._run("mark_delivered", work, write=True)

    def mark_failed(self, event_id: str, *, error: str, next_attempt_at: datetime) -> None:
        params = (
            redact_text(str(error))[:MAX_ERROR_LENGTH],
            self._dump_time(next_attempt_at),
            event_id,
        )

        def work(tx: Tx) -> None:
            if tx.execute(self._sql(_FAILED), params):
                return
            if tx.one(self._sql(_EVENT_EXISTS), (event_id,)) is None:
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
        sql = self._sql(_SELECT_OUTBOX + _where(conditions) + " ORDER BY id")

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
    ) -> list[PaymentRecord]:
        wanted = sorted({PaymentStatus(s).value for s in statuses})
        _check_limit(limit)
        if not wanted or limit == 0:
            return []
        marks = ", ".join(["?"] * len(wanted))
        sql = self._sql(
            _SELECT_PAYMENT + f" WHERE status IN ({marks}) AND updated_at < ? "
            "ORDER BY updated_at, id LIMIT ?"
        )
        params = (*wanted, self._dump_time(updated_before), limit)

        def work(tx: Tx) -> list[PaymentRecord]:
            return [self._payment(row) for row in tx.all(sql, params)]

        return self._run("payments_to_reconcile", work, write=False)

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
        params.append(_check_limit(limit))
        sql = self._sql(
            _SELECT_PAYMENT + _where(conditions) + " ORDER BY created_at DESC, id DESC LIMIT ?"
        )

        def work(tx: Tx) -> list[PaymentRecord]:
            return [self._payment(row) for row in tx.all(sql, tuple(params))]

        return self._run("list_payments", work, write=False)

    def counts_by_status(self) -> dict[PaymentStatus, int]:
        rows = self._run("counts_by_status", lambda tx: tx.all(self._sql(_COUNTS)), write=False)
        counts = dict.fromkeys(PaymentStatus, 0)
        for status, count in rows:
            counts[PaymentStatus(status)] = int(count)
        return counts
