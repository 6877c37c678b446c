"""The core of the payment service: the gateways, the ledger and the hooks it holds, and the
one way a provider's report changes a payment (:meth:`ServiceCore._apply`: along the state
machine, with a compare-and-set, the order-wide paid receipt and the outbox event in one
transaction), plus delivery of the outbox to the hooks, at least once: a notification's own
events inline after its commit (leased to this process from birth, their delivery marks
deferred to the ledger's next write), the rest by claims (:meth:`ServiceCore.deliver_events`).

:class:`~gateway_core.PaymentService` is assembled from this and the inbound
(:mod:`gateway_core._service_inbound`) and reconciliation (:mod:`gateway_core._service_reconcile`)
parts; :mod:`gateway_core._service` says the rules.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import attrs

from gateway_core._events import EVENT_FOR_STATUS, EventKind, PaymentEvent
from gateway_core._exceptions import (
    ConfigurationError,
    LedgerError,
    UnknownPayment,
)
from gateway_core._gateway import Gateway
from gateway_core._inbound import Reason, Verdict
from gateway_core._models import (
    Money,
    Payment,
    PaymentStatus,
    StatusReport,
)
from gateway_core._plugins import Hooks
from gateway_core._redact import get_logger, redact_excerpt
from gateway_core._refunds import RefundReport
from gateway_core._service_metrics import NULL_METRICS, ServiceMetrics
from gateway_core._service_types import DeliveryReport, ServicePolicy
from gateway_core._state import Decision, decide, review_reason
from gateway_core.ledger import (
    ORDER_SCOPE,
    ApplyResult,
    JournalEntry,
    Ledger,
    OutboxEvent,
    PaymentRecord,
)

log = get_logger("gateway_core._service")

_S = PaymentStatus

#: Seconds an event stays leased to the process that committed it and delivers it inline,
#: after the commit (the same lease as :meth:`ServiceCore.deliver_events` takes).
INLINE_LEASE = 60.0


_REFUNDABLE = frozenset(
    {PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}
)
_REFUND_STATUSES = frozenset({PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED})

#: Event kinds with one event per discriminator (a provider event's key, a refund's key).
_DISCRIMINATED = frozenset(
    {EventKind.PROVIDER_EVENT, EventKind.REFUND_SUCCEEDED, EventKind.REFUND_FAILED}
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def order_receipt(order_reference: str) -> str:
    """The receipt key that marks an order paid, in the ledger's order-wide scope."""
    return f"order-paid:{order_reference}"


