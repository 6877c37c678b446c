"""The payment service: the one place where the hard rules live, for every provider.

* The attempt is recorded in the ledger (status ``unknown``) *before* the provider is called;
  the provider's transaction id arrives with ``unknown → pending``.
* A create that may have reached the provider but gave no usable answer stays ``unknown``:
  the caller gets :class:`~gateway_core.OutcomeUnknown`, nothing is re-posted, and the next
  ``start_payment`` for the order makes a new attempt with a new merchant reference. The old
  one was never shown to the customer, so it cannot be paid; reconciliation settles it.
* Unless the gateway declares ``idempotent_create``: then every attempt gets an idempotency
  key, kept in the ledger and sent with each create of that attempt. An ambiguous create is
  re-sent at once with the same key (``IDEMPOTENT_CREATE_TRIES`` sends in all), and a later
  ``start_payment`` for the order re-sends the unknown attempt's create, with its key,
  instead of minting a new attempt: the provider's answer settles the attempt
  (``unknown → pending``), and the provider holds one bill.
* What the provider's ``create`` returns for later (``provider_data``) is stored with its
  reference and handed back to ``redirect``, ``inquire`` and ``cancel``, so pressing "pay"
  again shows the same page, form or instructions.
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
* A notification's first delivery is one write transaction (receipt, compare-and-set,
  transition, outbox event, journal entry, and the delivery marks and journal lines the
  ledger deferred), committed with the ledger's configured durability before the reply is
  rendered. Its events are born leased to this process, whose hooks run after the commit,
  never inside it; each delivery mark waits for the ledger's next write (or ``flush``,
  ``close``). If the process dies first, the event is delivered again once its lease ends:
  at least once, with the same event id.
* A duplicate (or stale) notification is decided by a read, with no write transaction and no
  commit: acknowledged with success, counted (:attr:`PaymentService.stats`), and journalled
  with the ledger's next write; a crash may lose that journal line, never a state change.
"""

from __future__ import annotations

import secrets

import attrs

from gateway_core._events import EventKind
from gateway_core._exceptions import (
    GatewayError,
    InvalidRequest,
    LedgerError,
    OutcomeUnknown,
)
from gateway_core._gateway import Gateway
from gateway_core._models import (
    Payment,
    PaymentInstructions,
    PaymentRequest,
    PaymentStatus,
    RedirectInstruction,
)
from gateway_core._redact import get_logger
from gateway_core._service_core import ServiceCore, order_receipt
from gateway_core._service_inbound import InboundService
from gateway_core._service_reconcile import ReconcilingService
from gateway_core._service_refunds import RefundingService
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

#: How many times one call sends an idempotent create whose answer was lost (the first send
#: included), and the pause between sends (seconds).
IDEMPOTENT_CREATE_TRIES = 2
IDEMPOTENT_CREATE_PAUSE = 0.5


