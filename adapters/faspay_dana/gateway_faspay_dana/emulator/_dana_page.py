"""The customer page behind every ``redirect_url``: ``GET /pws/100003/<stage>/<signature>`` and
its ``.../complete`` forms.

DANA and the redirect wallets (713, 302, 716) get the wallet page (``_pages``): opening it moves
a bill ``0`` → ``1``; the forms pay, fail or abandon it and redirect to the merchant's
``return_url`` with the D7 query (see the assumptions in ``_app``). VA, retail and QRIS bills
get an instruction page and OVO its number page (``_instrument_pages``); opening those changes
nothing (ASSUMPTION: looking at a VA number is not "in process"), their sandbox forms play the
payer through :class:`Payers`. Only DANA, the redirect wallets and OVO return to the Return
URL (§10); VA, retail and QRIS end on a result page.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qs
from wsgiref.types import WSGIEnvironment

from gateway_faspay_dana._signature import matches
from gateway_faspay_dana.emulator import _codes as codes
from gateway_faspay_dana.emulator._errors import EmulatorError, UnknownBill
from gateway_faspay_dana.emulator._families import post_data_extras
from gateway_faspay_dana.emulator._instrument_pages import instrument_page, ovo_page, result_page
from gateway_faspay_dana.emulator._messages import return_query, return_url
from gateway_faspay_dana.emulator._model import Bill, Merchant
from gateway_faspay_dana.emulator._pages import message_page, payment_page
from gateway_faspay_dana.emulator._payers import Payers, PaymentRefused
from gateway_faspay_dana.emulator._reply import PAGE_PREFIX, Reply, base_url
from gateway_faspay_dana.emulator._settings import Settings
from gateway_faspay_dana.emulator._store import BillStore, MerchantBook

_SIMULATED = {"sim_transfer", "sim_retail", "sim_scan"}
_OVO = {"ovo_push", "ovo_approve", "ovo_decline", "ovo_timeout", "ovo_check"}

_HTML = "text/html; charset=utf-8"


class DanaPage:
    """Serves the page and its forms against the bill store."""

    def __init__(
        self,
        *,
        store: BillStore,
        merchants: MerchantBook,
        settings: Settings,
        payers: Payers | None = None,
    ) -> None:
        self._store = store
        self._merchants = merchants
        self._settings = settings
        self._payers = payers or Payers(store=store, settings=settings)

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
        language = self._settings.language
        with self._store.lock:
            family = bill.family
            if family in ("virtual_account", "retail", "qris"):
                base = base_url(environ, self._settings.public_url)
                web_url = str(post_data_extras(bill, base).get("web_url", ""))
                page = instrument_page(bill, action_url, web_url, language=language)
            elif family == "ovo":
                page = ovo_page(bill, action_url, language=language)
            else:
                title = bill.spec.name if bill.spec else "DANA"
                if bill.status == codes.UNPROCESSED:
                    self._store.transition(
                        bill, codes.IN_PROCESS, f"customer opened the {title} page"
                    )
                page = payment_page(bill, action_url, language=language, title=title)
        return Reply(200, page, _HTML, bill_no=bill.bill_no, merchant_id=bill.merchant_id)

    def complete(self, environ: WSGIEnvironment, raw: bytes) -> Reply:
        """A submitted form (``action`` pay, fail or abandon): redirect to the return URL."""
        form = parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
        params = {k: v[0] for k, v in form.items()}
        context = self._context(environ, params)
        if isinstance(context, Reply):
            return context
        merchant, bill, action_url = context
        action = params.get("action", "")
        if action in _SIMULATED:
            return self._simulated(bill, action)
        if action in _OVO:
            if bill.family != "ovo":
                return _html(400, "Bad request", "Not an OVO bill.")
            waiting = self._ovo(bill, action, params, action_url)
            if waiting is not None:
                return waiting
            return self._back(merchant, bill)
        if action not in ("pay", "fail", "abandon") or bill.family not in (
            "dana",
            "ewallet_redirect",
        ):
            return _html(400, "Bad request", "Unknown action.")
        with self._store.lock:
            if action == "pay" and bill.open:
                bill.bank_user_name = params.get("bank_user_name") or bill.cust_name
                self._store.pay(bill, "customer paid on the DANA page")
            elif action == "fail" and bill.open:
                bill.bank_user_name = params.get("bank_user_name") or bill.cust_name
                self._store.transition(bill, codes.FAILED, "customer failed on the DANA page")
        return self._back(merchant, bill)

    def _back(self, merchant: Merchant, bill: Bill) -> Reply:
        """302 to the Return URL with the bill's current status (or a status page)."""
        with self._store.lock:
            query = self.return_query(bill)
        if not merchant.return_url:
            return Reply(
                200,
                message_page(
                    bill.spec.name if bill.spec else "DANA",
                    codes.status_desc(bill.status, self._settings.language),
                ),
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

    def _simulated(self, bill: Bill, action: str) -> Reply:
        """A sandbox payer form of a VA, retail or QRIS page: a result page, no Return URL."""
        try:
            if action == "sim_transfer":
                self._payers.transfer(bill.trx_id)
            elif action == "sim_retail":
                self._payers.retail_pay(bill.trx_id)
            else:
                self._payers.qr_scan(bill.trx_id)
        except PaymentRefused as exc:
            return _html(409, "Payment refused", str(exc))
        except UnknownBill:
            return _html(400, "Bad request", "This form does not belong to this bill.")
        page = result_page(bill, self._settings.language)
        return Reply(200, page, _HTML, bill_no=bill.bill_no, merchant_id=bill.merchant_id)

    def _ovo(
        self, bill: Bill, action: str, params: Mapping[str, str], action_url: str
    ) -> Reply | None:
        """The OVO page's forms; None when the bill is decided (go to the Return URL)."""
        language = self._settings.language
        try:
            if action == "ovo_push":
                number = params.get("ovo_number", "").strip()
                if not number.isdigit():
                    return _html(400, "Bad request", "The OVO number must be digits.")
                with self._store.lock:
                    self._payers.ovo_push(bill, number)
            elif action != "ovo_check":
                self._payers.ovo_respond(bill.trx_id, action.removeprefix("ovo_"))
        except PaymentRefused as exc:
            if exc.reason == "not_registered":
                return _html(409, "OVO number not registered", str(exc))
        except EmulatorError as exc:
            return _html(400, "Bad request", str(exc))
        with self._store.lock:
            if bill.open:
                page = ovo_page(bill, action_url, language=language)
                return Reply(200, page, _HTML, bill_no=bill.bill_no, merchant_id=bill.merchant_id)
        return None

    def return_query(self, bill: Bill, status: str | None = None) -> dict[str, str]:
        """The return query Faspay would send for ``bill`` (its status, or ``status``)."""
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
            payment_reff=bill.payment_reff if bill.payment_date is not None else "",
            payment_date=(
                self._store.clock.format(bill.payment_date) if bill.payment_date is not None else ""
            ),
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
