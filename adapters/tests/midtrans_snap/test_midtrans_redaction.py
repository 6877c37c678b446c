"""The server key and the Basic header never show in clear: not in a log line, a ``repr``
or an exception; and the plugin contributes their shapes (and the Snap page token's) to the
core's redaction.

Every operation runs against the stand-in with a sentinel key, every logger captured at
DEBUG, and the failures the flow can meet (401, 5xx, a refused refund, a forged notification,
a forged return) raised on purpose; then everything an operator could read is scanned.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from midtrans_support import NOW, FakeMidtrans, later

from gateway_core import (
    Customer,
    GatewayError,
    HttpRequest,
    HttpResponse,
    InboundRequest,
    MockTransport,
    Money,
    PaymentRequest,
    PluginHost,
    ProviderClient,
    RefundRequest,
    RetryPolicy,
    redact_text,
)
from gateway_core._redact import REDACTED
from gateway_midtrans_snap import MidtransConfig, MidtransSnapGateway, basic_authorization
from gateway_midtrans_snap.testing import signed_notification, signed_return_query

KEY = "SB-Mid-server-Sentinel-Key-7q9Z"
HEADER = basic_authorization(KEY)
TOKEN_PART = HEADER.split(" ", 1)[1]
OTHER_HEADER = basic_authorization("SB-Mid-server-Pattern-Only-Key")
EMAIL = "sari.sentinel@example.test"
PHONE = "081299887766"


@pytest.fixture(autouse=True)
def _plugin_loaded() -> None:
    PluginHost()  # loads the midtrans_snap entry point, which contributes its patterns


def _forbidden() -> list[str]:
    return [KEY, HEADER, TOKEN_PART, EMAIL, PHONE]


def _gateway(handler: object) -> MidtransSnapGateway:
    config = MidtransConfig.from_settings({"server_key": KEY}, {})
    client = ProviderClient(
        MockTransport(handler),  # type: ignore[arg-type]
        RetryPolicy(max_retries=1),
        provider="midtrans_snap",
        sleep=lambda _: None,
    )
    return MidtransSnapGateway(config, client=client, clock=lambda: NOW)


def _request(reference: str) -> PaymentRequest:
    return PaymentRequest(
        order_reference="cart-1",
        merchant_reference=reference,
        amount=Money("250000", "IDR"),
        customer=Customer("Sari Sentinel", email=EMAIL, phone=PHONE),
        description="order",
        return_url="https://shop.example.test/return",
        created_at=NOW,
        expires_at=later(60),
    )


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def test_secrets_never_show_in_logs_reprs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeMidtrans(KEY)
    gateway = _gateway(fake)
    seen: list[object] = [gateway, gateway.config, gateway._client]
    errors: list[BaseException] = []

    payment = gateway.create(_request("A-1S"))
    seen += [payment, payment.redirect, gateway.redirect(payment), gateway.inquire(payment)]
    fake.choose("A-1S", "credit_card")
    fake.settle("A-1S")
    seen.append(gateway.refund(payment, RefundRequest("A-1S", Money("1000", "IDR"), "r1")))
    seen.append(gateway.inquire(payment))
    body = signed_notification(
        gateway, order_id="A-1S", status="settlement", amount=Money("250000", "IDR")
    )
    seen.append(gateway.parse_notification(InboundRequest.post(body)))
    seen.append(
        gateway.parse_return(InboundRequest.get(signed_return_query(gateway, order_id="A-1S")))
    )
    for attempt in (
        lambda: gateway.refund(payment, RefundRequest("A-1S", Money("999999", "IDR"), "r2")),
        lambda: gateway.parse_notification(InboundRequest.post(body.replace(b"A-1S", b"B-1S"))),
        lambda: gateway.parse_return(InboundRequest.get({"snap_ref": "A-1S", "snap_sig": KEY})),
        lambda: _gateway(FakeMidtrans("SB-Mid-server-Other")).create(_request("B-1S")),
        lambda: _gateway(_broken).inquire(payment),
        lambda: _gateway(_broken).create(_request("C-1S")),
        lambda: MidtransConfig.from_settings({"server_key": KEY, "environment": "production"}, {}),
        lambda: MidtransConfig.from_settings({"server_key": KEY + "\n"}, {}),
    ):
        with pytest.raises(GatewayError) as info:
            attempt()
        errors.append(info.value)

    texts = [record.getMessage() for record in caplog.records]
    texts += [str(arg) for record in caplog.records for arg in (record.args or ())]
    texts += [caplog.text]
    texts += [repr(thing) for thing in seen]
    texts += [text for exc in errors for e in _chain(exc) for text in (str(e), repr(e))]
    assert len(errors) == 8
    assert caplog.records, "the flow logs something"
    for text in texts:
        for secret in _forbidden():
            assert secret not in text, (secret, text[:200])


def _broken(request: HttpRequest) -> HttpResponse:
    # A hostile answer echoing the credentials in its error text (Snap and Core API shapes).
    echo = f"denied for {KEY} with {request.headers.get('Authorization')}"
    body = {"status_code": "400", "status_message": echo, "error_messages": [echo]}
    return HttpResponse(400, json.dumps(body).encode())


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"key={KEY} end", "key=[redacted] end"),
        ("Mid-server-ProdKey_123-abc was used", "[redacted] was used"),
        # A header never registered as a secret: the pattern alone catches it.
        (f"Authorization: {OTHER_HEADER}", "Authorization: Basic [redacted]"),
        (f"{{'Authorization': '{OTHER_HEADER}'}}", "{'Authorization': 'Basic [redacted]'}"),
        (
            "GET https://app.sandbox.midtrans.com/snap/v3/redirection/0f8c1e2a-6b7d-4c39 ok",
            "/snap/v3/redirection/[redacted] ok",
        ),
        (f"phone {PHONE}.", f"phone {REDACTED}."),
    ],
)
def test_the_plugins_patterns(text: str, kept: str) -> None:
    redacted = redact_text(text)
    assert kept in redacted
    assert "Sentinel" not in redacted
    assert OTHER_HEADER.split()[1] not in redacted


def test_the_configured_key_is_a_registered_secret() -> None:
    _gateway(FakeMidtrans(KEY))
    assert KEY not in redact_text(f"x{KEY}x")
    assert TOKEN_PART not in redact_text(f"token {TOKEN_PART}")


def test_a_config_error_never_echoes_the_key() -> None:
    with pytest.raises(GatewayError) as info:
        MidtransConfig.from_settings({"server_key": ["Sentinel-In-A-List"]}, {})
    assert "Sentinel" not in str(info.value)
    assert "server_key" in str(info.value)
