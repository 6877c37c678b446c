"""The emulator's state: merchants, Snap sessions and payment attempts, their transitions,
expiry by the clock, and the refund ledger (protocol reference §2.10, §11.2–§11.6).

Every change runs under one re-entrant lock and announces the new state (one webhook per
transition, two per refund) through the ``announce`` callable the application gives.

ASSUMPTIONS: a re-create of an order_id whose attempts all ended ``deny`` is allowed
(``deny_reuses_order``); ``refund_key`` is unique per transaction: the same key and amount
after a success answers the stored response, another amount 406, and a failed attempt stores
nothing (§7.4 emulator default); a partial refund of a full-refund-only type (ShopeePay, OVO)
and a refund of a type without API refunds are 412; an amount that is not a positive integer,
above what remains, or above the merchant's ``refund_balance`` is 414.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from gateway_core.emulation.clock import EmulatorClock
from gateway_midtrans_snap.emulator import _model as m
from gateway_midtrans_snap.emulator._settings import Settings
from gateway_midtrans_snap.emulator._validation import CreateRequest

Announce = Callable[..., object]


class CoreRefusal(Exception):
    """A Core API refusal: body ``status_code`` (404, 406, 412, 414...) and message."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message


class OrderUtilized(Exception):
    """Snap create for an order_id that already has a live or paid attempt (§2.10)."""


