"""Midtrans' signatures (protocol reference §1.2, §4.6, §4.7, §7.5): the reference's vectors
and examples verify, and nothing tampered does."""

from __future__ import annotations

import json

import pytest
from midtrans_support import SERVER_KEY, make_gateway
from midtrans_vectors import NOTIFICATIONS, STATUS_ANSWERS

from gateway_core import BadSignature, InboundRequest, NotificationRejected
from gateway_midtrans_snap import basic_authorization, notification_signature, signature_matches

VECTORS = [
    (
        "1111",
        "200",
        "100000.00",
        "askvnoibnosifnboseofinbofinfgbiufglnbfg",
        "edc076b21793ebe3e17926350f5b8ae67d902fe657b3d0aa31b932d5c127e2375d308a2bc94f3265ac2d80a1f181a79b997ac178a236fcff35af263fc4d4c231",
    ),
    (
        "ORDER-2025-0001",
        "201",
        "250000.00",
        SERVER_KEY,
        "0baf90f295b13448dcffff5924b802b42b89274752b80eefdcdcd360b4db403786b4f5b13bfe8fab8fb61a5f78766aa5cdbcecd34e4238349cbdfbf33a127a77",
    ),
    (
        "cart_77.retry-2",
        "202",
        "15000.00",
        SERVER_KEY,
        "ff484615c47170375f43138528ce74ac9ab6e1b25592583b14b54ff17dfce7926b8957ed590fd885c1336ceb70136d119d57101562dfb4b12b1c12abac5c3fb8",
    ),
    (
        "INV.2025.10.31-XY",
        "407",
        "99000.00",
        SERVER_KEY,
        "5cc19c0863c52913bd8180c7e9b4eb4f6900c01d0e52f391bb6ebeb85c8b0669b8084c7470f9fc0577d786bfe7d4a50a71cbd62c2238728a462a695dc85d19d3",
    ),
]


@pytest.mark.parametrize(
    ("order_id", "code", "gross", "key", "expected"), VECTORS, ids=lambda v: ""
)
def test_the_reference_vectors(
    order_id: str, code: str, gross: str, key: str, expected: str
) -> None:
    assert notification_signature(order_id, code, gross, key) == expected
    assert signature_matches(
        expected, order_id=order_id, status_code=code, gross_amount=gross, server_key=key
    )
    assert signature_matches(  # Midtrans sends lower case; upper case is the same hex
        expected.upper(), order_id=order_id, status_code=code, gross_amount=gross, server_key=key
    )


def test_the_amount_is_signed_as_received_not_as_a_number() -> None:
    """Negative check of §4.6: V2 with "250000" is another signature."""
    v2 = VECTORS[1][4]
    assert notification_signature("ORDER-2025-0001", "201", "250000", SERVER_KEY) != v2
    assert not signature_matches(
        v2,
        order_id="ORDER-2025-0001",
        status_code="201",
        gross_amount="250000",
        server_key=SERVER_KEY,
    )


@pytest.mark.parametrize(
    "field", ["order_id", "status_code", "gross_amount", "server_key", "signature"]
)
def test_each_signed_input_changes_the_signature(field: str) -> None:
    inputs = {
        "order_id": "ORDER-2025-0001",
        "status_code": "201",
        "gross_amount": "250000.00",
        "server_key": SERVER_KEY,
    }
    signature = VECTORS[1][4]
    if field == "signature":
        signature = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    else:
        inputs[field] = inputs[field] + "1"
    assert not signature_matches(signature, **inputs)


@pytest.mark.parametrize("bad", ["", "abc", "z" * 128, VECTORS[1][4] + "0", None, 12])
def test_a_signature_of_the_wrong_shape_never_matches(bad: object) -> None:
    assert not signature_matches(
        bad,
        order_id="ORDER-2025-0001",
        status_code="201",
        gross_amount="250000.00",
        server_key=SERVER_KEY,
    )


def test_basic_authorization_of_the_reference() -> None:
    """§1.2: the emulator key, and the docs' own worked example."""
    assert basic_authorization(SERVER_KEY) == (
        "Basic U0ItTWlkLXNlcnZlci1FbXUxYXRvci1TaGFyZWQtS2V5LTAxOg=="
    )
    assert basic_authorization("SB-Mid-server-abc123cde456") == (
        "Basic U0ItTWlkLXNlcnZlci1hYmMxMjNjZGU0NTY6"
    )


@pytest.mark.parametrize("name", sorted(NOTIFICATIONS))
def test_every_notification_example_of_the_reference_verifies(name: str) -> None:
    gateway, _ = make_gateway()
    body = NOTIFICATIONS[name].encode()
    notification = gateway.parse_notification(InboundRequest.post(body))
    data = json.loads(body)
    assert notification.merchant_reference == data["order_id"]
    assert notification.provider_reference == data["order_id"]
    assert notification.payment_reference == data["transaction_id"]
    assert str(notification.amount.amount) == data["gross_amount"]


@pytest.mark.parametrize("name", sorted(NOTIFICATIONS))
@pytest.mark.parametrize(
    ("field", "value"),
    [("order_id", "ORDER-2025-0002"), ("status_code", "407"), ("gross_amount", "1.00")],
)
def test_a_tampered_example_is_rejected(name: str, field: str, value: str) -> None:
    gateway, _ = make_gateway()
    data = json.loads(NOTIFICATIONS[name])
    data[field] = value
    with pytest.raises(BadSignature):
        gateway.parse_notification(InboundRequest.post(json.dumps(data).encode()))


@pytest.mark.parametrize("name", sorted(NOTIFICATIONS))
def test_an_example_under_another_server_key_is_rejected(name: str) -> None:
    gateway, _ = make_gateway(server_key="SB-Mid-server-Another-Key-02")
    with pytest.raises(BadSignature):
        gateway.parse_notification(InboundRequest.post(NOTIFICATIONS[name].encode()))


def test_a_refund_webhook_carries_the_settlements_signature() -> None:
    """§7.5: the signature does not cover transaction_status, which is why the gateway
    declares notification_settles=False (the core confirms by Get Status)."""
    capture = json.loads(NOTIFICATIONS["card_capture"])
    refund = json.loads(NOTIFICATIONS["card_partial_refund"])
    assert capture["signature_key"] == refund["signature_key"]
    gateway, _ = make_gateway()
    trust = type(gateway).trust
    assert not trust.notification_settles
    assert "status" not in {f.value for f in trust.notification_covers}
    forged = {**capture, "transaction_status": "refund"}  # same signature, another status
    parsed = gateway.parse_notification(InboundRequest.post(json.dumps(forged).encode()))
    assert parsed.status.value == "refunded"  # verifies: only the inquiry can tell


@pytest.mark.parametrize("name", sorted(STATUS_ANSWERS))
def test_the_get_status_examples_carry_valid_signatures(name: str) -> None:
    data = json.loads(STATUS_ANSWERS[name])
    assert signature_matches(
        data["signature_key"],
        order_id=data["order_id"],
        status_code=data["status_code"],
        gross_amount=data["gross_amount"],
        server_key=SERVER_KEY,
    )


def test_rejection_is_a_notification_rejected_and_nothing_else() -> None:
    gateway, _ = make_gateway()
    data = json.loads(NOTIFICATIONS["bca_va_settlement"])
    del data["signature_key"]
    with pytest.raises(NotificationRejected) as info:
        gateway.parse_notification(InboundRequest.post(json.dumps(data).encode()))
    assert info.value.reason == "bad_signature"
