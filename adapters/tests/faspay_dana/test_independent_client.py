"""An independently written Faspay Debit client against the emulator, over loopback HTTP.

No third-party Faspay Debit client can be installed from the registries the suite reaches
(PyPI has only the SendMe disbursement SDKs; the Node library the reference cites, C7, is not
published on npm), so :mod:`independent_client` was written from the protocol reference alone
and uses nothing of ``gateway_faspay_dana`` or ``gateway_core``. The emulator is reached only
through HTTP: its Faspay endpoints with the client, its control API (``/_emulator/...``) with
plain ``requests`` to configure the merchant and to play the payer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import uuid4

import pytest
import requests
from independent_client import (
    WIB,
    FaspayDebitClient,
    FaspayDebitConfig,
    FaspayError,
    faspay_signature,
    parse_notification,
)

DANA = "819"
BCA_VA = "702"


class NotificationReceiver:
    """A merchant's notification URL on loopback: parses and verifies with the independent
    client, answers its ``00`` acknowledgement when the signature holds (else HTTP 403)."""

    def __init__(self, client: FaspayDebitClient) -> None:
        self.client = client
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fmt, fields = parse_notification(body)
                verified = receiver.client.verify_notification(fields)
                with receiver.lock:
                    receiver.received.append(
                        {"format": fmt, "fields": fields, "verified": verified, "body": body}
                    )
                if verified:
                    reply = receiver.client.acknowledgement(fields, fmt, datetime.now(WIB))
                    status = 200
                else:
                    reply, status = b"Signature Not Match", 403
                self.send_response(status)
                self.send_header("Content-Type", "text/xml" if fmt == "xml" else "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/faspay/notification"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def for_bill(self, bill_no: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.received if r["fields"].get("bill_no") == bill_no]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class Control:
    """The emulator's control API over HTTP (documented in docs/emulator.md)."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/") + "/_emulator"

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, expect: int = 200
    ) -> Any:
        reply = requests.request(method, self.base + path, json=body, timeout=10)
        assert reply.status_code == expect, (path, reply.status_code, reply.text)
        return reply.json()

    def configure(self, merchant_id: str, **settings: Any) -> Any:
        return self.call("POST", f"/merchants/{merchant_id}", settings)

    def wait(self) -> None:
        assert self.call("POST", "/wait", {"timeout": 10})["idle"] is True


@pytest.fixture
def client(faspay_merchant: dict[str, str]) -> Iterator[FaspayDebitClient]:
    """The client configured as its docstring says: merchant id, name, password, base URL."""
    config = FaspayDebitConfig(
        merchant_id=faspay_merchant["merchant_id"],
        merchant_name=faspay_merchant["merchant_name"],
        password=faspay_merchant["password"],
        base_url=faspay_merchant["base_url"],
    )
    with FaspayDebitClient(config) as faspay:
        yield faspay


@pytest.fixture
def control(faspay_merchant: dict[str, str]) -> Control:
    control = Control(faspay_merchant["base_url"])
    control.configure(faspay_merchant["merchant_id"], channels=[DANA, BCA_VA, "801"])
    return control


@pytest.fixture
def receiver(client: FaspayDebitClient) -> Iterator[NotificationReceiver]:
    server = NotificationReceiver(client)
    try:
        yield server
    finally:
        server.close()


def new_bill_no(prefix: str) -> str:
    return f"{prefix}-{uuid4().hex[:12].upper()}"


def create(client: FaspayDebitClient, channel: str, bill_no: str, **overrides: Any) -> Any:
    fields: dict[str, Any] = {
        "bill_no": bill_no,
        "channel": channel,
        "total_rupiah": 150_000,
        "customer_no": "CUST-0001",
        "customer_name": "Budi Santoso",
        "msisdn": "081234567890",
        "email": "budi@example.com",
        "description": "Kopi Luwak 100g",
        "lifetime": timedelta(hours=1) if channel == DANA else timedelta(days=1),
    }
    fields.update(overrides)
    return client.post_data(**fields)


def transfer_to_va(control: Control, va_number: str, rupiah: int, *, expect: int = 200) -> Any:
    """The payer's bank transfer to the VA (channels ref §14.2), through the control API; the
    amount in hundredths like ``bill_total``."""
    body = {"amount": str(rupiah * 100)}
    return control.call("POST", f"/va/{va_number}/transfer", body, expect=expect)


# --- the client's own signature code against the reference's vectors ------------------------


