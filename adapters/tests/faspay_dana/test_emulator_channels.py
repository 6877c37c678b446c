"""Every channel family over real HTTP on loopback (channels reference §1, §3–§6, §14): create
by raw post data → the family's simulated payer via the control API → the notification arrives
and verifies with the plugin → inquiry shows it paid; expiry, cancel and refusals per family."""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator

import pytest
import requests
from emulator_channels_support import (
    FAMILY_OF,
    MERCHANT_ID,
    Receiver,
    cancel,
    control,
    create,
    gateway_for,
    inquire,
    merchant,
    parse_fields,
    pay,
    start,
    wait,
)

from gateway_core import BadSignature, PaymentStatus
from gateway_faspay_dana._signature import channel_inquiry_signature, matches
from gateway_faspay_dana.emulator import EmulatorServer, Merchant


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def shop(receiver: Receiver) -> Merchant:
    return merchant(receiver)


@pytest.fixture
def server(shop: Merchant) -> Iterator[EmulatorServer]:
    srv = start(shop)
    yield srv
    srv.stop()


def _crc_ok(payload: str) -> bool:
    # binascii.crc_hqx is CRC-16/CCITT (poly 0x1021); init 0xFFFF makes it CCITT-FALSE (EMVCo).
    body, tail = payload[:-4], payload[-4:]
    return body.endswith("6304") and f"{binascii.crc_hqx(body.encode(), 0xFFFF):04X}" == tail


@pytest.mark.parametrize("code", sorted(FAMILY_OF))
def test_create_pay_notify_inquire_per_channel(
    code: str, server: EmulatorServer, shop: Merchant, receiver: Receiver
) -> None:
    family = FAMILY_OF[code]
    bill_no = f"B-{code}-1"
    answer = create(server, shop, bill_no, code)
    assert answer["response_code"] == "00", answer
    trx_id = answer["trx_id"]
    if code == "402":
        assert re.fullmatch(rf"8985{MERCHANT_ID}\d{{7}}", trx_id)
    else:
        assert re.fullmatch(rf"{MERCHANT_ID}{code}\d{{8}}", trx_id)
    assert answer["redirect_url"].startswith(server.url + "/pws/100003/")
    if family == "qris":
        assert answer["qr_content"].startswith("000201")
        assert _crc_ok(answer["qr_content"])
        assert answer["external_id"] == ""
        image = requests.get(answer["web_url"], timeout=5)
        assert image.status_code == 200
        assert image.headers["Content-Type"] == "image/svg+xml"
        assert b"<svg" in image.content
        assert requests.get(answer["alt_url"], timeout=5).status_code == 200
    else:
        assert "qr_content" not in answer
        assert "web_url" not in answer

    status, record = pay(server, shop, bill_no, trx_id, family)
    assert status == 200, record
    assert record["status"] == "2"
    assert record["payment_date"]
    wait(server)
    [body] = receiver.bodies
    assert body.startswith(b"<?xml")  # the default notification format
    fields = parse_fields(body)
    assert fields["payment_channel_uid"] == code
    assert fields["payment_status_code"] == "2"
    assert fields["payment_total"] == fields["bill_total"] == "200000"
    assert matches(fields["signature"], shop.user_id, shop.password, bill_no, "2")
    reff = fields["payment_reff"]
    assert reff == record["payment_reff"]
    if family == "virtual_account":
        assert reff.isdigit()
    notification = gateway_for(server, shop).handle_notification(body, {})
    assert notification.status is PaymentStatus.PAID
    assert notification.provider_reference == trx_id

    inquiry = inquire(server, shop, bill_no, trx_id)
    assert (inquiry["response_code"], inquiry["payment_status_code"]) == ("00", "2")
    assert inquiry["payment_reff"] == reff


@pytest.mark.parametrize("code", ["801", "402", "707", "836", "812", "302"])
def test_expiry_per_family_notifies_7_and_refuses_payers(
    code: str, server: EmulatorServer, shop: Merchant, receiver: Receiver
) -> None:
    family = FAMILY_OF[code]
    answer = create(server, shop, f"E-{code}", code)
    trx_id = answer["trx_id"]
    expired = control(server, "clock/advance", {"seconds": 3601})[1]["expired"]
    assert expired == [f"E-{code}"]
    wait(server)
    assert [parse_fields(b)["payment_status_code"] for b in receiver.bodies] == ["7"]
    if family == "ovo":
        status, refused = control(server, f"ovo/{trx_id}/respond", {"action": "approve"})
    else:
        status, refused = pay(server, shop, f"E-{code}", trx_id, family)
    assert (status, refused.get("reason")) == (409, "expired"), refused
    inquiry = inquire(server, shop, f"E-{code}", trx_id)
    assert (inquiry["response_code"], inquiry["payment_status_code"]) == ("54", "7")


@pytest.mark.parametrize("code", ["800", "706", "715", "812", "716", "819"])
def test_cancel_per_family_closes_the_bill(
    code: str, server: EmulatorServer, shop: Merchant, receiver: Receiver
) -> None:
    family = FAMILY_OF[code]
    trx_id = create(server, shop, f"C-{code}", code)["trx_id"]
    answer = cancel(server, shop, f"C-{code}", trx_id)
    assert (answer["response_code"], answer["payment_status_code"]) == ("00", "8")
    if family == "ovo":
        status, refused = control(server, f"ovo/{trx_id}/respond", {"action": "approve"})
    else:
        status, refused = pay(server, shop, f"C-{code}", trx_id, family)
    assert (status, refused.get("reason")) == (409, "cancelled"), refused
    wait(server)
    assert [parse_fields(b)["payment_status_code"] for b in receiver.bodies] == ["8"]


