"""Several OS processes, each with its own PaymentService, share one ledger (the same SQLite
file, or the same PostgreSQL schema) and apply the same paid notifications at the same time.

The parent creates the payments through the provider's emulator, pays them there, and hands
the signed paid notifications to every worker (``workers/service_worker.py``) in a spec file.
Workers build their runtimes, report ``ready`` and wait on stdin; the parent releases them
all at once. Every payment must be paid exactly once (one transition, one paid outbox event),
every notification acknowledged with success, and the paid hook delivered exactly once across
all workers: outbox claims are exclusive within the lease. Both backends run (``any_store``);
PostgreSQL is skipped, with the reason, only when ``require_postgres()`` finds it unreachable.

Every provider runs the same code (``provider``: ``faspay_dana``, ``midtrans_snap``, through
``provider_drivers``). For Midtrans each worker also confirms each notification with Get Status
at the emulator (its signature does not cover the status) before applying it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from provider_drivers import PROVIDERS, Driver, FaspayDriver, driver_for
from worker_pool import run_workers

from gateway_core import EventKind, PaymentStatus, Settings
from gateway_core._runtime import build_runtime
from gateway_core.testing import HookRecorder

WORKERS = 4
PAYMENTS = 10


@pytest.fixture(params=PROVIDERS)
def driver(request: pytest.FixtureRequest, suite: Any) -> Driver:
    found = driver_for(request.param)
    if isinstance(found, FaspayDriver):
        found.password = suite.TEST_PASSWORD
    return found


@pytest.fixture
def emulator(driver: Driver) -> Iterator[Any]:
    """The provider's emulator; notifications are recorded, not sent (the test delivers them)."""
    _, server = driver.silent_emulator()
    try:
        yield server
    finally:
        server.stop()


def _settings(driver: Driver, ledger_url: str, emulator_url: str) -> dict[str, Any]:
    return {
        "ledger": {"url": ledger_url},
        "providers": {
            driver.gateway_name: {
                **driver.provider_settings(emulator_url),
                "read_timeout": 2.0,
                "deadline": 6.0,
                "max_retries": 1,
            }
        },
    }


def _prepare(
    driver: Driver, store: Any, emulator: Any, *, count: int = PAYMENTS
) -> tuple[dict[str, Any], list[Any], list[str]]:
    """Create and pay ``count`` payments; the settings, the records and the paid bodies."""
    gateway_name = driver.gateway_name
    mapping = _settings(driver, store.url, emulator.url)
    recorder = HookRecorder()
    runtime = build_runtime(Settings.from_mapping(mapping), plugins=[recorder], environ={})
    try:
        service = runtime.service
        gateway = runtime.gateways[gateway_name]
        records = []
        bodies = []
        for n in range(count):
            started = service.start_payment(
                gateway_name,
                _request(gateway_name, f"PROC-{n}", amount=str(2000 + 500 * n)),
            )
            record = started.payment
            assert record.status is PaymentStatus.PENDING
            assert record.provider_reference
            provider = SimpleNamespace(emulator=emulator.app, gateway=gateway)
            driver.pay(provider, record.merchant_reference)  # type: ignore[arg-type]
            body = driver.notification_for(
                provider,  # type: ignore[arg-type]
                record,
                PaymentStatus.PAID,
            )
            # The notification the parent hands out is the one its own gateway accepts.
            assert gateway.handle_notification(body, {}).merchant_reference == (
                record.merchant_reference
            )
            records.append(record)
            bodies.append(body.decode("utf-8"))
        # The created events were delivered here, so workers only see paid events.
        assert recorder.kinds() == [EventKind.CREATED] * count
        assert runtime.ledger.outbox(delivered=False) == []
    finally:
        runtime.close()
    return mapping, records, bodies


def _request(gateway: str, order: str, *, amount: str) -> Any:
    from gateway_core import Customer, Money, PaymentRequest

    return PaymentRequest(
        order_reference=order,
        amount=Money(amount, "IDR"),
        customer=Customer("Budi", email="budi@example.com", phone="081234567890"),
        description=f"Order {order}",
        return_url=f"http://127.0.0.1:9/return/{gateway}",
    )


