"""The service's rule paths at the edges mutation testing found unpinned (see
docs/reliability.md, "Mutation testing"): provider events, the reply the gateway is asked to
render, bodies that are not UTF-8, the record and event keys a decision carries, a transaction
id adopted only when the inquiry names it, the re-sent create of a provider whose create is
idempotent, the outbound request's times and key, and a reconcile inquiry answered ``unknown``.

Fast: :class:`gateway_core.testing.FakeGateway` subclasses, a fixed clock and a real SQLite
ledger file; no HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from gateway_core import (
    Customer,
    EventKind,
    InboundRequest,
    LedgerError,
    Money,
    OutcomeUnknown,
    Payment,
    PaymentRequest,
    PaymentService,
    PaymentStatus,
    PluginHost,
    Reason,
    ServicePolicy,
    SignedField,
    StatusReport,
    Verdict,
)
from gateway_core.ledger import SQLiteLedger
from gateway_core.testing import FakeGateway, HookRecorder

S = PaymentStatus


class RecordingGateway(FakeGateway):
    """A fake provider that keeps every request it was asked to check or send, and every
    reply it was asked to render."""

    name: ClassVar[str] = "fake_recording"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.checked: list[PaymentRequest] = []
        self.sent: list[PaymentRequest] = []
        self.replies: list[tuple[Any, ...]] = []

    def check_request(self, request: PaymentRequest) -> None:
        self.checked.append(request)
        super().check_request(request)

    def create(self, request: PaymentRequest) -> Payment:
        self.sent.append(request)
        return super().create(request)

    def reply(
        self, verdict: Any, message: Any, reason: Any, request: Any, *, accepted: bool
    ) -> Any:
        self.replies.append((verdict, message, reason, request, accepted))
        return super().reply(verdict, message, reason, request, accepted=accepted)


class LostCreateGateway(RecordingGateway):
    """The provider makes the bill, then the answer is lost (``lose`` times)."""

    name: ClassVar[str] = "fake_lost"

    def __init__(self, *, lose: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lose = lose

    def create(self, request: PaymentRequest) -> Payment:
        payment = super().create(request)
        if self.lose:
            self.lose -= 1
            raise OutcomeUnknown("answer lost after the bill was made", provider=self.name)
        return payment


class IdempotentLostGateway(LostCreateGateway):
    """Like :class:`LostCreateGateway`, but a create it has seen the key of answers with the
    bill it made then."""

    name: ClassVar[str] = "fake_idem"
    idempotent_create: ClassVar[bool] = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.by_key: dict[str, Payment] = {}

    def create(self, request: PaymentRequest) -> Payment:
        known = self.by_key.get(request.idempotency_key)
        if known is not None:
            self.sent.append(request)
            if self.lose:
                self.lose -= 1
                raise OutcomeUnknown("lost again", provider=self.name)
            return known
        self.sent.append(request)
        payment = FakeGateway.create(self, request)
        self.by_key[request.idempotency_key] = payment
        if self.lose:
            self.lose -= 1
            raise OutcomeUnknown("answer lost after the bill was made", provider=self.name)
        return payment


class SevenMinuteGateway(RecordingGateway):
    """A provider whose bills stay payable for seven minutes unless the request says."""

    name: ClassVar[str] = "fake_seven"

    @property
    def default_expiry(self) -> timedelta | None:
        return timedelta(minutes=7)


class CodedInquiryGateway(RecordingGateway):
    """Its inquiry answers carry the provider's own status code."""

    name: ClassVar[str] = "fake_coded"

    def inquire(self, payment: Payment) -> StatusReport:
        return attrs.evolve(super().inquire(payment), provider_status="settled")


class StrangerUnknownGateway(RecordingGateway):
    """Its inquiry answers ``unknown`` and names another merchant."""

    name: ClassVar[str] = "fake_stranger"

    def inquire(self, payment: Payment) -> StatusReport:
        return attrs.evolve(super().inquire(payment), status=S.UNKNOWN, merchant_id="stranger")


