"""The emulator's four JSON endpoints over real HTTP: parsing tolerances, validation codes,
stateful bills (inquiry, cancel, duplicates), all with a plain ``requests`` client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from gateway_faspay_dana._signature import sign
from gateway_faspay_dana.emulator import (
    EmulatorApp,
    EmulatorClock,
    EmulatorServer,
    Merchant,
    example_post_data,
)

MERCHANT = Merchant("99999", merchant_name="Sophia Store", password="p@ssw0rd")
OTHER = Merchant("31835", merchant_name="Other Shop", password="s3cret-other", channels=("812",))
JAKARTA_NOW = datetime.now().astimezone()


def start(**options: Any) -> EmulatorServer:
    options.setdefault("retry_interval", 0.05)
    app = EmulatorApp([MERCHANT, OTHER], **options)
    return EmulatorServer(app).start()


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    srv = start()
    yield srv
    srv.stop()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def post(http: requests.Session, server: EmulatorServer, path: str, body: Any) -> Any:
    response = http.post(server.url + path, json=body, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()


def create(http: requests.Session, server: EmulatorServer, bill_no: str, **overrides: Any) -> Any:
    return post(http, server, "/cvr/300011/10", example_post_data(MERCHANT, bill_no, **overrides))


def reference(bill_no: str, trx_id: str, *, merchant: Merchant = MERCHANT) -> dict[str, Any]:
    return {
        "request": "Inquiry Status Payment",
        "trx_id": trx_id,
        "merchant_id": merchant.merchant_id,
        "bill_no": bill_no,
        "signature": sign(merchant.user_id, merchant.password, bill_no),
    }


def inquire(http: requests.Session, server: EmulatorServer, bill_no: str, trx_id: str) -> Any:
    return post(http, server, "/cvr/100004/10", reference(bill_no, trx_id))


def cancel(http: requests.Session, server: EmulatorServer, bill_no: str, trx_id: str) -> Any:
    body = {**reference(bill_no, trx_id), "payment_cancel": "Barang Habis"}
    return post(http, server, "/cvr/100005/10", body)


# --- channel inquiry --------------------------------------------------------------------------


def test_channel_inquiry_lists_the_enabled_channels(
    server: EmulatorServer, http: requests.Session
) -> None:
    body = {"request": "x", "merchant_id": "99999", "signature": sign("bot99999", "p@ssw0rd")}
    answer = post(http, server, "/cvr/100001/10", body)
    assert answer["response_code"] == "00"
    assert answer["merchant"] == "Sophia Store"
    assert answer["payment_channel"] == [{"pg_code": "819", "pg_name": "DANA"}]


@pytest.mark.parametrize(
    ("user", "password", "code"),
    [
        ("99999", "p@ssw0rd", "55"),  # the bare merchant_id instead of bot<merchant_id>
        ("bot99999", "wrong", "55"),
        ("bot99999", "p@ssw0rd", "00"),
    ],
)
def test_channel_inquiry_signature(
    server: EmulatorServer, http: requests.Session, user: str, password: str, code: str
) -> None:
    body = {"merchant_id": "99999", "signature": sign(user, password)}
    assert post(http, server, "/cvr/100001/10", body)["response_code"] == code


def test_unknown_merchant_is_03(server: EmulatorServer, http: requests.Session) -> None:
    body = {"merchant_id": "12345", "signature": sign("bot12345", "p@ssw0rd")}
    assert post(http, server, "/cvr/100001/10", body)["response_code"] == "03"


# --- post data: success and tolerances --------------------------------------------------------


def test_create_answers_like_the_dana_example(
    server: EmulatorServer, http: requests.Session
) -> None:
    answer = create(http, server, "20201222023626")
    assert answer["response_code"] == "00"
    assert answer["response_desc"] == "Success"
    assert answer["response"] == "Transmission of Purchase Detail Info"
    trx_id = answer["trx_id"]
    assert len(trx_id) == 16
    assert trx_id.startswith("99999819")
    assert answer["bill_items"]["product"] == "Invoice #20201222023626"  # object echoed
    signature = sign("bot99999", "p@ssw0rd", "20201222023626")
    assert answer["redirect_url"] == (
        f"{server.url}/pws/100003/0830000010100000/{signature}"
        f"?trx_id={trx_id}&merchant_id=99999&bill_no=20201222023626"
    )
    record = server.app.bill("20201222023626")
    assert record["status"] == "0"
    assert record["bill_total"] == "200000"
    assert record["create_requests"] == 1


def test_create_tolerates_numbers_arrays_pay_type_1_unknown_fields_and_any_content_type(
    server: EmulatorServer, http: requests.Session
) -> None:
    body = example_post_data(
        MERCHANT,
        "B-2",
        merchant_id=99999,
        bill_total=200000,
        payment_channel=819,
        pay_type=1,
        terminal=10,
        trx_source="PHP SDK",
        bill_tax="",
        item=[
            {
                "product": "A",
                "qty": 1,
                "amount": "100000",
                "payment_plan": "1",
                "merchant_id": 99999,
                "tenor": "00",
            },
            {
                "product": "B",
                "qty": "2",
                "amount": 50000,
                "payment_plan": "01",
                "merchant_id": "99999",
                "tenor": "00",
            },
        ],
    )
    response = http.post(
        server.url + "/cvr/300011/10",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "text/plain;charset=UTF-8"},
        timeout=5,
    )
    answer = response.json()
    assert answer["response_code"] == "00", answer
    assert [item["amount"] for item in answer["bill_items"]] == ["100000", "50000"]


def test_legacy_two_decimal_amount_is_read_as_rupiah(
    server: EmulatorServer, http: requests.Session
) -> None:
    answer = create(http, server, "B-legacy", bill_total="2000.00", bill_tax="0.00")
    assert answer["response_code"] == "00"
    assert server.app.bill("B-legacy")["bill_total"] == "200000"


# --- post data: rejections --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"signature": sign("99999", "p@ssw0rd", "B-x")}, "55"),  # merchant_id, not bot<id>
        ({"signature": sign("bot99999", "wrong", "B-x")}, "55"),
        ({"signature": sign("bot99999", "p@ssw0rd", "other")}, "55"),
        ({"signature": None}, "83"),
        ({"merchant_id": "12345"}, "03"),
        ({"bill_total": "2000.5"}, "13"),
        ({"bill_total": 2000.5}, "13"),
        ({"bill_total": "1,000"}, "13"),
        ({"bill_total": "-100"}, "13"),
        ({"bill_total": "0"}, "13"),
        ({"bill_total": "1" * 16}, "13"),
        ({"bill_gross": "10.5"}, "13"),
        ({"bill_currency": "USD"}, "30"),
        ({"bill_expired": "2099-01-01 00:00:00"}, "30"),  # more than 30 days after bill_date
        ({"bill_date": "2026/01/01 10:00:00"}, "30"),
        ({"bill_desc": "x" * 129}, "30"),
        ({"merchant": "m" * 33}, "30"),
        ({"msisdn": "08-12"}, "30"),
        ({"pay_type": "02"}, "30"),
        ({"email": None}, "83"),
        ({"cust_name": ""}, "83"),
        ({"item": []}, "83"),
        ({"item": {"product": "A", "qty": "1", "amount": "1"}}, "83"),
        ({"item": "A"}, "30"),
    ],
)
def test_create_rejections(
    server: EmulatorServer, http: requests.Session, overrides: dict[str, Any], code: str
) -> None:
    server.app.strict = True  # the documented lengths (lenient mode: test_emulator_channels_xml)
    answer = create(http, server, "B-x", **overrides)
    assert answer["response_code"] == code, answer
    assert "trx_id" not in answer
    assert server.app.bills() == []


def test_expiry_exactly_30_days_is_accepted_and_31_is_not(
    server: EmulatorServer, http: requests.Session
) -> None:
    thirty = create(http, server, "B-30", expires_in=timedelta(days=30))
    assert thirty["response_code"] == "00"
    later = create(http, server, "B-31", expires_in=timedelta(days=30, seconds=1))
    assert later["response_code"] == "30"
    before = create(http, server, "B-neg", expires_in=timedelta(seconds=0))
    assert before["response_code"] == "30"


def test_channel_not_enabled_is_40_in_the_response_error_wrapper(
    server: EmulatorServer, http: requests.Session
) -> None:
    answer = create(http, server, "B-ovo", payment_channel="812")
    assert answer == {
        "response_error": {
            "response_code": "40",
            "response_desc": "Requested Function not Supported",
        }
    }


@pytest.mark.parametrize(
    ("mode", "status", "expected"),
    [
        ("format_error", 200, {"response_code": "30"}),
        ("response_error", 200, {"response_error": {"response_code": "30"}}),
        ("http_400", 400, None),
    ],
)
def test_malformed_json_modes(mode: str, status: int, expected: Any) -> None:
    server = start(malformed_request=mode)
    try:
        response = requests.post(server.url + "/cvr/300011/10", data=b'{"bill_no": ', timeout=5)
        assert response.status_code == status
        if expected is not None:
            answer = response.json()
            if "response_error" in expected:
                assert answer["response_error"]["response_code"] == "30"
            else:
                assert answer["response_code"] == "30"
    finally:
        server.stop()


# --- duplicate bill_no ------------------------------------------------------------------------


def test_duplicate_bill_no_returns_the_existing_bill_by_default(
    server: EmulatorServer, http: requests.Session
) -> None:
    first = create(http, server, "B-dup")
    second = create(http, server, "B-dup")
    assert second["trx_id"] == first["trx_id"]
    assert second["redirect_url"] == first["redirect_url"]
    record = server.app.bill("B-dup")
    assert record["trx_ids"] == [first["trx_id"]]
    assert record["create_requests"] == 2
    assert len(server.app.bills()) == 1


def test_duplicate_bill_no_reject_mode() -> None:
    server = start(duplicate_bill_no="reject")
    try:
        with requests.Session() as http:
            assert create(http, server, "B-dup")["response_code"] == "00"
            assert create(http, server, "B-dup")["response_code"] == "14"
        assert len(server.app.bills()) == 1
    finally:
        server.stop()


def test_duplicate_bill_no_new_bill_mode() -> None:
    server = start(duplicate_bill_no="new_bill")
    try:
        with requests.Session() as http:
            first = create(http, server, "B-dup")
            second = create(http, server, "B-dup")
        assert first["trx_id"] != second["trx_id"]
        assert server.app.bill("B-dup")["trx_ids"] == [first["trx_id"], second["trx_id"]]
    finally:
        server.stop()


# --- inquiry ----------------------------------------------------------------------------------


def test_inquiry_follows_the_bill(server: EmulatorServer, http: requests.Session) -> None:
    trx_id = create(http, server, "B-inq")["trx_id"]
    answer = inquire(http, server, "B-inq", trx_id)
    assert answer["response_code"] == "00"
    assert answer["payment_status_code"] == "0"
    assert answer["payment_status_desc"] == "Unprocessed"
    assert answer["payment_reff"] == answer["payment_date"] == ""
    server.app.open("B-inq")
    assert inquire(http, server, "B-inq", trx_id)["payment_status_code"] == "1"
    server.app.pay("B-inq", payment_reff="REF123")
    paid = inquire(http, server, "B-inq", trx_id)
    assert paid["payment_status_code"] == "2"
    assert paid["payment_status_desc"] == "Payment Success"
    assert paid["payment_reff"] == "REF123"
    assert len(paid["payment_date"]) == 19


def test_inquiry_of_an_unknown_pair_is_14_with_status_5(
    server: EmulatorServer, http: requests.Session
) -> None:
    trx_id = create(http, server, "B-inq")["trx_id"]
    answer = post(http, server, "/cvr/100004/10", reference("B-other", trx_id))
    assert (answer["response_code"], answer["payment_status_code"]) == ("14", "5")


def test_inquiry_rejects_a_bad_signature(server: EmulatorServer, http: requests.Session) -> None:
    trx_id = create(http, server, "B-inq")["trx_id"]
    body = {**reference("B-inq", trx_id), "signature": sign("99999", "p@ssw0rd", "B-inq")}
    assert post(http, server, "/cvr/100004/10", body)["response_code"] == "55"
    missing = {**reference("B-inq", trx_id), "trx_id": None}
    assert post(http, server, "/cvr/100004/10", missing)["response_code"] == "83"


def test_inquiry_and_cancel_of_an_expired_bill_answer_54(
    server: EmulatorServer, http: requests.Session
) -> None:
    trx_id = create(http, server, "B-exp", expires_in=timedelta(minutes=5))["trx_id"]
    server.app.advance_clock(301)
    answer = inquire(http, server, "B-exp", trx_id)
    assert (answer["response_code"], answer["payment_status_code"]) == ("54", "7")
    cancelled = cancel(http, server, "B-exp", trx_id)
    assert cancelled["response_code"] == "54"
    assert (cancelled["trx_status_code"], cancelled["trx_status_desc"]) == ("3", "Order Expired")
    assert cancelled["payment_status_code"] == "7"
    assert cancelled["payment_cancel_date"] == ""
    assert cancelled["payment_cancel"] == "Barang Habis"


# --- cancel -----------------------------------------------------------------------------------


def test_cancel_an_unpaid_bill_then_again(server: EmulatorServer, http: requests.Session) -> None:
    trx_id = create(http, server, "B-can")["trx_id"]
    answer = cancel(http, server, "B-can", trx_id)
    assert answer["response_code"] == "00"
    assert answer["payment_status_code"] == "8"
    assert answer["payment_status_desc"] == "Payment Cancelled"
    assert len(answer["payment_cancel_date"]) == 19
    assert server.app.bill("B-can")["cancel_reason"] == "Barang Habis"
    again = cancel(http, server, "B-can", trx_id)
    assert (again["response_code"], again["payment_status_code"]) == ("17", "8")


def test_cancel_of_a_paid_bill_is_81(server: EmulatorServer, http: requests.Session) -> None:
    trx_id = create(http, server, "B-paid")["trx_id"]
    server.app.pay("B-paid")
    answer = cancel(http, server, "B-paid", trx_id)
    assert (answer["response_code"], answer["payment_status_code"]) == ("81", "2")
    assert server.app.bill("B-paid")["status"] == "2"
    server.app.reverse("B-paid")
    assert cancel(http, server, "B-paid", trx_id)["response_code"] == "80"


def test_cancel_needs_a_reason(server: EmulatorServer, http: requests.Session) -> None:
    trx_id = create(http, server, "B-can")["trx_id"]
    answer = post(http, server, "/cvr/100005/10", reference("B-can", trx_id))
    assert answer["response_code"] == "83"


def test_bills_are_per_merchant(server: EmulatorServer, http: requests.Session) -> None:
    """The other merchant's credentials cannot see or cancel this merchant's bill."""
    trx_id = create(http, server, "B-own")["trx_id"]
    body = {**reference("B-own", trx_id, merchant=OTHER), "payment_cancel": "x"}
    answer = post(http, server, "/cvr/100005/10", body)
    assert (answer["response_code"], answer["payment_status_code"]) == ("14", "5")
    assert server.app.bill("B-own")["status"] == "0"


def test_indonesian_texts() -> None:
    server = start(language="id")
    try:
        with requests.Session() as http:
            answer = create(http, server, "B-id")
            assert answer["response_desc"] == "Sukses"
            assert answer["response"] == "Transmisi Info Detil Pembelian"
            server.app.pay("B-id")
            paid = inquire(http, server, "B-id", answer["trx_id"])
            assert paid["payment_status_desc"] == "Payment Sukses"
            assert paid["response"] == "Pengecekan Status Pembayaran"
    finally:
        server.stop()


def test_clock_is_jakarta_wall_time_and_advances() -> None:
    clock = EmulatorClock()
    assert clock.now().utcoffset() == timedelta(hours=7)
    before = clock.now()
    clock.advance(3600)
    assert clock.now() - before >= timedelta(seconds=3600)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_wrong_method_and_unknown_path(server: EmulatorServer, http: requests.Session) -> None:
    assert http.get(server.url + "/cvr/300011/10", timeout=5).status_code == 405
    assert http.get(server.url + "/nope", timeout=5).status_code == 404
    index = http.get(server.url + "/", timeout=5).json()
    assert index["endpoints"]["create"] == server.url + "/cvr/300011/10"
    assert "p@ssw0rd" not in json.dumps(index)
