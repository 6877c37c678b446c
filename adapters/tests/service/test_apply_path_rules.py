"""The service's apply path under the conditions no happy path reaches: a compare-and-set that
loses a race, a create whose answer is lost or refused, an attempt past its expiry. Over the
real Faspay emulator on loopback HTTP and a real SQLite ledger file (the rules are written once
in the service; the ledger contract suite covers PostgreSQL's compare-and-set).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from test_scenarios_support import (
    effects,
    journal,
    notification_for,
    outbox_reviews,
    paid_transitions,
    post_notification,
    response_code,
    verdicts,
)

from gateway_core import (
    Capability,
    EventKind,
    GatewayError,
    LedgerError,
    Money,
    OutcomeUnknown,
    PaymentService,
    PaymentStatus,
    ReconcileReport,
    ServicePolicy,
)
from gateway_core.ledger import Ledger, PaymentRecord
from gateway_faspay_dana import JAKARTA

S = PaymentStatus
ORDER = "ORDER-RULES"


def _service(
    stack: Any,
    *,
    ledger: Any = None,
    clock: Callable[[], datetime] | None = None,
    expiry_margin: timedelta = timedelta(minutes=5),
    grace: timedelta = timedelta(0),
    sleep: Callable[[float], None] = lambda _: None,
    acknowledge_review: bool = True,
) -> PaymentService:
    """Another worker of the stack: same gateways and hooks, its own ledger and clock."""
    return PaymentService(
        gateways=stack.service.gateways,
        ledger=ledger or stack.ledger,
        hooks=stack.service.hooks,
        policy=ServicePolicy(
            reconcile_grace=grace,
            expiry_margin=expiry_margin,
            acknowledge_review=acknowledge_review,
        ),
        clock=clock or (lambda: datetime.now(UTC)),
        sleep=sleep,
    )


# -- a compare-and-set that loses a race ------------------------------------------------------


class _RacedLedger:
    """The stack's ledger, except that right after the service first reads the payment,
    ``concurrently`` runs (another worker committing on its own connection to the same file).
    Every later read and every compare-and-set sees that worker's change."""

    def __init__(self, inner: Ledger, concurrently: Callable[[], None]) -> None:
        self._inner = inner
        self._concurrently: Callable[[], None] | None = concurrently

    def _read(self, name: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self._inner, name)(*args, **kwargs)
        if self._concurrently is not None and result is not None:
            run, self._concurrently = self._concurrently, None
            run()
        return result

    def get_payment(self, *args: Any, **kwargs: Any) -> Any:
        return self._read("get_payment", *args, **kwargs)

    def get_payment_by_id(self, *args: Any, **kwargs: Any) -> Any:
        return self._read("get_payment_by_id", *args, **kwargs)

    def payments_to_reconcile(self, *args: Any, **kwargs: Any) -> Any:
        return self._read("payments_to_reconcile", *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def other_worker(sqlite_stack: Any) -> Iterator[Ledger]:
    """A second connection to the stack's SQLite file, as another worker process has."""
    ledger = sqlite_stack.store.open()
    try:
        yield ledger
    finally:
        ledger.close()


def _commit(ledger: Ledger, record: Any, status: S) -> None:
    assert record.id is not None
    receipt = f"order-paid:{record.order_reference}" if status is S.PAID else ""
    result = ledger.apply_transition(
        record.id,
        expected_status=record.status,
        new_status=status,
        source="notification",
        event_key=f"{record.merchant_reference}:other-worker",
        receipt_key=receipt,
    )
    assert result.value == "applied"


def _report(stack: Any, service: PaymentService, bill_no: str, how: str, code: str) -> Any:
    """Deliver the provider's status ``code`` for ``bill_no`` to ``service`` ``how``."""
    if how == "inquiry":
        return service.inquire(stack.gateway_name, bill_no)
    body = notification_for(stack, stack.record(bill_no), status=code)
    return service.handle_notification(stack.gateway_name, body).payment


@pytest.mark.parametrize("how", ["notification", "inquiry"])
def test_a_failure_report_racing_a_paid_commit_is_reviewed_not_applied(
    sqlite_stack: Any, other_worker: Ledger, how: str
) -> None:
    """Plan R-AP-1: the service read ``pending`` and decided to apply ``failed``; meanwhile
    another worker committed ``paid``. The compare-and-set must carry the status the decision
    was made on, lose, re-read and decide again: ``failed`` after ``paid`` is a review, and the
    payment stays paid. (Passing a re-read status to the compare-and-set downgrades it.)"""
    stack = sqlite_stack
    bill_no = stack.start(ORDER).payment.merchant_reference
    stack.emulator.add_fault("notification", "drop", bill_no=bill_no)
    stack.emulator.fail(bill_no)  # the provider's answer, for the inquiry
    stack.wait()
    pending = stack.record(bill_no)
    raced = _RacedLedger(stack.ledger, lambda: _commit(other_worker, pending, S.PAID))

    _report(stack, _service(stack, ledger=raced), bill_no, how, "3")

    record = stack.record(bill_no)
    assert record.status is S.PAID
    assert record.id is not None
    assert [(t.from_status, t.to_status) for t in stack.ledger.transitions(record.id)] == [
        (S.UNKNOWN, S.PENDING),
        (S.PENDING, S.PAID),
    ]
    assert outbox_reviews(stack, record) == ["failed_after_paid"]


@pytest.mark.parametrize("how", ["notification", "inquiry"])
def test_a_paid_report_racing_an_expiry_commit_is_reviewed_not_applied(
    sqlite_stack: Any, other_worker: Ledger, how: str
) -> None:
    """Plan R-AP-2: the mirror race. The service decided to apply ``paid`` to a ``pending``
    payment that another worker meanwhile expired: money moved on a closed payment, which is
    a review; ``expired → paid`` is never written."""
    stack = sqlite_stack
    bill_no = stack.start(ORDER).payment.merchant_reference
    stack.emulator.add_fault("notification", "drop", bill_no=bill_no)
    stack.emulator.pay(bill_no)
    stack.wait()
    pending = stack.record(bill_no)
    raced = _RacedLedger(stack.ledger, lambda: _commit(other_worker, pending, S.EXPIRED))

    _report(stack, _service(stack, ledger=raced), bill_no, how, "2")

    record = stack.record(bill_no)
    assert record.status is S.EXPIRED
    assert paid_transitions(stack, record) == []
    assert outbox_reviews(stack, record) == ["paid_after_expired"]


def test_a_report_that_wins_its_compare_and_set_is_applied_once(sqlite_stack: Any) -> None:
    """Plan R-AP-3: without a race the same path applies the report and announces it once."""
    stack = sqlite_stack
    bill_no = stack.start(ORDER).payment.merchant_reference
    stack.emulator.add_fault("notification", "drop", bill_no=bill_no)
    stack.emulator.fail(bill_no)
    stack.wait()

    outcome = stack.service.handle_notification(
        stack.gateway_name, notification_for(stack, stack.record(bill_no), status="3")
    )

    assert (outcome.verdict, outcome.payment.status) == ("applied", S.FAILED)
    record = stack.record(bill_no)
    assert record.status is S.FAILED
    last = stack.ledger.transitions(record.id)[-1]
    assert (last.source, last.event_key) == ("notification", f"{bill_no}:3")
    (applied,) = [e for e in journal(stack, "notification") if e.verdict == "applied"]
    assert bill_no in applied.body
    assert effects(stack, ORDER, EventKind.FAILED) == 1


# -- a create whose answer is lost: adopting the provider's transaction id --------------------


def _lost_create(stack: Any, order: str = ORDER) -> str:
    """Start ``order`` while the create's answer is cut off after the emulator processed it;
    the ledger's attempt is ``unknown`` with no transaction id. Returns its bill number."""
    stack.emulator.add_fault("create", "reset_after_read")
    with pytest.raises(OutcomeUnknown):
        stack.start(order)
    (attempt,) = stack.ledger.payments_for_order(stack.gateway_name, order)
    assert (attempt.status, attempt.provider_reference) == (S.UNKNOWN, "")
    return str(attempt.merchant_reference)


def _inquiries(stack: Any) -> int:
    return int(stack.emulator.request_counts().get("inquiry", 0))


def test_a_lost_create_adopts_the_notified_transaction_id_once_an_inquiry_confirms(
    sqlite_stack: Any,
) -> None:
    """Plan R-AP-4: the provider made the bill although its answer was lost, and the bill is
    paid. Its notification carries the provider's trx_id (which the signature does not cover);
    the service confirms it by an inquiry with that id, adopts it and applies ``paid``."""
    stack = sqlite_stack
    bill_no = _lost_create(stack)
    trx_id = stack.emulator.bill(bill_no)["trx_id"]
    before = _inquiries(stack)

    stack.emulator.pay(bill_no)
    stack.wait()

    record = stack.record(bill_no)
    assert record.provider_reference == trx_id
    assert record.status is S.PAID
    assert _inquiries(stack) > before  # the id was confirmed, not just believed
    assert [(t.from_status, t.to_status) for t in stack.ledger.transitions(record.id)] == [
        (S.UNKNOWN, S.PAID)
    ]
    (delivery,) = stack.emulator.deliveries(bill_no)
    assert [a["response_code"] for a in delivery["attempts"]] == ["00"]
    assert effects(stack, ORDER, EventKind.PAID) == 1


def test_a_lost_create_does_not_adopt_a_transaction_id_the_provider_does_not_know(
    sqlite_stack: Any,
) -> None:
    """Plan R-AP-5: a signed notification for the bill with a made-up trx_id: the inquiry with
    that id finds nothing, so the id is not adopted and nothing is applied; it is reviewed."""
    stack = sqlite_stack
    bill_no = _lost_create(stack)
    record = stack.record(bill_no)
    forged = notification_for(stack, record, status="2", trx_id="9999981900999999")

    reply = post_notification(stack, forged)

    record = stack.record(bill_no)
    assert (record.status, record.provider_reference) == (S.UNKNOWN, "")
    assert response_code(reply) is not None
    assert outbox_reviews(stack, record) == ["reference_unconfirmed"]
    assert effects(stack, ORDER, EventKind.PAID) == 0


def test_a_lost_create_does_not_adopt_an_id_whose_inquiry_contradicts_the_notification(
    sqlite_stack: Any,
) -> None:
    """Plan R-AP-6: the notification carries the real trx_id but claims ``paid`` while the
    provider says the bill is still waiting: the inquiry does not confirm, nothing changes."""
    stack = sqlite_stack
    bill_no = _lost_create(stack)
    trx_id = stack.emulator.bill(bill_no)["trx_id"]
    claim = notification_for(stack, stack.record(bill_no), status="2", trx_id=trx_id)

    post_notification(stack, claim)

    record = stack.record(bill_no)
    assert (record.status, record.provider_reference) == (S.UNKNOWN, "")
    assert outbox_reviews(stack, record) == ["reference_unconfirmed"]
    assert paid_transitions(stack, record) == []


# -- a create the provider refused --------------------------------------------------------------


def test_a_refused_create_closes_the_attempt_as_failed(sqlite_stack: Any) -> None:
    """Plan R-AP-7: the provider answered and refused the bill (a business error): provably
    not created, so the attempt goes ``unknown → failed`` (it is not left ``unknown`` for
    reconciliation), the refusal is journalled, and the next start makes a new attempt."""
    stack = sqlite_stack
    stack.emulator.add_fault("create", "business_error", response_code="30")

    with pytest.raises(GatewayError) as info:
        stack.start(ORDER)

    assert not isinstance(info.value, OutcomeUnknown)
    (attempt,) = stack.ledger.payments_for_order(stack.gateway_name, ORDER)
    assert attempt.status is S.FAILED
    assert attempt.id is not None
    refusal = type(info.value).__name__
    assert [
        (t.from_status, t.to_status, t.source, t.event_key)
        for t in stack.ledger.transitions(attempt.id)
    ] == [(S.UNKNOWN, S.FAILED, "create", f"create_failed:{refusal}")]
    assert verdicts(journal(stack, "create")) == [("rejected", type(info.value).__name__)]
    assert effects(stack, ORDER, EventKind.CREATED) == 0

    again = stack.start(ORDER)

    assert again.payment.attempt == 2
    assert again.payment.status is S.PENDING
    assert verdicts(journal(stack, "create")) == [("rejected", refusal), ("applied", "")]


# -- unknown attempts: the expiry margin --------------------------------------------------------

MARGIN = timedelta(minutes=5)


def _reconcile_at(stack: Any, at: datetime) -> Any:
    return _service(stack, clock=lambda: at, expiry_margin=MARGIN).reconcile(min_interval=0)


def test_an_unknown_attempt_waits_until_its_expiry_plus_the_margin(sqlite_stack: Any) -> None:
    """Plan R-AP-8: an attempt whose create answer was lost has no id to inquire with; it is
    settled as expired only once its expiry *plus the policy's margin* has passed (the
    provider's clock may lag), exactly at that moment, and not a second earlier."""
    stack = sqlite_stack
    bill_no = _lost_create(stack)
    expires_at = stack.record(bill_no).expires_at
    assert expires_at is not None

    for early in (expires_at, expires_at + MARGIN - timedelta(seconds=1)):
        report = _reconcile_at(stack, early)
        assert (report.examined, report.waiting, report.changed) == (1, 1, 0), early
        assert stack.record(bill_no).status is S.UNKNOWN

    report = _reconcile_at(stack, expires_at + MARGIN)

    assert (report.examined, report.waiting, report.changed) == (1, 0, 1)
    record = stack.record(bill_no)
    assert record.status is S.EXPIRED
    assert [(t.to_status, t.source) for t in stack.ledger.transitions(record.id)] == [
        (S.EXPIRED, "reconcile")
    ]
    assert effects(stack, ORDER, EventKind.EXPIRED) == 1


# -- reusing an attempt: never once it has expired ------------------------------------------------


def test_a_pending_attempt_is_reused_until_it_expires_and_never_from_its_expiry_on(
    sqlite_stack: Any,
) -> None:
    """Plan R-AP-9: a second "pay" click reuses the payable attempt while it is valid (one
    second before its expiry); at its expiry it is no longer payable, so a new attempt with a
    new bill is made instead."""
    stack = sqlite_stack
    first = stack.start(ORDER).payment
    assert first.expires_at is not None
    request = stack.request(ORDER)

    still_valid = _service(stack, clock=lambda: first.expires_at - timedelta(seconds=1))
    reused = still_valid.start_payment(stack.gateway_name, request)
    assert reused.reused
    assert reused.payment.merchant_reference == first.merchant_reference
    assert first.merchant_reference in reused.redirect.url  # the customer is sent to pay it

    at_expiry = _service(stack, clock=lambda: first.expires_at)
    fresh = at_expiry.start_payment(stack.gateway_name, request)

    assert not fresh.reused
    assert fresh.payment.merchant_reference != first.merchant_reference
    assert fresh.payment.attempt == 2
    assert stack.record(first.merchant_reference).superseded
    assert stack.emulator.create_requests(fresh.payment.merchant_reference) == 1


# -- reconciliation's bookkeeping -----------------------------------------------------------------


_COUNTS = ("examined", "changed", "unchanged", "waiting", "errors", "reviews")


def _counts(report: ReconcileReport, **expected: int) -> tuple[dict[str, int], dict[str, int]]:
    """(the report's outcome counts, ``expected`` with every unnamed count 0)."""
    actual = {name: getattr(report, name) for name in _COUNTS}
    return actual, {name: expected.get(name, 0) for name in _COUNTS}


def _settled_quietly(stack: Any, order: str, *actions: str) -> str:
    """Start ``order`` and carry out ``actions`` at the provider with every notification lost."""
    bill_no = str(stack.start(order).payment.merchant_reference)
    if actions:
        stack.emulator.add_fault("notification", "drop", count=len(actions), bill_no=bill_no)
    for action in actions:
        getattr(stack.emulator, action)(bill_no)
    stack.wait()
    return bill_no


def test_reconcile_reports_each_outcome_once_and_paces_its_inquiries(sqlite_stack: Any) -> None:
    """Plan R-AP-10: one pass over a bill paid at the provider, one still waiting there, one
    the provider reversed without the ledger ever seeing it paid, and an unknown attempt not
    yet expired: changed, unchanged, reviewed, waiting; one pause between two inquiries."""
    stack = sqlite_stack
    paid = _settled_quietly(stack, "ORDER-A", "pay")
    waiting_at_provider = _settled_quietly(stack, "ORDER-B")
    reversed_bill = _settled_quietly(stack, "ORDER-C", "pay", "reverse")
    unknown = _lost_create(stack, "ORDER-D")
    pauses: list[float] = []
    seen: list[tuple[str, str]] = []

    report = _service(stack, sleep=pauses.append).reconcile(
        progress=lambda r, verdict: seen.append((r.merchant_reference, verdict))
    )

    actual, expected = _counts(report, examined=4, changed=1, unchanged=2, waiting=1, reviews=1)
    assert actual == expected
    assert sorted(seen) == sorted(
        [
            (paid, "changed"),
            (waiting_at_provider, "duplicate"),
            (reversed_bill, "review"),
            (unknown, "waiting"),
        ]
    )
    assert pauses == [0.1, 0.1]  # between the three inquiries, not before the first
    assert stack.record(paid).status is S.PAID
    applied = [e for e in journal(stack, "reconcile") if e.verdict == "applied"]
    assert [(e.merchant_reference, e.body) for e in applied] == [(paid, "")]  # nothing received
    assert stack.record(waiting_at_provider).status is S.PENDING
    assert stack.record(reversed_bill).status is S.PENDING
    assert outbox_reviews(stack, stack.record(reversed_bill)) == ["reversed_after_pending"]
    assert stack.record(unknown).status is S.UNKNOWN


def test_reconcile_counts_each_failed_inquiry_as_an_error_and_changes_nothing(
    sqlite_stack: Any,
) -> None:
    """Plan R-AP-11: the provider cannot answer (HTTP 503 on every try): each payment is
    counted and reported as an error, the pass goes on to the next, and with
    ``min_interval=0`` it never pauses."""
    stack = sqlite_stack
    bills = [_settled_quietly(stack, order, "pay") for order in ("ORDER-E1", "ORDER-E2")]
    stack.emulator.add_fault("inquiry", "http_5xx", count=20)
    seen: list[tuple[str, str]] = []
    pauses: list[float] = []

    report = _service(stack, sleep=pauses.append).reconcile(
        min_interval=0, progress=lambda r, verdict: seen.append((r.merchant_reference, verdict))
    )

    actual, expected = _counts(report, examined=2, errors=2)
    assert actual == expected
    assert seen == [(bill, "error") for bill in bills]
    assert pauses == []
    assert [stack.record(bill).status for bill in bills] == [S.PENDING, S.PENDING]


class _CannotInquire:
    """The stack's gateway, declaring no ``inquire`` capability."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.trust = type(real).trust

    def supports(self, capability: Capability) -> bool:
        return capability is not Capability.INQUIRE and bool(self._real.supports(capability))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_reconcile_leaves_payments_of_a_gateway_that_cannot_inquire_waiting(
    sqlite_stack: Any,
) -> None:
    """Plan R-AP-11b: without an inquiry there is nothing to reconcile with: every payment is
    counted as waiting, and no request is sent."""
    stack = sqlite_stack
    bills = [_settled_quietly(stack, order, "pay") for order in ("ORDER-W1", "ORDER-W2")]
    worker = _service(stack)
    worker.gateways = {stack.gateway_name: _CannotInquire(stack.service.gateways["dana"])}
    before = _inquiries(stack)

    actual, expected = _counts(worker.reconcile(min_interval=0), examined=2, waiting=2)

    assert actual == expected
    assert _inquiries(stack) == before
    assert [stack.record(bill).status for bill in bills] == [S.PENDING, S.PENDING]


def test_reconcile_leaves_payments_younger_than_the_grace_alone(sqlite_stack: Any) -> None:
    """Plan R-AP-12: the policy's grace spares a payment just created (its notification may be
    on its way); an explicit ``grace`` overrides the policy's."""
    stack = sqlite_stack
    _settled_quietly(stack, "ORDER-F", "pay")
    worker = _service(stack, grace=timedelta(minutes=5))

    actual, expected = _counts(worker.reconcile(min_interval=0))
    assert actual == expected
    assert worker.reconcile(min_interval=0, grace=timedelta(0)).changed == 1


