"""The Bayar Kilat gateway: pure translation between the core and Bayar Kilat's API."""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import attrs

from bayar_kilat._signing import HEADER, WIRE_EXPONENT, return_payload, sign, verify_header
from gateway_core import (
    Acknowledgement,
    BadSignature,
    Capability,
    Gateway,
    HttpRequest,
    HttpResponse,
    InboundRequest,
    InvalidRequest,
    MalformedNotification,
    MalformedResponse,
    Money,
    Notification,
    Payment,
    PaymentRequest,
    PaymentStatus,
    ProviderClient,
    ProviderEvent,
    ProviderRefused,
    Reason,
    RedirectInstruction,
    RedirectMethod,
    RequestsTransport,
    ReturnResult,
    SettingsReader,
    SignedField,
    StatusReport,
    Transport,
    TrustDeclaration,
    Verdict,
)

__all__ = ["STATUSES", "BayarKilatGateway"]

#: Bayar Kilat's payment statuses, in the core's words.
STATUSES: dict[str, PaymentStatus] = {
    "open": PaymentStatus.PENDING,
    "processing": PaymentStatus.IN_PROCESS,
    "paid": PaymentStatus.PAID,
    "failed": PaymentStatus.FAILED,
    "expired": PaymentStatus.EXPIRED,
    "cancelled": PaymentStatus.CANCELLED,
}
CURRENCIES = frozenset({"IDR", "USD"})


