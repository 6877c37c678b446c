"""The worker's health server and the metrics against an attacker (security review).

* A client that connects to ``/healthz`` and sends nothing is dropped after the request
  timeout instead of holding a server thread forever.
* Metric labels never come from attacker input: hundreds of notifications to unknown gateway
  paths, with junk bodies, junk signatures and unknown references, add a bounded set of series
  (gateway names from the configuration, reasons from the core's closed list), and the
  exposition names none of the attacker's strings.
"""

from __future__ import annotations

import socket
import threading
import uuid
import wsgiref.simple_server
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from gateway_core import PaymentService, PluginHost
from gateway_core._worker._health import HealthServer
from gateway_core.metrics import Metrics
from gateway_core.testing import FakeGateway
from gateway_core.web import make_wsgi_app


class _Quiet(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


def test_a_silent_client_is_dropped_by_the_health_server() -> None:
    server = HealthServer(
        "127.0.0.1", 0, {"/healthz": lambda: (200, "text/plain", b"ok\n")}, request_timeout=0.5
    ).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as idle:
            try:
                closed = idle.recv(1) == b""
            except TimeoutError:
                closed = False  # still held open after 10 s
        assert closed, "the health server kept a silent connection open"
        assert requests.get(f"{server.url}/healthz", timeout=5).text == "ok\n"
    finally:
        server.close()


@pytest.fixture
def site(sqlite_store: Any) -> Iterator[tuple[str, Metrics]]:
    ledger = sqlite_store.open()
    ledger.migrate()
    metrics = Metrics(observe_provider_calls=False)
    service = PaymentService(
        gateways={"shop": FakeGateway()},
        ledger=ledger,
        hooks=PluginHost(entry_points=False).hooks,
        metrics=metrics,
    )
    server = wsgiref.simple_server.make_server(
        "127.0.0.1", 0, make_wsgi_app(service), handler_class=_Quiet
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", metrics
    finally:
        server.shutdown()
        server.server_close()
        ledger.close()


def test_attacker_paths_and_bodies_add_no_metric_series(site: tuple[str, Metrics]) -> None:
    url, metrics = site
    marks = [f"zz{uuid.uuid4().hex[:12]}" for _ in range(40)]
    with requests.Session() as attacker:
        for mark in marks:
            attacker.post(f"{url}/notify/{mark}", data=b"{}", timeout=5)  # unknown gateway
            attacker.get(f"{url}/return/{mark}?reference={mark}", timeout=5)
            attacker.post(f"{url}/notify/shop", data=f'{{"reason": "{mark}"}}', timeout=5)
            attacker.post(
                f"{url}/notify/shop",
                data=f'{{"reference": "{mark}", "status": "paid"}}',
                headers={"X-Fake-Signature": mark},
                timeout=5,
            )
            attacker.get(f"{url}/return/shop?reference={mark}&status=paid&signature={mark}")
    exposition = metrics.render()[0].decode()
    assert not any(mark in exposition for mark in marks)
    series = [
        line
        for line in exposition.splitlines()
        if line.startswith("gateway_inbound_messages_total{")
    ]
    assert 1 <= len(series) <= 4, series  # a handful of (kind, verdict, reason), not 200
    assert all('gateway="shop"' in line for line in series)
