"""Crash recovery: a worker process handling a paid notification is SIGKILLed at a chosen point
(``GATEWAY_CRASH_AT``); the ledger must hold what was committed and nothing else, and a later
process must finish the job exactly once, as the order system sees it.

The paid transition and its outbox event are committed in one write transaction, the event
leased to the committing process, which runs the hook after the commit and records the
delivery with its next write. So whatever a crash leaves behind is delivered by another
process once that lease (60 s) ends, or at once by a forced redelivery.

* ``after_commit``: the transition and its event are committed, the hook never ran.
  Redelivery (in-process, and ``gateway redeliver``) delivers it once after the lease; the
  provider's retry of the unacknowledged notification is a duplicate.
* ``before_ack``: committed, the hook ran, no acknowledgement left (the delivery mark was still
  waiting for a write). Re-sending the same notification is a duplicate, acknowledged with
  ``"00"``: one transition, one event, delivered again after the lease with the same id.
* ``after_hook``: the hook ran but its delivery was not recorded. Redelivery runs the hook
  again with the same ``event_id``; an order system that de-duplicates on it applies the
  payment once.

Every provider runs the same code (``provider``: ``faspay_dana``, ``midtrans_snap``, through
``provider_drivers``), on both backends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from provider_drivers import PROVIDERS, Driver, FaspayDriver, driver_for

from gateway_core import Customer, EventKind, Money, PaymentRequest, PaymentStatus, Settings
from gateway_core._runtime import build_runtime
from gateway_core.ledger import OutboxEvent
from gateway_core.testing import HookRecorder

HERE = Path(__file__).resolve().parent
WORKER = HERE / "workers" / "service_worker.py"
GATEWAY_SCRIPT = Path(sys.executable).with_name("gateway")
ORDER = "CRASH-1"


@pytest.fixture(params=PROVIDERS)
def driver(request: pytest.FixtureRequest, suite: Any) -> Driver:
    found = driver_for(request.param)
    if isinstance(found, FaspayDriver):
        found.password = suite.TEST_PASSWORD
    return found


@pytest.fixture
def emulator(driver: Driver) -> Iterator[Any]:
    _, server = driver.silent_emulator()
    try:
        yield server
    finally:
        server.stop()


class Scenario:
    """One created-and-paid payment, its signed paid notification, and the means to crash a
    worker process on it."""

    def __init__(self, driver: Driver, store: Any, emulator: Any, tmp: Path) -> None:
        self.driver = driver
        self.gateway = name = driver.gateway_name
        self.store = store
        self.tmp = tmp
        self.mapping: dict[str, Any] = {
            "ledger": {"url": store.url},
            "providers": {
                name: {
                    **driver.provider_settings(emulator.url),
                    "read_timeout": 2.0,
                    "deadline": 6.0,
                    "max_retries": 1,
                }
            },
        }
        # The parent's order system takes the "created" event, so what is left in the outbox
        # afterwards is only what the crashed workers leave.
        with self.runtime(HookRecorder()) as rt:
            started = rt.service.start_payment(
                name,
                PaymentRequest(
                    order_reference=ORDER,
                    amount=Money("15000", "IDR"),
                    customer=Customer("Budi", email="budi@example.com", phone="081234567890"),
                    description="Crash test order",
                    return_url=f"http://127.0.0.1:9/return/{name}",
                ),
            )
            self.record = started.payment
            assert self.record.status is PaymentStatus.PENDING
            provider = SimpleNamespace(emulator=emulator.app, gateway=rt.gateways[name])
            driver.pay(provider, self.record.merchant_reference)  # type: ignore[arg-type]
            self.body = driver.notification_for(
                provider,  # type: ignore[arg-type]
                self.record,
                PaymentStatus.PAID,
            )
        self.reference = self.record.merchant_reference
        self.paid_event_id = f"{name}:{self.reference}:paid"
        self.runs = 0

    def runtime(self, *plugins: object, **options: Any) -> Any:
        return build_runtime(
            Settings.from_mapping(self.mapping), plugins=plugins, environ={}, **options
        )

    def run_worker(self, crash_at: str | None) -> tuple[subprocess.CompletedProcess[str], Path]:
        """Handle the paid notification in a fresh process; the result and its hook log."""
        self.runs += 1
        spec_path = self.tmp / f"run-{self.runs}.json"
        hook_log = self.tmp / f"run-{self.runs}.hooks.jsonl"
        spec = {
            "settings": self.mapping,
            "gateway": self.gateway,
            "bodies": [self.body.decode("utf-8")],
            "hook_log": str(hook_log),
            "result": str(self.tmp / f"run-{self.runs}.result.json"),
        }
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        env = clean_env()
        if crash_at:
            env["GATEWAY_CRASH_AT"] = crash_at
        proc = subprocess.run(
            [sys.executable, str(WORKER), str(spec_path)],
            capture_output=True,
            text=True,
            env=env,
            cwd=str(self.tmp),
            timeout=60,
            check=False,
        )
        return proc, hook_log

    def result(self, run: int) -> dict[str, Any]:
        path = self.tmp / f"run-{run}.result.json"
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    def crash(self, point: str) -> list[dict[str, Any]]:
        """Crash a worker at ``point``; the hook deliveries it logged before dying."""
        proc, hook_log = self.run_worker(point)
        assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr)
        assert proc.returncode == -9
        assert not (self.tmp / f"run-{self.runs}.result.json").exists()
        if not hook_log.exists():
            return []
        return [json.loads(line) for line in hook_log.read_text(encoding="utf-8").splitlines()]

    def ledger_view(self) -> tuple[Any, list[Any], list[Any]]:
        """The payment, its paid transitions and its paid outbox events, as stored."""
        ledger = self.store.open()
        try:
            record = ledger.get_payment(self.gateway, self.reference)
            assert record is not None
            paid = [t for t in ledger.transitions(record.id) if t.to_status is PaymentStatus.PAID]
            events = [e for e in ledger.outbox(payment_id=record.id) if e.kind is EventKind.PAID]
            return record, paid, events
        finally:
            ledger.close()

    def config_file(self) -> Path:
        provider = self.mapping["providers"][self.gateway]
        lines = ["[ledger]", f"url = {json.dumps(self.store.url)}", ""]
        lines += [f"[providers.{self.gateway}]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in provider.items()]
        path = self.tmp / "gateway.toml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


def clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_", "FASPAY_", "MIDTRANS_")) or k == "GATEWAY_TEST_POSTGRES"
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def scenario(driver: Driver, any_store: Any, emulator: Any, tmp_path: Path) -> Scenario:
    return Scenario(driver, any_store, emulator, tmp_path)


def _assert_committed_not_delivered(scenario: Scenario) -> None:
    record, paid, events = scenario.ledger_view()
    assert record.status is PaymentStatus.PAID
    assert len(paid) == 1
    assert paid[0].from_status is PaymentStatus.PENDING
    assert paid[0].source == "notification"
    assert [e.event_id for e in events] == [scenario.paid_event_id]
    assert events[0].delivered_at is None


# -- K1: killed after the ledger commit, before any hook ---------------------------------------


def test_crash_after_commit_leaves_the_paid_event_for_redelivery(scenario: Scenario) -> None:
    hooks = scenario.crash("after_commit")
    assert hooks == []  # the hook never ran
    _assert_committed_not_delivered(scenario)
    _, _, events = scenario.ledger_view()
    assert events[0].attempts == 0

    recorder = HookRecorder()
    with scenario.runtime(recorder) as rt:
        # Leased to the dead worker, which was to deliver it after its commit...
        assert rt.service.redeliver().delivered == 0
        # Nothing acknowledged the provider, so it retries: a duplicate, acknowledged "00".
        outcome = rt.service.handle_notification(scenario.gateway, scenario.body, {})
        assert outcome.verdict == "duplicate"
        assert outcome.acknowledgement.accepted
        ack = outcome.acknowledgement
        assert scenario.driver.ack_ok(ack.status_code, ack.body.decode("utf-8"))
        assert recorder.events == []
    # ...until the lease ends.
    later = datetime.now(UTC) + timedelta(seconds=61)
    with scenario.runtime(recorder, clock=lambda: later) as rt:
        report = rt.service.redeliver()
        assert (report.delivered, report.failed) == (1, 0)
        assert [e.event_id for e in recorder.events] == [scenario.paid_event_id]
        assert recorder.effects == {(ORDER, EventKind.PAID): 1}
        assert rt.ledger.outbox(delivered=False) == []
        assert rt.service.redeliver(force=True).delivered == 0
    assert len(recorder.events) == 1
    record, paid, events = scenario.ledger_view()
    assert record.status is PaymentStatus.PAID
    assert len(paid) == 1
    assert len(events) == 1
    assert events[0].delivered_at is not None


def test_crash_after_commit_then_cli_redeliver_reports_one(scenario: Scenario) -> None:
    scenario.crash("after_commit")
    _assert_committed_not_delivered(scenario)
    config = scenario.config_file()
    hook_log = scenario.tmp / "cli.hooks.jsonl"

    def gateway(*args: str) -> dict[str, Any]:
        env = clean_env()
        env["PYTHONPATH"] = str(WORKER.parent)
        env["GATEWAY_TEST_HOOK_LOG"] = str(hook_log)
        proc = subprocess.run(
            [
                str(GATEWAY_SCRIPT),
                "--plugin",
                "jsonl_hooks:OrderSystem",
                "--config",
                str(config),
                *list(args),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        assert scenario.driver.secret not in proc.stdout + proc.stderr
        data: dict[str, Any] = json.loads(proc.stdout)
        return data

    before = gateway("status", scenario.reference, "--json")
    assert before["payment"]["status"] == "paid"
    assert [(e["kind"], e["delivered"]) for e in before["events"]] == [
        ("created", True),
        ("paid", False),
    ]

    # Leased to the dead worker: a plain redelivery waits for the lease, a forced one not.
    assert gateway("redeliver", "--json") == {"delivered": 0, "failed": 0, "remaining": 1}
    assert gateway("redeliver", "--force", "--json") == {
        "delivered": 1,
        "failed": 0,
        "remaining": 0,
    }
    assert gateway("redeliver", "--json") == {"delivered": 0, "failed": 0, "remaining": 0}
    delivered = [json.loads(line) for line in hook_log.read_text().splitlines()]
    assert delivered == [{"event_id": scenario.paid_event_id, "kind": "paid"}]

    after = gateway("status", scenario.reference, "--json")
    assert [(e["kind"], e["delivered"]) for e in after["events"]] == [
        ("created", True),
        ("paid", True),
    ]
    assert [t["to"] for t in after["transitions"]] == ["pending", "paid"]


# -- K2: killed after the commit and the hook, before the acknowledgement left --------------------


def test_crash_before_ack_then_resent_notification_is_a_duplicate(scenario: Scenario) -> None:
    hooks = scenario.crash("before_ack")
    # The hook ran after the commit; its delivery mark was waiting for the next write.
    assert [h["event_id"] for h in hooks] == [scenario.paid_event_id]
    _assert_committed_not_delivered(scenario)

    # The provider saw no reply and sends the same notification to a restarted process.
    proc, hook_log = scenario.run_worker(None)
    assert proc.returncode == 0, proc.stderr
    [outcome] = scenario.result(scenario.runs)["outcomes"]
    assert outcome["verdict"] == "duplicate"
    assert outcome["accepted"] is True
    assert scenario.driver.ack_ok(outcome["status_code"], outcome["ack_body"])
    if isinstance(scenario.driver, FaspayDriver):  # Faspay's acknowledgement names the bill
        assert json.loads(outcome["ack_body"])["bill_no"] == scenario.reference
    assert not hook_log.exists()  # the dead worker's lease still holds the event

    # Once the lease ends, the event is delivered again, with the same id: at least once.
    order_system = HookRecorder()
    seen = hooks[0]
    order_system.gateway_payment_paid(
        OutboxEvent(
            event_id=seen["event_id"],
            payment_id=None,
            kind=EventKind(seen["kind"]),
            payload=seen["payload"],
        ).to_event()
    )
    later = datetime.now(UTC) + timedelta(seconds=61)
    with scenario.runtime(order_system, clock=lambda: later) as rt:
        assert rt.service.redeliver().delivered == 1
    assert [e.event_id for e in order_system.events] == [scenario.paid_event_id] * 2
    assert order_system.effects == {(ORDER, EventKind.PAID): 1}
    record, paid, events = scenario.ledger_view()
    assert record.status is PaymentStatus.PAID
    assert len(paid) == 1
    assert len(events) == 1
    assert events[0].delivered_at is not None


# -- K4: killed after the hook ran, before mark_delivered committed -----------------------------


def test_crash_after_hook_redelivers_the_same_event_id_applied_once(scenario: Scenario) -> None:
    hooks = scenario.crash("after_hook")
    # The order system received the paid event before the process died...
    assert [h["event_id"] for h in hooks] == [scenario.paid_event_id]
    assert hooks[0]["kind"] == "paid"
    # ...but the ledger never recorded the delivery.
    _assert_committed_not_delivered(scenario)

    # The order system remembers what it applied (its own store survived the crash).
    order_system = HookRecorder()
    seen = hooks[0]
    order_system.gateway_payment_paid(
        OutboxEvent(
            event_id=seen["event_id"],
            payment_id=None,
            kind=EventKind(seen["kind"]),
            payload=seen["payload"],
        ).to_event()
    )
    assert order_system.effects == {(ORDER, EventKind.PAID): 1}

    with scenario.runtime(order_system) as rt:
        # The dead worker's claim holds the event until its lease ends...
        assert rt.service.redeliver().delivered == 0
        # ...and a forced redelivery (or one after the lease) runs the hook again.
        report = rt.service.redeliver(force=True)
        assert (report.delivered, report.failed) == (1, 0)
        assert rt.ledger.outbox(delivered=False) == []

    assert [e.event_id for e in order_system.events] == [scenario.paid_event_id] * 2
    assert order_system.events[1].kind is EventKind.PAID
    assert order_system.events[1].merchant_reference == scenario.reference
    assert order_system.events[1].amount == Money("15000", "IDR")
    # Delivered twice, applied once.
    assert order_system.effects == {(ORDER, EventKind.PAID): 1}
    record, paid, events = scenario.ledger_view()
    assert record.status is PaymentStatus.PAID
    assert len(paid) == 1
    assert len(events) == 1
    assert events[0].delivered_at is not None


def test_crash_after_hook_event_is_redelivered_once_the_lease_ends(scenario: Scenario) -> None:
    """Without ``force``: a process whose clock is past the dead worker's lease claims it."""
    hooks = scenario.crash("after_hook")
    assert [h["event_id"] for h in hooks] == [scenario.paid_event_id]
    recorder = HookRecorder()
    later = datetime.now(UTC) + timedelta(seconds=61)
    with scenario.runtime(recorder, clock=lambda: later) as rt:
        report = rt.service.redeliver()
        assert (report.delivered, report.failed) == (1, 0)
    assert [e.event_id for e in recorder.events] == [scenario.paid_event_id]
