"""Two gateways of two providers in one configuration: a Faspay gateway (``dana``) and a
Midtrans Snap gateway (``snap``), each with its own endpoints (``/notify/dana``,
``/notify/snap``: Midtrans is told its URL per payment by the ``notification_url`` setting), one
ledger (SQLite and PostgreSQL) and one order system. Over loopback HTTP against both emulators.

The shop takes one order on each and both are paid through their own provider; an order paid
on one provider cannot be paid on the other: ``start_payment`` refuses, and a payment made
anyway on the other provider (the customer paid both pages) is one ``paid_twice`` review, never
a second ``paid`` effect.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import attrs
import pytest
from provider_drivers import FaspayDriver, MerchantSite, MidtransDriver, ProviderStack

from gateway_core import EventKind, LedgerError, PaymentStatus, PluginHost, Settings
from gateway_core._runtime import build_runtime
from gateway_core._service import ServicePolicy
from gateway_core.testing import HookRecorder

S = PaymentStatus


@attrs.frozen
class Shop:
    """One runtime (one ledger, one order system) with a view per gateway."""

    dana: ProviderStack
    snap: ProviderStack

    @property
    def service(self) -> Any:
        return self.dana.service

    @property
    def recorder(self) -> HookRecorder:
        return self.dana.recorder

    def paid_effects(self, order: str) -> int:
        return int(self.recorder.effects.get((order, EventKind.PAID), 0))

    def reviews(self, order: str) -> list[tuple[str, str]]:
        seen: dict[str, tuple[str, str]] = {}
        for event in self.recorder.of_kind(EventKind.NEEDS_REVIEW):
            if event.order_reference == order:
                seen.setdefault(event.event_id, (event.merchant_reference, event.reason))
        return list(seen.values())


@pytest.fixture
def shop(any_store: Any, suite: Any) -> Iterator[Shop]:
    faspay, midtrans = FaspayDriver(suite.TEST_PASSWORD), MidtransDriver()
    site = MerchantSite()
    dana_app, dana_server = faspay.start_emulator(site.url)
    # The Midtrans dashboard's URL points elsewhere: the gateway sends its own per payment.
    snap_app, snap_server = midtrans.start_emulator("http://127.0.0.1:9")
    runtime = None
    try:
        limits = {"read_timeout": 2.0, "deadline": 6.0, "max_retries": 2}
        providers = {
            "dana": {**faspay.provider_settings(dana_server.url), **limits},
            "snap": {
                **midtrans.provider_settings(snap_server.url),
                **limits,
                "notification_url": f"{site.url}/notify/snap",
            },
        }
        recorder = HookRecorder()
        runtime = build_runtime(
            Settings(providers=providers, ledger_url=any_store.url),
            host=PluginHost(),
            plugins=[recorder],
            environ={},
            policy=ServicePolicy(reconcile_grace=timedelta(0)),
        )
        site.serve(runtime.service)

        def view(driver: Any, app: Any, server: Any, name: str) -> ProviderStack:
            return ProviderStack(
                driver, app, server.url, site.url, runtime, recorder, any_store, name, providers
            )

        yield Shop(
            view(faspay, dana_app, dana_server, "dana"),
            view(midtrans, snap_app, snap_server, "snap"),
        )
    finally:
        dana_server.stop()
        snap_server.stop()
        site.close()
        if runtime is not None:
            runtime.close()


def test_one_order_on_each_provider_is_paid_through_its_own_endpoints(shop: Shop) -> None:
    faspay_ref = shop.dana.start("ORDER-F").payment.merchant_reference
    snap_ref = shop.snap.start("ORDER-M").payment.merchant_reference

    for view, reference in ((shop.dana, faspay_ref), (shop.snap, snap_ref)):
        view.driver.pay(view, reference)
        view.wait()

    assert shop.dana.record(faspay_ref).status is S.PAID
    assert shop.snap.record(snap_ref).status is S.PAID
    # Each provider reached its own gateway's endpoint, and only that one.
    dana_urls = {d["url"] for d in shop.dana.emulator.deliveries(faspay_ref)}
    snap_urls = {d["url"] for d in shop.snap.emulator.deliveries(order_id=snap_ref)}
    assert dana_urls == {shop.dana.notify_url}
    assert snap_urls == {shop.snap.notify_url}
    # One ledger: both payments, each under its gateway and provider.
    payments = {
        (p.gateway, p.provider, p.order_reference, p.status)
        for name in ("dana", "snap")
        for p in shop.dana.ledger.list_payments(gateway=name, limit=10)
    }
    assert payments == {
        ("dana", "faspay_dana", "ORDER-F", S.PAID),
        ("snap", "midtrans_snap", "ORDER-M", S.PAID),
    }
    # One order system: one paid effect per order, the event ids naming their gateway.
    paid = shop.recorder.of_kind(EventKind.PAID)
    assert sorted(e.event_id for e in paid) == [
        f"dana:{faspay_ref}:paid",
        f"snap:{snap_ref}:paid",
    ]
    assert (shop.paid_effects("ORDER-F"), shop.paid_effects("ORDER-M")) == (1, 1)
    # A notification of one provider posted to the other gateway's endpoint is refused there.
    body = shop.snap.driver.notification_for(shop.snap, shop.snap.record(snap_ref), S.PAID)
    assert not shop.dana.driver.accepted(_post(shop.dana.notify_url, body))


def test_an_order_paid_on_one_provider_cannot_be_started_on_the_other(shop: Shop) -> None:
    reference = shop.dana.start("ORDER-X").payment.merchant_reference
    shop.dana.driver.pay(shop.dana, reference)
    shop.dana.wait()
    assert shop.dana.record(reference).status is S.PAID

    with pytest.raises(LedgerError, match="already has a paid payment"):
        shop.snap.start("ORDER-X")

    assert shop.snap.ledger.payments_for_order("snap", "ORDER-X") == []
    assert shop.snap.emulator.sessions() == []  # Midtrans was never asked
    # The other way round as well.
    other = shop.snap.start("ORDER-Y").payment.merchant_reference
    shop.snap.driver.pay(shop.snap, other)
    shop.snap.wait()
    with pytest.raises(LedgerError, match="already has a paid payment"):
        shop.dana.start("ORDER-Y")
    assert shop.dana.ledger.payments_for_order("dana", "ORDER-Y") == []


@pytest.mark.parametrize("first", ["dana", "snap"])
def test_an_order_paid_on_both_providers_is_paid_once_and_reviews_the_other(
    shop: Shop, first: str
) -> None:
    """The customer opened both providers' pages for one order and paid both: the first paid
    notification pays the order, the other provider's is a ``paid_twice`` review (that money
    is to be refunded), never a second ``paid`` effect."""
    views = {"dana": shop.dana, "snap": shop.snap}
    winner, loser = views[first], views["snap" if first == "dana" else "dana"]
    won = winner.start("ORDER-Z").payment.merchant_reference
    lost = loser.start("ORDER-Z").payment.merchant_reference

    winner.driver.pay(winner, won)
    winner.wait()
    loser.driver.pay(loser, lost)
    loser.wait()

    assert winner.record(won).status is S.PAID
    assert loser.record(lost).status is S.PENDING  # not a second paid
    assert shop.paid_effects("ORDER-Z") == 1
    assert [e.merchant_reference for e in shop.recorder.of_kind(EventKind.PAID)] == [won]
    reviews = shop.reviews("ORDER-Z")
    assert {reason for _, reason in reviews} == {"paid_twice"}
    assert {reference for reference, _ in reviews} == {lost}  # the payment to refund
    if loser.provider == "faspay_dana":
        assert len(reviews) == 1
    # The other provider's notifications were acknowledged (no retry storm).
    for delivery in loser.driver.deliveries(loser, lost, S.PAID):
        assert all(loser.driver.attempt_accepted(a) for a in delivery["attempts"])


def _post(url: str, body: bytes) -> Any:
    import requests

    return requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
