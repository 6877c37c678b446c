"""Inbound messages flow one way (issue 10, items 1 and 2): the gateway parses, the payment
service decides a (Verdict, Reason) and writes, and the gateway renders the reply exactly once
per inbound message, on every path, including the web layer's refusals and a ledger that is
down. Provider events that are not status changes are journalled, acknowledged, delivered once
to ``gateway_provider_event``, and never become a status. Tested with a spy
:class:`~gateway_core.testing.FakeGateway` and a real SQLite ledger.
"""

from __future__ import annotations

import hashlib
import hmac
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from gateway_core import (
    Acknowledgement,
    Customer,
    EventKind,
    InboundRequest,
    LedgerUnavailable,
    Money,
    Notification,
    PaymentRequest,
    PaymentService,
    PaymentStatus,
    PluginHost,
    ProviderEvent,
    Reason,
    Verdict,
)
from gateway_core._state import Decision, decide
from gateway_core.ledger import SQLiteLedger
from gateway_core.testing import FakeGateway, HookRecorder
from gateway_core.web import make_wsgi_app

S = PaymentStatus


class SpyGateway(FakeGateway):
    """A FakeGateway that counts the replies the service asks it to render."""

    name = "spy"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.replies: list[tuple[Verdict, Reason, bool]] = []

    def reply(
        self,
        verdict: Verdict,
        message: Notification | ProviderEvent | None,
        reason: Reason,
        request: InboundRequest | None,
        *,
        accepted: bool,
    ) -> Acknowledgement:
        self.replies.append((verdict, reason, accepted))
        return super().reply(verdict, message, reason, request, accepted=accepted)


