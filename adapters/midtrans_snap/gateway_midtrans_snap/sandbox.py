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
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

from gateway_core import PaymentInstructions, RedirectInstruction
from gateway_core.sandbox import CustomerAction, CustomerVisit, SandboxFaults

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


class _Forms(HTMLParser):
    """The forms of the emulator's Snap page: id -> (action, hidden fields)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, tuple[str, dict[str, str]]] = {}
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = values.get("id", "")
            self.forms[self._current] = (values.get("action", ""), {})
        elif tag == "input" and self._current is not None and values.get("name"):
            self.forms[self._current][1][values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


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
        import requests

        outcome = _OUTCOME[action]
        steps = []
        with requests.Session() as browser:
            page = browser.get(redirect.url, timeout=10)
            steps.append(f"opened the Snap page: HTTP {page.status_code}")
            page.raise_for_status()
            forms = _Forms()
            forms.feed(page.text)
            target, fields = forms.forms[f"snap-{outcome}"]
            reply = browser.post(
                urljoin(page.url, target), data=fields, allow_redirects=False, timeout=10
            )
            location = reply.headers.get("Location", "")
            steps.append(
                f"pressed '{outcome}': HTTP {reply.status_code}, Snap sends the browser back "
                "to the merchant's finish/unfinish/error URL"
                if location
                else f"pressed '{outcome}': HTTP {reply.status_code}"
            )
        return CustomerVisit(tuple(steps), return_url=location)

    def settle_pending(self) -> None:
        # Past any Snap page or attempt expiry (at most 7 days) and card settlement.
        self._app.advance_clock(8 * 24 * 3600)

    def wait_for_notifications(self, timeout: float) -> list[Mapping[str, Any]]:
        self._app.wait_for_deliveries(timeout)
        records: list[Mapping[str, Any]] = []
        deliveries = self._app.deliveries()
        for delivery in deliveries[self._seen :]:
            for attempt in delivery["attempts"]:
                http = attempt.get("http_status")
                reply = (
                    f"merchant replied HTTP {http}"
                    if http
                    else f"nothing delivered ({attempt.get('error') or 'unreachable'})"
                )
                records.append(
                    {"status": delivery["status"], "reply": reply, "reached": bool(http)}
                )
            if not delivery["attempts"]:
                records.append(
                    {"status": delivery["status"], "reply": "not attempted", "reached": False}
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