_UNSIGNED_STATUS = frozenset(SignedField) - {SignedField.STATUS}
_UNSIGNED_REFERENCE = frozenset(SignedField) - {SignedField.PROVIDER_REFERENCE}


class World:
    def __init__(self, tmp_path: Path, **gateways: FakeGateway) -> None:
        # The service's clock stands an hour ahead of the real present: the ledger stamps its
        # outbox rows with the real time, and an event is delivered once the service's clock
        # has reached it.
        self.t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        self.now = self.t0
        self.recorder = HookRecorder()
        host = PluginHost(entry_points=False, plugins=[self.recorder])
        self.ledger = SQLiteLedger(str(tmp_path / "ledger.db"))
        self.ledger.migrate()
        self.gateways: dict[str, FakeGateway] = dict(gateways)
        self.service = PaymentService(
            gateways=self.gateways,
            ledger=self.ledger,
            hooks=host.hooks,
            policy=ServicePolicy(reconcile_grace=timedelta(0)),
            clock=lambda: self.now,
            sleep=lambda _: None,
        )

    def request(self, order: str, amount: str = "10.00", **changes: Any) -> PaymentRequest:
        values: dict[str, Any] = {
            "order_reference": order,
            "amount": Money(amount, "USD"),
            "customer": Customer("Ana"),
            "description": order,
            "return_url": "https://shop.invalid/return",
        }
        values.update(changes)
        return PaymentRequest(**values)

    def start(self, gateway: str, order: str, amount: str = "10.00", **changes: Any) -> Any:
        return self.service.start_payment(gateway, self.request(order, amount, **changes)).payment

    def receive(self, gateway: str, body: bytes, headers: dict[str, str]) -> Any:
        request = InboundRequest.post(body, headers)
        return request, self.service.receive_notification(gateway, request)

    def notify(self, gateway: str, reference: str, status: S, **overrides: Any) -> Any:
        body, headers = self.gateways[gateway].notification(reference, status, **overrides)
        return self.receive(gateway, body, headers)[1]

    def record(self, gateway: str, reference: str) -> Any:
        return self.service.payment(gateway, reference)

    def journal(self, gateway: str, reference: str | None = None) -> list[Any]:
        return self.ledger.journal(gateway=gateway, merchant_reference=reference)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = World(
        tmp_path,
        a=RecordingGateway(merchant_id="m-a"),
        b=RecordingGateway(merchant_id="m-b"),
        weak=RecordingGateway.with_trust(notification_covers=_UNSIGNED_STATUS)(merchant_id="m-w"),
        unsettled=RecordingGateway.with_trust(notification_settles=False)(merchant_id="m-u"),
        coded=CodedInquiryGateway.with_trust(notification_covers=_UNSIGNED_STATUS)(),
        lost=LostCreateGateway(),
        idem=IdempotentLostGateway(lose=2),
        seven=SevenMinuteGateway(),
        stranger=StrangerUnknownGateway(),
        weaklost=LostCreateGateway.with_trust(notification_covers=_UNSIGNED_STATUS)(),
        weakref=RecordingGateway.with_trust(notification_covers=_UNSIGNED_REFERENCE)(),
    )
    try:
        yield built
    finally:
        built.ledger.close()


# -- provider events and the reply -------------------------------------------------------------