@pytest.mark.parametrize(
    ("parts", "expected"),
    [  # DANA ref §3.4: #1 channel inquiry, #3 DANA post data, #6 inquiry, #9 notification,
        # #10b notification with status, #11 return URL
        (("bot98765", "p@ssw0rd"), "e73f632e99308e424cac281b5d28c4cfc150e85b"),
        (("bot99999", "p@ssw0rd", "20201222023626"), "7ad74a4aa1c86aeb1308ea5c44e4aa0f4d6ed4e7"),
        (("bot98765", "p@ssw0rd", "9988776655"), "b03951a6051dfa90894eea48ccb964619e8b3474"),
        (
            ("bot31835", "p@ssw0rd", "220171004154635022158001", "2"),
            "075c4983ba9883d41e1b3eab0de580dfc73d875b",
        ),
        (("bot31025", "p@ssw0rd", "300134486", "2"), "b993b29c1fee46c20c0aad2b879167ed6cf70416"),
        (("bot99999", "p@ssw0rd", "4370", "0"), "0da33ad07fe9980f7b7ff70a964803e821a86866"),
    ],
)
def test_the_signature_reproduces_the_reference_vectors(
    parts: tuple[str, ...], expected: str
) -> None:
    assert faspay_signature(*parts) == expected


# --- against the emulator -------------------------------------------------------------------


def test_channel_inquiry_lists_dana_and_a_virtual_account(
    client: FaspayDebitClient, control: Control
) -> None:
    channels = client.channel_inquiry()
    assert channels[DANA] == "DANA"
    assert channels[BCA_VA] == "BCA Virtual Account"
    assert "801" in channels


def test_a_wrong_password_is_refused(faspay_merchant: dict[str, str], control: Control) -> None:
    config = FaspayDebitConfig(
        merchant_id=faspay_merchant["merchant_id"],
        merchant_name=faspay_merchant["merchant_name"],
        password="not-the-password",
        base_url=faspay_merchant["base_url"],
    )
    with FaspayDebitClient(config) as stranger, pytest.raises(FaspayError) as refused:
        stranger.channel_inquiry()
    assert refused.value.response_code != "00"


@pytest.mark.parametrize("notification_format", [None, "json"])
def test_va_paid_and_dana_cancelled_with_verified_notifications(
    client: FaspayDebitClient,
    control: Control,
    receiver: NotificationReceiver,
    notification_format: str | None,
) -> None:
    settings: dict[str, Any] = {"notification_url": receiver.url}
    if notification_format is not None:
        settings["notification_format"] = notification_format
    control.configure(client.config.merchant_id, **settings)
    expected_format = notification_format or "xml"  # the emulator's default (DANA ref §10.1)

    va_bill, dana_bill = new_bill_no("VA"), new_bill_no("DANA")
    va = create(client, BCA_VA, va_bill)
    dana = create(client, DANA, dana_bill)
    for answer, bill_no in ((va, va_bill), (dana, dana_bill)):
        assert answer["bill_no"] == bill_no
        assert answer["merchant_id"] == client.config.merchant_id
        assert len(answer["trx_id"]) == 16
        assert answer["trx_id"].isdigit()
        assert client.inquiry(answer["trx_id"], bill_no)["payment_status_code"] == "0"
    assert f"/{client.sign(dana_bill)}?" in dana["redirect_url"]  # DANA ref §6.4, §7

    # channels ref §3.3: the VA's trx_id is the number the payer transfers to
    transfer_to_va(control, va["trx_id"], 150_000)
    paid = client.inquiry(va["trx_id"], va_bill)
    assert paid["payment_status_code"] == "2"
    assert paid["payment_reff"]
    assert paid["payment_date"]
    datetime.strptime(paid["payment_date"], "%Y-%m-%d %H:%M:%S")

    cancelled = client.cancel(dana["trx_id"], dana_bill, "Barang Habis")
    assert cancelled["payment_status_code"] == "8"
    assert cancelled["payment_cancel"] == "Barang Habis"
    assert client.inquiry(dana["trx_id"], dana_bill)["payment_status_code"] == "8"

    control.wait()
    for bill_no, answer, status, channel in (
        (va_bill, va, "2", BCA_VA),
        (dana_bill, dana, "8", DANA),
    ):
        received = receiver.for_bill(bill_no)
        assert len(received) == 1, received
        note = received[0]
        assert note["format"] == expected_format
        assert note["verified"] is True
        fields = note["fields"]
        assert fields["trx_id"] == answer["trx_id"]
        assert fields["payment_status_code"] == status
        assert fields["payment_channel_uid"] == channel
        assert fields["bill_total"] == "15000000"
    assert receiver.for_bill(va_bill)[0]["fields"]["payment_total"] == "15000000"

    # the emulator took the independent acknowledgement: one attempt each, delivered
    deliveries = control.call("GET", "/deliveries")["deliveries"]
    for bill_no in (va_bill, dana_bill):
        mine = [d for d in deliveries if d.get("bill_no") == bill_no]
        assert len(mine) == 1, mine
        assert mine[0]["delivered"] is True, mine