class ServiceCore:
    """The state and the write path every part of the payment service shares.

    ``gateways`` maps configured gateway names to gateways; ``hooks`` is the
    :class:`~gateway_core.PluginHost`'s facade; ``clock`` returns aware UTC datetimes.
    """

    def __init__(
        self,
        *,
        gateways: Mapping[str, Gateway],
        ledger: Ledger,
        hooks: Hooks,
        policy: ServicePolicy | None = None,
        clock: Callable[[], datetime] = _utcnow,
        reference_factory: Callable[[str, int], str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        deliver_after_commit: bool = True,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.gateways = gateways
        #: Told about each decision (:mod:`gateway_core.metrics`); a no-op by default.
        self.metrics = metrics or NULL_METRICS
        self.ledger = ledger
        self.hooks = hooks
        self.policy = policy or ServicePolicy()
        self._clock = clock
        self._reference = reference_factory
        self._sleep = sleep
        self._deliver_after_commit = deliver_after_commit
        self._last_return_inquiry: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        # Per thread: the events committed by the notification being handled, leased to
        # this process for inline delivery after the commit (None outside that path).
        self._local = threading.local()
        self._verdicts: Counter[str] = Counter()

    @property
    def stats(self) -> dict[str, int]:
        """How many notifications got each verdict since this service was made
        (``applied``, ``duplicate``, ``ignored``, ``review``, ``rejected``, ``event``): a
        snapshot, safe to read from any thread."""
        with self._lock:
            return {str(verdict): count for verdict, count in self._verdicts.items()}

    def _count(self, verdict: str) -> None:
        with self._lock:
            self._verdicts[str(verdict)] += 1

    def gateway(self, name: str) -> Gateway:
        """The configured gateway ``name``."""
        try:
            return self.gateways[name]
        except KeyError:
            known = ", ".join(sorted(self.gateways)) or "none"
            raise ConfigurationError(
                f"no gateway named {name!r} is configured (configured: {known})", key=name
            ) from None

    def payment(self, gateway_name: str, merchant_reference: str) -> PaymentRecord:
        """The ledger's record of one payment; :class:`UnknownPayment` if there is none."""
        record = self.ledger.get_payment(gateway_name, merchant_reference)
        if record is None:
            raise UnknownPayment(
                "no such payment in the ledger",
                provider=gateway_name,
                merchant_reference=merchant_reference,
            )
        return record

    @staticmethod
    def as_payment(record: PaymentRecord) -> Payment:
        """The provider-facing view of a ledger record."""
        return Payment(
            provider=record.provider,
            merchant_reference=record.merchant_reference,
            status=record.status,
            amount=record.amount,
            provider_reference=record.provider_reference,
            order_reference=record.order_reference,
            expires_at=record.expires_at,
            provider_data=record.provider_data,
            method=record.method,
        )

    def _event(
        self,
        record: PaymentRecord,
        kind: EventKind,
        *,
        status: PaymentStatus,
        previous: PaymentStatus | None,
        reason: str = "",
        discriminator: str = "",
        provider_kind: str = "",
        event_amount: Money | None = None,
        refund_key: str = "",
    ) -> OutboxEvent:
        event_id = f"{record.gateway}:{record.merchant_reference}:{kind.value}"
        if kind is EventKind.NEEDS_REVIEW:
            event_id = f"{event_id}:{reason}:{discriminator}"
        elif kind in _DISCRIMINATED:
            event_id = f"{event_id}:{discriminator}"
        event = PaymentEvent(
            event_id=event_id,
            kind=kind,
            provider=record.provider,
            order_reference=record.order_reference,
            merchant_reference=record.merchant_reference,
            status=status,
            amount=record.amount,
            occurred_at=self._clock(),
            provider_reference=record.provider_reference,
            previous_status=previous,
            reason=str(reason),
            gateway_name=record.gateway,
            provider_kind=provider_kind,
            event_amount=event_amount,
            refund_key=refund_key,
        )
        assert record.id is not None
        return OutboxEvent.from_event(event, record.id)

    def _journal(
        self,
        gateway_name: str,
        merchant_reference: str,
        kind: str,
        verdict: str,
        reason: str = "",
        body: str = "",
    ) -> JournalEntry:
        # Anyone can send a rejected body: keep less of it (a flood of junk stays small).
        limit = self.policy.journal_body_limit
        if verdict == "rejected":
            limit = min(limit, self.policy.rejected_body_limit)
        # Redacted here, once (the ledger stores an entry marked ``redacted`` as it is).
        text = redact_excerpt(body, limit)  # cut first, but never through a secret
        return JournalEntry(
            id=None,
            gateway=gateway_name,
            merchant_reference=merchant_reference,
            kind=kind,
            verdict=str(verdict),
            reason=str(reason),
            body=text,
            received_at=self._clock(),
            redacted=True,
        )

    def _no_change(
        self, record: PaymentRecord, source: str, verdict: str, reason: str, body: str
    ) -> None:
        """Journal a message that changes nothing, with the ledger's next write (no commit of
        its own on the acknowledgement path: a crash may lose the line, never a change)."""
        self.ledger.defer_journal(
            self._journal(record.gateway, record.merchant_reference, source, verdict, reason, body)
        )

    def _leased(self, events: Iterable[OutboxEvent]) -> list[OutboxEvent]:
        """``events``, those this process will deliver inline after the commit leased to it
        from birth (so no other worker claims them meanwhile, and no claim is written)."""
        events = list(events)
        if getattr(self._local, "inline", None) is None or not self._deliver_after_commit:
            return events
        until = self._clock() + timedelta(seconds=self.policy.inline_lease)
        return [
            attrs.evolve(e, next_attempt_at=until) if self.hooks.handles(e.kind) else e
            for e in events
        ]

    def _queue_inline(self, events: Iterable[OutboxEvent], inserted: Iterable[str]) -> None:
        """Remember the committed events leased to this process, for :meth:`_after_commit`."""
        queue: list[OutboxEvent] | None = getattr(self._local, "inline", None)
        if queue is None or not self._deliver_after_commit:
            return
        added = set(inserted)
        queue.extend(e for e in events if e.event_id in added and self.hooks.handles(e.kind))

    def _apply(
        self,
        record: PaymentRecord,
        reported: PaymentStatus,
        *,
        source: str,
        event_key: str,
        body: str = "",
        refunds: Sequence[RefundReport] = (),
    ) -> tuple[Verdict, Reason, PaymentRecord]:
        """Apply ``reported`` to ``record`` along the state machine. Returns (verdict, reason,
        record). Safe under concurrency: a lost compare-and-set re-reads and decides again.

        A report of refunds (``partially_refunded`` / ``refunded``, or a refund list) for a
        paid payment is applied refund by refund (:meth:`_apply_refunds`): the payment's
        status follows the refunded total, never the reported word."""
        gateway_name = record.gateway
        if record.status in _REFUNDABLE and (reported in _REFUND_STATUSES or refunds):
            changed = self._apply_refunds(record, reported, refunds, source, event_key)
            assert record.id is not None
            after = self.ledger.get_payment_by_id(record.id) or record
            if reported in _REFUND_STATUSES or reported in (_S.PAID, after.status):
                verdict = Verdict.APPLIED if changed else Verdict.DUPLICATE
                self._no_change(after, source, verdict.value, "", body)
                return verdict, Reason.NONE, after
            # Something else happened too (a reversal reported with the refund list): the
            # refunds are recorded, and the reported status is decided as usual.
            record = after
        for _ in range(8):
            decision = decide(record.status, reported)
            if decision is Decision.SAME:  # decided by the read: no write transaction
                self._no_change(record, source, "duplicate", "", body)
                return Verdict.DUPLICATE, Reason.NONE, record
            if decision is Decision.IGNORE:
                reason = review_reason(record.status, reported)
                self._no_change(record, source, "ignored", reason, body)
                return Verdict.IGNORED, reason, record
            if decision is Decision.REVIEW:
                reason = review_reason(record.status, reported)
                return (
                    Verdict.REVIEW,
                    reason,
                    self._review(record, reason, event_key, source, body),
                )
            events: list[OutboxEvent] = []
            kind = EVENT_FOR_STATUS.get(reported)
            if record.superseded and reported in (_S.FAILED, _S.EXPIRED, _S.CANCELLED):
                # A replaced attempt ending unpaid says nothing about the order, which has a
                # newer attempt: record it, but don't tell the order system it failed.
                kind = None
            if kind is not None:
                events.append(self._event(record, kind, status=reported, previous=record.status))
            receipt = order_receipt(record.order_reference) if reported is _S.PAID else ""
            assert record.id is not None
            events = self._leased(events)
            # One write transaction: receipt, compare-and-set, transition, outbox event,
            # journal entry (and whatever the ledger deferred), the payment handed back.
            outcome = self.ledger.commit_transition(
                record.id,
                expected_status=record.status,
                new_status=reported,
                source=source,
                event_key=event_key,
                receipt_key=receipt,
                receipt_scope=ORDER_SCOPE,
                events=events,
                journal=self._journal(
                    gateway_name, record.merchant_reference, source, "applied", "", body
                ),
            )
            result = outcome.result
            if result is ApplyResult.APPLIED:
                self._queue_inline(events, outcome.inserted)
                return Verdict.APPLIED, Reason.NONE, outcome.record or record
            fresh = self.ledger.get_payment_by_id(record.id)
            if fresh is None:  # pragma: no cover - rows are never deleted
                raise LedgerError("payment vanished", merchant_reference=record.merchant_reference)
            if result is ApplyResult.DUPLICATE and fresh.status is record.status:
                # The order-level paid receipt exists, but not for this attempt: another
                # attempt of the same order was paid first. Money moved twice.
                return (
                    Verdict.REVIEW,
                    Reason.PAID_TWICE,
                    # One review per attempt paid twice, whichever message showed it (a
                    # provider confirmed by inquiry may show it from several messages).
                    self._review(fresh, Reason.PAID_TWICE, fresh.merchant_reference, source, body),
                )
            record = fresh
        raise LedgerError(  # pragma: no cover - needs eight lost races in a row
            "could not apply status after repeated conflicts",
            merchant_reference=record.merchant_reference,
        )

    def _apply_refunds(
        self,
        record: PaymentRecord,
        reported: PaymentStatus,
        refunds: Sequence[RefundReport],
        source: str,
        event_key: str,
    ) -> int:
        """Settle the refunds a provider reports; how many changed. Without refunds (this
        core alone) nothing is applied: a refund needs the refund service."""
        return 0

    def _review(
        self, record: PaymentRecord, reason: Reason, event_key: str, source: str, body: str
    ) -> PaymentRecord:
        event = self._event(
            record,
            EventKind.NEEDS_REVIEW,
            status=record.status,
            previous=record.status,
            reason=reason,
            discriminator=event_key or source,
        )
        events = self._leased([event])
        outcome = self.ledger.commit_record(
            gateway=record.gateway,
            receipt_key=f"review:{record.merchant_reference}:{reason}:{event_key or source}",
            events=events,
            journal=self._journal(
                record.gateway, record.merchant_reference, source, "review", reason, body
            ),
        )
        self._queue_inline(events, outcome.inserted)
        log.warning(
            "payment %s on %s needs review: %s",
            record.merchant_reference,
            record.gateway,
            reason.value,
        )
        return record

    @staticmethod
    def _report_mismatch(record: PaymentRecord, report: StatusReport) -> Reason:
        """The first way a provider's answer (inquiry, cancel) disagrees with the ledger
        (``Reason.NONE``, which is falsy, when it agrees)."""
        if report.merchant_reference and report.merchant_reference != record.merchant_reference:
            return Reason.REFERENCE_MISMATCH
        if report.merchant_id and report.merchant_id != record.merchant_id:
            return Reason.MERCHANT_MISMATCH
        if (
            report.provider_reference
            and record.provider_reference
            and report.provider_reference != record.provider_reference
        ):
            return Reason.REFERENCE_MISMATCH
        if report.amount is not None and report.amount != record.amount:
            return Reason.AMOUNT_MISMATCH
        return Reason.NONE

    def _after_commit(self) -> None:
        """Deliver the events just committed by this thread (leased to it), then any backlog
        that is due (a read decides; a claim is written only when something is due).

        A delivered event's mark goes with the ledger's next write (:meth:`Ledger.defer_delivered`):
        the handler never runs inside the write transaction, and its mark costs no commit of
        its own. If the process dies first, the event is delivered again after its lease."""
        queue: list[OutboxEvent] | None = getattr(self._local, "inline", None)
        if queue:
            self._local.inline = []
        if not self._deliver_after_commit:
            return
        try:
            for event in queue or ():
                self._deliver(event)
            self.deliver_events()
        except Exception as exc:  # delivery must never undo or fail the payment
            log.warning("hook delivery deferred: %s", type(exc).__name__)

    def _deliver(self, event: OutboxEvent) -> bool:
        """Run the hook for one claimed (or inline-leased) event; True when it succeeded."""
        try:
            self.hooks.emit(event.to_event())
        except Exception as exc:
            delay = min(self.policy.redelivery_backoff_cap, 5.0 * 2 ** min(event.attempts, 20))
            self.ledger.mark_failed(
                event.event_id,
                error=f"{type(exc).__name__}: {exc}",
                next_attempt_at=self._clock() + timedelta(seconds=delay),
            )
            log.warning("hook for %s failed; will retry: %s", event.event_id, type(exc).__name__)
            self.metrics.delivery_failed(event.kind.value)
            return False
        self.ledger.defer_delivered(event.event_id, at=self._clock())
        self.metrics.delivered(event.kind.value)
        return True

    def deliver_events(
        self,
        *,
        limit: int = 100,
        due_by: datetime | None = None,
        lease_seconds: float = INLINE_LEASE,
        stop: Callable[[], bool] | None = None,
    ) -> DeliveryReport:
        """Deliver due outbox events to the hooks, at least once. A handler that raises
        leaves its event for a later attempt, with exponential backoff. ``due_by`` delivers
        events scheduled up to that time (default: now). The events are claimed for
        ``lease_seconds``; once ``stop()`` is true (a worker stopping) the claimed events not
        delivered yet are handed back, due at once, after this pass's marks are written."""
        delivered = failed = 0
        # Only the kinds some plugin here handles are claimed (filtered in SQL): the others
        # stay pending, untouched, for a process that has their handler. With none at all (a
        # CLI without the order system's plugin, say) nothing is claimed.
        kinds = frozenset(kind for kind in EventKind if self.hooks.handles(kind))
        if not kinds:
            return DeliveryReport(0, 0)
        real_now = self._clock()
        # Events due by ``due_by`` are leased from the real present, so a crash mid-delivery
        # does not strand them until that (possibly far) future.
        claimed = self.ledger.claim_events(
            now=due_by or real_now,
            limit=limit,
            lease_seconds=lease_seconds,
            lease_from=real_now,
            kinds=kinds,
        )
        for index, event in enumerate(claimed):
            if stop is not None and stop():
                self.ledger.flush()  # delivered first, so none of them is handed back
                rest = claimed[index:]
                until = rest[0].next_attempt_at
                self.ledger.release_events(
                    [e.event_id for e in rest], leased_until=until, at=self._clock()
                )
                break
            if self._deliver(event):
                delivered += 1
            else:
                failed += 1
        if delivered:
            self.ledger.flush()  # the marks of this pass, in one transaction
        return DeliveryReport(delivered, failed)

    def redeliver(self, *, limit: int = 1000, force: bool = False) -> DeliveryReport:
        """Deliver pending hook events now (``force`` ignores their backoff schedule)."""
        due_by = self._clock() + timedelta(days=36500) if force else None
        return self.deliver_events(limit=limit, due_by=due_by)
