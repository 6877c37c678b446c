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
* Only the JSON ``/cvr/...`` endpoints are served; the XML ``/pws/...`` twins are not.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from http import HTTPStatus
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, quote, urlencode
from wsgiref.types import StartResponse, WSGIEnvironment

from adapters.faspay_dana._signature import matches
from adapters.faspay_dana.emulator import _codes as codes
from adapters.faspay_dana.emulator._clock import EmulatorClock
from adapters.faspay_dana.emulator._faults import (
    SOCKET_FAULTS,
    Fault,
    FaultPlan,
    make_fault,
)
from adapters.faspay_dana.emulator._messages import (
    notification_fields,
    return_query,
    return_url,
)
from adapters.faspay_dana.emulator._model import Bill, Merchant
from adapters.faspay_dana.emulator._notifier import NotificationPlan, Notifier
from adapters.faspay_dana.emulator._pages import error_html, message_page, payment_page
from adapters.faspay_dana.emulator._validation import (
    CreateRequest,
    MalformedRequest,
    Rejected,
    lookup_and_verify,
    parse_body,
    validate_create,
    validate_reference,
)

#: WSGI environ keys shared with :class:`EmulatorServer`.
FAULT_KEY = "faspay_emulator.fault"
CONTROL_KEY = "faspay_emulator.control"
CONNECTION_KEY = "faspay_emulator.connection"

DuplicateMode = Literal["return_existing", "reject", "new_bill"]
MalformedMode = Literal["format_error", "response_error", "http_400"]

_MAX_BODY = 1024 * 1024
_PAGE_PREFIX = "/pws/100003/"

#: action -> (target status, statuses it may leave)
_ACTIONS: dict[str, tuple[str, frozenset[str]]] = {
    "open": (codes.IN_PROCESS, frozenset({codes.UNPROCESSED})),
    "pay": (codes.PAID, codes.OPEN_STATUSES),
    "fail": (codes.FAILED, codes.OPEN_STATUSES),
    "expire": (codes.EXPIRED, codes.OPEN_STATUSES),
    "cancel": (codes.CANCELLED, codes.OPEN_STATUSES),
    "reverse": (codes.REVERSED, frozenset({codes.PAID})),
}


class EmulatorError(Exception):
    """A control-API error with the HTTP status it maps to."""

    http_status = 400

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        if http_status is not None:
            self.http_status = http_status


class UnknownBill(EmulatorError):
    """No bill matches."""

    http_status = 404


class TransitionNotAllowed(EmulatorError):
    """The bill's status does not allow that action (pass ``force=True`` to do it anyway)."""

    http_status = 409


class SocketController(Protocol):
    """What the server offers the application for server-level faults."""

    def refuse(self, seconds: float) -> None:
        """Stop listening for ``seconds`` (connections are refused), then listen again."""