def _stale_unknown(
    stack: Any,
    gateway: str,
    reference: str,
    updated_at: datetime,
    expires_at: datetime | None = None,
) -> None:
    stack.ledger.insert_payment(
        PaymentRecord(
            id=None,
            gateway=gateway,
            provider="faspay_dana",
            order_reference=reference,
            merchant_reference=reference,
            provider_reference="",
            status=S.UNKNOWN,
            amount=Money("2000", "IDR"),
            merchant_id="99999",
            attempt=1,
            superseded=False,
            expires_at=expires_at,
            created_at=updated_at,
            updated_at=updated_at,
            version=0,
        )
    )


def test_reconcile_examines_only_the_named_and_configured_gateways(sqlite_stack: Any) -> None:
    """Plan R-AP-13: a payment of a gateway no longer configured is skipped (and does not stop
    the pass); ``gateway_names`` restricts the pass to those gateways."""
    stack = sqlite_stack
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    _stale_unknown(stack, "retired", "OLD-1", hour_ago - timedelta(minutes=1))
    _stale_unknown(stack, stack.gateway_name, "OLD-2", hour_ago)
    worker = _service(stack)

    every = worker.reconcile(min_interval=0)
    actual, expected = _counts(every, examined=1, waiting=1)
    assert actual == expected
    assert (every.unconfigured, every.unconfigured_gateways) == (1, ("retired",))
    elsewhere = worker.reconcile(min_interval=0, gateway_names=["elsewhere"])
    actual, expected = _counts(elsewhere)
    assert actual == expected
    assert (elsewhere.unconfigured, elsewhere.unconfigured_gateways) == (0, ())
    named = worker.reconcile(min_interval=0, gateway_names=[stack.gateway_name])
    actual, expected = _counts(named, examined=1, waiting=1)
    assert actual == expected
    assert named.unconfigured == 0
    retired = worker.reconcile(min_interval=0, gateway_names=["retired"])
    assert (retired.examined, retired.unconfigured) == (0, 1)


