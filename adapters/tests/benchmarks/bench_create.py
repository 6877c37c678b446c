"""P1 + P2: the adapter's ``create()`` against the emulator on loopback, keep-alive.

* P1 — median latency of ``FaspayDanaGateway.create`` (build + sign the post-data request,
  ``ProviderClient`` retry loop, ``RequestsTransport``, parse + check the answer, build the
  ``Payment``) against a bare ``requests.Session().post`` of the same kind of pre-serialised body
  to the same server. Every call uses a new ``bill_no`` (the emulator creates a bill per call
  for both variants). Interleaved ABAB: ``--rounds`` rounds of ``--calls`` calls per variant,
  after a warm-up; the per-round medians are compared by their median.
* P2 — connections the adapter opens for 1000 sequential calls (``EmulatorServer.accept_count``):
  1 in all (the warm-up), 0 after it.

The emulator runs in a child process (pinned to CPU 0, the client to CPU 1, when there are
two CPUs) so the server's Python does not share the client's GIL.

    python adapters/tests/benchmarks/bench_create.py [--quick]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from typing import Any

import attrs

from adapters.tests.benchmarks._common import (
    MERCHANT_ID,
    MERCHANT_NAME,
    PASSWORD,
    Table,
    gateway_settings,
    median,
    pin,
    spread,
    verdict,
)

_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


# -- the server (child process) ------------------------------------------------------------


def serve() -> None:
    """Run the emulator; print its URL; answer ``accepts`` on stdin until ``quit``."""
    from gateway_faspay_dana.emulator import EmulatorApp, EmulatorServer, Merchant

    pin(0)
    merchant = Merchant(MERCHANT_ID, merchant_name=MERCHANT_NAME, password=PASSWORD)
    app = EmulatorApp(merchant, duplicate_bill_no="return_existing", request_log_limit=1000)
    server = EmulatorServer(app, keepalive_timeout=120.0).start()
    print(server.url, flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "accepts":
            print(server.accept_count, flush=True)
        elif command == "quit":
            break
    server.stop()


class Server:
    """The emulator child process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise RuntimeError("the emulator did not start")

    def accepts(self) -> int:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("accepts\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


# -- the client ----------------------------------------------------------------------------


def _template() -> Any:
    from gateway_core import Customer, Money, PaymentRequest

    return PaymentRequest(
        order_reference="BENCH",
        amount=Money("2000", "IDR"),
        customer=Customer("Budi", email="budi@example.com", phone="081234567890"),
        description="Benchmark order",
        return_url="http://127.0.0.1/return/dana",
    )


def _gateway(url: str) -> Any:
    from gateway_faspay_dana import FaspayDanaGateway

    return FaspayDanaGateway.from_config(gateway_settings(url), environ={})


def _bodies(gateway: Any, bill_nos: list[str]) -> list[bytes]:
    """Pre-serialised post-data bodies (signed), one per bill, as the adapter would send."""
    from gateway_faspay_dana._messages.create import PostDataRequest
    from gateway_faspay_dana._wire import encode_json, jakarta_now

    template = _template()
    now = jakarta_now()
    return [
        encode_json(
            PostDataRequest.from_payment_request(
                attrs.evolve(template, merchant_reference=bill_no), gateway.config, now=now
            ).to_payload()
        )
        for bill_no in bill_nos
    ]


def _baseline(session: Any, url: str, bodies: list[bytes]) -> list[float]:
    times = []
    clock = time.perf_counter
    for body in bodies:
        start = clock()
        reply = session.post(url, data=body, headers=_HEADERS, timeout=(3.05, 20))
        reply.content  # noqa: B018 - read the body, as the adapter does
        times.append(clock() - start)
        if reply.status_code != 200:
            raise RuntimeError(f"baseline got HTTP {reply.status_code}")
    return times


def _candidate(gateway: Any, requests_: list[Any]) -> list[float]:
    times = []
    clock = time.perf_counter
    for request in requests_:
        start = clock()
        gateway.create(request)
        times.append(clock() - start)
    return times


class _CannedTransport:
    """Answers every post-data request at once with the emulator's answer for its bill_no."""

    _BILL = re.compile(rb'"bill_no":\s*"([^"]+)"')

    def __init__(self, answer: bytes, bill_no: str) -> None:
        self._parts = answer.split(bill_no.encode("ascii"))

    def send(self, request: Any, *, timeout: float | None = None) -> Any:
        from gateway_core import HttpResponse

        match = self._BILL.search(request.body)
        assert match is not None
        body = match.group(1).join(self._parts)
        return HttpResponse(200, body, {"Content-Type": "application/json"})

    def close(self) -> None:
        return None


def _per_call(work: Any, items: list[Any]) -> float:
    """Median over 5 batches of the mean seconds per item of ``work(item)``."""
    batches = []
    size = max(1, len(items) // 5)
    for b in range(5):
        chunk = items[b * size : (b + 1) * size]
        start = time.perf_counter()
        for item in chunk:
            work(item)
        batches.append((time.perf_counter() - start) / len(chunk))
    return median(batches)


def _breakdown(table: Table, server: Server, calls: int, rounds: int) -> None:
    """Where the candidate's extra time goes: the adapter's own CPU (no I/O), and the
    transport against a bare Session.post on the wire."""
    import requests

    from gateway_core import HttpRequest, RequestsTransport
    from gateway_faspay_dana import FaspayDanaGateway
    from gateway_faspay_dana._messages.create import PostDataRequest
    from gateway_faspay_dana._wire import encode_json, jakarta_now

    template = _template()
    url = server.url + "/cvr/300011/10"
    session = requests.Session()
    probe = _bodies(_gateway(server.url), ["BKPROBE"])[0]
    answer = session.post(url, data=probe, headers=_HEADERS, timeout=(3.05, 20)).content
    offline = FaspayDanaGateway(
        _gateway(server.url).config, transport=_CannedTransport(answer, "BKPROBE")
    )
    n = max(1000, calls)
    items = [attrs.evolve(template, merchant_reference=f"BK{i:08d}") for i in range(n)]
    _candidate(offline, items[:200])
    create_cpu = _per_call(offline.create, items)
    config = offline.config

    def build(request: Any) -> bytes:
        message = PostDataRequest.from_payment_request(request, config, now=jakarta_now())
        return encode_json(message.to_payload())

    build_cpu = _per_call(build, items)
    table.row(
        "breakdown: adapter create() CPU, canned answer (no I/O)",
        "-",
        f"{create_cpu * 1e6:.0f} µs",
        "-",
        "info (≤ 100 µs added per call)",
    )
    table.row(
        "breakdown: of which build + sign + encode the request",
        "-",
        f"{build_cpu * 1e6:.0f} µs",
        "-",
        "info",
    )

    # The transport alone on the wire, interleaved with Session.post (same bodies).
    transport = RequestsTransport(connect_timeout=3.05, read_timeout=20.0)
    count = rounds * calls + 100
    base_bodies = _bodies(offline, [f"BT{i:08d}" for i in range(count)])
    cand_bodies = _bodies(offline, [f"BU{i:08d}" for i in range(count)])
    headers = dict(_HEADERS)

    def via_transport(bodies: list[bytes]) -> list[float]:
        times = []
        clock = time.perf_counter
        for body in bodies:
            start = clock()
            transport.send(
                HttpRequest("POST", url, body=body, headers=headers, operation="create"),
                timeout=30.0,
            )
            times.append(clock() - start)
        return times

    _baseline(session, url, base_bodies[:100])
    via_transport(cand_bodies[:100])
    base_rounds, cand_rounds = [], []
    for r in range(rounds):
        lo, hi = 100 + r * calls, 100 + (r + 1) * calls
        base_rounds.append(median(_baseline(session, url, base_bodies[lo:hi])))
        cand_rounds.append(median(via_transport(cand_bodies[lo:hi])))
    transport.close()
    session.close()
    base, cand = median(base_rounds), median(cand_rounds)
    table.row(
        "breakdown: RequestsTransport.send alone (wire)",
        f"{base * 1e6:.0f} µs",
        f"{cand * 1e6:.0f} µs",
        f"{cand / base:.2f}×",
        "info",
    )


def run(*, calls: int, rounds: int, warmup: int, p2_calls: int) -> Table:
    import requests

    table = Table("P1 + P2 — adapter create() against the emulator (loopback, keep-alive)")
    client_pin = pin(1)
    server = Server()
    try:
        url = server.url + "/cvr/300011/10"
        gateway = _gateway(server.url)
        template = _template()
        total = warmup + rounds * calls
        base_bodies = _bodies(gateway, [f"BB{i:08d}" for i in range(total)])
        cand_requests = [
            attrs.evolve(template, merchant_reference=f"BC{i:08d}") for i in range(total)
        ]
        session = requests.Session()
        # Warm-up: connections, caches, the emulator's code paths.
        _baseline(session, url, base_bodies[:warmup])
        _candidate(gateway, cand_requests[:warmup])
        base_rounds: list[float] = []
        cand_rounds: list[float] = []
        base_cpu: list[float] = []
        cand_cpu: list[float] = []
        for r in range(rounds):
            lo, hi = warmup + r * calls, warmup + (r + 1) * calls
            cpu = time.process_time()
            base_rounds.append(median(_baseline(session, url, base_bodies[lo:hi])))
            base_cpu.append((time.process_time() - cpu) / calls)
            cpu = time.process_time()
            cand_rounds.append(median(_candidate(gateway, cand_requests[lo:hi])))
            cand_cpu.append((time.process_time() - cpu) / calls)
        session.close()
        gateway.close()

        base, cand = median(base_rounds), median(cand_rounds)
        ratio = cand / base
        per_round = [c / b for b, c in zip(base_rounds, cand_rounds, strict=True)]
        table.row(
            "P1 create() median latency",
            f"{base * 1e6:.0f} µs",
            f"{cand * 1e6:.0f} µs",
            verdict(ratio, 1.15, at_most=True),
            "≤ 1.15× (stretch ≤ 1.10×, CI ≤ 1.5×)",
        )
        table.row(
            "P1 adapter time added per call",
            "-",
            f"{(cand - base) * 1e6:+.0f} µs",
            "-",
            "≤ 100 µs",
        )
        bcpu, ccpu = median(base_cpu), median(cand_cpu)
        table.row(
            "P1 client CPU per call (process_time)",
            f"{bcpu * 1e6:.0f} µs",
            f"{ccpu * 1e6:.0f} µs",
            f"{ccpu / bcpu:.2f}× ({(ccpu - bcpu) * 1e6:+.0f} µs)",
            "info",
        )

        # P2: a fresh gateway (its own pool), one warm-up call, then p2_calls more.
        gateway = _gateway(server.url)
        fresh = [
            attrs.evolve(template, merchant_reference=f"BP{i:08d}") for i in range(p2_calls + 1)
        ]
        before = server.accepts()
        gateway.create(fresh[0])
        after_warmup = server.accepts()
        _candidate(gateway, fresh[1:])
        after = server.accepts()
        gateway.close()
        table.row(
            f"P2 connections opened, {p2_calls} sequential calls (+1 warm-up)",
            "-",
            f"{after - before} in all, {after - after_warmup} after warm-up",
            "-",
            "1 in all, 0 after warm-up",
        )
        _breakdown(table, server, calls, rounds)
        table.note(
            f"{rounds} interleaved rounds (baseline then candidate) × {calls} calls per "
            f"variant after {warmup} warm-up calls each; per-round µs baseline "
            f"{spread([b * 1e6 for b in base_rounds], 0)}, candidate "
            f"{spread([c * 1e6 for c in cand_rounds], 0)}; per-round ratios {spread(per_round)}"
        )
        table.note(
            "baseline: requests.Session().post(data=<pre-serialised signed body>, "
            "timeout=(3.05, 20)) + .content; each call a new bill_no; emulator in a child "
            f"process (CPU 0), client {client_pin}"
        )
    finally:
        server.close()
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (smaller batches)")
    parser.add_argument("--calls", type=int, default=None, help="calls per variant per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    calls = args.calls or (300 if args.quick else 2000)
    warmup = 50 if args.quick else 200
    p2_calls = 200 if args.quick else 1000
    run(calls=calls, rounds=args.rounds, warmup=warmup, p2_calls=p2_calls).print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
