"""Shared helpers of the benchmark scripts (``bench_*.py``): statistics, the result table,
CPU pinning, the Faspay test merchant, and the Faspay emulator the notification benchmarks
confirm against (the service confirms every first Faspay notification by an inquiry).

The scripts report; they never assert. Every goal is a ratio against a baseline measured in
the same run, interleaved (ABAB...), and the medians are compared (reliability plan §6.3).
"""

from __future__ import annotations

import logging
import os
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MERCHANT_ID = "99999"
MERCHANT_NAME = "Bench Store"
PASSWORD = "bench-not-a-secret-pw"  # a fake value for loopback benchmarks only


def gateway_settings(base_url: str = "http://127.0.0.1:9", **extra: Any) -> dict[str, Any]:
    """Settings of the benchmark merchant's ``faspay_dana`` gateway."""
    return {
        "merchant_id": MERCHANT_ID,
        "merchant_name": MERCHANT_NAME,
        "password": PASSWORD,
        "base_url": base_url,
        **extra,
    }


def faspay_gateway(base_url: str = "http://127.0.0.1:9") -> Any:
    """The benchmark merchant's ``FaspayDanaGateway``."""
    from gateway_faspay_dana import FaspayDanaGateway

    return FaspayDanaGateway.from_config(gateway_settings(base_url), environ={})


def bill(i: int) -> tuple[str, str]:
    """``(bill_no, trx_id)`` of the synthetic bill ``i`` (P4 only: nothing is recorded). The
    bill number ends in a letter, as every reference the service records must."""
    return f"N{i:08d}-1P", f"99999819{i:08d}"


def notification_bodies(gateway: Any, bills: Sequence[tuple[str, str]]) -> list[bytes]:
    """Realistic paid notifications (JSON, signed) for ``bills`` (``(bill_no, trx_id)``)."""
    from gateway_faspay_dana.testing import signed_notification

    bodies = []
    for i, (bill_no, trx_id) in enumerate(bills):
        bodies.append(
            signed_notification(
                gateway,
                bill_no=bill_no,
                trx_id=trx_id,
                status="2",
                amount=200000,
                payment_date="2026-01-02 10:11:12",
                payment_reff=f"2026010200{i:06d}",
            )
        )
    return bodies


def settling_gateway_class() -> Any:
    """``FaspayDanaGateway`` with ``notification_settles=True``: the service applies a signed
    notification without confirming it by inquiry (the behaviour before issue 9). Only the
    baseline of the confirmation-cost benchmark uses it."""
    import attrs

    from gateway_faspay_dana import FaspayDanaGateway

    class SettlingFaspayGateway(FaspayDanaGateway):
        trust = attrs.evolve(FaspayDanaGateway.trust, notification_settles=True)

    return SettlingFaspayGateway


def settling_gateway(base_url: str = "http://127.0.0.1:9") -> Any:
    """The benchmark merchant's gateway without confirmation by inquiry."""
    return settling_gateway_class().from_config(gateway_settings(base_url), environ={})


def emulator_app() -> Any:
    """A Faspay emulator with the benchmark merchant. The merchant has no
    ``notification_url``: a payment makes a notification that is recorded, never sent (the
    benchmark delivers the notifications itself). The request log holds every request of a
    run, so inquiries can be counted with ``requests_log("inquiry")``."""
    from gateway_faspay_dana.emulator import EmulatorApp, Merchant

    merchant = Merchant(MERCHANT_ID, merchant_name=MERCHANT_NAME, password=PASSWORD)
    return EmulatorApp(merchant, request_log_limit=1_000_000)


def start_emulator() -> Any:
    """An :class:`EmulatorServer` on a free loopback port, started (``.stop()`` it)."""
    from gateway_faspay_dana.emulator import EmulatorServer

    return EmulatorServer(emulator_app()).start()


def _order_system() -> object:
    """A do-nothing order system, so hook delivery has an implementation to call."""
    from gateway_core import hookimpl

    class OrderSystem:
        @hookimpl
        def gateway_payment_paid(self, event: Any) -> None:
            return None

    return OrderSystem()


def _service(ledger: Any, gateway: Any, *, inline_hooks: bool) -> Any:
    from gateway_core import PluginHost
    from gateway_core._service import PaymentService

    return PaymentService(
        gateways={"dana": gateway},
        ledger=ledger,
        hooks=PluginHost(entry_points=False, plugins=[_order_system()]).hooks,
        deliver_after_commit=inline_hooks,
    )


