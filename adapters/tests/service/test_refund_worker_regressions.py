"""Regression tests for six bugs a review found in refunds and the worker (each failed before
its fix), on a real SQLite file and a real PostgreSQL schema, against
:class:`gateway_core.testing.FakeGateway`: a reversal reported with a refund list is applied;
a dashboard refund left open is never sent as a new refund; open refunds of one gateway do not
starve another's; the worker settles refunds only under its fleet-wide lease; a re-opened
refund that fails again raises its event; a refund the provider keeps faulting on does not
stop the others.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway_core import (
    Customer,
    EventKind,
    InboundRequest,
    Money,
    OutcomeUnknown,
    Payment,
    PaymentRequest,
    PaymentService,
    PaymentStatus,
    PluginHost,
    ProviderTemporaryError,
    RefundReport,
    RefundRequest,
    RefundStatus,
    ServicePolicy,
    StatusReport,
    TransportError,
    Verdict,
)
from gateway_core._worker import REFUNDS_LEASE, Worker, WorkerConfig
from gateway_core.testing import FakeGateway, HookRecorder

S = PaymentStatus
R = RefundStatus


class DownFakeGateway(FakeGateway):
    """A provider whose inquiries fail while ``down`` is set."""

    down = False
    #: Refund keys the provider answers with an internal fault (``ProviderTemporaryError``).
    faulty_keys: frozenset[str] = frozenset()

    def refund(self, payment: Payment, request: RefundRequest) -> RefundReport:
        if request.key in self.faulty_keys:
            raise ProviderTemporaryError("internal fault, try later", provider=self.name)
        return super().refund(payment, request)

    def inquire(self, payment: Payment) -> StatusReport:
        if self.down:
            raise TransportError("provider down", provider=self.name)
        return super().inquire(payment)


class World:
    def __init__(self, store: Any) -> None:
        self.ledger = store.open()
        self.ledger.migrate()
        self.gateways = {"shop": DownFakeGateway(), "other": DownFakeGateway()}
        self.gateway = self.gateways["shop"]
        self.hooks = HookRecorder()
        self.now = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        host = PluginHost(entry_points=False, plugins=[self.hooks])
        self.service = PaymentService(
            gateways=dict(self.gateways),
            ledger=self.ledger,
            hooks=host.hooks,
            policy=ServicePolicy(reconcile_grace=timedelta(0)),
            clock=lambda: self.now,
            sleep=lambda _: None,
        )

    def paid(self, order: str, amount: str = "100000", gateway: str = "shop") -> str:
        request = PaymentRequest(
            order_reference=order,
            amount=Money(amount, "IDR"),
            customer=Customer("Sari"),
            description="Kopi",
            return_url="https://shop.example/back",
        )
        ref = self.service.start_payment(gateway, request).payment.merchant_reference
        self.gateways[gateway].settle(ref, S.PAID)
        self.notify(*self.gateways[gateway].notification(ref, S.PAID), gateway=gateway)
        assert self.service.payment(gateway, ref).status is S.PAID
        return ref

    def notify(self, body: bytes, headers: dict[str, str], gateway: str = "shop") -> Verdict:
        request = InboundRequest.post(body, headers)
        return self.service.receive_notification(gateway, request).verdict

    def unknown_refund(self, gateway: str, ref: str, key: str) -> None:
        self.gateways[gateway].lose_refund_answers = 1
        with pytest.raises(OutcomeUnknown):
            self.service.refund(gateway, ref, IDR("10000"), key=key)


@pytest.fixture
def world(any_store: Any) -> Iterator[World]:
    built = World(any_store)
    try:
        yield built
    finally:
        built.ledger.close()


def IDR(value: str) -> Money:
    return Money(value, "IDR")


def test_a_reversal_reported_with_the_refund_list_is_not_dropped(world: World) -> None:
    """Finding 1: ``_apply`` sends every report that carries a refund list for a
    paid/partially refunded payment to the refund branch, which ignores the reported status:
    a reversal (chargeback) of a partially refunded payment, reported with its refunds (as
    every inquiry of a refunded payment lists them), is never applied."""
    ref = world.paid("RV-1")
    world.service.refund("shop", ref, IDR("30000"), key="RV-1-r1")
    assert world.service.payment("shop", ref).status is S.PARTIALLY_REFUNDED
    world.gateway.settle(ref, S.REVERSED)  # the provider reverses it; its refund list stays
    world.service.inquire("shop", ref)
    # partially_refunded -> reversed is an allowed transition (gateway_core/_state.py).
    assert world.service.payment("shop", ref).status is S.REVERSED


def test_a_dashboard_refund_left_open_is_never_sent_again_as_a_new_refund(
    world: World,
) -> None:
    """Finding 2: a refund made at the provider (no key) is recorded under
    ``provider:<id>`` as ``requested`` and settled in a second transaction. When the
    process dies (or the ledger fails) between the two, ``settle_refunds`` does not
    recognise it in the inquiry's list (it compares the raw keys, ``""``) and *sends* it
    to the provider under the key ``provider:<id>``: a second, real refund."""
    ref = world.paid("DB-1")
    world.gateway.refund_at_provider(ref, IDR("20000"), "rf-dash-1")
    record = world.service.payment("shop", ref)
    assert record.id is not None
    # The first of apply_refund_reports' two transactions, as it leaves the ledger when the
    # second one does not happen.
    world.ledger.request_refund(
        record.id,
        refund_key="provider:rf-dash-1",
        amount=IDR("20000"),
        provider_reference="rf-dash-1",
    )
    world.service.settle_refunds(grace=timedelta(0))
    provider_refunds = world.gateway.bill(ref)["refunds"]
    assert [r["id"] for r in provider_refunds] == ["rf-dash-1"], provider_refunds
    assert world.gateway.calls.count("refund") == 0
    (refund,) = world.service.refunds("shop", ref)
    assert refund.status is R.SUCCEEDED


def test_open_refunds_of_one_gateway_do_not_starve_another_gateways(world: World) -> None:
    """Finding 3: ``refunds_to_settle`` takes the oldest open refunds of *every* gateway
    (``LIMIT``) and ``settle_refunds`` filters by gateway afterwards; a refund that stays
    open (its provider down, or ``pending``) keeps its ``updated_at`` and so its place at
    the head. The worker calls ``settle_refunds(gateway_names=[name], limit=...)`` per
    gateway: with ``limit`` open refunds on one gateway, the others' are never examined."""
    shop_ref = world.paid("ST-1")
    other_ref = world.paid("ST-2", gateway="other")
    world.unknown_refund("shop", shop_ref, "ST-1-r1")  # older
    world.now += timedelta(seconds=1)
    world.unknown_refund("other", other_ref, "ST-2-r1")
    world.gateways["shop"].down = True  # the shop provider's inquiries fail for a while
    for _ in range(3):  # three worker passes, per gateway as Worker._refunds does
        for name in ("shop", "other"):
            world.service.settle_refunds(gateway_names=[name], limit=1)
    (other,) = world.service.refunds("other", other_ref)
    assert other.status is R.SUCCEEDED


