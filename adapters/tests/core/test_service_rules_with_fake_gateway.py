"""The payment service's money rules, tested with :class:`gateway_core.testing.FakeGateway`
(no Faspay, no HTTP): what a provider's trust declaration asks of the service, paid once per
order across gateways, provider answers checked against the ledger, requests refused before
anything is recorded. A real SQLite ledger.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway_core import (
    Customer,
    EventKind,
    InvalidRequest,
    LedgerError,
    Money,
    PaymentRequest,
    PaymentService,
    PaymentStatus,
    PluginHost,
)
from gateway_core.ledger import SQLiteLedger
from gateway_core.testing import FakeGateway, HookRecorder

S = PaymentStatus


class World:
    def __init__(self, tmp_path: Path, **gateways: FakeGateway) -> None:
        self.recorder = HookRecorder()
        host = PluginHost(entry_points=False, plugins=[self.recorder])
        self.ledger = SQLiteLedger(str(tmp_path / "ledger.db"))
        self.ledger.migrate()
        self.gateways = gateways
        self.service = PaymentService(gateways=gateways, ledger=self.ledger, hooks=host.hooks)

    def start(self, gateway: str, order: str, amount: str = "10.00", **changes: Any) -> Any:
        values: dict[str, Any] = {
            "order_reference": order,
            "amount": Money(amount, "USD"),
            "customer": Customer("Ana"),
            "description": order,
            "return_url": "https://shop.invalid/return",
        }
        values.update(changes)
        return self.service.start_payment(gateway, PaymentRequest(**values)).payment

    def notify(self, gateway: str, reference: str, status: S, **overrides: Any) -> Any:
        body, headers = self.gateways[gateway].notification(reference, status, **overrides)
        return self.service.handle_notification(gateway, body, headers)

    def status(self, gateway: str, reference: str) -> S:
        return self.service.payment(gateway, reference).status

    def kinds(self, kind: EventKind) -> list[str]:
        return [e.merchant_reference for e in self.recorder.of_kind(kind)]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = World(tmp_path, a=FakeGateway(merchant_id="m-a"), b=FakeGateway(merchant_id="m-b"))
    try:
        yield built
    finally:
        built.ledger.close()


def test_a_provider_whose_signature_settles_is_applied_without_an_inquiry(world: World) -> None:
    ref = world.start("a", "O-1").merchant_reference
    world.gateways["a"].settle(ref, S.PAID)
    outcome = world.notify("a", ref, S.PAID)
    assert (outcome.verdict, outcome.acknowledgement.accepted) == ("applied", True)
    assert "inquire" not in world.gateways["a"].calls
    assert world.kinds(EventKind.PAID) == [ref]


def test_a_provider_whose_signature_does_not_settle_is_confirmed_by_inquiry(
    tmp_path: Path,
) -> None:
    weak = FakeGateway.with_trust(notification_settles=False)(merchant_id="m-w")
    world = World(tmp_path, w=weak)
    ref = world.start("w", "O-2").merchant_reference

    lie = world.notify("w", ref, S.PAID)  # correctly signed, but the provider says pending
    assert (lie.verdict, lie.reason, lie.acknowledgement.accepted) == (
        "rejected",
        "status_unconfirmed",
        False,
    )
    assert world.status("w", ref) is S.PENDING
    assert weak.calls.count("inquire") == 1

    weak.settle(ref, S.PAID)
    truth = world.notify("w", ref, S.PAID)
    assert (truth.verdict, truth.acknowledgement.accepted) == ("applied", True)
    again = world.notify("w", ref, S.PAID)
    assert again.verdict == "duplicate"
    assert weak.calls.count("inquire") == 2  # a duplicate needs no inquiry
    assert world.kinds(EventKind.PAID) == [ref]


def test_an_order_is_paid_once_across_gateways(world: World) -> None:
    first = world.start("a", "O-3").merchant_reference
    second = world.start("b", "O-3").merchant_reference
    world.gateways["a"].settle(first, S.PAID)
    world.gateways["b"].settle(second, S.PAID)

    assert world.notify("a", first, S.PAID).verdict == "applied"
    twice = world.notify("b", second, S.PAID)

    assert (twice.verdict, twice.reason) == ("review", "paid_twice")
    assert world.kinds(EventKind.PAID) == [first]
    assert world.kinds(EventKind.NEEDS_REVIEW) == [second]
    with pytest.raises(LedgerError, match="already has a paid payment"):
        world.start("b", "O-3")


def test_an_inquiry_answer_with_another_paid_amount_is_a_review(world: World) -> None:
    ref = world.start("a", "O-4").merchant_reference
    world.gateways["a"].settle(ref, S.PAID, paid=Money("9.99", "USD"))
    record = world.service.inquire("a", ref)
    assert record.status is S.PENDING
    assert [e.reason for e in world.recorder.of_kind(EventKind.NEEDS_REVIEW)] == ["amount_mismatch"]
    assert world.kinds(EventKind.PAID) == []


def test_a_reference_the_provider_refuses_leaves_no_row(world: World) -> None:
    with pytest.raises(InvalidRequest):
        world.start("a", "O-5", merchant_reference="has spaces")
    assert world.ledger.payments_for_order("a", "O-5") == []
    assert "create" not in world.gateways["a"].calls
    assert world.start("a", "O-5").attempt == 1


def test_a_provider_refusal_closes_the_attempt_as_failed(world: World) -> None:
    world.gateways["a"].refuse_create.add("O-6-1")
    with pytest.raises(Exception, match="refused"):
        world.start("a", "O-6")
    (attempt,) = world.ledger.payments_for_order("a", "O-6")
    assert attempt.status is S.FAILED


def test_a_notification_for_another_merchant_is_a_review(world: World) -> None:
    ref = world.start("a", "O-7").merchant_reference
    outcome = world.notify("a", ref, S.PAID, merchant_id="someone-else")
    assert (outcome.verdict, outcome.reason) == ("review", "merchant_mismatch")
    assert world.status("a", ref) is S.PENDING