def test_reconcile_takes_the_least_recently_examined_payments_first(sqlite_stack: Any) -> None:
    """Plan R-AP-13b: with a limit of one, two passes examine two different payments (each
    pass stamps what it examined), then the first again."""
    stack = sqlite_stack
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    _stale_unknown(stack, stack.gateway_name, "OLD-A", hour_ago - timedelta(minutes=1))
    _stale_unknown(stack, stack.gateway_name, "OLD-B", hour_ago)
    seen: list[str] = []
    passes = [datetime.now(UTC) + timedelta(seconds=n) for n in range(3)]

    for at in passes:
        _service(stack, clock=lambda at=at: at).reconcile(
            limit=1, min_interval=0, progress=lambda r, _verdict: seen.append(r.merchant_reference)
        )

    assert seen == ["OLD-A", "OLD-B", "OLD-A"]


def test_reconcile_examines_at_most_a_hundred_payments_by_default(sqlite_stack: Any) -> None:
    """Plan R-AP-14: one pass is bounded (default ``limit`` 100)."""
    stack = sqlite_stack
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    for n in range(101):
        _stale_unknown(stack, stack.gateway_name, f"BULK-{n}", hour_ago)

    assert _service(stack).reconcile(min_interval=0).examined == 100


# -- reviews: one per distinct anomaly, journalled with the message ---------------------------


