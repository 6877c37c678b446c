"""A small client of the emulator's control API (``/_emulator/...``) for out-of-process use,
on the emulation kit's :class:`~gateway_core.emulation.control.ControlClient` (the session, the
calls, and the clock, fault, delivery, request-log, wait and reset methods)."""

from __future__ import annotations

from typing import Any

from gateway_core.emulation.control import ControlClient
from gateway_faspay_dana.emulator._errors import EmulatorError


class EmulatorControl(ControlClient):
    """Drive a running emulator over HTTP: bills, payers, merchants, clock, faults, deliveries,
    request log.

    ``base_url`` is the emulator's base URL (``http://127.0.0.1:8765``). Errors raise
    :class:`EmulatorError` carrying the HTTP status and the emulator's message.
    """

    error_class = EmulatorError

    @staticmethod
    def _selectors(merchant_id: str | None, trx_id: str | None) -> dict[str, str]:
        params: dict[str, str] = {}
        if merchant_id:
            params["merchant_id"] = str(merchant_id)
        if trx_id:
            params["trx_id"] = str(trx_id)
        return params

    # --- bills --------------------------------------------------------------------------------

    def bills(self, merchant_id: str | None = None) -> list[dict[str, Any]]:
        """Every bill record."""
        result: list[dict[str, Any]] = self._call(
            "GET", "bills", params=self._selectors(merchant_id, None)
        )["bills"]
        return result

    def bill(
        self, bill_no: str, merchant_id: str | None = None, trx_id: str | None = None
    ) -> dict[str, Any]:
        """One bill record (includes ``create_requests`` and ``trx_ids``)."""
        result: dict[str, Any] = self._call(
            "GET", f"bills/{bill_no}", params=self._selectors(merchant_id, trx_id)
        )
        return result

    def act(
        self,
        action: str,
        bill_no: str,
        *,
        merchant_id: str | None = None,
        trx_id: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """``open``/``pay``/``fail``/``expire``/``cancel``/``reverse`` a bill."""
        body = {**self._selectors(merchant_id, trx_id), **options}
        result: dict[str, Any] = self._call("POST", f"bills/{bill_no}/{action}", body)
        return result

    def open(self, bill_no: str, **kwargs: Any) -> dict[str, Any]:
        """The customer opened the DANA page (0 → 1)."""
        return self.act("open", bill_no, **kwargs)

    def pay(self, bill_no: str, **kwargs: Any) -> dict[str, Any]:
        """Pay the bill (→ 2, notification)."""
        return self.act("pay", bill_no, **kwargs)

    def fail(self, bill_no: str, **kwargs: Any) -> dict[str, Any]:
        """Fail the bill (→ 3, notification)."""
        return self.act("fail", bill_no, **kwargs)

    def expire(self, bill_no: str, **kwargs: Any) -> dict[str, Any]:
        """Expire the bill now (→ 7, notification)."""
        return self.act("expire", bill_no, **kwargs)

    def cancel(self, bill_no: str, **kwargs: Any) -> dict[str, Any]:
        """Cancel the bill (→ 8, notification)."""
        return self.act("cancel", bill_no, **kwargs)

    def reverse(self, bill_no: str, **kwargs: Any) -> dict[str, Any]:
        """Reverse a paid bill (2 → 4, notification)."""
        return self.act("reverse", bill_no, **kwargs)

    def notify(
        self,
        bill_no: str,
        status: str | None = None,
        *,
        merchant_id: str | None = None,
        trx_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """(Re)send a notification for the bill (current or scripted status)."""
        body: dict[str, Any] = self._selectors(merchant_id, trx_id)
        if status is not None:
            body["status"] = status
        result: list[dict[str, Any]] = self._call("POST", f"bills/{bill_no}/notify", body)[
            "deliveries"
        ]
        return result

    # --- simulated payers (channels reference §14) ---------------------------------------------

    def transfer(self, va_number: str, **options: Any) -> dict[str, Any]:
        """A bank transfer to a VA (``amount`` in hundredths, ``bank_ref``, ``bank``)."""
        result: dict[str, Any] = self._call("POST", f"va/{va_number}/transfer", options)
        return result

    def retail_pay(self, payment_code: str, **options: Any) -> dict[str, Any]:
        """Cash at a store counter for a payment code (``store``, ``amount``, ``receipt``)."""
        result: dict[str, Any] = self._call("POST", f"retail/{payment_code}/pay", options)
        return result

    def qr_scan(self, trx_id: str, **options: Any) -> dict[str, Any]:
        """A QRIS app scans the QR (``issuer``, ``outcome`` success|fail|opened)."""
        result: dict[str, Any] = self._call("POST", f"qr/{trx_id}/scan", options)
        return result

    def ovo_respond(self, trx_id: str, action: str) -> dict[str, Any]:
        """The payer's decision on an OVO push: approve, decline, timeout, not_registered."""
        result: dict[str, Any] = self._call("POST", f"ovo/{trx_id}/respond", {"action": action})
        return result

    def simulate_payment(self, **params: Any) -> dict[str, Any]:
        """Faspay's web simulator: ``bill_no``/``trx_id``/``va_number``/``payment_code``,
        ``merchant_id``, ``amount``, ``outcome`` (success|fail)."""
        result: dict[str, Any] = self._call("POST", "pay", params)
        return result

    def channels(self) -> list[dict[str, Any]]:
        """The emulator's channel registry."""
        result: list[dict[str, Any]] = self._call("GET", "channels")["channels"]
        return result

    # --- clock and deliveries (the rest is the kit's) ------------------------------------------

    def advance_clock(self, seconds: float) -> list[str]:
        """Move the clock forward; returns the bill_nos that expired."""
        return list(super().advance_clock(seconds))

    def deliveries(self, bill_no: str | None = None, **labels: str | None) -> list[dict[str, Any]]:
        """Notification deliveries with their attempts (optionally for one ``bill_no``)."""
        return super().deliveries(bill_no=bill_no, **labels)

    def configure_merchant(self, merchant_id: str, **changes: Any) -> dict[str, Any]:
        """Change a merchant's settings (notification_url, return_url, format, channels)."""
        result: dict[str, Any] = self._call("POST", f"merchants/{merchant_id}", changes)
        return result