class PaymentService(InboundService, RefundingService, ReconcilingService):
    """What the platform calls. One instance can serve several configured gateways.

    ``gateways`` maps configured gateway names to gateways; ``hooks`` is the
    :class:`~gateway_core.PluginHost`'s facade; ``clock`` returns aware UTC datetimes;
    ``reference_factory`` (optional) makes merchant references instead of the gateway's
    :meth:`~gateway_core.Gateway.make_reference` (the gateway still checks them).
    """

    def start_payment(self, gateway_name: str, request: PaymentRequest) -> StartedPayment:
        """Create (or reuse) the payment attempt for ``request.order_reference``.

        Double-clicking "pay" returns the existing payable attempt instead of a second bill,
        with the redirect (or instructions) rebuilt from the attempt's ``provider_data``.
        Raises :class:`~gateway_core.OutcomeUnknown` when the provider may have created the
        bill but the reply was lost: the attempt stays ``unknown`` and a later call makes a
        new attempt with a new merchant reference, or, for a gateway with
        ``idempotent_create``, re-sends that attempt's create with its key.
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
            fits = (
                attempt.amount == request.amount
                and attempt.method == request.method
                and (attempt.expires_at is None or attempt.expires_at > now)
            )
            payable = attempt.status in (_S.PENDING, _S.IN_PROCESS)
            if fits and payable and attempt.provider_reference:
                payment = self.as_payment(attempt)
                return StartedPayment(attempt, gw.redirect(payment), reused=True)
            if (
                fits
                and attempt.status is _S.UNKNOWN
                and attempt.idempotency_key
                and gw.idempotent_create
            ):
                # The same attempt, sent again with its key: the provider answers with the
                # bill it may already hold instead of making a second one.
                resent = attrs.evolve(
                    request,
                    merchant_reference=attempt.merchant_reference,
                    expires_at=attempt.expires_at,
                    created_at=attempt.created_at,
                    idempotency_key=attempt.idempotency_key,
                )
                gw.check_request(resent)
                return self._send_create(gw, gateway_name, attempt, resent)
            if attempt.status in (_S.PENDING, _S.IN_PROCESS, _S.UNKNOWN):
                # Replaced by a new attempt: a different amount, an expired attempt, or a
                # create whose outcome is unknown (never shown to the customer).
                replaced.append(attempt)
        number = max((a.attempt for a in attempts), default=0) + 1
        reference = request.merchant_reference if number == 1 and request.merchant_reference else ""
        if not reference:
            make = self._reference or gw.make_reference
            reference = make(order, number)
        if request.method and request.method not in gw.payment_methods:
            raise InvalidRequest(
                f"unknown payment method {request.method!r}; this gateway offers "
                + (", ".join(gw.payment_methods) or "only its default method"),
                field="method",
                provider=gateway_name,
            )
        expiry = gw.default_expiry_for(request.method) or self.policy.default_expiry
        expires_at = request.expires_at or now + expiry
        outbound = attrs.evolve(
            request,
            merchant_reference=reference,
            expires_at=expires_at,
            created_at=now,
            idempotency_key=secrets.token_hex(16) if gw.idempotent_create else "",
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
                idempotency_key=outbound.idempotency_key,
                method=request.method,
            )
        )
        return self._send_create(gw, gateway_name, record, outbound)

    def customer_action(
        self, gateway_name: str, merchant_reference: str
    ) -> RedirectInstruction | PaymentInstructions | None:
        """What the customer is shown to pay this attempt (rebuilt by the gateway from the
        stored ``provider_data``), or None when it cannot be paid: final, outcome unknown,
        replaced by a newer attempt, or past its expiry. :class:`UnknownPayment` when the
        ledger has no such payment."""
        gw = self.gateway(gateway_name)
        record = self.payment(gateway_name, merchant_reference)
        payable = record.status in (_S.PENDING, _S.IN_PROCESS) and record.provider_reference
        if not payable or record.superseded:
            return None
        if record.expires_at is not None and record.expires_at <= self._clock():
            return None
        return gw.redirect(self.as_payment(record))

    def _send_create(
        self, gw: Gateway, gateway_name: str, record: PaymentRecord, outbound: PaymentRequest
    ) -> StartedPayment:
        """Send the create of the recorded attempt ``record`` (status ``unknown``) and settle
        the attempt from the answer (``unknown → pending``, the provider's reference and
        ``provider_data`` stored)."""
        assert record.id is not None
        payment = self._call_create(gw, gateway_name, record, outbound)
        record = self._store_answer(record, payment)
        reference = record.merchant_reference
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
        redirect = payment.redirect or gw.redirect(self.as_payment(record))
        return StartedPayment(record, redirect)

    def _store_answer(self, record: PaymentRecord, payment: Payment) -> PaymentRecord:
        """The provider's reference and ``provider_data``, stored with a compare-and-set; a
        concurrent re-send of the same idempotent create that stored the same answer first
        is not an error."""
        assert record.id is not None
        for _ in range(3):
            try:
                return self.ledger.set_provider_reference(
                    record.id,
                    payment.provider_reference,
                    expected_version=record.version,
                    provider_data=payment.provider_data,
                )
            except LedgerError:
                fresh = self.ledger.get_payment_by_id(record.id)
                same = fresh is not None and fresh.provider_reference in (
                    "",
                    payment.provider_reference,
                )
                if fresh is None or not same:
                    raise
                record = fresh
        return record

    def _call_create(
        self, gw: Gateway, gateway_name: str, record: PaymentRecord, outbound: PaymentRequest
    ) -> Payment:
        """``gw.create(outbound)``: an ambiguous answer is re-sent with the same idempotency
        key when there is one (bounded), else left unknown; a refusal closes the attempt."""
        assert record.id is not None
        reference = record.merchant_reference
        tries = IDEMPOTENT_CREATE_TRIES if outbound.idempotency_key else 1
        sent = 0
        while True:
            sent += 1
            try:
                return gw.create(outbound)
            except OutcomeUnknown:
                self.ledger.append_journal(
                    self._journal(gateway_name, reference, "create", "unknown", "outcome_unknown")
                )
                if sent < tries:
                    log.warning(
                        "create for %s on %s: outcome unknown; re-sending with its key",
                        reference,
                        gateway_name,
                    )
                    self._sleep(IDEMPOTENT_CREATE_PAUSE)
                    continue
                log.warning(
                    "create for %s on %s: outcome unknown; recorded as unknown, %s",
                    reference,
                    gateway_name,
                    "re-sent with its key by the next start_payment"
                    if outbound.idempotency_key
                    else "not retried",
                )
                raise
            except GatewayError as exc:
                # Provably not created (never sent, refused, invalid request): close it.
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
