"""The emulator's ledger: merchants, bills, their status transitions and expiry by the clock.

Every method that reads or changes bills runs under the app's one re-entrant lock
(:attr:`BillStore.lock`). Methods documented "caller holds the lock" are the building blocks
that handlers combine into one atomic step (expire what is due, look up, change); the others
take the lock themselves.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from gateway_faspay_dana.emulator import _codes as codes
from gateway_faspay_dana.emulator._channels import channel as channel_spec
from gateway_faspay_dana.emulator._clock import EmulatorClock
from gateway_faspay_dana.emulator._errors import EmulatorError, TransitionNotAllowed, UnknownBill
from gateway_faspay_dana.emulator._model import Bill, Merchant
from gateway_faspay_dana.emulator._settings import Settings
from gateway_faspay_dana.emulator._validation import CreateRequest

#: action -> (target status, statuses it may leave)
ACTIONS: dict[str, tuple[str, frozenset[str]]] = {
    "open": (codes.IN_PROCESS, frozenset({codes.UNPROCESSED})),
    "pay": (codes.PAID, codes.OPEN_STATUSES),
    "fail": (codes.FAILED, codes.OPEN_STATUSES),
    "expire": (codes.EXPIRED, codes.OPEN_STATUSES),
    "cancel": (codes.CANCELLED, codes.OPEN_STATUSES),
    "reverse": (codes.REVERSED, frozenset({codes.PAID})),
}

#: Called on every transition to a status in ``notify_statuses``: (bill, status, kind).
Announce = Callable[[Bill, str, str], object]


class MerchantBook:
    """The merchants the emulator plays Faspay for, by merchant_id."""

    def __init__(self, merchants: Iterable[Merchant], lock: threading.RLock) -> None:
        self._lock = lock
        self._merchants: dict[str, Merchant] = {m.merchant_id: m for m in merchants}

    def all(self) -> dict[str, Merchant]:
        """Every merchant by merchant_id (a copy)."""
        with self._lock:
            return dict(self._merchants)

    def get(self, merchant_id: str) -> Merchant | None:
        """The merchant with ``merchant_id``, if configured."""
        with self._lock:
            return self._merchants.get(str(merchant_id))

    def add(self, merchant: Merchant) -> Merchant:
        """Add (or replace) a merchant."""
        with self._lock:
            self._merchants[merchant.merchant_id] = merchant
        return merchant

    def configure(self, merchant_id: str, **changes: Any) -> Merchant:
        """Change a merchant's settings; :class:`EmulatorError` if unknown or invalid."""
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


