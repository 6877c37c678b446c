"""The payment service's inbound side: notifications (verified by the plugin, checked against
the ledger, confirmed by inquiry where the provider's trust declaration says the signature
alone proves nothing), customer returns (a trigger for an inquiry, never proof), inquiries and
cancels, and the checks behind ``gateway verify``. Every answer from the provider is compared
with the ledger like a notification: a mismatch is a review, never a transition.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import attrs

from gateway_core._events import EventKind
from gateway_core._exceptions import (
    GatewayError,
    NotificationRejected,
)
from gateway_core._gateway import Gateway
from gateway_core._inbound import InboundRequest, ProviderEvent, Reason, Verdict
from gateway_core._models import (
    Capability,
    Notification,
    PaymentStatus,
    SignedField,
    StatusReport,
)
from gateway_core._redact import get_logger
from gateway_core._refunds import RefundReport
from gateway_core._service_core import ServiceCore
from gateway_core._service_types import Check, NotificationOutcome, ReturnOutcome
from gateway_core._state import Decision, decide
from gateway_core.ledger import (
    ApplyResult,
    PaymentRecord,
)

log = get_logger("gateway_core._service")

_S = PaymentStatus
#: Claims that money moved: never acknowledged unless the provider confirms them.
_MONEY_CLAIMS = frozenset({_S.PAID, _S.PARTIALLY_REFUNDED, _S.REFUNDED})


@attrs.frozen
class _Decided:
    """The service's decision about one inbound message, before the reply is rendered."""

    verdict: Verdict
    reason: Reason = Reason.NONE
    record: PaymentRecord | None = None


def _unlisted_refunds(notification: Notification, report: StatusReport) -> bool:
    """Whether ``notification`` lists a refund (by key or provider id, with its amount) that
    the provider's answer ``report`` does not."""

    def named(refunds: Iterable[RefundReport]) -> set[tuple[str, object]]:
        return {(r.key or f"provider:{r.provider_reference}", r.amount) for r in refunds}

    return not named(notification.refunds) <= named(report.refunds)


