"""The state machine: what each reported status does to each current status."""

from __future__ import annotations

import pytest

from gateway_core import PaymentStatus as S
from gateway_core._state import Decision, allowed, decide

FINAL_UNPAID = (S.FAILED, S.EXPIRED, S.CANCELLED)


@pytest.mark.parametrize("target", [S.IN_PROCESS, S.PAID, *FINAL_UNPAID])
def test_pending_moves_forward(target: S) -> None:
    assert decide(S.PENDING, target) is Decision.APPLY


@pytest.mark.parametrize("target", [s for s in S if s is not S.UNKNOWN])
def test_unknown_accepts_whatever_the_provider_confirms(target: S) -> None:
    assert allowed(S.UNKNOWN, target)


@pytest.mark.parametrize("late", [S.FAILED, S.EXPIRED, S.CANCELLED])
def test_paid_is_never_downgraded_and_is_reviewed(late: S) -> None:
    assert not allowed(S.PAID, late)
    assert decide(S.PAID, late) is Decision.REVIEW


def test_paid_can_be_reversed() -> None:
    assert decide(S.PAID, S.REVERSED) is Decision.APPLY


@pytest.mark.parametrize("stale", [S.PENDING, S.IN_PROCESS])
def test_stale_progress_after_paid_is_ignored(stale: S) -> None:
    assert decide(S.PAID, stale) is Decision.IGNORE


@pytest.mark.parametrize("closed", FINAL_UNPAID)
def test_paid_after_a_closed_payment_is_reviewed_not_applied(closed: S) -> None:
    assert decide(closed, S.PAID) is Decision.REVIEW


def test_same_status_is_a_duplicate() -> None:
    for status in S:
        assert decide(status, status) is Decision.SAME


def test_two_unpaid_endings_do_not_need_review() -> None:
    assert decide(S.CANCELLED, S.EXPIRED) is Decision.IGNORE


def test_reversed_is_terminal() -> None:
    for status in S:
        if status is not S.REVERSED:
            assert not allowed(S.REVERSED, status)
