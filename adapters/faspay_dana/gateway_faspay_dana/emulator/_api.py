"""Faspay's endpoints as the emulator serves them, with scripted faults applied.

The four JSON endpoints are here (channel inquiry ``/cvr/100001/10``, post data
``/cvr/300011/10``, inquiry ``/cvr/100004/10``, cancel ``/cvr/100005/10``) and their XML twins
``/pws/<function>/<stage>`` (``_xml``: the same handlers, XML in and out); the customer pages
and their forms are handed to :class:`DanaPage`, the OVO push call to :class:`OvoDirect`.
:meth:`FaspayApi.serve` takes the endpoint's next fault, decides whether the request is
processed at all, reshapes the reply as the fault says and logs the request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

from gateway_core.emulation.faults import drip, processes, shaped_reply
from gateway_core.emulation.requestlog import RequestLog
from gateway_faspay_dana.emulator import _codes as codes
from gateway_faspay_dana.emulator._channels import channel_name
from gateway_faspay_dana.emulator._dana_page import DanaPage
from gateway_faspay_dana.emulator._errors import EmulatorError
from gateway_faspay_dana.emulator._families import post_data_extras, qr_payload
from gateway_faspay_dana.emulator._faults import SOCKET_FAULTS, Fault, FaultPlan
from gateway_faspay_dana.emulator._model import Merchant
from gateway_faspay_dana.emulator._ovo_direct import OvoDirect
from gateway_faspay_dana.emulator._reply import (
    CONNECTION_KEY,
    CONTROL_KEY,
    FAULT_KEY,
    PAGE_PREFIX,
    Reply,
    base_url,
    json_reply,
    read_body,
    send,
    status_line,
    text_or_none,
)
from gateway_faspay_dana.emulator._settings import Settings
from gateway_faspay_dana.emulator._store import BillStore, MerchantBook
from gateway_faspay_dana.emulator._validation import (
    MalformedRequest,
    Rejected,
    lookup_and_verify,
    parse_body,
    validate_create,
    validate_reference,
)
from gateway_faspay_dana.emulator._xml import XML_CONTENT_TYPE, parse_xml, render_xml, xml_endpoint

Handler = Callable[[dict[str, Any], WSGIEnvironment], Reply]

#: Faspay's own fault after which the request is not processed at all (besides the kit's).
_UNPROCESSED = ("business_error",)


class FaspayApi:
    """Serves Faspay's endpoints (the API and the DANA page) for :class:`EmulatorApp`."""

    def __init__(
        self,
        *,
        store: BillStore,
        merchants: MerchantBook,
        page: DanaPage,
        faults: FaultPlan,
        log: RequestLog,
        settings: Settings,
        stopping: threading.Event,
        ovo: OvoDirect | None = None,
    ) -> None:
        self._ovo = ovo
        self._store = store
        self._merchants = merchants
        self._page = page
        self._faults = faults
        self._log = log
        self._settings = settings
        self._stopping = stopping
        self._handlers: dict[str, Handler] = {
            "channel_inquiry": self._channel_inquiry,
            "create": self._create,
            "inquiry": self._inquiry,
            "cancel": self._cancel,
        }

    # --- faults and logging -------------------------------------------------------------------

    def serve(
        self,
        endpoint: str,
        method: str,
        path: str,
        environ: WSGIEnvironment,
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        """Answer one request to ``endpoint`` (a name from ``codes.API_PATHS`` or the page)."""
        xml = xml_endpoint(path) is not None
        socket_mode = FAULT_KEY in environ
        fault: Fault | None = environ[FAULT_KEY] if socket_mode else self._faults.take(endpoint)
        kind = fault.kind if fault is not None else None
        try:
            raw = read_body(environ)
        except EmulatorError as exc:
            refused = json_reply(exc.http_status, {"error": str(exc)})
            self._record(endpoint, method, path, environ, fault, refused, processed=False, xml=xml)
            return send(start_response, refused)

        process = processes(fault, _UNPROCESSED)

        reply = self._dispatch(endpoint, method, environ, raw, xml=xml) if process else None
        if xml and reply is not None:
            reply = _as_xml(reply)
        shaped = self._shape(fault, reply, endpoint, raw, xml=xml)
        if xml and shaped is not None and shaped.data is not None:
            shaped = _as_xml(shaped)
        final = shaped if shaped is not None else reply
        assert final is not None
        self._record(
            endpoint, method, path, environ, fault, final, processed=process, real=reply, xml=xml
        )

        if fault is not None and kind in SOCKET_FAULTS:
            control = environ.get(CONTROL_KEY)
            if socket_mode and isinstance(control, dict) and kind == "reset_after_read":
                control["reset"] = True
                start_response("200 OK", [("Content-Length", "0")])
                return []
            return send(start_response, Reply(500, b"", "text/plain"))
        if fault is not None and kind == "read_timeout":
            self._stopping.wait(float(fault.param("seconds")))
        if fault is not None and kind == "slow_drip":
            headers = [*final.headers, ("Content-Length", str(len(final.body)))]
            start_response(status_line(final.status), headers)
            interval = float(fault.param("interval"))
            return drip(final.body, interval, int(fault.param("chunk")), self._stopping)
        return send(start_response, final)

    def _shape(
        self, fault: Fault | None, reply: Reply | None, endpoint: str, raw: bytes, *, xml: bool
    ) -> Reply | None:
        if fault is None:
            return None
        kind = fault.kind
        shaped = shaped_reply(
            fault, reply.body if reply is not None else None, fallback=b'{"response_code":"00"}'
        )
        if shaped is not None:
            status, headers, body = shaped
            content_type = headers[0][1]
            return Reply(status, body, content_type, headers=headers[1:])
        if kind == "business_error":
            code = str(fault.param("response_code"))
            desc = fault.param("response_desc") or codes.response_desc(code, self._language)
            wrapper = bool(fault.param("wrapper"))
            return self._business_error(endpoint, raw, code, desc, wrapper, xml=xml)
        return None

    def _business_error(
        self, endpoint: str, raw: bytes, code: str, desc: str, wrapper: bool, *, xml: bool
    ) -> Reply:
        if wrapper:
            return json_reply(
                200, {"response_error": {"response_code": code, "response_desc": desc}}
            )
        try:
            body = parse_xml(raw) if xml else parse_body(raw)
        except MalformedRequest:
            body = {}
        data: dict[str, Any] = {"response": codes.RESPONSE_TEXT[self._language].get(endpoint, "")}
        for key in ("trx_id", "merchant_id", "merchant", "bill_no"):
            value = body.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                data[key] = str(value)
        data["response_code"] = code
        data["response_desc"] = desc
        return json_reply(200, data, code=code, detail="business_error fault")

    def _record(
        self,
        endpoint: str,
        method: str,
        path: str,
        environ: WSGIEnvironment,
        fault: Fault | None,
        reply: Reply,
        *,
        processed: bool,
        real: Reply | None = None,
        xml: bool = False,
    ) -> None:
        source = real or reply
        self._log.record(
            endpoint,
            method,
            path,
            fault=fault,
            connection=environ.get(CONNECTION_KEY),
            http_status=reply.status,
            processed=processed,
            response_code=source.code,
            merchant_id=source.merchant_id,
            bill_no=source.bill_no,
            detail=source.detail,
            leniencies=source.leniencies,
            format="xml" if xml else ("form" if endpoint == "ovo_direct" else "json"),
        )

    # --- dispatch and error replies -----------------------------------------------------------

    @property
    def _language(self) -> str:
        return self._settings.language

    def _dispatch(
        self, endpoint: str, method: str, environ: WSGIEnvironment, raw: bytes, *, xml: bool
    ) -> Reply:
        if endpoint == "redirect":
            if method not in ("GET", "HEAD"):
                return json_reply(405, {"error": "use GET"}, headers=[("Allow", "GET")])
            return self._page.page(environ)
        if method != "POST":
            return json_reply(405, {"error": "use POST"}, headers=[("Allow", "POST")])
        if endpoint == "complete":
            return self._page.complete(environ, raw)
        if endpoint == "ovo_direct":
            if self._ovo is None:  # pragma: no cover - the app always wires it
                return json_reply(404, {"error": "no OVO push handler"})
            return self._ovo.handle(raw)
        try:
            body = parse_xml(raw) if xml else parse_body(raw)
        except MalformedRequest as exc:
            return self._malformed(endpoint, str(exc))
        try:
            return self._handlers[endpoint](body, environ)
        except Rejected as exc:
            return self._rejection(endpoint, body, exc)

    def _malformed(self, endpoint: str, detail: str) -> Reply:
        code = codes.FORMAT_ERROR
        desc = codes.response_desc(code, self._language)
        mode = self._settings.malformed_request
        if mode == "http_400":
            return Reply(400, b"Bad Request", "text/plain", detail=detail)
        if mode == "response_error":
            payload: dict[str, Any] = {
                "response_error": {"response_code": code, "response_desc": desc}
            }
            return json_reply(200, payload, code=code, detail=detail)
        data = {
            "response": codes.RESPONSE_TEXT[self._language][endpoint],
            "response_code": code,
            "response_desc": desc,
        }
        return json_reply(200, data, code=code, detail=detail)

    def _rejection(self, endpoint: str, body: Mapping[str, Any], exc: Rejected) -> Reply:
        desc = codes.response_desc(exc.code, self._language)
        bill_no = text_or_none(body.get("bill_no"))
        merchant_id = text_or_none(body.get("merchant_id"))
        context = {"code": exc.code, "detail": exc.detail}
        if exc.wrapper:
            payload = {"response_error": {"response_code": exc.code, "response_desc": desc}}
            return json_reply(200, payload, bill_no=bill_no, merchant_id=merchant_id, **context)
        data: dict[str, Any] = {"response": codes.RESPONSE_TEXT[self._language][endpoint]}
        if endpoint in ("inquiry", "cancel"):
            data["trx_id"] = text_or_none(body.get("trx_id")) or ""
        data["merchant_id"] = merchant_id or ""
        merchant = self._merchants.get(merchant_id) if merchant_id else None
        data["merchant"] = merchant.merchant_name if merchant else ""
        if endpoint != "channel_inquiry":
            data["bill_no"] = bill_no or ""
        data["response_code"] = exc.code
        data["response_desc"] = desc
        return json_reply(200, data, bill_no=bill_no, merchant_id=merchant_id, **context)

    def _ok(self) -> dict[str, str]:
        return {
            "response_code": codes.OK,
            "response_desc": codes.response_desc("00", self._language),
        }

    def _verify(self, body: dict[str, Any], *, signed_with_bill_no: bool) -> tuple[Merchant, str]:
        return lookup_and_verify(
            body,
            self._merchants.get,
            signed_with_bill_no=signed_with_bill_no,
            bad_signature_code=self._settings.bad_signature_code,
        )

    # --- the four endpoints -------------------------------------------------------------------

    def _channel_inquiry(self, body: dict[str, Any], environ: WSGIEnvironment) -> Reply:
        merchant, _ = self._verify(body, signed_with_bill_no=False)
        data = {
            "response": codes.RESPONSE_TEXT[self._language]["channel_inquiry"],
            "merchant_id": merchant.merchant_id,
            "merchant": merchant.merchant_name,
            "payment_channel": [
                {"pg_code": c, "pg_name": channel_name(c)} for c in merchant.channels
            ],
            **self._ok(),
        }
        return json_reply(200, data, code=codes.OK, merchant_id=merchant.merchant_id)

    def _create(self, body: dict[str, Any], environ: WSGIEnvironment) -> Reply:
        raw_mid = text_or_none(body.get("merchant_id"))
        raw_bill = text_or_none(body.get("bill_no"))
        if raw_mid is not None and raw_bill is not None:
            self._store.count_create(raw_mid, raw_bill)
        merchant, bill_no = self._verify(body, signed_with_bill_no=True)
        settings = self._settings
        request = validate_create(
            body, merchant, bill_no, self._store.clock.parse, strict=settings.strict
        )
        with self._store.lock:
            self._store.expire_due()
            existing = self._store.latest(merchant.merchant_id, bill_no)
            if existing is not None and settings.duplicate_bill_no == "return_existing":
                bill = existing
            elif existing is not None and settings.duplicate_bill_no == "reject":
                raise Rejected(settings.duplicate_bill_no_code, "duplicate bill_no")
            else:
                base = base_url(environ, settings.public_url)
                page_url = f"{base}{PAGE_PREFIX}{settings.stage}/{request.signature}"
                bill = self._store.new_bill(request, page_url)
                spec = bill.spec
                if spec is not None and spec.family == "qris":
                    bill.qr_content = qr_payload(bill, spec.acquirer)
        items: Any = bill.items[0] if bill.item_was_object else bill.items
        extras = post_data_extras(bill, base_url(environ, settings.public_url))
        data = {
            "response": codes.RESPONSE_TEXT[self._language]["create"],
            "trx_id": bill.trx_id,
            "merchant_id": bill.merchant_id,
            "merchant": bill.merchant_name,
            "bill_no": bill.bill_no,
            "bill_items": items,
            **self._ok(),
            **extras,
            "redirect_url": bill.redirect_url,
        }
        return json_reply(
            200,
            data,
            code=codes.OK,
            bill_no=bill_no,
            merchant_id=merchant.merchant_id,
            leniencies=request.leniencies,
        )

    def _inquiry(self, body: dict[str, Any], environ: WSGIEnvironment) -> Reply:
        merchant, bill_no = self._verify(body, signed_with_bill_no=True)
        ref = validate_reference(
            body, merchant, bill_no, cancel=False, strict=self._settings.strict
        )
        trx_id = ref.trx_id
        with self._store.lock:
            self._store.expire_due()
            bill = self._store.matching(merchant.merchant_id, trx_id, bill_no)
            status = bill.status if bill else codes.NOT_FOUND
            paid = bill is not None and status in (codes.PAID, codes.REVERSED)
            data = {
                "response": codes.RESPONSE_TEXT[self._language]["inquiry"],
                "trx_id": trx_id,
                "merchant_id": merchant.merchant_id,
                "merchant": bill.merchant_name if bill else merchant.merchant_name,
                "bill_no": bill_no,
                "payment_reff": bill.payment_reff if bill and paid else "",
                "payment_date": self._fmt(bill.payment_date) if bill and paid else "",
                "payment_status_code": status,
                "payment_status_desc": codes.status_desc(status, self._language),
            }
        if bill is None:
            code = codes.INVALID_ORDER
        elif status == codes.EXPIRED:
            code = codes.ORDER_EXPIRED
        else:
            code = codes.OK
        data["response_code"] = code
        data["response_desc"] = codes.response_desc(code, self._language)
        return json_reply(
            200,
            data,
            code=code,
            bill_no=bill_no,
            merchant_id=merchant.merchant_id,
            leniencies=ref.leniencies,
        )

    def _cancel(self, body: dict[str, Any], environ: WSGIEnvironment) -> Reply:
        merchant, bill_no = self._verify(body, signed_with_bill_no=True)
        ref = validate_reference(body, merchant, bill_no, cancel=True, strict=self._settings.strict)
        trx_id, reason = ref.trx_id, ref.reason
        with self._store.lock:
            self._store.expire_due()
            bill = self._store.matching(merchant.merchant_id, trx_id, bill_no)
            if bill is None:
                status, code = codes.NOT_FOUND, codes.INVALID_ORDER
            elif bill.open:
                self._store.cancel(bill, reason, "cancel API")
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
                "response": codes.RESPONSE_TEXT[self._language]["cancel"],
                "trx_id": trx_id,
                "merchant_id": merchant.merchant_id,
                "merchant": bill.merchant_name if bill else merchant.merchant_name,
                "bill_no": bill_no,
                "trx_status_code": trx_status,
                "trx_status_desc": trx_desc,
                "payment_status_code": status,
                "payment_status_desc": codes.status_desc(status, self._language),
                "payment_cancel_date": (
                    self._fmt(bill.cancel_date) if bill is not None and cancelled_now else ""
                ),
                "payment_cancel": reason,
                "response_code": code,
                "response_desc": codes.response_desc(code, self._language),
            }
        return json_reply(
            200,
            data,
            code=code,
            bill_no=bill_no,
            merchant_id=merchant.merchant_id,
            leniencies=ref.leniencies,
        )

    def _fmt(self, moment: datetime | None) -> str:
        return self._store.clock.format(moment) if moment is not None else ""


def _as_xml(reply: Reply) -> Reply:
    """The XML twin of a JSON answer (``reply.data``); other replies unchanged."""
    if reply.data is None or not isinstance(reply.data, dict):
        return reply
    extra = [h for h in reply.headers if h[0].lower() != "content-type"]
    return Reply(
        reply.status,
        render_xml(reply.data),
        XML_CONTENT_TYPE,
        code=reply.code,
        detail=reply.detail,
        bill_no=reply.bill_no,
        merchant_id=reply.merchant_id,
        headers=extra,
        data=reply.data,
        leniencies=reply.leniencies,
    )
