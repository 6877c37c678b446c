"""The Faspay emulator's HTTP server: the emulation kit's socket-level server
(:class:`gateway_core.emulation.http_server.HttpServer`, which documents the socket faults) with
the Faspay emulator's thread names and ``Server`` header."""

from __future__ import annotations

from typing import Any

from gateway_core.emulation.http_server import HttpServer
from gateway_faspay_dana.emulator._app import EmulatorApp


class EmulatorServer(HttpServer):
    """Serve an :class:`EmulatorApp` on ``host:port`` (0 = a free port); see
    :class:`HttpServer` for the options. ``url`` is what Faspay's base URL is set to."""

    app: EmulatorApp

    def __init__(self, app: EmulatorApp, host: str = "127.0.0.1", port: int = 0, **options: Any):
        options.setdefault("name", "faspay-emulator")
        options.setdefault("server_name", "faspay-dana-emulator")
        super().__init__(app, host, port, **options)
