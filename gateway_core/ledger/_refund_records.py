"""The ledger's records of refunds (see :mod:`gateway_core.ledger._sql_refunds`)."""

from __future__ import annotations

from datetime import datetime

import attrs

from gateway_core._exceptions import LedgerError
from gateway_core._models import Money
from gateway_core._refunds import RefundStatus
from gateway_core.ledger._records import PaymentRecord, to_utc, utc_now


def positive_minor_units(value: int) -> int:
    if value <= 0:
        raise ValueError("a refund amount must be positive")
    return value


@attrs.frozen
class RefundRecord:
    """One refund of one payment as the ledger stores it.

    ``refund_key`` is unique per gateway: it is the key the provider sees, so sending it again
    can never refund twice. ``status`` starts ``requested`` (recorded, about to be sent),
    becomes ``unknown`` when the answer was lost, and ends ``succeeded`` or ``failed``.
    """

    id: int | None
    payment_id: int
    gateway: str
    merchant_reference: str
    refund_key: str
    amount: Money
    status: RefundStatus
    reason: str = ""
    provider_reference: str = ""
    created_at: datetime = attrs.field(factory=utc_now, converter=to_utc)
    updated_at: datetime = attrs.field(factory=utc_now, converter=to_utc)
    version: int = 1


class RefundRefused(LedgerError):
    """The ledger refuses to record a refund: the payment is not refundable, the amount
    would take the refunded total above what was paid, or the key names another refund."""


@attrs.frozen
class RefundSettlement:
    """What :meth:`SQLRefunds.settle_refund` did: ``changed`` is False when the refund was
    already in that status (a duplicate report); ``payment`` is the payment after it."""

    refund: RefundRecord
    payment: PaymentRecord
    changed: bool
    events: tuple[str, ...] = ()
