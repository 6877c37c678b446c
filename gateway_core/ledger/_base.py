"""The ledger's interface: what every backend promises (the contract suite checks it).

The records it stores live in :mod:`._records`; the SQL implementation both backends share
in :mod:`._sql`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import attrs

from gateway_core._events import EventKind
from gateway_core._models import Money, PaymentStatus
from gateway_core._refunds import RefundStatus
from gateway_core.ledger._records import (
    ApplyResult,
    JournalEntry,
    OutboxEvent,
    PaymentRecord,
    TransitionRecord,
    to_utc,
    utc_now,
)
from gateway_core.ledger._refund_records import RefundRecord, RefundSettlement

__all__ = [
    "MAX_ERROR_LENGTH",
    "SCHEMA_VERSION",
    "ApplyResult",
    "JournalEntry",
    "Ledger",
    "OutboxEvent",
    "PaymentRecord",
    "TransitionRecord",
    "WriteOutcome",
    "to_utc",
    "utc_now",
]


#: The version of the ledger's tables this library writes; :meth:`Ledger.migrate` brings a
#: store up to it and records it in ``gw_schema_version``.
SCHEMA_VERSION = 6

#: Longest ``last_error`` kept for an outbox event (after redaction).
MAX_ERROR_LENGTH = 2000
#: The receipt scope shared by every gateway (gateway names cannot be ``*``): receipts such
#: as "this order is paid" that must be unique across gateways are recorded under it.
ORDER_SCOPE = "*"


@attrs.frozen
class WriteOutcome:
    """What :meth:`Ledger.commit_transition` and :meth:`Ledger.commit_record` did: the
    result, the payment as committed (a transition that was applied), and the ids of the
    outbox events this transaction added (an id already in the outbox is not among them)."""

    result: ApplyResult
    record: PaymentRecord | None = None
    inserted: tuple[str, ...] = ()


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

    def ping(self, timeout: float = 2.0) -> None:
        """Check that the store answers, within about ``timeout`` seconds where the backend
        can bound it; raise :class:`~gateway_core.LedgerError` (usually
        :class:`~gateway_core.LedgerUnavailable`) when it does not. Used by ``/health``."""
        self.schema_version()

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
        self,
        payment_id: int,
        provider_reference: str,
        *,
        expected_version: int,
        provider_data: Mapping[str, Any] | None = None,
    ) -> PaymentRecord:
        """Record the provider's transaction id, and the plugin's ``provider_data`` when
        given (a JSON object; ``None`` keeps what is stored), if the payment is still at
        ``expected_version``.

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
        receipt_scope: str | None = None,
        events: Iterable[OutboxEvent] = (),
        journal: JournalEntry | None = None,
    ) -> ApplyResult:
        """Change the payment's status from ``expected_status`` to ``new_status``, in one
        transaction with its receipt, transition row, outbox events and journal entry.

        In order: when ``receipt_key`` is given it is recorded (unique per scope: the
        payment's gateway, or ``receipt_scope`` when given, such as :data:`ORDER_SCOPE` for a
        receipt keyed on the order across every gateway) and an existing receipt makes the
        call a :attr:`ApplyResult.DUPLICATE`; the status is changed
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
        """:meth:`apply_transition`, also returning the payment as committed and the ids of
        the events added. The SQL ledgers do it in the one transaction; this default re-reads
        the payment afterwards."""
        events = tuple(events)
        result = self.apply_transition(
            payment_id,
            expected_status=expected_status,
            new_status=new_status,
            source=source,
            event_key=event_key,
            receipt_key=receipt_key,
            receipt_scope=receipt_scope,
            events=events,
            journal=journal,
        )
        if result is not ApplyResult.APPLIED:
            return WriteOutcome(result)
        record = self.get_payment_by_id(payment_id)
        return WriteOutcome(result, record, tuple(e.event_id for e in events))

    def commit_record(
        self,
        *,
        gateway: str,
        receipt_key: str = "",
        events: Iterable[OutboxEvent] = (),
        journal: JournalEntry | None = None,
    ) -> WriteOutcome:
        """:meth:`record_without_transition`, also returning the ids of the events added."""
        events = tuple(events)
        result = self.record_without_transition(
            gateway=gateway, receipt_key=receipt_key, events=events, journal=journal
        )
        inserted = tuple(e.event_id for e in events) if result is ApplyResult.APPLIED else ()
        return WriteOutcome(result, None, inserted)

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

    def defer_journal(self, entry: JournalEntry) -> None:
        """Append ``entry`` with this ledger's next write transaction rather than in one of
        its own (a journal line that records no change). A crash may lose it. The SQL
        ledgers buffer it (see :mod:`gateway_core.ledger._deferred`); this default appends
        at once."""
        self.append_journal(entry)

    def defer_delivered(self, event_id: str, *, at: datetime) -> None:
        """:meth:`mark_delivered` with this ledger's next write transaction. A crash may lose
        the mark: the event is delivered again once its lease ends (at least once). This
        default marks at once."""
        self.mark_delivered(event_id, at=at)

    def flush(self) -> None:  # noqa: B027 - optional, nothing deferred by default
        """Write whatever :meth:`defer_journal` and :meth:`defer_delivered` left pending, in
        one transaction (``close()`` does it too). Nothing to do by default."""

    @abc.abstractmethod
    def journal(
        self,
        gateway: str | None = None,
        merchant_reference: str | None = None,
        limit: int = 1000,
    ) -> list[JournalEntry]:
        """The latest ``limit`` entries matching the filters, oldest first."""

    @abc.abstractmethod
    def prune_journal(self, older_than: datetime) -> int:
        """Delete the journal entries received before ``older_than`` (an aware datetime);
        returns how many. The journal is append-only (no entry is ever changed): pruning
        whole old entries is the one deletion it allows."""

    # -- outbox ------------------------------------------------------------------------------

    @abc.abstractmethod
    def claim_events(
        self,
        *,
        now: datetime,
        limit: int = 100,
        lease_seconds: float = 60,
        lease_from: datetime | None = None,
        kinds: Collection[EventKind] | None = None,
    ) -> list[OutboxEvent]:
        """Claim up to ``limit`` undelivered events due at ``now``, oldest first.

        ``kinds`` (default: every kind) limits the claim to events of those kinds, in SQL:
        a process claims only what it has handlers for, and events of other kinds stay
        pending, untouched (no attempt counted, no lease), for a process that handles them.

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
        gateways: Collection[str] | None = None,
    ) -> list[PaymentRecord]:
        """Payments in one of ``statuses`` not changed since ``updated_before`` (and, when
        ``gateways`` is given, at one of those gateways): the least recently examined first
        (never examined before all, see :meth:`mark_examined`), then the longest unchanged.

        Superseded attempts are included: a replaced bill can still be paid.
        """

    @abc.abstractmethod
    def count_to_reconcile(
        self, *, statuses: Collection[PaymentStatus], updated_before: datetime
    ) -> dict[str, int]:
        """How many payments :meth:`payments_to_reconcile` could return, per gateway name
        (gateways with none are left out)."""

    @abc.abstractmethod
    def mark_examined(self, payment_ids: Iterable[int], *, at: datetime) -> int:
        """Stamp ``last_examined_at`` on these payments; returns how many exist.

        Not a change of the payment: ``version`` and ``updated_at`` stay as they are, so the
        stamp never breaks a compare-and-set nor restarts a reconcile grace period.
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

    # -- refunds (gateway_core.ledger._sql_refunds) --------------------------------------------

    @abc.abstractmethod
    def request_refund(
        self,
        payment_id: int,
        *,
        refund_key: str,
        amount: Money,
        reason: str = "",
        provider_reference: str = "",
        status: RefundStatus = RefundStatus.REQUESTED,
    ) -> tuple[RefundRecord, bool]:
        """Record a refund before the provider is asked; return it and whether to send it.
        :class:`RefundRefused` when the refunded total would exceed the paid amount, the
        payment is not paid, or the key names another refund."""

    @abc.abstractmethod
    def settle_refund(
        self,
        refund_id: int,
        *,
        status: RefundStatus,
        provider_reference: str = "",
        source: str = "refund",
        events: Iterable[OutboxEvent]
        | Callable[[PaymentRecord, RefundRecord], Iterable[OutboxEvent]] = (),
    ) -> RefundSettlement:
        """Record the provider's answer for a refund (and, when it succeeded, the payment's
        move to ``partially_refunded`` / ``refunded`` with ``events``) in one transaction."""

    @abc.abstractmethod
    def refunds_for_payment(self, payment_id: int) -> list[RefundRecord]:
        """Every refund of a payment, oldest first."""

    @abc.abstractmethod
    def refund_by_key(self, gateway: str, refund_key: str) -> RefundRecord | None:
        """The refund recorded under ``refund_key`` for ``gateway``, if any."""

    @abc.abstractmethod
    def refunds_to_settle(
        self,
        *,
        updated_before: datetime,
        limit: int = 100,
        gateways: Collection[str] | None = None,
    ) -> list[RefundRecord]:
        """Open refunds (``requested``, ``unknown``, ``pending``) last changed or examined
        before ``updated_before``, oldest first, of ``gateways`` (default: every one)."""

    @abc.abstractmethod
    def touch_refund(self, refund_id: int) -> None:
        """Stamp an open refund examined now, so the next pass takes the others first."""

    # -- statistics for monitoring (gateway_core.ledger._sql_stats) ------------------------------

    @abc.abstractmethod
    def outbox_backlog_by_kind(self) -> dict[str, tuple[int, datetime]]:
        """The undelivered outbox events per event kind: how many, and when the oldest was
        created (kinds with none are left out). A cheap read, made at every metrics scrape."""

    @abc.abstractmethod
    def open_refunds_by_status(self) -> dict[str, tuple[int, datetime]]:
        """The refunds not settled yet (``requested``, ``pending``, ``unknown``) per status:
        how many, and the oldest one's last change (statuses with none are left out)."""

    def outbox_backlog(self) -> tuple[int, datetime | None]:
        """How many outbox events are undelivered, and when the oldest was created (None
        when there are none)."""
        backlog = self.outbox_backlog_by_kind()
        oldest = min((created for _, created in backlog.values()), default=None)
        return sum(count for count, _ in backlog.values()), oldest

    # -- leases for many workers (gateway_core.ledger._sql_leases) -------------------------------

    def claim_reconcile(
        self,
        *,
        statuses: Collection[PaymentStatus],
        updated_before: datetime,
        limit: int,
        now: datetime,
        lease_seconds: float,
        gateways: Collection[str] | None = None,
    ) -> list[PaymentRecord]:
        """Claim a reconcile batch: :meth:`payments_to_reconcile` without the payments
        examined less than ``lease_seconds`` before ``now``, stamped examined at ``now`` in
        the same transaction, so concurrent claims (other workers) get disjoint batches and
        nobody takes them again until the lease has passed. The SQL ledgers lock the rows
        (``FOR UPDATE SKIP LOCKED`` on PostgreSQL); this default reads, then stamps."""
        cutoff = to_utc(now).timestamp() - lease_seconds
        candidates = [
            r
            for r in self.payments_to_reconcile(
                statuses=statuses, updated_before=updated_before, limit=limit, gateways=gateways
            )
            if r.last_examined_at is None or r.last_examined_at.timestamp() <= cutoff
        ]
        self.mark_examined([r.id for r in candidates if r.id is not None], at=now)
        return [attrs.evolve(r, last_examined_at=to_utc(now)) for r in candidates]

    def release_events(
        self, event_ids: Iterable[str], *, leased_until: datetime, at: datetime
    ) -> int:
        """Hand back events claimed (:meth:`claim_events`) with the lease ending at
        ``leased_until`` and not delivered: each becomes due at ``at`` unless it was delivered
        or claimed again since. Returns how many. By default nothing is released: the leases
        end by themselves."""
        return 0

    @abc.abstractmethod
    def acquire_lease(self, name: str, holder: str, *, now: datetime, seconds: float) -> bool:
        """Take the named lease (a job one worker of the fleet does at a time) for
        ``seconds`` from ``now``, if nobody holds it (no lease yet, or the last one ended by
        ``now``); True when ``holder`` has it now. Holding it already does not renew it."""

    @abc.abstractmethod
    def end_lease(self, name: str, holder: str, *, at: datetime) -> bool:
        """Set the end of the named lease ``holder`` holds to ``at`` (now to release it, a
        later time to keep the job from running again before then); False when ``holder``
        does not hold it."""
