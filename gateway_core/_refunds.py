"""Refunds: what the core asks a provider to give back, and what the provider reports.

A refund is an optional capability (:attr:`~gateway_core.Capability.REFUND`). The payment
service records every refund *before* it asks the provider (so a lost answer leaves a refund
whose outcome is ``unknown``, settled by inquiry and never re-sent under a new key), keeps
the refunded total at or below what was paid, and moves the payment
``paid → partially_refunded → refunded``.

A plugin implements :meth:`Gateway.refund <gateway_core.Gateway.refund>` and reports the
refunds the provider knows of a payment in :attr:`StatusReport.refunds
<gateway_core.StatusReport.refunds>` (inquiry) and :attr:`Notification.refunds
<gateway_core.Notification.refunds>` (a refund notification), each as a
:class:`RefundReport` named by the merchant's refund key.
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from gateway_core._models import Money


class RefundStatus(enum.Enum):
    """Where one refund stands."""

    #: Recorded and sent (or about to be); the provider has not answered yet.
    REQUESTED = "requested"
    #: The provider accepted it but the money has not reached the customer yet.
    PENDING = "pending"
    #: The provider refunded the amount.
    SUCCEEDED = "succeeded"
    #: The provider refused it; nothing was refunded.
    FAILED = "failed"
    #: The answer was lost: settled by inquiry (the same key is never re-sent as a new one).
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        """True for ``succeeded`` and ``failed``."""
        return self in (RefundStatus.SUCCEEDED, RefundStatus.FAILED)

    @property
    def holds_amount(self) -> bool:
        """True when the refund's amount counts against what may still be refunded: every
        refund that is not known to have failed."""
        return self is not RefundStatus.FAILED


@attrs.frozen
class RefundRequest:
    """What the payment service asks the provider to refund.

    ``key`` identifies the refund at the provider (its idempotency key / merchant refund id):
    sending the same request again with the same key must never refund twice. ``reason`` is
    the merchant's text (some providers show it to the customer).
    """

    merchant_reference: str
    amount: Money
    key: str
    reason: str = ""

    def __attrs_post_init__(self) -> None:
        if self.amount.amount <= 0:
            raise ValueError("a refund amount must be positive")
        if not self.key:
            raise ValueError("a refund needs a key")


@attrs.frozen
class RefundReport:
    """One refund as the provider reports it (the answer to ``refund``, or an entry of an
    inquiry's or a notification's refund list).

    ``key`` is the merchant's refund key the provider echoes (empty for a refund the merchant
    did not ask through this library, e.g. from the provider's dashboard: the service then
    names it by ``provider_reference``). ``amount`` is this refund's amount.
    """

    provider: str
    merchant_reference: str
    key: str
    status: RefundStatus
    amount: Money
    provider_reference: str = ""
    provider_status: str = ""
    refunded_at: datetime | None = None
    description: str = ""
