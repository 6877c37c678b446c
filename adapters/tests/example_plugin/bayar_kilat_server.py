"""A tiny stateful Bayar Kilat server for tests: the provider side of the example plugin.

Not part of the plugin (a plugin never ships its provider). A WSGI app, :class:`KilatApp`,
served on loopback by :class:`KilatServer` (``wsgiref``, threaded):

* ``POST /v1/payments`` (bearer key, ``Idempotency-Key`` required): the same key answers with
  the payment it already made; the same key with another body is a 422;
* ``GET /v1/payments/<id>``, ``POST /v1/payments/<id>/cancel``;
* ``POST /checkout`` (form ``token``): the customer's page, with a "Pay" form posting to
  ``POST /checkout/pay``, which pays, delivers the signed ``payment.paid`` notification, and
  answers with an auto-submitting form POSTing the signed return to the payment's
  ``return_url``;
* test controls: :meth:`KilatApp.lose_create_answers` (the next create is processed but its
  answer is a 502), :meth:`KilatApp.pay`, :meth:`KilatApp.refund`.
"""

from __future__ import annotations

import html
import json
import secrets
import socketserver
import threading
import urllib.error
import urllib.request
import wsgiref.simple_server
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from bayar_kilat import notification_headers, signed_return_fields

StartResponse = Callable[..., Any]

_REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request"}