def test_each_distinct_tampered_notification_raises_its_own_review_and_a_repeat_none(
    sqlite_stack: Any,
) -> None:
    """Plan R-AP-15: after the payment is paid, signed notifications with a tampered amount
    arrive for two statuses, one of them twice. Each distinct message raises one
    ``needs_review`` event (the review is keyed by the message, not only the reason), carrying
    the payment's status as both current and previous; the repeat writes nothing, not even a
    journal entry; the journal keeps the message that was reviewed."""
    stack = sqlite_stack
    bill_no = stack.start(ORDER).payment.merchant_reference
    stack.emulator.pay(bill_no)
    stack.wait()
    paid = stack.record(bill_no)
    assert paid.status is S.PAID
    tampered = {code: notification_for(stack, paid, status=code, amount="2001") for code in "23"}

    for code in ("2", "3", "2"):
        post_notification(stack, tampered[code])

    record = stack.record(bill_no)
    assert record.status is S.PAID
    assert outbox_reviews(stack, record) == ["amount_mismatch", "amount_mismatch"]
    events = stack.recorder.of_kind(EventKind.NEEDS_REVIEW)
    assert {(e.status, e.previous_status) for e in events} == {(S.PAID, S.PAID)}
    reviewed = [e for e in journal(stack, "notification") if e.verdict == "review"]
    assert [e.reason for e in reviewed] == ["amount_mismatch", "amount_mismatch"]
    assert all(bill_no in e.body and "2001" in e.body for e in reviewed)