def test_a_provider_event_is_journalled_delivered_once_and_its_redelivery_is_a_duplicate(
    world: World,
) -> None:
    """Plan R-AP-30: a signed provider event (a refund) for a known payment is journalled with
    its body, delivered once to the provider-event hook right away, and its re-delivery is a
    duplicate; the status never changes and both get the success reply."""
    ref = world.start("a", "O-EV").merchant_reference
    body, headers = world.gateways["a"].event("refund.created", ref, event_id="7")
    _, first = world.receive("a", body, headers)
    assert (first.verdict, first.reason, first.acknowledgement.accepted) == (
        Verdict.EVENT,
        Reason.NONE,
        True,
    )
    assert first.payment.merchant_reference == ref
    [event] = world.recorder.of_kind(EventKind.PROVIDER_EVENT)
    assert (event.merchant_reference, event.provider_kind) == (ref, "refund.created")
    entry = world.journal("a", ref)[-1]
    assert (entry.kind, entry.verdict, entry.reason) == ("notification", "event", "refund.created")
    assert entry.body == body.decode()
    _, again = world.receive("a", body, headers)
    assert (again.verdict, again.payment.merchant_reference) == (Verdict.DUPLICATE, ref)
    assert len(world.recorder.of_kind(EventKind.PROVIDER_EVENT)) == 1
    assert world.record("a", ref).status is S.PENDING


def test_a_provider_event_for_an_unknown_payment_is_rejected_and_journalled_under_its_reference(
    world: World,
) -> None:
    """Plan R-AP-31: an event naming a payment the ledger does not have changes nothing."""
    world.gateways["a"].create(world.request("O-GHOST", merchant_reference="GHOST-1"))
    body, headers = world.gateways["a"].event("refund.created", "GHOST-1")
    _, outcome = world.receive("a", body, headers)
    assert (outcome.verdict, outcome.reason, outcome.payment) == (
        Verdict.REJECTED,
        Reason.UNKNOWN_PAYMENT,
        None,
    )
    entry = world.journal("a", "GHOST-1")[-1]
    assert (entry.verdict, entry.reason, entry.body) == (
        "rejected",
        "unknown_payment",
        body.decode(),
    )
    assert world.recorder.of_kind(EventKind.PROVIDER_EVENT) == []


def test_the_gateway_renders_the_reply_for_the_decided_verdict_reason_message_and_request(
    world: World,
) -> None:
    """Plan R-AP-32: the reply is asked for once, with the verdict and reason decided, the
    parsed message (none when it could not be parsed), the very request received, and whether
    the provider gets its success reply."""
    gateway = world.gateways["a"]
    assert isinstance(gateway, RecordingGateway)
    ref = world.start("a", "O-REPLY").merchant_reference
    gateway.settle(ref, S.PAID)
    body, headers = gateway.notification(ref, S.PAID)
    request, outcome = world.receive("a", body, headers)
    [(verdict, message, reason, replied_to, accepted)] = gateway.replies
    assert (verdict, reason, accepted) == (Verdict.APPLIED, Reason.NONE, True)
    assert (message.merchant_reference, message.status) == (ref, S.PAID)
    assert replied_to is request
    assert outcome.acknowledgement.status_code == 200
    gateway.replies.clear()
    request, outcome = world.receive("a", body, {"Fake-Signature": "0" * 64})
    [(verdict, message, reason, replied_to, accepted)] = gateway.replies
    assert (verdict, message, reason, accepted) == (
        Verdict.REJECTED,
        None,
        Reason.BAD_SIGNATURE,
        False,
    )
    assert replied_to is request
    assert outcome.acknowledgement.status_code == 400


def test_a_body_that_is_not_utf8_is_journalled_with_replacement_characters_naming_no_payment(
    world: World,
) -> None:
    """Plan R-AP-33: a rejected notification whose body is not UTF-8 is journalled (decoded
    with replacement characters, under no merchant reference), never an exception."""
    body = b'{"reference": "O-\xff\xfe", "status": "paid"}'
    _, outcome = world.receive("a", body, {"Fake-Signature": "0" * 64})
    assert (outcome.verdict, outcome.reason) == (Verdict.REJECTED, Reason.BAD_SIGNATURE)
    [entry] = world.journal("a")
    assert (entry.merchant_reference, entry.kind, entry.verdict, entry.reason) == (
        "",
        "notification",
        "rejected",
        "bad_signature",
    )
    assert entry.body == body.decode("utf-8", "replace")
    assert "\ufffd" in entry.body


