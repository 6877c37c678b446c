"""Simulated payers for every family (channels reference §14.2–§14.5): the emulator's stand-in
for banks, store cashiers, QRIS apps and the OVO app, shared by the control API and the pages.

Outcomes (emulator design; refusals raise :class:`PaymentRefused`, HTTP 409 with a
``reason``): the bill must exist and belong to the family (else :class:`UnknownBill`, 404);
an expired (``7``), paid (``2``/``4``), cancelled (``8``) or failed (``3``) bill is refused and
does not change; an amount other than the bill's is refused (``amount_mismatch``) unless
``accept_amount_mismatch`` (ASSUMPTION: closed-amount VAs and payment codes, §3.4). A success
sets status ``2``, ``payment_date`` (emulator now), ``payment_reff`` per family, the payer, and
sends the notification.

OVO (§14.5, ASSUMPTIONS throughout): a push (from the OVO page or ``POST /pws/ovo_direct``)
moves the bill to ``1`` and waits ``ovo_push_window`` seconds of emulator time for a decision:
``approve`` → ``2``; ``decline`` → ``3``; ``timeout`` → ``3`` now (the sweeper does the same
when the window passes); ``not_registered`` → with a push waiting, ``3``; without one, the next
push is refused with ``18``. Phone suffixes script the payer: ``…0000`` declines at once,
``…1111`` approves at once, ``…8888`` is not registered (push refused with ``18``), ``…9999``
never answers (times out).
"""

from __future__ import annotations

import time
from typing import Any

from gateway_faspay_dana.emulator import _codes as codes
from gateway_faspay_dana.emulator._errors import EmulatorError, UnknownBill
from gateway_faspay_dana.emulator._model import Bill
from gateway_faspay_dana.emulator._settings import Settings
from gateway_faspay_dana.emulator._store import BillStore

#: OVO push results: Faspay ``response_code`` per outcome (ASSUMPTION, §4.2).
NOT_REGISTERED = "18"
DECLINED = codes.ORDER_CANCELLED

_REFUSALS = {
    codes.EXPIRED: "expired",
    codes.PAID: "already_paid",
    codes.REVERSED: "already_paid",
    codes.CANCELLED: "cancelled",
    codes.FAILED: "failed",
}

#: Faspay ``response_code`` for a refusal reason (used by ``/pws/ovo_direct``).
REFUSAL_CODES = {
    "expired": codes.ORDER_EXPIRED,
    "already_paid": codes.ALREADY_PAID,
    "cancelled": codes.ORDER_CANCELLED,
    "failed": codes.INVALID_ORDER,
    "not_registered": NOT_REGISTERED,
    "amount_mismatch": codes.INVALID_AMOUNT,
}


