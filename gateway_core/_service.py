"""The payment service: the one place where the hard rules live, for every provider.

* The attempt is recorded in the ledger (status ``unknown``) *before* the provider is called;
  the provider's transaction id arrives with ``unknown → pending``.
* A create that may have reached the provider but gave no usable answer stays ``unknown``:
  the caller gets :class:`~gateway_core.OutcomeUnknown`, nothing is re-posted, and the next
  ``start_payment`` for the order makes a new attempt with a new merchant reference. The old
  one was never shown to the customer, so it cannot be paid; reconciliation settles it.
* The customer's return never changes a status by itself: it triggers a (rate-limited)
  inquiry, and the inquiry's answer is applied.
* A notification is verified by the plugin, then checked against the ledger (merchant,
  provider transaction id, amount) — everything its signature does not cover is checked, and
  amounts are checked always. Then it is applied along the state machine with a
  compare-and-set; duplicates are acknowledged with success and change nothing.
* An order is paid once: the ``paid`` transition carries an order-level receipt, so a second
  attempt of the same order being paid raises ``needs_review`` instead.
* Hook events are written to the outbox in the transition's transaction and delivered after
  commit, at least once.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from gateway_core._config import SettingsReader
from gateway_core._events import EVENT_FOR_STATUS, EventKind, PaymentEvent
from gateway_core._exceptions import (
    ConfigurationError,
    GatewayError,
    LedgerError,
    NotificationRejected,
    OutcomeUnknown,
    UnknownPayment,
)
from gateway_core._gateway import Gateway
from gateway_core._models import (
    Acknowledgement,
    Capability,
    Notification,
    Payment,
    PaymentRequest,
    PaymentStatus,
    RedirectInstruction,
    ReturnResult,
    SignedField,
    StatusReport,
)
from gateway_core._plugins import Hooks
from gateway_core._redact import get_logger, redact_excerpt
from gateway_core._state import Decision, decide, review_reason
from gateway_core.ledger import (
    ORDER_SCOPE,
    ApplyResult,
    JournalEntry,
    Ledger,
    OutboxEvent,
    PaymentRecord,
)

log = get_logger(__name__)

_S = PaymentStatus
_RECONCILABLE = frozenset({_S.PENDING, _S.IN_PROCESS, _S.UNKNOWN})
#: Environment variable naming a point where the process kills itself (crash-recovery tests).
CRASH_ENV = "GATEWAY_CRASH_AT"


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def order_receipt(order_reference: str) -> str:
    """The receipt key that marks an order paid, in the ledger's order-wide scope."""
    return f"order-paid:{order_reference}"


@attrs.frozen
class StartedPayment:
    """A payment attempt the customer can be sent to pay."""

    payment: PaymentRecord
    redirect: RedirectInstruction
    reused: bool = False


@attrs.frozen
class NotificationOutcome:
    """What the service did with a notification, and the reply for the provider.

    ``verdict`` is one of ``applied``, ``duplicate``, ``ignored``, ``review``, ``rejected``.
    """

    acknowledgement: Acknowledgement
    verdict: str
    reason: str = ""
    payment: PaymentRecord | None = None


@attrs.frozen
class ReturnOutcome:
    """The customer's return: what it claimed, and the payment as the ledger now has it."""

    claimed: ReturnResult
    payment: PaymentRecord | None
    inquired: bool = False


@attrs.frozen
class ReconcileReport:
    """Counts from one reconciliation pass.

    ``unconfigured`` counts the open payments (past the grace period) of gateways this
    process has no configuration for, named in ``unconfigured_gateways``: they are reported
    on every pass and never examined, so they cannot crowd out the rest.
    """

    examined: int = 0
    changed: int = 0
    unchanged: int = 0
    waiting: int = 0
    errors: int = 0
    reviews: int = 0
    unconfigured: int = 0
    unconfigured_gateways: tuple[str, ...] = ()


@attrs.frozen
class DeliveryReport:
    """Counts from one outbox delivery pass."""

    delivered: int = 0
    failed: int = 0


@attrs.frozen
class Check:
    """One named check of ``gateway verify``."""

    name: str
    ok: bool
    detail: str = ""