@pytest.mark.parametrize("code", ["802", "707", "711"])
def test_paying_twice_is_refused_and_cancel_of_paid_is_81(
    code: str, server: EmulatorServer, shop: Merchant, receiver: Receiver
) -> None:
    family = FAMILY_OF[code]
    trx_id = create(server, shop, f"P-{code}", code)["trx_id"]
    assert pay(server, shop, f"P-{code}", trx_id, family)[0] == 200
    status, refused = pay(server, shop, f"P-{code}", trx_id, family)
    assert status == 409
    assert refused["reason"] == "already_paid"
    assert cancel(server, shop, f"P-{code}", trx_id)["response_code"] == "81"
    wait(server)
    assert len(receiver.bodies) == 1


def test_va_amount_mismatch_is_refused_by_default(
    server: EmulatorServer, shop: Merchant, receiver: Receiver
) -> None:
    trx_id = create(server, shop, "M-1", "702")["trx_id"]
    status, refused = control(server, f"va/{trx_id}/transfer", {"amount": "199900"})
    assert status == 409
    assert refused["reason"] == "amount_mismatch"
    assert server.app.bill("M-1")["status"] == "0"
    assert control(server, "va/1234567890123456/transfer", {})[0] == 404
    assert control(server, f"retail/{trx_id}/pay", {})[0] == 404  # a VA, not a payment code


def test_amount_mismatch_accepted_when_configured(receiver: Receiver) -> None:
    shop = merchant(receiver, notification_format="json")
    server = start(shop, accept_amount_mismatch=True)
    try:
        trx_id = create(server, shop, "M-2", "408")["trx_id"]
        status, record = control(server, f"va/{trx_id}/transfer", {"amount": "250000"})
        assert status == 200
        assert record["payment_total"] == "250000"
        wait(server)
        [fields] = receiver.fields()
        assert (fields["bill_total"], fields["payment_total"]) == ("200000", "250000")
    finally:
        server.stop()


def test_channel_inquiry_lists_the_enabled_set_and_disabled_channels_get_40() -> None:
    shop = merchant(channels=("819", "801", "711"))
    server = start(shop)
    try:
        body = {
            "request": "Daftar Payment Channel",
            "merchant_id": shop.merchant_id,
            "signature": channel_inquiry_signature(shop.user_id, shop.password),
        }
        answer = requests.post(server.url + "/cvr/100001/10", json=body, timeout=5).json()
        assert answer["payment_channel"] == [
            {"pg_code": "819", "pg_name": "DANA"},
            {"pg_code": "801", "pg_name": "BNI Virtual Account"},
            {"pg_code": "711", "pg_name": "ShopeePay QRIS"},
        ]
        refused = create(server, shop, "D-1", "402")
        assert refused == {
            "response_error": {
                "response_code": "40",
                "response_desc": "Requested Function not Supported",
            }
        }
    finally:
        server.stop()


def test_the_generic_simulator_pays_and_fails(
    server: EmulatorServer, shop: Merchant, receiver: Receiver
) -> None:
    va = create(server, shop, "G-1", "801")["trx_id"]
    status, record = control(server, "pay", {"va_number": va, "amount": "200000"})
    assert status == 200
    assert record["status"] == "2"
    assert record["payer"] == "BNI"
    create(server, shop, "G-2", "302")
    status, record = control(server, "pay", {"bill_no": "G-2", "outcome": "fail"})
    assert status == 200
    assert record["status"] == "3"
    assert control(server, "pay", {})[0] == 400
    wait(server)
    assert [parse_fields(b)["payment_status_code"] for b in receiver.bodies] == ["2", "3"]


def test_tampered_notifications_fail_verification(
    server: EmulatorServer, shop: Merchant, receiver: Receiver
) -> None:
    trx_id = create(server, shop, "T-1", "800")["trx_id"]
    pay(server, shop, "T-1", trx_id, "virtual_account")
    wait(server)
    [body] = receiver.bodies
    gateway = gateway_for(server, shop)
    assert gateway.handle_notification(body, {}).status is PaymentStatus.PAID
    for forged in (
        body.replace(b"<bill_no>T-1</bill_no>", b"<bill_no>T-2</bill_no>"),
        body.replace(
            b"<payment_status_code>2</payment_status_code>",
            b"<payment_status_code>3</payment_status_code>",
        ),
    ):
        assert forged != body
        with pytest.raises(BadSignature):
            gateway.handle_notification(forged, {})


def test_qr_scan_outcomes(server: EmulatorServer, shop: Merchant) -> None:
    trx_id = create(server, shop, "Q-1", "836", msisdn="", email="")["trx_id"]
    assert server.app.bill("Q-1")["leniencies"]  # empty msisdn/email recorded (§5.2)
    assert control(server, f"qr/{trx_id}/scan", {"outcome": "opened"})[1]["status"] == "1"
    assert control(server, f"qr/{trx_id}/scan", {"outcome": "fail"})[1]["status"] == "3"
    status, refused = control(server, f"qr/{trx_id}/scan", {})
    assert status == 409
    assert refused["reason"] == "failed"


def test_the_channel_registry_is_served(server: EmulatorServer) -> None:
    channels = requests.get(server.url + "/_emulator/channels", timeout=5).json()["channels"]
    by_code = {c["code"]: c for c in channels}
    assert {code: by_code[code]["family"] for code in FAMILY_OF} == FAMILY_OF
    assert by_code["402"]["trx_id_pattern"] == "8985+merchant(5)+sequence(7)"
    assert by_code["812"]["return_url"] == "yes"
    assert by_code["801"]["return_url"] == "no"
