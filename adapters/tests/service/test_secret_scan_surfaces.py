""" "Secrets never in clear" for the surfaces added with Midtrans Snap, refunds, the worker, the
metrics, JSON logs and the RabbitMQ relay (security review; the scanner is
:class:`test_secret_scan.Scanner`).

* A Midtrans flow over loopback HTTP (create with the customer's phone and e-mail, the page,
  the return, the webhooks, a refund, a forged and a tampered notification, a call with a wrong
  server key): every log record (also formatted as a JSON log line), every exception, every
  ``repr``, the ledger's journal, outbox and refunds, the ``/metrics`` exposition, and the
  worker's ``/healthz``, ``/readyz`` and ``/metrics`` answers are scanned for the server key,
  its Basic header, every ``signature_key`` and return signature, the phone and the e-mail.
* The relay publishing to a broker that is not there, with a sentinel password in its URL:
  logs (pika's included), the error, the reprs.
* Faspay's :class:`~gateway_core.PaymentInstructions` for an OVO push: the phone is masked.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urljoin, urlsplit

import pytest
from test_secret_scan import FORMATTER, Scanner, browse, expect

from gateway_core import (
    BadSignature,
    GatewayError,
    Money,
    PaymentStatus,
    ProviderConfigurationError,
)
from gateway_core._json_logs import JsonFormatter
from gateway_core._worker._health import HealthServer, worker_routes
from gateway_core.metrics import Metrics, metrics_route

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "midtrans_snap"))
from midtrans_emulator_support import Forms
from provider_drivers import MIDTRANS_SERVER_KEY, ProviderStack, open_provider_stack

from gateway_midtrans_snap import MidtransSnapGateway
from gateway_midtrans_snap.testing import signed_notification

PHONE = "081234567890"
EMAIL = "budi@example.com"
HEX = re.compile(r"(?<![0-9a-f])[0-9a-f]{32,128}(?![0-9a-f])")
JSON_LINES = JsonFormatter()


@pytest.fixture
def captured(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    monkeypatch.setattr(logging, "raiseExceptions", True)
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.fixture
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProviderStack]:
    with open_provider_stack(request.config, "midtrans_snap", "sqlite", tmp_path) as built:
        yield built


def _press(page_url: str, outcome: str) -> str:
    """The customer opens the Snap page and presses ``outcome`` (``http.client``: no logs);
    the Location."""
    status, _, page = browse("GET", page_url)
    assert status == 200
    forms = Forms()
    forms.feed(page.decode("utf-8"))
    action, hidden = forms.forms[f"snap-{outcome}"]
    status, location, _ = browse("POST", urljoin(page_url, action), form=hidden)
    assert status in (302, 303), status
    return location


class _Worker:
    stopping = False

    def alive(self) -> bool:
        return True


def _get(url: str) -> str:
    status, _, body = browse("GET", url)
    return f"{status} {body.decode('utf-8', 'replace')}"


def _scan_store(scanner: Scanner, stack: ProviderStack) -> None:
    ledger = stack.ledger
    for entry in ledger.journal(limit=10_000):
        scanner.add(f"journal {entry.kind}/{entry.verdict}", entry.body)
        scanner.add(f"journal reason {entry.kind}", entry.reason)
    for record in ledger.payments_for_order(stack.gateway_name, "MT-SECRET"):
        scanner.add_repr(f"record {record.merchant_reference}", record)
        assert record.id is not None
        for refund in ledger.refunds_for_payment(record.id):
            scanner.add_repr(f"refund {refund.refund_key}", refund)
        for transition in ledger.transitions(record.id):
            scanner.add(f"transition {transition.event_key}", transition.event_key)
    for event in ledger.outbox():
        scanner.add_repr("outbox", event)
        scanner.add(
            "outbox payload", json.dumps(event.payload) if hasattr(event, "payload") else ""
        )
        scanner.add("outbox error", getattr(event, "last_error", "") or "")


def test_midtrans_metrics_json_logs_and_health_show_no_secret(
    stack: ProviderStack, captured: pytest.LogCaptureFixture
) -> None:
    scanner = Scanner()
    errors: list[tuple[str, BaseException]] = []
    service, gateway = stack.service, stack.gateway
    metrics = Metrics(observe_provider_calls=True)
    service.metrics = metrics
    metrics.watch_outbox(stack.ledger)
    health = HealthServer(
        "127.0.0.1",
        0,
        {**worker_routes(_Worker(), stack.ledger), "/metrics": metrics_route(metrics)},  # type: ignore[arg-type]
    ).start()
    locations: list[str] = []
    try:
        # Create (phone and e-mail go to Midtrans), pay on the page, land on the return.
        started = stack.start("MT-SECRET", amount="50000")
        ref = started.payment.merchant_reference
        assert started.redirect is not None
        location = _press(started.redirect.url, "pay")
        locations.append(location)
        status, _, _ = browse("GET", location)
        assert status == 303
        stack.wait()
        assert stack.record(ref).status is PaymentStatus.PAID

        # A refund (the emulator sends its two webhooks), then the inquiry that lists it.
        refund = service.refund(stack.gateway_name, ref, Money("20000", "IDR"), key="MT-r1")
        stack.wait()
        service.inquire(stack.gateway_name, ref)
        scanner.add_repr("refund", refund)
        assert stack.record(ref).status is PaymentStatus.PARTIALLY_REFUNDED
        refund_hooks = stack.emulator.deliveries(order_id=ref, event="refund")
        assert len(refund_hooks) == 2  # acknowledged, bank confirmation included
        assert all(d["attempts"][-1]["http_status"] == 200 for d in refund_hooks)

        # A forged notification (guessed key) and a tampered amount (signature fails).
        record = stack.record(ref)
        forged = signed_notification(
            "SB-Mid-server-guessed", order_id=ref, status=PaymentStatus.PAID, amount=record.amount
        )
        status, _, _ = browse("POST", stack.notify_url, body=forged)
        assert status == 400
        expect(errors, "forged", BadSignature, gateway.handle_notification, forged)
        tampered = signed_notification(
            gateway, order_id=ref, status=PaymentStatus.REFUNDED, amount=record.amount
        )
        tampered = tampered.replace(b'"50000.00"', b'"1.00"')
        status, _, _ = browse("POST", stack.notify_url, body=tampered)
        assert status == 400

        # A gateway with the wrong server key: Midtrans answers 401.
        wrong = MidtransSnapGateway.from_config(
            {**stack.settings, "server_key": "SB-Mid-server-WRONG-KEY-0000000"}
        )
        expect(
            errors,
            "wrong key",
            ProviderConfigurationError,
            wrong.inquire,
            service.as_payment(record),
        )
        expect(
            errors,
            "unknown refund",
            GatewayError,
            service.refund,
            stack.gateway_name,
            ref,
            Money("999999", "IDR"),
        )

        # What an operator or a scraper reads.
        for name in ("/healthz", "/readyz", "/metrics", "/nope?x=" + MIDTRANS_SERVER_KEY):
            scanner.add(f"health {name}", _get(health.url + name))
        exposition, _ = metrics.render()
        scanner.add("metrics", exposition.decode())
        scanner.add(
            "metrics openmetrics", metrics.render("application/openmetrics-text")[0].decode()
        )
        for label, value in (
            ("gateway", gateway),
            ("config", gateway.config),
            ("client", getattr(gateway, "_client", None)),
            ("ledger", stack.ledger),
            ("metrics", metrics),
            ("started", started),
            ("redirect", started.redirect),
            ("request", stack.request("MT-SECRET")),
            ("payment", service.as_payment(record)),
            ("notification", gateway.handle_notification(stack.driver.provider_body(stack, ref))),
        ):
            scanner.add_repr(label, value)
        _scan_store(scanner, stack)
    finally:
        health.close()
        metrics.close()

    for where, exc in errors:
        scanner.add_exception(where, exc)
    scanner.add_records("log", captured.records)
    for index, record in enumerate(captured.records):
        scanner.add(f"json log [{index}]", JSON_LINES.format(record))

    # The secrets: the key, its Basic header, every signature Midtrans or the plugin made, the
    # customer's phone and e-mail.
    basic = base64.b64encode(f"{MIDTRANS_SERVER_KEY}:".encode()).decode()
    scanner.forbid("server key", MIDTRANS_SERVER_KEY, "SB-Mid-server-WRONG-KEY-0000000")
    scanner.forbid("basic header", basic, basic.rstrip("="))
    scanner.forbid("phone", PHONE, PHONE[1:], "+62" + PHONE[1:])
    scanner.forbid("e-mail", EMAIL)
    for delivery in stack.emulator.deliveries():
        scanner.forbid("signature_key", json.loads(delivery["body"])["signature_key"])
    for location in locations:
        for name, value in parse_qsl(urlsplit(location).query):
            if name == "snap_sig":
                scanner.forbid("return signature", value)
    assert len(scanner.forbidden) >= 8
    assert len(scanner.texts) > 200
    hits = scanner.hits()
    assert hits == [], "\n".join(hits[:20])


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_relay_never_shows_the_broker_password(captured: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("pika")
    from datetime import UTC, datetime

    from gateway_core import EventKind, PaymentEvent
    from gateway_rabbitmq_relay import RabbitRelay, RelayConfig

    password = "S3NT1NEL-amqp-Pw-7q2"
    url = f"amqp://gateway:{password}@127.0.0.1:{_closed_port()}/%2F"
    config = RelayConfig(url=url, connect_timeout=1.0)
    relay = RabbitRelay(config)
    event = PaymentEvent(
        event_id="shop:O-1-1:paid",
        kind=EventKind.PAID,
        provider="fake",
        order_reference="O-1",
        merchant_reference="O-1-1",
        status=PaymentStatus.PAID,
        amount=Money(Decimal("1000"), "IDR"),
        occurred_at=datetime.now(UTC),
    )
    scanner = Scanner()
    with pytest.raises(Exception) as info:
        relay.publish(event)
    scanner.add_exception("publish", info.value)
    scanner.add_repr("relay", relay)
    scanner.add_repr("config", config)
    scanner.add_records("log", captured.records)
    for record in captured.records:
        scanner.add("json", JSON_LINES.format(record))
        scanner.add("text", FORMATTER.format(record))
    scanner.forbid("broker password", password, url)
    assert scanner.hits() == []


def test_ovo_push_instructions_mask_the_phone() -> None:
    """What the customer's page shows for an OVO push, built the way the plugin builds it
    (the phone masked where ``provider_data`` keeps it), and its repr."""
    from gateway_faspay_dana._channels import CHANNELS, Family
    from gateway_faspay_dana._instructions import PHONE as PHONE_KEY
    from gateway_faspay_dana._instructions import PUSH, PUSH_SENT, instructions_for
    from gateway_faspay_dana._messages.ovo import mask_phone

    ovo = next(c for c in CHANNELS if c.family is Family.OVO)
    shown = instructions_for(
        ovo,
        {PHONE_KEY: mask_phone(PHONE), PUSH: PUSH_SENT},
        amount=Money("1000", "IDR"),
        expires_at=None,
        provider_reference="1234567890123456",
    )
    assert shown is not None
    scanner = Scanner()
    scanner.add_repr("instructions", shown)
    scanner.add("instructions text", shown.text)
    scanner.forbid("phone", PHONE, PHONE[1:], "+62" + PHONE[1:], PHONE[2:8])
    assert scanner.hits() == []
