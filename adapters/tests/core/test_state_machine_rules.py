"""The state machine as a written-out table: every (current, reported) pair and what the
service must do with it. A change to any cell of ``gateway_core._state`` fails here by name.

Legend: ``A`` apply (an allowed transition), ``=`` same (a duplicate), ``i`` ignore (record
only), ``R`` review (record and raise ``needs_review``).
"""

from __future__ import annotations

import pytest

from gateway_core import PaymentStatus as S
from gateway_core._state import Decision, allowed, decide, review_reason

COLUMNS = (
    S.UNKNOWN,
    S.PENDING,
    S.IN_PROCESS,
    S.PAID,
    S.FAILED,
    S.EXPIRED,
    S.CANCELLED,
    S.REVERSED,
    S.PARTIALLY_REFUNDED,
    S.REFUNDED,
)

# fmt: off
#: current ↓ / reported →  unknown pending in_proc paid failed expired cancel rev. p_ref ref.
EXPECTED = {
    S.UNKNOWN:            "=       A       A       A    A      A       A      A        A        A",
    S.PENDING:            "i       =       A       A    A      A       A      R        R        R",
    S.IN_PROCESS:         "i       i       =       A    A      A       A      R        R        R",
    S.PAID:               "i       i       i       =    R      R       R      A        A        A",
    S.FAILED:             "i       i       i       R    =      i       i      R        R        R",
    S.EXPIRED:            "i       i       i       R    i      =       i      R        R        R",
    S.CANCELLED:          "i       i       i       R    i      i       =      R        R        R",
    S.REVERSED:           "i       i       i       =    R      R       R      =        R        R",
    S.PARTIALLY_REFUNDED: "i       i       i       =    R      R       R      A        =        A",
    S.REFUNDED:           "i       i       i       =    R      R       R      R        =        =",
}
# fmt: on

_CODES = {"A": Decision.APPLY, "=": Decision.SAME, "i": Decision.IGNORE, "R": Decision.REVIEW}

CELLS = [
    pytest.param(current, reported, _CODES[code], id=f"{current.value}-{reported.value}")
    for current, row in EXPECTED.items()
    for reported, code in zip(COLUMNS, row.split(), strict=True)
]


def test_the_table_covers_every_status_pair() -> None:
    """Plan R-SM-0: the table is exhaustive (a new status must be added to it)."""
    assert set(COLUMNS) == set(S)
    assert set(EXPECTED) == set(S)
    assert len(CELLS) == len(S) ** 2


@pytest.mark.parametrize(("current", "reported", "expected"), CELLS)
def test_each_reported_status_gets_the_tabled_decision(
    current: S, reported: S, expected: Decision
) -> None:
    """Plan R-SM-1: ``decide`` follows the table cell by cell (kills mutants that disallow
    ``in_process → paid`` or ``in_process → cancelled``, or reclassify any other pair)."""
    assert decide(current, reported) is expected


@pytest.mark.parametrize(("current", "reported", "expected"), CELLS)
def test_allowed_transitions_are_exactly_the_applied_cells(
    current: S, reported: S, expected: Decision
) -> None:
    """Plan R-SM-2: ``allowed`` (used by the invariant checks) agrees with the table: a move is
    allowed exactly where the decision is to apply it."""
    assert allowed(current, reported) is (expected is Decision.APPLY)


@pytest.mark.parametrize("reported", [S.PAID, S.FAILED, S.EXPIRED, S.CANCELLED])
def test_a_payment_in_process_can_still_end_either_way(reported: S) -> None:
    """Plan R-SM-3: the customer is on the DANA page (``in_process``); the payment can still
    be paid, fail, expire or be cancelled, and each is applied."""
    assert allowed(S.IN_PROCESS, reported)
    assert decide(S.IN_PROCESS, reported) is Decision.APPLY


def test_review_reason_names_the_report_then_the_current_status() -> None:
    """Plan R-SM-4: review reasons are stable codes ``<reported>_after_<current>``."""
    assert review_reason(S.PAID, S.FAILED) == "failed_after_paid"
    assert review_reason(S.EXPIRED, S.PAID) == "paid_after_expired"
    assert review_reason(S.PENDING, S.REVERSED) == "reversed_after_pending"
