"""The DANA customer page: ``GET /pws/100003/<stage>/<signature>`` and its ``.../complete`` forms.

Opening the page moves a bill ``0`` → ``1``; the forms pay, fail or abandon it and redirect to
the merchant's ``return_url`` with the D7 query (see the assumptions in ``_app``). The HTML is
``_pages``'.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qs
from wsgiref.types import WSGIEnvironment

from gateway_faspay_dana._signature import matches
from gateway_faspay_dana.emulator import _codes as codes
from gateway_faspay_dana.emulator._errors import UnknownBill
from gateway_faspay_dana.emulator._messages import return_query, return_url
from gateway_faspay_dana.emulator._model import Bill, Merchant
from gateway_faspay_dana.emulator._pages import message_page, payment_page
from gateway_faspay_dana.emulator._reply import PAGE_PREFIX, Reply, base_url
from gateway_faspay_dana.emulator._settings import Settings
from gateway_faspay_dana.emulator._store import BillStore, MerchantBook

_HTML = "text/html; charset=utf-8"


class DanaPage:
    """Serves the page and its forms against the bill store."""

    def __init__(self, *, store: BillStore, merchants: MerchantBook, settings: Settings) -> None:
        self._store = store
        self._merchants = merchants
        self._settings = settings

    def page(self, environ: WSGIEnvironment) -> Reply:
        """The payment page of the bill named by the query (opening it: ``0`` → ``1``)."""
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        params = {k: v[0] for k, v in query.items()}
        context = self._context(environ, params)
        if isinstance(context, Reply):
            context.bill_no = params.get("bill_no")
            context.merchant_id = params.get("merchant_id")
            return context
        _, bill, action_url = context
        with self._store.lock:
            if bill.status == codes.UNPROCESSED:
                self._store.transition(bill, codes.IN_PROCESS, "customer opened the DANA page")
            page = payment_page(bill, action_url, language=self._settings.language)
        return Reply(200, page, _HTML, bill_no=bill.bill_no, merchant_id=bill.merchant_id)

    def complete(self, environ: WSGIEnvironment, raw: bytes) -> Reply:
        """A submitted form (``action`` pay, fail or abandon): redirect to the return URL."""
        form = parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
        params = {k: v[0] for k, v in form.items()}
        context = self._context(environ, params)
        if isinstance(context, Reply):
            return context
        merchant, bill, _ = context
        action = params.get("action", "")
        if action not in ("pay", "fail", "abandon"):
            return _html(400, "Bad request", "Unknown action.")
        with self._store.lock:
            if action == "pay" and bill.open:
                bill.bank_user_name = params.get("bank_user_name") or bill.cust_name
                self._store.pay(bill, "customer paid on the DANA page")
            elif action == "fail" and bill.open:
                bill.bank_user_name = params.get("bank_user_name") or bill.cust_name
                self._store.transition(bill, codes.FAILED, "customer failed on the DANA page")
            query = self.return_query(bill)
        if not merchant.return_url:
            return Reply(
                200,
                message_page("DANA", codes.status_desc(bill.status, self._settings.language)),
                _HTML,
                bill_no=bill.bill_no,
                merchant_id=bill.merchant_id,
            )
        location = return_url(merchant.return_url, query)
        return Reply(
            302,
            message_page("Redirecting", location),
            _HTML,
            headers=[("Location", location)],
            bill_no=bill.bill_no,
            merchant_id=bill.merchant_id,
        )

    def return_query(self, bill: Bill, status: str | None = None) -> dict[str, str]:
        """The D7 return query Faspay would send for ``bill`` (its status, or ``status``)."""
        merchant = self._merchants.get(bill.merchant_id)
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

    def _context(
        self, environ: WSGIEnvironment, params: Mapping[str, str]
    ) -> tuple[Merchant, Bill, str] | Reply:
        path = environ.get("PATH_INFO", "")
        parts = path[len(PAGE_PREFIX) :].split("/")
        stage, signature = parts[0], parts[1]
        if stage not in codes.REDIRECT_STAGES:
            return _html(404, "Not found", "Unknown redirect stage.")
        missing = [k for k in ("trx_id", "merchant_id", "bill_no") if not params.get(k)]
        if missing:
            return _html(400, "Bad request", "Missing " + ", ".join(missing) + ".")
        merchant = self._merchants.get(params["merchant_id"])
        if merchant is None:
            return _html(404, "Invalid merchant", "Unknown merchant.")
        if not matches(signature, merchant.user_id, merchant.password, params["bill_no"]):
            return _html(403, "Invalid signature", "The signature does not match.")
        with self._store.lock:
            self._store.expire_due()
            bill = self._store.matching(merchant.merchant_id, params["trx_id"], params["bill_no"])
        if bill is None:
            return _html(404, "Transaction not found", "No bill matches this link.")
        base = base_url(environ, self._settings.public_url)
        return merchant, bill, f"{base}{PAGE_PREFIX}{stage}/{signature}/complete"


def _html(status: int, title: str, message: str) -> Reply:
    return Reply(status, message_page(title, message), _HTML, detail=title)
