"""The WSGI application that plays Midtrans (Snap + Core API) for local merchants.

Composed of the emulation kit's pieces (``gateway_core.emulation``: server protocol, faults,
clock, notifier, request log, control router, :func:`serve_endpoint`) and Midtrans' own:
:class:`Store` (``_store``: sessions, attempts, transitions, expiry, refunds),
:class:`MidtransApi` (``_api``), :class:`PaymentPage` (``_page``), :class:`Announcer`
(``_notify``: webhooks with Midtrans' retry policy) and :class:`ControlApi`
(``_control_api``: ``/_emulator/...``). The switchable ASSUMPTIONS are :class:`Settings`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

from gateway_core.emulation.clock import EmulatorClock
from gateway_core.emulation.control import EmulatorError, read_body
from gateway_core.emulation.faults import Fault, FaultPlan
from gateway_core.emulation.http_server import HttpServer, SocketController
from gateway_core.emulation.requestlog import RequestLog
from gateway_core.emulation.serving import Reply, send_reply, serve_endpoint
from gateway_midtrans_snap.emulator import _model as m
from gateway_midtrans_snap.emulator import _render as render
from gateway_midtrans_snap.emulator._api import MidtransApi, json_reply, route
from gateway_midtrans_snap.emulator._control_api import ControlApi
from gateway_midtrans_snap.emulator._notify import (
    CATALOGUE,
    Announcer,
    midtrans_notifier,
    midtrans_schedule,
)
from gateway_midtrans_snap.emulator._page import PaymentPage, default_method
from gateway_midtrans_snap.emulator._settings import Settings
from gateway_midtrans_snap.emulator._store import CoreRefusal, Store

#: What the request log records besides the kit's fields.
LOG_FIELDS: dict[str, Any] = {
    "merchant_id": None,
    "order_id": None,
    "status_code": None,
    "idempotency": None,
}


class MidtransEmulator:
    """A stateful Midtrans Snap + Core API as a WSGI callable (serve it with
    :class:`MidtransServer` for the socket-level faults).

    ``merchants``: one or more :class:`Merchant` (default: one with the sandbox example key).
    ``retry_scale`` multiplies Midtrans' webhook retry delays (2 min ... 210 min);
    ``retry_jitter``/``seed`` shift them at random, reproducibly. Other keywords are
    :class:`Settings`.
    """

    def __init__(
        self,
        merchants: m.Merchant | Iterable[m.Merchant] | None = None,
        *,
        clock: EmulatorClock | None = None,
        retry_scale: float = 1.0,
        retry_jitter: bool = True,
        seed: int | None = None,
        notification_timeout: float = 15.0,
        control_api: bool = True,
        request_log_limit: int = 10_000,
        **settings: Any,
    ) -> None:
        if merchants is None:
            merchants = [m.Merchant()]
        elif isinstance(merchants, m.Merchant):
            merchants = [merchants]
        self.settings = Settings().update(settings)
        self.clock = clock or EmulatorClock(tz=m.JAKARTA, wall_format=m.WALL_FORMAT)
        self.control_api = control_api
        self.socket_controller: SocketController | None = None
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._faults = FaultPlan()
        self._jitter, self._seed = retry_jitter, seed
        self._notifier = midtrans_notifier(
            schedule=midtrans_schedule(scale=retry_scale, jitter=retry_jitter, seed=seed),
            timeout=notification_timeout,
            now=self.clock.wall,
        )
        self._retry_scale = float(retry_scale)
        self.store: Store
        self._announce = Announcer(
            notifier=self._notifier,
            faults=self._faults,
            merchants=lambda merchant_id: self.store.merchants.get(merchant_id),
            settings=self.settings,
        )
        self.store = Store(
            merchants=merchants,
            clock=self.clock,
            settings=self.settings,
            announce=self._announce,
            lock=self._lock,
        )
        self._log = RequestLog(
            clock=self.clock, lock=self._lock, limit=request_log_limit, extra_fields=LOG_FIELDS
        )
        self._api = MidtransApi(store=self.store, settings=self.settings)
        self._page = PaymentPage(store=self.store, settings=self.settings)
        self._control = ControlApi(self)

    # --- WSGI -----------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if self._control.router.matches(path):
            if not self.control_api:
                return send_reply(start_response, json_reply(404, {"error": "control API off"}))
            status, value = self._control.router.handle(method, path, environ)
            return send_reply(start_response, json_reply(status, value))
        found = route(path)
        if found is None:
            if path == "/" and method in ("GET", "HEAD"):
                return send_reply(start_response, json_reply(200, self._control.index(environ)))
            body = {"status_code": "404", "status_message": f"no route for {path}"}
            return send_reply(start_response, json_reply(404, body))
        endpoint, ident = found
        info: dict[str, Any] = {}
        try:
            raw = read_body(environ)
        except EmulatorError as exc:
            return send_reply(start_response, json_reply(exc.http_status, {"error": str(exc)}))

        def handle(fault: Fault | None) -> Reply:
            if endpoint == "page":
                return self._page.page(ident, method, str(environ.get("QUERY_STRING", "")))
            if endpoint == "page_submit":
                return self._page.submit(ident, method, raw)
            return self._api.answer(endpoint, ident, method, environ, raw, fault, info)

        served = serve_endpoint(
            environ,
            start_response,
            endpoint,
            self._faults,
            handle,
            stopping=self._stopping,
            unprocessed=("core_error",),
            shape=lambda fault, real: self._api.shape(endpoint, fault, real),
        )
        self._log.record(
            endpoint,
            method,
            path,
            fault=served.fault,
            connection=environ.get("gateway_emulation.connection"),
            http_status=served.sent.status,
            processed=served.processed,
            **info,
        )
        return served.body

    @staticmethod
    def endpoint_for(path: str) -> str | None:
        """The endpoint name of ``path`` (faults are scripted per endpoint), or None."""
        found = route(path)
        return found[0] if found else None

    def take_fault(self, endpoint: str) -> Fault | None:
        """Consume the next scripted fault for ``endpoint``."""
        return self._faults.take(endpoint)

    def record_request(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        fault: Fault | None,
        connection: int | None = None,
        detail: str = "",
    ) -> None:
        """Log a request the server cut off."""
        self._log.record(endpoint, method, path, fault=fault, connection=connection, detail=detail)

    def tick(self) -> list[str]:
        """Apply what fell due (expiry, card settlement); the order_ids expired."""
        return self.store.expire_due()

    def close(self) -> None:
        """Stop background work."""
        self._stopping.set()
        self._notifier.close()

    # --- merchants and settings -----------------------------------------------------------------

    @property
    def merchants(self) -> dict[str, m.Merchant]:
        """Merchants by merchant_id (a copy)."""
        with self._lock:
            return dict(self.store.merchants)

    def merchant(self, merchant_id: str | None = None) -> m.Merchant:
        """A merchant (the first when ``merchant_id`` is None)."""
        with self._lock:
            if merchant_id is None:
                return next(iter(self.store.merchants.values()))
            return self.store.merchants[merchant_id]

    def add_merchant(self, merchant: m.Merchant) -> m.Merchant:
        """Add or replace a merchant."""
        return self.store.add_merchant(merchant)

    def configure_merchant(self, merchant_id: str, **changes: Any) -> m.Merchant:
        """Change a merchant's settings (notification_url, finish_url, refund_balance...)."""
        return self.store.configure(merchant_id, **changes)

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change :class:`Settings` at run time."""
        with self._lock:
            return self.settings.update(changes).to_dict()

    @property
    def retry_scale(self) -> float:
        """The factor applied to Midtrans' retry delays."""
        return self._retry_scale

    @retry_scale.setter
    def retry_scale(self, value: float) -> None:
        self._retry_scale = float(value)
        self._notifier.schedule = midtrans_schedule(
            scale=self._retry_scale, jitter=self._jitter, seed=self._seed
        )

    def retry_delays(self) -> list[float]:
        """The scheduled (unshifted) delays before retries 1..5, in seconds."""
        schedule = self._notifier.schedule
        return [d * schedule.scale for d in schedule.delays]

    # --- sessions and transactions --------------------------------------------------------------

    def sessions(self) -> list[dict[str, Any]]:
        """Every Snap session (token, order, state, expiry)."""
        with self._lock:
            self.store.expire_due()
            return [_session_record(s) for s in self.store.sessions.values()]

    def transactions(self, order_id: str | None = None) -> list[dict[str, Any]]:
        """Every payment attempt (optionally of one order), oldest first."""
        with self._lock:
            self.store.expire_due()
            return [
                render.record(t)
                for t in self.store.transactions.values()
                if order_id in (None, t.order_id)
            ]

    def transaction(self, ident: str) -> dict[str, Any]:
        """One attempt by transaction_id, or the latest of an order_id (404 error if none)."""
        with self._lock:
            return render.record(self._find(ident))

    def _find(self, ident: str) -> m.Transaction:
        try:
            return self.store.find(ident)
        except CoreRefusal:
            raise EmulatorError(f"no transaction {ident!r}", http_status=404) from None

    def _session_for(self, ident: str) -> m.Session:
        with self._lock:
            session = self.store.session(ident)
            if session is not None:
                return session
            found = [s for s in self.store.sessions.values() if s.order_id == ident]
            if not found:
                raise EmulatorError(f"no Snap session {ident!r}", http_status=404)
            return found[-1]

    def choose(self, ident: str, method: str | None = None) -> dict[str, Any]:
        """The customer picks a method on the page (token or order_id): a pending attempt."""
        with self._lock:
            session = self._session_for(ident)
            txn = self.store.choose(session, method or default_method(session.methods))
            return render.record(txn)

    def act(self, action: str, ident: str, **options: Any) -> dict[str, Any]:
        """Midtrans-side event for an order (latest attempt) or transaction_id: ``pay``,
        ``capture``, ``challenge``, ``settle``, ``deny``, ``failure``, ``expire``, ``cancel``,
        ``approve``, ``reject`` (a challenge), ``reverse``, ``chargeback``, or ``transition``
        (``status``, ``fraud_status``: forced)."""
        with self._lock:
            if action in ("pay", "capture", "challenge"):
                txn = self._attempt_for(ident, options.get("method"), action)
            else:
                txn = self._find(ident)
            move = self.store.move
            simple = {
                "pay": m.SETTLEMENT,
                "settle": m.SETTLEMENT,
                "deny": m.DENY,
                "failure": m.FAILURE,
                "expire": m.EXPIRE,
                "cancel": m.CANCEL,
                "reverse": m.DENY,
                "chargeback": m.CHARGEBACK,
            }
            if action == "capture":
                move(txn, m.CAPTURE, fraud="accept", source="control")
            elif action == "challenge":
                move(txn, m.CAPTURE, fraud="challenge", source="control")
            elif action == "approve":
                if not (txn.status == m.CAPTURE and txn.fraud_status == "challenge"):
                    raise CoreRefusal("412")
                move(txn, m.CAPTURE, fraud="accept", force=True, source="control")
            elif action == "reject":
                if not (txn.status == m.CAPTURE and txn.fraud_status == "challenge"):
                    raise CoreRefusal("412")
                move(
                    txn,
                    self.settings.challenge_deny_status,
                    fraud="deny",
                    force=True,
                    source="control",
                )
            elif action == "transition":
                status = str(options.get("status", ""))
                fraud = options.get("fraud_status")
                move(txn, status, fraud=str(fraud) if fraud else None, force=True, source="control")
            elif action == "chargeback":
                move(txn, m.CHARGEBACK, force=txn.status == m.PARTIAL_REFUND, source="control")
            elif action in simple:
                move(txn, simple[action], source="control")
            else:
                raise EmulatorError(f"unknown action {action!r}", http_status=404)
            return render.record(txn)

    def _attempt_for(self, ident: str, method: Any, action: str) -> m.Transaction:
        try:
            txn = self.store.find(ident)
            if txn.status == m.PENDING:
                return txn
        except CoreRefusal:
            pass
        session = self._session_for(ident)
        if action in ("capture", "challenge"):
            chosen = "credit_card"
        else:
            chosen = str(method) if method else default_method(session.methods)
        return self.store.choose(session, chosen)

    def refund(
        self,
        ident: str,
        amount: int | None = None,
        *,
        reason: str = "",
        refund_key: str | None = None,
        direct: bool = False,
    ) -> dict[str, Any]:
        """A refund made at the dashboard (same rules and webhooks as the API)."""
        with self._lock:
            txn = self._find(ident)
            refund, stored = self.store.refund(
                txn,
                key=refund_key,
                amount=amount,
                reason=reason,
                direct=direct,
                source="dashboard",
            )
            return dict(refund.response) if refund is not None else dict(stored or {})

    def notify(self, ident: str, status: str | None = None) -> list[dict[str, Any]]:
        """(Re)send the webhook of an attempt (its status, or a scripted one; the attempt does
        not change). Notification faults apply."""
        with self._lock:
            return self._announce(self._find(ident), status=status, kind="manual")

    def release_held(self) -> list[dict[str, Any]]:
        """Deliver the webhooks a ``hold`` fault kept back."""
        return self._announce.release()

    def held(self) -> list[dict[str, str]]:
        """Webhooks kept back by a ``hold`` fault."""
        return self._announce.held()

    def return_query(self, ident: str) -> dict[str, str]:
        """The query the page appends to a return URL for this order/token now."""
        with self._lock:
            session = self._session_for(ident)
            attempts = self.store.orders.get((session.merchant_id, session.order_id), [])
            return self._page.query(session, attempts[-1] if attempts else None)

    # --- the kit's common controls ----------------------------------------------------------------

    def advance_clock(self, seconds: float) -> list[str]:
        """Move the clock forward; the order_ids whose attempts expired."""
        return self.store.advance(seconds)

    def set_clock(self, moment: datetime) -> list[str]:
        """Jump the clock; the order_ids whose attempts expired."""
        return self.store.set_clock(moment)

    def add_fault(self, endpoint: str, fault: str, count: int = 1, **params: Any) -> dict[str, Any]:
        """Script a fault (see ``_notify.CATALOGUE``)."""
        try:
            item = CATALOGUE.make(endpoint, fault, count, **params)
        except ValueError as exc:
            raise EmulatorError(str(exc)) from None
        if item.kind == "refuse":
            if self.socket_controller is None:
                raise EmulatorError("refuse needs the app to run under MidtransServer")
            self.socket_controller.refuse(float(item.param("seconds")))
            return item.to_dict()
        self._faults.add(item)
        return item.to_dict()

    def faults(self) -> list[dict[str, Any]]:
        """Pending faults."""
        return [f.to_dict() for f in self._faults.pending()]

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        self._faults.clear()

    def deliveries(self, **labels: Any) -> list[dict[str, Any]]:
        """Webhook deliveries with their attempts (filter by order_id, transaction_id, status,
        status_code, merchant_id, event)."""
        return self._notifier.deliveries(**labels)

    def requests_log(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """API requests received."""
        return self._log.entries(endpoint)

    def request_counts(self) -> dict[str, int]:
        """API requests per endpoint."""
        return self._log.counts()

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """Block until no webhook job runs; False on timeout."""
        return self._notifier.wait(timeout)

    def reset(self) -> None:
        """Forget sessions, transactions, logs, deliveries, held webhooks and faults; clock back
        to real time (merchants and settings stay)."""
        with self._lock:
            self._faults.clear()
            self._notifier.reset()
            self._announce.clear()
            self._api.reset()
            self.store.reset()
            self._log.clear()
            self.clock.reset()


def _session_record(session: m.Session) -> dict[str, Any]:
    return {
        "token": session.token,
        "merchant_id": session.merchant_id,
        "order_id": session.order_id,
        "gross_amount": session.gross_amount,
        "state": session.state,
        "methods": list(session.methods),
        "created_at": render.wall(session.created_at),
        "page_expires_at": render.wall(session.page_expires_at),
        "denials": session.denials,
        "callbacks": dict(session.callbacks),
    }


class MidtransServer(HttpServer):
    """Serve a :class:`MidtransEmulator` on ``host:port`` (0 = a free port): the kit's
    :class:`HttpServer`. ``url`` is both the Snap and the Core base URL."""

    app: MidtransEmulator

    def __init__(
        self, app: MidtransEmulator, host: str = "127.0.0.1", port: int = 0, **options: Any
    ) -> None:
        options.setdefault("name", "midtrans-emulator")
        options.setdefault("server_name", "midtrans-snap-emulator")
        super().__init__(app, host, port, **options)
