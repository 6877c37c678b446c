"""The whole stack for channel tests: the emulator (every channel of the catalogue enabled)
over loopback HTTP, the merchant's WSGI endpoints on a real server, the payment service on a
real ledger (the ``channel_stack`` fixture in ``conftest.py`` runs it on SQLite and
PostgreSQL), and a hook recorder as the order system."""

from __future__ import annotations

import socketserver
import threading
import wsgiref.simple_server
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import requests

from gateway_core import Customer, Money, PaymentRequest, PluginHost, Settings
from gateway_core._runtime import Runtime, build_runtime
from gateway_core._service import ServicePolicy
from gateway_core.testing import HookRecorder
from gateway_core.web import make_wsgi_app
from gateway_faspay_dana._channels import CHANNELS

PASSWORD = "S3NT1NEL-pw-Xq7t2LmZ9vR4"  # a sentinel: tests look for it where it must not be
GATEWAY = "faspay"
#: The methods the gateway offers unless a test asks for others.
DEFAULT_METHODS = ("dana", "bca_va", "indomaret", "qris_paydia", "ovo")


class _Quiet(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


class _Threading(socketserver.ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True


class _Late:
    target: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.target(environ, start_response)


class ChannelStack:
    """The emulator (every channel enabled), the merchant endpoints and the service.

    ``methods`` are the gateway's ``channels`` setting; ``recorder`` receives every hook
    event.
    """

    def __init__(
        self,
        ledger_url: str,
        *,
        methods: Sequence[str] = DEFAULT_METHODS,
    ) -> None:
        from gateway_faspay_dana.emulator import EmulatorApp, EmulatorServer, Merchant

        late = _Late()
        self.merchant_server = wsgiref.simple_server.make_server(
            "127.0.0.1", 0, late, server_class=_Threading, handler_class=_Quiet
        )
        self.merchant_url = f"http://127.0.0.1:{self.merchant_server.server_port}"
        merchant = Merchant(
            "99999",
            merchant_name="Test Store",
            password=PASSWORD,
            notification_url=f"{self.merchant_url}/notify/{GATEWAY}",
            return_url=f"{self.merchant_url}/return/{GATEWAY}",
            channels=tuple(c.code for c in CHANNELS),
        )
        self.emulator = EmulatorApp(merchant, retry_interval=0.05)
        self.server = EmulatorServer(self.emulator).start()
        settings = Settings(
            providers={
                GATEWAY: {
                    "provider": "faspay_dana",
                    "merchant_id": "99999",
                    "merchant_name": "Test Store",
                    "password": PASSWORD,
                    "base_url": self.server.url,
                    "read_timeout": 2.0,
                    "deadline": 6.0,
                    "channels": list(methods),
                    "ovo_flow": "push",
                }
            },
            ledger_url=ledger_url,
        )
        self.recorder = HookRecorder()
        self.runtime: Runtime = build_runtime(
            settings,
            host=PluginHost(),
            plugins=[self.recorder],
            environ={},
            policy=ServicePolicy(reconcile_grace=timedelta(0)),
        )
        late.target = make_wsgi_app(self.runtime.service, return_page=f"{self.merchant_url}/x")
        threading.Thread(target=self.merchant_server.serve_forever, daemon=True).start()

    @property
    def service(self) -> Any:
        return self.runtime.service

    def request(self, order: str, method: str, phone: str = "081234567890") -> PaymentRequest:
        return PaymentRequest(
            order_reference=order,
            amount=Money("150000", "IDR"),
            customer=Customer("Budi", email="budi@example.com", phone=phone),
            description=f"Order {order}",
            return_url=f"{self.merchant_url}/return/{GATEWAY}",
            method=method,
        )

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = requests.post(f"{self.server.url}/_emulator/{path}", json=body or {}, timeout=5)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def wait(self) -> None:
        assert self.emulator.wait_for_deliveries(10.0), "emulator deliveries did not finish"

    def close(self) -> None:
        self.server.stop()
        self.merchant_server.shutdown()
        self.merchant_server.server_close()
        self.runtime.close()
