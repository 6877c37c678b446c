"""Child processes of ``run.py``: a TLS Faspay emulator, the Acme webhook server, and the
memory workers of P12. Each prints one line (its port, or its JSON result) on stdout.

    python _serve.py tls-emulator CERT KEY
    python _serve.py acme-webhook DB
    python _serve.py memory baseline|candidate EMULATOR_URL CALLS SEGMENTS
"""

from __future__ import annotations

import gc
import json
import ssl
import sys
import time
import tracemalloc
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

import attrs

from adapters.tests.benchmarks import _acme
from adapters.tests.benchmarks._common import emulator_app, pin, quiet_logging


class _KeepAliveHandler(WSGIRequestHandler):
    """wsgiref's handler, HTTP/1.1 with keep-alive (it serves one request per connection)
    and without Nagle's algorithm (headers and body are separate writes)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection:
            self.handle_one_request()

    def handle_one_request(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline or len(self.raw_requestline) > 65536:
            self.close_connection = True
            return
        if not self.parse_request():
            return
        handler = ServerHandler(
            self.rfile, self.wfile, self.get_stderr(), self.get_environ(), multithread=True
        )
        handler.request_handler = self  # type: ignore[attr-defined]
        handler.http_version = "1.1"
        handler.run(self.server.get_app())  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _TLSServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def tls_emulator(cert: str, key: str) -> None:
    """The Faspay emulator (WSGI) behind TLS on a free loopback port: the standard library's
    WSGI server, threaded, HTTP/1.1 keep-alive, the listening socket wrapped by an
    ``ssl.SSLContext`` holding ``cert`` (issued for 127.0.0.1) and ``key``."""
    pin(0)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = _TLSServer(("127.0.0.1", 0), _KeepAliveHandler)
    server.set_app(emulator_app())
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def acme_webhook(db: str) -> None:
    """The library's WSGI app for the Acme gateway (waitress, 4 threads) on ``db``."""
    import waitress.server

    from gateway_core.ledger import SQLiteLedger
    from gateway_core.web import make_wsgi_app

    pin(0)
    ledger = SQLiteLedger(db, synchronous="NORMAL")
    ledger.migrate()
    app = make_wsgi_app(_acme.service(ledger))
    server = waitress.server.create_server(app, host="127.0.0.1", port=0, threads=4)
    print(server.effective_port, flush=True)
    server.run()


def _rss() -> int:
    """Resident set size in bytes (Linux /proc; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def memory(variant: str, url: str, calls: int, segments: int) -> None:
    """``calls`` creates (``candidate``: ``FaspayDanaGateway.create``) or bare
    ``Session.post`` of the same kind of body (``baseline``), after 200 warm-up calls; RSS and
    tracemalloc's traced memory after each of ``segments`` segments (after ``gc.collect``)."""
    import requests

    from adapters.tests.benchmarks.bench_create import (
        _baseline,
        _bodies,
        _candidate,
        _gateway,
        _template,
    )

    pin(1)
    warmup = 200
    gateway = _gateway(url)
    session = requests.Session()
    post_url = url + "/cvr/300011/10"
    prefix = "MB" if variant == "baseline" else "MC"
    if variant == "baseline":
        items: list[Any] = _bodies(gateway, [f"{prefix}{i:08d}" for i in range(warmup + calls)])

        def run(chunk: list[Any]) -> None:
            _baseline(session, post_url, chunk)

    else:
        template = _template()
        items = [
            attrs.evolve(template, merchant_reference=f"{prefix}{i:08d}")
            for i in range(warmup + calls)
        ]

        def run(chunk: list[Any]) -> None:
            _candidate(gateway, chunk)

    run(items[:warmup])
    gc.collect()
    tracemalloc.start(1)
    rss0, traced0 = _rss(), tracemalloc.get_traced_memory()[0]
    samples = []
    size = calls // segments
    start = time.perf_counter()
    for s in range(segments):
        run(items[warmup + s * size : warmup + (s + 1) * size])
        gc.collect()
        samples.append((_rss() - rss0, tracemalloc.get_traced_memory()[0] - traced0))
    elapsed = time.perf_counter() - start
    tracemalloc.stop()
    session.close()
    gateway.close()
    print(json.dumps({"samples": samples, "calls": size * segments, "seconds": elapsed}))


def main(argv: list[str]) -> int:
    quiet_logging()
    kind = argv[0]
    if kind == "tls-emulator":
        tls_emulator(argv[1], argv[2])
    elif kind == "acme-webhook":
        acme_webhook(argv[1])
    elif kind == "memory":
        memory(argv[1], argv[2], int(argv[3]), int(argv[4]))
    else:
        raise SystemExit(f"unknown server {kind!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
