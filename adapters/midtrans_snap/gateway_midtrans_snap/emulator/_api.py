"""Midtrans' Snap and Core API endpoints as the emulator serves them (protocol reference §1,
§2, §5, §6, §7, §11.1, §11.7).

Snap (``/snap/v1/...``) errors are real HTTP codes with ``{"error_messages": [...]}``; Core
(``/v2/...``) bodies carry ``status_code`` as a string, the HTTP status equal to it for errors
(``core_error_http="200"`` answers them HTTP 200, ASSUMPTION §1.5) and 200 for successes,
including the ``407`` of an expiry. Every answer is JSON.

ASSUMPTIONS: the Snap session cancel errors are 404 ("token not found") and 409 ("token
already canceled", "Transaction is on progress") (§2.11); the Idempotency-Key is honoured on
the Core POSTs only (not on Snap create, §11.7), per merchant, for successful answers
(``status_code`` 200/201/407), ``idempotency_ttl`` seconds (300); a repeat while the first is in
flight gets HTTP 202 ``{"status_code": "202"}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from wsgiref.types import WSGIEnvironment

from gateway_core.emulation.control import base_url
from gateway_core.emulation.faults import Fault
from gateway_core.emulation.serving import Reply
from gateway_midtrans_snap.emulator import _model as m
from gateway_midtrans_snap.emulator import _render as render
from gateway_midtrans_snap.emulator._settings import Settings
from gateway_midtrans_snap.emulator._store import CoreRefusal, OrderUtilized, Store
from gateway_midtrans_snap.emulator._validation import CreateRejected, validate_create

SNAP_PREFIX = "/snap/v1/transactions"
PAGE_PREFIX = "/snap/v3/redirection/"
MAX_BODY = 16 * 1024
MAX_IDEMPOTENCY_KEY = 46
MAX_NOTIFICATION_URLS = 3

SNAP_UNAUTHORIZED = [
    "Access denied due to unauthorized transaction, please check client or server key",
    "Visit https://snap-docs.midtrans.com/#request-headers for more details",
]
UTILIZED = "transaction_details.order_id has been paid and utilized, please use another order ID"
INTERNAL = "Sorry, we encountered internal server error. We will fix this soon."

#: Core actions: path suffix -> endpoint name.
CORE_ACTIONS = {
    "status": "status",
    "cancel": "cancel",
    "expire": "expire",
    "approve": "approve",
    "deny": "deny",
    "refund": "refund",
    "refund/online/direct": "refund_direct",
}


def json_reply(status: int, value: Any) -> Reply:
    """``value`` as JSON with ``status``."""
    return Reply(status, json.dumps(value).encode("utf-8"))


def snap_error(status: int, *messages: str) -> Reply:
    """A Snap error (§2.8)."""
    return json_reply(status, {"error_messages": list(messages)})


def route(path: str) -> tuple[str, str] | None:
    """``(endpoint, id)`` of an API path (id: token, order_id or transaction_id), or None."""
    if path.rstrip("/") == SNAP_PREFIX:
        return "snap_create", ""
    if path.startswith(SNAP_PREFIX + "/") and path.endswith("/cancel"):
        token = path[len(SNAP_PREFIX) + 1 : -len("/cancel")]
        return ("snap_cancel", token) if token and "/" not in token else None
    if path.startswith(PAGE_PREFIX):
        rest = path[len(PAGE_PREFIX) :]
        if rest and "/" not in rest:
            return "page", rest
        token, _, tail = rest.partition("/")
        return ("page_submit", token) if token and tail == "submit" else None
    if path.startswith("/v2/"):
        ident, _, action = path[len("/v2/") :].partition("/")
        endpoint = CORE_ACTIONS.get(action.rstrip("/"))
        return (endpoint, ident) if endpoint and ident else None
    return None


def server_key_of(environ: WSGIEnvironment) -> str | None:
    """The Basic-auth user name (the server key), None without a Basic header."""
    header = str(environ.get("HTTP_AUTHORIZATION", ""))
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0]


class MidtransApi:
    """Answers the Snap and Core endpoints (the page is :class:`PaymentPage`'s)."""

    def __init__(self, *, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings
        self._idem_lock = threading.Lock()
        self._stored: dict[tuple[str, str], tuple[datetime, Reply]] = {}
        self._in_flight: set[tuple[str, str]] = set()

    def reset(self) -> None:
        """Forget stored idempotent answers."""
        with self._idem_lock:
            self._stored.clear()

    # --- entry --------------------------------------------------------------------------------

    def answer(
        self,
        endpoint: str,
        ident: str,
        method: str,
        environ: WSGIEnvironment,
        body: bytes,
        fault: Fault | None,
        info: dict[str, Any],
    ) -> Reply:
        """The reply to one Snap/Core request (``info`` collects what the log records)."""
        snap = endpoint.startswith("snap_")
        wanted = "GET" if endpoint == "status" else "POST"
        if method != wanted:
            reply = json_reply(405, {"status_code": "405", "status_message": f"use {wanted}"})
            return snap_error(405, f"use {wanted}") if snap else reply
        key = server_key_of(environ)
        if snap and key == "":
            return snap_error(400, "Merchant is required")
        merchant = self._store.by_key(key) if key else None
        if merchant is None:
            info["status_code"] = "401"
            return snap_error(401, *SNAP_UNAUTHORIZED) if snap else self._core("401")
        info["merchant_id"] = merchant.merchant_id
        if endpoint == "snap_create":
            return self._create(merchant, environ, body, info)
        if endpoint == "snap_cancel":
            return self._cancel_session(merchant, ident)
        info["order_id"] = ident
        if endpoint == "status":
            return self._guarded(lambda: self._status(merchant, ident), info)
        return self._idempotent(
            merchant,
            environ,
            ident,
            info,
            lambda: self._action(endpoint, merchant, ident, body, fault),
        )

    # --- Snap -----------------------------------------------------------------------------------

    def _create(
        self, merchant: m.Merchant, environ: WSGIEnvironment, raw: bytes, info: dict[str, Any]
    ) -> Reply:
        if len(raw) > MAX_BODY:
            return snap_error(400, "request body is too large (max 16 KB)")
        try:
            body = json.loads(raw.decode("utf-8")) if raw.strip() else None
        except (UnicodeDecodeError, ValueError):
            return snap_error(400, "request body is not valid JSON")
        now = self._store.clock.now()
        try:
            request = validate_create(body, now, strict=self._settings.strict)
        except CreateRejected as exc:
            return snap_error(400, *exc.messages)
        assert isinstance(body, dict)
        info["order_id"] = request.order_id
        urls = _header_urls(environ, "HTTP_X_OVERRIDE_NOTIFICATION")
        if not urls:
            appended = _header_urls(environ, "HTTP_X_APPEND_NOTIFICATION")
            if appended:
                from gateway_midtrans_snap.emulator._notify import MERCHANT_URL

                urls = [MERCHANT_URL, *appended]
        try:
            session = self._store.create_session(merchant, request, body, urls)
        except OrderUtilized:
            return snap_error(400, UTILIZED)
        base = base_url(environ, self._settings.public_url)
        return json_reply(
            201, {"token": session.token, "redirect_url": f"{base}{PAGE_PREFIX}{session.token}"}
        )

    def _cancel_session(self, merchant: m.Merchant, token: str) -> Reply:
        with self._store.lock:
            session = self._store.session(token)
            if session is None or session.merchant_id != merchant.merchant_id:
                return snap_error(404, "token not found")
            try:
                self._store.cancel_session(token)
            except CoreRefusal as exc:
                return snap_error(int(exc.code), exc.message or exc.code)
        at = self._store.clock.now().astimezone(m.JAKARTA)
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
        return json_reply(200, {"canceled_at": stamp})

    # --- Core -----------------------------------------------------------------------------------

    def _core(self, code: str, message: str | None = None) -> Reply:
        status = int(code) if self._settings.core_error_http == "same" else 200
        return json_reply(status, render.core_error(code, message))

    def _guarded(self, work: Callable[[], dict[str, Any]], info: dict[str, Any]) -> Reply:
        try:
            body = work()
        except CoreRefusal as exc:
            info["status_code"] = exc.code
            return self._core(exc.code, exc.message)
        info["status_code"] = body.get("status_code")
        return json_reply(200, body)

    def _idempotent(
        self,
        merchant: m.Merchant,
        environ: WSGIEnvironment,
        ident: str,
        info: dict[str, Any],
        work: Callable[[], dict[str, Any]],
    ) -> Reply:
        key = str(environ.get("HTTP_IDEMPOTENCY_KEY", "")).strip()
        if not key or len(key) > MAX_IDEMPOTENCY_KEY or self._exempt(merchant, ident):
            return self._guarded(work, info)
        slot = (merchant.merchant_id, key)
        now = self._store.clock.now()
        with self._idem_lock:
            stored = self._stored.get(slot)
            if stored is not None and now < stored[0]:
                info["idempotency"] = "replayed"
                return stored[1]
            if slot in self._in_flight:
                info["idempotency"] = "in_flight"
                info["status_code"] = "202"
                return json_reply(202, render.core_error("202"))
            self._in_flight.add(slot)
        try:
            reply = self._guarded(work, info)
        finally:
            with self._idem_lock:
                self._in_flight.discard(slot)
        if info.get("status_code") in ("200", "201", "407"):
            ttl = timedelta(seconds=self._settings.idempotency_ttl)
            with self._idem_lock:
                self._stored[slot] = (now + ttl, reply)
            info["idempotency"] = "stored"
        return reply

    def _exempt(self, merchant: m.Merchant, ident: str) -> bool:
        try:
            txn = self._store.find(ident, merchant.merchant_id)
        except CoreRefusal:
            return False
        return txn.method in m.NO_IDEMPOTENCY

    def _status(self, merchant: m.Merchant, ident: str) -> dict[str, Any]:
        with self._store.lock:
            txn = self._store.find(ident, merchant.merchant_id)
            return render.status_body(txn, merchant.server_key)

    def _action(
        self, endpoint: str, merchant: m.Merchant, ident: str, raw: bytes, fault: Fault | None
    ) -> dict[str, Any]:
        payload: Any = {}
        if raw.strip():
            try:
                payload = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise CoreRefusal(
                    "400", "Bad request: the request body is not valid JSON"
                ) from None
        if not isinstance(payload, dict):
            payload = {}
        store = self._store
        with store.lock:
            txn = store.find(ident, merchant.merchant_id)
            if endpoint == "cancel":
                store.move(txn, m.CANCEL, source="cancel API")
                return render.action_body(txn, m.CANCEL)
            if endpoint == "expire":
                if txn.status != m.PENDING:
                    raise CoreRefusal("412")
                store.move(txn, m.EXPIRE, source="expire API")
                return render.action_body(txn, m.EXPIRE)
            if endpoint in ("approve", "deny"):
                if not (txn.status == m.CAPTURE and txn.fraud_status == "challenge"):
                    raise CoreRefusal("412")
                if endpoint == "approve":
                    store.move(txn, m.CAPTURE, fraud="accept", force=True, source="approve API")
                else:
                    final = self._settings.challenge_deny_status
                    store.move(txn, final, fraud="deny", force=True, source="deny API")
                return render.action_body(txn, endpoint)
            direct = endpoint == "refund_direct"
            key = payload.get("refund_key")
            reason = payload.get("reason")
            refund, stored = store.refund(
                txn,
                key=str(key) if key not in (None, "") else None,
                amount=payload.get("amount"),
                reason=str(reason) if isinstance(reason, str) else "",
                direct=direct,
                bank_rejects=fault is not None and fault.kind == "bank_reject",
                source="direct refund API" if direct else "refund API",
            )
            if refund is not None:
                return dict(refund.response)
            if stored is not None:
                return stored
            return render.bank_rejected_body(txn, str(key or ""))

    # --- faults ---------------------------------------------------------------------------------

    @staticmethod
    def shape(endpoint: str, fault: Fault, real: Reply | None) -> Reply | None:
        """The reply of the emulator's own ``core_error`` fault."""
        if fault.kind != "core_error":
            return None
        code = str(fault.param("code"))
        text = fault.param("message") or (INTERNAL if code.startswith("5") else code)
        if endpoint.startswith("snap_"):
            status = int(code) if code.isdigit() and 100 <= int(code) <= 599 else 500
            return snap_error(status, text)
        status = int(code) if code.isdigit() and 100 <= int(code) <= 599 else 500
        return json_reply(status, render.core_error(code, text))


def _header_urls(environ: WSGIEnvironment, name: str) -> list[str]:
    raw = str(environ.get(name, ""))
    urls = [u.strip() for u in raw.split(",") if u.strip()]
    return urls[:MAX_NOTIFICATION_URLS]


def page_url(base: str, token: str) -> str:
    """The payment page of ``token``."""
    return f"{base}{PAGE_PREFIX}{quote(token)}"