@attrs.define
class ServicePolicy:
    """Tunable rules (defaults follow the reliability plan).

    ``acknowledge_unknown_payment``: reply success to a valid notification for a bill this
    ledger never created (stops the provider's retries) or a failure reply (the default, so
    an operator notices in the provider's dashboard). ``acknowledge_review``: reply success to
    a quarantined notification (amount or reference mismatch) so retries don't hide the
    alert. ``return_inquiry_interval``: at most one inquiry per payment per this many seconds
    triggered by customer returns. ``reconcile_grace``: only payments untouched for this long
    are reconciled. ``expiry_margin``: how long after its expiry an attempt whose create
    outcome is unknown is settled as expired. ``journal_body_limit``: characters of a body
    kept (redacted) in the journal; ``rejected_body_limit``: at most this many of a rejected
    one (anyone can send those).
    """

    acknowledge_unknown_payment: bool = False
    acknowledge_review: bool = True
    return_inquiry_interval: float = 2.0
    reconcile_grace: timedelta = timedelta(minutes=5)
    expiry_margin: timedelta = timedelta(minutes=5)
    default_expiry: timedelta = timedelta(hours=1)
    redelivery_backoff_cap: float = 3600.0
    journal_body_limit: int = 4096
    rejected_body_limit: int = 1024

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ServicePolicy:
        """The policy from a configuration's ``[service]`` table (durations in seconds,
        ``default_expiry_minutes`` in minutes); unknown keys are refused by name."""
        read = SettingsReader(settings, provider="service", ignore=frozenset())
        day = 24 * 3600.0
        policy = cls(
            acknowledge_unknown_payment=read.flag("acknowledge_unknown_payment", False),
            acknowledge_review=read.flag("acknowledge_review", True),
            return_inquiry_interval=read.number("return_inquiry_interval", 2.0, maximum=day),
            reconcile_grace=timedelta(
                seconds=read.number("reconcile_grace_seconds", 300.0, maximum=30 * day)
            ),
            expiry_margin=timedelta(
                seconds=read.number("expiry_margin_seconds", 300.0, maximum=30 * day)
            ),
            default_expiry=timedelta(
                minutes=read.number("default_expiry_minutes", 60.0, minimum=1, maximum=43200)
            ),
            redelivery_backoff_cap=read.number("redelivery_backoff_cap", 3600.0, maximum=day),
            journal_body_limit=read.integer("journal_body_limit", 4096, maximum=1_048_576),
            rejected_body_limit=read.integer("rejected_body_limit", 1024, maximum=1_048_576),
        )
        read.finish()
        return policy


