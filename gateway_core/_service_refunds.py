"""Refunds through the payment service: recorded before the provider is asked, never above
what was paid, settled exactly once, whatever reports them (the provider's answer, an
inquiry, a refund notification).

The rules (see also :mod:`gateway_core._refunds`):

- :meth:`RefundingService.refund` records the refund (``requested``) in the ledger first. The
  ledger refuses it when the payment is not paid or when the total of every refund not known
  to have failed would exceed the paid amount: two refunds racing for one payment are
  counted one after the other.
- Then the provider is asked, with the refund's key. Its answer settles the refund: a refusal
  ``failed``, an acceptance ``succeeded`` (or ``pending`` until the provider confirms). A lost
  answer leaves it ``unknown`` and raises :class:`~gateway_core.OutcomeUnknown`; it is never
  re-sent under a new key: :meth:`RefundingService.settle_refunds` (run by reconcile) asks the
  provider and settles it, or re-sends it under the *same* key, which cannot refund twice.
- A succeeded refund moves the payment to ``partially_refunded`` or ``refunded`` (by the
  succeeded total against the paid amount) and raises ``refund_succeeded``, in the
  transaction that records it; a failed one raises ``refund_failed``. A report of a refund
  already settled changes nothing.
- A refund the provider reports that the ledger does not know (made in the provider's
  dashboard) is recorded under ``provider:<provider refund id>`` and settled the same way; one
  that would take the total above the paid amount raises ``needs_review`` instead.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import attrs

from gateway_core._events import EventKind
from gateway_core._exceptions import (
    GatewayError,
    InvalidRequest,
    NeverSent,
    OutcomeUnknown,
    ProviderRefused,
    TransportError,
    UnsupportedOperation,
)
from gateway_core._gateway import Gateway
from gateway_core._inbound import Reason
from gateway_core._models import Capability, Money, PaymentStatus
from gateway_core._redact import get_logger
from gateway_core._refunds import RefundReport, RefundRequest, RefundStatus
from gateway_core._service_core import ServiceCore
from gateway_core._service_types import ReconcileReport
from gateway_core.ledger import (
    OutboxEvent,
    PaymentRecord,
    RefundRecord,
    RefundRefused,
)

log = get_logger("gateway_core._service")

_R = RefundStatus
_REFUNDABLE = (PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED)


@attrs.frozen
class RefundSettleReport:
    """Counts from one pass of :meth:`RefundingService.settle_refunds`."""

    examined: int = 0
    settled: int = 0
    resent: int = 0
    waiting: int = 0
    errors: int = 0


#: The key under which a refund the merchant did not ask here (the provider's dashboard) is
#: recorded: ``provider:<provider refund id>``.
_PROVIDER_KEY = "provider:"


def _listed_key(report: RefundReport) -> str:
    """The ledger's key for a refund the provider lists."""
    return report.key or f"{_PROVIDER_KEY}{report.provider_reference}"


def refund_key_for(merchant_reference: str) -> str:
    """A fresh refund key: the payment's reference and a random tail (letters, digits, ``-``,
    the characters every provider's refund id takes)."""
    return f"{merchant_reference[:40]}-R{secrets.token_hex(6)}"