class BillStore:
    """Bills by ``trx_id``, the ``bill_no`` index, create counts and the expiry queue."""

    def __init__(
        self,
        *,
        lock: threading.RLock,
        clock: EmulatorClock,
        settings: Settings,
        announce: Announce,
    ) -> None:
        self.lock = lock
        self.clock = clock
        self._settings = settings
        self._announce = announce
        self._seq = itertools.count(1)
        self._reff_seq = itertools.count(1)
        self._bills: dict[str, Bill] = {}
        self._by_bill_no: dict[tuple[str, str], list[str]] = {}
        self._create_counts: dict[tuple[str, str], int] = {}
        self._expiry: list[tuple[datetime, str]] = []
        self._pushes: dict[str, Bill] = {}
        self.clock.subscribe(self.tick)

    def close(self) -> None:
        """Stop following the clock."""
        self.clock.unsubscribe(self.tick)

    def reset(self) -> None:
        """Forget every bill (``trx_id`` sequence numbers keep increasing)."""
        with self.lock:
            self._bills.clear()
            self._by_bill_no.clear()
            self._create_counts.clear()
            self._expiry.clear()
            self._pushes.clear()

    # --- building blocks (caller holds the lock) ----------------------------------------------

    def latest(self, merchant_id: str, bill_no: str) -> Bill | None:
        """The newest bill of ``merchant_id`` with ``bill_no`` (caller holds the lock)."""
        ids = self._by_bill_no.get((merchant_id, bill_no))
        return self._bills[ids[-1]] if ids else None

    def matching(self, merchant_id: str, trx_id: str, bill_no: str) -> Bill | None:
        """The bill ``trx_id`` if it has that merchant and bill_no (caller holds the lock)."""
        bill = self._bills.get(trx_id)
        if bill is None or bill.bill_no != bill_no or bill.merchant_id != merchant_id:
            return None
        return bill

    def new_bill(self, request: CreateRequest, page_url: str) -> Bill:
        """Store a bill for a valid create request; ``page_url`` is its DANA page without the
        query (caller holds the lock)."""
        seq = next(self._seq)
        merchant = request.merchant
        spec = channel_spec(request.channel)
        if spec is not None:
            trx_id = spec.trx_id(merchant.merchant_id, seq)
        else:  # pragma: no cover - validation only lets modelled channels through
            trx_id = f"{merchant.merchant_id}{request.channel}{seq:08d}"
        query = urlencode(
            [
                ("trx_id", trx_id),
                ("merchant_id", merchant.merchant_id),
                ("bill_no", request.bill_no),
            ]
        )
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
            redirect_url=f"{page_url}?{query}",
            status_changed_at=now,
            leniencies=list(request.leniencies),
        )
        bill.history.append(
            {"at": self.clock.format(now), "from": "", "to": codes.UNPROCESSED, "by": "create"}
        )
        self._bills[trx_id] = bill
        self._by_bill_no.setdefault((merchant.merchant_id, request.bill_no), []).append(trx_id)
        heapq.heappush(self._expiry, (request.bill_expired, trx_id))
        return bill

    def transition(self, bill: Bill, status: str, by: str) -> None:
        """Move ``bill`` to ``status`` and notify if configured (caller holds the lock)."""
        now = self.clock.now()
        previous = bill.status
        bill.status = status
        bill.status_changed_at = now
        bill.history.append(
            {"at": self.clock.format(now), "from": previous, "to": status, "by": by}
        )
        if status in self._settings.notify_statuses:
            self._announce(bill, status, "original")

    def pay(
        self,
        bill: Bill,
        by: str,
        payment_reff: str | None = None,
        *,
        amount: int | None = None,
        payer: str = "",
    ) -> None:
        """Mark ``bill`` paid now, with a new ``payment_reff`` (caller holds the lock).

        ``payment_reff`` per family (§14.1): bank reference digits for VAs (11 digits, like
        the C19 sandbox CIMB sample), alphanumeric for wallets, QRIS and retail (ASSUMPTION).
        """
        now = self.clock.now()
        number = next(self._reff_seq)
        if bill.family == "virtual_account":
            generated = f"{now:%y%m%d}{number:05d}"
        elif bill.family == "retail":
            generated = f"RCPT{now:%y%m%d}{number:06d}"
        elif bill.family == "qris":
            generated = f"QR{now:%y%m%d}{number:08d}"
        else:
            generated = f"{now:%Y%m%d}{number:08d}"
        bill.payment_reff = payment_reff or generated
        bill.payment_date = now
        bill.payment_total = amount
        bill.payer = payer or bill.payer
        bill.ovo_push_deadline = None
        if not bill.bank_user_name:
            bill.bank_user_name = bill.cust_name
        self.transition(bill, codes.PAID, by)

    def cancel(self, bill: Bill, reason: str, by: str) -> None:
        """Cancel ``bill`` now for ``reason`` (caller holds the lock)."""
        bill.cancel_reason = reason
        self.transition(bill, codes.CANCELLED, by)
        bill.cancel_date = bill.status_changed_at

    def expire_due(self) -> list[str]:
        """Expire open bills whose ``bill_expired`` has passed; their bill_nos (caller holds
        the lock)."""
        expired: list[str] = []
        now = self.clock.now()
        while self._expiry and self._expiry[0][0] <= now:
            _, trx_id = heapq.heappop(self._expiry)
            bill = self._bills.get(trx_id)
            if bill is not None and bill.open:
                bill.ovo_push_deadline = None
                self.transition(bill, codes.EXPIRED, "clock (bill_expired reached)")
                expired.append(bill.bill_no)
        for bill in list(self._pushes.values()):
            deadline = bill.ovo_push_deadline
            if deadline is None or not bill.open:
                self._pushes.pop(bill.trx_id, None)
            elif deadline <= now:
                self._pushes.pop(bill.trx_id, None)
                bill.ovo_push_deadline = None
                self.transition(bill, codes.FAILED, "OVO push window elapsed (timeout)")
        return expired

    def await_push(self, bill: Bill, window: float) -> None:
        """An OVO push went out for ``bill``: it fails when ``window`` seconds of emulator
        time pass without a decision (caller holds the lock)."""
        bill.ovo_push_deadline = self.clock.now() + timedelta(seconds=window)
        self._pushes[bill.trx_id] = bill

    def by_trx_id(self, trx_id: str) -> Bill | None:
        """The bill with ``trx_id`` (caller holds the lock)."""
        return self._bills.get(str(trx_id))

    def find(self, bill_no: str, merchant_id: str | None, trx_id: str | None) -> Bill:
        """The bill ``trx_id``, or the latest with ``bill_no`` (caller holds the lock)."""
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
        bill = self.latest(*keys[0])
        assert bill is not None
        return bill

    # --- clock --------------------------------------------------------------------------------

    def tick(self) -> list[str]:
        """Expire every open bill whose ``bill_expired`` has passed; returns their bill_nos."""
        with self.lock:
            return self.expire_due()

    def advance_clock(self, seconds: float) -> list[str]:
        """Move the clock forward and expire due bills; their bill_nos."""
        with self.lock:
            self.clock.unsubscribe(self.tick)
            try:
                self.clock.advance(seconds)
            finally:
                self.clock.subscribe(self.tick)
            return self.expire_due()

    def set_clock(self, moment: datetime) -> list[str]:
        """Set the clock to ``moment`` and expire due bills; their bill_nos."""
        with self.lock:
            self.clock.unsubscribe(self.tick)
            try:
                self.clock.set(moment)
            finally:
                self.clock.subscribe(self.tick)
            return self.expire_due()

    # --- queries and operator actions ---------------------------------------------------------

    def count_create(self, merchant_id: str, bill_no: str) -> None:
        """Count a create request processed for ``bill_no`` (accepted or not)."""
        with self.lock:
            key = (merchant_id, bill_no)
            self._create_counts[key] = self._create_counts.get(key, 0) + 1

    def create_requests(self, bill_no: str, merchant_id: str | None = None) -> int:
        """How many create requests were processed for ``bill_no`` (across merchants if None)."""
        with self.lock:
            return sum(
                n
                for (mid, no), n in self._create_counts.items()
                if no == bill_no and (merchant_id is None or mid == str(merchant_id))
            )

    def record(self, bill: Bill) -> dict[str, Any]:
        """The record of ``bill`` as plain data."""
        fmt = self._fmt
        key = (bill.merchant_id, bill.bill_no)
        with self.lock:
            return {
                "merchant_id": bill.merchant_id,
                "merchant": bill.merchant_name,
                "bill_no": bill.bill_no,
                "bill_reff": bill.bill_reff,
                "trx_id": bill.trx_id,
                "trx_ids": list(self._by_bill_no.get(key, [])),
                "channel": bill.channel,
                "family": bill.family,
                "status": bill.status,
                "status_desc": codes.status_desc(bill.status, self._settings.language),
                "bill_total": bill.total_text,
                "bill_gross": None if bill.bill_gross is None else str(bill.bill_gross),
                "bill_tax": None if bill.bill_tax is None else str(bill.bill_tax),
                "bill_miscfee": None if bill.bill_miscfee is None else str(bill.bill_miscfee),
                "bill_date": fmt(bill.bill_date),
                "bill_expired": fmt(bill.bill_expired),
                "bill_desc": bill.bill_desc,
                "cust_no": bill.cust_no,
                "cust_name": bill.cust_name,
                "msisdn": bill.msisdn,
                "email": bill.email,
                "items": [dict(i) for i in bill.items],
                "payment_reff": bill.payment_reff,
                "payment_date": fmt(bill.payment_date),
                "payment_total": None if bill.payment_total is None else str(bill.payment_total),
                "payer": bill.payer,
                "qr_content": bill.qr_content,
                "ovo_push_deadline": fmt(bill.ovo_push_deadline),
                "leniencies": list(bill.leniencies),
                "cancel_reason": bill.cancel_reason,
                "cancel_date": fmt(bill.cancel_date),
                "bank_user_name": bill.bank_user_name,
                "created_at": fmt(bill.created_at),
                "redirect_url": bill.redirect_url,
                "create_requests": self._create_counts.get(key, 0),
                "history": [dict(h) for h in bill.history],
            }

    def bill(
        self, bill_no: str, *, merchant_id: str | None = None, trx_id: str | None = None
    ) -> dict[str, Any]:
        """The record of a bill (the latest one for ``bill_no`` unless ``trx_id`` is given)."""
        with self.lock:
            self.expire_due()
            return self.record(self.find(str(bill_no), merchant_id, trx_id))

    def bills(self, *, merchant_id: str | None = None) -> list[dict[str, Any]]:
        """Every bill, oldest first."""
        with self.lock:
            self.expire_due()
            return [
                self.record(b)
                for b in self._bills.values()
                if merchant_id is None or b.merchant_id == str(merchant_id)
            ]

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
        """Operator action on a bill (see :meth:`EmulatorApp.act`)."""
        if action not in ACTIONS:
            raise EmulatorError(f"unknown action {action!r}", http_status=404)
        target, sources = ACTIONS[action]
        with self.lock:
            self.expire_due()
            bill = self.find(str(bill_no), merchant_id, trx_id)
            if bill.status == target and action == "open":
                return self.record(bill)
            if bill.status not in sources and not (force and bill.status != target):
                raise TransitionNotAllowed(
                    f"cannot {action} bill {bill.bill_no} in status {bill.status}"
                )
            if bank_user_name:
                bill.bank_user_name = bank_user_name
            if target == codes.PAID:
                self.pay(bill, f"operator {action}", payment_reff)
            elif target == codes.CANCELLED:
                self.cancel(bill, reason, f"operator {action}")
            else:
                self.transition(bill, target, f"operator {action}")
            return self.record(bill)

    def _fmt(self, moment: datetime | None) -> str:
        return self.clock.format(moment) if moment is not None else ""