# -- the record and event keys a decision carries -------------------------------------------------


def test_every_notification_outcome_carries_the_payment_as_the_ledger_now_has_it(
    world: World,
) -> None:
    """Plan R-AP-34: applied, reviewed, confirmed, unconfirmed and duplicate notifications
    return the payment's ledger record (after the change); an unknown payment returns none."""
    ref = world.start("a", "O-REC").merchant_reference
    reviewed = world.notify("a", ref, S.PAID, amount="999.00")
    assert (reviewed.verdict, reviewed.reason) == (Verdict.REVIEW, Reason.AMOUNT_MISMATCH)
    assert reviewed.payment.merchant_reference == ref
    world.gateways["a"].settle(ref, S.PAID)
    applied = world.notify("a", ref, S.PAID)
    assert applied.verdict is Verdict.APPLIED
    assert applied.payment == world.record("a", ref)
    assert applied.payment.status is S.PAID

    weak = world.start("weak", "O-WEAK").merchant_reference
    pending = world.notify("weak", weak, S.PAID)  # the inquiry says pending
    # An unconfirmed claim of money is refused (the provider retries), never acknowledged.
    assert (pending.verdict, pending.reason) == (Verdict.REJECTED, Reason.STATUS_UNCONFIRMED)
    assert pending.payment == world.record("weak", weak)
    signed = world.start("unsettled", "O-SIGNED").merchant_reference
    unconfirmed = world.notify("unsettled", signed, S.PAID)  # signed, but the inquiry says no
    assert (unconfirmed.verdict, unconfirmed.reason) == (
        Verdict.REJECTED,
        Reason.STATUS_UNCONFIRMED,
    )
    assert unconfirmed.payment == world.record("unsettled", signed)
    entry = world.journal("unsettled", signed)[-1]
    assert (entry.verdict, entry.reason) == ("rejected", "status_unconfirmed")
    assert entry.body == world.gateways["unsettled"].notification(signed, S.PAID)[0].decode()
    world.gateways["weak"].settle(weak, S.PAID)
    confirmed = world.notify("weak", weak, S.PAID)
    assert confirmed.verdict is Verdict.APPLIED
    assert confirmed.payment == world.record("weak", weak)
    assert confirmed.payment.status is S.PAID
    repeat = world.notify("weak", weak, S.PAID)
    assert (repeat.verdict, repeat.payment) == (Verdict.DUPLICATE, world.record("weak", weak))

    world.gateways["a"].create(world.request("O-GHOST", merchant_reference="GHOST-2"))
    unknown = world.notify("a", "GHOST-2", S.PAID)
    assert (unknown.verdict, unknown.reason, unknown.payment) == (
        Verdict.REJECTED,
        Reason.UNKNOWN_PAYMENT,
        None,
    )
    entry = world.journal("a", "GHOST-2")[-1]
    assert (entry.verdict, entry.reason) == ("rejected", "unknown_payment")
    assert entry.body == world.gateways["a"].notification("GHOST-2", S.PAID)[0].decode()


def test_a_confirmed_second_payment_of_a_paid_order_is_reviewed_with_its_record(
    world: World,
) -> None:
    """Plan R-AP-35: an order paid through one gateway, then through another whose
    notification the inquiry confirms: a paid_twice review carrying that attempt's record."""
    first = world.start("a", "O-TWICE").merchant_reference
    second = world.start("weak", "O-TWICE").merchant_reference
    world.gateways["a"].settle(first, S.PAID)
    assert world.notify("a", first, S.PAID).verdict is Verdict.APPLIED
    world.gateways["weak"].settle(second, S.PAID)
    outcome = world.notify("weak", second, S.PAID)
    assert (outcome.verdict, outcome.reason) == (Verdict.REVIEW, Reason.PAID_TWICE)
    assert outcome.payment.merchant_reference == second
    assert outcome.payment.gateway == "weak"


