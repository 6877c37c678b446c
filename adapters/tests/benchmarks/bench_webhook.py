"""P7: the HTTP webhook endpoint under load.

Candidate: the library's WSGI app (``gateway_core.web.make_wsgi_app``) with verify + confirm +
dedupe on a ``SQLiteLedger`` (``synchronous=NORMAL``) holding pending payments for the bills
notified. The Faspay plugin confirms every first delivery by an inquiry
(``notification_settles=False``): the payments are created through the service against a Faspay
emulator on loopback (its own child process, not pinned), paid there (the notifications
recorded, not sent), and the candidate server inquires that emulator.
Baseline: a constant-ack WSGI app (reads the body, answers a fixed JSON ack). Both run under
waitress (4 threads) in child processes pinned to CPU 0; the load generator runs here, pinned
to CPU 1: 4 threads, one ``requests.Session`` each, POSTing signed paid notifications for a
fixed duration. Rounds alternate baseline and candidate; medians of the per-round throughputs
and of the per-round p99 latencies are compared.

While pending payments last, every candidate request is a first delivery (an inquiry, a state
change, the paid event delivered to a do-nothing hook); after that, requests cycle through the
same bodies again as duplicates. The mix, and the inquiries the emulator received, are
printed.

    python adapters/tests/benchmarks/bench_webhook.py [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from adapters.tests.benchmarks._common import (
    Table,
    faspay_gateway,
    median,
    notification_bodies,
    paid_payments,
    percentile,
    pin,
    quiet_logging,
    service_with_payments,
    spread,
    start_emulator,
    verdict,
)

_ACK = json.dumps(
    {
        "response": "Payment Notification",
        "trx_id": "9999981900000001",
        "merchant_id": "99999",
        "merchant": "Bench Store",
        "bill_no": "N00000001",
        "response_code": "00",
        "response_desc": "Success",
        "response_date": "2026-01-02 10:11:13",
    }
).encode("utf-8")


def constant_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Reads the body, answers the same JSON ack every time."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    environ["wsgi.input"].read(min(length, 16385))
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(_ACK)))]
    )
    return [_ACK]


# -- servers (child processes) -------------------------------------------------------------


def serve(kind: str, db: str, emulator_url: str) -> None:
    """Serve ``kind`` ("library", "constant" or "emulator"); print the port; run forever.

    The library's service runs on a copy of the template database ``db``, its gateway pointed
    at the emulator ``emulator_url``."""
    quiet_logging()
    if kind == "emulator":  # not pinned: the two CPUs are the server's and the client's
        emulator = start_emulator()
        print(emulator.port, flush=True)
        threading.Event().wait()
    import waitress.server

    from gateway_core.web import make_wsgi_app

    pin(0)
    app: Any = constant_app
    if kind == "library":
        template = Path(db)
        service = service_with_payments(
            template.with_name("served.db"), faspay_gateway(emulator_url), template
        )
        app = make_wsgi_app(service)
    server = waitress.server.create_server(app, host="127.0.0.1", port=0, threads=4)
    print(server.effective_port, flush=True)
    server.run()


class Server:
    def __init__(self, kind: str, db: Path | None = None, emulator_url: str = "") -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                kind,
                "--db",
                str(db or ""),
                "--emulator",
                emulator_url,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        port = self.proc.stdout.readline().strip()
        if not port.isdigit():
            raise RuntimeError(f"the {kind} server did not start")
        self.base_url = f"http://127.0.0.1:{port}"
        self.url = f"{self.base_url}/notify/dana"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- the load generator --------------------------------------------------------------------


def load(
    url: str,
    bodies: list[bytes],
    counter: Any,
    seconds: float,
    threads: int,
    headers_of: Any = None,
) -> dict[str, Any]:
    """``threads`` clients POST bodies (taking the next index from ``counter``) for
    ``seconds``; throughput, latencies and failures. ``headers_of(body)``, when given, makes
    each request's headers (a provider that signs in a header)."""
    import requests

    latencies: list[list[float]] = [[] for _ in range(threads)]
    failures = [0] * threads
    barrier = threading.Barrier(threads + 1)
    stop_at = [0.0]
    headers = {"Content-Type": "application/json"}

    def client(slot: int) -> None:
        mine = latencies[slot]
        clock = time.perf_counter
        with requests.Session() as session:
            session.post(url, data=b"{}", headers=headers, timeout=10)  # connect + warm up
            barrier.wait()
            while True:
                start = clock()
                if start >= stop_at[0]:
                    break
                body = bodies[next(counter) % len(bodies)]
                sent = headers_of(body) if headers_of else headers
                reply = session.post(url, data=body, headers=sent, timeout=10)
                mine.append(clock() - start)
                if reply.status_code != 200:
                    failures[slot] += 1

    workers = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    stop_at[0] = time.perf_counter() + 3600
    barrier.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    flat = [x for chunk in latencies for x in chunk]
    return {
        "rate": len(flat) / elapsed,
        "count": len(flat),
        "p50": percentile(flat, 0.50),
        "p99": percentile(flat, 0.99),
        "failures": sum(failures),
    }


