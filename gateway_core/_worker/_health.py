"""The worker's health endpoint: a tiny HTTP server (the standard library's) on its own
thread. ``/healthz`` (liveness) answers 200 while the loop finishes passes; ``/readyz``
(readiness) answers 200 while the ledger answers a ping and the worker is not stopping.

Other routes plug in as ``path -> Route``: a :data:`Route` is a function of no arguments
returning (HTTP status, content type, body). ``gateway worker`` adds the ones
:func:`gateway_core._cli_worker.extra_routes` gives (``/metrics``, say).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gateway_core._redact import get_logger
from gateway_core._worker._loop import Worker
from gateway_core.ledger import Ledger

log = get_logger("gateway_core.worker")

#: A route: () -> (status, content type, body).
Route = Callable[[], tuple[int, str, bytes]]

_TEXT = "text/plain; charset=utf-8"


def worker_routes(worker: Worker, ledger: Ledger, *, ping_timeout: float = 2.0) -> dict[str, Route]:
    """``/healthz`` and ``/readyz`` for ``worker`` and its ``ledger``."""

    def healthz() -> tuple[int, str, bytes]:
        if worker.alive():
            return 200, _TEXT, b"ok\n"
        return 503, _TEXT, b"stale: no pass finished recently\n"

    def readyz() -> tuple[int, str, bytes]:
        if worker.stopping:
            return 503, _TEXT, b"stopping\n"
        try:
            ledger.ping(ping_timeout)
        except Exception as exc:  # the type only: a message could name the database host
            return 503, _TEXT, f"ledger unavailable: {type(exc).__name__}\n".encode()
        return 200, _TEXT, b"ready\n"

    return {"/healthz": healthz, "/readyz": readyz}


class HealthServer:
    """Serve ``routes`` on ``host:port`` (0: a free port, see :attr:`port`) from a daemon
    thread: :meth:`start`, :meth:`close`. GET and HEAD only; anything else 404 or 405. A
    connection silent for ``request_timeout`` seconds is closed."""

    def __init__(
        self,
        host: str,
        port: int,
        routes: Mapping[str, Route],
        *,
        request_timeout: float = 10.0,
    ) -> None:
        table = dict(routes)

        class Handler(BaseHTTPRequestHandler):
            server_version = "gateway-worker"
            sys_version = ""
            # A client that connects and sends nothing (or trickles) is dropped after this
            # many seconds of silence, instead of holding a thread forever.
            timeout = request_timeout

            def _answer(self, body_wanted: bool) -> None:
                route = table.get(self.path.split("?", 1)[0])
                if route is None:
                    status, kind, body = 404, _TEXT, b"not found\n"
                else:
                    try:
                        status, kind, body = route()
                    except Exception as exc:
                        log.warning("health route %s failed: %s", self.path, type(exc).__name__)
                        status, kind, body = 500, _TEXT, b"error\n"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if body_wanted:
                    self.wfile.write(body)

            def do_GET(self) -> None:
                self._answer(True)

            def do_HEAD(self) -> None:
                self._answer(False)

            def log_message(self, format: str, *args: Any) -> None:
                return None  # probes every few seconds: not worth a log line each

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.host = host

    @property
    def port(self) -> int:
        """The port listened on (the real one when 0 was asked)."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> HealthServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="gateway-worker-health", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
