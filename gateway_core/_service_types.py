"""What the payment service returns, and the policy it follows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs

from gateway_core._config import SettingsReader
from gateway_core._inbound import Reason, Verdict
from gateway_core._models import (
    Acknowledgement,
    PaymentInstructions,
    RedirectInstruction,
    ReturnResult,
)
from gateway_core.ledger import PaymentRecord


@attrs.frozen
class StartedPayment:
    """A payment attempt the customer can be sent to pay.

    ``redirect`` is what the customer is shown: a :class:`~gateway_core.RedirectInstruction`
    (a GET link, or a POST form the web app serves at ``{prefix}/pay/<gateway>/<reference>``)
    or :class:`~gateway_core.PaymentInstructions` (a virtual-account number, a QR payload).
    """

    payment: PaymentRecord
    redirect: RedirectInstruction | PaymentInstructions
    reused: bool = False

    @property
    def instructions(self) -> PaymentInstructions | None:
        """The instructions to show, when the provider gives no page to send the customer."""
        return self.redirect if isinstance(self.redirect, PaymentInstructions) else None


@attrs.frozen
class NotificationOutcome:
    """What the service did with a notification, and the reply for the provider.

    ``verdict`` and ``reason`` are :class:`~gateway_core.Verdict` and
    :class:`~gateway_core.Reason` members (string enums: ``outcome.verdict == "applied"``
    holds).
    """

    acknowledgement: Acknowledgement
    verdict: Verdict
    reason: Reason = Reason.NONE
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
    #: Open refunds (outcome unknown, or not yet confirmed) asked about, and how many of
    #: them were settled (see :meth:`PaymentService.settle_refunds`).
    refunds_examined: int = 0
    refunds_settled: int = 0


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


#: ``[service]`` keys that are not policy: ``metrics`` (gateway_core.metrics) and
#: ``log_format`` (``gateway serve``, ``gateway worker``).
OBSERVABILITY_KEYS = frozenset({"metrics", "log_format"})


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
    one (anyone can send those). ``inline_lease``: seconds a hook event committed by a
    request stays leased to that process for its inline delivery; if the process dies
    first, a worker delivers it once the lease ends (shorter: faster recovery, more
    chance of a second delivery of an event whose mark is still pending).
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
    inline_lease: float = 60.0

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ServicePolicy:
        """The policy from a configuration's ``[service]`` table (durations in seconds,
        ``default_expiry_minutes`` in minutes); unknown keys are refused by name."""
        read = SettingsReader(settings, provider="service", ignore=OBSERVABILITY_KEYS)
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
            inline_lease=read.number("inline_lease_seconds", 60.0, minimum=1, maximum=day),
        )
        read.finish()
        return policy
