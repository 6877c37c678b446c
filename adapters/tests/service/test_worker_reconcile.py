"""Two ``gateway worker`` processes reconcile over the Faspay emulator (loopback HTTP, the
emulator's pytest fixtures) on one PostgreSQL schema: the notifications of the bills paid at
the emulator never reached the merchant (no notification URL), and the workers settle them
while they run. Each payment is inquired exactly once across both workers (a claimed payment
is left alone by everyone for ``reconcile_lease_seconds``), and each paid order's hook runs
once."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from worker_support import WorkerProcess, deliveries, wait_until, write_config

from gateway_core import Customer, Money, PaymentRequest, PaymentStatus, Settings
from gateway_core._runtime import build_runtime
from gateway_core.ledger import Ledger

pytestmark = pytest.mark.postgres

PAYMENTS = 12
PAID = 8


@pytest.fixture
def pg_store(suite: Any) -> Iterator[Any]:
    suite.require_postgres()
    schema = f"gw_worker_{uuid.uuid4().hex[:12]}"
    try:
        yield suite.Store("postgres", suite.POSTGRES_URL, schema)
    finally:
        suite.drop_schema(schema)


def _open_payments(settings: Settings) -> list[Any]:
    """Create the payments through the emulator (from this process); all pending."""
    runtime = build_runtime(settings, environ={})
    try:
        records = []
        for n in range(PAYMENTS):
            started = runtime.service.start_payment(
                "dana",
                PaymentRequest(
                    order_reference=f"W-{n}",
                    amount=Money(str(1000 + n), "IDR"),
                    customer=Customer("Budi", email="budi@example.com", phone="081234567890"),
                    description=f"Order W-{n}",
                    return_url="http://127.0.0.1:9/return/dana",
                ),
            )
            assert started.payment.status is PaymentStatus.PENDING
            records.append(started.payment)
        return records
    finally:
        runtime.close()


def test_two_workers_settle_lost_notifications_inquiring_each_payment_once(
    pg_store: Any, faspay_emulator: Any, faspay_merchant: dict[str, str], tmp_path: Path
) -> None:
    dana = {"provider": "faspay_dana", **faspay_merchant, "read_timeout": 2.0, "max_retries": 0}
    tables: dict[str, dict[str, Any]] = {
        "ledger": {"url": pg_store.url},
        "service": {"reconcile_grace_seconds": 0},
        "providers.dana": dana,
        "worker": {
            "tick_seconds": 0.05,
            "reconcile_interval_seconds": 0.05,
            "reconcile_batch": 3,
            "inquiry_rate": 4,
            "inquiry_burst": 2,
            "refunds": False,
        },
    }
    config = write_config(tmp_path / "gateway.toml", tables)
    records = _open_payments(Settings.load(config, environ={}))
    paid = {r.merchant_reference for r in records[:PAID]}
    for reference in paid:  # paid at the provider; the notification is lost
        faspay_emulator.app.pay(reference)
    before = faspay_emulator.app.request_counts().get("inquiry", 0)

    logs = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    workers: list[WorkerProcess] = []
    with pg_store.open() as ledger:

        def examined_all(ledger: Ledger = ledger) -> bool:
            found = [ledger.get_payment("dana", r.merchant_reference) for r in records]
            return all(r is not None and r.last_examined_at is not None for r in found) and (
                not ledger.outbox(delivered=False)
            )

        try:
            workers = [WorkerProcess(config, log) for log in logs]
            wait_until(examined_all, 60, "every payment examined and its events delivered")
            results = [worker.stop() for worker in workers]
        finally:
            for worker in workers:
                worker.kill()
        statuses = {
            r.merchant_reference: ledger.get_payment("dana", r.merchant_reference) for r in records
        }
    for code, _, err in results:
        assert code == 0, err
        assert "Traceback" not in err, err
    assert {ref for ref, r in statuses.items() if r and r.status is PaymentStatus.PAID} == paid
    assert all(
        r and r.status is PaymentStatus.PENDING for ref, r in statuses.items() if ref not in paid
    )
    # Every payment inquired once, by one of the two workers: never twice in a pass.
    assert faspay_emulator.app.request_counts().get("inquiry", 0) - before == PAYMENTS
    hooks = [d for d in deliveries(*logs) if d["kind"] == "paid"]
    assert Counter(d["order_reference"] for d in hooks) == Counter(
        r.order_reference for r in records[:PAID]
    )
    print(
        "paid hooks per worker:",
        [sum(d["kind"] == "paid" for d in deliveries(log)) for log in logs],
    )
