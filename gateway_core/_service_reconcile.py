"""Reconciliation: ask the provider about payments whose outcome the ledger does not know yet,
fairly (least recently examined first), at a bounded pace, and settle attempts whose create
outcome is unknown once they have expired."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta

from gateway_core._exceptions import (
    GatewayError,
)
from gateway_core._models import (
    Capability,
    PaymentStatus,
)
from gateway_core._redact import get_logger
from gateway_core._service_core import ServiceCore
from gateway_core._service_types import ReconcileReport
from gateway_core.ledger import (
    PaymentRecord,
)

log = get_logger("gateway_core._service")

_S = PaymentStatus
_RECONCILABLE = frozenset({_S.PENDING, _S.IN_PROCESS, _S.UNKNOWN})


class ReconcilingService(ServiceCore):
    """``reconcile``."""

    def reconcile(
        self,
        *,
        gateway_names: Iterable[str] | None = None,
        limit: int = 100,
        min_interval: float = 0.1,
        grace: timedelta | None = None,
        progress: Callable[[PaymentRecord, str], None] | None = None,
        lease: float | None = None,
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

        With ``lease`` (seconds; ``gateway worker`` passes it) the batch is claimed
        (:meth:`~gateway_core.ledger.Ledger.claim_reconcile`): payments examined less than
        ``lease`` seconds ago, by this process or any other, are left out, so concurrent
        workers never inquire the same payment in one pass.
        """
        progress = self.metrics.reconcile_progress(progress)  # counts each payment's result
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
        if lease is not None:  # taken and stamped in one transaction
            candidates = self.ledger.claim_reconcile(
                statuses=_RECONCILABLE,
                updated_before=cutoff,
                limit=limit,
                now=now,
                lease_seconds=lease,
                gateways=names,
            )
        else:
            candidates = self.ledger.payments_to_reconcile(
                statuses=_RECONCILABLE, updated_before=cutoff, limit=limit, gateways=names
            )
            # Stamped before the inquiries: a concurrent pass takes the next batch instead,
            # and a payment whose inquiry keeps failing goes to the back of the queue.
            self.ledger.mark_examined([r.id for r in candidates if r.id is not None], at=now)
        counts = {"examined": 0, "changed": 0, "unchanged": 0, "waiting": 0, "errors": 0}
        reviews = 0
        first = True
        verdict: str  # a Verdict, or what the progress report says instead
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
                if progress:
                    progress(record, "waiting")
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
