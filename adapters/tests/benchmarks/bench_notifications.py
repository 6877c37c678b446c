"""P4, P5, P6: notification handling in process (no HTTP).

* P4 — verify throughput: ``gateway.handle_notification`` (parse, strict types, signature) +
  ``gateway.acknowledge`` against ``json.loads`` + ``json.dumps`` of an ack, same bodies.
* P5 — verify + dedupe with the library: ``PaymentService.handle_notification`` on a
  ``SQLiteLedger`` (``synchronous=NORMAL``), first deliveries, against a bare loop of
  ``json.loads`` + ``INSERT OR IGNORE`` + ``COMMIT`` with the same PRAGMAs (fresh database for
  each run). The Faspay plugin does not let a notification settle a payment
  (``notification_settles=False``): every first delivery is confirmed by an inquiry, here to
  a Faspay emulator on loopback (a thread of this process) where every bill exists and is
  paid. The payments are created through the service against the emulator, once, into a
  template database that each run copies.
* P6 — the duplicate path (every notification already applied) against the P5 first-delivery
  path, same service and database; a duplicate needs no inquiry (counted at the emulator).
* Confirmation cost — first deliveries with confirmation (the Faspay plugin) against the same
  without it (a subclass whose ``trust`` has ``notification_settles=True``), interleaved, same
  ledger settings: per-notification latency and inquiries per notification.

Rounds are interleaved (baseline, candidate, ...); medians of the per-round throughputs are
compared. Informational rows split the P5 cost (hook delivery inline or not) and count the
SQL statements and write transactions per notification.

    python adapters/tests/benchmarks/bench_notifications.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from adapters.tests.benchmarks._common import (
    Table,
    bill,
    faspay_gateway,
    median,
    notification_bodies,
    paid_payments,
    percentile,
    pin,
    quiet_logging,
    service_with_payments,
    settling_gateway,
    spread,
    start_emulator,
    verdict,
)

_PRAGMAS = (
    "PRAGMA busy_timeout = 5000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)


# -- P4 ------------------------------------------------------------------------------------


def _p4_baseline(bodies: list[bytes]) -> float:
    dumps, loads = json.dumps, json.loads
    start = time.perf_counter()
    for body in bodies:
        data = loads(body)
        dumps(
            {
                "response": "Payment Notification",
                "trx_id": data["trx_id"],
                "merchant_id": data["merchant_id"],
                "merchant": data["merchant"],
                "bill_no": data["bill_no"],
                "response_code": "00",
                "response_desc": "Success",
                "response_date": "2026-01-02 10:11:13",
            }
        ).encode("utf-8")
    return len(bodies) / (time.perf_counter() - start)


def _p4_candidate(gateway: Any, bodies: list[bytes]) -> float:
    handle, acknowledge = gateway.handle_notification, gateway.acknowledge
    headers: dict[str, str] = {}
    start = time.perf_counter()
    for body in bodies:
        acknowledge(handle(body, headers))
    return len(bodies) / (time.perf_counter() - start)


class _InfoLogging:
    """The library's INFO lines on, through a handler (what a production app would run)."""

    def __enter__(self) -> _InfoLogging:
        self.logger = logging.getLogger("gateway_faspay_dana")
        self.level = self.logger.level
        self.handler = logging.StreamHandler(io.StringIO())
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.INFO)
        self.propagate = self.logger.propagate
        self.logger.propagate = False
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)
        self.logger.propagate = self.propagate