def test_a_tampered_notification_fails_the_independent_check(
    client: FaspayDebitClient, control: Control, receiver: NotificationReceiver
) -> None:
    control.configure(client.config.merchant_id, notification_url=receiver.url)
    bill_no = new_bill_no("VA")
    va = create(client, BCA_VA, bill_no)
    transfer_to_va(control, va["trx_id"], 150_000)
    control.wait()
    [note] = receiver.for_bill(bill_no)
    fields = note["fields"]
    assert client.verify_notification(fields)
    assert not client.verify_notification({**fields, "payment_status_code": "3"})
    assert not client.verify_notification({**fields, "bill_no": bill_no + "X"})
    assert not client.verify_notification({**fields, "merchant_id": "12345"})


def test_a_paid_va_cannot_be_cancelled(client: FaspayDebitClient, control: Control) -> None:
    bill_no = new_bill_no("VA")
    va = create(client, BCA_VA, bill_no)
    transfer_to_va(control, va["trx_id"], 150_000)
    with pytest.raises(FaspayError) as refused:
        client.cancel(va["trx_id"], bill_no, "too late")
    assert refused.value.response_code == "81"  # DANA ref §15, docs/emulator.md
    assert client.inquiry(va["trx_id"], bill_no)["payment_status_code"] == "2"


def test_a_cancelled_va_refuses_a_later_transfer(
    client: FaspayDebitClient, control: Control
) -> None:
    bill_no = new_bill_no("VA")
    va = create(client, BCA_VA, bill_no)
    transfer_to_va(control, va["trx_id"], 149_999, expect=409)  # closed amount (§3.4)
    assert client.inquiry(va["trx_id"], bill_no)["payment_status_code"] == "0"
    assert client.cancel(va["trx_id"], bill_no, "order changed")["payment_status_code"] == "8"
    transfer_to_va(control, va["trx_id"], 150_000, expect=409)  # channels ref §14.2
    assert client.inquiry(va["trx_id"], bill_no)["payment_status_code"] == "8"


def test_the_xml_twins_create_and_inquire_a_va(client: FaspayDebitClient, control: Control) -> None:
    """Channels ref §9: ``/pws/...`` with ``<faspay>`` bodies, one model behind both forms."""
    bill_no = new_bill_no("VAX")
    fields = {
        "bill_no": bill_no,
        "channel": BCA_VA,
        "total_rupiah": 150_000,
        "customer_no": "CUST-0001",
        "customer_name": "Budi & Sons",  # escaped by the client (§9.2)
        "msisdn": "081234567890",
        "email": "budi@example.com",
        "description": "Kopi Luwak 100g",
        "lifetime": timedelta(days=1),
    }
    answer = client.post_data_xml(**fields)
    assert answer["bill_no"] == bill_no
    assert "redirect_url" not in answer  # "available only on JSON format" (§9.3)
    assert [item["amount"] for item in answer["bill_items"]] == ["15000000"]
    va_number = answer["trx_id"]
    assert client.inquiry_xml(va_number, bill_no)["payment_status_code"] == "0"
    assert client.inquiry(va_number, bill_no)["payment_status_code"] == "0"
    transfer_to_va(control, va_number, 150_000)
    assert client.inquiry_xml(va_number, bill_no)["payment_status_code"] == "2"


def test_a_36_character_cust_no_is_accepted_like_the_live_sandbox(
    client: FaspayDebitClient, control: Control
) -> None:
    bill_no = new_bill_no("DANA")
    answer = create(client, DANA, bill_no, customer_no=str(uuid4()))  # 36 characters
    assert client.inquiry(answer["trx_id"], bill_no)["payment_status_code"] == "0"
    record = control.call("GET", f"/bills/{bill_no}")
    assert any("cust_no" in note for note in record["leniencies"])  # shown to the developer


class TestStrictMode:
    """With ``strict`` the documented lengths apply (DANA ref §6.1: ``cust_no`` 32)."""

    @pytest.fixture
    def faspay_emulator_options(self) -> dict[str, Any]:
        return {"retry_interval": 0.05, "notification_timeout": 2.0, "strict": True}

    def test_a_36_character_cust_no_is_a_format_error(
        self, client: FaspayDebitClient, control: Control
    ) -> None:
        with pytest.raises(FaspayError) as refused:
            create(client, DANA, new_bill_no("DANA"), customer_no=str(uuid4()))
        assert refused.value.response_code == "30"
        accepted = create(client, DANA, new_bill_no("DANA"), customer_no="C" * 32)
        assert accepted["response_code"] == "00"