def test_a_paid_twice_review_is_keyed_by_the_attempt_that_was_paid_twice(world: World) -> None:
    """Plan R-AP-36: the needs_review event of a second payment of a paid order is named by
    the attempt, so however many messages (a pending notification confirmed as paid by
    inquiry, then the paid one) show the same second payment, it raises one review."""
    first = world.start("a", "O-KEY").merchant_reference
    second = world.start("b", "O-KEY").merchant_reference
    world.gateways["a"].settle(first, S.PAID)
    world.notify("a", first, S.PAID)
    world.gateways["b"].settle(second, S.PAID)
    outcome = world.notify("b", second, S.PAID)
    assert (outcome.verdict, outcome.reason) == (Verdict.REVIEW, Reason.PAID_TWICE)
    [review] = world.recorder.of_kind(EventKind.NEEDS_REVIEW)
    kind = EventKind.NEEDS_REVIEW.value
    assert review.event_id == f"b:{second}:{kind}:paid_twice:{second}"
    assert (review.merchant_reference, review.reason) == (second, "paid_twice")


def test_a_confirmed_notification_records_whose_claim_the_transition_is_under_its_event_key(
    world: World,
) -> None:
    """Plan R-AP-37: when the inquiry confirms the notification's own claim, the transition is
    the notification's, under its event key; when the inquiry answers another status, the
    transition is the inquiry's, keyed by the provider's status code, or ``inquiry`` when the
    answer carries none."""
    same = world.start("weak", "O-SAME").merchant_reference
    world.gateways["weak"].settle(same, S.PAID)
    assert world.notify("weak", same, S.PAID).verdict is Verdict.APPLIED
    last = world.ledger.transitions(world.record("weak", same).id)[-1]
    assert (last.source, last.event_key, last.to_status) == ("notification", f"{same}:paid", S.PAID)

    other = world.start("weak", "O-OTHER").merchant_reference
    world.gateways["weak"].settle(other, S.PAID)
    outcome = world.notify("weak", other, S.IN_PROCESS)
    assert (outcome.verdict, outcome.payment.status) == (Verdict.APPLIED, S.PAID)
    last = world.ledger.transitions(world.record("weak", other).id)[-1]
    assert (last.source, last.event_key, last.to_status) == ("inquiry", f"{other}:inquiry", S.PAID)

    coded = world.start("coded", "O-CODED").merchant_reference
    world.gateways["coded"].settle(coded, S.PAID)
    assert world.notify("coded", coded, S.IN_PROCESS).verdict is Verdict.APPLIED
    last = world.ledger.transitions(world.record("coded", coded).id)[-1]
    assert (last.source, last.event_key) == ("inquiry", f"{coded}:settled")


def test_a_lost_create_does_not_adopt_an_id_the_inquiry_answers_for_another_transaction(
    world: World,
) -> None:
    """Plan R-AP-38: a notification for an attempt whose create answer was lost names a
    transaction id; the inquiry made with it answers for the provider's real bill (another
    id): the id is not adopted, the notification is reviewed, nothing is applied."""
    with pytest.raises(OutcomeUnknown):
        world.start("lost", "O-ADOPT")
    [attempt] = world.ledger.payments_for_order("lost", "O-ADOPT")
    ref = attempt.merchant_reference
    world.gateways["lost"].settle(ref, S.PAID)
    outcome = world.notify("lost", ref, S.PAID, id="fk-someone-elses")
    assert (outcome.verdict, outcome.reason) == (Verdict.REVIEW, Reason.REFERENCE_UNCONFIRMED)
    after = world.record("lost", ref)
    assert (after.provider_reference, after.status) == ("", S.UNKNOWN)
    real = world.gateways["lost"].bill(ref)["id"]
    adopted = world.notify("lost", ref, S.PAID, id=real)
    assert adopted.verdict is Verdict.APPLIED
    assert (world.record("lost", ref).provider_reference, world.record("lost", ref).status) == (
        real,
        S.PAID,
    )


