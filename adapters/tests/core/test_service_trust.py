"""The payment service follows each provider's trust declaration.

Two variants of the example Acme Pay provider, registered directly on a plugin host: one whose
notification signature does not cover the status (the service must believe an inquiry, not
the notification), one whose signed return settles (the service may apply the return).
A real SQLite ledger; the provider's API is a mock transport (message building only).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from plugin_distributions import EXAMPLE_PLUGIN_DIR

from gateway_core import (
    EventKind,
    HttpRequest,
    HttpResponse,
    MockTransport,
    Money,
    PaymentService,
    PaymentStatus,
    PluginHost,
    SignedField,
    TrustDeclaration,
    hookimpl,
)
from gateway_core.ledger import PaymentRecord, SQLiteLedger
from gateway_core.testing import HookRecorder

SECRET = "trust-test-secret"


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN_DIR))
    import acme_pay

    yield acme_pay
    for name in [m for m in sys.modules if m == "acme_pay" or m.startswith("acme_pay.")]:
        del sys.modules[name]


class Provider:
    """The provider's API as the mock transport sees it: answers inquiries with ``status``."""

    def __init__(self) -> None:
        self.status = "open"
        self.inquiries = 0

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.inquiries += 1
        return HttpResponse(200, json.dumps({"id": "ac_1", "status": self.status}).encode())


def _service(acme: Any, gateway_class: type, tmp_path: Path, provider: Provider) -> Any:
    class Registration:
        @hookimpl
        def gateway_register_providers(self, registry: Any) -> None:
            registry.add(gateway_class)

    recorder = HookRecorder()
    host = PluginHost(entry_points=False, plugins=[Registration(), recorder])
    gateway = gateway_class.from_config(
        {"account": "shop_1", "api_secret": SECRET}, environ={}, transport=MockTransport(provider)
    )
    ledger = SQLiteLedger(str(tmp_path / "ledger.db"))
    ledger.migrate()
    now = datetime.now(UTC)
    ledger.insert_payment(
        PaymentRecord(
            gateway="acme",
            provider=gateway_class.name,
            order_reference="ord-1",
            merchant_reference="ord-1-1",
            provider_reference="ac_1",
            status=PaymentStatus.PENDING,
            amount=Money("10.00", "USD"),
            merchant_id="shop_1",
            expires_at=now + timedelta(hours=1),
            created_at=now,
        )
    )
    service = PaymentService(gateways={"acme": gateway}, ledger=ledger, hooks=host.hooks)
    return service, recorder


def _notification(acme: Any, status: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "id": "ac_1",
            "reference": "ord-1-1",
            "status": status,
            "amount_minor": 1000,
            "currency": "USD",
        }
    ).encode()
    return body, {"Acme-Signature": acme.sign(SECRET, body)}


def test_status_not_covered_by_the_signature_is_confirmed_by_inquiry(
    acme: Any, tmp_path: Path
) -> None:
    class StatusUnsigned(acme.AcmePayGateway):  # type: ignore[misc,name-defined]
        name = "acme_status_unsigned"
        trust = TrustDeclaration(
            notification_covers=frozenset({SignedField.MERCHANT_REFERENCE}),
            notification_replayable=True,
        )

    provider = Provider()
    service, recorder = _service(acme, StatusUnsigned, tmp_path, provider)
    body, headers = _notification(acme, "paid")

    provider.status = "open"  # the notification says paid; the provider does not
    outcome = service.handle_notification("acme", body, headers)
    assert provider.inquiries == 1
    assert service.payment("acme", "ord-1-1").status is PaymentStatus.PENDING
    # An unconfirmed claim of money is refused (the provider retries), not acknowledged.
    assert (outcome.verdict, outcome.reason) == ("rejected", "status_unconfirmed")
    assert not outcome.acknowledgement.accepted
    assert recorder.of_kind(EventKind.PAID) == []

    provider.status = "paid"
    service.handle_notification("acme", body, headers)
    assert service.payment("acme", "ord-1-1").status is PaymentStatus.PAID
    assert len(recorder.of_kind(EventKind.PAID)) == 1


def test_status_covered_by_the_signature_is_applied_without_inquiry(
    acme: Any, tmp_path: Path
) -> None:
    provider = Provider()
    service, _recorder = _service(acme, acme.AcmePayGateway, tmp_path, provider)
    service.handle_notification("acme", *_notification(acme, "paid"))
    assert provider.inquiries == 0
    assert service.payment("acme", "ord-1-1").status is PaymentStatus.PAID


def _signed_return(acme: Any, status: str) -> dict[str, str]:
    return {
        "reference": "ord-1-1",
        "status": status,
        "sig": acme.sign(SECRET, f"ord-1-1:{status}".encode()),
    }


def test_a_return_settles_only_when_the_provider_declares_it(acme: Any, tmp_path: Path) -> None:
    class SettlingReturns(acme.AcmePayGateway):  # type: ignore[misc,name-defined]
        name = "acme_settling_returns"
        trust = TrustDeclaration(
            notification_covers=frozenset(SignedField),
            notification_replayable=False,
            return_covers=frozenset(SignedField),
            return_settles=True,
        )

    provider = Provider()
    service, recorder = _service(acme, SettlingReturns, tmp_path, provider)
    outcome = service.handle_return("acme", _signed_return(acme, "paid"))
    assert outcome.payment.status is PaymentStatus.PAID
    assert provider.inquiries == 0
    assert len(recorder.of_kind(EventKind.PAID)) == 1


def test_a_return_of_an_unsettling_provider_only_triggers_an_inquiry(
    acme: Any, tmp_path: Path
) -> None:
    provider = Provider()  # still "open" at the provider
    service, recorder = _service(acme, acme.AcmePayGateway, tmp_path, provider)
    outcome = service.handle_return("acme", _signed_return(acme, "paid"))
    assert provider.inquiries == 1
    assert outcome.payment.status is PaymentStatus.PENDING
    assert recorder.of_kind(EventKind.PAID) == []
