"""Helpers for the Midtrans emulator tests (a unique module name: importable as
``midtrans_emulator_support``): a merchant endpoint on loopback that answers webhooks from a
script and records them, the Basic header, a Snap create, the page's forms, and the
reference's signature formula written out independently with hashlib."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urljoin

import requests

#: The reference's shared emulator key (§4.6) — the emulator's default merchant.
SERVER_KEY = "SB-Mid-server-Emu1ator-Shared-Key-01"
MERCHANT_ID = "G123450001"


def sha512_signature(order_id: str, status_code: str, gross_amount: str, key: str) -> str:
    """§4.6, written out here independently of the emulator's code."""
    return hashlib.sha512(f"{order_id}{status_code}{gross_amount}{key}".encode()).hexdigest()


def auth(key: str = SERVER_KEY) -> dict[str, str]:
    """``Authorization: Basic base64(key + ":")`` plus the JSON headers (§1.2, §1.3)."""
    token = base64.b64encode(f"{key}:".encode()).decode()
    return {
        "Authorization": f"Basic {token}",
        "Accept": "application/json",
        "Content-Type": "application/json",
    }


def snap_body(order_id: str, amount: int = 250000, **extra: Any) -> dict[str, Any]:
    """A create body with items that add up (§2.9)."""
    body: dict[str, Any] = {
        "transaction_details": {"order_id": order_id, "gross_amount": amount},
        "item_details": [
            {"id": "SKU-1", "price": amount + 5000, "quantity": 1, "name": "Kaos"},
            {"id": "PROMO", "price": -5000, "quantity": 1, "name": "Diskon"},
        ],
    }
    body.update(extra)
    return body


def create(
    base: str,
    order_id: str,
    amount: int = 250000,
    *,
    key: str = SERVER_KEY,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> requests.Response:
    """``POST /snap/v1/transactions``."""
    return requests.post(
        f"{base}/snap/v1/transactions",
        data=json.dumps(snap_body(order_id, amount, **extra)),
        headers={**auth(key), **(headers or {})},
        timeout=10,
    )


def core(
    base: str,
    method: str,
    ident: str,
    action: str,
    body: Any = None,
    *,
    key: str = SERVER_KEY,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """A Core API call ``/v2/{ident}/{action}``."""
    data = None if body is None else json.dumps(body)
    return requests.request(
        method,
        f"{base}/v2/{ident}/{action}",
        data=data,
        headers={**auth(key), **(headers or {})},
        timeout=10,
    )


class Forms(HTMLParser):
    """The page's forms: id -> (action, hidden inputs, select names)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, tuple[str, dict[str, str]]] = {}
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = values.get("id", "")
            self.forms[self._current] = (values.get("action", ""), {})
        elif tag == "input" and self._current is not None and values.get("name"):
            self.forms[self._current][1][values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def press(page_url: str, outcome: str, **fields: str) -> requests.Response:
    """Open the page like a browser and submit the form of ``outcome`` (not following the
    redirect)."""
    with requests.Session() as browser:
        page = browser.get(page_url, timeout=10)
        page.raise_for_status()
        forms = Forms()
        forms.feed(page.text)
        action, hidden = forms.forms[f"snap-{outcome}"]
        return browser.post(
            urljoin(page.url, action),
            data={**hidden, **fields},
            allow_redirects=False,
            timeout=10,
        )


class MerchantEndpoint:
    """Answers webhooks with scripted statuses (then 200) and records them."""

    def __init__(self, statuses: Iterable[int] = ()) -> None:
        self.statuses = list(statuses)
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with endpoint._lock:
                    endpoint.received.append((dict(self.headers.items()), json.loads(raw)))
                    status = endpoint.statuses.pop(0) if endpoint.statuses else 200
                self.send_response(status)
                if status in (301, 302, 303, 307, 308):
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/midtrans/notify"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def bodies(self) -> list[dict[str, Any]]:
        """The webhook bodies received, in arrival order."""
        with self._lock:
            return [body for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def running_merchant(statuses: Iterable[int] = ()) -> Iterator[MerchantEndpoint]:
    """A generator for a fixture."""
    endpoint = MerchantEndpoint(statuses)
    try:
        yield endpoint
    finally:
        endpoint.close()


# --- for the conformance kit's run on the emulator (test_midtrans_conformance.py) -----------


def emulator_or_skip(request: Any) -> Any:
    """The running emulator (fixture ``midtrans_emulator``), or skip naming the fixture when
    the emulator's pytest plugin is not installed."""
    import pytest

    try:
        return request.getfixturevalue("midtrans_emulator")
    except pytest.FixtureLookupError:
        pytest.skip("fixture 'midtrans_emulator' not found (the emulator's pytest plugin)")


def settings(emulator: Any, *, notification_url: str = "") -> dict[str, str]:
    """Gateway settings pointing at ``emulator`` (its first merchant); ``notification_url``
    (sent by the plugin as ``X-Override-Notification``) when given."""
    merchant = emulator.app.merchant()
    values = {
        "server_key": merchant.server_key,
        "merchant_id": merchant.merchant_id,
        "environment": "sandbox",
        "base_url": emulator.url,
        "snap_base_url": emulator.url,
        "api_base_url": emulator.url,
    }
    if notification_url:
        values["notification_url"] = notification_url
    return values


def customer_chooses(emulator: Any, token: str, method: str | None = None) -> dict[str, Any]:
    """The customer picks a payment method on the Snap page of ``token`` (a pending attempt;
    GoPay unless ``method``)."""
    record: dict[str, Any] = emulator.app.choose(token, method)
    return record


def customer_pays(emulator: Any, reference: str) -> dict[str, Any]:
    """The customer completes the order's open attempt: a card is captured then settled (as
    the settlement job would), any other method settles; without an attempt one is made with
    the default method and settled."""
    app = emulator.app
    try:
        latest = app.transaction(reference)
    except Exception:
        latest = None
    if latest is not None and latest["payment_type"] == "credit_card":
        if latest["transaction_status"] == "pending":
            app.act("capture", reference)
        record: dict[str, Any] = app.act("settle", reference)
        return record
    return dict(app.act("pay", reference))