def test_a_reported_status_the_machine_reviews_is_keyed_by_the_notification_that_raised_it(
    world: World,
) -> None:
    """Plan R-AP-47: a ``failed`` notification for a paid payment is a review (never a
    transition) whose needs_review event is named by the notification's event key."""
    ref = world.start("a", "O-FAP").merchant_reference
    world.gateways["a"].settle(ref, S.PAID)
    world.notify("a", ref, S.PAID)
    outcome = world.notify("a", ref, S.FAILED)
    assert (outcome.verdict, outcome.reason) == (Verdict.REVIEW, Reason.FAILED_AFTER_PAID)
    [review] = world.recorder.of_kind(EventKind.NEEDS_REVIEW)
    kind = EventKind.NEEDS_REVIEW.value
    assert review.event_id == f"a:{ref}:{kind}:failed_after_paid:{ref}:failed"
    assert world.record("a", ref).status is S.PAID


def test_an_adopted_transaction_id_is_confirmed_by_one_inquiry_only(world: World) -> None:
    """Plan R-AP-48: for a provider whose signature does not prove the status, the inquiry
    that confirmed the transaction id of a lost create also confirms the status: the provider
    is asked once, and the payment is paid."""
    gateway = world.gateways["weaklost"]
    with pytest.raises(OutcomeUnknown):
        world.start("weaklost", "O-ONCE")
    [attempt] = world.ledger.payments_for_order("weaklost", "O-ONCE")
    ref = attempt.merchant_reference
    gateway.settle(ref, S.PAID)
    outcome = world.notify("weaklost", ref, S.PAID)
    assert outcome.verdict is Verdict.APPLIED
    assert gateway.calls.count("inquire") == 1
    after = world.record("weaklost", ref)
    assert (after.status, after.provider_reference) == (S.PAID, gateway.bill(ref)["id"])


def test_a_notification_without_a_transaction_id_for_a_lost_create_is_refused_unasked(
    world: World,
) -> None:
    """Plan R-AP-49: an attempt whose create answer was lost has no transaction id to inquire
    with; a notification naming none either cannot be confirmed: refused (the provider
    retries), nobody asked, nothing applied."""
    gateway = world.gateways["weaklost"]
    with pytest.raises(OutcomeUnknown):
        world.start("weaklost", "O-NOID")
    [attempt] = world.ledger.payments_for_order("weaklost", "O-NOID")
    ref = attempt.merchant_reference
    gateway.settle(ref, S.PAID)
    outcome = world.notify("weaklost", ref, S.PAID, id="")
    assert (outcome.verdict, outcome.reason) == (Verdict.REJECTED, Reason.STATUS_UNCONFIRMED)
    assert "inquire" not in gateway.calls
    assert world.record("weaklost", ref).status is S.UNKNOWN


def test_a_notifications_transaction_id_must_match_unless_signed_absent(world: World) -> None:
    """Plan R-AP-50: another transaction id than the ledger's is a reference mismatch; none
    at all is accepted only from a provider whose signature covers the transaction id field
    (so its absence is signed too)."""
    ref = world.start("a", "O-ID").merchant_reference
    world.gateways["a"].settle(ref, S.PAID)
    other = world.notify("a", ref, S.PAID, id="fk-other")
    assert (other.verdict, other.reason) == (Verdict.REVIEW, Reason.REFERENCE_MISMATCH)
    assert world.notify("a", ref, S.PAID, id="").verdict is Verdict.APPLIED
    weak = world.start("weakref", "O-ID-W").merchant_reference
    world.gateways["weakref"].settle(weak, S.PAID)
    unsigned = world.notify("weakref", weak, S.PAID, id="")
    assert (unsigned.verdict, unsigned.reason) == (Verdict.REVIEW, Reason.REFERENCE_MISMATCH)
    assert world.record("weakref", weak).status is S.PENDING


