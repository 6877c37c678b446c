"""A small client of the emulator's control API (``/_emulator/...``) for out-of-process use."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

import requests

from gateway_faspay_dana.emulator._errors import EmulatorError


class EmulatorControl:
    """Drive a running emulator over HTTP: bills, clock, faults, deliveries, request log.

    ``base_url`` is the emulator's base URL (``http://127.0.0.1:8765``). Errors raise
    :class:`EmulatorError` carrying the HTTP status and the emulator's message.
    """

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session or requests.Session()
        self._own_session = session is None
        self.timeout = timeout

    def close(self) -> None:
        """Close the HTTP session (if this object created it)."""
        if self._own_session:
            self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        *,
        timeout: float | None = None,
        close: bool = False,
    ) -> Any:
        headers = {"Connection": "close"} if close else None
        response = self._session.request(
            method,
            f"{self.base_url}/_emulator/{path}",
            json=body,
            params=params,
            timeout=timeout or self.timeout,
            headers=headers,
        )
        try:
            data = response.json()
        except ValueError:
            data = {"error": response.text}
        if response.status_code != 200:
            message = data.get("error", response.text) if isinstance(data, dict) else str(data)
            raise EmulatorError(str(message), http_status=response.status_code)
        return data

    @staticmethod
    def _selectors(merchant_id: str | None, trx_id: str | None) -> dict[str, str]:
        params: dict[str, str] = {}
        if merchant_id:
            params["merchant_id"] = str(merchant_id)
        if trx_id:
            params["trx_id"] = str(trx_id)
        return params

    # --- bills --------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Base URL, endpoints, merchants (passwords masked) and the emulator time."""
        result: dict[str, Any] = self._call("GET", "")
        return result

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

    # --- clock, faults, logs ------------------------------------------------------------------

    def now(self) -> str:
        """The emulator's current time (Asia/Jakarta wall time)."""
        return str(self._call("GET", "clock")["now"])

    def advance_clock(self, seconds: float) -> list[str]:
        """Move the clock forward; returns the bill_nos that expired."""
        result: list[str] = self._call("POST", "clock/advance", {"seconds": seconds})["expired"]
        return result

    def add_fault(self, endpoint: str, fault: str, count: int = 1, **params: Any) -> dict[str, Any]:
        """Script a fault; ``refuse`` closes the port at once (this call still gets its reply)."""
        body = {"endpoint": endpoint, "fault": fault, "count": count, **params}
        result: dict[str, Any] = self._call("POST", "faults", body, close=fault == "refuse")
        return result

    def faults(self) -> list[dict[str, Any]]:
        """Pending faults."""
        result: list[dict[str, Any]] = self._call("GET", "faults")["faults"]
        return result

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        self._call("DELETE", "faults")

    def deliveries(self, bill_no: str | None = None) -> list[dict[str, Any]]:
        """Notification deliveries with their attempts."""
        params = {"bill_no": bill_no} if bill_no else None
        result: list[dict[str, Any]] = self._call("GET", "deliveries", params=params)["deliveries"]
        return result

    def requests_log(self, endpoint: str | None = None) -> dict[str, Any]:
        """``{"counts": {endpoint: n}, "requests": [...]}``."""
        params = {"endpoint": endpoint} if endpoint else None
        result: dict[str, Any] = self._call("GET", "requests", params=params)
        return result

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """Block until no notification job runs (server side); False on timeout."""
        return bool(
            self._call("POST", "wait", {"timeout": timeout}, timeout=timeout + self.timeout)["idle"]
        )

    def configure_merchant(self, merchant_id: str, **changes: Any) -> dict[str, Any]:
        """Change a merchant's settings (notification_url, return_url, format, channels)."""
        result: dict[str, Any] = self._call("POST", f"merchants/{merchant_id}", changes)
        return result

    def reset(self) -> None:
        """Forget bills, logs, deliveries and faults; clock back to real time."""
        self._call("POST", "reset")