class PaymentService:
    """What the platform calls. One instance can serve several configured gateways.

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
    ) -> None:
        self.gateways = gateways
        self.ledger = ledger
        self.hooks = hooks
        self.policy = policy or ServicePolicy()
        self._clock = clock
        self._reference = reference_factory
        self._sleep = sleep
        self._deliver_after_commit = deliver_after_commit
        self._last_return_inquiry: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    # -- helpers --------------------------------------------------------------------------

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
    ) -> OutboxEvent:
        event_id = f"{record.gateway}:{record.merchant_reference}:{kind.value}"
        if kind is EventKind.NEEDS_REVIEW:
            event_id = f"{event_id}:{reason}:{discriminator}"
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
            reason=reason,
            gateway_name=record.gateway,
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
        text = redact_excerpt(body, limit)  # cut first, but never through a secret
        return JournalEntry(
            id=None,
            gateway=gateway_name,
            merchant_reference=merchant_reference,
            kind=kind,
            verdict=verdict,
            reason=reason,
            body=text,
            received_at=self._clock(),
        )

    # -- start a payment --------------------------------------------------------------------

    def start_payment(self, gateway_name: str, request: PaymentRequest) -> StartedPayment:
        """Create (or reuse) the payment attempt for ``request.order_reference``.

        Double-clicking "pay" returns the existing payable attempt instead of a second bill.
        Raises :class:`~gateway_core.OutcomeUnknown` when the provider may have created the
        bill but the reply was lost: the attempt stays ``unknown`` and a later call makes a
        new attempt with a new merchant reference.
        """
        gw = self.gateway(gateway_name)
        now = self._clock()
        order = request.order_reference
        # Paid once per order, whatever the gateway: the receipt is keyed on the order alone.
        if self.ledger.has_receipt(ORDER_SCOPE, order_receipt(order)):
            raise LedgerError("order already has a paid payment", provider=gateway_name)
        attempts = self.ledger.payments_for_order(gateway_name, order)
        for attempt in attempts:
            if attempt.status in (_S.PAID, _S.REVERSED):
                raise LedgerError(
                    "order already has a paid payment",
                    provider=gateway_name,
                    merchant_reference=attempt.merchant_reference,
                )
        replaced: list[PaymentRecord] = []
        for attempt in attempts:
            if attempt.superseded:
                continue
            reusable = (
                attempt.status in (_S.PENDING, _S.IN_PROCESS)
                and attempt.provider_reference
                and attempt.amount == request.amount
                and (attempt.expires_at is None or attempt.expires_at > now)
            )
            if reusable:
                payment = self.as_payment(attempt)
                return StartedPayment(attempt, gw.redirect(payment), reused=True)
            if attempt.status in (_S.PENDING, _S.IN_PROCESS, _S.UNKNOWN):
                # Replaced by a new attempt: a different amount, an expired attempt, or a
                # create whose outcome is unknown (never shown to the customer).
                replaced.append(attempt)
        number = max((a.attempt for a in attempts), default=0) + 1
        reference = request.merchant_reference if number == 1 and request.merchant_reference else ""
        if not reference:
            make = self._reference or gw.make_reference
            reference = make(order, number)
        expires_at = request.expires_at or now + (gw.default_expiry or self.policy.default_expiry)
        outbound = attrs.evolve(
            request, merchant_reference=reference, expires_at=expires_at, created_at=now
        )
        # The provider's own rules, before anything is recorded: a user mistake (a reference
        # the provider refuses, a wrong currency, a missing phone) leaves no ledger row and
        # uses no attempt number.
        gw.check_request(outbound)
        for attempt in replaced:
            assert attempt.id is not None
            self.ledger.mark_superseded(attempt.id)
        record = self.ledger.insert_payment(
            PaymentRecord(
                id=None,
                gateway=gateway_name,
                provider=type(gw).name,
                order_reference=request.order_reference,
                merchant_reference=reference,
                provider_reference="",
                status=_S.UNKNOWN,
                amount=request.amount,
                merchant_id=gw.merchant_id,
                attempt=number,
                superseded=False,
                expires_at=expires_at,
                created_at=now,
                updated_at=now,
                version=0,
            )
        )
        assert record.id is not None
        try:
            payment = gw.create(outbound)
        except OutcomeUnknown:
            self.ledger.append_journal(
                self._journal(gateway_name, reference, "create", "unknown", "outcome_unknown")
            )
            log.warning(
                "create for %s on %s: outcome unknown; recorded as unknown, not retried",
                reference,
                gateway_name,
            )
            raise
        except GatewayError as exc:
            # Provably not created (never sent, refused, invalid request): close the attempt.
            self.ledger.apply_transition(
                record.id,
                expected_status=_S.UNKNOWN,
                new_status=_S.FAILED,
                source="create",
                event_key=f"create_failed:{type(exc).__name__}",
                journal=self._journal(
                    gateway_name, reference, "create", "rejected", type(exc).__name__
                ),
            )
            raise
        record = self.ledger.set_provider_reference(
            record.id, payment.provider_reference, expected_version=record.version
        )
        created = self._event(record, EventKind.CREATED, status=_S.PENDING, previous=None)
        assert record.id is not None
        result = self.ledger.apply_transition(
            record.id,
            expected_status=_S.UNKNOWN,
            new_status=_S.PENDING,
            source="create",
            events=[created],
            journal=self._journal(gateway_name, reference, "create", "applied"),
        )
        if result is not ApplyResult.APPLIED:  # a notification raced us; keep what it set
            log.info("create for %s: status changed concurrently (%s)", reference, result.value)
        record = self.payment(gateway_name, reference)
        self._after_commit()
        redirect = payment.redirect or gw.redirect(payment)
        return StartedPayment(record, redirect)

    # -- applying a provider's report --------------------------------------------------------

    def _apply(
        self,
        record: PaymentRecord,
        reported: PaymentStatus,
        *,
        source: str,
        event_key: str,
        body: str = "",
    ) -> tuple[str, str, PaymentRecord]:
        """Apply ``reported`` to ``record`` along the state machine. Returns (verdict, reason,
        record). Safe under concurrency: a lost compare-and-set re-reads and decides again."""
        gateway_name = record.gateway
        for _ in range(8):
            decision = decide(record.status, reported)
            if decision is Decision.SAME:
                self.ledger.append_journal(
                    self._journal(
                        gateway_name, record.merchant_reference, source, "duplicate", "", body
                    )
                )
                return "duplicate", "", record
            if decision is Decision.IGNORE:
                reason = review_reason(record.status, reported)
                self.ledger.append_journal(
                    self._journal(
                        gateway_name, record.merchant_reference, source, "ignored", reason, body
                    )
                )
                return "ignored", reason, record
            if decision is Decision.REVIEW:
                reason = review_reason(record.status, reported)
                return "review", reason, self._review(record, reason, event_key, source, body)
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
            result = self.ledger.apply_transition(
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
            if result is ApplyResult.APPLIED:
                _crash_point("after_commit")
                fresh = self.ledger.get_payment_by_id(record.id)
                return "applied", "", fresh or record
            fresh = self.ledger.get_payment_by_id(record.id)
            if fresh is None:  # pragma: no cover - rows are never deleted
                raise LedgerError("payment vanished", merchant_reference=record.merchant_reference)
            if result is ApplyResult.DUPLICATE and fresh.status is record.status:
                # The order-level paid receipt exists, but not for this attempt: another
                # attempt of the same order was paid first. Money moved twice.
                return (
                    "review",
                    "paid_twice",
                    self._review(fresh, "paid_twice", event_key, source, body),
                )
            record = fresh
        raise LedgerError(  # pragma: no cover - needs eight lost races in a row
            "could not apply status after repeated conflicts",
            merchant_reference=record.merchant_reference,
        )

    def _review(
        self, record: PaymentRecord, reason: str, event_key: str, source: str, body: str
    ) -> PaymentRecord:
        event = self._event(
            record,
            EventKind.NEEDS_REVIEW,
            status=record.status,
            previous=record.status,
            reason=reason,
            discriminator=event_key or source,
        )
        self.ledger.record_without_transition(
            gateway=record.gateway,
            receipt_key=f"review:{record.merchant_reference}:{reason}:{event_key or source}",
            events=[event],
            journal=self._journal(
                record.gateway, record.merchant_reference, source, "review", reason, body
            ),
        )
        log.warning(
            "payment %s on %s needs review: %s", record.merchant_reference, record.gateway, reason
        )
        return record

    # -- notifications ------------------------------------------------------------------------

    def handle_notification(
        self, gateway_name: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> NotificationOutcome:
        """Verify, check, apply and acknowledge one notification. Never raises for bad input:
        a rejected notification gets the provider's failure reply and changes nothing."""
        gw = self.gateway(gateway_name)
        text = body[: 4 * self.policy.journal_body_limit].decode("utf-8", "replace")
        try:
            notification = gw.handle_notification(body, headers or {})
        except NotificationRejected as exc:
            self.ledger.append_journal(
                self._journal(gateway_name, "", "notification", "rejected", exc.reason, text)
            )
            log.warning("notification on %s rejected: %s", gateway_name, exc.reason)
            ack = exc.acknowledgement or Acknowledgement(
                400, "text/plain", b"rejected", accepted=False
            )
            return NotificationOutcome(ack, "rejected", exc.reason)
        record = self.ledger.get_payment(gateway_name, notification.merchant_reference)
        if record is None:
            self.ledger.append_journal(
                self._journal(
                    gateway_name,
                    notification.merchant_reference,
                    "notification",
                    "rejected",
                    UnknownPayment.reason,
                    text,
                )
            )
            log.warning(
                "notification on %s for unknown payment %s",
                gateway_name,
                notification.merchant_reference,
            )
            accepted = self.policy.acknowledge_unknown_payment
            ack = gw.acknowledge(notification, accepted=accepted, reason=UnknownPayment.reason)
            return NotificationOutcome(ack, "rejected", UnknownPayment.reason)
        mismatch = self._mismatch(gw, record, notification)
        report: StatusReport | None = None
        if mismatch == "adopt":
            record, report = self._adopt_reference(gw, record, notification)
            mismatch = "" if record.provider_reference else "reference_unconfirmed"
        if mismatch:
            self._review(record, mismatch, notification.event_key, "notification", text)
            accepted = self.policy.acknowledge_review
            ack = gw.acknowledge(notification, accepted=accepted, reason=mismatch)
            self._after_commit()
            return NotificationOutcome(ack, "review", mismatch, record)
        trust = type(gw).trust
        status_signed = trust.notification_proves(SignedField.STATUS)
        if not status_signed or (
            not trust.notification_settles
            and decide(record.status, notification.status) is Decision.APPLY
        ):
            return self._confirmed_notification(gw, record, notification, report, text)
        verdict, reason, record = self._apply(
            record,
            notification.status,
            source="notification",
            event_key=notification.event_key,
            body=text,
        )
        ack = gw.acknowledge(notification)
        _crash_point("before_ack")
        # Also after a duplicate: a worker that died after its commit left events to deliver.
        self._after_commit()
        return NotificationOutcome(ack, verdict, reason, record)

    def _confirmed_notification(
        self,
        gw: Gateway,
        record: PaymentRecord,
        notification: Notification,
        report: StatusReport | None,
        text: str,
    ) -> NotificationOutcome:
        """A notification whose signature does not prove what it reports: the provider's
        inquiry decides. The inquiry's answer is checked against the ledger and applied; the
        success reply is sent only when the (durable) ledger now agrees with the notification.
        Otherwise the provider gets its failure reply and retries; reconcile settles the rest.
        """
        gateway_name = record.gateway
        if report is None:
            report = self._confirm_report(gw, record)
        if report is not None:
            mismatch = self._report_mismatch(record, report)
            if mismatch:
                self._review(record, mismatch, notification.event_key, "notification", text)
                ack = gw.acknowledge(
                    notification, accepted=self.policy.acknowledge_review, reason=mismatch
                )
                self._after_commit()
                return NotificationOutcome(ack, "review", mismatch, record)
        verdict, reason = "rejected", "status_unconfirmed"
        if report is not None and report.status is not _S.UNKNOWN:
            same_claim = report.status is notification.status
            if decide(record.status, report.status) is not Decision.SAME:
                verdict, reason, record = self._apply(
                    record,
                    report.status,
                    source="notification" if same_claim else "inquiry",
                    event_key=notification.event_key
                    if same_claim
                    else f"{record.merchant_reference}:{report.provider_status or 'inquiry'}",
                    body=text,
                )
            else:
                verdict, reason = "duplicate", ""
            if verdict == "review":  # confirmed, and money moved twice (paid_twice, ...)
                ack = gw.acknowledge(
                    notification, accepted=self.policy.acknowledge_review, reason=reason
                )
                self._after_commit()
                return NotificationOutcome(ack, verdict, reason, record)
            claimed = notification.status
            signed = type(gw).trust.notification_proves(SignedField.STATUS)
            if signed and decide(record.status, claimed) in (Decision.APPLY, Decision.REVIEW):
                # It claims more than the provider confirms, or the opposite of it (a forged
                # "paid", or one that arrived before the provider's own records caught up).
                verdict, reason = "rejected", "status_unconfirmed"
        if verdict == "rejected":
            self.ledger.append_journal(
                self._journal(
                    gateway_name,
                    record.merchant_reference,
                    "notification",
                    "rejected",
                    reason,
                    text,
                )
            )
            log.warning(
                "notification for %s on %s claims %s, not confirmed by inquiry; "
                "failure reply so the provider retries",
                record.merchant_reference,
                gateway_name,
                notification.status.value,
            )
            ack = gw.acknowledge(notification, accepted=False, reason=reason)
            self._after_commit()
            return NotificationOutcome(ack, verdict, reason, record)
        ack = gw.acknowledge(notification)
        _crash_point("before_ack")
        self._after_commit()
        return NotificationOutcome(ack, verdict, reason, record)

    def refuse_notification(
        self, gateway_name: str, reason: str, body: bytes = b""
    ) -> NotificationOutcome:
        """Refuse a notification before reading it (too large, say): journal the refusal and
        return the provider's failure reply. Nothing else is touched."""
        gw = self.gateway(gateway_name)
        # Bounded, and longer than what is kept: _journal cuts where no secret is split.
        prefix = body[: 4 * self.policy.journal_body_limit].decode("utf-8", "replace")
        self.ledger.append_journal(
            self._journal(gateway_name, "", "notification", "rejected", reason, prefix)
        )
        try:
            gw.handle_notification(b"", {})
        except NotificationRejected as exc:
            if exc.acknowledgement is not None:
                return NotificationOutcome(exc.acknowledgement, "rejected", reason)
        ack = Acknowledgement(400, "text/plain", b"rejected", accepted=False)
        return NotificationOutcome(ack, "rejected", reason)

    def _mismatch(self, gw: Gateway, record: PaymentRecord, notification: Notification) -> str:
        """The first way ``notification`` disagrees with the ledger, or ``""``."""
        trust = type(gw).trust
        if notification.merchant_id and notification.merchant_id != record.merchant_id:
            return "merchant_mismatch"
        for amount in (notification.amount, notification.paid_amount):
            if amount is not None and amount != record.amount:
                return "amount_mismatch"
        if notification.provider_reference != record.provider_reference:
            if not record.provider_reference and notification.provider_reference:
                return "adopt"
            if notification.provider_reference or not trust.notification_proves(
                SignedField.PROVIDER_REFERENCE
            ):
                return "reference_mismatch"
        return ""

    def _confirm_report(self, gw: Gateway, record: PaymentRecord) -> StatusReport | None:
        """The provider's answer to an inquiry, or None when it cannot be asked or failed."""
        if not gw.supports(Capability.INQUIRE) or not record.provider_reference:
            return None
        try:
            return gw.inquire(self.as_payment(record))
        except GatewayError as exc:
            log.warning("could not confirm status of %s: %s", record.merchant_reference, exc)
            return None

    @staticmethod
    def _report_mismatch(record: PaymentRecord, report: StatusReport) -> str:
        """The first way a provider's answer (inquiry, cancel) disagrees with the ledger."""
        if report.merchant_reference and report.merchant_reference != record.merchant_reference:
            return "reference_mismatch"
        if report.merchant_id and report.merchant_id != record.merchant_id:
            return "merchant_mismatch"
        if (
            report.provider_reference
            and record.provider_reference
            and report.provider_reference != record.provider_reference
        ):
            return "reference_mismatch"
        if report.amount is not None and report.amount != record.amount:
            return "amount_mismatch"
        return ""

    def _adopt_reference(
        self, gw: Gateway, record: PaymentRecord, notification: Notification
    ) -> tuple[PaymentRecord, StatusReport | None]:
        """A notification for an attempt whose create reply was lost carries the provider's
        transaction id. It is unsigned, so adopt it only if an inquiry with it confirms (the
        confirming answer is returned, so it is not asked twice)."""
        if not gw.supports(Capability.INQUIRE):
            return record, None
        probe = attrs.evolve(
            self.as_payment(record), provider_reference=notification.provider_reference
        )
        try:
            report = gw.inquire(probe)
        except GatewayError as exc:
            log.warning("could not confirm reference for %s: %s", record.merchant_reference, exc)
            return record, None
        probed = attrs.evolve(record, provider_reference=notification.provider_reference)
        if report.status is not notification.status or self._report_mismatch(probed, report):
            return record, None
        assert record.id is not None
        adopted = self.ledger.set_provider_reference(
            record.id, notification.provider_reference, expected_version=record.version
        )
        return adopted, report

    def check_notification(
        self, gateway_name: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> list[Check]:
        """Run every check ``handle_notification`` would, without applying anything.

        Stops at the first failing check and names it: ``format``, ``signature``,
        ``known_payment``, ``merchant``, ``amount``, ``provider_reference``.
        """
        gw = self.gateway(gateway_name)
        try:
            notification = gw.handle_notification(body, headers or {})
        except NotificationRejected as exc:
            name = "signature" if exc.reason == "bad_signature" else "format"
            return [Check(name, False, exc.message)]
        checks = [Check("format", True), Check("signature", True)]
        record = self.ledger.get_payment(gateway_name, notification.merchant_reference)
        if record is None:
            return [
                *checks,
                Check(
                    "known_payment",
                    False,
                    f"no payment {notification.merchant_reference!r} in the ledger",
                ),
            ]
        checks.append(Check("known_payment", True, notification.merchant_reference))
        mismatch = self._mismatch(gw, record, notification)
        for name, reason in (
            ("merchant", "merchant_mismatch"),
            ("amount", "amount_mismatch"),
            ("provider_reference", "reference_mismatch"),
        ):
            if mismatch == reason:
                detail = {
                    "merchant": f"notification says {notification.merchant_id!r}, "
                    f"ledger has {record.merchant_id!r}",
                    "amount": f"notification says {notification.amount or notification.paid_amount}"
                    f", ledger has {record.amount}",
                    "provider_reference": "transaction id differs from the ledger's",
                }[name]
                return [*checks, Check(name, False, detail)]
            checks.append(Check(name, True))
        return checks

    def check_return(self, gateway_name: str, query: Mapping[str, str]) -> list[Check]:
        """Verify a return URL's query: ``signature`` then ``known_payment``."""
        gw = self.gateway(gateway_name)
        try:
            claimed = gw.handle_return(query, {})
        except NotificationRejected as exc:
            name = "signature" if exc.reason == "bad_signature" else "format"
            return [Check(name, False, exc.message)]
        record = self.ledger.get_payment(gateway_name, claimed.merchant_reference)
        return [
            Check("signature", True),
            Check(
                "known_payment",
                record is not None,
                claimed.merchant_reference if record else "not in the ledger",
            ),
        ]

    # -- returns, inquiries, cancels ----------------------------------------------------------

    def handle_return(
        self,
        gateway_name: str,
        query: Mapping[str, str],
        headers: Mapping[str, str] | None = None,
    ) -> ReturnOutcome:
        """Verify the customer's return and confirm by inquiry. The return itself never
        changes a status. Raises :class:`~gateway_core.NotificationRejected` when it does
        not verify."""
        gw = self.gateway(gateway_name)
        claimed = gw.handle_return(query, headers or {})
        record = self.ledger.get_payment(gateway_name, claimed.merchant_reference)
        self.ledger.append_journal(
            self._journal(
                gateway_name,
                claimed.merchant_reference,
                "return",
                "received" if record else "rejected",
                f"claimed {claimed.status.value}",
            )
        )
        if record is None:
            return ReturnOutcome(claimed, None)
        inquired = False
        if type(gw).trust.return_settles and not record.status.is_final:
            # This provider signs its returns well enough to settle on them (declared).
            _verdict, _reason, record = self._apply(
                record,
                claimed.status,
                source="return",
                event_key=f"{claimed.merchant_reference}:{claimed.provider_status or 'return'}",
            )
            self._after_commit()
            return ReturnOutcome(claimed, record)
        if (
            not record.status.is_final
            and record.provider_reference
            and gw.supports(Capability.INQUIRE)
            and self._return_inquiry_due(gateway_name, record.merchant_reference)
        ):
            try:
                record = self._inquire_and_apply(gw, record, source="return")
                inquired = True
            except GatewayError as exc:
                log.warning(
                    "inquiry after return for %s failed: %s", record.merchant_reference, exc
                )
        return ReturnOutcome(claimed, record, inquired)

    def _return_inquiry_due(self, gateway_name: str, merchant_reference: str) -> bool:
        key = (gateway_name, merchant_reference)
        now = time.monotonic()
        with self._lock:
            last = self._last_return_inquiry.get(key)
            if last is not None and now - last < self.policy.return_inquiry_interval:
                return False
            self._last_return_inquiry[key] = now
            return True

    def _inquire_and_apply(
        self, gw: Gateway, record: PaymentRecord, *, source: str
    ) -> PaymentRecord:
        report = gw.inquire(self.as_payment(record))
        return self._apply_report(record, report, source=source)

    def _apply_report(
        self, record: PaymentRecord, report: StatusReport, *, source: str
    ) -> PaymentRecord:
        """Check the provider's answer against the ledger like a notification (a mismatch is
        a review, never a transition), then apply it."""
        if report.status is _S.UNKNOWN:
            return record
        mismatch = self._report_mismatch(record, report)
        if mismatch:
            code = report.provider_status or report.status.value
            self._review(record, mismatch, f"{record.merchant_reference}:{code}", source, "")
            self._after_commit()
            return record
        code = report.provider_status or report.status.value
        _verdict, _reason, record = self._apply(
            record,
            report.status,
            source=source,
            event_key=f"{record.merchant_reference}:{code}",
        )
        self._after_commit()
        return record

    def inquire(self, gateway_name: str, merchant_reference: str) -> PaymentRecord:
        """Ask the provider for the payment's status and apply the answer."""
        gw = self.gateway(gateway_name)
        record = self.payment(gateway_name, merchant_reference)
        if not record.provider_reference:
            return record
        return self._inquire_and_apply(gw, record, source="inquiry")

    def cancel(self, gateway_name: str, merchant_reference: str, reason: str = "") -> PaymentRecord:
        """Cancel an unpaid payment at the provider and apply the answer."""
        gw = self.gateway(gateway_name)
        record = self.payment(gateway_name, merchant_reference)
        report = gw.cancel(self.as_payment(record), reason or "cancelled by merchant")
        return self._apply_report(record, report, source="cancel")

    # -- reconciliation -----------------------------------------------------------------------

    def reconcile(
        self,
        *,
        gateway_names: Iterable[str] | None = None,
        limit: int = 100,
        min_interval: float = 0.1,
        grace: timedelta | None = None,
        progress: Callable[[PaymentRecord, str], None] | None = None,
    ) -> ReconcileReport:
        """Inquire every payment pending or unknown for longer than ``grace`` (at most
        ``limit``, at most one inquiry per ``min_interval`` seconds) and apply the answers.

        Each pass takes the least recently examined payments first and stamps them examined,
        whatever the answer, so ``n`` open payments are all examined within
        ``ceil(n / limit)`` passes. ``grace`` counts from the payment's last change, not its
        last examination. Payments of gateways not configured here are counted in the report
        and left alone.

        An attempt whose create outcome is unknown has no provider transaction id to inquire
        with; it was never shown to the customer, so once its expiry (plus the policy's
        margin) has passed it is settled as expired.
        """
        wanted = set(gateway_names) if gateway_names is not None else None
        names = set(self.gateways) if wanted is None else wanted & set(self.gateways)
        now = self._clock()
        cutoff = now - (self.policy.reconcile_grace if grace is None else grace)
        backlog = self.ledger.count_to_reconcile(statuses=_RECONCILABLE, updated_before=cutoff)
        orphans = {
            name: count
            for name, count in backlog.items()
            if name not in self.gateways and (wanted is None or name in wanted)
        }
        if orphans:
            log.warning(
                "reconcile: %d open payments of gateways not configured here: %s",
                sum(orphans.values()),
                ", ".join(sorted(orphans)),
            )
        candidates = self.ledger.payments_to_reconcile(
            statuses=_RECONCILABLE, updated_before=cutoff, limit=limit, gateways=names
        )
        # Stamped before the inquiries: a concurrent pass takes the next batch instead, and a
        # payment whose inquiry keeps failing goes to the back of the queue like the rest.
        self.ledger.mark_examined([r.id for r in candidates if r.id is not None], at=now)
        counts = {"examined": 0, "changed": 0, "unchanged": 0, "waiting": 0, "errors": 0}
        reviews = 0
        first = True
        for record in candidates:
            counts["examined"] += 1
            gw = self.gateways[record.gateway]
            before = record.status
            if not record.provider_reference:
                expiry = record.expires_at
                if expiry is not None and now >= expiry + self.policy.expiry_margin:
                    verdict, _, record = self._apply(
                        record,
                        _S.EXPIRED,
                        source="reconcile",
                        event_key=f"{record.merchant_reference}:unknown_expired",
                    )
                    counts["changed" if verdict == "applied" else "unchanged"] += 1
                    if progress:
                        progress(record, verdict)
                else:
                    counts["waiting"] += 1
                    if progress:
                        progress(record, "waiting")
                continue
            if not gw.supports(Capability.INQUIRE):
                counts["waiting"] += 1
                continue
            if not first and min_interval > 0:
                self._sleep(min_interval)
            first = False
            try:
                report = gw.inquire(self.as_payment(record))
            except GatewayError as exc:
                counts["errors"] += 1
                log.warning("reconcile: inquiry for %s failed: %s", record.merchant_reference, exc)
                if progress:
                    progress(record, "error")
                continue
            verdict = "unchanged"
            mismatch = self._report_mismatch(record, report)
            if mismatch and report.status is not _S.UNKNOWN:
                # The answer disagrees with the ledger (amount, merchant, transaction id):
                # a review, never a transition.
                verdict = "review"
                code = report.provider_status or report.status.value
                self._review(
                    record, mismatch, f"{record.merchant_reference}:{code}", "reconcile", ""
                )
            elif report.status is not _S.UNKNOWN:
                verdict, _reason, record = self._apply(
                    record,
                    report.status,
                    source="reconcile",
                    event_key=f"{record.merchant_reference}:{report.provider_status}",
                )
            if verdict == "review":
                reviews += 1
            changed = record.status is not before
            counts["changed" if changed else "unchanged"] += 1
            if progress:
                progress(record, "changed" if changed else verdict)
        self._after_commit()
        return ReconcileReport(
            reviews=reviews,
            unconfigured=sum(orphans.values()),
            unconfigured_gateways=tuple(sorted(orphans)),
            **counts,
        )

    # -- the outbox ---------------------------------------------------------------------------

    def _after_commit(self) -> None:
        if self._deliver_after_commit:
            try:
                self.deliver_events()
            except Exception as exc:  # delivery must never undo or fail the payment
                log.warning("hook delivery deferred: %s", type(exc).__name__)

    def deliver_events(self, *, limit: int = 100, due_by: datetime | None = None) -> DeliveryReport:
        """Deliver due outbox events to the hooks, at least once. A handler that raises
        leaves its event for a later attempt, with exponential backoff. ``due_by`` delivers
        events scheduled up to that time (default: now)."""
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
            lease_seconds=60.0,
            lease_from=real_now,
            kinds=kinds,
        )
        for event in claimed:
            try:
                self.hooks.emit(event.to_event())
            except Exception as exc:
                failed += 1
                delay = min(self.policy.redelivery_backoff_cap, 5.0 * 2 ** min(event.attempts, 20))
                self.ledger.mark_failed(
                    event.event_id,
                    error=f"{type(exc).__name__}: {exc}",
                    next_attempt_at=self._clock() + timedelta(seconds=delay),
                )
                log.warning(
                    "hook for %s failed; will retry: %s", event.event_id, type(exc).__name__
                )
                continue
            _crash_point("after_hook")
            self.ledger.mark_delivered(event.event_id, at=self._clock())
            delivered += 1
        return DeliveryReport(delivered, failed)

    def redeliver(self, *, limit: int = 1000, force: bool = False) -> DeliveryReport:
        """Deliver pending hook events now (``force`` ignores their backoff schedule)."""
        due_by = self._clock() + timedelta(days=36500) if force else None
        return self.deliver_events(limit=limit, due_by=due_by)
