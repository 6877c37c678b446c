"""Helpers of the emulator channel-family tests: a merchant receiver, raw Faspay calls built
in the test (signatures from ``gateway_faspay_dana._signature``) and the plugin's verifier."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

import defusedxml.ElementTree as SafeET
import requests

from gateway_faspay_dana._signature import bill_signature, sign
from gateway_faspay_dana.emulator import EmulatorApp, EmulatorServer, Merchant, example_post_data

PASSWORD = "p@ssw0rd"
MERCHANT_ID = "99999"

#: One channel per row: code, family (the emulator's channel registry, §1).
FAMILY_OF = {
    "402": "virtual_account",
    "702": "virtual_account",
    "800": "virtual_account",
    "801": "virtual_account",
    "802": "virtual_account",
    "408": "virtual_account",
    "708": "virtual_account",
    "818": "virtual_account",
    "825": "virtual_account",
    "706": "retail",
    "707": "retail",
    "711": "qris",
    "715": "qris",
    "836": "qris",
    "713": "ewallet_redirect",
    "302": "ewallet_redirect",
    "716": "ewallet_redirect",
    "812": "ovo",
    "819": "dana",
}


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class Receiver:
    """A merchant notification endpoint acknowledging in the format it received."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.lock = threading.Lock()
        self.server = make_server(
            "127.0.0.1", 0, self.app, server_class=_ThreadingServer, handler_class=_Quiet
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}/notify"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        with self.lock:
            self.bodies.append(body)
        if body.lstrip().startswith(b"<"):
            reply = b"<faspay><response_code>00</response_code></faspay>"
            kind = "text/xml"
        else:
            reply = json.dumps({"response_code": "00"}).encode()
            kind = "application/json"
        start_response("200 OK", [("Content-Type", kind)])
        return [reply]

    def fields(self) -> list[dict[str, str]]:
        """Every received body as fields (XML or JSON)."""
        return [parse_fields(b) for b in self.bodies]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def parse_fields(body: bytes) -> dict[str, str]:
    """Top-level text fields of an XML or JSON body."""
    if body.lstrip().startswith(b"<"):
        root = SafeET.fromstring(body)
        return {c.tag: (c.text or "").strip() for c in root if not len(c)}
    return {k: v for k, v in json.loads(body).items() if isinstance(v, str)}


def merchant(receiver: Receiver | None = None, **changes: Any) -> Merchant:
    """The test merchant with every modelled channel enabled."""
    options: dict[str, Any] = {
        "merchant_name": "Toko Contoh",
        "password": PASSWORD,
        "channels": ("all",),
        "notification_url": receiver.url if receiver else "",
        "return_url": "https://shop.example/faspay/return",
    }
    options.update(changes)
    return Merchant(MERCHANT_ID, **options)


def start(shop: Merchant, **options: Any) -> EmulatorServer:
    options.setdefault("retry_interval", 0.05)
    options.setdefault("notification_timeout", 2.0)
    return EmulatorServer(EmulatorApp(shop, **options)).start()


def post_data(shop: Merchant, bill_no: str, channel: str, **overrides: Any) -> dict[str, Any]:
    """A signed Post Data Transaction for ``channel`` (the signature covers only bill_no)."""
    return example_post_data(shop, bill_no, payment_channel=channel, **overrides)


def create(server: EmulatorServer, shop: Merchant, bill_no: str, channel: str, **kw: Any) -> Any:
    response = requests.post(
        server.url + "/cvr/300011/10", json=post_data(shop, bill_no, channel, **kw), timeout=5
    )
    assert response.status_code == 200
    return response.json()


def reference(shop: Merchant, bill_no: str, trx_id: str) -> dict[str, str]:
    return {
        "request": "Inquiry Status Payment",
        "trx_id": trx_id,
        "merchant_id": shop.merchant_id,
        "bill_no": bill_no,
        "signature": bill_signature(shop.user_id, shop.password, bill_no),
    }


def inquire(server: EmulatorServer, shop: Merchant, bill_no: str, trx_id: str) -> Any:
    body = reference(shop, bill_no, trx_id)
    return requests.post(server.url + "/cvr/100004/10", json=body, timeout=5).json()


def cancel(server: EmulatorServer, shop: Merchant, bill_no: str, trx_id: str) -> Any:
    body = {**reference(shop, bill_no, trx_id), "payment_cancel": "Barang Habis"}
    return requests.post(server.url + "/cvr/100005/10", json=body, timeout=5).json()


def control(server: EmulatorServer, path: str, body: dict[str, Any] | None = None) -> Any:
    """POST to the control API; returns (status, json)."""
    response = requests.post(f"{server.url}/_emulator/{path}", json=body or {}, timeout=10)
    return response.status_code, response.json()


def ovo_push(server: EmulatorServer, shop: Merchant, trx_id: str, number: str) -> Any:
    """``POST /pws/ovo_direct`` form-encoded, signed over ``trx_id`` (§4.2)."""
    form = {
        "trx_id": trx_id,
        "ovo_number": number,
        "signature": sign(shop.user_id, shop.password, trx_id),
    }
    response = requests.post(server.url + "/pws/ovo_direct", data=form, timeout=10)
    assert response.status_code == 200
    return response.json()


def pay(server: EmulatorServer, shop: Merchant, bill_no: str, trx_id: str, family: str) -> Any:
    """The simulated payer of ``family`` pays the bill through the control API."""
    if family == "virtual_account":
        return control(server, f"va/{trx_id}/transfer", {"bank": "BCA"})
    if family == "retail":
        return control(server, f"retail/{trx_id}/pay", {"store": "Indomaret Cikini"})
    if family == "qris":
        return control(server, f"qr/{trx_id}/scan", {"issuer": "GoPay"})
    if family == "ovo":
        assert ovo_push(server, shop, trx_id, "081200001234")["response_code"] == "00"
        return control(server, f"ovo/{trx_id}/respond", {"action": "approve"})
    return control(server, "pay", {"bill_no": bill_no})


def gateway_for(server: EmulatorServer, shop: Merchant) -> Any:
    """The plugin's gateway, configured against the emulator (its verifier)."""
    from gateway_faspay_dana import FaspayDanaGateway

    return FaspayDanaGateway.from_config(
        {
            "merchant_id": shop.merchant_id,
            "merchant_name": shop.merchant_name,
            "user_id": shop.user_id,
            "password": shop.password,
            "base_url": server.url,
        },
        environ={},
    )


def wait(server: EmulatorServer) -> None:
    assert server.app.wait_for_deliveries(10)