# -- start_payment ---------------------------------------------------------------------------


def test_a_resent_idempotent_create_repeats_the_attempts_reference_expiry_creation_time_and_key(
    world: World,
) -> None:
    """Plan R-AP-39: the next start_payment of an order whose idempotent create was lost
    checks and sends that attempt's own request again (reference, expiry, creation time, key),
    even though the clock moved on, and settles that attempt."""
    gateway = world.gateways["idem"]
    assert isinstance(gateway, IdempotentLostGateway)
    with pytest.raises(OutcomeUnknown):
        world.start("idem", "O-RESEND")
    [unknown] = world.ledger.payments_for_order("idem", "O-RESEND")
    assert re.fullmatch(r"[0-9a-f]{32}", unknown.idempotency_key)
    world.now = world.t0 + timedelta(minutes=3)
    gateway.checked.clear()
    started = world.start("idem", "O-RESEND")
    resent = gateway.sent[-1]
    assert gateway.checked == [resent]
    assert (
        resent.merchant_reference,
        resent.expires_at,
        resent.created_at,
        resent.idempotency_key,
        resent.amount,
    ) == (
        unknown.merchant_reference,
        unknown.expires_at,
        world.t0,
        unknown.idempotency_key,
        Money("10.00", "USD"),
    )
    assert unknown.created_at == world.t0
    assert (started.merchant_reference, started.status) == (unknown.merchant_reference, S.PENDING)
    assert [a.attempt for a in world.ledger.payments_for_order("idem", "O-RESEND")] == [1]
    assert len(gateway.by_key) == 1


def test_an_unknown_idempotent_attempt_is_replaced_not_resent_for_another_amount_or_when_expired(
    world: World,
) -> None:
    """Plan R-AP-40: the re-send is only for the same request: another amount, or an attempt
    past its expiry, makes a new attempt with a new key and supersedes the unknown one."""
    gateway = world.gateways["idem"]
    assert isinstance(gateway, IdempotentLostGateway)
    with pytest.raises(OutcomeUnknown):
        world.start("idem", "O-AMT")
    [unknown] = world.ledger.payments_for_order("idem", "O-AMT")
    started = world.start("idem", "O-AMT", amount="12.00")
    assert started.attempt == 2
    assert started.idempotency_key not in ("", unknown.idempotency_key)
    assert world.record("idem", unknown.merchant_reference).superseded

    gateway.lose = 2
    with pytest.raises(OutcomeUnknown):
        world.start("idem", "O-EXP")
    [unknown] = world.ledger.payments_for_order("idem", "O-EXP")
    assert unknown.expires_at is not None
    world.now = unknown.expires_at
    started = world.start("idem", "O-EXP")
    assert started.attempt == 2
    assert started.idempotency_key != unknown.idempotency_key


def test_an_unknown_attempt_without_a_key_is_replaced_even_by_an_idempotent_provider(
    tmp_path: Path,
) -> None:
    """Plan R-AP-41: an attempt recorded before the provider's create became idempotent has no
    key to re-send with; the next start_payment makes a new attempt (with a key)."""
    world = World(tmp_path, g=LostCreateGateway())
    try:
        with pytest.raises(OutcomeUnknown):
            world.start("g", "O-NOKEY")
        [unknown] = world.ledger.payments_for_order("g", "O-NOKEY")
        assert unknown.idempotency_key == ""
        world.gateways["g"] = IdempotentLostGateway(lose=0)
        started = world.start("g", "O-NOKEY")
        assert started.attempt == 2
        assert started.idempotency_key != ""
    finally:
        world.ledger.close()