def p4(table: Table, gateway: Any, count: int, rounds: int) -> None:
    bodies = notification_bodies(gateway, [bill(i) for i in range(count)])
    _p4_baseline(bodies[:500])
    _p4_candidate(gateway, bodies[:500])
    base, cand, logged = [], [], []
    for _ in range(rounds):
        base.append(_p4_baseline(bodies))
        cand.append(_p4_candidate(gateway, bodies))
        with _InfoLogging():
            logged.append(_p4_candidate(gateway, bodies))
    b, c, lg = median(base), median(cand), median(logged)
    table.row(
        "P4 verify + ack throughput",
        f"{b:,.0f}/s",
        f"{c:,.0f}/s",
        verdict(c / b, 0.70, at_most=False),
        "≥ 0.70×",
    )
    table.row(
        "P4 same, library INFO logging on (redacting filter + handler)",
        f"{b:,.0f}/s",
        f"{lg:,.0f}/s",
        f"{lg / b:.2f}×",
        "info",
    )
    # Where the candidate's time goes (no baseline: plain per-call costs).
    notifications = [gateway.handle_notification(body, {}) for body in bodies[:2000]]
    handle = _per_call(lambda body: gateway.handle_notification(body, {}), bodies[:2000])
    ack = _per_call(gateway.acknowledge, notifications)
    table.row(
        "breakdown: handle_notification / acknowledge per call",
        f"{1e6 / b:.1f} µs (whole baseline)",
        f"{handle * 1e6:.1f} µs / {ack * 1e6:.1f} µs",
        "-",
        "info",
    )
    table.note(
        f"P4: {rounds} interleaved rounds × {count} JSON notifications; per-round ratios "
        f"{spread([c_ / b_ for b_, c_ in zip(base, cand, strict=True)])}; per-call "
        f"{1e6 / b:.1f} µs baseline vs {1e6 / c:.1f} µs candidate"
    )


def _per_call(work: Any, items: list[Any]) -> float:
    """Median over 5 passes of the mean seconds per item of ``work(item)``."""
    passes = []
    for _ in range(5):
        start = time.perf_counter()
        for item in items:
            work(item)
        passes.append((time.perf_counter() - start) / len(items))
    return median(passes)


# -- P5 / P6 -------------------------------------------------------------------------------


def _p5_baseline(path: Path, bodies: list[bytes], pragmas: tuple[str, ...] = _PRAGMAS) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in pragmas:
        conn.execute(pragma)
    conn.execute(
        "CREATE TABLE receipts (bill_no TEXT NOT NULL, status TEXT NOT NULL, "
        "PRIMARY KEY (bill_no, status)) WITHOUT ROWID"
    )
    loads, execute = json.loads, conn.execute
    start = time.perf_counter()
    for body in bodies:
        data = loads(body)
        execute("BEGIN")
        execute(
            "INSERT OR IGNORE INTO receipts (bill_no, status) VALUES (?, ?)",
            (data["bill_no"], data["payment_status_code"]),
        )
        execute("COMMIT")
    rate = len(bodies) / (time.perf_counter() - start)
    conn.close()
    return rate


def _p5_candidate(service: Any, bodies: list[bytes], expected: str) -> float:
    handle = service.handle_notification
    verdicts: Counter[str] = Counter()
    start = time.perf_counter()
    for body in bodies:
        verdicts[handle("dana", body, None).verdict] += 1
    rate = len(bodies) / (time.perf_counter() - start)
    if set(verdicts) != {expected}:
        raise RuntimeError(f"expected only {expected!r} verdicts, got {dict(verdicts)}")
    return rate


def _statements(service: Any, bodies: list[bytes]) -> tuple[float, float]:
    """SQL statements and write transactions per notification (one traced pass)."""
    conn = service.ledger._connection()  # this thread's connection (benchmark introspection)
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        for body in bodies:
            service.handle_notification("dana", body, None)
    finally:
        conn.set_trace_callback(None)
    writes = sum(1 for s in seen if s.strip().upper().startswith("BEGIN IMMEDIATE"))
    statements = sum(1 for s in seen if not s.strip().upper().startswith(("BEGIN", "COMMIT")))
    return statements / len(bodies), writes / len(bodies)


class _Emulator:
    """The loopback Faspay emulator, its gateways and the template database of paid bills."""

    def __init__(self, server: Any, template: Path, bills: list[tuple[str, str]]) -> None:
        self.server = server
        self.template = template
        self.bills = bills
        self.confirming = faspay_gateway(server.url)
        self.settling = settling_gateway(server.url)

    def inquiries(self) -> int:
        """Inquiries the emulator has received so far (its request log)."""
        return len(self.server.app.requests_log("inquiry"))