def test_a_notification_without_a_transaction_id_is_refused_without_an_inquiry(
    sqlite_stack: Any,
) -> None:
    """Plan R-AP-16: for an attempt whose create answer was lost, a signed notification with
    no transaction id gives nothing to inquire with or adopt: it is refused as malformed, no
    inquiry is sent, nothing changes."""
    stack = sqlite_stack
    bill_no = _lost_create(stack)
    before = _inquiries(stack)
    body = notification_for(stack, stack.record(bill_no), status="2", trx_id="")

    outcome = stack.service.handle_notification(stack.gateway_name, body)

    assert (outcome.verdict, outcome.reason) == ("rejected", "malformed")
    assert _inquiries(stack) == before
    assert stack.record(bill_no).status is S.UNKNOWN
    assert paid_transitions(stack, stack.record(bill_no)) == []


# -- notifications the provider's inquiry does not bear out -----------------------------------


def test_a_paid_claim_the_provider_does_not_confirm_is_refused_so_the_provider_retries(
    sqlite_stack: Any,
) -> None:
    """Plan R-AP-17: a correctly signed "paid" notification for a bill the provider still has
    open: the inquiry says pending, so nothing is applied, the refusal is journalled and the
    provider gets its failure reply (it will retry)."""
    stack = sqlite_stack
    record = stack.start(ORDER).payment

    reply = post_notification(stack, notification_for(stack, record, status="2"))

    assert response_code(reply) != "00"
    assert stack.record(record.merchant_reference).status is S.PENDING
    after_create = [e for e in journal(stack) if e.kind != "create"]
    assert [(e.gateway, e.kind, e.verdict, e.reason) for e in after_create] == [
        (stack.gateway_name, "notification", "rejected", "status_unconfirmed")
    ]  # the inquiry's "still pending" is not journalled as a duplicate of anything
    assert effects(stack, ORDER, EventKind.PAID) == 0


