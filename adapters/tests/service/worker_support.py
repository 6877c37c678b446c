"""Helpers for the ``gateway worker`` tests: seeding a ledger with open payments and an outbox
backlog, writing a configuration file, and running ``gateway worker`` as an OS process (with
the ``workers/worker_hooks.py`` order-system plugin) that only this test ever signals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway_core import EventKind, Money, PaymentStatus
from gateway_core._events import PaymentEvent
from gateway_core.ledger import Ledger, OutboxEvent, PaymentRecord

WORKERS_DIR = Path(__file__).resolve().parent / "workers"
LONG_AGO = datetime.now(UTC) - timedelta(hours=1)


def open_payment(ledger: Ledger, reference: str, *, gateway: str = "stub") -> PaymentRecord:
    """A pending payment with a provider transaction id, unchanged for an hour."""
    return ledger.insert_payment(
        PaymentRecord(
            id=None,
            gateway=gateway,
            provider="stub",
            order_reference=f"order-{reference}",
            merchant_reference=reference,
            provider_reference=f"trx-{reference}",
            status=PaymentStatus.PENDING,
            amount=Money("10.00", "USD"),
            merchant_id="m",
            expires_at=LONG_AGO + timedelta(days=30),
            created_at=LONG_AGO,
            updated_at=LONG_AGO,
        )
    )


def seed_backlog(ledger: Ledger, count: int, *, prefix: str = "EV") -> list[str]:
    """``count`` payments, each with one undelivered ``paid`` event; the event ids."""
    ids = []
    for n in range(count):
        record = open_payment(ledger, f"{prefix}-{n}")
        assert record.id is not None
        event = PaymentEvent(
            event_id=f"stub:{record.merchant_reference}:paid",
            kind=EventKind.PAID,
            provider="stub",
            order_reference=record.order_reference,
            merchant_reference=record.merchant_reference,
            status=PaymentStatus.PAID,
            amount=record.amount,
            occurred_at=LONG_AGO,
            gateway_name="stub",
        )
        ledger.commit_record(
            gateway="stub", events=[OutboxEvent.from_event(event, record.id, now=LONG_AGO)]
        )
        ids.append(event.event_id)
    return ids


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a TOML basic string


def write_config(path: Path, tables: Mapping[str, Mapping[str, Any]]) -> Path:
    """A TOML file of ``{"ledger": {...}, "worker": {...}, "providers.dana": {...}}``."""
    lines = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


class WorkerProcess:
    """``gateway --config FILE --plugin worker_hooks:plugin worker``, started at once."""

    def __init__(
        self, config: Path, hook_log: Path, *, delay: float = 0.0, extra: tuple[str, ...] = ()
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "FASPAY_"))}
        env.update(
            PYTHONUNBUFFERED="1", WORKER_HOOK_LOG=str(hook_log), WORKER_HOOK_DELAY=str(delay)
        )
        self.hook_log = hook_log
        command = [sys.executable, "-m", "gateway_core.cli", "--config", str(config)]
        command += ["--plugin", "worker_hooks:plugin", "worker", "--health-port", "0", *extra]
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(WORKERS_DIR),
        )
        assert self.proc.stdout is not None
        banner = self.proc.stdout.readline()
        found = re.search(r"health on (http://[0-9.]+:[0-9]+)/healthz", banner)
        if found is None:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=30)
            raise AssertionError(f"worker did not start: {banner!r}\n{err}")
        self.health_url = found.group(1)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signum)

    def stop(self, timeout: float = 30.0) -> tuple[int, str, str]:
        """SIGTERM, then wait; (exit code, stdout, stderr)."""
        self.signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=30)


def deliveries(*logs: Path) -> list[dict[str, Any]]:
    """Every delivery the hook plugin recorded in these files."""
    found = []
    for log in logs:
        if log.exists():
            found += [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    return found


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail the test (not a timing assertion: a ceiling
    on how long a broken worker may hang the run) when it never does."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.05)
