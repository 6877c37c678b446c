"""Rows P4 (verify + acknowledge), P5/P6 (first and duplicate deliveries through
``PaymentService`` on SQLite, FULL and NORMAL) and P7 (the webhook endpoint under load), for
two providers:

* ``faspay+inquiry`` — the Faspay plugin, whose notification signature does not prove the
  payment: every first delivery is confirmed by an inquiry to the Faspay emulator on loopback
  (the payments are created through the service against it and paid there);
* ``acme_pay`` — the test suite's example plugin, whose signature covers every field: a first
  delivery is applied without an inquiry.

P4 and P5 reuse ``bench_notifications`` (baselines, timed loops), P7 reuses ``bench_webhook``
(servers, load generator).
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.tests.benchmarks import _acme
from adapters.tests.benchmarks._harness import (
    Context,
    Result,
    abab,
    compare,
    info,
    millis,
    per_second,
)

FASPAY = "faspay+inquiry"
ACME = _acme.PROVIDER

Delivery = tuple[bytes, dict[str, str] | None]


def _pragmas(synchronous: str) -> tuple[str, ...]:
    from adapters.tests.benchmarks.bench_notifications import _PRAGMAS

    return tuple(
        f"PRAGMA synchronous = {synchronous}" if p.startswith("PRAGMA synchronous") else p
        for p in _PRAGMAS
    )


# -- P4 ------------------------------------------------------------------------------------


def _acme_p4_baseline(deliveries: list[Delivery]) -> float:
    loads, dumps = json.loads, json.dumps
    start = time.perf_counter()
    for body, _headers in deliveries:
        data = loads(body)
        dumps({"ok": True, "reference": data["reference"]}).encode("utf-8")
    return len(deliveries) / (time.perf_counter() - start)


def _acme_p4_candidate(gateway: Any, deliveries: list[Delivery]) -> float:
    handle, acknowledge = gateway.handle_notification, gateway.acknowledge
    start = time.perf_counter()
    for body, headers in deliveries:
        acknowledge(handle(body, headers))
    return len(deliveries) / (time.perf_counter() - start)


def p4(ctx: Context) -> list[Result]:
    from adapters.tests.benchmarks._common import bill, faspay_gateway, notification_bodies
    from adapters.tests.benchmarks.bench_notifications import _p4_baseline, _p4_candidate

    count = ctx.size(2000, 20000)
    gateway = faspay_gateway()
    bodies = notification_bodies(gateway, [bill(i) for i in range(count)])
    _p4_baseline(bodies[:300])
    _p4_candidate(gateway, bodies[:300])
    base, cand = abab(
        lambda r: _p4_baseline(bodies), lambda r: _p4_candidate(gateway, bodies), ctx.rounds
    )
    faspay = compare(
        "P4 verify + acknowledge throughput",
        "faspay",
        base,
        cand,
        fmt=per_second,
        target=0.50,
        at_most=False,
    )
    acme = _acme.gateway()
    deliveries = [_acme.notification(i) for i in range(count)]
    _acme_p4_baseline(deliveries[:300])
    _acme_p4_candidate(acme, deliveries[:300])
    base, cand = abab(
        lambda r: _acme_p4_baseline(deliveries),
        lambda r: _acme_p4_candidate(acme, deliveries),
        ctx.rounds,
    )
    acme_result = compare(
        "P4 verify + acknowledge throughput",
        ACME,
        base,
        cand,
        fmt=per_second,
        target=0.50,
        at_most=False,
    )
    faspay.notes.append(
        f"P4: {ctx.rounds} rounds × {count:,} signed notifications per side, in process, no "
        "storage; ratio = candidate throughput / baseline throughput (json.loads + json.dumps "
        "of the ack); candidate gateway.handle_notification + gateway.acknowledge"
    )
    return [faspay, acme_result]


# -- P5 / P6 -------------------------------------------------------------------------------


def _copy(template: Path, path: Path) -> None:
    source, target = sqlite3.connect(template), sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def _acme_baseline(path: Path, deliveries: list[Delivery], pragmas: tuple[str, ...]) -> float:
    """json.loads + BEGIN + INSERT OR IGNORE (reference, status) + COMMIT (as Faspay's)."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in pragmas:
        conn.execute(pragma)
    conn.execute(
        "CREATE TABLE receipts (reference TEXT NOT NULL, status TEXT NOT NULL, "
        "PRIMARY KEY (reference, status)) WITHOUT ROWID"
    )
    loads, execute = json.loads, conn.execute
    start = time.perf_counter()
    for body, _headers in deliveries:
        data = loads(body)
        execute("BEGIN")
        execute(
            "INSERT OR IGNORE INTO receipts (reference, status) VALUES (?, ?)",
            (data["reference"], data["status"]),
        )
        execute("COMMIT")
    rate = len(deliveries) / (time.perf_counter() - start)
    conn.close()
    return rate


def deliver(service: Any, gateway: str, deliveries: list[Delivery], expected: str) -> float:
    """Deliver each notification through ``service``; the throughput. Every verdict must be
    ``expected`` (a benchmark of the wrong path would be meaningless)."""
    handle = service.handle_notification
    verdicts: Counter[str] = Counter()
    start = time.perf_counter()
    for body, headers in deliveries:
        verdicts[handle(gateway, body, headers).verdict] += 1
    rate = len(deliveries) / (time.perf_counter() - start)
    if set(verdicts) != {expected}:
        raise RuntimeError(f"expected only {expected!r} verdicts, got {dict(verdicts)}")
    return rate


def sql_per_delivery(service: Any, gateway: str, deliveries: list[Delivery]) -> str:
    """Statements and write transactions per delivery, from sqlite3's trace callback on this
    thread's ledger connection (introspection: "n/a" if the ledger no longer exposes it)."""
    connection = getattr(service.ledger, "_connection", None)
    if connection is None:
        return "n/a"
    conn = connection()
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        for body, headers in deliveries:
            service.handle_notification(gateway, body, headers)
    finally:
        conn.set_trace_callback(None)
    upper = [s.strip().upper() for s in seen]
    writes = sum(1 for s in upper if s.startswith("BEGIN IMMEDIATE"))
    statements = sum(1 for s in upper if not s.startswith(("BEGIN", "COMMIT", "ROLLBACK")))
    n = len(deliveries)
    return f"{statements / n:.1f} statements / {writes / n:.1f} write tx"


class _Setup:
    """One provider's deliveries, template ledger and service factory for P5/P6."""

    def __init__(
        self,
        provider: str,
        gateway: str,
        deliveries: list[Delivery],
        template: Path,
        service: Callable[[Path, str], Any],
        baseline: Callable[[Path, str], float],
        inquiries: Callable[[], int] = lambda: 0,
    ) -> None:
        self.provider, self.gateway, self.deliveries = provider, gateway, deliveries
        self.template, self.service, self.baseline = template, service, baseline
        self.inquiries = inquiries


def _faspay_setup(workdir: Path, count: int, server: Any) -> _Setup:
    from adapters.tests.benchmarks._common import (
        faspay_gateway,
        notification_bodies,
        paid_payments,
        service_with_payments,
    )
    from adapters.tests.benchmarks.bench_notifications import _p5_baseline

    template = workdir / "faspay-template.db"
    gateway = faspay_gateway(server.url)
    bills = paid_payments(template, gateway, count, server.app.pay)
    bodies = notification_bodies(gateway, bills)
    return _Setup(
        FASPAY,
        "dana",
        [(b, None) for b in bodies],
        template,
        lambda path, sync: service_with_payments(path, gateway, template, synchronous=sync),
        lambda path, sync: _p5_baseline(path, bodies, _pragmas(sync)),
        lambda: len(server.app.requests_log("inquiry")),
    )


def _acme_setup(workdir: Path, count: int) -> _Setup:
    from gateway_core.ledger import SQLiteLedger

    template = workdir / "acme-template.db"
    ledger = SQLiteLedger(template, synchronous="NORMAL")
    ledger.migrate()
    _acme.insert_payments(ledger, range(count))
    ledger.close()
    deliveries = [_acme.notification(i) for i in range(count)]

    def service(path: Path, sync: str) -> Any:
        _copy(template, path)
        ledger = SQLiteLedger(path, synchronous=sync)
        ledger.migrate()
        return _acme.service(ledger)

    return _Setup(
        ACME,
        _acme.GATEWAY,
        deliveries,
        template,
        service,
        lambda path, sync: _acme_baseline(path, deliveries, _pragmas(sync)),
    )


def _p5_for(ctx: Context, setup: _Setup, sync: str, target: float) -> list[Result]:
    workdir = ctx.subdir(f"p5-{setup.provider}-{sync}")
    first: list[float] = []
    dup: list[float] = []
    inquiries = Counter[str]()

    def candidate(r: int) -> float:
        service = setup.service(workdir / f"cand{r}.db", sync)
        try:
            before = setup.inquiries()
            rate = deliver(service, setup.gateway, setup.deliveries, "applied")
            middle = setup.inquiries()
            dup.append(deliver(service, setup.gateway, setup.deliveries, "duplicate"))
            inquiries["first"] += middle - before
            inquiries["duplicate"] += setup.inquiries() - middle
        finally:
            service.ledger.close()
        first.append(rate)
        return rate

    warm = setup.service(workdir / "warm.db", sync)
    sample = setup.deliveries[: max(20, min(100, len(setup.deliveries) // 2))]
    sql_first = sql_per_delivery(warm, setup.gateway, sample)
    sql_dup = sql_per_delivery(warm, setup.gateway, sample)
    warm.ledger.close()
    base, cand = abab(
        lambda r: setup.baseline(workdir / f"base{r}.db", sync), candidate, ctx.rounds
    )
    n = len(setup.deliveries) * ctx.rounds
    p5 = compare(
        f"P5 first delivery, SQLite {sync}",
        setup.provider,
        base,
        cand,
        fmt=per_second,
        target=target,
        at_most=False,
    )
    p6 = compare(
        f"P6 duplicate vs first delivery, SQLite {sync}",
        setup.provider,
        first,
        dup,
        fmt=per_second,
        target=5.0,
        at_most=False,
    )
    sql = info(
        f"P5 SQL per delivery, SQLite {sync}",
        setup.provider,
        "1 statement / 1 write tx",
        f"first {sql_first}; duplicate {sql_dup}",
        f"inquiries per first {inquiries['first'] / n:.2f}, per duplicate "
        f"{inquiries['duplicate'] / n:.2f}",
    )
    return [p5, p6, sql]


def p5(ctx: Context) -> list[Result]:
    from adapters.tests.benchmarks._common import start_emulator

    count = ctx.size(100, 1000)
    server = start_emulator()  # threads of this process, on every CPU
    try:
        workdir = ctx.subdir("p5")
        setups = [_faspay_setup(workdir, count, server), _acme_setup(workdir, count)]
        results: list[Result] = []
        for sync, target in (("FULL", 0.70), ("NORMAL", 0.25)):
            for setup in setups:
                results += _p5_for(ctx, setup, sync, target)
    finally:
        server.stop()
    results[0].notes.append(
        f"P5/P6: {ctx.rounds} rounds × {count:,} notifications per side, each round on a fresh "
        "copy of a ledger of pending payments; baseline json.loads + BEGIN + INSERT OR IGNORE + "
        "COMMIT with the ledger's PRAGMAs (WAL, busy_timeout, foreign_keys) and the same "
        "synchronous; candidate PaymentService.handle_notification (order-system hook inline); "
        "P6 delivers the same notifications again (ratio = duplicate throughput / first "
        "throughput); faspay+inquiry: each first delivery makes an inquiry to the Faspay "
        "emulator (threads of this process); acme_pay: the signature settles, no inquiry"
    )
    return results


# -- P7 ------------------------------------------------------------------------------------


def _p7_rounds(
    ctx: Context,
    constant_url: str,
    library_url: str,
    bodies: list[bytes],
    headers_of: Any,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    from adapters.tests.benchmarks.bench_webhook import load

    seconds = 0.4 if ctx.quick else 3.0
    constant_counter, library_counter = itertools.count(), itertools.count()
    load(constant_url, bodies, constant_counter, 0.2, 4, headers_of)
    load(library_url, bodies, library_counter, 0.2, 4, headers_of)
    base: list[dict[str, Any]] = []
    cand: list[dict[str, Any]] = []
    abab(
        lambda r: (
            base.append(load(constant_url, bodies, constant_counter, seconds, 4, headers_of)) or 0.0
        ),
        lambda r: (
            cand.append(load(library_url, bodies, library_counter, seconds, 4, headers_of)) or 0.0
        ),
        ctx.rounds,
    )
    return base, cand, next(library_counter)


def _p7_results(
    provider: str, base: list[dict[str, Any]], cand: list[dict[str, Any]], sent: int, capacity: int
) -> list[Result]:
    throughput = compare(
        "P7 webhook throughput (4 client threads)",
        provider,
        [r["rate"] for r in base],
        [r["rate"] for r in cand],
        fmt=lambda x: f"{x:,.0f} req/s",
        target=0.60,
        at_most=False,
    )
    p99 = compare(
        "P7 webhook p99 latency",
        provider,
        [r["p99"] for r in base],
        [r["p99"] for r in cand],
        fmt=millis,
        target=2.0,
        at_most=True,
    )
    failures = sum(r["failures"] for r in base + cand)
    first = min(sent, capacity)
    p99.spread += f"; {first} first + {sent - first} duplicate deliveries, {failures} non-200"
    return [throughput, p99]


def p7(ctx: Context) -> list[Result]:
    from adapters.tests.benchmarks import _rows_outbound
    from adapters.tests.benchmarks._common import (
        faspay_gateway,
        notification_bodies,
        paid_payments,
        pin,
    )
    from adapters.tests.benchmarks._rows_scale import bulk_sqlite
    from adapters.tests.benchmarks.bench_webhook import Server
    from gateway_faspay_dana.emulator import EmulatorControl

    capacity = ctx.size(1200, 9000)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="p7-", dir=ctx.workdir) as tmp:
        emulator = Server("emulator")  # before pinning: it inherits no affinity
        note = pin(1)
        control = EmulatorControl(emulator.base_url)
        constant = Server("constant")
        try:
            gateway = faspay_gateway(emulator.base_url)
            template = Path(tmp) / "faspay.db"
            bills = paid_payments(template, gateway, capacity, control.pay)
            gateway.close()
            bodies = notification_bodies(gateway, bills)
            library = Server("library", template, emulator.base_url)
            try:
                base, cand, sent = _p7_rounds(ctx, constant.url, library.url, bodies, None)
            finally:
                library.close()
            results += _p7_results(FASPAY, base, cand, sent, capacity)

            acme_db = Path(tmp) / "acme.db"
            acme_capacity = ctx.size(4000, 40000)
            bulk_sqlite(acme_db, range(acme_capacity))
            acme_bodies = [_acme.notification(i)[0] for i in range(acme_capacity)]
            acme_server = _rows_outbound._Child("acme-webhook", str(acme_db))
            try:
                url = f"http://127.0.0.1:{acme_server.port}/notify/{_acme.GATEWAY}"
                base, cand, sent = _p7_rounds(
                    ctx, constant.url, url, acme_bodies, _acme.signature_header
                )
            finally:
                acme_server.close()
            results += _p7_results(ACME, base, cand, sent, acme_capacity)
        finally:
            constant.close()
            control.close()
            emulator.close()
    results[0].notes.append(
        f"P7: {ctx.rounds} rounds × {0.4 if ctx.quick else 3.0:g} s per side after 0.2 s "
        "warm-up, 4 client threads (a requests.Session each, keep-alive), client "
        f"{note}; servers waitress threads=4 in child processes pinned to CPU 0; baseline a "
        "constant-ack WSGI app; candidate gateway_core.web.make_wsgi_app on SQLite NORMAL "
        f"(pending payments: {capacity:,} Faspay, {acme_capacity:,} Acme); faspay+inquiry "
        "inquires an emulator in its own child process; the acme_pay client also signs "
        "each body (so does its baseline's)"
    )
    return results