def test_the_worker_settles_refunds_only_under_the_fleet_lease(world: World) -> None:
    """Finding 4: ``Worker._reconcile`` calls ``service.reconcile``, which (in
    ``RefundingService.reconcile``) also runs ``settle_refunds``, in every worker, every
    reconcile interval: outside the ``worker:settle_refunds`` lease (docs/operations.md:
    "once per refund_interval_seconds across the fleet"), and its inquiries are not spent
    from the token bucket (``bucket.spend(report.examined - report.waiting)``)."""
    ref = world.paid("WL-1")
    world.unknown_refund("shop", ref, "WL-1-r1")
    # Another worker of the fleet holds the refunds job for the hour.
    assert world.ledger.acquire_lease(REFUNDS_LEASE, "worker-a", now=world.now, seconds=3600)
    world.gateway.calls.clear()
    worker = Worker(world.service, WorkerConfig(), holder="worker-b", clock=lambda: world.now)
    worker.run_pass()
    assert world.gateway.calls.count("inquire") == 0  # not this worker's turn
    (refund,) = world.service.refunds("shop", ref)
    assert refund.status is R.UNKNOWN


def test_a_reopened_refund_that_fails_again_raises_its_event(world: World) -> None:
    """Finding 5: ``refund_failed`` events are named by the refund key only
    (``_DISCRIMINATED`` in _service_core.py), and a failed refund asked again under its
    key is re-opened (``request_refund``): when it fails a second time its event has the
    id of the first one, ``ON CONFLICT DO NOTHING`` drops it, and the order system never
    hears of the second failure."""
    ref = world.paid("RF-1")
    world.gateway.settle(ref, S.PENDING)  # the provider refuses refunds for now
    first = world.service.refund("shop", ref, IDR("10000"), key="RF-1-r1")
    assert first.status is R.FAILED
    again = world.service.refund("shop", ref, IDR("10000"), key="RF-1-r1")
    assert again.status is R.FAILED
    world.service.deliver_events()
    assert len(world.hooks.of_kind(EventKind.REFUND_FAILED)) == 2


def test_one_refund_the_provider_keeps_faulting_does_not_stop_every_other(world: World) -> None:
    """Finding 6: ``_send_refund`` turns only ``ProviderRefused`` and transport errors into a
    status; any other ``GatewayError`` (``ProviderTemporaryError``, ``MalformedResponse``,
    ``ProviderConfigurationError``) escapes ``refund()`` leaving the refund ``requested``,
    and escapes ``settle_refunds`` (which catches only ``OutcomeUnknown`` around the
    re-send), ending the whole pass. The oldest open refund comes first in every pass, so
    while the provider faults on it no other open refund is ever settled."""
    first = world.paid("PF-1")
    second = world.paid("PF-2")
    world.gateway.faulty_keys = frozenset({"PF-1-r1"})
    with pytest.raises(OutcomeUnknown):  # it may have happened: unknown, never requested
        world.service.refund("shop", first, IDR("10000"), key="PF-1-r1")
    (stuck,) = world.service.refunds("shop", first)
    assert stuck.status is R.UNKNOWN
    world.now += timedelta(seconds=1)
    world.unknown_refund("shop", second, "PF-2-r1")
    for _ in range(3):  # three passes; the provider still faults on PF-1-r1
        with contextlib.suppress(ProviderTemporaryError):
            world.service.settle_refunds(grace=timedelta(0))
    (other,) = world.service.refunds("shop", second)
    assert other.status is R.SUCCEEDED