@pytest.mark.parametrize("acknowledge_review", [True, False])
def test_an_inquiry_answer_that_disagrees_with_the_ledger_is_reviewed_not_applied(
    sqlite_stack: Any, acknowledge_review: bool
) -> None:
    """Plan R-AP-18: the ledger holds the bill under another merchant id than the provider
    (a configuration changed under an open payment, say). The notification, matching the
    ledger, does not show it; the inquiry that confirms it does. The answer is not applied:
    the payment is reviewed, with the message journalled, and the provider gets the reply the
    review policy says."""
    stack = sqlite_stack
    gw = stack.service.gateways[stack.gateway_name]
    now = datetime.now(UTC)
    request = stack.request(ORDER)
    created = gw.create(
        attrs.evolve(
            request,
            merchant_reference="ORDER-RULES-M",
            expires_at=now + timedelta(hours=1),
            created_at=now,
        )
    )
    stack.ledger.insert_payment(
        PaymentRecord(
            id=None,
            gateway=stack.gateway_name,
            provider="faspay_dana",
            order_reference=ORDER,
            merchant_reference="ORDER-RULES-M",
            provider_reference=created.provider_reference,
            status=S.PENDING,
            amount=Money("2000", "IDR"),
            merchant_id="88888",
            attempt=1,
            superseded=False,
            expires_at=now + timedelta(hours=1),
            created_at=now,
            updated_at=now,
            version=0,
        )
    )
    stack.emulator.add_fault("notification", "drop", bill_no="ORDER-RULES-M")
    stack.emulator.pay("ORDER-RULES-M")
    stack.wait()
    body = notification_for(stack, stack.record("ORDER-RULES-M"), status="2", merchant_id="88888")

    worker = _service(stack, acknowledge_review=acknowledge_review)

    outcome = worker.handle_notification(stack.gateway_name, body)

    assert (outcome.verdict, outcome.reason) == ("review", "merchant_mismatch")
    record = stack.record("ORDER-RULES-M")
    assert outcome.payment == record
    assert outcome.acknowledgement.accepted is acknowledge_review
    if not acknowledge_review:  # the failure reply names the reason
        assert b"merchant_mismatch" in outcome.acknowledgement.body
    assert record.status is S.PENDING
    assert outbox_reviews(stack, record) == ["merchant_mismatch"]
    (review,) = [e.event_id for e in stack.ledger.outbox(record.id)]
    assert review.endswith(":merchant_mismatch:ORDER-RULES-M:2")  # keyed by the message
    (entry,) = [e for e in journal(stack, "notification") if e.verdict == "review"]
    assert (entry.reason, "ORDER-RULES-M" in entry.body) == ("merchant_mismatch", True)
    assert effects(stack, ORDER, EventKind.PAID) == 0


def test_a_paid_claim_that_cannot_be_confirmed_is_refused(sqlite_stack: Any) -> None:
    """Plan R-AP-19: the provider paid the bill, but its inquiry API is down (HTTP 503 on
    every try): a notification that cannot be confirmed is refused with the failure reply, so
    the provider retries; nothing is applied on the notification's word."""
    stack = sqlite_stack
    bill_no = _settled_quietly(stack, ORDER, "pay")
    stack.emulator.add_fault("inquiry", "http_5xx", count=10)
    body = notification_for(stack, stack.record(bill_no), status="2")

    outcome = stack.service.handle_notification(stack.gateway_name, body)

    assert (outcome.verdict, outcome.reason) == ("rejected", "status_unconfirmed")
    assert outcome.acknowledgement.accepted is False
    assert stack.record(bill_no).status is S.PENDING
    assert verdicts(journal(stack, "notification")) == [("rejected", "status_unconfirmed")]