class BayarKilatGateway(Gateway):
    """The Bayar Kilat provider (see the package docstring for its API)."""

    name: ClassVar[str] = "bayar_kilat"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability) - {Capability.REFUND}
    # The header HMAC binds the whole body and a timestamp checked against a tolerance.
    trust: ClassVar[TrustDeclaration] = TrustDeclaration(
        notification_covers=frozenset(SignedField),
        notification_replayable=False,
        return_covers=frozenset(
            {SignedField.MERCHANT_REFERENCE, SignedField.STATUS, SignedField.PROVIDER_REFERENCE}
        ),
    )
    secret_settings: ClassVar[frozenset[str]] = frozenset({"api_key", "webhook_secret"})
    idempotent_create: ClassVar[bool] = True

    def __init__(
        self,
        *,
        account: str,
        api_key: str,
        webhook_secret: str,
        base_url: str,
        tolerance: float,
        client: ProviderClient,
    ) -> None:
        self._account = account
        self._api_key = api_key
        self._secret = webhook_secret
        self._base_url = base_url.rstrip("/")
        self._tolerance = tolerance
        self._client = client

    def __repr__(self) -> str:
        return f"BayarKilatGateway(account={self._account!r}, base_url={self._base_url!r})"

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
            env_names={
                "account": "KILAT_ACCOUNT",
                "api_key": "KILAT_API_KEY",
                "webhook_secret": "KILAT_WEBHOOK_SECRET",
            },
            secrets=cls.secret_settings,
        )
        account = read.text("account", pattern=r"[a-z0-9_]{3,32}")
        api_key = read.text("api_key")
        webhook_secret = read.text("webhook_secret")
        base_url = read.text("base_url", "https://api.bayarkilat.example")
        tolerance = read.number("signature_tolerance", 300, minimum=1, maximum=3600)
        read.finish()
        client = ProviderClient(transport or RequestsTransport(), provider=cls.name)
        return cls(
            account=account,
            api_key=api_key,
            webhook_secret=webhook_secret,
            base_url=base_url,
            tolerance=tolerance,
            client=client,
        )

    @property
    def merchant_id(self) -> str:
        return self._account

    # -- outbound ---------------------------------------------------------------------------

    def _headers(self, **extra: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._api_key}",
            "Content-Type": "application/json",
            **extra,
        }

    def _parse(self, response: HttpResponse) -> dict[str, Any]:
        try:
            data = json.loads(response.body)
        except ValueError:
            raise MalformedResponse(
                "Bayar Kilat answered with invalid JSON", provider=self.name
            ) from None
        if not isinstance(data, dict):
            raise MalformedResponse("Bayar Kilat answered with a non-object", provider=self.name)
        if response.status_code >= 400:
            code = str(data.get("error", response.status_code))
            raise ProviderRefused(
                f"Bayar Kilat refused: {code}", provider=self.name, provider_code=code
            )
        return data

    def _money(self, data: Mapping[str, Any], key: str = "amount") -> Money:
        return Money.from_units(data[key], str(data["currency"]), WIRE_EXPONENT)

    def check_request(self, request: PaymentRequest) -> None:
        super().check_request(request)
        if request.amount.currency not in CURRENCIES:
            raise InvalidRequest(
                f"Bayar Kilat takes {', '.join(sorted(CURRENCIES))} only",
                provider=self.name,
                field="amount",
            )
        try:
            request.amount.to_units(WIRE_EXPONENT)
        except ValueError:
            raise InvalidRequest(
                "Bayar Kilat takes whole units of the currency only",
                provider=self.name,
                field="amount",
            ) from None

    def create(self, request: PaymentRequest) -> Payment:
        self.check_request(request)
        body = json.dumps(
            {
                "reference": request.merchant_reference,
                "amount": request.amount.to_units(WIRE_EXPONENT),
                "currency": request.amount.currency,
                "description": request.description,
                "return_url": request.return_url,
            }
        ).encode()
        extra = {"Idempotency-Key": request.idempotency_key} if request.idempotency_key else {}
        data = self._client.call(
            HttpRequest(
                "POST",
                f"{self._base_url}/v1/payments",
                body=body,
                headers=self._headers(**extra),
                operation="create",
            ),
            self._parse,
            merchant_reference=request.merchant_reference,
        )
        try:
            provider_data = {"checkout_url": str(data["checkout_url"]), "token": str(data["token"])}
            payment_id = str(data["id"])
        except KeyError as exc:
            raise MalformedResponse(
                f"Bayar Kilat's create answer lacks {exc.args[0]}", provider=self.name
            ) from None
        payment = Payment(
            provider=self.name,
            merchant_reference=request.merchant_reference,
            status=STATUSES.get(str(data.get("status")), PaymentStatus.PENDING),
            amount=request.amount,
            provider_reference=payment_id,
            order_reference=request.order_reference,
            provider_status=str(data.get("status", "")),
            provider_data=provider_data,
        )
        return attrs.evolve(payment, redirect=self.redirect(payment))

    def redirect(self, payment: Payment) -> RedirectInstruction:
        """The checkout form, rebuilt from ``provider_data``: a second press of "pay" posts
        the same token to the same page."""
        data = payment.provider_data
        if "checkout_url" not in data or "token" not in data:
            raise MalformedResponse(
                "no checkout token stored for this payment",
                provider=self.name,
                merchant_reference=payment.merchant_reference,
            )
        return RedirectInstruction(
            url=str(data["checkout_url"]),
            method=RedirectMethod.POST,
            form_fields={"token": str(data["token"])},
        )

    def _report(self, payment: Payment, data: Mapping[str, Any]) -> StatusReport:
        wire = str(data.get("status", ""))
        status = STATUSES.get(wire, PaymentStatus.UNKNOWN)
        try:
            amount = self._money(data) if status is PaymentStatus.PAID else None
        except (KeyError, TypeError, ValueError):
            raise MalformedResponse(
                "Bayar Kilat's amount is unreadable", provider=self.name
            ) from None
        return StatusReport(
            provider=self.name,
            merchant_reference=str(data.get("reference", payment.merchant_reference)),
            provider_reference=str(data.get("id", payment.provider_reference)),
            status=status,
            provider_status=wire,
            amount=amount,
            merchant_id=str(data.get("account", "")),
        )

    def inquire(self, payment: Payment) -> StatusReport:
        data = self._client.call(
            HttpRequest(
                "GET",
                f"{self._base_url}/v1/payments/{payment.provider_reference}",
                headers=self._headers(),
                operation="inquire",
                idempotent=True,
            ),
            self._parse,
            merchant_reference=payment.merchant_reference,
        )
        return self._report(payment, data)

    def cancel(self, payment: Payment, reason: str = "") -> StatusReport:
        data = self._client.call(
            HttpRequest(
                "POST",
                f"{self._base_url}/v1/payments/{payment.provider_reference}/cancel",
                body=json.dumps({"reason": reason}).encode(),
                headers=self._headers(),
                operation="cancel",
                idempotent=True,  # cancelling twice is harmless
            ),
            self._parse,
            merchant_reference=payment.merchant_reference,
        )
        return self._report(payment, data)

    # -- inbound ----------------------------------------------------------------------------

    def parse_notification(self, request: InboundRequest) -> Notification | ProviderEvent:
        body = request.body
        if not isinstance(body, bytes):
            raise MalformedNotification("the body is not bytes", provider=self.name)
        problem = verify_header(
            self._secret, request.headers.get(HEADER.lower(), ""), body, tolerance=self._tolerance
        )
        if problem:
            raise BadSignature(problem, provider=self.name)
        try:
            event = json.loads(body)
            kind, data = str(event["type"]), event["data"]
            reference = str(data["reference"])
            payment_id = str(data["payment_id"])
            amount = self._money(data)
            account = str(event["account"])
        except (ValueError, KeyError, TypeError, ArithmeticError):
            raise MalformedNotification("not a Bayar Kilat event", provider=self.name) from None
        if kind == "refund.succeeded":
            refund_id = str(data.get("refund_id", ""))
            if not refund_id:
                raise MalformedNotification("a refund event without refund_id", provider=self.name)
            return ProviderEvent(
                provider=self.name,
                kind=kind,
                event_key=f"refund:{refund_id}",
                merchant_reference=reference,
                provider_reference=payment_id,
                amount=amount,
                fields={"refund_id": refund_id},
            )
        family, _, wire = kind.partition(".")
        if family != "payment" or wire not in STATUSES:
            raise MalformedNotification(f"unknown event type {kind[:40]!r}", provider=self.name)
        status = STATUSES[wire]
        return Notification(
            provider=self.name,
            merchant_reference=reference,
            status=status,
            event_key=f"{payment_id}:{wire}",
            provider_reference=payment_id,
            provider_status=wire,
            merchant_id=account,
            amount=amount,
            paid_amount=amount if status is PaymentStatus.PAID else None,
        )

    def parse_return(self, request: InboundRequest) -> ReturnResult:
        params = request.params
        values = [params.get(k, "") for k in ("reference", "payment_id", "status", "t", "sig")]
        if not all(isinstance(v, str) and v for v in values):
            raise MalformedNotification("not a Bayar Kilat return", provider=self.name)
        reference, payment_id, wire, stamp, given = values
        if not stamp.isdigit() or len(stamp) > 12:
            raise MalformedNotification("a return without a timestamp", provider=self.name)
        expected = sign(self._secret, int(stamp), return_payload(reference, payment_id, wire))
        if not _same(given, expected):
            raise BadSignature("the return's sig does not match", provider=self.name)
        if wire not in STATUSES:
            raise MalformedNotification("unknown status", provider=self.name)
        return ReturnResult(
            provider=self.name,
            merchant_reference=reference,
            status=STATUSES[wire],
            provider_reference=payment_id,
            provider_status=wire,
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
        """Bayar Kilat takes any 2xx as delivered: ``204`` with no body. Anything else makes
        it re-send later; the body is for its dashboard only."""
        if accepted:
            return Acknowledgement(204, "text/plain", b"")
        error = json.dumps({"error": reason.value or verdict.value}).encode()
        return Acknowledgement(400, "application/json", error, accepted=False)

    def close(self) -> None:
        self._client.close()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("ascii", "replace"), expected.encode())
