"""The Midtrans Snap (``midtrans_snap``) provider driver for the shared scenario tests (see
:mod:`provider_drivers`)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import requests
from provider_driver_base import Driver, ProviderStack, flip

from gateway_core import Money, PaymentStatus
from gateway_core.ledger import PaymentRecord

S = PaymentStatus

# -- Midtrans Snap (midtrans_snap) --------------------------------------------------------------

#: A core status -> the transaction_status Midtrans reports it with.
_MIDTRANS_STATES = {
    S.PENDING: "pending",
    S.IN_PROCESS: "pending",
    S.PAID: "settlement",
    S.FAILED: "deny",
    S.CANCELLED: "cancel",
    S.EXPIRED: "expire",
    S.REVERSED: "chargeback",
    S.PARTIALLY_REFUNDED: "partial_refund",
    S.REFUNDED: "refund",
}
_MIDTRANS_STATUS = {
    "pending": S.PENDING,
    "authorize": S.IN_PROCESS,
    "capture": S.PAID,
    "settlement": S.PAID,
    "deny": S.FAILED,
    "failure": S.FAILED,
    "cancel": S.CANCELLED,
    "expire": S.EXPIRED,
    "refund": S.REFUNDED,
    "partial_refund": S.PARTIALLY_REFUNDED,
    "chargeback": S.REVERSED,
    "partial_chargeback": S.REVERSED,
}
MIDTRANS_SERVER_KEY = "SB-Mid-server-S3NT1NEL-Xq7t2LmZ9vR4"
MIDTRANS_MERCHANT_ID = "G123450001"


class MidtransDriver(Driver):
    name = "midtrans_snap"
    gateway_name = "snap"
    status_signed = False
    deliveries_per_payment = 2  # pending (method chosen), then settlement
    attempts_when_unreachable = 6  # the first try and five retries (§4.2)

    def provider_settings(self, emulator_url: str) -> dict[str, Any]:
        return {
            "provider": "midtrans_snap",
            "server_key": MIDTRANS_SERVER_KEY,
            "merchant_id": MIDTRANS_MERCHANT_ID,
            "environment": "sandbox",
            "base_url": emulator_url,
        }

    def start_emulator(self, merchant_url: str, **options: Any) -> tuple[Any, Any]:
        from gateway_midtrans_snap.emulator import Merchant, MidtransEmulator, MidtransServer

        merchant = Merchant(
            server_key=MIDTRANS_SERVER_KEY,
            merchant_id=MIDTRANS_MERCHANT_ID,
            notification_url=f"{merchant_url}/notify/{self.gateway_name}",
        )
        # Midtrans' retry delays (2 ... 210 min) scaled to 1.2 ms ... 0.13 s: a notification
        # that is never acknowledged is given up within a quarter of a second.
        values = {
            "retry_scale": 1e-5,
            "retry_jitter": False,
            "notification_timeout": 5.0,
            **options,
        }
        app = MidtransEmulator(merchant, **values)
        return app, MidtransServer(app).start()

    @property
    def secret(self) -> str:
        return MIDTRANS_SERVER_KEY

    def silent_emulator(self) -> tuple[Any, Any]:
        app, server = self.start_emulator("http://127.0.0.1:9")
        app.add_fault("notification", "drop", count=100_000)
        return app, server

    def ack_ok(self, status_code: int, body: str) -> bool:
        return 200 <= status_code < 300

    def pay(self, stack: ProviderStack, reference: str) -> None:
        stack.emulator.act("pay", reference)

    def pay_without_notifying(self, stack: ProviderStack, reference: str) -> None:
        # Both webhooks of the payment (pending, then settlement) are lost: the first one's
        # confirming inquiry would otherwise already see the settlement.
        stack.emulator.add_fault("notification", "drop", count=2, order_id=reference)
        stack.emulator.act("pay", reference)
        stack.wait()

    def cancel(self, stack: ProviderStack, reference: str) -> None:
        # A Snap order without an attempt has nothing to cancel: the customer picks a method
        # first (a pending attempt, notified), then Midtrans cancels it.
        if not stack.emulator.transactions(reference):
            stack.emulator.choose(reference)
        stack.emulator.act("cancel", reference)

    def reverse(self, stack: ProviderStack, reference: str) -> None:
        stack.emulator.act("chargeback", reference)

    def notify(self, stack: ProviderStack, reference: str, status: S | None = None) -> None:
        stack.emulator.notify(reference, None if status is None else _MIDTRANS_STATES[status])

    def fault(self, stack: ProviderStack, kind: str, reference: str | None, **params: Any) -> None:
        for name in ("status", "on_status"):
            if name in params:
                params[name] = _MIDTRANS_STATES[params[name]]
        if reference is not None:
            params["order_id"] = reference
        stack.emulator.add_fault("notification", kind, **params)

    def create_fault(self, stack: ProviderStack, kind: str) -> None:
        stack.emulator.add_fault("snap_create", kind, count=self.create_tries(stack))

    def deliveries(
        self, stack: ProviderStack, reference: str, status: S | None = None
    ) -> list[dict[str, Any]]:
        found = []
        for delivery in stack.emulator.deliveries(order_id=reference):
            core = _MIDTRANS_STATUS.get(delivery["status"], S.UNKNOWN)
            if status is None or core is status:
                found.append({**delivery, "core_status": core})
        return found

    def provider_status(self, stack: ProviderStack, reference: str) -> S | None:
        attempts = stack.emulator.transactions(reference)
        if not attempts:
            sessions = [s for s in stack.emulator.sessions() if s["order_id"] == reference]
            return S.PENDING if sessions else None
        return _MIDTRANS_STATUS.get(attempts[-1]["transaction_status"], S.UNKNOWN)

    def inquiries(self, stack: ProviderStack) -> int:
        return int(stack.emulator.request_counts().get("status", 0))

    def creates(self, stack: ProviderStack, reference: str) -> int:
        return sum(
            1
            for entry in stack.emulator.requests_log("snap_create")
            if entry.get("order_id") == reference
        )

    def bills(self, stack: ProviderStack) -> list[str]:
        return [s["order_id"] for s in stack.emulator.sessions()]

    def open_page(self, stack: ProviderStack, reference: str) -> None:
        # The customer chose a card and is in 3-D Secure: a challenged capture is not paid.
        stack.emulator.act("challenge", reference)
        stack.wait()

    def notification_for(
        self, stack: ProviderStack, record: PaymentRecord, status: S = S.PAID, **changes: Any
    ) -> bytes:
        from gateway_midtrans_snap.testing import STATES, signed_notification

        overrides: dict[str, Any] = {}
        # The amount is signed (gross_amount): a notification for another amount is signed
        # for it, so it verifies and only the ledger can tell.
        amount: Money = changes.pop("amount", record.amount)
        if "provider_reference" in changes:
            overrides["order_id"] = changes.pop("provider_reference")
        overrides.update(changes)
        attempts = stack.emulator.transactions(record.merchant_reference)
        extra: dict[str, Any] = {}
        if attempts:
            extra = {
                "transaction_id": attempts[-1]["transaction_id"],
                "payment_type": attempts[-1]["payment_type"],
            }
        state = STATES[status] if status in STATES else _MIDTRANS_STATES[status]
        body = json.loads(
            signed_notification(
                stack.gateway,
                order_id=record.merchant_reference,
                status=status if status in STATES else state,  # type: ignore[arg-type]
                amount=amount,
                merchant_id=MIDTRANS_MERCHANT_ID,
                **extra,
            )
        )
        body.update(overrides)
        return json.dumps(body).encode()

    def unknown_notification(self, stack: ProviderStack) -> bytes:
        from gateway_midtrans_snap.testing import signed_notification

        return signed_notification(
            stack.gateway,
            order_id=f"NEVER-{uuid.uuid4().hex[:10]}-1S",
            status=S.PAID,
            amount=Money("2000", "IDR"),
            merchant_id=MIDTRANS_MERCHANT_ID,
        )

    def signature_of(self, body: bytes) -> str:
        return str(json.loads(body)["signature_key"])

    def with_signature(self, body: bytes, value: Any) -> bytes:
        payload = json.loads(body)
        if value is ...:
            del payload["signature_key"]
        else:
            payload["signature_key"] = value
        return json.dumps(payload, ensure_ascii=False).encode("utf-8")

    def relabelled(self, stack: ProviderStack, record: PaymentRecord) -> bytes:
        # The signature covers status_code: a "deny" (202) relabelled "settlement" (200).
        failed = json.loads(self.notification_for(stack, record, S.FAILED))
        failed["transaction_status"] = "settlement"
        failed["status_code"] = "200"
        return json.dumps(failed).encode()

    def accepted(self, response: requests.Response) -> bool:
        return 200 <= response.status_code < 300

    def attempt_accepted(self, attempt: dict[str, Any]) -> bool:
        status = attempt.get("http_status")
        return isinstance(status, int) and 200 <= status < 300

    def refusal_status(self, reason: str) -> int:
        return {"unknown_payment": 404, "status_unconfirmed": 503, "too_large": 413}.get(
            reason, 400
        )

    def return_query_for(
        self, stack: ProviderStack, record: PaymentRecord, claims_paid: bool = True
    ) -> dict[str, str]:
        from gateway_midtrans_snap.testing import signed_return_query

        return signed_return_query(
            stack.gateway,
            order_id=record.merchant_reference,
            transaction_status="settlement" if claims_paid else "pending",
            status_code="200" if claims_paid else "201",
        )

    def forge_return(self, query: dict[str, str]) -> dict[str, str]:
        return {**query, "snap_sig": flip(query["snap_sig"])}

    def retarget_return(self, query: dict[str, str]) -> dict[str, str]:
        other = query["snap_ref"] + "X"
        return {**query, "snap_ref": other, "order_id": other}
