"""Payment notifications: parsing, verification, acknowledgements, and properties over
arbitrary input (a Notification or a NotificationRejected, never anything else)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import pytest
from faspay_side import read_acknowledgement
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway_core import (
    BadSignature,
    MalformedNotification,
    Money,
    Notification,
    NotificationRejected,
    PaymentStatus,
    SignedField,
)
from gateway_faspay_dana import JAKARTA, FaspayDanaGateway
from gateway_faspay_dana.testing import signed_notification

BILL_NO = "INV-20201219-1"
TRX_ID = "9999981900000001"
PAID_AT = datetime(2020, 12, 19, 6, 30, 0, tzinfo=JAKARTA)

EITHER = Notification | NotificationRejected
FIXTURE_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def notification_body(gateway: FaspayDanaGateway, fmt: str = "json", **changes: Any) -> bytes:
    values: dict[str, Any] = {
        "bill_no": BILL_NO,
        "trx_id": TRX_ID,
        "status": PaymentStatus.PAID,
        "amount": Money("2000", "IDR"),
        "payment_date": PAID_AT,
        "fmt": fmt,
    }
    values.update(changes)
    return signed_notification(gateway, **values)


def tamper(body: bytes, fmt: str, field: str, value: str) -> bytes:
    """``body`` with one field replaced after signing."""
    if fmt == "json":
        payload = json.loads(body)
        payload[field] = value
        return json.dumps(payload).encode()
    start = body.index(f"<{field}>".encode()) + len(field) + 2
    end = body.index(f"</{field}>".encode())
    return body[:start] + xml_escape(value).encode() + body[end:]


def rejected(gateway: FaspayDanaGateway, body: bytes) -> NotificationRejected:
    with pytest.raises(NotificationRejected) as info:
        gateway.handle_notification(body, {})
    return info.value


# -- accepted notifications -------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_signed_notification_becomes_a_verified_notification(
    gateway: FaspayDanaGateway, fmt: str
) -> None:
    notification = gateway.handle_notification(notification_body(gateway, fmt), {})
    assert notification == Notification(
        provider="faspay_dana",
        merchant_reference=BILL_NO,
        status=PaymentStatus.PAID,
        event_key=f"{BILL_NO}:2",
        provider_reference=TRX_ID,
        provider_status="2",
        merchant_id="99999",
        amount=Money("2000", "IDR"),
        paid_amount=Money("2000", "IDR"),
        paid_at=PAID_AT,
        payment_reference="",
        body_format=fmt,
        fields=notification.fields,
    )
    assert notification.fields["payment_channel_uid"] == "819"
    assert notification.fields["legacy_signature"] is False


def test_the_docs_json_sample_verifies(make_gateway: Callable[..., FaspayDanaGateway]) -> None:
    gateway = make_gateway(merchant_id="31835")
    body = json.dumps(
        {
            "request": "Payment Notification",
            "trx_id": "3183540500001172",
            "merchant_id": "31835",
            "merchant": "Faspay Store",
            "bill_no": "220171004154635022158001",
            "payment_reff": "null",
            "payment_date": "2017-10-04 15:47:12",
            "payment_status_code": "2",
            "payment_status_desc": "Payment Sukses",
            "bill_total": "5000000",
            "payment_total": "5000000",
            "payment_channel_uid": "405",
            "payment_channel": "BCA KlikPay",
            "signature": "075c4983ba9883d41e1b3eab0de580dfc73d875b",
        }
    ).encode()
    notification = gateway.handle_notification(body, {})
    assert notification.status is PaymentStatus.PAID
    assert notification.amount == Money("50000", "IDR")


DOCS_XML_SAMPLE = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<faspay>\n<request>Payment Notification</request>\n'
    b"<trx_id>8985310250011254</trx_id>\n<merchant_id>31025</merchant_id>\n"
    b"<merchant>Sophia Store</merchant>\n<bill_no>300134486</bill_no>\n"
    b"<payment_reff>null</payment_reff>\n<payment_date>2017-08-10 11:43:18</payment_date>\n"
    b"<payment_status_code>2</payment_status_code>\n"
    b"<payment_status_desc>Payment Success</payment_status_desc>\n"
    b"<bill_total>5000000</bill_total>\n<payment_total>5000000</payment_total>\n"
    b"<payment_channel_uid>402</payment_channel_uid>\n"
    b"<payment_channel>Permata Virtual Account</payment_channel>\n"
    b"<signature>9ed18926fa88f83b469f3ae73ef71ef2a4835c03</signature>\n</faspay>"
)


def test_the_docs_xml_samples_legacy_signature_is_rejected_by_default(
    make_gateway: Callable[..., FaspayDanaGateway], caplog: pytest.LogCaptureFixture
) -> None:  # §14 #3
    gateway = make_gateway(merchant_id="31025")
    with caplog.at_level(logging.WARNING, logger="gateway_faspay_dana"):
        error = rejected(gateway, DOCS_XML_SAMPLE)
    assert isinstance(error, BadSignature)
    assert "legacy" in caplog.text


def test_the_legacy_signature_is_accepted_when_configured(
    make_gateway: Callable[..., FaspayDanaGateway],
) -> None:  # §14 #3
    gateway = make_gateway(merchant_id="31025", accept_legacy_signature=True)
    notification = gateway.handle_notification(DOCS_XML_SAMPLE, {})
    assert notification.merchant_reference == "300134486"
    assert notification.body_format == "xml"
    assert notification.fields["legacy_signature"] is True


def test_legacy_form_from_the_builder_is_rejected_by_default(
    gateway: FaspayDanaGateway,
) -> None:
    assert isinstance(rejected(gateway, notification_body(gateway, legacy=True)), BadSignature)


def test_payment_reff_null_string_reads_as_empty(gateway: FaspayDanaGateway) -> None:  # §14 #15
    notification = gateway.handle_notification(notification_body(gateway), {})
    assert notification.payment_reference == ""


def test_a_real_payment_reff_is_kept(gateway: FaspayDanaGateway) -> None:
    body = notification_body(gateway, payment_reff="DANA-778899")
    assert gateway.handle_notification(body, {}).payment_reference == "DANA-778899"


def test_numbers_are_tolerated_in_numeric_fields(gateway: FaspayDanaGateway) -> None:  # §2.4
    body = notification_body(
        gateway, merchant_id=99999, bill_total=200000, payment_total=200000, trx_id=int(TRX_ID)
    )
    notification = gateway.handle_notification(body, {})
    assert notification.merchant_id == "99999"
    assert notification.amount == Money("2000", "IDR")


def test_a_numeric_bill_no_is_refused(make_gateway: Callable[..., FaspayDanaGateway]) -> None:
    gateway = make_gateway()
    body = notification_body(gateway, bill_no="4370")
    payload = json.loads(body)
    payload["bill_no"] = 4370
    assert isinstance(rejected(gateway, json.dumps(payload).encode()), MalformedNotification)


def test_unpaid_statuses_do_not_report_a_paid_amount(gateway: FaspayDanaGateway) -> None:
    body = notification_body(gateway, status=PaymentStatus.EXPIRED, paid_amount=0)
    notification = gateway.handle_notification(body, {})
    assert notification.status is PaymentStatus.EXPIRED
    assert notification.paid_amount is None
    assert notification.amount == Money("2000", "IDR")


def test_an_unreadable_payment_date_leaves_paid_at_empty(gateway: FaspayDanaGateway) -> None:
    body = notification_body(gateway, payment_date="0000-00-00 00:00:00")
    assert gateway.handle_notification(body, {}).paid_at is None


def test_a_stray_ampersand_in_xml_is_tolerated(gateway: FaspayDanaGateway) -> None:
    body = notification_body(gateway, "xml").replace(
        b"<merchant>Sophia Store</merchant>", b"<merchant>Sophia & Co</merchant>"
    )
    assert gateway.handle_notification(body, {}).fields["merchant"] == "Sophia & Co"


def test_the_same_delivery_has_the_same_event_key(gateway: FaspayDanaGateway) -> None:
    body = notification_body(gateway)
    first = gateway.handle_notification(body, {})
    again = gateway.handle_notification(
        notification_body(gateway, payment_date="2020-12-20 00:00:00"), {}
    )
    assert first.event_key == again.event_key == f"{BILL_NO}:2"


# -- rejections -----------------------------------------------------------------------------

BAD_SIGNATURES = [
    pytest.param(["0" * 40], id="list"),
    pytest.param(12345, id="number"),
    pytest.param(None, id="null"),
    pytest.param("A" * 40, id="uppercase"),
    pytest.param("0" * 39, id="wrong length"),
    pytest.param("é" * 40, id="non-ASCII"),
    pytest.param("0" * 40, id="wrong value"),
]


@pytest.mark.parametrize("signature", BAD_SIGNATURES)
def test_a_bad_signature_is_rejected_with_403_and_a_99_reply(
    gateway: FaspayDanaGateway, signature: object
) -> None:
    error = rejected(gateway, notification_body(gateway, signature=signature))
    assert isinstance(error, BadSignature)
    ack = error.acknowledgement
    assert ack is not None
    assert (ack.status_code, ack.accepted, ack.content_type) == (403, False, "application/json")
    reply = json.loads(ack.body)
    assert reply["response_code"] == "99"
    assert (reply["bill_no"], reply["trx_id"]) == (BILL_NO, TRX_ID)


def test_an_uppercase_copy_of_the_right_signature_is_rejected(
    gateway: FaspayDanaGateway,
) -> None:
    body = notification_body(gateway)
    signature = json.loads(body)["signature"]
    forged = notification_body(gateway, signature=signature.upper())
    assert isinstance(rejected(gateway, forged), BadSignature)


def test_a_missing_signature_is_a_bad_signature(gateway: FaspayDanaGateway) -> None:
    assert isinstance(rejected(gateway, notification_body(gateway, signature=None)), BadSignature)


def test_an_xml_rejection_is_answered_in_xml(gateway: FaspayDanaGateway) -> None:
    error = rejected(gateway, notification_body(gateway, "xml", signature="0" * 40))
    assert error.acknowledgement is not None
    assert error.acknowledgement.content_type == "application/xml"
    fmt, ack = read_acknowledgement(error.acknowledgement.body)
    assert (fmt, ack.response_code) == ("xml", "99")


MALFORMED = [
    pytest.param(b"", id="empty"),
    pytest.param(b"<html><body>Hi</body></html>", id="html"),
    pytest.param(b'{"bill_no": "1"', id="truncated JSON"),
    pytest.param(b'{"bill_no": "a", "bill_no": "b"}', id="duplicate key"),
    pytest.param(b"[1, 2]", id="array"),
    pytest.param(b"<faspay><bill_no>1</bill_no>", id="truncated XML"),
    pytest.param(
        b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'>]><faspay>&a;</faspay>", id="DTD"
    ),
    pytest.param(b"\xff\xfe{\x00}\x00", id="UTF-16"),
]


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_bodies_are_rejected_with_400(gateway: FaspayDanaGateway, body: bytes) -> None:
    error = rejected(gateway, body)
    assert isinstance(error, MalformedNotification)
    assert error.acknowledgement is not None
    assert error.acknowledgement.status_code == 400
    assert not error.acknowledgement.accepted


def test_an_undetectable_body_is_answered_in_the_configured_format(
    make_gateway: Callable[..., FaspayDanaGateway],
) -> None:
    json_gateway = make_gateway()
    xml_gateway = make_gateway(notification_format="xml")
    for gateway, content_type in (
        (json_gateway, "application/json"),
        (xml_gateway, "application/xml"),
    ):
        ack = rejected(gateway, b"garbage").acknowledgement
        assert ack is not None
        assert ack.content_type == content_type


def test_an_oversized_body_is_rejected_before_parsing(gateway: FaspayDanaGateway) -> None:
    body = notification_body(gateway, merchant="x" * 20_000)
    assert isinstance(rejected(gateway, body), MalformedNotification)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("payment_status_code", "6"),
        ("payment_status_code", "22"),
        ("bill_total", "20000.00"),
        ("bill_total", None),
        ("trx_id", None),
        ("merchant_id", None),
        ("bill_no", "x" * 33),
        ("payment_status_code", True),
        ("bill_total", 2.5),
        ("merchant", ["a"]),
    ],
)
def test_field_shape_violations_are_malformed(
    gateway: FaspayDanaGateway, field: str, value: object
) -> None:
    body = notification_body(gateway, **{field: value})
    assert isinstance(rejected(gateway, body), MalformedNotification)


def test_an_xml_field_with_children_is_malformed(gateway: FaspayDanaGateway) -> None:
    body = notification_body(gateway, "xml").replace(
        b"<bill_total>200000</bill_total>", b"<bill_total><x>200000</x></bill_total>"
    )
    assert isinstance(rejected(gateway, body), MalformedNotification)


def test_bodies_that_are_not_bytes_are_malformed(gateway: FaspayDanaGateway) -> None:
    for body in ("{}", None, 12):
        assert isinstance(rejected(gateway, body), MalformedNotification)  # type: ignore[arg-type]


# -- acknowledgements -------------------------------------------------------------------------


def test_acknowledge_replies_00_in_json(gateway: FaspayDanaGateway) -> None:
    notification = gateway.handle_notification(notification_body(gateway), {})
    ack = gateway.acknowledge(notification)
    assert (ack.status_code, ack.content_type, ack.accepted) == (200, "application/json", True)
    assert json.loads(ack.body) == {
        "response": "Payment Notification",
        "trx_id": TRX_ID,
        "merchant_id": "99999",
        "merchant": "Sophia Store",
        "bill_no": BILL_NO,
        "response_code": "00",
        "response_desc": "Success",
        "response_date": "2020-12-19 06:00:00",
    }


def test_acknowledge_replies_in_xml_to_an_xml_notification(gateway: FaspayDanaGateway) -> None:
    notification = gateway.handle_notification(notification_body(gateway, "xml"), {})
    ack = gateway.acknowledge(notification)
    assert ack.content_type == "application/xml"
    assert ack.body.startswith(b'<?xml version="1.0" encoding="utf-8"?><faspay>')
    fmt, parsed = read_acknowledgement(ack.body)
    assert (fmt, parsed.response_code, parsed.bill_no) == ("xml", "00", BILL_NO)


def test_a_refused_notification_is_answered_400_with_99(gateway: FaspayDanaGateway) -> None:
    notification = gateway.handle_notification(notification_body(gateway), {})
    ack = gateway.acknowledge(notification, accepted=False, reason="amount_mismatch")
    assert (ack.status_code, ack.accepted) == (400, False)
    reply = json.loads(ack.body)
    assert (reply["response_code"], reply["response_desc"]) == ("99", "amount_mismatch")


# -- logging ----------------------------------------------------------------------------------


def test_logs_never_show_the_password_or_signature(
    gateway: FaspayDanaGateway, caplog: pytest.LogCaptureFixture
) -> None:
    body = notification_body(gateway)
    signature = json.loads(body)["signature"]
    with caplog.at_level(logging.DEBUG):
        gateway.handle_notification(body, {})
        rejected(gateway, notification_body(gateway, signature="0" * 40))
        rejected(gateway, notification_body(gateway, legacy=True))
    assert "p@ssw0rd" not in caplog.text
    assert signature not in caplog.text


# -- properties ---------------------------------------------------------------------------------


def outcome(gateway: FaspayDanaGateway, body: Any) -> Notification | NotificationRejected:
    """The notification, or the rejection; any other exception fails the test."""
    try:
        return gateway.handle_notification(body, {})
    except NotificationRejected as exc:
        error = exc
    ack = error.acknowledgement
    assert ack is not None
    assert ack.status_code >= 400
    assert not ack.accepted
    return error


@FIXTURE_SETTINGS
@given(body=st.binary(max_size=2048))
def test_any_bytes_give_a_notification_or_a_rejection(
    gateway: FaspayDanaGateway, body: bytes
) -> None:
    assert isinstance(outcome(gateway, body), EITHER)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@FIXTURE_SETTINGS
@given(value=JSON_VALUES)
def test_any_json_value_gives_a_notification_or_a_rejection(
    gateway: FaspayDanaGateway, value: object
) -> None:
    assert isinstance(
        outcome(gateway, json.dumps(value).encode()), Notification | NotificationRejected
    )


FIELDS = [
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


@FIXTURE_SETTINGS
@given(field=st.sampled_from(FIELDS), value=JSON_VALUES)
def test_any_one_field_change_to_json_gives_a_notification_or_a_rejection(
    gateway: FaspayDanaGateway, field: str, value: object
) -> None:
    payload = json.loads(notification_body(gateway))
    payload[field] = value
    assert isinstance(
        outcome(gateway, json.dumps(payload).encode()), Notification | NotificationRejected
    )


@FIXTURE_SETTINGS
@given(field=st.sampled_from(FIELDS), value=st.text(max_size=40))
def test_any_one_field_change_to_xml_gives_a_notification_or_a_rejection(
    gateway: FaspayDanaGateway, field: str, value: str
) -> None:
    body = notification_body(gateway, "xml", **{field: value})
    assert isinstance(outcome(gateway, body), EITHER)


@FIXTURE_SETTINGS
@given(field=st.sampled_from(FIELDS), raw=st.binary(max_size=40))
def test_any_raw_bytes_in_one_xml_field_give_a_notification_or_a_rejection(
    gateway: FaspayDanaGateway, field: str, raw: bytes
) -> None:
    body = notification_body(gateway, "xml")
    start = body.index(f"<{field}>".encode()) + len(field) + 2
    end = body.index(f"</{field}>".encode())
    assert isinstance(
        outcome(gateway, body[:start] + raw + body[end:]), Notification | NotificationRejected
    )


SIGNED_CHANGES = st.one_of(
    st.tuples(st.just("bill_no"), st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True)),
    st.tuples(st.just("payment_status_code"), st.sampled_from("01345789")),
    st.tuples(st.just("signature"), st.from_regex(r"[0-9a-f]{40}", fullmatch=True)),
)


@FIXTURE_SETTINGS
@given(change=SIGNED_CHANGES, fmt=st.sampled_from(["json", "xml"]))
def test_changing_a_signed_field_invalidates_the_notification(
    gateway: FaspayDanaGateway, change: tuple[str, str], fmt: str
) -> None:
    field, value = change
    signed = notification_body(gateway, fmt)
    original = gateway.handle_notification(signed, {})
    result = outcome(gateway, tamper(signed, fmt, field, value))
    if isinstance(result, Notification):
        # Only a "change" to the value it already had can still verify.
        assert result.merchant_reference == original.merchant_reference
        assert result.provider_status == original.provider_status
    else:
        assert isinstance(result, BadSignature)


@FIXTURE_SETTINGS
@given(total=st.integers(min_value=0, max_value=10**15 - 1), fmt=st.sampled_from(["json", "xml"]))
def test_changing_the_unsigned_bill_total_still_verifies(
    gateway: FaspayDanaGateway, total: int, fmt: str
) -> None:
    # The documented gap: Faspay's signature does not cover amounts (trust declaration), so
    # the core must compare them with the ledger.
    body = notification_body(gateway, fmt, bill_total=str(total))
    notification = gateway.handle_notification(body, {})
    assert notification.amount == Money.from_minor_units(total, "IDR")
    assert not type(gateway).trust.notification_proves(SignedField.AMOUNT)
