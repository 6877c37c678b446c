"""Every source of status is checked like a notification (issue 9, item 9), and a request
refused by the plugin's own checks leaves nothing behind (item 8).

An inquiry answer (asked directly, after the customer's return, by reconcile, or to confirm a
notification) whose paid amount, merchant or transaction id disagrees with the ledger is a
``needs_review``, never a transition. The disagreeing answers come from a loopback proxy in
front of the Faspay emulator that rewrites the inquiry's ``payment_total``.
"""

from __future__ import annotations

import json
import threading
import wsgiref.simple_server
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests

from gateway_core import (
    Customer,
    EventKind,
    InvalidRequest,
    Money,
    PaymentRequest,
    PaymentStatus,
    Settings,
)
from gateway_core._runtime import build_runtime
from gateway_core.testing import HookRecorder
from gateway_faspay_dana.emulator import EmulatorApp, EmulatorServer, Merchant
from gateway_faspay_dana.testing import signed_notification, signed_return_query

GATEWAY = "dana"


class _Quiet(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class TamperingProxy:
    """Forwards every request to the emulator; while ``paid_total`` is set, inquiry answers
    report that as the amount paid (in Faspay's hundredths)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.paid_total: str | None = None
        self.session = requests.Session()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        path = environ.get("PATH_INFO", "")
        answer = self.session.request(
            environ["REQUEST_METHOD"],
            self.upstream + path,
            data=body,
            headers={"Content-Type": environ.get("CONTENT_TYPE", "application/json")},
            timeout=5,
        )
        content = answer.content
        if path.startswith("/cvr/100004/") and self.paid_total is not None:
            payload = json.loads(content)
            payload["payment_total"] = self.paid_total
            content = json.dumps(payload).encode()
        start_response(
            f"{answer.status_code} X",
            [("Content-Type", answer.headers.get("Content-Type", "application/json"))],
        )
        return [content]


@pytest.fixture
def world(suite: Any, sqlite_store: Any) -> Iterator[Any]:
    merchant = Merchant("99999", merchant_name="Test Store", password=suite.TEST_PASSWORD)
    emulator = EmulatorServer(EmulatorApp(merchant, retry_interval=0.05)).start()
    proxy = TamperingProxy(emulator.url)
    server = wsgiref.simple_server.make_server("127.0.0.1", 0, proxy, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    recorder = HookRecorder()
    settings = Settings.from_mapping(
        {
            "ledger": {"url": sqlite_store.url},
            "providers": {
                GATEWAY: {
                    "provider": "faspay_dana",
                    "merchant_id": "99999",
                    "merchant_name": "Test Store",
                    "password": suite.TEST_PASSWORD,
                    "base_url": f"http://127.0.0.1:{server.server_port}",
                    "read_timeout": 2.0,
                    "deadline": 6.0,
                    "max_retries": 1,
                }
            },
        }
    )
    runtime = build_runtime(settings, plugins=[recorder], environ={})
    world = type("World", (), {})()
    world.emulator, world.proxy, world.recorder = emulator, proxy, recorder
    world.service, world.ledger = runtime.service, runtime.ledger
    world.gateway = runtime.gateways[GATEWAY]
    try:
        yield world
    finally:
        runtime.close()
        server.shutdown()
        server.server_close()
        emulator.stop()


def _request(order: str, **changes: Any) -> PaymentRequest:
    values: dict[str, Any] = {
        "order_reference": order,
        "amount": Money("2000", "IDR"),
        "customer": Customer("Budi", email="budi@example.com", phone="081234567890"),
        "description": f"Order {order}",
        "return_url": "http://127.0.0.1:9/return",
    }
    values.update(changes)
    return PaymentRequest(**values)


def _paid_with_a_different_amount(world: Any, order: str) -> Any:
    record = world.service.start_payment(GATEWAY, _request(order)).payment
    world.emulator.app.add_fault(
        "notification", "drop", bill_no=record.merchant_reference, on_status="2"
    )
    world.emulator.app.pay(record.merchant_reference)
    world.proxy.paid_total = "100000"  # Rp 1.000,00 paid, the ledger expects Rp 2.000,00
    return record


def _assert_reviewed_not_paid(world: Any, record: Any) -> None:
    assert world.service.payment(GATEWAY, record.merchant_reference).status is (
        PaymentStatus.PENDING
    )
    assert world.recorder.of_kind(EventKind.PAID) == []
    reasons = [e.reason for e in world.recorder.of_kind(EventKind.NEEDS_REVIEW)]
    assert reasons == ["amount_mismatch"]


def test_an_inquiry_answer_with_another_amount_is_a_review_not_a_transition(world: Any) -> None:
    record = _paid_with_a_different_amount(world, "ORDER-INQ")
    world.service.inquire(GATEWAY, record.merchant_reference)
    _assert_reviewed_not_paid(world, record)


def test_a_reconcile_answer_with_another_amount_is_a_review_not_a_transition(world: Any) -> None:
    record = _paid_with_a_different_amount(world, "ORDER-REC")
    report = world.service.reconcile(min_interval=0, grace=timedelta(0))
    assert (report.examined, report.changed, report.reviews) == (1, 0, 1)
    _assert_reviewed_not_paid(world, record)


def test_a_return_whose_inquiry_answers_another_amount_is_a_review(world: Any) -> None:
    record = _paid_with_a_different_amount(world, "ORDER-RET")
    query = signed_return_query(
        world.gateway,
        bill_no=record.merchant_reference,
        trx_id=record.provider_reference,
        status="2",
        amount=record.amount,
    )
    world.service.handle_return(GATEWAY, query)
    _assert_reviewed_not_paid(world, record)


def test_a_notification_whose_confirming_inquiry_answers_another_amount_is_a_review(
    world: Any,
) -> None:
    record = _paid_with_a_different_amount(world, "ORDER-NOT")
    body = signed_notification(
        world.gateway,
        bill_no=record.merchant_reference,
        trx_id=record.provider_reference,
        status="2",
        amount=record.amount,
    )
    outcome = world.service.handle_notification(GATEWAY, body, {})
    assert (outcome.verdict, outcome.reason) == ("review", "amount_mismatch")
    _assert_reviewed_not_paid(world, record)


# -- item 8: refused before sending, nothing recorded ----------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"merchant_reference": "INV-2024-17"}, id="reference ending in a digit"),
        pytest.param({"merchant_reference": "INV 17X"}, id="reference with a space"),
        pytest.param({"amount": Money("20", "USD")}, id="wrong currency"),
        pytest.param({"customer": Customer("Budi", email="budi@example.com")}, id="no phone"),
    ],
)
def test_a_request_refused_by_the_plugins_checks_leaves_no_row_and_no_attempt_number(
    world: Any, changes: dict[str, Any]
) -> None:
    requests_before = len(world.emulator.app.requests_log("create"))
    with pytest.raises(InvalidRequest):
        world.service.start_payment(GATEWAY, _request("ORDER-BAD", **changes))
    assert world.ledger.payments_for_order(GATEWAY, "ORDER-BAD") == []
    assert len(world.emulator.app.requests_log("create")) == requests_before  # nothing sent
    good = world.service.start_payment(GATEWAY, _request("ORDER-BAD")).payment
    assert good.attempt == 1
    assert good.merchant_reference == "ORDER-BAD-1P"


def test_an_order_reference_longer_than_32_characters_can_be_paid(world: Any) -> None:
    order = "ORDER-" + "9" * 40
    record = world.service.start_payment(GATEWAY, _request(order)).payment
    assert len(record.merchant_reference) <= 32
    assert not record.merchant_reference[-1].isdigit()
    world.emulator.app.pay(record.merchant_reference)
    body = signed_notification(
        world.gateway,
        bill_no=record.merchant_reference,
        trx_id=record.provider_reference,
        status="2",
        amount=record.amount,
    )
    assert world.service.handle_notification(GATEWAY, body, {}).verdict == "applied"
    assert len(world.recorder.of_kind(EventKind.PAID)) == 1
    assert world.recorder.of_kind(EventKind.PAID)[0].order_reference == order


def test_a_paid_notification_the_provider_contradicts_applies_the_answer_and_is_refused(
    world: Any,
) -> None:
    """Notified "paid", Faspay answers "failed": the answer is applied (it is the provider's
    word), the notification gets the failure reply (unconfirmed), and no paid event fires."""
    record = world.service.start_payment(GATEWAY, _request("ORDER-CONTRA")).payment
    bill = record.merchant_reference
    world.emulator.app.add_fault("notification", "drop", bill_no=bill, on_status="3")
    world.emulator.app.fail(bill)
    body = signed_notification(
        world.gateway,
        bill_no=bill,
        trx_id=record.provider_reference,
        status="2",
        amount=record.amount,
    )
    outcome = world.service.handle_notification(GATEWAY, body, {})
    assert (outcome.verdict, outcome.reason) == ("rejected", "status_unconfirmed")
    assert not outcome.acknowledgement.accepted
    assert world.service.payment(GATEWAY, bill).status is PaymentStatus.FAILED
    assert world.recorder.of_kind(EventKind.PAID) == []
