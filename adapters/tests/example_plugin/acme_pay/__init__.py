"""Acme Pay: a complete, small provider plugin for gateway-core.

It exists to show (and to test) that a third-party plugin loads through exactly the same
entry point and hook as the first-party Faspay DANA plugin. The fictional Acme Pay API:

* ``POST /payments`` with a JSON body ``{"reference", "amount_minor", "currency",
  "return_url"}`` answers ``{"id": "...", "checkout_url": "..."}``;
* ``GET /payments/<id>`` answers ``{"id", "reference", "status"}``;
* notifications are JSON bodies signed with HMAC-SHA256 of the whole body in the
  ``Acme-Signature`` header, so the signature covers every field.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, Self

from gateway_core import (
    Acknowledgement,
    BadSignature,
    Capability,
    Gateway,
    HttpRequest,
    HttpResponse,
    InboundRequest,
    MalformedNotification,
    MalformedResponse,
    Money,
    Notification,
    Payment,
    PaymentRequest,
    PaymentStatus,
    ProviderClient,
    ProviderEvent,
    Reason,
    RedirectInstruction,
    RequestsTransport,
    ReturnResult,
    SettingsReader,
    SignedField,
    StatusReport,
    Transport,
    TrustDeclaration,
    Verdict,
)

__all__ = ["AcmePayGateway", "sign"]

_STATUSES = {
    "open": PaymentStatus.PENDING,
    "paid": PaymentStatus.PAID,
    "failed": PaymentStatus.FAILED,
    "expired": PaymentStatus.EXPIRED,
}


def sign(secret: str, body: bytes) -> str:
    """Acme's signature: hex HMAC-SHA256 of the raw body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class AcmePayGateway(Gateway):
    """The Acme Pay provider."""

    name = "acme_pay"
    capabilities = frozenset(
        {
            Capability.CREATE,
            Capability.REDIRECT,
            Capability.HANDLE_RETURN,
            Capability.HANDLE_NOTIFICATION,
            Capability.INQUIRE,
        }
    )
    trust = TrustDeclaration(
        notification_covers=frozenset(SignedField),
        notification_replayable=True,
        return_covers=frozenset({SignedField.MERCHANT_REFERENCE, SignedField.STATUS}),
    )
    secret_settings = frozenset({"api_secret"})

    def __init__(self, *, account: str, api_secret: str, base_url: str, client: Any) -> None:
        self._account = account
        self._secret = api_secret
        self._base_url = base_url.rstrip("/")
        self._client = client

    def __repr__(self) -> str:
        return f"AcmePayGateway(account={self._account!r})"

    @classmethod
    def from_config(
        cls,
        settings: Mapping[str, Any],
        *,
        environ: Mapping[str, str] | None = None,
        transport: Transport | None = None,
    ) -> Self:
        read = SettingsReader(
            settings,
            provider=cls.name,
            environ=environ,
            env_names={"account": "ACME_ACCOUNT", "api_secret": "ACME_SECRET"},
            secrets=cls.secret_settings,
        )
        account = read.text("account", pattern=r"[a-z0-9_]{3,32}")
        secret = read.text("api_secret")
        base_url = read.text("base_url", "https://api.acme.example")
        read.finish()
        client = ProviderClient(transport or RequestsTransport(), provider=cls.name)
        return cls(account=account, api_secret=secret, base_url=base_url, client=client)

    @property
    def merchant_id(self) -> str:
        return self._account

    def _json(self, response: HttpResponse) -> dict[str, Any]:
        try:
            data = json.loads(response.body)
        except ValueError:
            raise MalformedResponse("Acme answered with invalid JSON", provider=self.name) from None
        if not isinstance(data, dict):
            raise MalformedResponse("Acme answered with a non-object", provider=self.name)
        return data

    def create(self, request: PaymentRequest) -> Payment:
        body = json.dumps(
            {
                "account": self._account,
                "reference": request.merchant_reference,
                "amount_minor": request.amount.minor_units,
                "currency": request.amount.currency,
                "return_url": request.return_url,
            }
        ).encode()
        data = self._client.call(
            HttpRequest(
                "POST",
                f"{self._base_url}/payments",
                body=body,
                headers={"Acme-Signature": sign(self._secret, body)},
                operation="create",
            ),
            self._json,
            merchant_reference=request.merchant_reference,
        )
        return Payment(
            provider=self.name,
            merchant_reference=request.merchant_reference,
            status=PaymentStatus.PENDING,
            amount=request.amount,
            provider_reference=str(data.get("id", "")),
            redirect=RedirectInstruction(url=str(data.get("checkout_url", ""))),
            order_reference=request.order_reference,
        )

    def redirect(self, payment: Payment) -> RedirectInstruction:
        if payment.redirect is not None:
            return payment.redirect
        return RedirectInstruction(url=f"https://pay.acme.example/{payment.provider_reference}")

    def inquire(self, payment: Payment) -> StatusReport:
        data = self._client.call(
            HttpRequest(
                "GET",
                f"{self._base_url}/payments/{payment.provider_reference}",
                operation="inquire",
                idempotent=True,
            ),
            self._json,
        )
        return StatusReport(
            provider=self.name,
            merchant_reference=payment.merchant_reference,
            provider_reference=payment.provider_reference,
            status=_STATUSES.get(str(data.get("status")), PaymentStatus.UNKNOWN),
            provider_status=str(data.get("status", "")),
        )

    def parse_notification(self, request: InboundRequest) -> Notification:
        body = request.body
        given = request.headers.get("acme-signature", "")
        if not hmac.compare_digest(
            given.encode("ascii", "replace"), sign(self._secret, body).encode()
        ):
            raise BadSignature("Acme-Signature does not match", provider=self.name)
        try:
            data = json.loads(body)
            reference = data["reference"]
            status = _STATUSES[data["status"]]
            amount = Money.from_minor_units(data["amount_minor"], data["currency"])
        except (ValueError, KeyError, TypeError):
            raise MalformedNotification("not an Acme notification", provider=self.name) from None
        return Notification(
            provider=self.name,
            merchant_reference=str(reference),
            status=status,
            event_key=f"{reference}:{data['status']}",
            provider_reference=str(data.get("id", "")),
            merchant_id=self._account,
            amount=amount,
            paid_amount=amount,
        )

    def reply(
        self,
        verdict: Verdict,
        message: Notification | ProviderEvent | None,
        reason: Reason,
        request: InboundRequest | None,
        *,
        accepted: bool,
    ) -> Acknowledgement:
        if accepted:
            return Acknowledgement(200, "application/json", b'{"ok": true}')
        return Acknowledgement(400, "application/json", b'{"ok": false}', accepted=False)

    def parse_return(self, request: InboundRequest) -> ReturnResult:
        params = request.params
        reference = params.get("reference", "")
        status = params.get("status", "")
        expected = sign(self._secret, f"{reference}:{status}".encode())
        given = params.get("sig", "")
        if not hmac.compare_digest(given.encode("ascii", "replace"), expected.encode()):
            raise BadSignature("return signature does not match", provider=self.name)
        if status not in _STATUSES:
            raise MalformedNotification("unknown status", provider=self.name)
        return ReturnResult(
            provider=self.name, merchant_reference=reference, status=_STATUSES[status]
        )

    def close(self) -> None:
        self._client.close()