def test_a_notification_understating_the_provider_status_applies_the_inquiry_answer(
    sqlite_stack: Any,
) -> None:
    """Plan R-AP-20: a notification says "in process" while the provider, asked, says paid:
    the provider's answer is applied, recorded as coming from the inquiry (under the inquiry's
    key, so the provider's own "paid" notification is then a duplicate), and the notification
    is acknowledged."""
    stack = sqlite_stack
    bill_no = _settled_quietly(stack, ORDER, "pay")
    body = notification_for(stack, stack.record(bill_no), status="1")

    outcome = stack.service.handle_notification(stack.gateway_name, body)

    assert outcome.acknowledgement.accepted is True
    record = stack.record(bill_no)
    assert record.status is S.PAID
    (paid,) = paid_transitions(stack, record)
    assert (paid.source, paid.event_key) == ("inquiry", f"{bill_no}:2")
    assert effects(stack, ORDER, EventKind.PAID) == 1
    (event,) = stack.recorder.of_kind(EventKind.PAID)
    assert (event.status, event.previous_status) == (S.PAID, S.PENDING)


def _foreign_merchant_record(stack: Any, reference: str) -> None:
    """A real bill at the provider, which the ledger holds under merchant id 88888."""
    gw = stack.service.gateways[stack.gateway_name]
    now = datetime.now(UTC)
    expires_at = now + timedelta(hours=1)
    created = gw.create(
        attrs.evolve(
            stack.request(reference),
            merchant_reference=reference,
            expires_at=expires_at,
            created_at=now,
        )
    )
    stack.ledger.insert_payment(
        PaymentRecord(
            id=None,
            gateway=stack.gateway_name,
            provider="faspay_dana",
            order_reference=reference,
            merchant_reference=reference,
            provider_reference=created.provider_reference,
            status=S.PENDING,
            amount=Money("2000", "IDR"),
            merchant_id="88888",
            attempt=1,
            superseded=False,
            expires_at=expires_at,
            created_at=now,
            updated_at=now,
            version=0,
        )
    )


def test_reconcile_reviews_an_inquiry_answer_that_disagrees_with_the_ledger(
    sqlite_stack: Any,
) -> None:
    """Plan R-AP-21: reconciliation asks about a payment and the answer is for another
    merchant than the ledger's: a review keyed by the payment and the provider's status code,
    journalled as reconciliation's, and never a transition."""
    stack = sqlite_stack
    bills = ("ORDER-RULES-R1", "ORDER-RULES-R2")
    for bill_no in bills:
        _foreign_merchant_record(stack, bill_no)
        stack.emulator.add_fault("notification", "drop", bill_no=bill_no)
        stack.emulator.pay(bill_no)
    stack.wait()
    seen: list[tuple[str, str]] = []

    report = _service(stack).reconcile(
        min_interval=0, progress=lambda r, verdict: seen.append((r.merchant_reference, verdict))
    )

    actual, expected = _counts(report, examined=2, unchanged=2, reviews=2)
    assert actual == expected
    assert sorted(seen) == [(bill_no, "review") for bill_no in bills]
    for bill_no in bills:
        record = stack.record(bill_no)
        assert record.status is S.PENDING
        (review,) = [e.event_id for e in stack.ledger.outbox(record.id)]
        assert review.endswith(f":merchant_mismatch:{bill_no}:2")
    entries = journal(stack, "reconcile")
    assert [(e.verdict, e.reason, e.body) for e in entries] == [
        ("review", "merchant_mismatch", "")  # nothing was received to keep
    ] * 2


def test_reconcile_expiring_an_unknown_attempt_that_was_just_paid_reviews_instead(
    sqlite_stack: Any, other_worker: Ledger
) -> None:
    """Plan R-AP-22: reconciliation picks an unknown attempt past its expiry and margin;
    before it writes ``expired`` another worker confirms it paid. The compare-and-set loses,
    ``expired`` after ``paid`` is a review, and the pass counts it unchanged."""
    stack = sqlite_stack
    bill_no = _lost_create(stack)
    unknown = stack.record(bill_no)
    assert unknown.expires_at is not None
    raced = _RacedLedger(stack.ledger, lambda: _commit(other_worker, unknown, S.PAID))
    seen: list[tuple[str, str]] = []
    worker = _service(stack, ledger=raced, clock=lambda: unknown.expires_at + MARGIN)

    report = worker.reconcile(min_interval=0, progress=lambda r, v: seen.append((r.status, v)))

    actual, expected = _counts(report, examined=1, unchanged=1)
    assert actual == expected
    assert seen == [(S.PAID, "review")]
    record = stack.record(bill_no)
    assert record.status is S.PAID
    assert outbox_reviews(stack, record) == ["expired_after_paid"]