def _inquiries(control: Any) -> int:
    """Inquiries the emulator has received so far (its request log)."""
    counts: dict[str, int] = control.requests_log("inquiry")["counts"]
    return counts.get("inquiry", 0)


def run(*, seconds: float, rounds: int, threads: int, capacity: int) -> Table:
    from gateway_faspay_dana.emulator import EmulatorControl

    table = Table("P7 — HTTP webhook endpoint (waitress, 4 client threads)")
    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp:
        emulator = Server("emulator")  # started before pinning: it inherits no affinity
        note = pin(1)
        control = EmulatorControl(emulator.base_url)
        try:
            gateway = faspay_gateway(emulator.base_url)
            template = Path(tmp) / "ledger.db"
            bills = paid_payments(template, gateway, capacity, control.pay)
            gateway.close()
            bodies = notification_bodies(gateway, bills)
            constant = Server("constant")
            library = Server("library", template, emulator.base_url)
            try:
                inquiries_before = _inquiries(control)
                constant_counter = itertools.count()
                library_counter = itertools.count()
                # Warm-up: a few hundred requests each (uses up some pending payments).
                load(constant.url, bodies, constant_counter, 0.5, threads)
                load(library.url, bodies, library_counter, 0.5, threads)
                base: list[dict[str, Any]] = []
                cand: list[dict[str, Any]] = []
                for _ in range(rounds):
                    base.append(load(constant.url, bodies, constant_counter, seconds, threads))
                    cand.append(load(library.url, bodies, library_counter, seconds, threads))
                sent = next(library_counter)
                inquiries = _inquiries(control) - inquiries_before
            finally:
                constant.close()
                library.close()
        finally:
            control.close()
            emulator.close()
    b_rate, c_rate = median([r["rate"] for r in base]), median([r["rate"] for r in cand])
    b_p99, c_p99 = median([r["p99"] for r in base]), median([r["p99"] for r in cand])
    b_p50, c_p50 = median([r["p50"] for r in base]), median([r["p50"] for r in cand])
    table.row(
        "P7 webhook throughput (verify + confirm + dedupe, SQLite NORMAL)",
        f"{b_rate:,.0f} req/s",
        f"{c_rate:,.0f} req/s",
        verdict(c_rate / b_rate, 0.80, at_most=False),
        "≥ 0.80×",
    )
    table.row(
        "P7 p99 latency",
        f"{b_p99 * 1e3:.1f} ms",
        f"{c_p99 * 1e3:.1f} ms",
        verdict(c_p99 / b_p99, 2.0, at_most=True),
        "≤ 2×",
    )
    table.row(
        "P7 p50 latency",
        f"{b_p50 * 1e3:.1f} ms",
        f"{c_p50 * 1e3:.1f} ms",
        f"{c_p50 / b_p50:.2f}×",
        "info",
    )
    first = min(sent, capacity)
    failures = sum(r["failures"] for r in base + cand)
    table.note(
        f"{rounds} interleaved rounds × {seconds:g} s per variant, {threads} client threads "
        f"(requests.Session each), after 0.5 s warm-up each; per-round req/s baseline "
        f"{spread([r['rate'] for r in base], 0)}, candidate {spread([r['rate'] for r in cand], 0)}"
    )
    table.note(
        f"candidate requests: {sent} in all, {first} first deliveries (of {capacity} pending "
        f"payments, created through the service against the emulator and paid there), "
        f"{sent - first} duplicates; non-200 replies: {failures}"
    )
    table.note(
        f"inquiries the emulator received during the candidate's requests: {inquiries} "
        f"({inquiries / max(1, first):.2f} per first delivery)"
    )
    table.note(
        f"servers: waitress threads=4 in child processes pinned to CPU 0; client {note}; the "
        "Faspay emulator (EmulatorServer, loopback) in a child process of its own, not pinned"
    )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round of 2 s")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--serve", choices=["library", "constant", "emulator"], help=argparse.SUPPRESS
    )
    parser.add_argument("--db", default="", help=argparse.SUPPRESS)
    parser.add_argument("--emulator", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.db, args.emulator)
        return 0
    quiet_logging()
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    rounds = args.rounds or (1 if args.quick else 5)
    capacity = 2000 if args.quick else 8000
    run(seconds=seconds, rounds=rounds, threads=args.threads, capacity=capacity).print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
