"""An in-memory provider for testing the payment service's rules without any real provider.

:class:`FakeGateway` keeps "the provider's side" in a dict: ``create`` records a bill and
answers it pending; :meth:`FakeGateway.settle` changes what the provider says about a bill (the
customer paid, the bill expired); ``inquire`` and ``cancel`` answer from it;
:meth:`FakeGateway.notification` builds a notification the way the provider would send it,
a JSON body signed with HMAC-SHA256 of the raw body in the ``Fake-Signature`` header (so the
signature covers every field), and :meth:`FakeGateway.event` a provider event that is not a
status change (a refund); the reply is ``200 ok`` or ``400 rejected``. ``refund`` refunds a
paid bill (idempotent by key, never above the paid amount); :meth:`FakeGateway.refund_notification`
reports a bill's refunds the way a provider's refund notification does, and ``inquire`` lists
them. Set ``lose_refund_answers`` to lose that many refund answers after the refund was made.

Its trust declaration is the strongest there is; a test of the rules for weaker providers
derives one with :meth:`FakeGateway.with_trust`. Imported from :mod:`gateway_core.testing`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar, Self

import attrs

from gateway_core._config import SettingsReader
from gateway_core._exceptions import (
    BadSignature,
    MalformedNotification,
    OutcomeUnknown,
    ProviderRefused,
)
from gateway_core._gateway import Gateway
from gateway_core._inbound import InboundRequest, ProviderEvent, Reason, Verdict
from gateway_core._models import (
    Acknowledgement,
    Capability,
    Money,
    Notification,
    Payment,
    PaymentRequest,
    PaymentStatus,
    RedirectInstruction,
    ReturnResult,
    SignedField,
    StatusReport,
    TrustDeclaration,
)
from gateway_core._refunds import RefundReport, RefundRequest, RefundStatus
from gateway_core._transport import Transport

SIGNATURE_HEADER = "Fake-Signature"


def _sign(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), data, hashlib.sha256).hexdigest()


class FakeGateway(Gateway):
    """A provider whose "remote side" is this object's memory (see the module docstring).

    ``merchant_id`` is what inbound messages must name; ``secret`` signs them. Set
    ``refuse_create`` to a set of merchant references the provider refuses.
    """

    name: ClassVar[str] = "fake"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    trust: ClassVar[TrustDeclaration] = TrustDeclaration(
        notification_covers=frozenset(SignedField),
        notification_replayable=True,
        return_covers=frozenset({SignedField.MERCHANT_REFERENCE, SignedField.STATUS}),
    )
    secret_settings: ClassVar[frozenset[str]] = frozenset({"secret"})

    def __init__(
        self,
        *,
        merchant_id: str = "fake-merchant",
        secret: str = "fake-secret",  # noqa: S107 - a test double's
    ) -> None:
        self._merchant_id = merchant_id
        self._secret = secret
        self._bills: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.refuse_create: set[str] = set()
        self.calls: list[str] = []
        self.lose_refund_answers = 0

    @classmethod
    def from_config(
        cls,
        settings: Mapping[str, Any],
        *,
        environ: Mapping[str, str] | None = None,
        transport: Transport | None = None,
    ) -> Self:
        read = SettingsReader(settings, provider=cls.name, ignore=frozenset({"provider"}))
        merchant_id = read.text("merchant_id", "fake-merchant")
        secret = read.text("secret", "fake-secret")
        read.finish()
        return cls(merchant_id=merchant_id, secret=secret)

    @classmethod
    def with_trust(cls, **changes: Any) -> type[FakeGateway]:
        """A subclass whose trust declaration differs by ``changes`` (``attrs.evolve``)."""
        trust = attrs.evolve(cls.trust, **changes)
        return type(f"{cls.__name__}WithTrust", (cls,), {"trust": trust})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(merchant_id={self._merchant_id!r})"

    @property
    def merchant_id(self) -> str:
        return self._merchant_id

    # -- the provider's side -------------------------------------------------------------------

    def settle(
        self, merchant_reference: str, status: PaymentStatus, *, paid: Money | None = None
    ) -> None:
        """The provider now says ``status`` about the bill (``paid``: the amount it says was
        paid, default the bill's amount)."""
        with self._lock:
            bill = self._bills[merchant_reference]
            bill["status"] = status
            bill["paid"] = paid or bill["amount"]
            bill.setdefault("refunds", [])

    def bill(self, merchant_reference: str) -> dict[str, Any]:
        """What the provider holds about a bill (a copy)."""
        with self._lock:
            return dict(self._bills[merchant_reference])

    def refund_at_provider(self, merchant_reference: str, amount: Money, refund_id: str) -> None:
        """A refund made at the provider without this library (its dashboard)."""
        with self._lock:
            self._book_refund(self._bills[merchant_reference], "", amount, refund_id)

    @staticmethod
    def _book_refund(bill: dict[str, Any], key: str, amount: Money, refund_id: str) -> None:
        refunds: list[dict[str, Any]] = bill.setdefault("refunds", [])
        refunds.append({"key": key, "amount": amount, "id": refund_id})
        total = sum(r["amount"].minor_units for r in refunds)
        full = total >= bill["paid"].minor_units
        bill["status"] = PaymentStatus.REFUNDED if full else PaymentStatus.PARTIALLY_REFUNDED

    def _refund_reports(
        self, merchant_reference: str, bill: dict[str, Any]
    ) -> tuple[RefundReport, ...]:
        return tuple(
            RefundReport(
                provider=self.name,
                merchant_reference=merchant_reference,
                key=r["key"],
                status=RefundStatus.SUCCEEDED,
                amount=r["amount"],
                provider_reference=r["id"],
            )
            for r in bill.get("refunds", ())
        )

    def refund_notification(self, merchant_reference: str) -> tuple[bytes, dict[str, str]]:
        """The provider's refund notification for the bill: its status and every refund."""
        bill = self.bill(merchant_reference)
        refunds = [
            {"key": r["key"], "amount": str(r["amount"].amount), "id": r["id"]}
            for r in bill.get("refunds", ())
        ]
        return self.notification(merchant_reference, bill["status"], refunds=refunds)

    def notification(
        self, merchant_reference: str, status: PaymentStatus | None = None, **overrides: Any
    ) -> tuple[bytes, dict[str, str]]:
        """The provider's notification for the bill: ``(body, headers)``, signed after
        ``overrides`` are applied (so a test can send a correctly signed lie)."""
        bill = self.bill(merchant_reference)
        amount: Money = bill["paid"] if status is PaymentStatus.PAID else bill["amount"]
        payload: dict[str, Any] = {
            "merchant_id": self._merchant_id,
            "reference": merchant_reference,
            "id": bill["id"],
            "status": (status or bill["status"]).value,
            "amount": str(amount.amount),
            "currency": amount.currency,
        }
        payload.update(overrides)
        body = json.dumps(payload, sort_keys=True).encode("utf-8")
        return body, {SIGNATURE_HEADER: _sign(self._secret, body)}

    def event(
        self,
        kind: str,
        merchant_reference: str,
        *,
        amount: Money | None = None,
        event_id: str = "1",
    ) -> tuple[bytes, dict[str, str]]:
        """A provider event that is not a status change (``"refund.created"``) for the bill:
        ``(body, headers)``, signed. ``amount`` defaults to the bill's; the same ``event_id``
        is the same provider event (a re-delivery)."""
        bill = self.bill(merchant_reference)
        money: Money = amount or bill["amount"]
        payload: dict[str, Any] = {
            "merchant_id": self._merchant_id,
            "reference": merchant_reference,
            "id": bill["id"],
            "event": kind,
            "event_id": event_id,
            "amount": str(money.amount),
            "currency": money.currency,
        }
        body = json.dumps(payload, sort_keys=True).encode("utf-8")
        return body, {SIGNATURE_HEADER: _sign(self._secret, body)}

    def return_query(self, merchant_reference: str, status: PaymentStatus) -> dict[str, str]:
        """The signed query of the customer's return."""
        text = f"{merchant_reference}|{status.value}"
        return {
            "reference": merchant_reference,
            "status": status.value,
            "signature": _sign(self._secret, text.encode("utf-8")),
        }

    # -- the gateway -------------------------------------------------------------------------

    def create(self, request: PaymentRequest) -> Payment:
        self.calls.append("create")
        reference = request.merchant_reference
        if reference in self.refuse_create:
            raise ProviderRefused("fake refused the bill", provider=self.name)
        bill_id = f"fk{next(self._ids)}"
        with self._lock:
            self._bills[reference] = {
                "id": bill_id,
                "status": PaymentStatus.PENDING,
                "amount": request.amount,
                "paid": request.amount,
            }
        return Payment(
            provider=self.name,
            merchant_reference=reference,
            status=PaymentStatus.PENDING,
            amount=request.amount,
            provider_reference=bill_id,
            redirect=self._redirect(reference),
            order_reference=request.order_reference,
            expires_at=request.expires_at,
        )

    def _redirect(self, reference: str) -> RedirectInstruction:
        return RedirectInstruction(url=f"https://fake.invalid/pay/{reference}")

    def redirect(self, payment: Payment) -> RedirectInstruction:
        return self._redirect(payment.merchant_reference)

    def inquire(self, payment: Payment) -> StatusReport:
        self.calls.append("inquire")
        bill = self.bill(payment.merchant_reference)
        status: PaymentStatus = bill["status"]
        return StatusReport(
            provider=self.name,
            merchant_reference=payment.merchant_reference,
            provider_reference=bill["id"],
            status=status,
            amount=bill["paid"] if status is PaymentStatus.PAID else None,
            merchant_id=self._merchant_id,
            refunds=self._refund_reports(payment.merchant_reference, bill),
        )

    def refund(self, payment: Payment, request: RefundRequest) -> RefundReport:
        self.calls.append("refund")
        with self._lock:
            bill = self._bills[payment.merchant_reference]
            known = [r for r in bill.get("refunds", ()) if r["key"] == request.key]
            if known and known[0]["amount"] != request.amount:
                raise ProviderRefused("duplicate refund id", provider=self.name)
            if not known:
                refundable = (PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED)
                if bill["status"] not in refundable:
                    raise ProviderRefused("the payment cannot be refunded", provider=self.name)
                total = sum(r["amount"].minor_units for r in bill.get("refunds", ()))
                if total + request.amount.minor_units > bill["paid"].minor_units:
                    raise ProviderRefused("invalid refund amount", provider=self.name)
                self._book_refund(bill, request.key, request.amount, f"rf{next(self._ids)}")
            if self.lose_refund_answers:
                self.lose_refund_answers -= 1
                raise OutcomeUnknown("refund answer lost", provider=self.name)
            (report,) = [
                r
                for r in self._refund_reports(payment.merchant_reference, bill)
                if r.key == request.key
            ]
        return report

    def cancel(self, payment: Payment, reason: str = "") -> StatusReport:
        self.calls.append("cancel")
        with self._lock:
            bill = self._bills[payment.merchant_reference]
            if bill["status"] in (PaymentStatus.PENDING, PaymentStatus.IN_PROCESS):
                bill["status"] = PaymentStatus.CANCELLED
        return self.inquire(payment)

    def parse_return(self, request: InboundRequest) -> ReturnResult:
        params = request.params
        reference, status = params.get("reference", ""), params.get("status", "")
        expected = _sign(self._secret, f"{reference}|{status}".encode())
        if not hmac.compare_digest(expected, str(params.get("signature", ""))):
            raise BadSignature("fake return signature does not verify", provider=self.name)
        try:
            claimed = PaymentStatus(status)
        except ValueError:
            raise MalformedNotification("unknown status", provider=self.name) from None
        return ReturnResult(provider=self.name, merchant_reference=reference, status=claimed)

    def parse_notification(self, request: InboundRequest) -> Notification | ProviderEvent:
        body = request.body
        signature = request.headers.get(SIGNATURE_HEADER.lower(), "")
        if not hmac.compare_digest(_sign(self._secret, body), signature):
            raise BadSignature("fake signature does not verify", provider=self.name)
        try:
            data = json.loads(body)
            amount = Money(Decimal(data["amount"]), data["currency"])
            reference, bill_id = str(data["reference"]), str(data["id"])
            merchant = str(data["merchant_id"])
            if "event" in data:
                return ProviderEvent(
                    provider=self.name,
                    kind=str(data["event"]),
                    event_key=f"{reference}:{data['event']}:{data['event_id']}",
                    merchant_reference=reference,
                    provider_reference=bill_id,
                    amount=amount,
                    fields={"merchant_id": merchant},
                )
            status = PaymentStatus(data["status"])
            refunds = tuple(
                RefundReport(
                    provider=self.name,
                    merchant_reference=reference,
                    key=str(r["key"]),
                    status=RefundStatus.SUCCEEDED,
                    amount=Money(Decimal(r["amount"]), amount.currency),
                    provider_reference=str(r["id"]),
                )
                for r in data.get("refunds", ())
            )
        except (ValueError, KeyError, TypeError, ArithmeticError):
            raise MalformedNotification("malformed fake notification", provider=self.name) from None
        return Notification(
            provider=self.name,
            merchant_reference=reference,
            status=status,
            event_key=f"{reference}:{status.value}" + (f":{len(refunds)}" if refunds else ""),
            provider_reference=bill_id,
            provider_status=status.value,
            merchant_id=merchant,
            amount=amount if status is not PaymentStatus.PAID else None,
            paid_amount=amount if status is PaymentStatus.PAID else None,
            refunds=refunds,
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
            return Acknowledgement(200, "text/plain", b"ok")
        return Acknowledgement(400, "text/plain", b"rejected", accepted=False)
