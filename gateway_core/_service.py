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
  amounts are checked always. Where the provider's trust declaration says a signature alone
  proves nothing (``notification_settles=False``), a notification that would change the
  payment is confirmed by an inquiry first, and gets the provider's failure reply when it
  cannot be confirmed. Then it is applied along the state machine with a compare-and-set;
  duplicates are acknowledged with success and change nothing.
* Every other answer from the provider (inquiry, cancel, reconcile) is checked against the
  ledger the same way: a mismatch is a review, never a transition.
* An order is paid once, across every gateway: the ``paid`` transition carries an order-wide
  receipt, so a second attempt of the same order being paid (on any gateway) raises
  ``needs_review`` instead, and no gateway starts a new attempt for a paid order.
* References are the gateway's: it makes them and checks them, with the rest of the request,
  before anything is recorded.

The service is assembled from :mod:`gateway_core._service_core` (state, the write path, the
outbox), :mod:`gateway_core._service_inbound` (notifications, returns, inquiries, cancels,
verification) and :mod:`gateway_core._service_reconcile`; what it returns is in
:mod:`gateway_core._service_types`.
* Hook events are written to the outbox in the transition's transaction and delivered after
  commit, at least once.
"""

from __future__ import annotations

import attrs

from gateway_core._events import EventKind
from gateway_core._exceptions import (
    GatewayError,
    LedgerError,
    OutcomeUnknown,
)
from gateway_core._models import (
    PaymentRequest,
    PaymentStatus,
)
from gateway_core._redact import get_logger
from gateway_core._service_core import ServiceCore, order_receipt
from gateway_core._service_inbound import InboundService
from gateway_core._service_reconcile import ReconcilingService
from gateway_core._service_types import (
    Check,
    DeliveryReport,
    NotificationOutcome,
    ReconcileReport,
    ReturnOutcome,
    ServicePolicy,
    StartedPayment,
)
from gateway_core.ledger import (
    ORDER_SCOPE,
    ApplyResult,
    PaymentRecord,
)

__all__ = [
    "Check",
    "DeliveryReport",
    "NotificationOutcome",
    "PaymentService",
    "ReconcileReport",
    "ReturnOutcome",
    "ServiceCore",
    "ServicePolicy",
    "StartedPayment",
    "order_receipt",
]

log = get_logger(__name__)

_S = PaymentStatus


class PaymentService(InboundService, ReconcilingService):
    """What the platform calls. One instance can serve several configured gateways.

    ``gateways`` maps configured gateway names to gateways; ``hooks`` is the
    :class:`~gateway_core.PluginHost`'s facade; ``clock`` returns aware UTC datetimes;
    ``reference_factory`` (optional) makes merchant references instead of the gateway's
    :meth:`~gateway_core.Gateway.make_reference` (the gateway still checks them).
    """

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
