"""Notifications delivered over real HTTP to a tiny merchant receiver: formats, signatures,
the retry rule (one attempt + three re-sends), every notification fault, clock-driven expiry
and reversal."""

from __future__ import annotations

import json
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

import defusedxml.ElementTree as SafeET
import pytest
import requests

from gateway_faspay_dana._signature import matches, sign
from gateway_faspay_dana.emulator import (
    EmulatorApp,
    EmulatorServer,
    Merchant,
    TransitionNotAllowed,
    example_post_data,
)

ACK = {"response": "Payment Notification", "response_code": "00", "response_desc": "Success"}


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class Receiver:
    """A merchant notification endpoint: records bodies, answers with ``reply(n)``."""

    def __init__(self, reply: Callable[[int], tuple[int, bytes]] | None = None) -> None:
        self.reply = reply or (lambda n: (200, json.dumps(ACK).encode()))
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.hold = 0.0
        self.server = make_server(
            "127.0.0.1", 0, self.app, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}/faspay/notify"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            number = len(self.received) + 1
            self.received.append(
                {"at": time.monotonic(), "type": environ.get("CONTENT_TYPE"), "body": body}
            )
        time.sleep(self.hold)
        with self.lock:
            self.in_flight -= 1
        status, reply = self.reply(number)
        start_response(f"{status} X", [("Content-Type", "application/json")])
        return [reply]

    def json(self) -> list[dict[str, str]]:
        return [json.loads(r["body"]) for r in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def run(receiver: Receiver, fmt: str = "json", **options: Any) -> EmulatorServer:
    merchant = Merchant(
        "99999",
        notification_url=receiver.url,
        notification_format=fmt,  # type: ignore[arg-type]
    )
    options.setdefault("retry_interval", 0.05)
    return EmulatorServer(EmulatorApp(merchant, **options)).start()


@pytest.fixture
def server(receiver: Receiver) -> Iterator[EmulatorServer]:
    srv = run(receiver)
    yield srv
    srv.stop()


def create(server: EmulatorServer, bill_no: str, **overrides: Any) -> str:
    body = example_post_data(Merchant("99999"), bill_no, **overrides)
    answer = requests.post(server.url + "/cvr/300011/10", json=body, timeout=5).json()
    assert answer["response_code"] == "00"
    return str(answer["trx_id"])


def settle(server: EmulatorServer) -> None:
    assert server.app.wait_for_deliveries(10)


# --- formats and content ----------------------------------------------------------------------


def test_paid_notification_in_json(server: EmulatorServer, receiver: Receiver) -> None:
    trx_id = create(server, "B-1")
    server.app.pay("B-1", payment_reff="DANA-REF-1")
    settle(server)
    [message] = receiver.json()
    assert receiver.received[0]["type"] == "application/json"
    assert list(message) == [
        "request",
        "trx_id",
        "merchant_id",
        "merchant",
        "bill_no",
        "payment_reff",
        "payment_date",
        "payment_status_code",
        "payment_status_desc",
        "bill_total",
        "payment_total",
        "payment_channel_uid",
        "payment_channel",
        "signature",
    ]
    assert message["trx_id"] == trx_id
    assert message["payment_status_code"] == "2"
    assert message["payment_status_desc"] == "Payment Success"
    assert message["bill_total"] == message["payment_total"] == "200000"
    assert (message["payment_channel_uid"], message["payment_channel"]) == ("819", "DANA")
    assert message["payment_reff"] == "DANA-REF-1"
    assert message["payment_date"] == server.app.bill("B-1")["payment_date"]
    assert matches(message["signature"], "bot99999", "p@ssw0rd", "B-1", "2")
    [delivery] = server.app.deliveries()
    assert delivery["state"] == "delivered"
    assert delivery["attempts"][0]["http_status"] == 200
    assert delivery["attempts"][0]["response_code"] == "00"


def test_xml_format_and_xml_acknowledgement(receiver: Receiver) -> None:
    receiver.reply = lambda n: (
        200,
        b'<?xml version="1.0" encoding="utf-8"?><faspay><response>Payment Notification'
        b"</response><response_code>00</response_code></faspay>",
    )
    server = run(receiver, fmt="xml")
    try:
        create(server, "B-xml", merchant="A & B <Store>")
        server.app.fail("B-xml")
        settle(server)
    finally:
        server.stop()
    [record] = receiver.received
    assert record["type"].startswith("text/xml")
    assert record["body"].startswith(b'<?xml version="1.0" encoding="utf-8"?>\n<faspay>')
    root = SafeET.fromstring(record["body"])
    assert root.tag == "faspay"
    fields = {child.tag: child.text or "" for child in root}
    assert fields["merchant"] == "A & B <Store>"
    assert fields["payment_status_code"] == "3"
    assert fields["payment_reff"] == "null"
    assert matches(fields["signature"], "bot99999", "p@ssw0rd", "B-xml", "3")
    assert server.app.deliveries()[0]["state"] == "delivered"


# --- retry rule -------------------------------------------------------------------------------


def test_a_receiver_answering_500_gets_exactly_four_attempts(receiver: Receiver) -> None:
    receiver.reply = lambda n: (500, b"oops")
    server = run(receiver, retry_interval=0.1)
    try:
        create(server, "B-500")
        server.app.pay("B-500")
        settle(server)
        [delivery] = server.app.deliveries()
    finally:
        server.stop()
    assert len(receiver.received) == 4
    assert delivery["state"] == "failed"
    assert [a["http_status"] for a in delivery["attempts"]] == [500] * 4
    assert [a["error"] for a in delivery["attempts"]] == ["HTTP 500"] * 4
    gaps = [
        b["at"] - a["at"] for a, b in zip(receiver.received, receiver.received[1:], strict=False)
    ]
    assert all(gap >= 0.09 for gap in gaps)


def test_http_200_without_response_code_00_is_not_delivered(receiver: Receiver) -> None:
    replies = [
        (200, b'{"response_code": "14", "response_desc": "Transaction Already Paid"}'),
        (200, b"Signature Not Match"),
        (200, json.dumps(ACK).encode()),
    ]
    receiver.reply = lambda n: replies[min(n, 3) - 1]
    server = run(receiver)
    try:
        create(server, "B-ack")
        server.app.pay("B-ack")
        settle(server)
        [delivery] = server.app.deliveries()
    finally:
        server.stop()
    assert len(receiver.received) == 3
    assert delivery["state"] == "delivered"
    assert [a["response_code"] for a in delivery["attempts"]] == ["14", None, "00"]


def test_an_unreachable_merchant_is_recorded() -> None:
    closed = Merchant("99999", notification_url="http://127.0.0.1:9/notify")
    server = EmulatorServer(EmulatorApp(closed, retry_interval=0.02)).start()
    try:
        create(server, "B-down")
        server.app.pay("B-down")
        settle(server)
        [delivery] = server.app.deliveries()
    finally:
        server.stop()
    assert delivery["state"] == "failed"
    assert len(delivery["attempts"]) == 4
    assert all("ConnectionRefused" in a["error"] for a in delivery["attempts"])


def test_no_notification_url_means_recorded_but_not_sent() -> None:
    server = EmulatorServer(EmulatorApp(Merchant("99999"))).start()
    try:
        create(server, "B-none")
        server.app.pay("B-none")
        settle(server)
        [delivery] = server.app.deliveries()
    finally:
        server.stop()
    assert delivery["state"] == "skipped"


# --- notification faults ----------------------------------------------------------------------


def test_duplicate(server: EmulatorServer, receiver: Receiver) -> None:
    create(server, "B-dup")
    server.app.add_fault("notification", "duplicate", times=2)
    server.app.pay("B-dup")
    settle(server)
    bodies = [r["body"] for r in receiver.received]
    assert len(bodies) == 3
    assert len(set(bodies)) == 1
    assert [d["kind"] for d in server.app.deliveries()] == ["original", "duplicate", "duplicate"]


def test_reorder_delivers_a_late_failed_after_paid(
    server: EmulatorServer, receiver: Receiver
) -> None:
    create(server, "B-ord")
    server.app.add_fault("notification", "reorder", status="3", on_status="2")
    server.app.pay("B-ord")
    settle(server)
    statuses = [m["payment_status_code"] for m in receiver.json()]
    assert statuses == ["2", "3"]
    late = receiver.json()[1]
    assert matches(late["signature"], "bot99999", "p@ssw0rd", "B-ord", "3")
    assert server.app.bill("B-ord")["status"] == "2"  # the bill itself stays paid


def test_drop_records_four_failed_attempts_and_sends_nothing(
    server: EmulatorServer, receiver: Receiver
) -> None:
    create(server, "B-drop")
    server.app.add_fault("notification", "drop")
    server.app.pay("B-drop")
    settle(server)
    assert receiver.received == []
    [delivery] = server.app.deliveries()
    assert delivery["state"] == "failed"
    assert len(delivery["attempts"]) == 4
    assert all("dropped" in a["error"] for a in delivery["attempts"])
    # Inquiry still tells the truth (what a reconciler relies on).
    assert server.app.bill("B-drop")["status"] == "2"


def test_burst_delivers_concurrently(server: EmulatorServer, receiver: Receiver) -> None:
    receiver.hold = 0.2
    create(server, "B-burst")
    server.app.add_fault("notification", "burst", times=6)
    server.app.pay("B-burst")
    settle(server)
    assert len(receiver.received) == 6
    assert receiver.max_in_flight >= 3  # released together by the barrier
    starts = [r["at"] for r in receiver.received]
    assert max(starts) - min(starts) < receiver.hold
    assert len({r["body"] for r in receiver.received}) == 1


def test_delay(server: EmulatorServer, receiver: Receiver) -> None:
    create(server, "B-late")
    server.app.add_fault("notification", "delay", seconds=0.3)
    started = time.monotonic()
    server.app.pay("B-late")
    assert not server.app.idle()
    settle(server)
    assert receiver.received[0]["at"] - started >= 0.3


def test_legacy_signature_leaves_out_the_status(server: EmulatorServer, receiver: Receiver) -> None:
    create(server, "B-legacy")
    server.app.add_fault("notification", "legacy_signature")
    server.app.pay("B-legacy")
    settle(server)
    [message] = receiver.json()
    assert message["signature"] == sign("bot99999", "p@ssw0rd", "B-legacy")
    assert not matches(message["signature"], "bot99999", "p@ssw0rd", "B-legacy", "2")


def test_notification_faults_filter_and_combine(server: EmulatorServer, receiver: Receiver) -> None:
    create(server, "B-a")
    create(server, "B-b")
    server.app.add_fault("notification", "drop", bill_no="B-b")
    server.app.add_fault("notification", "duplicate", on_status="2")
    server.app.add_fault("notification", "legacy_signature", on_status="2")
    server.app.fail("B-a")  # status 3: no fault matches
    server.app.pay("B-b")  # dropped, duplicated, legacy-signed
    settle(server)
    assert [m["bill_no"] for m in receiver.json()] == ["B-a"]
    kinds = {(d["bill_no"], d["kind"]): d for d in server.app.deliveries()}
    assert kinds[("B-b", "original")]["faults"] == ["drop", "duplicate", "legacy_signature"]
    assert kinds[("B-b", "duplicate")]["state"] == "failed"
    assert server.app.faults() == []


# --- state changes that notify ----------------------------------------------------------------


def test_clock_driven_expiry_notifies_7(server: EmulatorServer, receiver: Receiver) -> None:
    create(server, "B-exp")
    create(server, "B-later", expires_in=timedelta(hours=2))
    assert server.app.advance_clock(3599) == []
    assert server.app.advance_clock(2) == ["B-exp"]
    settle(server)
    [message] = receiver.json()
    assert (message["bill_no"], message["payment_status_code"]) == ("B-exp", "7")
    assert message["payment_status_desc"] == "Payment Expired"
    assert server.app.bill("B-later")["status"] == "0"
    with requests.Session() as http:
        answer = http.post(
            server.url + "/_emulator/clock/advance", json={"seconds": 3600}, timeout=5
        ).json()
    assert answer["expired"] == ["B-later"]


def test_bills_expire_in_real_time_too(receiver: Receiver) -> None:
    merchant = Merchant("99999", notification_url=receiver.url, notification_format="json")
    app = EmulatorApp(merchant, retry_interval=0.05)
    with EmulatorServer(app, tick_interval=0.05) as server:
        # Due in 2 s of real time: enough for the create to land first on a loaded machine.
        opened = app.clock.now() - timedelta(minutes=59, seconds=58)
        create(server, "B-rt", now=opened, expires_in=timedelta(hours=1))
        assert app.bill("B-rt")["status"] == "0"
        deadline = time.monotonic() + 8
        while app.bill("B-rt")["status"] != "7" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.bill("B-rt")["status"] == "7"
        settle(server)
    assert [m["payment_status_code"] for m in receiver.json()] == ["7"]


def test_cancel_and_reversal_notify(server: EmulatorServer, receiver: Receiver) -> None:
    trx_id = create(server, "B-can")
    body = {
        "trx_id": trx_id,
        "merchant_id": "99999",
        "bill_no": "B-can",
        "payment_cancel": "Barang Habis",
        "signature": sign("bot99999", "p@ssw0rd", "B-can"),
    }
    requests.post(server.url + "/cvr/100005/10", json=body, timeout=5)
    create(server, "B-rev")
    server.app.pay("B-rev")
    with pytest.raises(TransitionNotAllowed):
        server.app.reverse("B-can")
    server.app.reverse("B-rev")
    settle(server)
    got = [(m["bill_no"], m["payment_status_code"]) for m in receiver.json()]
    assert sorted(got) == [("B-can", "8"), ("B-rev", "2"), ("B-rev", "4")]
    reversal = next(m for m in receiver.json() if m["payment_status_code"] == "4")
    assert reversal["payment_reff"] == server.app.bill("B-rev")["payment_reff"]
    assert matches(reversal["signature"], "bot99999", "p@ssw0rd", "B-rev", "4")


def test_manual_notify_resends_or_scripts_a_status(
    server: EmulatorServer, receiver: Receiver
) -> None:
    create(server, "B-man")
    server.app.pay("B-man")
    settle(server)
    server.app.notify("B-man")
    settle(server)
    server.app.notify("B-man", status="1")
    settle(server)
    assert [m["payment_status_code"] for m in receiver.json()] == ["2", "2", "1"]
    assert server.app.bill("B-man")["status"] == "2"


def test_reset_forgets_everything(server: EmulatorServer, receiver: Receiver) -> None:
    create(server, "B-reset")
    server.app.add_fault("notification", "delay", seconds=5)
    server.app.pay("B-reset")
    server.app.reset()
    settle(server)
    assert server.app.bills() == []
    assert server.app.deliveries() == []
    assert server.app.requests_log() == []
    assert receiver.received == []
