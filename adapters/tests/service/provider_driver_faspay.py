"""The Faspay (``faspay_dana``) provider driver for the shared scenario tests (see
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

# -- Faspay (faspay_dana) -----------------------------------------------------------------------

_FASPAY_CODES = {S.PAID: "2", S.FAILED: "3", S.REVERSED: "4", S.IN_PROCESS: "1"}
_FASPAY_STATUS = {
    "0": S.PENDING,
    "1": S.PENDING,
    "2": S.PAID,
    "3": S.FAILED,
    "4": S.REVERSED,
    "7": S.EXPIRED,
    "8": S.CANCELLED,
}


class FaspayDriver(Driver):
    name = "faspay_dana"
    gateway_name = "dana"
    status_signed = True
    deliveries_per_payment = 1
    attempts_when_unreachable = 4  # Faspay gives up after its re-sends

    def __init__(self, password: str = "S3NT1NEL-pw-Xq7t2LmZ9vR4") -> None:
        self.password = password

    def provider_settings(self, emulator_url: str) -> dict[str, Any]:
        return {
            "provider": "faspay_dana",
            "merchant_id": "99999",
            "merchant_name": "Test Store",
            "password": self.password,
            "base_url": emulator_url,
            "notification_format": "json",
        }

    def start_emulator(self, merchant_url: str, **options: Any) -> tuple[Any, Any]:
        from gateway_faspay_dana.emulator import EmulatorApp, EmulatorServer, Merchant

        merchant = Merchant(
            "99999",
            merchant_name="Test Store",
            password=self.password,
            notification_url=f"{merchant_url}/notify/{self.gateway_name}",
            return_url=f"{merchant_url}/return/{self.gateway_name}",
            notification_format="json",
        )
        app = EmulatorApp(merchant, **{"retry_interval": 0.05, **options})
        return app, EmulatorServer(app).start()

    @property
    def secret(self) -> str:
        return self.password

    def silent_emulator(self) -> tuple[Any, Any]:
        from gateway_faspay_dana.emulator import EmulatorApp, EmulatorServer, Merchant

        merchant = Merchant("99999", merchant_name="Test Store", password=self.password)
        app = EmulatorApp(merchant, retry_interval=0.05)
        return app, EmulatorServer(app).start()

    def ack_ok(self, status_code: int, body: str) -> bool:
        return status_code == 200 and json.loads(body).get("response_code") == "00"

    def pay(self, stack: ProviderStack, reference: str) -> None:
        stack.emulator.pay(reference)

    def pay_without_notifying(self, stack: ProviderStack, reference: str) -> None:
        stack.emulator.add_fault("notification", "drop", bill_no=reference, on_status="2")
        stack.emulator.pay(reference)
        stack.wait()

    def cancel(self, stack: ProviderStack, reference: str) -> None:
        stack.emulator.cancel(reference)

    def reverse(self, stack: ProviderStack, reference: str) -> None:
        stack.emulator.reverse(reference)

    def notify(self, stack: ProviderStack, reference: str, status: S | None = None) -> None:
        if status is None:
            stack.emulator.notify(reference)
        else:
            stack.emulator.notify(reference, status=_FASPAY_CODES[status])

    def fault(self, stack: ProviderStack, kind: str, reference: str | None, **params: Any) -> None:
        for name in ("status", "on_status"):
            if name in params:
                params[name] = _FASPAY_CODES[params[name]]
        if reference is not None:
            params["bill_no"] = reference
        stack.emulator.add_fault("notification", kind, **params)

    def create_fault(self, stack: ProviderStack, kind: str) -> None:
        stack.emulator.add_fault("create", kind)

    def deliveries(
        self, stack: ProviderStack, reference: str, status: S | None = None
    ) -> list[dict[str, Any]]:
        found = []
        for delivery in stack.emulator.deliveries(reference):
            core = _FASPAY_STATUS.get(delivery["status"], S.UNKNOWN)
            if delivery["status"] == "1":
                core = S.IN_PROCESS
            if status is None or core is status:
                found.append({**delivery, "core_status": core})
        return found

    def provider_status(self, stack: ProviderStack, reference: str) -> S | None:
        try:
            bill = stack.emulator.bill(reference)
        except Exception:
            return None
        return _FASPAY_STATUS.get(bill["status"], S.UNKNOWN)

    def inquiries(self, stack: ProviderStack) -> int:
        return int(stack.emulator.request_counts().get("inquiry", 0))

    def creates(self, stack: ProviderStack, reference: str) -> int:
        return int(stack.emulator.create_requests(reference))

    def bills(self, stack: ProviderStack) -> list[str]:
        return [b["bill_no"] for b in stack.emulator.bills()]

    def open_page(self, stack: ProviderStack, reference: str) -> None:
        stack.emulator.open(reference)

    def notification_for(
        self, stack: ProviderStack, record: PaymentRecord, status: S = S.PAID, **changes: Any
    ) -> bytes:
        from gateway_faspay_dana.testing import signed_notification

        values: dict[str, Any] = {
            "bill_no": record.merchant_reference,
            "trx_id": record.provider_reference,
            "status": _FASPAY_CODES[status],
            "amount": record.amount,
        }
        if "provider_reference" in changes:
            values["trx_id"] = changes.pop("provider_reference")
        values.update(changes)
        return signed_notification(stack.gateway, **values)

    def unknown_notification(self, stack: ProviderStack) -> bytes:
        from gateway_faspay_dana.testing import signed_notification

        return signed_notification(
            stack.gateway,
            bill_no=f"NEVER-{uuid.uuid4().hex[:10]}",
            trx_id="9999981900999999",
            status="2",
            amount=Money("2000", "IDR"),
        )

    def signature_of(self, body: bytes) -> str:
        return str(json.loads(body)["signature"])

    def with_signature(self, body: bytes, value: Any) -> bytes:
        payload = json.loads(body)
        if value is ...:
            del payload["signature"]
        else:
            payload["signature"] = value
        return json.dumps(payload, ensure_ascii=False).encode("utf-8")

    def relabelled(self, stack: ProviderStack, record: PaymentRecord) -> bytes:
        failed = json.loads(self.notification_for(stack, record, S.FAILED))
        paid = json.loads(self.notification_for(stack, record, S.PAID))
        paid["signature"] = failed["signature"]
        return json.dumps(paid).encode()

    def accepted(self, response: requests.Response) -> bool:
        return response.status_code == 200 and faspay_response_code(response) == "00"

    def attempt_accepted(self, attempt: dict[str, Any]) -> bool:
        return attempt["http_status"] == 200 and attempt.get("response_code") == "00"

    def refusal_status(self, reason: str) -> int:
        return {"bad_signature": 403, "too_large": 413}.get(reason, 400)

    def return_query_for(
        self, stack: ProviderStack, record: PaymentRecord, claims_paid: bool = True
    ) -> dict[str, str]:
        from gateway_faspay_dana.testing import signed_return_query

        return signed_return_query(
            stack.gateway,
            bill_no=record.merchant_reference,
            trx_id=record.provider_reference,
            status="2" if claims_paid else "1",
            amount=record.amount,
        )

    def forge_return(self, query: dict[str, str]) -> dict[str, str]:
        return {**query, "signature": flip(query["signature"])}

    def retarget_return(self, query: dict[str, str]) -> dict[str, str]:
        return {**query, "bill_no": query["bill_no"] + "X"}


def faspay_response_code(response: requests.Response) -> str | None:
    """``response_code`` of a Faspay acknowledgement (JSON or XML), or None."""
    from defusedxml.ElementTree import fromstring

    body = response.content
    try:
        if body.lstrip().startswith(b"<"):
            element = fromstring(body)
            found = element.find("response_code")
            return None if found is None else (found.text or "")
        value = json.loads(body)
    except Exception:
        return None
    code = value.get("response_code") if isinstance(value, dict) else None
    return code if isinstance(code, str) else None