class KilatApp:
    """The provider's state and its HTTP API (a WSGI app)."""

    def __init__(
        self,
        *,
        account: str,
        api_key: str,
        webhook_secret: str,
        notify_url: str = "",
    ) -> None:
        self.account = account
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.notify_url = notify_url
        self.base_url = ""  # set by KilatServer
        self._lock = threading.RLock()
        self.payments: dict[str, dict[str, Any]] = {}
        self._by_key: dict[str, tuple[bytes, str]] = {}
        self._by_token: dict[str, str] = {}
        self._lose_creates = 0
        #: Every create request: (idempotency key, answered status code).
        self.create_log: list[tuple[str, int]] = []
        #: Every notification delivered: (event type, status code, response body).
        self.deliveries: list[tuple[str, int, bytes]] = []

    # -- test controls ----------------------------------------------------------------------

    def lose_create_answers(self, count: int = 1) -> None:
        """The next ``count`` creates are processed, but answered with a 502."""
        with self._lock:
            self._lose_creates += count

    def payment_by_reference(self, reference: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(p) for p in self.payments.values() if p["reference"] == reference]

    def pay(self, payment_id: str) -> int:
        """Mark the payment paid and deliver ``payment.paid``; the merchant's status code."""
        with self._lock:
            payment = self.payments[payment_id]
            payment["status"] = "paid"
        return self.notify("payment.paid", payment)

    def refund(self, payment_id: str, amount: int) -> int:
        """Refund part of a paid payment and deliver ``refund.succeeded``."""
        with self._lock:
            payment = self.payments[payment_id]
            refund_id = "re_" + secrets.token_hex(6)
            payment.setdefault("refunds", []).append({"id": refund_id, "amount": amount})
        return self.notify("refund.succeeded", payment, refund_id=refund_id, amount=amount)

    def event_body(self, kind: str, payment: dict[str, Any], **extra: Any) -> bytes:
        data = {
            "payment_id": payment["id"],
            "reference": payment["reference"],
            "status": payment["status"],
            "amount": payment["amount"],
            "currency": payment["currency"],
            **extra,
        }
        event = {
            "id": "evt_" + secrets.token_hex(6),
            "type": kind,
            "account": self.account,
            "data": data,
        }
        return json.dumps(event).encode()

    def notify(self, kind: str, payment: dict[str, Any], **extra: Any) -> int:
        """POST a signed event to ``notify_url``; the answer's status code."""
        body = self.event_body(kind, payment, **extra)
        headers = notification_headers(self.webhook_secret, body)
        request = urllib.request.Request(self.notify_url, body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, answer = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, answer = exc.code, exc.read()
        with self._lock:
            self.deliveries.append((kind, status, answer))
        return int(status)

    # -- WSGI -------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        if path.startswith("/checkout"):
            status, ctype, body = self._checkout(path, dict(parse_qsl(raw.decode())))
        elif environ.get("HTTP_AUTHORIZATION") != f"Bearer {self.api_key}":
            status, ctype, body = _json(401, {"error": "unauthorized"})
        else:
            key = environ.get("HTTP_IDEMPOTENCY_KEY", "")
            status, ctype, body = self._api(method, path, raw, key)
        reason = _REASONS.get(status, "Error")
        start_response(f"{status} {reason}", [("Content-Type", ctype)])
        return [body]

    def _api(self, method: str, path: str, raw: bytes, key: str) -> tuple[int, str, bytes]:
        parts = [p for p in path.split("/") if p]
        if method == "POST" and parts == ["v1", "payments"]:
            return self._create(raw, key)
        if len(parts) >= 3 and parts[:2] == ["v1", "payments"]:
            with self._lock:
                payment = self.payments.get(parts[2])
                if payment is None:
                    return _json(404, {"error": "not_found"})
                if method == "GET" and len(parts) == 3:
                    return _json(200, self._public(payment))
                if method == "POST" and parts[3:] == ["cancel"]:
                    if payment["status"] not in ("open", "cancelled"):
                        return _json(409, {"error": "not_cancellable"})
                    payment["status"] = "cancelled"
                    return _json(200, self._public(payment))
        return _json(404, {"error": "no_route"})

    def _create(self, raw: bytes, key: str) -> tuple[int, str, bytes]:
        if not key:
            return _json(400, {"error": "idempotency_key_required"})
        try:
            data = json.loads(raw)
            amount, currency = data["amount"], str(data["currency"])
            reference = str(data["reference"])
        except (ValueError, KeyError, TypeError):
            return _json(400, {"error": "bad_request"})
        if not isinstance(amount, int) or amount <= 0:
            return _json(400, {"error": "bad_amount"})
        with self._lock:
            if key in self._by_key:
                first, payment_id = self._by_key[key]
                if first != raw:
                    self.create_log.append((key, 422))
                    return _json(422, {"error": "idempotency_key_reused"})
                status, answer = 200, self._public(self.payments[payment_id], token=True)
            else:
                payment_id = "pay_" + secrets.token_hex(6)
                token = "tok_" + secrets.token_urlsafe(12)
                self.payments[payment_id] = {
                    "id": payment_id,
                    "reference": reference,
                    "amount": amount,
                    "currency": currency,
                    "status": "open",
                    "token": token,
                    "return_url": str(data.get("return_url", "")),
                }
                self._by_key[key] = (raw, payment_id)
                self._by_token[token] = payment_id
                status, answer = 201, self._public(self.payments[payment_id], token=True)
            if self._lose_creates:
                self._lose_creates -= 1
                status, answer = 502, {"error": "bad_gateway"}
            self.create_log.append((key, status))
        return _json(status, answer)

    def _public(self, payment: dict[str, Any], *, token: bool = False) -> dict[str, Any]:
        fields = ("id", "reference", "amount", "currency", "status")
        data = {k: payment[k] for k in fields}
        data["account"] = self.account
        if token:
            data["checkout_url"] = f"{self.base_url}/checkout"
            data["token"] = payment["token"]
        return data

    def _checkout(self, path: str, form: dict[str, str]) -> tuple[int, str, bytes]:
        with self._lock:
            payment_id = self._by_token.get(form.get("token", ""), "")
            payment = self.payments.get(payment_id)
        if payment is None or payment["status"] != "open":
            return 400, "text/plain", b"This checkout is not valid."
        esc = html.escape
        if path == "/checkout":
            page = (
                f"<h1>Bayar Kilat</h1><p>Pay {payment['amount']} {esc(payment['currency'])}</p>"
                f'<form id="pay" method="post" action="/checkout/pay">'
                f'<input type="hidden" name="token" value="{esc(payment["token"])}">'
                '<button type="submit">Pay</button></form>'
            )
            return 200, "text/html; charset=utf-8", page.encode()
        if path == "/checkout/pay":
            self.pay(payment_id)
            fields = signed_return_fields(
                self.webhook_secret,
                reference=payment["reference"],
                payment_id=payment_id,
                status="paid",
            )
            inputs = "".join(
                f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in fields.items()
            )
            back = esc(payment["return_url"])
            page = f'<form id="back" method="post" action="{back}">{inputs}</form>'
            return 200, "text/html; charset=utf-8", page.encode()
        return 404, "text/plain", b"not found"


def _json(status: int, data: dict[str, Any]) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(data).encode()


class _Quiet(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


class _Threading(socketserver.ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True


class KilatServer:
    """:class:`KilatApp` served on ``127.0.0.1`` (a free port) in a thread."""

    def __init__(self, app: KilatApp) -> None:
        self.app = app
        self._server = wsgiref.simple_server.make_server(
            "127.0.0.1", 0, app, server_class=_Threading, handler_class=_Quiet
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        app.base_url = self.url
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> KilatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
