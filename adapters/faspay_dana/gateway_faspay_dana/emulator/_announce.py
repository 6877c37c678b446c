"""Turns a bill's status change into a notification job for the :class:`Notifier`.

It builds the signed fields Faspay would send (see the assumptions in ``_app``) and applies the
scripted notification faults (delay, duplicate, burst, drop, reorder, legacy signature); the
delivery itself, with Faspay's retry policy, is the notifier's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway_faspay_dana.emulator import _codes as codes
from gateway_faspay_dana.emulator._clock import EmulatorClock
from gateway_faspay_dana.emulator._faults import FaultPlan
from gateway_faspay_dana.emulator._messages import notification_fields
from gateway_faspay_dana.emulator._model import Bill, Merchant
from gateway_faspay_dana.emulator._notifier import NotificationPlan, Notifier, faspay_message
from gateway_faspay_dana.emulator._settings import Settings
from gateway_faspay_dana.emulator._store import MerchantBook


class Announcer:
    """Sends the notification for one bill and status (``kind``: original, manual)."""

    def __init__(
        self,
        *,
        merchants: MerchantBook,
        faults: FaultPlan,
        notifier: Notifier,
        clock: EmulatorClock,
        settings: Settings,
    ) -> None:
        self._merchants = merchants
        self._faults = faults
        self._notifier = notifier
        self._clock = clock
        self._settings = settings

    def __call__(self, bill: Bill, status: str, kind: str) -> list[dict[str, Any]]:
        merchant = self._merchants.get(bill.merchant_id)
        if merchant is None:  # pragma: no cover
            return []
        faults = {
            f.kind: f
            for f in self._faults.take_notification(on_status=status, bill_no=bill.bill_no)
        }
        fields = self._fields(merchant, bill, status, legacy="legacy_signature" in faults)
        reorder = None
        if "reorder" in faults:
            reorder = self._fields(
                merchant, bill, str(faults["reorder"].param("status")), legacy=False, scripted=True
            )
        fmt = merchant.notification_format
        plan = NotificationPlan(
            url=merchant.notification_url,
            message=faspay_message(merchant.merchant_id, fields, fmt),
            faults=sorted(faults),
            delay=float(faults["delay"].param("seconds")) if "delay" in faults else 0.0,
            duplicates=int(faults["duplicate"].param("times")) if "duplicate" in faults else 0,
            burst=int(faults["burst"].param("times")) if "burst" in faults else 1,
            drop="drop" in faults,
            reorder=None if reorder is None else faspay_message(merchant.merchant_id, reorder, fmt),
            kind=kind,
        )
        return [d.to_dict() for d in self._notifier.submit(plan)]

    def _fields(
        self, merchant: Merchant, bill: Bill, status: str, *, legacy: bool, scripted: bool = False
    ) -> dict[str, str]:
        if status in (codes.PAID, codes.REVERSED) and not scripted and bill.payment_date:
            payment_date = self._fmt(bill.payment_date)
        elif scripted:
            payment_date = self._clock.wall()
        else:
            payment_date = self._fmt(bill.status_changed_at)
        reff = bill.payment_reff if status in (codes.PAID, codes.REVERSED) else ""
        return notification_fields(
            merchant,
            trx_id=bill.trx_id,
            bill_no=bill.bill_no,
            status=status,
            bill_total=bill.total_text,
            payment_total=bill.paid_text,
            payment_reff=reff or "null",
            payment_date=payment_date,
            channel=bill.channel,
            legacy_signature=legacy,
            language=self._settings.language,
            merchant=bill.merchant_name,
        )

    def _fmt(self, moment: datetime | None) -> str:
        return self._clock.format(moment) if moment is not None else ""