class _Reply:
    __slots__ = ("bill_no", "body", "code", "detail", "headers", "merchant_id", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        *,
        code: str | None = None,
        detail: str = "",
        bill_no: str | None = None,
        merchant_id: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = [("Content-Type", content_type), *(headers or [])]
        self.code = code
        self.detail = detail
        self.bill_no = bill_no
        self.merchant_id = merchant_id


def _json(status: int, value: Any, **kwargs: Any) -> _Reply:
    return _Reply(status, json.dumps(value).encode("utf-8"), **kwargs)


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


class EmulatorApp:
    """A stateful, faithful-as-documented Faspay Debit API (DANA) as a plain WSGI callable.

    Routes: ``POST /cvr/100001/10`` (channel inquiry), ``/cvr/300011/10`` (post data),
    ``/cvr/100004/10`` (inquiry), ``/cvr/100005/10`` (cancel); ``GET
    /pws/100003/<stage>/<signature>`` (the DANA page) and ``POST .../complete`` (its forms);
    ``/_emulator/...`` (control API, JSON). The same operations are methods of this object.

    Socket-level faults (resets, refusal) need :class:`EmulatorServer`; under another WSGI
    server ``reset_after_read`` processes the request and answers an empty 500, and the other
    socket faults answer an empty 500 without processing.
    """

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
        language: Literal["en", "id"] = "en",
        redirect_stage: Literal["sandbox", "production"] = "sandbox",
        public_url: str | None = None,
        notify_statuses: Iterable[str] = ("2", "3", "4", "7", "8"),
        control_api: bool = True,
        request_log_limit: int = 10_000,
    ) -> None:
        if duplicate_bill_no not in ("return_existing", "reject", "new_bill"):
            raise ValueError("duplicate_bill_no must be return_existing, reject or new_bill")
        if malformed_request not in ("format_error", "response_error", "http_400"):
            raise ValueError("malformed_request must be format_error, response_error or http_400")
        if language not in ("en", "id"):
            raise ValueError("language must be 'en' or 'id'")
        if redirect_stage not in ("sandbox", "production"):
            raise ValueError("redirect_stage must be 'sandbox' or 'production'")
        if isinstance(merchants, Merchant):
            merchants = [merchants]
        self._merchants: dict[str, Merchant] = {m.merchant_id: m for m in merchants or ()}
        self.clock = clock or EmulatorClock()
        self.duplicate_bill_no: DuplicateMode = duplicate_bill_no
        self.duplicate_bill_no_code = duplicate_bill_no_code
        self.malformed_request: MalformedMode = malformed_request
        self.bad_signature_code = bad_signature_code
        self.language = language
        self.stage = codes.SANDBOX_STAGE if redirect_stage == "sandbox" else codes.PRODUCTION_STAGE
        self.public_url = public_url.rstrip("/") if public_url else None
        self.notify_statuses = frozenset(str(s) for s in notify_statuses)
        self.control_api = control_api
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._faults = FaultPlan()
        self._notifier = Notifier(
            retry_interval=retry_interval,
            max_attempts=max_attempts,
            timeout=notification_timeout,
            now=self.clock.wall,
        )
        self._seq = itertools.count(1)
        self._reff_seq = itertools.count(1)
        self._log_seq = itertools.count(1)
        self._bills: dict[str, Bill] = {}
        self._by_bill_no: dict[tuple[str, str], list[str]] = {}
        self._create_counts: dict[tuple[str, str], int] = {}
        self._expiry: list[tuple[datetime, str]] = []
        self._requests: deque[dict[str, Any]] = deque(maxlen=request_log_limit)
        self._request_counts: dict[str, int] = {}
        self.socket_controller: SocketController | None = None
        self.clock.subscribe(self.tick)

    # ================================================================ merchants & settings ==

    @property
    def merchants(self) -> dict[str, Merchant]:
        """The configured merchants by merchant_id (a copy)."""
        with self._lock:
            return dict(self._merchants)

    def merchant(self, merchant_id: str) -> Merchant | None:
        """The merchant with ``merchant_id``, if configured."""
        with self._lock:
            return self._merchants.get(str(merchant_id))

    def add_merchant(self, merchant: Merchant) -> Merchant:
        """Add (or replace) a merchant."""
        with self._lock:
            self._merchants[merchant.merchant_id] = merchant
        return merchant

    def configure_merchant(self, merchant_id: str, **changes: Any) -> Merchant:
        """Change a merchant's settings (``notification_url``, ``return_url``, ...)."""
        with self._lock:
            current = self._merchants.get(str(merchant_id))
            if current is None:
                raise EmulatorError(f"unknown merchant {merchant_id}", http_status=404)
            if "merchant_id" in changes:
                raise EmulatorError("merchant_id cannot change")
            if "channels" in changes:
                changes["channels"] = tuple(changes["channels"])
            try:
                updated = dataclasses.replace(current, **changes)
            except (TypeError, ValueError) as exc:
                raise EmulatorError(str(exc)) from None
            self._merchants[updated.merchant_id] = updated
            return updated

    @property
    def retry_interval(self) -> float:
        """Seconds between notification attempts."""
        return self._notifier.retry_interval

    @retry_interval.setter
    def retry_interval(self, value: float) -> None:
        self._notifier.retry_interval = float(value)

    # ================================================================ WSGI ==================

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if path == "/_emulator" or path.startswith("/_emulator/"):
            if not self.control_api:
                return self._send(start_response, _json(404, {"error": "control API disabled"}))
            return self._send(start_response, self._control(method, path, environ))
        endpoint = self.endpoint_for(path)
        if endpoint is not None:
            return self._serve_endpoint(endpoint, method, path, environ, start_response)
        if path == "/" and method in ("GET", "HEAD"):
            return self._send(start_response, _json(200, self._index(environ)))
        return self._send(start_response, _json(404, {"error": f"no route for {path}"}))

    @staticmethod
    def endpoint_for(path: str) -> str | None:
        """The endpoint name of ``path`` (``create``, ``redirect``, ...), or None."""
        if path in codes.API_PATHS:
            return codes.API_PATHS[path]
        if path.startswith(_PAGE_PREFIX):
            parts = path[len(_PAGE_PREFIX) :].split("/")
            if len(parts) == 2:
                return "redirect"
            if len(parts) == 3 and parts[2] == "complete":
                return "complete"
        return None

    def _send(self, start_response: StartResponse, reply: _Reply) -> list[bytes]:
        headers = [*reply.headers, ("Content-Length", str(len(reply.body)))]
        start_response(_status_line(reply.status), headers)
        return [reply.body]

    # ================================================================ endpoints + faults ====

    def take_fault(self, endpoint: str) -> Fault | None:
        """Consume the next scripted fault for ``endpoint`` (used by :class:`EmulatorServer`)."""
        return self._faults.take(endpoint)

    def _serve_endpoint(
        self,
        endpoint: str,
        method: str,
        path: str,
        environ: WSGIEnvironment,
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        socket_mode = FAULT_KEY in environ
        fault: Fault | None = environ[FAULT_KEY] if socket_mode else self._faults.take(endpoint)
        kind = fault.kind if fault is not None else None
        try:
            raw = self._read_body(environ)
        except EmulatorError as exc:
            refused = _json(exc.http_status, {"error": str(exc)})
            self._log(endpoint, method, path, environ, fault, refused, processed=False)
            return self._send(start_response, refused)

        process = True
        if kind in ("reset_before_read", "close_without_response", "business_error"):
            process = False
        elif kind in ("http_5xx", "http_429", "malformed_json", "empty_body", "html_200"):
            assert fault is not None
            process = bool(fault.param("process"))

        reply = self._dispatch(endpoint, method, environ, raw) if process else None
        shaped = self._shape(fault, reply, endpoint, raw)
        final = shaped if shaped is not None else reply
        assert final is not None
        self._log(endpoint, method, path, environ, fault, final, processed=process, real=reply)

        if fault is not None and kind in SOCKET_FAULTS:
            control = environ.get(CONTROL_KEY)
            if socket_mode and isinstance(control, dict) and kind == "reset_after_read":
                control["reset"] = True
                start_response("200 OK", [("Content-Length", "0")])
                return []
            return self._send(start_response, _Reply(500, b"", "text/plain"))
        if fault is not None and kind == "read_timeout":
            self._stopping.wait(float(fault.param("seconds")))
        if fault is not None and kind == "slow_drip":
            headers = [*final.headers, ("Content-Length", str(len(final.body)))]
            start_response(_status_line(final.status), headers)
            return self._drip(final.body, float(fault.param("interval")), fault.param("chunk"))
        return self._send(start_response, final)

    def _drip(self, body: bytes, interval: float, chunk: int) -> Iterator[bytes]:
        for offset in range(0, len(body), chunk):
            if offset and self._stopping.wait(interval):
                return
            yield body[offset : offset + chunk]

    def _shape(
        self, fault: Fault | None, reply: _Reply | None, endpoint: str, raw: bytes
    ) -> _Reply | None:
        if fault is None:
            return None
        kind = fault.kind
        if kind == "http_5xx":
            status = int(fault.param("status"))
            return _Reply(status, error_html(status, _status_line(status)[4:]), "text/html")
        if kind == "http_429":
            retry_after = fault.param("retry_after")
            headers = [] if retry_after is None else [("Retry-After", str(retry_after))]
            return _Reply(429, error_html(429, "Too Many Requests"), "text/html", headers=headers)
        if kind == "malformed_json":
            body = reply.body if reply is not None else b'{"response_code":"00"}'
            return _Reply(200, body[: max(1, len(body) // 2)], "application/json")
        if kind == "empty_body":
            return _Reply(200, b"", "application/json")
        if kind == "html_200":
            return _Reply(200, error_html(200, "OK"), "text/html")
        if kind == "business_error":
            code = str(fault.param("response_code"))
            desc = fault.param("response_desc") or codes.response_desc(code, self.language)
            return self._business_error(endpoint, raw, code, desc, bool(fault.param("wrapper")))
        if kind in ("reset_before_read", "close_without_response"):
            return _Reply(500, b"", "text/plain")
        return None

    def _business_error(
        self, endpoint: str, raw: bytes, code: str, desc: str, wrapper: bool
    ) -> _Reply:
        if wrapper:
            return _json(200, {"response_error": {"response_code": code, "response_desc": desc}})
        try:
            body = parse_body(raw)
        except MalformedRequest:
            body = {}
        data: dict[str, Any] = {"response": codes.RESPONSE_TEXT[self.language].get(endpoint, "")}
        for key in ("trx_id", "merchant_id", "merchant", "bill_no"):
            value = body.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                data[key] = str(value)
        data["response_code"] = code
        data["response_desc"] = desc
        return _json(200, data, code=code, detail="business_error fault")

    @staticmethod
    def _read_body(environ: WSGIEnvironment) -> bytes:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise EmulatorError("bad Content-Length") from None
        if length > _MAX_BODY:
            raise EmulatorError("request body too large", http_status=413)
        if length <= 0:
            return b""
        stream = environ["wsgi.input"]
        data: bytes = stream.read(length)
        return data

    def _dispatch(self, endpoint: str, method: str, environ: WSGIEnvironment, raw: bytes) -> _Reply:
        if endpoint == "redirect":
            if method not in ("GET", "HEAD"):
                return _json(405, {"error": "use GET"}, headers=[("Allow", "GET")])
            return self._page(environ)
        if method != "POST":
            return _json(405, {"error": "use POST"}, headers=[("Allow", "POST")])
        if endpoint == "complete":
            return self._complete(environ, raw)
        try:
            body = parse_body(raw)
        except MalformedRequest as exc:
            return self._malformed(endpoint, str(exc))
        handler: Callable[[dict[str, Any], WSGIEnvironment], _Reply] = {
            "channel_inquiry": self._channel_inquiry,
            "create": self._create,
            "inquiry": self._inquiry,
            "cancel": self._cancel,
        }[endpoint]
        try:
            return handler(body, environ)
        except Rejected as exc:
            return self._rejection(endpoint, body, exc)

    def _malformed(self, endpoint: str, detail: str) -> _Reply:
        code = codes.FORMAT_ERROR
        desc = codes.response_desc(code, self.language)
        if self.malformed_request == "http_400":
            return _Reply(400, b"Bad Request", "text/plain", detail=detail)
        if self.malformed_request == "response_error":
            payload: dict[str, Any] = {
                "response_error": {"response_code": code, "response_desc": desc}
            }
            return _json(200, payload, code=code, detail=detail)
        data = {
            "response": codes.RESPONSE_TEXT[self.language][endpoint],
            "response_code": code,
            "response_desc": desc,
        }
        return _json(200, data, code=code, detail=detail)

    def _rejection(self, endpoint: str, body: Mapping[str, Any], exc: Rejected) -> _Reply:
        desc = codes.response_desc(exc.code, self.language)
        bill_no = _text_or_none(body.get("bill_no"))
        merchant_id = _text_or_none(body.get("merchant_id"))
        if exc.wrapper:
            payload = {"response_error": {"response_code": exc.code, "response_desc": desc}}
            return _json(
                200,
                payload,
                code=exc.code,
                detail=exc.detail,
                bill_no=bill_no,
                merchant_id=merchant_id,
            )
        data: dict[str, Any] = {"response": codes.RESPONSE_TEXT[self.language][endpoint]}
        if endpoint in ("inquiry", "cancel"):
            data["trx_id"] = _text_or_none(body.get("trx_id")) or ""
        data["merchant_id"] = merchant_id or ""
        merchant = self.merchant(merchant_id) if merchant_id else None
        data["merchant"] = merchant.merchant_name if merchant else ""
        if endpoint != "channel_inquiry":
            data["bill_no"] = bill_no or ""
        data["response_code"] = exc.code
        data["response_desc"] = desc
        return _json(
            200, data, code=exc.code, detail=exc.detail, bill_no=bill_no, merchant_id=merchant_id
        )

    def _ok(self) -> dict[str, str]:
        return {
            "response_code": codes.OK,
            "response_desc": codes.response_desc("00", self.language),
        }

    # ---------------------------------------------------------------- channel inquiry -------

    def _channel_inquiry(self, body: dict[str, Any], environ: WSGIEnvironment) -> _Reply:
        merchant, _ = lookup_and_verify(
            body,
            self.merchant,
            signed_with_bill_no=False,
            bad_signature_code=self.bad_signature_code,
        )
        data = {
            "response": codes.RESPONSE_TEXT[self.language]["channel_inquiry"],
            "merchant_id": merchant.merchant_id,
            "merchant": merchant.merchant_name,
            "payment_channel": [
                {"pg_code": c, "pg_name": codes.CHANNEL_NAMES.get(c, c)} for c in merchant.channels
            ],
            **self._ok(),
        }
        return _json(200, data, code=codes.OK, merchant_id=merchant.merchant_id)

    # ---------------------------------------------------------------- post data -------------

    def _create(self, body: dict[str, Any], environ: WSGIEnvironment) -> _Reply:
        raw_mid = _text_or_none(body.get("merchant_id"))
        raw_bill = _text_or_none(body.get("bill_no"))
        if raw_mid is not None and raw_bill is not None:
            with self._lock:
                key = (raw_mid, raw_bill)
                self._create_counts[key] = self._create_counts.get(key, 0) + 1
        merchant, bill_no = lookup_and_verify(
            body,
            self.merchant,
            signed_with_bill_no=True,
            bad_signature_code=self.bad_signature_code,
        )
        request = validate_create(body, merchant, bill_no, self.clock.parse)
        with self._lock:
            self._expire_due()
            existing = self._latest(merchant.merchant_id, bill_no)
            if existing is not None and self.duplicate_bill_no == "return_existing":
                bill = existing
            elif existing is not None and self.duplicate_bill_no == "reject":
                raise Rejected(self.duplicate_bill_no_code, "duplicate bill_no")
            else:
                bill = self._new_bill(request, self._base_url(environ))
        items: Any = bill.items[0] if bill.item_was_object else bill.items
        data = {
            "response": codes.RESPONSE_TEXT[self.language]["create"],
            "trx_id": bill.trx_id,
            "merchant_id": bill.merchant_id,
            "merchant": bill.merchant_name,
            "bill_no": bill.bill_no,
            "bill_items": items,
            **self._ok(),
            "redirect_url": bill.redirect_url,
        }
        return _json(200, data, code=codes.OK, bill_no=bill_no, merchant_id=merchant.merchant_id)

    def _new_bill(self, request: CreateRequest, base_url: str) -> Bill:
        seq = next(self._seq)
        merchant = request.merchant
        trx_id = f"{merchant.merchant_id}{request.channel}{seq:08d}"
        query = urlencode(
            [
                ("trx_id", trx_id),
                ("merchant_id", merchant.merchant_id),
                ("bill_no", request.bill_no),
            ]
        )
        redirect = f"{base_url}{_PAGE_PREFIX}{self.stage}/{request.signature}?{query}"
        now = self.clock.now()
        bill = Bill(
            merchant_id=merchant.merchant_id,
            merchant_name=request.merchant_name,
            bill_no=request.bill_no,
            trx_id=trx_id,
            channel=request.channel,
            bill_reff=request.bill_reff,
            bill_date=request.bill_date,
            bill_expired=request.bill_expired,
            bill_desc=request.bill_desc,
            bill_total=request.bill_total,
            bill_gross=request.bill_gross,
            bill_tax=request.bill_tax,
            bill_miscfee=request.bill_miscfee,
            cust_no=request.cust_no,
            cust_name=request.cust_name,
            msisdn=request.msisdn,
            email=request.email,
            items=request.items,
            item_was_object=request.item_was_object,
            signature=request.signature,
            created_at=now,
            redirect_url=redirect,
            status_changed_at=now,
        )
        bill.history.append(
            {"at": self.clock.format(now), "from": "", "to": codes.UNPROCESSED, "by": "create"}
        )
        self._bills[trx_id] = bill
        self._by_bill_no.setdefault((merchant.merchant_id, request.bill_no), []).append(trx_id)
        heapq.heappush(self._expiry, (request.bill_expired, trx_id))
        return bill

    def _base_url(self, environ: WSGIEnvironment) -> str:
        if self.public_url:
            return self.public_url
        scheme = environ.get("wsgi.url_scheme", "http")
        host = environ.get("HTTP_HOST")
        if not host:
            host = environ.get("SERVER_NAME", "127.0.0.1")
            port = environ.get("SERVER_PORT", "")
            if port and port not in ("80", "443"):
                host = f"{host}:{port}"
        return f"{scheme}://{host}{quote(environ.get('SCRIPT_NAME', ''))}"

    # ---------------------------------------------------------------- inquiry / cancel ------

    def _reference(self, body: dict[str, Any], *, cancel: bool) -> tuple[Merchant, str, str, str]:
        merchant, bill_no = lookup_and_verify(
            body,
            self.merchant,
            signed_with_bill_no=True,
            bad_signature_code=self.bad_signature_code,
        )
        ref = validate_reference(body, merchant, bill_no, cancel=cancel)
        return merchant, ref.trx_id, bill_no, ref.reason

    def _matching(self, merchant: Merchant, trx_id: str, bill_no: str) -> Bill | None:
        bill = self._bills.get(trx_id)
        if bill is None or bill.bill_no != bill_no or bill.merchant_id != merchant.merchant_id:
            return None
        return bill

    def _inquiry(self, body: dict[str, Any], environ: WSGIEnvironment) -> _Reply:
        merchant, trx_id, bill_no, _ = self._reference(body, cancel=False)
        with self._lock:
            self._expire_due()
            bill = self._matching(merchant, trx_id, bill_no)
            status = bill.status if bill else codes.NOT_FOUND
            paid = bill is not None and status in (codes.PAID, codes.REVERSED)
            data = {
                "response": codes.RESPONSE_TEXT[self.language]["inquiry"],
                "trx_id": trx_id,
                "merchant_id": merchant.merchant_id,
                "merchant": bill.merchant_name if bill else merchant.merchant_name,
                "bill_no": bill_no,
                "payment_reff": bill.payment_reff if bill and paid else "",
                "payment_date": self._fmt(bill.payment_date) if bill and paid else "",
                "payment_status_code": status,
                "payment_status_desc": codes.status_desc(status, self.language),
            }
        if bill is None:
            code = codes.INVALID_ORDER
        elif status == codes.EXPIRED:
            code = codes.ORDER_EXPIRED
        else:
            code = codes.OK
        data["response_code"] = code
        data["response_desc"] = codes.response_desc(code, self.language)
        return _json(200, data, code=code, bill_no=bill_no, merchant_id=merchant.merchant_id)

    def _cancel(self, body: dict[str, Any], environ: WSGIEnvironment) -> _Reply:
        merchant, trx_id, bill_no, reason = self._reference(body, cancel=True)
        with self._lock:
            self._expire_due()
            bill = self._matching(merchant, trx_id, bill_no)
            if bill is None:
                status, code = codes.NOT_FOUND, codes.INVALID_ORDER
            elif bill.open:
                bill.cancel_reason = reason
                self._transition(bill, codes.CANCELLED, "cancel API")
                bill.cancel_date = bill.status_changed_at
                status, code = codes.CANCELLED, codes.OK
            else:
                status = bill.status
                code = {
                    codes.PAID: codes.ALREADY_PAID,
                    codes.EXPIRED: codes.ORDER_EXPIRED,
                    codes.CANCELLED: codes.ORDER_CANCELLED,
                    codes.REVERSED: codes.PAYMENT_REVERSED,
                }.get(status, codes.INVALID_ORDER)
            trx_status, trx_desc = codes.TRX_STATUS.get(status, ("", ""))
            cancelled_now = bill is not None and code == codes.OK
            data = {
                "response": codes.RESPONSE_TEXT[self.language]["cancel"],
                "trx_id": trx_id,
                "merchant_id": merchant.merchant_id,
                "merchant": bill.merchant_name if bill else merchant.merchant_name,
                "bill_no": bill_no,
                "trx_status_code": trx_status,
                "trx_status_desc": trx_desc,
                "payment_status_code": status,
                "payment_status_desc": codes.status_desc(status, self.language),
                "payment_cancel_date": (
                    self._fmt(bill.cancel_date) if bill is not None and cancelled_now else ""
                ),
                "payment_cancel": reason,
                "response_code": code,
                "response_desc": codes.response_desc(code, self.language),
            }
        return _json(200, data, code=code, bill_no=bill_no, merchant_id=merchant.merchant_id)

    # ---------------------------------------------------------------- DANA page -------------

    def _page_context(
        self, environ: WSGIEnvironment, params: Mapping[str, str]
    ) -> tuple[Merchant, Bill, str] | _Reply:
        path = environ.get("PATH_INFO", "")
        parts = path[len(_PAGE_PREFIX) :].split("/")
        stage, signature = parts[0], parts[1]
        if stage not in codes.REDIRECT_STAGES:
            return self._html(404, "Not found", "Unknown redirect stage.")
        missing = [k for k in ("trx_id", "merchant_id", "bill_no") if not params.get(k)]
        if missing:
            return self._html(400, "Bad request", "Missing " + ", ".join(missing) + ".")
        merchant = self.merchant(params["merchant_id"])
        if merchant is None:
            return self._html(404, "Invalid merchant", "Unknown merchant.")
        if not matches(signature, merchant.user_id, merchant.password, params["bill_no"]):
            return self._html(403, "Invalid signature", "The signature does not match.")
        with self._lock:
            self._expire_due()
            bill = self._matching(merchant, params["trx_id"], params["bill_no"])
        if bill is None:
            return self._html(404, "Transaction not found", "No bill matches this link.")
        action_url = f"{self._base_url(environ)}{_PAGE_PREFIX}{stage}/{signature}/complete"
        return merchant, bill, action_url

    def _html(self, status: int, title: str, message: str) -> _Reply:
        return _Reply(
            status, message_page(title, message), "text/html; charset=utf-8", detail=title
        )

    def _page(self, environ: WSGIEnvironment) -> _Reply:
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        params = {k: v[0] for k, v in query.items()}
        context = self._page_context(environ, params)
        if isinstance(context, _Reply):
            context.bill_no = params.get("bill_no")
            context.merchant_id = params.get("merchant_id")
            return context
        _, bill, action_url = context
        with self._lock:
            if bill.status == codes.UNPROCESSED:
                self._transition(bill, codes.IN_PROCESS, "customer opened the DANA page")
            page = payment_page(bill, action_url, language=self.language)
        return _Reply(
            200,
            page,
            "text/html; charset=utf-8",
            bill_no=bill.bill_no,
            merchant_id=bill.merchant_id,
        )

    def _complete(self, environ: WSGIEnvironment, raw: bytes) -> _Reply:
        form = parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
        params = {k: v[0] for k, v in form.items()}
        context = self._page_context(environ, params)
        if isinstance(context, _Reply):
            return context
        merchant, bill, _ = context
        action = params.get("action", "")
        if action not in ("pay", "fail", "abandon"):
            return self._html(400, "Bad request", "Unknown action.")
        with self._lock:
            if action == "pay" and bill.open:
                bill.bank_user_name = params.get("bank_user_name") or bill.cust_name
                self._pay(bill, "customer paid on the DANA page")
            elif action == "fail" and bill.open:
                bill.bank_user_name = params.get("bank_user_name") or bill.cust_name
                self._transition(bill, codes.FAILED, "customer failed on the DANA page")
            query = self.return_query(bill)
        if not merchant.return_url:
            return _Reply(
                200,
                message_page("DANA", codes.status_desc(bill.status, self.language)),
                "text/html; charset=utf-8",
                bill_no=bill.bill_no,
                merchant_id=bill.merchant_id,
            )
        location = return_url(merchant.return_url, query)
        return _Reply(
            302,
            message_page("Redirecting", location),
            "text/html; charset=utf-8",
            headers=[("Location", location)],
            bill_no=bill.bill_no,
            merchant_id=bill.merchant_id,
        )

    def return_query(self, bill: Bill, status: str | None = None) -> dict[str, str]:
        """The D7 return query Faspay would send for ``bill`` (its status, or ``status``)."""
        merchant = self.merchant(bill.merchant_id)
        if merchant is None:  # pragma: no cover - bills only exist for known merchants
            raise UnknownBill("merchant gone")
        return return_query(
            merchant,
            trx_id=bill.trx_id,
            bill_no=bill.bill_no,
            status=status or bill.status,
            bill_total=bill.total_text,
            bill_ref=bill.bill_reff or bill.bill_no,
            bank_user_name=bill.bank_user_name or bill.cust_name,
            merchant=bill.merchant_name,
        )

    # ================================================================ state machine ==========

    def _fmt(self, moment: datetime | None) -> str:
        return self.clock.format(moment) if moment is not None else ""

    def _latest(self, merchant_id: str, bill_no: str) -> Bill | None:
        ids = self._by_bill_no.get((merchant_id, bill_no))
        return self._bills[ids[-1]] if ids else None

    def _pay(self, bill: Bill, by: str, payment_reff: str | None = None) -> None:
        now = self.clock.now()
        bill.payment_reff = payment_reff or f"{now:%Y%m%d}{next(self._reff_seq):08d}"
        bill.payment_date = now
        if not bill.bank_user_name:
            bill.bank_user_name = bill.cust_name
        self._transition(bill, codes.PAID, by)

    def _transition(self, bill: Bill, status: str, by: str) -> None:
        now = self.clock.now()
        previous = bill.status
        bill.status = status
        bill.status_changed_at = now
        bill.history.append(
            {"at": self.clock.format(now), "from": previous, "to": status, "by": by}
        )
        if status in self.notify_statuses:
            self._notify(bill, status, kind="original")

    def _notify(self, bill: Bill, status: str, *, kind: str) -> list[dict[str, Any]]:
        merchant = self.merchant(bill.merchant_id)
        if merchant is None:  # pragma: no cover
            return []
        faults = {f.kind: f for f in self._faults.take_notification(status, bill.bill_no)}
        fields = self._notification_fields(
            merchant, bill, status, legacy="legacy_signature" in faults
        )
        reorder = None
        if "reorder" in faults:
            reorder = self._notification_fields(
                merchant, bill, str(faults["reorder"].param("status")), legacy=False, scripted=True
            )
        plan = NotificationPlan(
            merchant_id=merchant.merchant_id,
            url=merchant.notification_url,
            format=merchant.notification_format,
            fields=fields,
            faults=sorted(faults),
            delay=float(faults["delay"].param("seconds")) if "delay" in faults else 0.0,
            duplicates=int(faults["duplicate"].param("times")) if "duplicate" in faults else 0,
            burst=int(faults["burst"].param("times")) if "burst" in faults else 1,
            drop="drop" in faults,
            reorder_fields=reorder,
            kind=kind,
        )
        return [d.to_dict() for d in self._notifier.submit(plan)]

    def _notification_fields(
        self, merchant: Merchant, bill: Bill, status: str, *, legacy: bool, scripted: bool = False
    ) -> dict[str, str]:
        if status in (codes.PAID, codes.REVERSED) and not scripted and bill.payment_date:
            payment_date = self._fmt(bill.payment_date)
        elif scripted:
            payment_date = self.clock.wall()
        else:
            payment_date = self._fmt(bill.status_changed_at)
        reff = bill.payment_reff if status in (codes.PAID, codes.REVERSED) else ""
        return notification_fields(
            merchant,
            trx_id=bill.trx_id,
            bill_no=bill.bill_no,
            status=status,
            bill_total=bill.total_text,
            payment_reff=reff or "null",
            payment_date=payment_date,
            channel=bill.channel,
            legacy_signature=legacy,
            language=self.language,
            merchant=bill.merchant_name,
        )

    def _expire_due(self) -> list[str]:
        expired: list[str] = []
        now = self.clock.now()
        while self._expiry and self._expiry[0][0] <= now:
            _, trx_id = heapq.heappop(self._expiry)
            bill = self._bills.get(trx_id)
            if bill is not None and bill.open:
                self._transition(bill, codes.EXPIRED, "clock (bill_expired reached)")
                expired.append(bill.bill_no)
        return expired

    def tick(self) -> list[str]:
        """Expire every open bill whose ``bill_expired`` has passed; returns their bill_nos."""
        with self._lock:
            return self._expire_due()

    def advance_clock(self, seconds: float) -> list[str]:
        """Move the emulator clock forward, expire due bills (and notify); their bill_nos."""
        with self._lock:
            self.clock.unsubscribe(self.tick)
            try:
                self.clock.advance(seconds)
            finally:
                self.clock.subscribe(self.tick)
            return self._expire_due()

    # ================================================================ Python control API =====

    def _find(self, bill_no: str, merchant_id: str | None, trx_id: str | None) -> Bill:
        if trx_id:
            bill = self._bills.get(str(trx_id))
            if bill is None or bill.bill_no != bill_no:
                raise UnknownBill(f"no bill {bill_no} with trx_id {trx_id}")
            if merchant_id and bill.merchant_id != str(merchant_id):
                raise UnknownBill(f"no bill {bill_no} for merchant {merchant_id}")
            return bill
        keys = [
            key
            for key in self._by_bill_no
            if key[1] == bill_no and (not merchant_id or key[0] == str(merchant_id))
        ]
        if not keys:
            raise UnknownBill(f"no bill {bill_no}")
        if len(keys) > 1:
            raise EmulatorError(f"bill {bill_no} exists for several merchants: give merchant_id")
        bill = self._latest(*keys[0])
        assert bill is not None
        return bill

    def bill_record(self, bill: Bill) -> dict[str, Any]:
        """The emulator's record of ``bill`` as plain data."""
        key = (bill.merchant_id, bill.bill_no)
        return {
            "merchant_id": bill.merchant_id,
            "merchant": bill.merchant_name,
            "bill_no": bill.bill_no,
            "bill_reff": bill.bill_reff,
            "trx_id": bill.trx_id,
            "trx_ids": list(self._by_bill_no.get(key, [])),
            "channel": bill.channel,
            "status": bill.status,
            "status_desc": codes.status_desc(bill.status, self.language),
            "bill_total": bill.total_text,
            "bill_gross": None if bill.bill_gross is None else str(bill.bill_gross),
            "bill_tax": None if bill.bill_tax is None else str(bill.bill_tax),
            "bill_miscfee": None if bill.bill_miscfee is None else str(bill.bill_miscfee),
            "bill_date": self._fmt(bill.bill_date),
            "bill_expired": self._fmt(bill.bill_expired),
            "bill_desc": bill.bill_desc,
            "cust_no": bill.cust_no,
            "cust_name": bill.cust_name,
            "msisdn": bill.msisdn,
            "email": bill.email,
            "items": [dict(i) for i in bill.items],
            "payment_reff": bill.payment_reff,
            "payment_date": self._fmt(bill.payment_date),
            "cancel_reason": bill.cancel_reason,
            "cancel_date": self._fmt(bill.cancel_date),
            "bank_user_name": bill.bank_user_name,
            "created_at": self._fmt(bill.created_at),
            "redirect_url": bill.redirect_url,
            "create_requests": self._create_counts.get(key, 0),
            "history": [dict(h) for h in bill.history],
        }

    def bill(
        self, bill_no: str, *, merchant_id: str | None = None, trx_id: str | None = None
    ) -> dict[str, Any]:
        """The record of a bill (the latest one for ``bill_no`` unless ``trx_id`` is given)."""
        with self._lock:
            self._expire_due()
            return self.bill_record(self._find(str(bill_no), merchant_id, trx_id))

    def bills(self, *, merchant_id: str | None = None) -> list[dict[str, Any]]:
        """Every bill, oldest first."""
        with self._lock:
            self._expire_due()
            return [
                self.bill_record(b)
                for b in self._bills.values()
                if merchant_id is None or b.merchant_id == str(merchant_id)
            ]

    def create_requests(self, bill_no: str, merchant_id: str | None = None) -> int:
        """How many create requests were processed for ``bill_no`` (across merchants if None)."""
        with self._lock:
            return sum(
                n
                for (mid, no), n in self._create_counts.items()
                if no == bill_no and (merchant_id is None or mid == str(merchant_id))
            )

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
        if action not in _ACTIONS:
            raise EmulatorError(f"unknown action {action!r}", http_status=404)
        target, sources = _ACTIONS[action]
        with self._lock:
            self._expire_due()
            bill = self._find(str(bill_no), merchant_id, trx_id)
            if bill.status == target and action == "open":
                return self.bill_record(bill)
            if bill.status not in sources and not (force and bill.status != target):
                raise TransitionNotAllowed(
                    f"cannot {action} bill {bill.bill_no} in status {bill.status}"
                )
            if bank_user_name:
                bill.bank_user_name = bank_user_name
            if target == codes.PAID:
                self._pay(bill, f"operator {action}", payment_reff)
            else:
                if target == codes.CANCELLED:
                    bill.cancel_reason = reason
                self._transition(bill, target, f"operator {action}")
                if target == codes.CANCELLED:
                    bill.cancel_date = bill.status_changed_at
            return self.bill_record(bill)

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
            bill = self._find(str(bill_no), merchant_id, trx_id)
            return self._notify(bill, str(status or bill.status), kind="manual")

    # faults ---------------------------------------------------------------------------------

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

    # logs -----------------------------------------------------------------------------------

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
        entry = {
            "seq": next(self._log_seq),
            "at": self.clock.wall(),
            "endpoint": endpoint,
            "method": method,
            "path": path,
            "connection": connection,
            "fault": fault.kind if fault else None,
            "processed": processed,
            "http_status": http_status,
            "response_code": None,
            "merchant_id": None,
            "bill_no": None,
            "detail": detail,
        }
        with self._lock:
            self._requests.append(entry)
            self._request_counts[endpoint] = self._request_counts.get(endpoint, 0) + 1

    def _log(
        self,
        endpoint: str,
        method: str,
        path: str,
        environ: WSGIEnvironment,
        fault: Fault | None,
        reply: _Reply,
        *,
        processed: bool,
        real: _Reply | None = None,
    ) -> None:
        source = real or reply
        entry = {
            "seq": next(self._log_seq),
            "at": self.clock.wall(),
            "endpoint": endpoint,
            "method": method,
            "path": path,
            "connection": environ.get(CONNECTION_KEY),
            "fault": fault.kind if fault else None,
            "processed": processed,
            "http_status": reply.status,
            "response_code": source.code,
            "merchant_id": source.merchant_id,
            "bill_no": source.bill_no,
            "detail": source.detail,
        }
        with self._lock:
            self._requests.append(entry)
            self._request_counts[endpoint] = self._request_counts.get(endpoint, 0) + 1

    def requests_log(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """API requests received (oldest first), optionally for one endpoint."""
        with self._lock:
            return [
                dict(e) for e in self._requests if endpoint is None or e["endpoint"] == endpoint
            ]

    def request_counts(self) -> dict[str, int]:
        """Number of API requests received per endpoint."""
        with self._lock:
            return dict(self._request_counts)

    # notifications --------------------------------------------------------------------------

    def deliveries(self, bill_no: str | None = None) -> list[dict[str, Any]]:
        """Recorded notification deliveries with every attempt and reply."""
        return self._notifier.deliveries(bill_no)

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """Block until no notification job runs; False on timeout."""
        return self._notifier.wait(timeout)

    def idle(self) -> bool:
        """True when no notification job runs."""
        return self._notifier.idle()

    # lifecycle ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget bills, logs, deliveries and faults; clock back to real time.

        ``trx_id`` sequence numbers keep increasing, so ids never repeat within a process.
        """
        with self._lock:
            self._faults.clear()
            self._notifier.reset()
            self._bills.clear()
            self._by_bill_no.clear()
            self._create_counts.clear()
            self._expiry.clear()
            self._requests.clear()
            self._request_counts.clear()
            self.clock.reset()

    def close(self) -> None:
        """Stop background work (notification threads, pending sleeps and drips)."""
        self._stopping.set()
        self.clock.unsubscribe(self.tick)
        self._notifier.close()

    # ================================================================ control API (HTTP) ====

    def _index(self, environ: WSGIEnvironment) -> dict[str, Any]:
        base = self._base_url(environ)
        return {
            "emulator": "faspay_dana",
            "base_url": base,
            "control_api": f"{base}/_emulator/",
            "endpoints": {name: base + path for path, name in codes.API_PATHS.items()},
            "merchants": [m.to_dict() for m in self.merchants.values()],
            "now": self.clock.wall(),
        }

    def _control(self, method: str, path: str, environ: WSGIEnvironment) -> _Reply:
        try:
            raw = self._read_body(environ)
            body: dict[str, Any] = {}
            if raw.strip():
                loaded = json.loads(raw.decode("utf-8"))
                if not isinstance(loaded, (dict, list)):
                    raise EmulatorError("control API bodies are JSON objects")
                body = loaded if isinstance(loaded, dict) else {"faults": loaded}
            query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
            parts = [p for p in path.split("/") if p][1:]
            return _json(200, self._route(method, parts, body, query, environ))
        except EmulatorError as exc:
            return _json(exc.http_status, {"error": str(exc)})
        except (ValueError, TypeError, KeyError) as exc:
            return _json(400, {"error": f"bad request: {exc}"})

    def _route(
        self,
        method: str,
        parts: list[str],
        body: dict[str, Any],
        query: dict[str, str],
        environ: WSGIEnvironment,
    ) -> Any:
        params = {**query, **body}
        route = (method, *parts[:1])
        if not parts and method == "GET":
            return self._index(environ)
        if route == ("GET", "bills") and len(parts) == 1:
            return {"bills": self.bills(merchant_id=params.get("merchant_id"))}
        if route == ("GET", "bills") and len(parts) == 2:
            bill_no = parts[1]
            try:
                return self.bill(
                    bill_no, merchant_id=params.get("merchant_id"), trx_id=params.get("trx_id")
                )
            except UnknownBill as exc:
                count = self.create_requests(bill_no, params.get("merchant_id"))
                raise EmulatorError(
                    f"{exc} (create requests seen: {count})", http_status=404
                ) from None
        if route == ("POST", "bills") and len(parts) == 3:
            return self._route_bill_action(parts[1], parts[2], params)
        if parts == ["clock"] and method == "GET":
            return {"now": self.clock.wall(), "offset": self.clock.offset}
        if parts == ["clock", "advance"] and method == "POST":
            expired = self.advance_clock(float(params.get("seconds", 0)))
            return {"now": self.clock.wall(), "offset": self.clock.offset, "expired": expired}
        if parts == ["clock", "set"] and method == "POST":
            with self._lock:
                self.clock.unsubscribe(self.tick)
                try:
                    self.clock.set(self.clock.parse(str(params["now"])))
                finally:
                    self.clock.subscribe(self.tick)
                expired = self._expire_due()
            return {"now": self.clock.wall(), "offset": self.clock.offset, "expired": expired}
        if parts == ["deliveries"] and method == "GET":
            return {"deliveries": self.deliveries(params.get("bill_no"))}
        if parts == ["requests"] and method == "GET":
            return {
                "counts": self.request_counts(),
                "requests": self.requests_log(params.get("endpoint")),
            }
        if parts == ["faults"]:
            return self._route_faults(method, body)
        if parts == ["reset"] and method == "POST":
            self.reset()
            return {"reset": True}
        if parts == ["wait"] and method == "POST":
            return {"idle": self.wait_for_deliveries(float(params.get("timeout", 10.0)))}
        if parts == ["merchants"] and method == "GET":
            return {"merchants": [m.to_dict() for m in self.merchants.values()]}
        if parts == ["merchants"] and method == "POST":
            merchant = Merchant(**_merchant_fields(body))
            return self.add_merchant(merchant).to_dict()
        if len(parts) == 2 and parts[0] == "merchants" and method in ("POST", "PATCH"):
            return self.configure_merchant(parts[1], **_merchant_fields(body)).to_dict()
        raise EmulatorError(
            f"no control route {method} /_emulator/{'/'.join(parts)}", http_status=404
        )

    def _route_bill_action(self, bill_no: str, action: str, params: dict[str, Any]) -> Any:
        selectors = {
            "merchant_id": _text_or_none(params.get("merchant_id")),
            "trx_id": _text_or_none(params.get("trx_id")),
        }
        if action == "notify":
            status = _text_or_none(params.get("status"))
            return {"deliveries": self.notify(bill_no, status=status, **selectors)}
        return self.act(
            action,
            bill_no,
            force=bool(params.get("force", False)),
            payment_reff=_text_or_none(params.get("payment_reff")),
            bank_user_name=_text_or_none(params.get("bank_user_name")),
            reason=str(params.get("reason", "")),
            **selectors,
        )

    def _route_faults(self, method: str, body: dict[str, Any]) -> Any:
        if method == "GET":
            return {"faults": self.faults()}
        if method == "DELETE":
            self.clear_faults()
            return {"faults": []}
        if method != "POST":
            raise EmulatorError("use GET, POST or DELETE", http_status=405)
        specs = body.get("faults", [body])
        if not isinstance(specs, list):
            raise EmulatorError("faults must be a list")
        added = []
        for spec in specs:
            if not isinstance(spec, dict):
                raise EmulatorError("each fault is an object")
            spec = dict(spec)
            endpoint = spec.pop("endpoint", None)
            kind = spec.pop("fault", None)
            count = spec.pop("count", 1)
            if not isinstance(endpoint, str) or not isinstance(kind, str):
                raise EmulatorError("a fault needs 'endpoint' and 'fault'")
            added.append(self.add_fault(endpoint, kind, count, **spec))
        return {"added": added, "faults": self.faults()}


def _text_or_none(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        text = str(value)
        return text or None
    return None


_MERCHANT_KEYS = frozenset(
    {
        "merchant_id",
        "merchant_name",
        "user_id",
        "password",
        "notification_url",
        "notification_format",
        "return_url",
        "channels",
    }
)


def _merchant_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(body) - _MERCHANT_KEYS
    if unknown:
        raise EmulatorError(f"unknown merchant setting(s): {', '.join(sorted(unknown))}")
    fields = dict(body)
    if "merchant_id" in fields:
        fields["merchant_id"] = str(fields["merchant_id"])
    if "channels" in fields:
        fields["channels"] = tuple(str(c) for c in fields["channels"])
    return fields