def test_reconcile_settles_every_expired_unknown_attempt_and_reports_each(
    sqlite_stack: Any,
) -> None:
    """Plan R-AP-23: two unknown attempts past expiry and margin, two with no expiry: two
    changed, two waiting, each reported to ``progress`` with what happened to it."""
    stack = sqlite_stack
    long_ago = datetime.now(UTC) - timedelta(days=1)
    for reference in ("OLD-E1", "OLD-E2"):
        _stale_unknown(stack, stack.gateway_name, reference, long_ago, expires_at=long_ago)
    for reference in ("OLD-W1", "OLD-W2"):
        _stale_unknown(stack, stack.gateway_name, reference, long_ago)
    seen: list[tuple[str, str]] = []

    report = _service(stack).reconcile(
        min_interval=0, progress=lambda r, v: seen.append((r.merchant_reference, v))
    )

    actual, expected = _counts(report, examined=4, changed=2, waiting=2)
    assert actual == expected
    assert sorted(seen) == [
        ("OLD-E1", "applied"),
        ("OLD-E2", "applied"),
        ("OLD-W1", "waiting"),
        ("OLD-W2", "waiting"),
    ]
    assert [stack.record(r).status for r in ("OLD-E1", "OLD-E2")] == [S.EXPIRED, S.EXPIRED]


# -- starting a payment for an order that has history --------------------------------------------


def test_an_order_paid_through_one_gateway_cannot_be_started_through_another(
    sqlite_stack: Any,
) -> None:
    """Plan R-AP-26: the order is paid (through ``dana``); the shop also configures the same
    provider under a second name. Starting the order there is refused before any bill is
    created: an order is paid once, whatever the gateway."""
    stack = sqlite_stack
    bill_no = stack.start(ORDER).payment.merchant_reference
    stack.emulator.pay(bill_no)
    stack.wait()
    assert stack.record(bill_no).status is S.PAID
    gw = stack.service.gateways[stack.gateway_name]
    worker = _service(stack)
    worker.gateways = {stack.gateway_name: gw, "dana-2": gw}
    bills = len(stack.emulator.bills())

    with pytest.raises(LedgerError, match="order already has a paid payment") as info:
        worker.start_payment("dana-2", stack.request(ORDER))
    assert info.value.provider == "dana-2"
    with pytest.raises(LedgerError, match="order already has a paid payment"):
        worker.start_payment(stack.gateway_name, stack.request(ORDER))

    assert len(stack.emulator.bills()) == bills
    assert stack.ledger.payments_for_order("dana-2", ORDER) == []


def test_the_payable_attempt_after_a_replaced_one_is_reused(sqlite_stack: Any) -> None:
    """Plan R-AP-27: attempt 1's create answer was lost (replaced), attempt 2 is payable: a
    second "pay" click reuses attempt 2 rather than making attempt 3."""
    stack = sqlite_stack
    _lost_create(stack)
    second = stack.start(ORDER).payment

    again = stack.start(ORDER)

    assert again.reused
    assert again.payment.merchant_reference == second.merchant_reference
    assert [a.attempt for a in stack.ledger.payments_for_order(stack.gateway_name, ORDER)] == [
        1,
        2,
    ]


def test_the_shops_own_merchant_reference_names_only_the_first_attempt(sqlite_stack: Any) -> None:
    """Plan R-AP-28: a request may carry the shop's own bill number; it names attempt 1 only
    (a replaced attempt's bill may still exist at the provider), later attempts get a derived
    one; the bill's expiry is the one the ledger recorded."""
    stack = sqlite_stack
    stack.emulator.add_fault("create", "reset_after_read")
    with pytest.raises(OutcomeUnknown):
        stack.start(ORDER, merchant_reference="SHOP-BILL-A")
    (first,) = stack.ledger.payments_for_order(stack.gateway_name, ORDER)
    assert first.merchant_reference == "SHOP-BILL-A"

    second = stack.start(ORDER, merchant_reference="SHOP-BILL-A").payment

    assert second.attempt == 2
    assert second.merchant_reference not in ("", "SHOP-BILL-A")
    assert second.expires_at is not None
    bill = stack.emulator.bill(second.merchant_reference)
    local = second.expires_at.astimezone(JAKARTA).strftime("%Y-%m-%d %H:%M:%S")
    assert bill["bill_expired"] == local


def test_repeats_and_stale_reports_are_journalled_with_the_message_and_change_nothing(
    sqlite_stack: Any,
) -> None:
    """Plan R-AP-29: after the payment is paid, the same "paid" notification again is a
    duplicate, and an "in process" one is stale progress (ignored): both are journalled with
    their reason and the message received, and nothing changes."""
    stack = sqlite_stack
    bill_no = stack.start(ORDER).payment.merchant_reference
    stack.emulator.pay(bill_no)
    stack.wait()
    paid = stack.record(bill_no)

    for code in ("2", "1"):
        stack.service.handle_notification(
            stack.gateway_name, notification_for(stack, paid, status=code)
        )

    entries = journal(stack, "notification")[-2:]
    assert [(e.verdict, e.reason) for e in entries] == [
        ("duplicate", ""),
        ("ignored", "in_process_after_paid"),
    ]
    assert all(bill_no in e.body for e in entries)
    assert stack.record(bill_no) == paid
