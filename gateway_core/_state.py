"""The payment state machine, enforced by the payment service on every write.

::

    unknown ──► any status the provider confirms
    pending ──► in_process ──► paid ──► reversed
       │            │            │
       │            │            └──► partially_refunded ──► refunded
       └────────────┴──► failed | expired | cancelled

A paid payment is never downgraded. Anything else is a *disallowed* input: it is recorded and,
where it may mean money moved unexpectedly, raises a ``needs_review`` event instead of
changing the status.
"""

from __future__ import annotations

import enum

from gateway_core._inbound import Reason
from gateway_core._models import PaymentStatus as S

_ALLOWED: dict[S, frozenset[S]] = {
    S.UNKNOWN: frozenset(set(S) - {S.UNKNOWN}),
    S.PENDING: frozenset({S.IN_PROCESS, S.PAID, S.FAILED, S.EXPIRED, S.CANCELLED}),
    S.IN_PROCESS: frozenset({S.PAID, S.FAILED, S.EXPIRED, S.CANCELLED}),
    S.PAID: frozenset({S.REVERSED, S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.FAILED: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REVERSED: frozenset(),
    S.PARTIALLY_REFUNDED: frozenset({S.REFUNDED, S.REVERSED}),
    S.REFUNDED: frozenset(),
}


#: Statuses a payment necessarily went through to reach the key: hearing one of them again is
#: a late duplicate (the original "paid" notification re-sent after a reversal), not news.
_PASSED_THROUGH: dict[S, frozenset[S]] = {
    S.REVERSED: frozenset({S.PAID}),
    S.PARTIALLY_REFUNDED: frozenset({S.PAID}),
    S.REFUNDED: frozenset({S.PAID, S.PARTIALLY_REFUNDED}),
}


class Decision(enum.Enum):
    """What to do with a reported status, given the current one."""

    APPLY = "apply"  # an allowed transition
    SAME = "same"  # already there: a duplicate, acknowledge with no effect
    IGNORE = "ignore"  # stale progress (in_process after paid): record only
    REVIEW = "review"  # contradictory or money-moving: record and raise needs_review


def allowed(current: S, new: S) -> bool:
    """True when ``current → new`` is an allowed transition."""
    return new in _ALLOWED[current]


def decide(current: S, reported: S) -> Decision:
    """Classify a provider's report ``reported`` for a payment that is ``current``."""
    if reported is current or reported in _PASSED_THROUGH.get(current, ()):
        return Decision.SAME
    if allowed(current, reported):
        return Decision.APPLY
    if reported in (S.PENDING, S.IN_PROCESS, S.UNKNOWN):
        return Decision.IGNORE
    if current in (S.EXPIRED, S.CANCELLED, S.FAILED) and reported in (
        S.EXPIRED,
        S.CANCELLED,
        S.FAILED,
    ):
        # Two ways of saying "not paid": nothing moved, nothing to review.
        return Decision.IGNORE
    return Decision.REVIEW


def review_reason(current: S, reported: S) -> Reason:
    """The stable reason of a ``REVIEW`` (or ``IGNORE``) decision:
    ``<reported>_after_<current>``."""
    return Reason(f"{reported.value}_after_{current.value}")