class InboundService(ServiceCore):
    """Notifications, returns, inquiries, cancels and verification."""

    def receive_notification(
        self, gateway_name: str, request: InboundRequest
    ) -> NotificationOutcome:
        """Parse, decide, write and reply to one notification, in that order: the gateway
        parses, this service decides a (:class:`Verdict`, :class:`Reason`) and writes once,
        and the gateway renders the reply for it, exactly once, at the end. Never raises for
        bad input: a rejected notification gets the provider's failure reply and changes
        nothing. Raises :class:`~gateway_core.LedgerError` (before any reply) when the ledger
        fails; the caller then answers with :meth:`refuse_notification`."""
        gw = self.gateway(gateway_name)
        text = request.body[: 4 * self.policy.journal_body_limit].decode("utf-8", "replace")
        message: Notification | ProviderEvent | None
        try:
            message = gw.parse_notification(request)
        except NotificationRejected as exc:
            message, reason = None, Reason.of(exc.reason)
            self.ledger.append_journal(
                self._journal(gateway_name, "", "notification", "rejected", reason, text)
            )
            log.warning("notification on %s rejected: %s", gateway_name, reason.value)
            decided = _Decided(Verdict.REJECTED, reason)
        else:
            # Events this notification commits are leased to this process and delivered
            # inline after the commit (see _after_commit).
            self._local.inline = []
            try:
                if isinstance(message, ProviderEvent):
                    decided = self._provider_event(gateway_name, message, text)
                else:
                    decided = self._decide_notification(gw, gateway_name, message, text)
                # Then the due backlog, also after a duplicate: events a worker that died
                # after its commit left behind (a read; a claim only when one is due).
                self._after_commit()
            finally:
                self._local.inline = None
        self._count(decided.verdict)
        self.metrics.inbound(gateway_name, gw.name, "notification", decided.verdict, decided.reason)
        accepted = self._accepts(decided)
        ack = gw.reply(decided.verdict, message, decided.reason, request, accepted=accepted)
        return NotificationOutcome(ack, decided.verdict, decided.reason, decided.record)

    def handle_notification(
        self, gateway_name: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> NotificationOutcome:
        """:meth:`receive_notification` of a POST of ``body``."""
        return self.receive_notification(gateway_name, InboundRequest.post(body, headers))

    def refuse_notification(
        self,
        gateway_name: str,
        reason: Reason,
        request: InboundRequest | None = None,
        *,
        journal: bool = True,
    ) -> NotificationOutcome:
        """Refuse a notification without parsing it (too large, no length, a source not
        allowed, the ledger down): journal the refusal and return the provider's failure
        reply. Nothing else is touched. ``Reason.LEDGER_UNAVAILABLE`` (or ``journal=False``)
        writes nothing: the reply is all there is."""
        gw = self.gateway(gateway_name)
        request = request if request is not None else InboundRequest.post(b"")
        if journal and reason is not Reason.LEDGER_UNAVAILABLE:
            # Bounded, and longer than what is kept: _journal cuts where no secret is split.
            limit = 4 * self.policy.journal_body_limit
            prefix = request.body[:limit].decode("utf-8", "replace")
            self.ledger.append_journal(
                self._journal(gateway_name, "", "notification", "rejected", reason, prefix)
            )
        ack = gw.reply(Verdict.REJECTED, None, reason, request, accepted=False)
        self._count(Verdict.REJECTED)
        self.metrics.inbound(gateway_name, gw.name, "notification", Verdict.REJECTED, reason)
        return NotificationOutcome(ack, Verdict.REJECTED, reason)

    def _accepts(self, decided: _Decided) -> bool:
        """Whether the provider gets its success reply (the policy decides for reviews and
        unknown payments)."""
        if decided.verdict is Verdict.REVIEW:
            return self.policy.acknowledge_review
        if decided.verdict is Verdict.REJECTED:
            return (
                decided.reason is Reason.UNKNOWN_PAYMENT and self.policy.acknowledge_unknown_payment
            )
        return True

    def _provider_event(self, gateway_name: str, event: ProviderEvent, text: str) -> _Decided:
        """Journal a provider event, deliver it once to ``gateway_provider_event`` (deduped
        by its ``event_key``); never a status change."""
        record = self.ledger.get_payment(gateway_name, event.merchant_reference)
        if record is None:
            reason = Reason.UNKNOWN_PAYMENT
            self.ledger.append_journal(
                self._journal(
                    gateway_name, event.merchant_reference, "notification", "rejected", reason, text
                )
            )
            log.warning(
                "provider event %s on %s for unknown payment %s",
                event.kind,
                gateway_name,
                event.merchant_reference,
            )
            return _Decided(Verdict.REJECTED, reason)
        receipt = f"provider-event:{event.event_key}"
        if self.ledger.has_receipt(gateway_name, receipt):  # a read decides: no write
            self._no_change(record, "notification", "duplicate", event.kind, text)
            return _Decided(Verdict.DUPLICATE, Reason.NONE, record)
        outbox = self._leased(
            [
                self._event(
                    record,
                    EventKind.PROVIDER_EVENT,
                    status=record.status,
                    previous=record.status,
                    discriminator=event.event_key,
                    provider_kind=event.kind,
                    event_amount=event.amount,
                )
            ]
        )
        outcome = self.ledger.commit_record(
            gateway=gateway_name,
            receipt_key=receipt,
            events=outbox,
            journal=self._journal(
                gateway_name, record.merchant_reference, "notification", "event", event.kind, text
            ),
        )
        if outcome.result is ApplyResult.DUPLICATE:  # a concurrent copy recorded it first
            self._no_change(record, "notification", "duplicate", event.kind, text)
            return _Decided(Verdict.DUPLICATE, Reason.NONE, record)
        self._queue_inline(outbox, outcome.inserted)
        return _Decided(Verdict.EVENT, Reason.NONE, record)

    def _decide_notification(
        self, gw: Gateway, gateway_name: str, notification: Notification, text: str
    ) -> _Decided:
        """Check a verified notification against the ledger and apply it (or not)."""
        record = self.ledger.get_payment(gateway_name, notification.merchant_reference)
        if record is None:
            reason = Reason.UNKNOWN_PAYMENT
            self.ledger.append_journal(
                self._journal(
                    gateway_name,
                    notification.merchant_reference,
                    "notification",
                    "rejected",
                    reason,
                    text,
                )
            )
            log.warning(
                "notification on %s for unknown payment %s",
                gateway_name,
                notification.merchant_reference,
            )
            return _Decided(Verdict.REJECTED, reason)
        mismatch = self._mismatch(gw, record, notification)
        report: StatusReport | None = None
        if mismatch == "adopt":
            record, report = self._adopt_reference(gw, record, notification)
            mismatch = "" if record.provider_reference else Reason.REFERENCE_UNCONFIRMED
        if mismatch:
            reason = Reason(mismatch)
            self._review(record, reason, notification.event_key, "notification", text)
            return _Decided(Verdict.REVIEW, reason, record)
        trust = type(gw).trust
        status_signed = trust.notification_proves(SignedField.STATUS)
        if not status_signed or (
            not trust.notification_settles
            # A refund list is money too: confirmed even when the status word is unchanged.
            and (
                decide(record.status, notification.status) is Decision.APPLY
                or bool(notification.refunds)
            )
        ):
            return self._confirmed_notification(gw, record, notification, report, text)
        verdict, reason, record = self._apply(
            record,
            notification.status,
            source="notification",
            event_key=notification.event_key,
            body=text,
            refunds=notification.refunds,
        )
        return _Decided(verdict, reason, record)

    def _confirmed_notification(
        self,
        gw: Gateway,
        record: PaymentRecord,
        notification: Notification,
        report: StatusReport | None,
        text: str,
    ) -> _Decided:
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
                reason = Reason(mismatch)
                self._review(record, reason, notification.event_key, "notification", text)
                return _Decided(Verdict.REVIEW, reason, record)
        verdict, reason = Verdict.REJECTED, Reason.STATUS_UNCONFIRMED
        journal_duplicate = False
        if report is not None and report.status is not _S.UNKNOWN:
            same_claim = report.status is notification.status
            if decide(record.status, report.status) is not Decision.SAME or report.refunds:
                verdict, reason, record = self._apply(
                    record,
                    report.status,
                    source="notification" if same_claim else "inquiry",
                    event_key=notification.event_key
                    if same_claim
                    else f"{record.merchant_reference}:{report.provider_status or 'inquiry'}",
                    body=text,
                    refunds=report.refunds,
                )
            else:  # the inquiry confirms what the ledger has: nothing to apply
                verdict, reason = Verdict.DUPLICATE, Reason.NONE
                journal_duplicate = True
            if verdict is Verdict.REVIEW:  # confirmed, and money moved twice (paid_twice, ...)
                return _Decided(verdict, reason, record)
            if _unlisted_refunds(notification, report):
                # Refunds (or amounts) the provider's own answer does not list: a tampered or
                # early list. Nothing of it was applied; the provider retries.
                verdict, reason = Verdict.REJECTED, Reason.STATUS_UNCONFIRMED
            claimed = notification.status
            signed = type(gw).trust.notification_proves(SignedField.STATUS)
            # An unsigned status word is anyone's to choose, but a claim of money (paid,
            # refunded) the provider does not confirm is still a forgery or early: refused.
            if (signed or claimed in _MONEY_CLAIMS) and decide(record.status, claimed) in (
                Decision.APPLY,
                Decision.REVIEW,
            ):
                # It claims more than the provider confirms, or the opposite of it (a forged
                # "paid", or one that arrived before the provider's own records caught up).
                verdict, reason = Verdict.REJECTED, Reason.STATUS_UNCONFIRMED
        if verdict is Verdict.REJECTED:
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
        elif journal_duplicate:  # like any duplicate (with the next write, no commit of its own)
            self._no_change(record, "notification", "duplicate", "", text)
        return _Decided(verdict, reason, record)

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
        return gw.notification_mismatch(self.as_payment(record), notification)

    def _confirm_report(self, gw: Gateway, record: PaymentRecord) -> StatusReport | None:
        """The provider's answer to an inquiry, or None when it cannot be asked or failed."""
        if not gw.supports(Capability.INQUIRE) or not record.provider_reference:
            return None
        try:
            return gw.inquire(self.as_payment(record))
        except GatewayError as exc:
            log.warning("could not confirm status of %s: %s", record.merchant_reference, exc)
            return None

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
            notification = gw.parse_notification(InboundRequest.post(body, headers))
        except NotificationRejected as exc:
            name = "signature" if exc.reason == "bad_signature" else "format"
            return [Check(name, False, exc.message)]
        checks = [Check("format", True), Check("signature", True)]
        if isinstance(notification, ProviderEvent):
            return [*checks, Check("status_change", False, f"a {notification.kind} event")]
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
            claimed = gw.parse_return(InboundRequest.get(query))
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

    def handle_return(
        self,
        gateway_name: str,
        query: Mapping[str, str],
        headers: Mapping[str, str] | None = None,
    ) -> ReturnOutcome:
        """:meth:`receive_return` of a GET with the query string ``query``."""
        return self.receive_return(gateway_name, InboundRequest.get(query, headers))

    def receive_return(self, gateway_name: str, request: InboundRequest) -> ReturnOutcome:
        """Verify the customer's return (by GET or POST) and confirm by inquiry. The return
        itself never changes a status (unless the provider declares ``return_settles``).
        Raises :class:`~gateway_core.NotificationRejected` when it does not verify."""
        gw = self.gateway(gateway_name)
        try:
            claimed = gw.parse_return(request)
        except NotificationRejected as exc:
            self.metrics.inbound(gateway_name, gw.name, "return", "rejected", Reason.of(exc.reason))
            raise
        record = self.ledger.get_payment(gateway_name, claimed.merchant_reference)
        seen = ("received", "") if record else ("rejected", Reason.UNKNOWN_PAYMENT)
        self.metrics.inbound(gateway_name, gw.name, "return", *seen)
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
            refunds=report.refunds,
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
