"""The Faspay sandbox for ``gateway demo``: the emulator plus a scripted customer.

It implements :class:`gateway_core.sandbox.Sandbox`. The merchant's password is generated
per run (the emulator accepts whatever it is given), so the demo needs no credentials. Every
channel is enabled on both sides, so ``gateway demo --channel bca_va`` (or ``qris_shopeepay``,
``indomaret``, ``ovo``...) works: for a page (DANA and the other redirect wallets) the customer
presses a button on it; for instructions the emulator's simulated payer acts (a bank transfer
to the virtual account, cash at the counter, a QR scan, an OVO approval).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from gateway_core import InstructionKind, PaymentInstructions, RedirectInstruction
from gateway_core.sandbox import (
    CustomerAction,
    CustomerVisit,
    SandboxFaults,
    delivery_records,
    press,
)
from gateway_faspay_dana._channels import known_methods

DEMO_MERCHANT_ID = "99999"
_RETRY_INTERVAL = 0.3


class FaspaySandbox:
    """A running Faspay emulator with one merchant, driven like a customer would."""

    def __init__(self) -> None:
        self._app: Any = None
        self._server: Any = None
        self._seen = 0

    def start(
        self, *, notification_url: str, return_url: str, faults: SandboxFaults
    ) -> Mapping[str, Any]:
        from gateway_faspay_dana.emulator import EmulatorApp, EmulatorServer, Merchant

        password = secrets.token_urlsafe(24)
        merchant = Merchant(
            DEMO_MERCHANT_ID,
            merchant_name="Demo Store",
            password=password,
            notification_url=notification_url,
            return_url=return_url,
            channels=("all",),
        )
        self._app = EmulatorApp(merchant, retry_interval=_RETRY_INTERVAL)
        if faults.drop_notifications:
            self._app.add_fault("notification", "drop", count=1000)
        if faults.duplicate_notifications:
            self._app.add_fault(
                "notification", "duplicate", count=1000, times=faults.duplicate_notifications
            )
        self._server = EmulatorServer(self._app).start()
        return {
            "merchant_id": DEMO_MERCHANT_ID,
            "merchant_name": "Demo Store",
            "password": password,
            "base_url": self._server.url,
            "environment": "sandbox",
            "channels": ",".join(known_methods()),
            "ovo_flow": "push",
        }

    def customer(
        self, redirect: RedirectInstruction | PaymentInstructions, action: CustomerAction
    ) -> CustomerVisit:
        if isinstance(redirect, PaymentInstructions):
            return self._payer(redirect, action)
        return self._browser(redirect, action)

    def _payer(self, instructions: PaymentInstructions, action: CustomerAction) -> CustomerVisit:
        """The emulator's simulated payer follows the instructions (no page, no return)."""
        from gateway_faspay_dana.emulator import EmulatorControl

        if action is CustomerAction.ABANDON:
            return CustomerVisit(("did nothing: the bill stays open until it expires",))
        kind = instructions.kind
        paying = action is CustomerAction.PAY
        with EmulatorControl(self._server.url) as control:
            trx_id = str(control.bills()[-1]["trx_id"])
            if kind is InstructionKind.QR:
                control.qr_scan(trx_id, outcome="success" if paying else "fail")
                step = "scanned the QR code in a QRIS app and " + ("paid" if paying else "failed")
            elif kind is InstructionKind.PUSH:
                control.ovo_respond(trx_id, "approve" if paying else "decline")
                step = "the OVO app " + ("approved" if paying else "declined") + " the push"
            elif paying and kind is InstructionKind.VIRTUAL_ACCOUNT:
                control.transfer(instructions.number)
                step = f"transferred the exact amount to {instructions.bank} {instructions.number}"
            elif paying:
                control.retail_pay(instructions.number)
                step = f"paid code {instructions.number} in cash at the {instructions.bank} counter"
            else:
                control.simulate_payment(trx_id=trx_id, outcome="fail")
                step = "the payment failed at the bank or store (Faspay's simulator)"
        return CustomerVisit((step, "no return URL for this channel: the shop is told by Faspay"))

    def _browser(self, redirect: RedirectInstruction, action: CustomerAction) -> CustomerVisit:
        pressed = press(redirect.url, f"dana-{action.value}", extra={"action": action.value})
        done = f"pressed '{action.value}': HTTP {pressed.status}"
        return CustomerVisit(
            (
                f"opened the provider's page: HTTP {pressed.page_status}",
                f"{done}, DANA sends the browser back to the merchant's return URL"
                if pressed.location
                else done,
            ),
            return_url=pressed.location,
        )

    def settle_pending(self) -> None:
        # Move the emulator's clock past any bill's expiry (DANA bills last at most 30 days).
        self._app.advance_clock(31 * 24 * 3600)

    def wait_for_notifications(self, timeout: float) -> list[Mapping[str, Any]]:
        self._app.wait_for_deliveries(timeout)
        deliveries = self._app.deliveries()
        records = delivery_records(
            deliveries[self._seen :],
            reply=lambda a: (
                f"merchant replied HTTP {a['http_status']} "
                f"response_code {a.get('response_code') or ''}"
            ).strip(),
        )
        self._seen = len(deliveries)
        return records

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def sandbox() -> FaspaySandbox:
    """The factory named by ``FaspayDanaGateway.sandbox_entry``."""
    return FaspaySandbox()
