"""The merchant-side plugin (``FaspayDanaGateway``) against the emulator over real HTTP:
channel inquiry, create, redirect, inquiry and cancel, the customer's browser flow to the
return URL, and notifications verified and acknowledged by the gateway."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest
import requests

try:
    from gateway_faspay_dana import FaspayDanaGateway
except ImportError:  # pragma: no cover - the provider is being written concurrently
    pytest.skip("FaspayDanaGateway is not available", allow_module_level=True)

from gateway_core import (
    Customer,
    GatewayError,
    LineItem,
    Money,
    NotificationRejected,
    Payment,
    PaymentRequest,
    PaymentStatus,
)
from gateway_faspay_dana.emulator import EmulatorApp, EmulatorServer, Merchant


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class Shop:
    """The merchant's web app: ``POST /notify`` and ``GET /return``, both through the gateway."""

    def __init__(self) -> None:
        self.gateway: Any = None
        self.notifications: list[Any] = []
        self.rejected: list[str] = []
        self.returns: list[Any] = []
        self.lock = threading.Lock()
        self.server = make_server(
            "127.0.0.1", 0, self.app, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path == "/notify":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            try:
                notification = self.gateway.handle_notification(body)
            except NotificationRejected as exc:
                with self.lock:
                    self.rejected.append(type(exc).__name__)
                ack = exc.acknowledgement
                assert ack is not None
            else:
                with self.lock:
                    self.notifications.append(notification)
                ack = self.gateway.acknowledge(notification)
            start_response(f"{ack.status_code} X", [("Content-Type", ack.content_type)])
            return [ack.body]
        if path == "/return":
            query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
            result = self.gateway.handle_return(query)
            with self.lock:
                self.returns.append(result)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [f"Thank you: {result.status.value}".encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class PayForm(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._inside = values.get("id") == "dana-pay"
            if self._inside:
                self.action = values["action"]
        elif tag == "input" and self._inside:
            self.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


@pytest.fixture
def shop() -> Iterator[Shop]:
    s = Shop()
    yield s
    s.close()


def start(shop: Shop, fmt: str = "json") -> EmulatorServer:
    merchant = Merchant(
        "99999",
        merchant_name="Sophia Store",
        notification_url=shop.base + "/notify",
        notification_format=fmt,  # type: ignore[arg-type]
        return_url=shop.base + "/return",
    )
    return EmulatorServer(EmulatorApp(merchant, retry_interval=0.05)).start()


@pytest.fixture
def emulator(shop: Shop) -> Iterator[EmulatorServer]:
    server = start(shop)
    yield server
    server.stop()


def make_gateway(emulator: EmulatorServer, **settings: Any) -> Any:
    values = {
        "merchant_id": "99999",
        "merchant_name": "Sophia Store",
        "password": "p@ssw0rd",
        "base_url": emulator.url,
        "deadline": 5,
        "read_timeout": 2,
    }
    values.update(settings)
    return FaspayDanaGateway.from_config(values, environ={})


@pytest.fixture
def gateway(emulator: EmulatorServer, shop: Shop) -> Iterator[Any]:
    gw = make_gateway(emulator)
    shop.gateway = gw
    yield gw
    gw.close()


def payment_request(bill_no: str) -> PaymentRequest:
    return PaymentRequest(
        order_reference="ORDER-" + bill_no,
        amount=Money("2000", "IDR"),
        customer=Customer("John Doe", "john@example.com", "08123456789"),
        description="Order " + bill_no,
        return_url="https://unused.example/return",
        items=[LineItem("Thing", 2, Money("1000", "IDR"))],
        merchant_reference=bill_no,
    )


def test_channel_inquiry(gateway: Any) -> None:
    channels = gateway.channel_inquiry()
    assert [(c.code, c.name) for c in channels] == [("819", "DANA")]


def test_create_redirect_inquire_cancel(gateway: Any, emulator: EmulatorServer) -> None:
    payment = gateway.create(payment_request("B-GW-1"))
    record = emulator.app.bill("B-GW-1")
    assert payment.status is PaymentStatus.PENDING
    assert payment.provider_reference == record["trx_id"]
    assert record["bill_total"] == "200000"
    assert gateway.redirect(payment).url == record["redirect_url"]
    rebuilt = Payment(
        provider=payment.provider,
        merchant_reference=payment.merchant_reference,
        status=payment.status,
        amount=payment.amount,
        provider_reference=payment.provider_reference,
    )
    assert gateway.redirect(rebuilt).url == record["redirect_url"]  # built, not echoed
    report = gateway.inquire(payment)
    assert (report.status, report.provider_status) == (PaymentStatus.PENDING, "0")
    cancelled = gateway.cancel(payment, "changed my mind")
    assert (cancelled.status, cancelled.provider_status) == (PaymentStatus.CANCELLED, "8")
    assert emulator.app.bill("B-GW-1")["status"] == "8"


def test_cancel_of_a_bill_paid_meanwhile_reports_it_paid(
    gateway: Any, emulator: EmulatorServer
) -> None:
    # Faspay refuses (81 Already Been Paid) and says the bill's status: the cancel does not
    # happen, and the caller learns the truth instead of an error.
    payment = gateway.create(payment_request("B-GW-2"))
    emulator.app.pay("B-GW-2")
    assert gateway.cancel(payment).status is PaymentStatus.PAID
    assert emulator.app.bill("B-GW-2")["status"] == "2"
    assert gateway.inquire(payment).status is PaymentStatus.PAID


def test_customer_flow_pay_return_and_notification(
    gateway: Any, emulator: EmulatorServer, shop: Shop
) -> None:
    payment = gateway.create(payment_request("B-GW-3"))
    with requests.Session() as browser:
        page = browser.get(gateway.redirect(payment).url, timeout=5)
        assert page.status_code == 200
        form = PayForm()
        form.feed(page.text)
        landing = browser.post(form.action, data=form.fields, timeout=5)  # follows the 302
    assert landing.status_code == 200
    assert landing.url.startswith(shop.base + "/return?trx_id=")
    assert landing.text == "Thank you: paid"
    [returned] = shop.returns
    assert returned.merchant_reference == "B-GW-3"
    assert emulator.app.wait_for_deliveries(10)
    [notification] = shop.notifications
    assert notification.status is PaymentStatus.PAID
    assert notification.provider_reference == payment.provider_reference
    assert notification.amount == Money("2000", "IDR")
    [delivery] = emulator.app.deliveries()
    assert delivery["state"] == "delivered"
    assert len(delivery["attempts"]) == 1
    assert gateway.inquire(payment).status is PaymentStatus.PAID


def test_xml_notifications_are_acknowledged_in_xml(shop: Shop) -> None:
    emulator = start(shop, fmt="xml")
    gateway = make_gateway(emulator, notification_format="xml")
    shop.gateway = gateway
    try:
        gateway.create(payment_request("B-GW-4"))
        emulator.app.fail("B-GW-4")
        assert emulator.app.wait_for_deliveries(10)
        [delivery] = emulator.app.deliveries()
    finally:
        gateway.close()
        emulator.stop()
    assert delivery["state"] == "delivered"
    assert delivery["attempts"][0]["reply"].lstrip().startswith("<")
    assert shop.notifications[0].status is PaymentStatus.FAILED


def test_a_legacy_signature_is_refused_and_retried_four_times(
    gateway: Any, emulator: EmulatorServer, shop: Shop
) -> None:
    gateway.create(payment_request("B-GW-5"))
    emulator.app.add_fault("notification", "legacy_signature")
    emulator.app.pay("B-GW-5")
    assert emulator.app.wait_for_deliveries(10)
    [delivery] = emulator.app.deliveries()
    assert delivery["state"] == "failed"
    assert [a["http_status"] for a in delivery["attempts"]] == [403] * 4
    assert shop.rejected == ["BadSignature"] * 4


def test_reply_lost_on_create_leaves_one_bill(gateway: Any, emulator: EmulatorServer) -> None:
    emulator.app.add_fault("create", "reset_after_read")
    with pytest.raises(GatewayError):
        gateway.create(payment_request("B-GW-6"))
    record = emulator.app.bill("B-GW-6")
    assert record["trx_ids"] == [record["trx_id"]]  # exactly one bill at "Faspay"
    assert record["create_requests"] == 1  # create is not blindly retried


def test_connections_are_pooled(gateway: Any, emulator: EmulatorServer) -> None:
    before = emulator.accept_count
    for number in range(5):
        gateway.create(payment_request(f"B-pool-{number}"))
    assert emulator.accept_count - before <= 1