class FlakyLedger(SQLiteLedger):
    """A SQLite ledger that can be switched off (every read and write then fails)."""

    down = False

    def get_payment(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise LedgerUnavailable("ledger switched off by the test")
        return super().get_payment(*args, **kwargs)

    def append_journal(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise LedgerUnavailable("ledger switched off by the test")
        return super().append_journal(*args, **kwargs)


class World:
    def __init__(self, tmp_path: Path, gateway: SpyGateway) -> None:
        self.recorder = HookRecorder()
        host = PluginHost(entry_points=False, plugins=[self.recorder])
        self.ledger = FlakyLedger(str(tmp_path / "ledger.db"))
        self.ledger.migrate()
        self.gateway = gateway
        self.service = PaymentService(
            gateways={"spy": gateway}, ledger=self.ledger, hooks=host.hooks
        )

    def start(self, order: str = "O-1") -> str:
        request = PaymentRequest(
            order_reference=order,
            amount=Money("10.00", "USD"),
            customer=Customer("Ana"),
            description=order,
            return_url="https://shop.invalid/return",
        )
        return self.service.start_payment("spy", request).payment.merchant_reference

    def receive(self, body: bytes, headers: dict[str, str]) -> Any:
        return self.service.receive_notification("spy", InboundRequest.post(body, headers))

    def journal(self) -> list[tuple[str, str]]:
        return [(e.verdict, e.reason) for e in self.ledger.journal()]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = World(tmp_path, SpyGateway())
    try:
        yield built
    finally:
        built.ledger.close()


def wsgi(app: Callable[..., Any], body: bytes = b"", **environ: Any) -> tuple[str, bytes, dict]:
    base = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/notify/spy",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    answer: list[Any] = []
    out = b"".join(app({**base, **environ}, lambda s, h: answer.append((s, dict(h)))))
    return answer[0][0], out, answer[0][1]


# -- one reply per inbound message ------------------------------------------------------------


def test_an_applied_notification_is_replied_to_once(world: World) -> None:
    ref = world.start()
    world.gateway.settle(ref, S.PAID)
    outcome = world.receive(*world.gateway.notification(ref, S.PAID))
    assert world.gateway.replies == [(Verdict.APPLIED, Reason.NONE, True)]
    assert outcome.verdict is Verdict.APPLIED
    assert outcome.acknowledgement.accepted


def test_a_duplicate_is_replied_to_once(world: World) -> None:
    ref = world.start()
    world.gateway.settle(ref, S.PAID)
    world.receive(*world.gateway.notification(ref, S.PAID))
    world.gateway.replies.clear()
    outcome = world.receive(*world.gateway.notification(ref, S.PAID))
    assert world.gateway.replies == [(Verdict.DUPLICATE, Reason.NONE, True)]
    assert outcome.verdict is Verdict.DUPLICATE


def test_a_review_is_replied_to_once(world: World) -> None:
    ref = world.start()
    outcome = world.receive(*world.gateway.notification(ref, S.PAID, amount="99.00"))
    assert world.gateway.replies == [(Verdict.REVIEW, Reason.AMOUNT_MISMATCH, True)]
    assert (outcome.verdict, outcome.reason) == (Verdict.REVIEW, Reason.AMOUNT_MISMATCH)


def test_a_bad_signature_is_replied_to_once_with_nothing_parsed(world: World) -> None:
    ref = world.start()
    body, _ = world.gateway.notification(ref, S.PAID)
    outcome = world.receive(body, {"Fake-Signature": "0" * 64})
    assert world.gateway.replies == [(Verdict.REJECTED, Reason.BAD_SIGNATURE, False)]
    assert not outcome.acknowledgement.accepted
    assert world.journal()[-1] == ("rejected", "bad_signature")


def test_a_malformed_notification_is_replied_to_once(world: World) -> None:
    ref = world.start()
    body = b'{"reference": "%s", "status": "bogus"}' % ref.encode()
    signature = hmac.new(b"fake-secret", body, hashlib.sha256).hexdigest()  # FakeGateway's
    outcome = world.receive(body, {"Fake-Signature": signature})
    assert world.gateway.replies == [(Verdict.REJECTED, Reason.MALFORMED, False)]
    assert outcome.reason is Reason.MALFORMED


def test_an_unknown_payment_is_replied_to_once(world: World) -> None:
    ref = world.start()
    outcome = world.receive(*world.gateway.notification(ref, S.PAID, reference="NOPE-1"))
    assert world.gateway.replies == [(Verdict.REJECTED, Reason.UNKNOWN_PAYMENT, False)]
    assert outcome.verdict is Verdict.REJECTED


def test_an_unconfirmed_notification_is_replied_to_once(tmp_path: Path) -> None:
    doubting = SpyGateway.with_trust(notification_settles=False)()
    assert isinstance(doubting, SpyGateway)
    world = World(tmp_path, doubting)
    try:
        ref = world.start()  # the provider still says pending: the "paid" is not confirmed
        outcome = world.receive(*doubting.notification(ref, S.PAID))
        assert doubting.replies == [(Verdict.REJECTED, Reason.STATUS_UNCONFIRMED, False)]
        assert outcome.reason is Reason.STATUS_UNCONFIRMED
    finally:
        world.ledger.close()


def test_a_body_too_large_is_refused_journalled_and_replied_to_once(world: World) -> None:
    app = make_wsgi_app(world.service, max_body=64)
    status, body, _ = wsgi(app, b"{" + b" " * 100 + b"}")
    assert status.startswith("413")
    assert body == b"rejected"
    assert world.gateway.replies == [(Verdict.REJECTED, Reason.TOO_LARGE, False)]
    assert world.journal()[-1] == ("rejected", "too_large")


def test_a_source_not_allowed_is_journalled_and_replied_to_once(world: World) -> None:
    app = make_wsgi_app(world.service, allowed_sources=["10.0.0.0/8"])
    status, body, _ = wsgi(app, b"{}", REMOTE_ADDR="192.0.2.7")
    assert status.startswith("403")
    assert body == b"rejected"
    assert world.gateway.replies == [(Verdict.REJECTED, Reason.SOURCE_NOT_ALLOWED, False)]
    assert world.journal() == [("rejected", "source_not_allowed")]


def test_a_ledger_that_is_down_gets_one_failure_reply_and_no_write(world: World) -> None:
    ref = world.start()
    world.gateway.settle(ref, S.PAID)
    journal = world.journal()
    body, headers = world.gateway.notification(ref, S.PAID)
    app = make_wsgi_app(world.service)
    world.ledger.down = True
    status, answer, _ = wsgi(app, body, HTTP_FAKE_SIGNATURE=headers["Fake-Signature"])
    world.ledger.down = False
    assert status.startswith("503")
    assert answer == b"rejected"
    assert world.gateway.replies == [(Verdict.REJECTED, Reason.LEDGER_UNAVAILABLE, False)]
    assert world.journal() == journal
    assert world.service.payment("spy", ref).status is S.PENDING


def test_a_refusal_while_the_ledger_is_down_is_still_replied_to_once(world: World) -> None:
    app = make_wsgi_app(world.service, allowed_sources=["10.0.0.0/8"])
    world.ledger.down = True
    status, _, _ = wsgi(app, b"{}", REMOTE_ADDR="192.0.2.7")
    world.ledger.down = False
    assert status.startswith("403")
    assert world.gateway.replies == [(Verdict.REJECTED, Reason.SOURCE_NOT_ALLOWED, False)]


# -- returns by GET and by POST ---------------------------------------------------------------


def test_a_return_posted_as_a_form_works_through_the_wsgi_app(world: World) -> None:
    ref = world.start()
    world.gateway.settle(ref, S.PAID)
    form = urlencode(world.gateway.return_query(ref, S.PAID)).encode()
    app = make_wsgi_app(world.service, return_page="/thanks")
    status, _, headers = wsgi(
        app,
        form,
        PATH_INFO="/return/spy",
        CONTENT_TYPE="application/x-www-form-urlencoded",
    )
    assert status.startswith("303")
    assert headers["Location"].startswith("/thanks?")
    assert "status=paid" in headers["Location"]
    assert f"reference={ref}" in headers["Location"]
    assert world.service.payment("spy", ref).status is S.PAID  # by the inquiry it triggered


def test_a_return_by_get_still_works_through_the_wsgi_app(world: World) -> None:
    ref = world.start()
    query = urlencode(world.gateway.return_query(ref, S.PENDING))
    app = make_wsgi_app(world.service)
    status, _, headers = wsgi(
        app, REQUEST_METHOD="GET", PATH_INFO="/return/spy", QUERY_STRING=query
    )
    assert status.startswith("303")
    assert "status=pending" in headers["Location"]


# -- provider events --------------------------------------------------------------------------


def test_a_refund_event_is_journalled_acknowledged_and_delivered_once(world: World) -> None:
    ref = world.start()
    world.recorder.events.clear()
    body, headers = world.gateway.event("refund.created", ref, amount=Money("4.00", "USD"))
    outcome = world.receive(body, headers)
    assert (outcome.verdict, outcome.reason) == (Verdict.EVENT, Reason.NONE)
    assert outcome.acknowledgement.accepted
    assert world.gateway.replies == [(Verdict.EVENT, Reason.NONE, True)]
    delivered = world.recorder.of_kind(EventKind.PROVIDER_EVENT)
    assert [(e.provider_kind, e.event_amount, e.merchant_reference) for e in delivered] == [
        ("refund.created", Money("4.00", "USD"), ref)
    ]
    assert delivered[0].status is S.PENDING
    assert world.journal()[-1] == ("event", "refund.created")
    assert world.service.payment("spy", ref).status is S.PENDING


def test_a_redelivered_provider_event_is_acknowledged_and_not_delivered_twice(
    world: World,
) -> None:
    ref = world.start()
    body, headers = world.gateway.event("refund.created", ref)
    world.receive(body, headers)
    again = world.receive(body, headers)
    assert again.verdict is Verdict.DUPLICATE
    assert again.acknowledgement.accepted
    assert len(world.recorder.of_kind(EventKind.PROVIDER_EVENT)) == 1
    assert world.journal()[-1] == ("duplicate", "refund.created")
    transitions = world.ledger.transitions(world.service.payment("spy", ref).id or 0)
    assert [t.to_status for t in transitions] == [S.PENDING]  # only the create's


def test_a_provider_event_never_becomes_a_status(world: World) -> None:
    ref = world.start()
    world.gateway.settle(ref, S.PAID)
    world.receive(*world.gateway.notification(ref, S.PAID))
    world.receive(*world.gateway.event("chargeback.opened", ref))
    assert world.service.payment("spy", ref).status is S.PAID
    kinds = [e.kind for e in world.recorder.events]
    assert kinds.count(EventKind.PAID) == 1
    assert kinds.count(EventKind.PROVIDER_EVENT) == 1


def test_a_provider_event_for_an_unknown_payment_is_not_delivered(
    world: World, tmp_path: Path
) -> None:
    ref = world.start()
    body, headers = world.gateway.event("refund.created", ref)
    (tmp_path / "other").mkdir()
    other = World(tmp_path / "other", world.gateway)  # a ledger that never saw the payment
    try:
        outcome = other.receive(body, headers)
        assert (outcome.verdict, outcome.reason) == (Verdict.REJECTED, Reason.UNKNOWN_PAYMENT)
        assert other.recorder.of_kind(EventKind.PROVIDER_EVENT) == []
        assert other.journal() == [("rejected", "unknown_payment")]
    finally:
        other.ledger.close()


# -- enums ------------------------------------------------------------------------------------


def test_every_state_machine_reason_is_a_reason_member() -> None:
    """Every (current, reported) pair that decides REVIEW or IGNORE has its Reason."""
    values = {reason.value for reason in Reason}
    for current in S:
        for reported in S:
            if decide(current, reported) in (Decision.REVIEW, Decision.IGNORE):
                assert f"{reported.value}_after_{current.value}" in values


def test_verdicts_compare_equal_to_their_strings() -> None:
    assert Verdict.APPLIED == "applied"
    assert Reason.NONE == ""
    assert not Reason.NONE
