"""Events handed to the order system's hooks."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from gateway_core._models import Money, PaymentStatus


class EventKind(enum.Enum):
    """What happened to a payment. Each kind has one hook: ``gateway_payment_<kind>`` for the
    lifecycle kinds, ``gateway_provider_event`` for :attr:`PROVIDER_EVENT`."""

    CREATED = "created"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REVERSED = "reversed"
    NEEDS_REVIEW = "needs_review"
    #: A provider event that is not a status change (a refund, a dispute, a notice).
    PROVIDER_EVENT = "provider_event"
    #: A refund the provider made (``refund_key`` names it, ``event_amount`` is its amount).
    REFUND_SUCCEEDED = "refund_succeeded"
    #: A refund the provider refused: nothing was refunded.
    REFUND_FAILED = "refund_failed"

    @property
    def hook_name(self) -> str:
        """The hook that receives this kind of event."""
        if self is EventKind.PROVIDER_EVENT:
            return "gateway_provider_event"
        if self in (EventKind.REFUND_SUCCEEDED, EventKind.REFUND_FAILED):
            return f"gateway_{self.value}"
        return f"gateway_payment_{self.value}"


#: The event a status change produces, when it produces one.
EVENT_FOR_STATUS: dict[PaymentStatus, EventKind] = {
    PaymentStatus.PAID: EventKind.PAID,
    PaymentStatus.FAILED: EventKind.FAILED,
    PaymentStatus.EXPIRED: EventKind.EXPIRED,
    PaymentStatus.CANCELLED: EventKind.CANCELLED,
    PaymentStatus.REVERSED: EventKind.REVERSED,
}


@attrs.frozen
class PaymentEvent:
    """One thing that happened to one payment, as the order system sees it.

    ``event_id`` is stable: a redelivery of the same event carries the same id, so a handler
    can make itself idempotent by remembering the ids it has applied. ``reason`` explains a
    ``needs_review`` event (for example ``paid_after_cancelled`` or ``amount_mismatch``).

    A ``provider_event`` carries the provider's own kind in ``provider_kind``
    (``"refund.created"``) and the amount that event names (a refund's) in ``event_amount``;
    ``status`` and ``amount`` stay the payment's, unchanged by it.

    A ``refund_succeeded`` / ``refund_failed`` event names the refund by ``refund_key`` and
    carries its amount in ``event_amount``; ``status`` is the payment's status after it
    (``partially_refunded``, ``refunded``, or unchanged for a failed refund).
    """

    event_id: str
    kind: EventKind
    provider: str
    order_reference: str
    merchant_reference: str
    status: PaymentStatus
    amount: Money
    occurred_at: datetime
    provider_reference: str = ""
    previous_status: PaymentStatus | None = None
    reason: str = ""
    gateway_name: str = ""
    provider_kind: str = ""
    event_amount: Money | None = None
    refund_key: str = ""