class PaymentRefused(EmulatorError):
    """The simulated payer's attempt was refused; the bill did not change."""

    http_status = 409

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class Payers:
    """The simulated payers, acting on the bill store under its lock."""

    def __init__(self, *, store: BillStore, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    # --- lookups ------------------------------------------------------------------------------

    def _bill(self, trx_id: str, families: tuple[str, ...], what: str) -> Bill:
        bill = self._store.by_trx_id(str(trx_id))
        if bill is None or bill.family not in families:
            raise UnknownBill(f"no {what} {trx_id}")
        return bill

    def _payable(self, bill: Bill, amount: Any = None) -> int | None:
        reason = _REFUSALS.get(bill.status)
        if reason is not None:
            raise PaymentRefused(f"bill {bill.bill_no} is {reason.replace('_', ' ')}", reason)
        if amount is None or amount == "":
            return None
        text = str(amount)
        if not text.isdigit():
            raise EmulatorError("amount must be digits, in hundredths like bill_total")
        paid = int(text)
        if paid != bill.bill_total and not self._settings.accept_amount_mismatch:
            raise PaymentRefused(
                f"amount {paid} differs from the bill's {bill.bill_total}", "amount_mismatch"
            )
        return paid

    def _pay(self, bill: Bill, by: str, *, amount: int | None, payer: str, reff: Any) -> None:
        self._store.pay(
            bill,
            by,
            str(reff) if reff else None,
            amount=None if amount == bill.bill_total else amount,
            payer=payer,
        )

    # --- the payers ---------------------------------------------------------------------------

    def transfer(
        self, va_number: str, *, amount: Any = None, bank_ref: Any = None, bank: str = ""
    ) -> dict[str, Any]:
        """A bank transfer to ``va_number`` (§14.2)."""
        with self._store.lock:
            self._store.expire_due()
            bill = self._bill(va_number, ("virtual_account",), "open virtual account")
            paid = self._payable(bill, amount)
            issuer = bill.spec.issuer if bill.spec else ""
            payer = bank or issuer
            self._pay(bill, f"bank transfer ({payer})", amount=paid, payer=payer, reff=bank_ref)
            return self._store.record(bill)

    def retail_pay(
        self, code: str, *, amount: Any = None, store: str = "", receipt: Any = None
    ) -> dict[str, Any]:
        """Cash paid at a store counter for payment code ``code`` (§14.3)."""
        with self._store.lock:
            self._store.expire_due()
            bill = self._bill(code, ("retail",), "payment code")
            paid = self._payable(bill, amount)
            where = store or (bill.spec.issuer if bill.spec else "store")
            self._pay(
                bill, f"paid at the counter ({where})", amount=paid, payer=where, reff=receipt
            )
            return self._store.record(bill)

    def qr_scan(self, trx_id: str, *, issuer: str = "", outcome: str = "success") -> dict[str, Any]:
        """A QRIS app scanned the QR of ``trx_id`` (§14.4): ``success`` → 2, ``fail`` → 3,
        ``opened`` (the payer opened but did not pay) → 1."""
        if outcome not in ("success", "fail", "opened"):
            raise EmulatorError("outcome must be success, fail or opened")
        with self._store.lock:
            self._store.expire_due()
            bill = self._bill(trx_id, ("qris",), "QR")
            self._payable(bill)
            payer = issuer or "QRIS app"
            if outcome == "success":
                self._pay(bill, f"QR scanned and paid ({payer})", amount=None, payer=payer, reff="")
            elif outcome == "fail":
                bill.payer = payer
                self._store.transition(bill, codes.FAILED, f"QR payment failed ({payer})")
            elif bill.status == codes.UNPROCESSED:
                self._store.transition(bill, codes.IN_PROCESS, f"QR opened in {payer}")
            return self._store.record(bill)

    def simulate(self, params: dict[str, Any]) -> dict[str, Any]:
        """``POST /_emulator/pay``: Faspay's web simulator (§11, §14.1) for any family."""
        outcome = str(params.get("outcome", "success"))
        if outcome not in ("success", "fail"):
            raise EmulatorError("outcome must be success or fail")
        with self._store.lock:
            self._store.expire_due()
            bill = self._select(params)
            if outcome == "fail":
                self._payable(bill)
                self._store.transition(bill, codes.FAILED, "simulator: payment failed")
                return self._store.record(bill)
        family = bill.family
        amount = params.get("amount")
        if family == "virtual_account":
            return self.transfer(bill.trx_id, amount=amount, bank_ref=params.get("payment_reff"))
        if family == "retail":
            return self.retail_pay(bill.trx_id, amount=amount, receipt=params.get("payment_reff"))
        with self._store.lock:
            paid = self._payable(bill, amount)
            self._pay(bill, "simulator", amount=paid, payer="", reff=params.get("payment_reff"))
            return self._store.record(bill)

    def _select(self, params: dict[str, Any]) -> Bill:
        for key in ("trx_id", "va_number", "payment_code"):
            value = params.get(key)
            if value:
                bill = self._store.by_trx_id(str(value))
                if bill is None:
                    raise UnknownBill(f"no bill with {key} {value}")
                return bill
        bill_no = params.get("bill_no")
        if not bill_no:
            raise EmulatorError("give bill_no, trx_id, va_number or payment_code")
        merchant_id = params.get("merchant_id")
        return self._store.find(str(bill_no), str(merchant_id) if merchant_id else None, None)

    # --- OVO ----------------------------------------------------------------------------------

    def ovo_bill(self, trx_id: str) -> Bill:
        """The OVO bill ``trx_id`` (caller holds the lock)."""
        return self._bill(trx_id, ("ovo",), "OVO transaction")

    def ovo_push(self, bill: Bill, ovo_number: str) -> str:
        """Send the push for ``bill`` to ``ovo_number``; the Faspay ``response_code`` of the
        push call (caller holds the lock; raises :class:`PaymentRefused`)."""
        self._store.expire_due()
        self._payable(bill)
        if bill.ovo_refuse_next or ovo_number.endswith("8888"):
            bill.ovo_refuse_next = False
            raise PaymentRefused(f"{ovo_number[-4:]} is not registered with OVO", "not_registered")
        bill.ovo_number = ovo_number
        if bill.status == codes.UNPROCESSED:
            self._store.transition(bill, codes.IN_PROCESS, "OVO push sent")
        self._store.await_push(bill, self._settings.ovo_push_window)
        if ovo_number.endswith("0000"):
            self._decide(bill, "decline")
        elif ovo_number.endswith("1111"):
            self._decide(bill, "approve")
        return codes.OK

    def ovo_respond(self, trx_id: str, action: str) -> dict[str, Any]:
        """The payer's decision in the OVO app (control API)."""
        if action not in ("approve", "decline", "timeout", "not_registered"):
            raise EmulatorError("action must be approve, decline, timeout or not_registered")
        with self._store.lock:
            self._store.expire_due()
            bill = self.ovo_bill(trx_id)
            self._payable(bill)
            if bill.ovo_push_deadline is None:
                if action != "not_registered":
                    raise PaymentRefused("no OVO push is waiting for this bill", "no_push")
                bill.ovo_refuse_next = True
            else:
                self._decide(bill, action)
            return self._store.record(bill)

    def _decide(self, bill: Bill, action: str) -> None:
        bill.ovo_push_deadline = None
        if action == "approve":
            self._pay(bill, "approved in the OVO app", amount=None, payer="OVO", reff="")
        elif action == "decline":
            self._store.transition(bill, codes.FAILED, "declined in the OVO app")
        elif action == "timeout":
            self._store.transition(bill, codes.FAILED, "OVO push window elapsed (timeout)")
        else:
            self._store.transition(bill, codes.FAILED, "OVO number not registered")

    def wait_for_decision(self, bill: Bill, stop: Any) -> None:
        """Blocking push mode: hold until the push is decided, the bill closes or
        ``ovo_push_window`` real seconds pass (``stop`` is the app's stopping event)."""
        deadline = time.monotonic() + self._settings.ovo_push_window
        while time.monotonic() < deadline:
            with self._store.lock:
                self._store.expire_due()
                if bill.ovo_push_deadline is None or not bill.open:
                    return
            if stop.wait(0.02):
                return