def test_processes_apply_the_same_notifications_once(
    driver: Driver, any_store: Any, emulator: Any, tmp_path: Path
) -> None:
    gateway_name = driver.gateway_name
    mapping, records, bodies = _prepare(driver, any_store, emulator)
    results = run_workers(
        mapping, bodies, tmp_path, workers=WORKERS, gateway=gateway_name, deliver=True
    )

    # Every handle_notification in every worker was acknowledged with success (Faspay "00",
    # Midtrans a 2xx).
    outcomes = [o for r in results for o in r["outcomes"]]
    assert len(outcomes) == WORKERS * PAYMENTS
    for outcome in outcomes:
        assert outcome["accepted"], outcome
        assert driver.ack_ok(outcome["status_code"], outcome["ack_body"]), outcome
        assert outcome["verdict"] in {"applied", "duplicate"}, outcome
    # Exactly one worker applied each payment; every other one saw a duplicate.
    applied = Counter(o["merchant_reference"] for o in outcomes if o["verdict"] == "applied")
    assert applied == Counter({r.merchant_reference: 1 for r in records})

    ledger = any_store.open()
    try:
        for record in records:
            fresh = ledger.get_payment(gateway_name, record.merchant_reference)
            assert fresh is not None
            assert fresh.status is PaymentStatus.PAID
            paid = [t for t in ledger.transitions(fresh.id) if t.to_status is PaymentStatus.PAID]
            assert len(paid) == 1, paid
            assert paid[0].from_status is PaymentStatus.PENDING
            events = ledger.outbox(payment_id=fresh.id)
            assert Counter(e.kind for e in events) == Counter(
                {EventKind.CREATED: 1, EventKind.PAID: 1}
            )
            assert all(e.delivered_at is not None for e in events), events
        assert ledger.outbox(delivered=False) == []
        counts = {status: n for status, n in ledger.counts_by_status().items() if n}
        assert counts == {PaymentStatus.PAID: PAYMENTS}
    finally:
        ledger.close()

    # The hooks: across all workers, each paid event was delivered exactly once.
    deliveries = [h for r in results for h in r["hooks"]]
    expected = {f"{gateway_name}:{r.merchant_reference}:paid" for r in records}
    assert Counter(h["event_id"] for h in deliveries) == Counter(dict.fromkeys(expected, 1))
    assert {h["kind"] for h in deliveries} == {"paid"}
    assert sorted(h["order_reference"] for h in deliveries) == sorted(
        r.order_reference for r in records
    )
    # Each delivery happened in the process that reported it.
    for result in results:
        assert {h["pid"] for h in result["hooks"]} <= {result["pid"]}


def test_processes_draining_one_outbox_deliver_each_event_once(
    driver: Driver, any_store: Any, emulator: Any, tmp_path: Path
) -> None:
    """Paid transitions committed without delivery (as after a crash) leave a backlog; several
    processes drain it a few events at a time, concurrently. Each event is claimed, and so
    delivered, by exactly one of them."""
    gateway_name = driver.gateway_name
    count = 16
    mapping, records, bodies = _prepare(driver, any_store, emulator, count=count)
    runtime = build_runtime(Settings.from_mapping(mapping), environ={}, deliver_after_commit=False)
    try:
        for body in bodies:
            outcome = runtime.service.handle_notification(gateway_name, body.encode(), {})
            assert (outcome.verdict, outcome.acknowledgement.accepted) == ("applied", True)
        backlog = runtime.ledger.outbox(delivered=False)
        assert len(backlog) == count
        assert {e.kind for e in backlog} == {EventKind.PAID}
    finally:
        runtime.close()

    results = run_workers(mapping, [], tmp_path, workers=WORKERS, gateway=gateway_name, drain=3)

    deliveries = [h for r in results for h in r["hooks"]]
    expected = {f"{gateway_name}:{r.merchant_reference}:paid" for r in records}
    assert Counter(h["event_id"] for h in deliveries) == Counter(dict.fromkeys(expected, 1))
    for result in results:
        assert sum(result["drain_passes"]) == len(result["hooks"])
    ledger = any_store.open()
    try:
        assert ledger.outbox(delivered=False) == []
        for event in ledger.outbox():
            assert event.attempts == 0  # nobody failed, nobody had to retry
    finally:
        ledger.close()