def p5_p6(table: Table, emulator: _Emulator, rounds: int, workdir: Path) -> None:
    gateway, template = emulator.confirming, emulator.template
    count = len(emulator.bills)
    bodies = notification_bodies(gateway, emulator.bills)
    base, first, dup, deferred = [], [], [], []
    first_inquiries = dup_inquiries = 0

    # Warm-up (and the statement counts) on a database of its own.
    service = service_with_payments(workdir / "warm.db", gateway, template, inline_hooks=True)
    sample = max(50, min(200, count // 4))
    stmts_first, writes_first = _statements(service, bodies[:sample])
    stmts_dup, writes_dup = _statements(service, bodies[:sample])
    service.ledger.close()
    for r in range(rounds):
        base.append(_p5_baseline(workdir / f"base{r}.db", bodies))
        service = service_with_payments(
            workdir / f"cand{r}.db", gateway, template, inline_hooks=True
        )
        before = emulator.inquiries()
        first.append(_p5_candidate(service, bodies, "applied"))
        middle = emulator.inquiries()
        dup.append(_p5_candidate(service, bodies, "duplicate"))
        first_inquiries += middle - before
        dup_inquiries += emulator.inquiries() - middle
        service.ledger.close()
        service = service_with_payments(
            workdir / f"defer{r}.db", gateway, template, inline_hooks=False
        )
        deferred.append(_p5_candidate(service, bodies, "applied"))
        service.ledger.close()
    b, f, d, df = median(base), median(first), median(dup), median(deferred)
    table.row(
        "P5 verify + confirm + dedupe, first deliveries (SQLite NORMAL)",
        f"{b:,.0f}/s",
        f"{f:,.0f}/s",
        verdict(f / b, 0.80, at_most=False),
        "≥ 0.80×",
    )
    table.row(
        "P5 same, hook delivery deferred (deliver_after_commit=False)",
        f"{b:,.0f}/s",
        f"{df:,.0f}/s",
        f"{df / b:.2f}×",
        "info",
    )
    table.row(
        "P6 duplicate path vs first-delivery path",
        f"{f:,.0f}/s",
        f"{d:,.0f}/s",
        verdict(d / f, 2.0, at_most=False),
        "≥ 2×",
    )
    table.row(
        "inquiries per notification (emulator's request log): first / duplicate",
        "-",
        f"{first_inquiries / (rounds * count):.2f} / {dup_inquiries / (rounds * count):.2f}",
        "-",
        "info",
    )
    table.row(
        "SQL per notification: statements / write transactions",
        "1 / 1",
        f"first {stmts_first:.1f} / {writes_first:.1f}; "
        f"duplicate {stmts_dup:.1f} / {writes_dup:.1f}",
        "-",
        "info",
    )
    # What the journal's redaction costs: per normal body, and for a hostile one.
    from gateway_core._redact import redact_text

    texts = [body.decode("utf-8") for body in bodies[:500]]
    redact = _per_call(redact_text, texts)
    service = service_with_payments(workdir / "hostile.db", gateway, template, inline_hooks=True)
    hostile = b"a" * 16384  # unauthenticated: anyone can POST it; it is journalled (4096 chars)
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        outcome = service.handle_notification("dana", hostile, None)
        timings.append(time.perf_counter() - start)
    service.ledger.close()
    table.row(
        "redact_text of one normal notification body (done twice per notification)",
        "-",
        f"{redact * 1e6:.0f} µs",
        "-",
        "info",
    )
    table.row(
        "one rejected 16 KB body of letters (journal redaction, once quadratic)",
        f"{1e3 / f:.2f} ms (normal first delivery)",
        f"{median(timings) * 1e3:.2f} ms ({outcome.verdict})",
        f"{median(timings) * f:.2f}×",
        "info",
    )
    table.note(
        f"P5/P6: {rounds} interleaved rounds (bare loop, service first deliveries, the same "
        f"again as duplicates, service with deferred hooks) × {count} notifications, each run "
        f"on a fresh copy of a database with {count} pending payments (created through the "
        f"service against the emulator, paid there); per-round first/baseline ratios "
        f"{spread([f_ / b_ for b_, f_ in zip(base, first, strict=True)])}, duplicate/first "
        f"{spread([d_ / f_ for f_, d_ in zip(first, dup, strict=True)])}"
    )
    table.note(
        "baseline: json.loads + BEGIN + INSERT OR IGNORE (bill_no, status) + COMMIT, with the "
        "ledger's PRAGMAs (WAL, synchronous=NORMAL, busy_timeout, foreign_keys); statement "
        "counts from sqlite3's trace callback on one pass"
    )


def _first_deliveries(service: Any, bodies: list[bytes]) -> list[float]:
    """Seconds per first delivery, one by one (each must be applied)."""
    handle, clock = service.handle_notification, time.perf_counter
    latencies = []
    for body in bodies:
        start = clock()
        outcome = handle("dana", body, None)
        latencies.append(clock() - start)
        if outcome.verdict != "applied":
            raise RuntimeError(f"expected 'applied', got {outcome.verdict!r} ({outcome.reason})")
    return latencies


def confirmation(table: Table, emulator: _Emulator, rounds: int, workdir: Path) -> None:
    """First deliveries with confirmation by inquiry against the same without, interleaved."""
    count = len(emulator.bills)
    bodies = notification_bodies(emulator.confirming, emulator.bills)
    variants = {"settling": emulator.settling, "confirming": emulator.confirming}
    latencies: dict[str, list[float]] = {name: [] for name in variants}
    per_round: dict[str, list[float]] = {name: [] for name in variants}
    inquiries: Counter[str] = Counter()
    for r in range(rounds):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))  # ABBA...
        for name in order:
            service = service_with_payments(
                workdir / f"{name}{r}.db", variants[name], emulator.template, inline_hooks=True
            )
            before = emulator.inquiries()
            measured = _first_deliveries(service, bodies)
            inquiries[name] += emulator.inquiries() - before
            service.ledger.close()
            latencies[name] += measured
            per_round[name].append(median(measured))
    s, c = median(latencies["settling"]), median(latencies["confirming"])
    table.row(
        "first delivery with confirmation by inquiry vs without (median latency)",
        f"{s * 1e6:,.0f} µs",
        f"{c * 1e6:,.0f} µs",
        f"{c / s:.2f}× (+{(c - s) * 1e6:,.0f} µs)",
        "info",
    )
    table.row(
        "inquiries per first delivery (emulator's request log): without / with",
        f"{inquiries['settling'] / (rounds * count):.2f}",
        f"{inquiries['confirming'] / (rounds * count):.2f}",
        "-",
        "info",
    )
    table.note(
        f"confirmation: {rounds} interleaved rounds (order alternating) × {count} first "
        f"deliveries per variant, each on a fresh copy of the template database; baseline "
        f"'without' is a FaspayDanaGateway subclass with trust.notification_settles=True (the "
        f"service applies the signed status as it stands), candidate the Faspay plugin as "
        f"shipped (notification_settles=False: one inquiry to the loopback emulator, then the "
        f"confirmed status applied); per-round median µs without "
        f"{spread([x * 1e6 for x in per_round['settling']], 0)}, with "
        f"{spread([x * 1e6 for x in per_round['confirming']], 0)}; p90 without "
        f"{percentile(latencies['settling'], 0.9) * 1e6:,.0f} µs, with "
        f"{percentile(latencies['confirming'], 0.9) * 1e6:,.0f} µs"
    )


def run(*, p4_count: int, p5_count: int, rounds: int) -> Table:
    table = Table("P4, P5, P6 — notifications in process")
    # Started before pinning: its threads keep every CPU (affinity is per thread on Linux).
    server = start_emulator()
    note = pin(1)
    try:
        gateway = faspay_gateway()
        p4(table, gateway, p4_count, rounds)
        with tempfile.TemporaryDirectory(prefix="bench-notifications-") as tmp:
            workdir = Path(tmp)
            template = workdir / "template.db"
            bills = paid_payments(template, faspay_gateway(server.url), p5_count, server.app.pay)
            emulator = _Emulator(server, template, bills)
            p5_p6(table, emulator, rounds, workdir)
            confirmation(table, emulator, rounds, workdir)
    finally:
        server.stop()
    table.note(
        f"single process, {note}; the database in a temporary directory; the Faspay emulator "
        "(EmulatorServer, loopback, keep-alive) runs in threads of this process started "
        "before pinning"
    )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (fewer bodies)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    p4_count = 3000 if args.quick else 20000
    p5_count = 300 if args.quick else 2000
    quiet_logging()
    run(p4_count=p4_count, p5_count=p5_count, rounds=args.rounds).print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
