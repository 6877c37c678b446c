"""The Midtrans Snap sandbox for ``gateway demo``: the emulator plus a scripted customer.

It implements :class:`gateway_core.sandbox.Sandbox`. The server key is generated per run (the
emulator accepts whatever it is given), so the demo needs no credentials. The customer opens
the Snap page and presses a button: "Pay" (GoPay: pending, then settlement), "Payment denied"
(the emulator is set to send the browser to the error URL at the first denial) or "Back to
merchant" (unfinish).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from gateway_core import PaymentInstructions, RedirectInstruction
from gateway_core.sandbox import (
    CustomerAction,
    CustomerVisit,
    SandboxFaults,
    delivery_records,
    press,
)

DEMO_MERCHANT_ID = "G000000001"
_RETRY_SCALE = 0.002  # 2 min -> 0.24 s ... 210 min -> 25 s
#: The page's button per action: a failure ends the order (a ``deny`` would leave it open for
#: another attempt, §4.9); abandoning takes payment instructions and never pays, so the
#: attempt expires when the emulator's clock moves on.
_OUTCOME = {
    CustomerAction.PAY: "pay",
    CustomerAction.FAIL: "error",
    CustomerAction.ABANDON: "pending",
}


class MidtransSandbox:
    """A running Midtrans emulator with one merchant, driven like a customer would."""

    def __init__(self) -> None:
        self._app: Any = None
        self._server: Any = None
        self._seen = 0

    def start(
        self, *, notification_url: str, return_url: str, faults: SandboxFaults
    ) -> Mapping[str, Any]:
        from gateway_midtrans_snap.emulator import Merchant, MidtransEmulator, MidtransServer

        server_key = "SB-Mid-server-" + secrets.token_urlsafe(18)
        merchant = Merchant(
            server_key=server_key,
            merchant_id=DEMO_MERCHANT_ID,
            notification_url=notification_url,
            finish_url=return_url,
        )
        self._app = MidtransEmulator(
            merchant, retry_scale=_RETRY_SCALE, retry_jitter=False, error_after_denials=0
        )
        if faults.drop_notifications:
            self._app.add_fault("notification", "drop", count=1000)
        if faults.duplicate_notifications:
            self._app.add_fault(
                "notification", "duplicate", count=1000, times=faults.duplicate_notifications
            )
        self._server = MidtransServer(self._app).start()
        return {
            "server_key": server_key,
            "merchant_id": DEMO_MERCHANT_ID,
            "environment": "sandbox",
            "base_url": self._server.url,
            "snap_base_url": self._server.url,
            "api_base_url": self._server.url,
        }

    def customer(
        self, redirect: RedirectInstruction | PaymentInstructions, action: CustomerAction
    ) -> CustomerVisit:
        if isinstance(redirect, PaymentInstructions):
            # Snap always shows its page; should a plugin show instructions, pay the open order.
            if action is CustomerAction.PAY:
                order_id = self._app.sessions()[-1]["order_id"]
                self._app.act("pay", order_id)
                return CustomerVisit(("paid at Midtrans (the emulator's simulated payer)",))
            return CustomerVisit(("did nothing: the order stays open until it expires",))
        outcome = _OUTCOME[action]
        pressed = press(redirect.url, f"snap-{outcome}")
        done = f"pressed '{outcome}': HTTP {pressed.status}"
        return CustomerVisit(
            (
                f"opened the Snap page: HTTP {pressed.page_status}",
                f"{done}, Snap sends the browser back to the merchant's finish/unfinish/error URL"
                if pressed.location
                else done,
            ),
            return_url=pressed.location,
        )

    def settle_pending(self) -> None:
        # Past any Snap page or attempt expiry (at most 7 days) and card settlement.
        self._app.advance_clock(8 * 24 * 3600)

    def wait_for_notifications(self, timeout: float) -> list[Mapping[str, Any]]:
        self._app.wait_for_deliveries(timeout)
        deliveries = self._app.deliveries()
        records = delivery_records(
            deliveries[self._seen :], reply=lambda a: f"merchant replied HTTP {a['http_status']}"
        )
        self._seen = len(deliveries)
        return records

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def sandbox() -> MidtransSandbox:
    """The factory named by ``MidtransSnapGateway.sandbox_entry``."""
    return MidtransSandbox()