class Store:
    """Merchants, sessions (by token), transactions (by id, and by order)."""

    def __init__(
        self,
        *,
        merchants: Iterable[m.Merchant],
        clock: EmulatorClock,
        settings: Settings,
        announce: Announce,
        lock: threading.RLock,
    ) -> None:
        self.clock = clock
        self.settings = settings
        self.lock = lock
        self._announce = announce
        self.merchants: dict[str, m.Merchant] = {}
        for merchant in merchants:
            self.add_merchant(merchant)
        self._numbers = itertools.count(1)
        self._refund_ids = itertools.count(3101)
        self.reset()

    def reset(self) -> None:
        """Forget sessions and transactions (merchants stay)."""
        with self.lock:
            self.sessions: dict[str, m.Session] = {}
            self.transactions: dict[str, m.Transaction] = {}
            self.orders: dict[tuple[str, str], list[m.Transaction]] = {}

    # --- merchants --------------------------------------------------------------------------

    def add_merchant(self, merchant: m.Merchant) -> m.Merchant:
        """Add or replace a merchant (by merchant_id)."""
        with self.lock:
            self.merchants[merchant.merchant_id] = merchant
        return merchant

    def by_key(self, server_key: str) -> m.Merchant | None:
        """The merchant whose server key this is."""
        with self.lock:
            for merchant in self.merchants.values():
                if merchant.server_key == server_key:
                    return merchant
        return None

    def configure(self, merchant_id: str, **changes: Any) -> m.Merchant:
        """Change a merchant's settings."""
        with self.lock:
            merchant = self.merchants.get(merchant_id)
            if merchant is None:
                raise KeyError(f"unknown merchant {merchant_id}")
            for name, value in changes.items():
                if not hasattr(merchant, name):
                    raise ValueError(f"unknown merchant setting {name!r}")
                setattr(merchant, name, value)
            return merchant

    # --- sessions ---------------------------------------------------------------------------

    def create_session(
        self,
        merchant: m.Merchant,
        request: CreateRequest,
        body: dict[str, Any],
        notification_urls: list[str],
    ) -> m.Session:
        """A new Snap token for ``request`` (§2.10: the previous token of the order is
        superseded; :class:`OrderUtilized` when an attempt holds the order)."""
        with self.lock:
            self.expire_due()
            attempts = self.orders.get((merchant.merchant_id, request.order_id), [])
            ended = {m.EXPIRE, m.CANCEL, m.FAILURE}
            if self.settings.deny_reuses_order:
                ended.add(m.DENY)
            if any(t.status not in ended for t in attempts):
                raise OrderUtilized(request.order_id)
            now = self.clock.now()
            for session in self.sessions.values():
                same = (session.merchant_id, session.order_id)
                if same == (merchant.merchant_id, request.order_id) and session.state == "active":
                    session.state = "superseded"
            attempt_at = None
            if request.expiry_lifetime is not None and request.expiry_start is not None:
                attempt_at = request.expiry_start + request.expiry_lifetime
            lifetime = request.page_lifetime or request.expiry_lifetime
            if lifetime is None:
                lifetime = timedelta(seconds=self.settings.default_page_expiry)
            page_end = now + lifetime
            if request.page_lifetime is None and attempt_at is not None:
                page_end = attempt_at
            session = m.Session(
                token=str(uuid.uuid4()),
                merchant_id=merchant.merchant_id,
                order_id=request.order_id,
                gross_amount=request.gross_amount,
                body=body,
                methods=request.methods,
                created_at=now,
                page_expires_at=min(page_end, now + timedelta(days=7)),
                attempt_expires_at=attempt_at,
                attempt_lifetime=None if attempt_at else request.expiry_lifetime,
                notification_urls=notification_urls,
            )
            session.body["_custom"] = request.custom
            self.sessions[session.token] = session
            return session

    def session(self, token: str) -> m.Session | None:
        """The session of ``token`` (page expiry applied), or None."""
        with self.lock:
            self.expire_due()
            return self.sessions.get(token)

    def cancel_session(self, token: str) -> m.Session:
        """§2.11: cancel an active token without an open attempt."""
        with self.lock:
            session = self.session(token)
            if session is None:
                raise CoreRefusal("404", "token not found")
            if session.state == "canceled":
                raise CoreRefusal("409", "token already canceled")
            attempts = self.orders.get((session.merchant_id, session.order_id), [])
            if session.state == "completed" or any(t.status in m.UTILIZING for t in attempts):
                raise CoreRefusal("409", "Transaction is on progress")
            if session.state != "active":
                raise CoreRefusal("404", "token not found")
            session.state = "canceled"
            return session

    # --- attempts ---------------------------------------------------------------------------

    def open_attempt(self, session: m.Session) -> m.Transaction | None:
        """The session's attempt still in ``pending``, if any."""
        for txn in reversed(self.orders.get((session.merchant_id, session.order_id), [])):
            if txn.token == session.token and txn.status == m.PENDING:
                return txn
        return None

    def choose(self, session: m.Session, method: str, *, status: str = m.PENDING) -> m.Transaction:
        """The customer picks ``method`` on the page: a new attempt in ``status`` (pending, or
        for a card paid without 3DS capture/deny directly), announced."""
        with self.lock:
            self.expire_due()
            if session.state != "active":
                raise CoreRefusal("412", f"the Snap session is {session.state}")
            if method not in m.METHODS:
                raise CoreRefusal("400", f"unknown payment method {method!r}")
            if method not in session.methods:
                raise CoreRefusal("402", f"{method} is not enabled for this transaction")
            existing = self.open_attempt(session)
            if existing is not None:
                if existing.method == method:
                    return existing
                self.move(existing, m.CANCEL, source="another method chosen")
            payment_type, lifetime = m.METHODS[method]
            now = self.clock.now()
            if session.attempt_expires_at is not None:
                expires = session.attempt_expires_at
            elif session.attempt_lifetime is not None:
                expires = now + session.attempt_lifetime
            else:
                expires = now + lifetime
            number = next(self._numbers)
            merchant = self.merchants[session.merchant_id]
            txn = m.Transaction(
                transaction_id=str(uuid.uuid4()),
                merchant_id=merchant.merchant_id,
                order_id=session.order_id,
                token=session.token,
                method=method,
                payment_type=payment_type,
                gross_amount=session.gross_amount,
                status=status,
                fraud_status="accept",
                transaction_time=now,
                expiry_time=expires,
                notification_urls=list(session.notification_urls),
                custom=dict(session.body.get("_custom", {})),
                extras=_extras(method, number),
            )
            txn.history.append({"at": self.clock.wall(), "status": status, "source": "page"})
            self.transactions[txn.transaction_id] = txn
            self.orders.setdefault((merchant.merchant_id, session.order_id), []).append(txn)
            if status in m.PAID:
                self._completed(txn)
            self._announce(txn)
            return txn

    def find(self, ident: str, merchant_id: str | None = None) -> m.Transaction:
        """By transaction_id, else the latest attempt of order_id (§11.1.5); 404 otherwise."""
        with self.lock:
            self.expire_due()
            txn = self.transactions.get(ident)
            if txn is not None and merchant_id in (None, txn.merchant_id):
                return txn
            keys = [k for k in self.orders if k[1] == ident and merchant_id in (None, k[0])]
            if not keys:
                raise CoreRefusal("404")
            return self.orders[keys[-1]][-1]

    def move(
        self,
        txn: m.Transaction,
        status: str,
        *,
        fraud: str | None = None,
        force: bool = False,
        source: str = "api",
    ) -> m.Transaction:
        """Change ``txn`` to ``status`` (412 when §11.3 forbids it, unless ``force``) and
        announce it."""
        with self.lock:
            if status not in m.STATUSES:
                raise ValueError(f"unknown transaction_status {status!r}")
            allowed = m.TRANSITIONS.get(txn.status, frozenset())
            if not force and status not in allowed:
                raise CoreRefusal("412")
            now = self.clock.now()
            txn.status = status
            if fraud is not None:
                txn.fraud_status = fraud
            if status == m.SETTLEMENT and txn.settlement_time is None:
                txn.settlement_time = now
            if status == m.CAPTURE:
                txn.captured_at = now
                if txn.payment_type == "credit_card":
                    txn.extras.setdefault("approval_code", str(1717380600000 + len(txn.history)))
            txn.history.append({"at": self.clock.wall(), "status": status, "source": source})
            if status in m.PAID:
                self._completed(txn)
            self._announce(txn)
            return txn

    def _completed(self, txn: m.Transaction) -> None:
        session = self.sessions.get(txn.token)
        if session is not None and session.state == "active":
            session.state = "completed"

    # --- refunds ----------------------------------------------------------------------------

    def refund(
        self,
        txn: m.Transaction,
        *,
        key: str | None,
        amount: Any,
        reason: str,
        direct: bool = False,
        bank_rejects: bool = False,
        source: str = "api",
    ) -> tuple[m.Refund | None, dict[str, Any] | None]:
        """Refund per §7.3/§7.4: ``(refund, None)`` when a new one was made, ``(None, stored
        answer)`` for a replayed key, ``(None, None)`` when the bank rejected a direct refund.
        Raises :class:`CoreRefusal` (406, 412, 414)."""
        with self.lock:
            self.expire_due()
            wanted: int | None = None
            if amount is not None:
                if isinstance(amount, bool) or not isinstance(amount, (int, float, str)):
                    raise CoreRefusal("414")
                try:
                    number = float(amount)
                except ValueError:
                    raise CoreRefusal("414") from None
                if not number.is_integer():
                    raise CoreRefusal("414")
                wanted = int(number)
            if key:
                for done in txn.refunds:
                    if done.refund_key == key:
                        if wanted is None or wanted == done.amount:
                            return None, dict(done.response)
                        raise CoreRefusal("406")
            if txn.status not in (m.SETTLEMENT, m.PARTIAL_REFUND):
                raise CoreRefusal("412")
            if txn.payment_type not in m.REFUNDABLE:
                raise CoreRefusal("412")
            remaining = txn.gross_amount - txn.refunded
            if wanted is None:
                wanted = remaining
            if wanted <= 0 or wanted > remaining:
                raise CoreRefusal("414")
            if txn.payment_type in m.FULL_REFUND_ONLY and wanted != txn.gross_amount:
                raise CoreRefusal("412")
            merchant = self.merchants[txn.merchant_id]
            if merchant.refund_balance is not None and wanted > merchant.refund_balance:
                raise CoreRefusal("414")
            if bank_rejects:
                return None, None
            if merchant.refund_balance is not None:
                merchant.refund_balance -= wanted
            now = self.clock.now()
            refund = m.Refund(
                refund_chargeback_id=next(self._refund_ids),
                refund_chargeback_uuid=str(uuid.uuid4()),
                refund_key=key or str(uuid.uuid4()),
                amount=wanted,
                reason=reason[:255],
                created_at=now,
                refund_method=self.settings.refund_method,
                bank_confirmed_at=now,
                direct=direct,
            )
            txn.refunds.append(refund)
            status = m.REFUND if txn.refunded >= txn.gross_amount else m.PARTIAL_REFUND
            txn.status = status
            txn.history.append({"at": self.clock.wall(), "status": status, "source": source})
            from gateway_midtrans_snap.emulator._render import refund_body

            refund.response = refund_body(txn, refund)
            self._announce(txn, refund_key=refund.refund_key)
            return refund, None

    # --- time -------------------------------------------------------------------------------

    def expire_due(self) -> list[str]:
        """Expire pending attempts past ``expiry_time`` (webhook) and pages past their
        expiry (no webhook); settle card captures older than ``card_settlement_delay``.
        Returns the order_ids of the attempts expired."""
        expired: list[str] = []
        with self.lock:
            now = self.clock.now()
            for session in self.sessions.values():
                if session.state == "active" and now >= session.page_expires_at:
                    session.state = "expired"
            delay = timedelta(seconds=self.settings.card_settlement_delay)
            for txn in list(self.transactions.values()):
                if txn.status == m.PENDING and txn.expiry_time and now >= txn.expiry_time:
                    self.move(txn, m.EXPIRE, source="clock")
                    expired.append(txn.order_id)
                elif (
                    txn.status == m.CAPTURE
                    and txn.fraud_status == "accept"
                    and txn.captured_at is not None
                    and now >= txn.captured_at + delay
                ):
                    self.move(txn, m.SETTLEMENT, source="clock")
        return expired

    def advance(self, seconds: float) -> list[str]:
        """Move the clock and apply what fell due."""
        self.clock.advance(seconds)
        return self.expire_due()

    def set_clock(self, moment: datetime) -> list[str]:
        """Jump the clock and apply what fell due."""
        self.clock.set(moment)
        return self.expire_due()


def _extras(method: str, number: int) -> dict[str, Any]:
    """The method's own fields (§4.3 payment-type extras), numbered by ``number``."""
    payment_type = m.METHODS[method][0]
    if method == "permata_va":
        return {"permata_va_number": f"{8562000000 + number}"}
    if payment_type == "bank_transfer":
        bank = method.removesuffix("_va")
        return {"va_numbers": [{"bank": bank, "va_number": f"12345{number:09d}"}]}
    if payment_type == "echannel":
        return {"biller_code": "70012", "bill_key": f"{990000000000 + number}"}
    if payment_type == "qris":
        return {"transaction_type": "off-us", "issuer": "gopay", "acquirer": "gopay"}
    if payment_type == "cstore":
        return {"store": method, "payment_code": f"{1234000000 + number}"}
    if payment_type == "credit_card":
        return {
            "masked_card": "48111111-1114",
            "bank": "bni",
            "card_type": "credit",
            "eci": "05",
            "channel_response_code": "00",
            "channel_response_message": "Approved",
            "three_ds_version": "2",
        }
    return {}