class RefundingService(ServiceCore):
    """The refund part of the payment service."""

    def refund(
        self,
        gateway_name: str,
        merchant_reference: str,
        amount: Money | None = None,
        *,
        reason: str = "",
        key: str = "",
    ) -> RefundRecord:
        """Refund ``amount`` (default: all that remains refundable) of a paid payment.

        ``key`` names the refund at the provider (default: a fresh one); calling again with
        the same key and amount never refunds twice. Returns the refund as recorded after
        the provider's answer (``succeeded``, ``pending`` or ``failed``). Raises
        :class:`~gateway_core.InvalidRequest` (nothing recorded) when the payment is not
        paid or the amount exceeds what remains, :class:`~gateway_core.UnsupportedOperation`
        for a provider that cannot refund, and :class:`~gateway_core.OutcomeUnknown` when
        the provider's answer was lost (the refund stays ``unknown``; reconcile settles it).
        """
        gw = self.gateway(gateway_name)
        if not gw.supports(Capability.REFUND):
            raise UnsupportedOperation(f"{gw.name} cannot refund", provider=gateway_name)
        record = self.payment(gateway_name, merchant_reference)
        assert record.id is not None
        if record.status not in _REFUNDABLE:
            done = record.status is PaymentStatus.REFUNDED
            raise InvalidRequest(
                "nothing left to refund: the payment is refunded"
                if done
                else f"payment is {record.status.value}: only a paid payment can be refunded",
                field="status",
                provider=gateway_name,
                merchant_reference=merchant_reference,
            )
        if amount is None:
            held = sum(
                r.amount.minor_units
                for r in self.ledger.refunds_for_payment(record.id)
                if r.status.holds_amount
            )
            left = record.amount.minor_units - held
            if left <= 0:
                raise InvalidRequest(
                    "nothing left to refund",
                    field="amount",
                    provider=gateway_name,
                    merchant_reference=merchant_reference,
                )
            amount = Money.from_minor_units(left, record.amount.currency)
        try:
            refund, send = self.ledger.request_refund(
                record.id,
                refund_key=key or refund_key_for(merchant_reference),
                amount=amount,
                reason=reason,
            )
        except RefundRefused as exc:
            raise InvalidRequest(
                str(exc),
                field="amount",
                provider=gateway_name,
                merchant_reference=merchant_reference,
            ) from exc
        except ValueError as exc:
            raise InvalidRequest(str(exc), field="amount", provider=gateway_name) from exc
        if not send:
            return refund
        return self._send_refund(gw, record, refund)

    def refunds(self, gateway_name: str, merchant_reference: str) -> list[RefundRecord]:
        """Every refund of a payment, oldest first."""
        record = self.payment(gateway_name, merchant_reference)
        assert record.id is not None
        return self.ledger.refunds_for_payment(record.id)

    def _send_refund(
        self, gw: Gateway, record: PaymentRecord, refund: RefundRecord
    ) -> RefundRecord:
        request = RefundRequest(
            merchant_reference=record.merchant_reference,
            amount=refund.amount,
            key=refund.refund_key,
            reason=refund.reason,
        )
        try:
            report = gw.refund(self.as_payment(record), request)
        except ProviderRefused as exc:
            log.info("refund %s refused: %s", refund.refund_key, exc)
            return self._settle(record, refund, _R.FAILED)
        except (NeverSent, InvalidRequest, UnsupportedOperation):
            return self._settle(record, refund, _R.FAILED)  # certainly not sent: released
        except (OutcomeUnknown, TransportError, GatewayError) as exc:
            # Lost, temporary, malformed: it may have happened. Unknown until an inquiry
            # says (the same key is safe to send again; a new one never is).
            self._settle(record, refund, _R.UNKNOWN)
            raise OutcomeUnknown(
                "the refund's outcome is unknown; reconcile settles it (same key)",
                provider=record.gateway,
                merchant_reference=record.merchant_reference,
            ) from exc
        status = report.status if report.status is not _R.REQUESTED else _R.PENDING
        return self._settle(record, refund, status, provider_reference=report.provider_reference)

    def _settle(
        self,
        record: PaymentRecord,
        refund: RefundRecord,
        status: RefundStatus,
        *,
        provider_reference: str = "",
        source: str = "refund",
    ) -> RefundRecord:
        """Record ``status`` for ``refund`` (with its event and the payment's move)."""
        assert refund.id is not None

        def events(after: PaymentRecord, settled: RefundRecord) -> list[OutboxEvent]:
            discriminator = settled.refund_key
            if status is _R.SUCCEEDED:
                kind = EventKind.REFUND_SUCCEEDED
            elif status is _R.FAILED:
                # A failed refund may be asked again under its key and fail again: each
                # failure is its own event (the refund's version tells them apart).
                kind = EventKind.REFUND_FAILED
                discriminator = f"{settled.refund_key}:{settled.version}"
            else:
                return []
            return [
                self._event(
                    after,
                    kind,
                    status=after.status,
                    previous=record.status,
                    discriminator=discriminator,
                    event_amount=settled.amount,
                    refund_key=settled.refund_key,
                )
            ]

        settlement = self.ledger.settle_refund(
            refund.id,
            status=status,
            provider_reference=provider_reference,
            source=source,
            events=events,
        )
        if settlement.events:
            self._after_commit()
        return settlement.refund

    def _apply_refunds(
        self,
        record: PaymentRecord,
        reported: PaymentStatus,
        refunds: Sequence[RefundReport],
        source: str,
        event_key: str,
    ) -> int:
        if not refunds and reported is PaymentStatus.REFUNDED:
            # "All refunded" with no list: the remaining amount, named by the report.
            assert record.id is not None
            held = sum(
                r.amount.minor_units
                for r in self.ledger.refunds_for_payment(record.id)
                if r.status is _R.SUCCEEDED
            )
            left = record.amount.minor_units - held
            if left <= 0:
                return 0
            refunds = [
                RefundReport(
                    provider=record.provider,
                    merchant_reference=record.merchant_reference,
                    key="",
                    status=_R.SUCCEEDED,
                    amount=Money.from_minor_units(left, record.amount.currency),
                    provider_reference=event_key,
                )
            ]
        return self.apply_refund_reports(record, refunds, source=source)

    def apply_refund_reports(
        self, record: PaymentRecord, reports: Iterable[RefundReport], *, source: str
    ) -> int:
        """Settle the ledger's refunds from the provider's list (an inquiry's or a refund
        notification's); record those it does not know. Returns how many changed."""
        assert record.id is not None
        changed = 0
        for report in reports:
            key = _listed_key(report)
            if key == _PROVIDER_KEY:
                continue  # names nothing the ledger could keep
            refund = self.ledger.refund_by_key(record.gateway, key)
            if refund is not None and refund.payment_id != record.id:
                # Keys are unique per gateway: this one names another payment's refund. A
                # report about this payment never settles (or moves) another payment.
                self._review(record, Reason.REFERENCE_MISMATCH, key, source, "")
                continue
            if refund is None:
                if report.status is not _R.SUCCEEDED:
                    continue
                try:
                    refund, _ = self.ledger.request_refund(
                        record.id,
                        refund_key=key,
                        amount=report.amount,
                        provider_reference=report.provider_reference,
                    )
                except RefundRefused:
                    self._review(record, Reason.REFUND_EXCEEDS_PAID, key, source, "")
                    continue
            if refund.status.is_final or report.status in (refund.status, _R.REQUESTED):
                continue
            current = self.payment(record.gateway, record.merchant_reference)
            self._settle(
                current,
                refund,
                report.status,
                provider_reference=report.provider_reference,
                source=source,
            )
            changed += 1
        return changed

    def reconcile(self, *, refunds: bool = True, **options: Any) -> ReconcileReport:
        """:meth:`ReconcilingService.reconcile`, then (unless ``refunds`` is False: the worker
        settles refunds under its own fleet-wide lease) :meth:`settle_refunds` for the same
        gateways and grace (its counts in ``refunds_examined`` / ``refunds_settled``)."""
        report: ReconcileReport = super().reconcile(**options)  # type: ignore[misc]
        if not refunds:
            return report
        settled = self.settle_refunds(
            gateway_names=options.get("gateway_names"),
            grace=options.get("grace"),
            limit=options.get("limit", 100),
        )
        return attrs.evolve(
            report,
            refunds_examined=settled.examined,
            refunds_settled=settled.settled,
            errors=report.errors + settled.errors,
        )

    def settle_refunds(
        self,
        *,
        gateway_names: Iterable[str] | None = None,
        grace: timedelta | None = None,
        limit: int = 100,
    ) -> RefundSettleReport:
        """Ask the provider about every open refund (``requested``, ``unknown``, ``pending``)
        unchanged for ``grace`` (default: the reconcile grace) and settle it from the
        inquiry's refund list; one the provider does not know is sent again under its own
        key (which cannot refund twice)."""
        wanted = self.gateways if gateway_names is None else gateway_names
        names = sorted(set(wanted) & set(self.gateways))
        cutoff = self._clock() - (self.policy.reconcile_grace if grace is None else grace)
        examined = settled = resent = waiting = errors = 0
        due = self.ledger.refunds_to_settle(updated_before=cutoff, limit=limit, gateways=names)
        for refund in due:
            examined += 1
            assert refund.id is not None
            # Examined: back of the queue until its grace has passed again, whatever follows
            # (so a refund that stays open never starves the others).
            self.ledger.touch_refund(refund.id)
            try:
                outcome = self._settle_one(refund)
            except Exception as exc:  # a provider or network failure: try next pass
                log.warning("refund %s: not settled: %s", refund.refund_key, type(exc).__name__)
                errors += 1
                continue
            settled += outcome == "settled"
            resent += outcome in ("resent", "resent-settled")
            settled += outcome == "resent-settled"
            waiting += outcome == "waiting"
        return RefundSettleReport(examined, settled, resent, waiting, errors)

    def _settle_one(self, refund: RefundRecord) -> str:
        """Settle one open refund from an inquiry, or send it again under its own key."""
        gw = self.gateway(refund.gateway)
        record = self.payment(refund.gateway, refund.merchant_reference)
        report = gw.inquire(self.as_payment(record))
        listed = {_listed_key(r) for r in report.refunds}
        if refund.refund_key in listed:
            changed = self.apply_refund_reports(record, report.refunds, source="reconcile")
            return "settled" if changed else "waiting"
        if refund.status is _R.PENDING or refund.refund_key.startswith(_PROVIDER_KEY):
            # Pending at the provider, or a refund only the provider made (its dashboard):
            # never sent by this library, so never sent again; it waits for the provider.
            return "waiting"
        after = self._send_refund(gw, record, refund)
        return "resent-settled" if after.status.is_final else "resent"