def test_a_lost_create_of_a_provider_without_idempotent_create_is_never_resent(
    world: World,
) -> None:
    """Plan R-AP-42: without idempotent create the next start_payment makes a new attempt
    with a new merchant reference, and no key is ever sent."""
    gateway = world.gateways["lost"]
    assert isinstance(gateway, LostCreateGateway)
    with pytest.raises(OutcomeUnknown):
        world.start("lost", "O-PLAIN")
    started = world.start("lost", "O-PLAIN")
    assert started.attempt == 2
    first, second = gateway.sent
    assert first.merchant_reference != second.merchant_reference
    assert (first.idempotency_key, second.idempotency_key) == ("", "")


def test_the_outbound_request_carries_its_creation_time_and_a_fresh_128_bit_key(
    world: World,
) -> None:
    """Plan R-AP-43: the request sent (and the attempt) is stamped with the service's clock;
    an idempotent provider gets a new random 32-hex-digit key per attempt."""
    world.now = world.t0 + timedelta(seconds=42)
    started = world.start("a", "O-TIME")
    [sent] = world.gateways["a"].sent  # type: ignore[attr-defined]
    assert sent.created_at == world.now == started.created_at
    assert sent.idempotency_key == ""
    world.gateways["idem"].lose = 0  # type: ignore[attr-defined]
    one = world.start("idem", "O-KEY-1").idempotency_key
    two = world.start("idem", "O-KEY-2").idempotency_key
    assert re.fullmatch(r"[0-9a-f]{32}", one)
    assert re.fullmatch(r"[0-9a-f]{32}", two)
    assert one != two


def test_an_attempt_expires_after_the_gateways_default_expiry_else_the_policys(
    world: World,
) -> None:
    """Plan R-AP-44: without an expiry in the request, the gateway's default expiry decides,
    and the service policy's only when the gateway has none; the request's own wins."""
    seven = world.start("seven", "O-SEVEN")
    assert seven.expires_at == world.t0 + timedelta(minutes=7)
    assert world.gateways["seven"].sent[-1].expires_at == world.t0 + timedelta(minutes=7)  # type: ignore[attr-defined]
    policy = world.start("a", "O-POLICY")
    assert policy.expires_at == world.t0 + world.service.policy.default_expiry
    own = world.start("seven", "O-OWN", expires_at=world.t0 + timedelta(hours=2))
    assert own.expires_at == world.t0 + timedelta(hours=2)


def test_starting_a_paid_order_again_is_refused_naming_the_gateway(world: World) -> None:
    """Plan R-AP-45: a paid order cannot be started again; the error says so and names the
    gateway asked."""
    ref = world.start("a", "O-PAID").merchant_reference
    world.gateways["a"].settle(ref, S.PAID)
    world.notify("a", ref, S.PAID)
    with pytest.raises(LedgerError) as refused:
        world.start("b", "O-PAID")
    assert (refused.value.message, refused.value.provider) == (
        "order already has a paid payment",
        "b",
    )


# -- reconcile -------------------------------------------------------------------------------


def test_reconcile_leaves_a_payment_whose_inquiry_answers_unknown_unchanged_even_if_it_disagrees(
    world: World,
) -> None:
    """Plan R-AP-46: an inquiry answer of ``unknown`` says nothing, even one naming another
    merchant: no review, no change; the payment is counted and reported unchanged."""
    ref = world.start("stranger", "O-UNK").merchant_reference
    world.now = world.t0 + timedelta(minutes=1)
    seen: list[tuple[str, str]] = []
    report = world.service.reconcile(
        gateway_names=["stranger"],
        min_interval=0,
        progress=lambda record, verdict: seen.append((record.merchant_reference, verdict)),
    )
    assert (report.examined, report.unchanged, report.changed, report.reviews) == (1, 1, 0, 0)
    assert seen == [(ref, "unchanged")]
    assert world.recorder.of_kind(EventKind.NEEDS_REVIEW) == []
    assert world.record("stranger", ref).status is S.PENDING
