"""The WSGI application that plays Faspay (Debit API, DANA channel 819) for local merchants.

ASSUMPTIONS (Faspay's real behaviour is unknown here; each one is a constructor option):

* ``duplicate_bill_no`` — a second valid Post Data Transaction with a ``bill_no`` the merchant
  already used: ``"return_existing"`` (default: the same ``trx_id`` and ``redirect_url``, no
  second bill), ``"reject"`` (``duplicate_bill_no_code``, default ``14`` Invalid Order) or
  ``"new_bill"`` (a second bill with a new ``trx_id``, the worst case for clients).
* ``bad_signature_code`` — a request whose signature does not verify (for example signed with
  the bare merchant_id instead of ``bot<merchant_id>``, or a wrong password): ``55``.
* ``malformed_request`` — a body that is not a JSON object: ``"format_error"`` (default: HTTP 200
  ``{"response_code": "30", ...}``), ``"response_error"`` (the same code in the undocumented
  ``response_error`` wrapper) or ``"http_400"`` (HTTP 400, plain text).
* Validation codes (§15): unknown merchant ``03``; missing/empty mandatory field ``83``; bad
  length, pattern, date, currency other than ``IDR`` or ``bill_expired`` not after
  ``bill_date`` or more than 30 days later ``30``; bad amount ``13``; channel not enabled for the
  merchant ``40`` inside ``{"response_error": {...}}``. ``request`` texts are never checked.
* Inquiry/cancel of an unknown ``trx_id``/``bill_no`` pair: ``14`` with ``payment_status_code``
  ``5`` (No bills found). Inquiry or cancel of an expired bill: ``54`` with status ``7`` (§9
  example). Cancel of a paid bill ``81``, of a cancelled one ``17``, of a failed one ``14``, of a
  reversed one ``80``. ``trx_status_code`` values other than ``3`` Order Expired are invented
  (1 active, 2 paid, 4 cancelled, 5 failed, 6 reversed).
* A bill whose ``bill_expired`` is already past when it is created is accepted and expires at
  the next clock tick (a client sending UTC instead of WIB sees its bills expire at once).
* Notifications are sent for every change to ``2``, ``3``, ``4``, ``7`` and ``8``
  (``notify_statuses``); ``payment_reff`` is the literal ``"null"`` when there is none (as in
  the D6 samples), ``payment_date`` is the payment time for ``2``/``4`` and the time of the
  change otherwise, ``bill_total`` and ``payment_total`` both echo the stored ``bill_total`` in
  hundredths. Notification delivery policy: see ``_notifier``.
* The DANA page: opening it moves ``0`` → ``1``; "Pay" → ``2``, "Fail" → ``3``, "Abandon"
  leaves the status unchanged (``1``, or ``0`` if never opened); each then answers ``302`` to
  the merchant's ``return_url`` with the D7 query (``status`` = the bill's status after the
  action, so a repeated submit or an expired bill returns the current status). Without a
  ``return_url`` a plain page shows the status. Bad signature → 403, unknown bill or merchant →
  404, missing parameter → 400, all as small HTML pages.
* ``bill_ref`` in the return query is the request's ``bill_reff`` (``bill_no`` when empty);
  ``bank_user_name`` is what the page's form sent (default: the bill's ``cust_name``).
* ``create_requests`` in a bill record counts create requests the application processed for
  that ``bill_no`` (accepted or rejected), not those cut off by a fault before processing.
* Every channel family is modelled (``_channels``: VA, retail, QRIS, redirect wallets, OVO,
  DANA) with its own post-data fields (``_families``), customer page (``_instrument_pages``)
  and simulated payer (``_payers``); the assumptions of each are listed there.
* The XML twins ``/pws/<function>/<stage>`` answer from the same handlers (``_xml``).
* Text lengths are lenient by default like the sandbox, with every leniency in the request
  log; ``strict=True`` applies the documented limits (``_validation``).

The application is composed of small collaborators sharing one re-entrant lock:
:class:`BillStore` and :class:`MerchantBook` (``_store``: bills, transitions, expiry by the
clock), :class:`FaspayApi` (``_api``: the four endpoints and the fault layer),
:class:`DanaPage` (``_dana_page``: the customer page), :class:`Announcer` (``_announce``:
status change → notification job for ``_notifier``), :class:`RequestLog` (the kit's) and
:class:`ControlApi` (``_control_api``: ``/_emulator/...``). This module routes requests and
offers the Python API, mostly by delegation. The provider-neutral machinery (server, faults,
clock, notifier, request log, control-API plumbing) is the emulation kit's,
``gateway_core.emulation``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal
from wsgiref.types import StartResponse, WSGIEnvironment

from gateway_core.emulation.http_server import SocketController
from gateway_core.emulation.notifier import RetrySchedule
from gateway_core.emulation.requestlog import RequestLog
from gateway_faspay_dana.emulator import _codes as codes
from gateway_faspay_dana.emulator._announce import Announcer
from gateway_faspay_dana.emulator._api import FaspayApi
from gateway_faspay_dana.emulator._clock import EmulatorClock
from gateway_faspay_dana.emulator._control_api import ControlApi
from gateway_faspay_dana.emulator._dana_page import DanaPage
from gateway_faspay_dana.emulator._errors import EmulatorError, TransitionNotAllowed, UnknownBill
from gateway_faspay_dana.emulator._faults import Fault, FaultPlan, make_fault
from gateway_faspay_dana.emulator._model import Bill, Merchant
from gateway_faspay_dana.emulator._notifier import faspay_notifier
from gateway_faspay_dana.emulator._ovo_direct import OvoDirect
from gateway_faspay_dana.emulator._payers import Payers
from gateway_faspay_dana.emulator._qr_assets import QR_ASSET_PREFIX, serve_qr_asset
from gateway_faspay_dana.emulator._reply import PAGE_PREFIX, json_reply, send
from gateway_faspay_dana.emulator._settings import (
    DuplicateMode,
    Language,
    MalformedMode,
    OvoPushMode,
    Setting,
    Settings,
)
from gateway_faspay_dana.emulator._store import BillStore, MerchantBook
from gateway_faspay_dana.emulator._xml import xml_endpoint

# The errors are defined in ``_errors`` and re-exported here for older imports.
__all__ = [
    "DuplicateMode",
    "EmulatorApp",
    "EmulatorError",
    "MalformedMode",
    "SocketController",
    "TransitionNotAllowed",
    "UnknownBill",
]


#: What the request log records besides the kit's fields, with the defaults.
LOG_FIELDS: dict[str, Any] = {
    "response_code": None,
    "merchant_id": None,
    "bill_no": None,
    "format": "json",
    "leniencies": [],
}


class EmulatorApp:
    """A stateful, faithful-as-documented Faspay Debit API (DANA) as a plain WSGI callable.

    Routes: ``POST /cvr/100001/10`` (channel inquiry), ``/cvr/300011/10`` (post data),
    ``/cvr/100004/10`` (inquiry), ``/cvr/100005/10`` (cancel) and their XML twins
    ``/pws/<function>/<stage>``; ``GET /pws/100003/<stage>/<signature>`` (the channel's page)
    and ``POST .../complete`` (its forms); ``POST /pws/ovo_direct`` (OVO push);
    ``GET /__assets/qr/...`` (QRIS images); ``/_emulator/...`` (control API, JSON). The same
    operations are methods of this object (the simulated payers: :attr:`payers`).

    Socket-level faults (resets, refusal) need :class:`EmulatorServer`; under another WSGI
    server ``reset_after_read`` processes the request and answers an empty 500, and the other
    socket faults answer an empty 500 without processing.
    """

    duplicate_bill_no: Setting[DuplicateMode] = Setting()
    duplicate_bill_no_code: Setting[str] = Setting()
    malformed_request: Setting[MalformedMode] = Setting()
    bad_signature_code: Setting[str] = Setting()
    language: Setting[Language] = Setting()
    stage: Setting[str] = Setting()
    public_url: Setting[str | None] = Setting()
    notify_statuses: Setting[frozenset[str]] = Setting()
    control_api: Setting[bool] = Setting()
    strict: Setting[bool] = Setting()
    accept_amount_mismatch: Setting[bool] = Setting()
    ovo_push_mode: Setting[OvoPushMode] = Setting()
    ovo_push_window: Setting[float] = Setting()

    def __init__(
        self,
        merchants: Merchant | Iterable[Merchant] | None = None,
        *,
        clock: EmulatorClock | None = None,
        retry_interval: float = 60.0,
        max_attempts: int = 4,
        notification_timeout: float = 10.0,
        duplicate_bill_no: DuplicateMode = "return_existing",
        duplicate_bill_no_code: str = codes.INVALID_ORDER,
        malformed_request: MalformedMode = "format_error",
        bad_signature_code: str = codes.BAD_CREDENTIALS,
        language: Language = "en",
        redirect_stage: Literal["sandbox", "production"] = "sandbox",
        public_url: str | None = None,
        notify_statuses: Iterable[str] = ("2", "3", "4", "7", "8"),
        control_api: bool = True,
        request_log_limit: int = 10_000,
        strict: bool = False,
        accept_amount_mismatch: bool = False,
        ovo_push_mode: OvoPushMode = "immediate",
        ovo_push_window: float = 60.0,
    ) -> None:
        self.settings = Settings.from_options(
            duplicate_bill_no=duplicate_bill_no,
            duplicate_bill_no_code=duplicate_bill_no_code,
            malformed_request=malformed_request,
            bad_signature_code=bad_signature_code,
            language=language,
            redirect_stage=redirect_stage,
            public_url=public_url,
            notify_statuses=notify_statuses,
            control_api=control_api,
            strict=strict,
            accept_amount_mismatch=accept_amount_mismatch,
            ovo_push_mode=ovo_push_mode,
            ovo_push_window=ovo_push_window,
        )
        if isinstance(merchants, Merchant):
            merchants = [merchants]
        self.clock = clock or EmulatorClock()
        self.socket_controller: SocketController | None = None
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._faults = FaultPlan()
        self._merchants = MerchantBook(merchants or (), self._lock)
        self._max_attempts = max_attempts
        self._retry_interval = float(retry_interval)
        self._notifier = faspay_notifier(
            retry_interval=retry_interval,
            max_attempts=max_attempts,
            timeout=notification_timeout,
            now=self.clock.wall,
        )
        self._announce = Announcer(
            merchants=self._merchants,
            faults=self._faults,
            notifier=self._notifier,
            clock=self.clock,
            settings=self.settings,
        )
        self._store = BillStore(
            lock=self._lock, clock=self.clock, settings=self.settings, announce=self._announce
        )
        self._log = RequestLog(
            clock=self.clock, lock=self._lock, limit=request_log_limit, extra_fields=LOG_FIELDS
        )
        self.payers = Payers(store=self._store, settings=self.settings)
        self._page = DanaPage(
            store=self._store, merchants=self._merchants, settings=self.settings, payers=self.payers
        )
        ovo = OvoDirect(
            store=self._store,
            merchants=self._merchants,
            payers=self.payers,
            settings=self.settings,
            stopping=self._stopping,
        )
        self._api = FaspayApi(
            store=self._store,
            merchants=self._merchants,
            page=self._page,
            faults=self._faults,
            log=self._log,
            settings=self.settings,
            stopping=self._stopping,
            ovo=ovo,
        )
        self._control = ControlApi(self)

    # --- WSGI ---------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if path == "/_emulator" or path.startswith("/_emulator/"):
            if not self.control_api:
                return send(start_response, json_reply(404, {"error": "control API disabled"}))
            return send(start_response, self._control.handle(method, path, environ))
        endpoint = self.endpoint_for(path)
        if endpoint is not None:
            return self._api.serve(endpoint, method, path, environ, start_response)
        if path.startswith(QR_ASSET_PREFIX) and method in ("GET", "HEAD"):
            return send(start_response, serve_qr_asset(self._store, environ, path))
        if path == "/" and method in ("GET", "HEAD"):
            return send(start_response, json_reply(200, self._control.index(environ)))
        return send(start_response, json_reply(404, {"error": f"no route for {path}"}))

    @staticmethod
    def endpoint_for(path: str) -> str | None:
        """The endpoint name of ``path`` (``create``, ``redirect``, ...), or None."""
        if path in codes.API_PATHS:
            return codes.API_PATHS[path]
        if path.rstrip("/") == codes.OVO_DIRECT_PATH:
            return "ovo_direct"
        xml = xml_endpoint(path)
        if xml is not None:
            return xml
        if path.startswith(PAGE_PREFIX):
            parts = path[len(PAGE_PREFIX) :].split("/")
            if len(parts) == 2:
                return "redirect"
            if len(parts) == 3 and parts[2] == "complete":
                return "complete"
        return None

    def take_fault(self, endpoint: str) -> Fault | None:
        """Consume the next scripted fault for ``endpoint`` (used by :class:`EmulatorServer`)."""
        return self._faults.take(endpoint)

    # --- merchants and settings ---------------------------------------------------------------

    @property
    def merchants(self) -> dict[str, Merchant]:
        """The configured merchants by merchant_id (a copy)."""
        return self._merchants.all()

    def merchant(self, merchant_id: str) -> Merchant | None:
        """The merchant with ``merchant_id``, if configured."""
        return self._merchants.get(merchant_id)

    def add_merchant(self, merchant: Merchant) -> Merchant:
        """Add (or replace) a merchant."""
        return self._merchants.add(merchant)

    def configure_merchant(self, merchant_id: str, **changes: Any) -> Merchant:
        """Change a merchant's settings (``notification_url``, ``return_url``, ...)."""
        return self._merchants.configure(merchant_id, **changes)

    @property
    def retry_interval(self) -> float:
        """Seconds between notification attempts."""
        return self._retry_interval

    @retry_interval.setter
    def retry_interval(self, value: float) -> None:
        self._retry_interval = float(value)
        self._notifier.schedule = RetrySchedule.fixed(self._retry_interval, self._max_attempts)

    # --- bills and the clock ------------------------------------------------------------------

    def tick(self) -> list[str]:
        """Expire every open bill whose ``bill_expired`` has passed; returns their bill_nos."""
        return self._store.tick()

    def advance_clock(self, seconds: float) -> list[str]:
        """Move the emulator clock forward, expire due bills (and notify); their bill_nos."""
        return self._store.advance_clock(seconds)

    def set_clock(self, moment: datetime) -> list[str]:
        """Jump the emulator clock to ``moment``, expire due bills (and notify); their bill_nos."""
        return self._store.set_clock(moment)

    def bill_record(self, bill: Bill) -> dict[str, Any]:
        """The emulator's record of ``bill`` as plain data."""
        return self._store.record(bill)

    def bill(
        self, bill_no: str, *, merchant_id: str | None = None, trx_id: str | None = None
    ) -> dict[str, Any]:
        """The record of a bill (the latest one for ``bill_no`` unless ``trx_id`` is given)."""
        return self._store.bill(bill_no, merchant_id=merchant_id, trx_id=trx_id)

    def bills(self, *, merchant_id: str | None = None) -> list[dict[str, Any]]:
        """Every bill, oldest first."""
        return self._store.bills(merchant_id=merchant_id)

    def create_requests(self, bill_no: str, merchant_id: str | None = None) -> int:
        """How many create requests were processed for ``bill_no`` (across merchants if None)."""
        return self._store.create_requests(bill_no, merchant_id)

    def return_query(self, bill: Bill, status: str | None = None) -> dict[str, str]:
        """The D7 return query Faspay would send for ``bill`` (its status, or ``status``)."""
        return self._page.return_query(bill, status)

    def act(
        self,
        action: str,
        bill_no: str,
        *,
        merchant_id: str | None = None,
        trx_id: str | None = None,
        force: bool = False,
        payment_reff: str | None = None,
        bank_user_name: str | None = None,
        reason: str = "",
    ) -> dict[str, Any]:
        """Operator action on a bill: ``open``, ``pay``, ``fail``, ``expire``, ``cancel`` or
        ``reverse``. Raises :class:`TransitionNotAllowed` from a status that does not allow it
        (unless ``force``) and :class:`UnknownBill`."""
        return self._store.act(
            action,
            bill_no,
            merchant_id=merchant_id,
            trx_id=trx_id,
            force=force,
            payment_reff=payment_reff,
            bank_user_name=bank_user_name,
            reason=reason,
        )

    def open(self, bill_no: str, **kwargs: Any) -> dict[str, Any]:
        """The customer opened the DANA page: ``0`` → ``1`` (no notification)."""
        return self.act("open", bill_no, **kwargs)

    def pay(self, bill_no: str, **kwargs: Any) -> dict[str, Any]:
        """The customer paid: → ``2``, notification sent."""
        return self.act("pay", bill_no, **kwargs)

    def fail(self, bill_no: str, **kwargs: Any) -> dict[str, Any]:
        """The payment failed: → ``3``, notification sent."""
        return self.act("fail", bill_no, **kwargs)

    def expire(self, bill_no: str, **kwargs: Any) -> dict[str, Any]:
        """Expire now (without moving the clock): → ``7``, notification sent."""
        return self.act("expire", bill_no, **kwargs)

    def cancel(self, bill_no: str, **kwargs: Any) -> dict[str, Any]:
        """Cancel as the cancel API would: → ``8``, notification sent."""
        return self.act("cancel", bill_no, **kwargs)

    def reverse(self, bill_no: str, **kwargs: Any) -> dict[str, Any]:
        """Operator reversal of a paid bill: ``2`` → ``4``, notification sent."""
        return self.act("reverse", bill_no, **kwargs)

    def notify(
        self,
        bill_no: str,
        *,
        status: str | None = None,
        merchant_id: str | None = None,
        trx_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """(Re)send a notification for a bill: its current status, or a scripted ``status``
        (the bill does not change). Notification faults apply."""
        with self._lock:
            bill = self._store.find(str(bill_no), merchant_id, trx_id)
            return self._announce(bill, str(status or bill.status), "manual")

    # --- faults -------------------------------------------------------------------------------

    def add_fault(self, endpoint: str, fault: str, count: int = 1, **params: Any) -> dict[str, Any]:
        """Script a fault (see :mod:`._faults` for names and parameters)."""
        try:
            item = make_fault(endpoint, fault, count, **params)
        except ValueError as exc:
            raise EmulatorError(str(exc)) from None
        if item.kind == "refuse":
            if self.socket_controller is None:
                raise EmulatorError("refuse needs the app to run under EmulatorServer")
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

    # --- request log and notifications --------------------------------------------------------

    def record_request(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        fault: Fault | None,
        connection: int | None = None,
        http_status: int | None = None,
        processed: bool = False,
        detail: str = "",
    ) -> None:
        """Add an entry to the request log (the server uses it for requests it cut off)."""
        self._log.record(
            endpoint,
            method,
            path,
            fault=fault,
            connection=connection,
            http_status=http_status,
            processed=processed,
            detail=detail,
        )

    def requests_log(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """API requests received (oldest first), optionally for one endpoint."""
        return self._log.entries(endpoint)

    def request_counts(self) -> dict[str, int]:
        """Number of API requests received per endpoint."""
        return self._log.counts()

    def deliveries(self, bill_no: str | None = None, **labels: str | None) -> list[dict[str, Any]]:
        """Recorded notification deliveries with every attempt and reply (optionally for one
        ``bill_no``, or matching other labels: ``merchant_id``, ``trx_id``, ``status``)."""
        return self._notifier.deliveries(bill_no=bill_no, **labels)

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """Block until no notification job runs; False on timeout."""
        return self._notifier.wait(timeout)

    def idle(self) -> bool:
        """True when no notification job runs."""
        return self._notifier.idle()

    # --- lifecycle ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget bills, logs, deliveries and faults; clock back to real time.

        ``trx_id`` sequence numbers keep increasing, so ids never repeat within a process.
        """
        with self._lock:
            self._faults.clear()
            self._notifier.reset()
            self._store.reset()
            self._log.clear()
            self.clock.reset()

    def close(self) -> None:
        """Stop background work (notification threads, pending sleeps and drips)."""
        self._stopping.set()
        self._store.close()
        self._notifier.close()