def paid_payments(
    template: Path, gateway: Any, count: int, pay: Callable[[str], object]
) -> list[tuple[str, str]]:
    """Create ``count`` payments through ``PaymentService.start_payment`` on a fresh
    ``SQLiteLedger`` at ``template`` (``gateway`` points at the emulator, which creates the
    bills), then pay each at the emulator with ``pay(bill_no)`` (its notification is recorded,
    not sent). Returns the ``(bill_no, trx_id)`` of each: ``<order>-1P`` and the emulator's
    ``trx_id``. The payments stay pending in the ledger; copy it with
    :func:`service_with_payments` for each run."""
    from gateway_core import Customer, Money, PaymentRequest, PaymentStatus
    from gateway_core.ledger import SQLiteLedger

    ledger = SQLiteLedger(template, synchronous="NORMAL")
    ledger.migrate()
    service = _service(ledger, gateway, inline_hooks=True)
    customer = Customer("Budi", email="budi@example.com", phone="081234567890")
    bills = []
    try:
        for i in range(count):
            order = f"O{i:08d}"
            started = service.start_payment(
                "dana",
                PaymentRequest(
                    order_reference=order,
                    amount=Money("2000", "IDR"),
                    customer=customer,
                    description=f"Order {order}",
                    return_url="http://127.0.0.1:9/return/dana",
                ),
            )
            record = started.payment
            if record.status is not PaymentStatus.PENDING or not record.provider_reference:
                raise RuntimeError(f"payment {order} not created: {record!r}")
            pay(record.merchant_reference)
            bills.append((record.merchant_reference, record.provider_reference))
    finally:
        ledger.close()
    return bills


def service_with_payments(
    path: Path,
    gateway: Any,
    template: Path,
    *,
    inline_hooks: bool = True,
    synchronous: str = "NORMAL",
) -> Any:
    """A ``PaymentService`` on a fresh ``SQLiteLedger`` (``synchronous``) at ``path``,
    a copy of ``template`` (made by :func:`paid_payments`: pending payments whose bills exist,
    paid, at the emulator), with a do-nothing order system."""
    from gateway_core.ledger import SQLiteLedger

    source = sqlite3.connect(template)
    target = sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    ledger = SQLiteLedger(path, synchronous=synchronous)  # explicit: the default is FULL
    ledger.migrate()
    return _service(ledger, gateway, inline_hooks=inline_hooks)


def quiet_logging() -> None:
    """No stderr noise from the library's warnings (a handler on the root logger)."""
    logging.getLogger().addHandler(logging.NullHandler())
    logging.getLogger("waitress").setLevel(logging.ERROR)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in [0, 1])."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def spread(values: Sequence[float], digits: int = 2) -> str:
    """``min–max`` of the per-round values, for the table's notes."""
    if not values:
        return "-"
    return f"{min(values):.{digits}f}–{max(values):.{digits}f}"


def pin(cpu: int | None) -> str:
    """Pin this process to ``cpu`` when the machine has it; a note for the report."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return "not pinned"
    try:
        available = os.sched_getaffinity(0)
        if cpu not in available or len(available) < 2:
            return "not pinned"
        os.sched_setaffinity(0, {cpu})
    except OSError:
        return "not pinned"
    return f"pinned to CPU {cpu}"


def machine_note() -> str:
    cpus = os.cpu_count() or 0
    try:
        load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        load = "?"
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.system()} {platform.machine()}, {cpus} CPUs "
        f"(shared, noisy), load average {load}"
    )


class Table:
    """The printed result table: metric, baseline median, candidate median, ratio, goal."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.rows: list[tuple[str, str, str, str, str]] = []
        self.notes: list[str] = []

    def row(
        self,
        metric: str,
        baseline: str,
        candidate: str,
        ratio: str,
        goal: str,
    ) -> None:
        self.rows.append((metric, baseline, candidate, ratio, goal))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def render(self) -> str:
        header = ("metric", "baseline (median)", "candidate (median)", "ratio", "goal")
        widths = [max(len(r[i]) for r in [header, *self.rows]) for i in range(5)]

        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

        out = [f"## {self.title}", "", f"_{machine_note()}_", ""]
        out.append(line(header))
        out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        out += [line(r) for r in self.rows]
        if self.notes:
            out.append("")
            out += [f"- {n}" for n in self.notes]
        return "\n".join(out)

    def print(self) -> None:
        sys.stdout.write(self.render() + "\n")
        sys.stdout.flush()


def verdict(ratio: float, goal: float, *, at_most: bool) -> str:
    """``ratio`` formatted with whether it meets ``goal``."""
    met = ratio <= goal if at_most else ratio >= goal
    return f"{ratio:.2f}× ({'met' if met else 'MISSED'})"


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``."""

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
