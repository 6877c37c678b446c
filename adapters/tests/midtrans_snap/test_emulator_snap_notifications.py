"""The Midtrans emulator's webhooks over real loopback HTTP: body and signature (checked with
the reference's formula written out here with hashlib, and its §4.7 vectors), delivery to
the override/append URLs, Midtrans' retry policy per reply class (§4.2), its schedule, and the
duplicate / reorder / hold / drop faults (§4.9, §11.5)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from midtrans_emulator_support import (
    MERCHANT_ID,
    SERVER_KEY,
    MerchantEndpoint,
    core,
    create,
    press,
    running_merchant,
    sha512_signature,
)

from gateway_midtrans_snap.emulator import Merchant, signature
from gateway_midtrans_snap.emulator._notify import RETRY_DELAYS, midtrans_schedule, retries_for

#: §4.6 vectors: (order_id, status_code, gross_amount, server key, expected).
VECTORS = [
    (
        "1111",
        "200",
        "100000.00",
        "askvnoibnosifnboseofinbofinfgbiufglnbfg",
        "edc076b21793ebe3e17926350f5b8ae67d902fe657b3d0aa31b932d5c127e2375d308a2bc94f3265ac2d80a1f1"
        "81a79b997ac178a236fcff35af263fc4d4c231",
    ),
    (
        "ORDER-2025-0001",
        "201",
        "250000.00",
        SERVER_KEY,
        "0baf90f295b13448dcffff5924b802b42b89274752b80eefdcdcd360b4db403786b4f5b13bfe8fab8fb61a5f78"
        "766aa5cdbcecd34e4238349cbdfbf33a127a77",
    ),
    (
        "cart_77.retry-2",
        "202",
        "15000.00",
        SERVER_KEY,
        "ff484615c47170375f43138528ce74ac9ab6e1b25592583b14b54ff17dfce7926b8957ed590fd885c1336ceb70"
        "136d119d57101562dfb4b12b1c12abac5c3fb8",
    ),
    (
        "INV.2025.10.31-XY",
        "407",
        "99000.00",
        SERVER_KEY,
        "5cc19c0863c52913bd8180c7e9b4eb4f6900c01d0e52f391bb6ebeb85c8b0669b8084c7470f9fc0577d786bfe7"
        "d4a50a71cbd62c2238728a462a695dc85d19d3",
    ),
]
#: §4.7's settlement and card examples.
EXAMPLES = [
    (
        "ORDER-2025-0001",
        "200",
        "250000.00",
        "6696b6303f8795e1f5b4320fb1573ecf8bc50f4c982dacbb4e0ad16b49b9e4a2031e4247c8d35df7165684bb09"
        "a83d580b2852d0ba152b932a34584d3256a81d",
    ),
    (
        "CC-2025-0007",
        "200",
        "120000.00",
        "b12aea049e47b591aa6543843efb3e515927327d399e654e8c078434b30c63de3e1ca810c188f5090621e8bd87"
        "e9cc15fa3876cc93f4e48653873aa20cb00373",
    ),
    (
        "CC-2025-0008",
        "202",
        "75000.00",
        "864f8b1c3c76008358357fceda0e7ab530fdb511b82cfc6d68a8d4b145de159d53c2bfc1a3447984da5689fb83"
        "d458ab62f10a43f373562850516e0dd7813f5b",
    ),
]


@pytest.fixture
def merchant_statuses() -> list[int]:
    """What the merchant answers, in order (then 200)."""
    return []


@pytest.fixture
def shop(merchant_statuses: list[int]) -> Iterator[MerchantEndpoint]:
    yield from running_merchant(merchant_statuses)


@pytest.fixture
def midtrans_emulator_merchant(shop: MerchantEndpoint) -> Merchant:
    return Merchant(notification_url=shop.url)


@pytest.mark.parametrize(("order_id", "code", "gross", "key", "expected"), VECTORS)
def test_the_reference_vectors_verify(
    order_id: str, code: str, gross: str, key: str, expected: str
) -> None:
    assert sha512_signature(order_id, code, gross, key) == expected
    assert signature(order_id, code, gross, key) == expected


@pytest.mark.parametrize(("order_id", "code", "gross", "expected"), EXAMPLES)
def test_the_reference_examples_verify(order_id: str, code: str, gross: str, expected: str) -> None:
    assert signature(order_id, code, gross, SERVER_KEY) == expected


def test_an_amount_without_decimals_does_not_verify() -> None:
    assert signature("ORDER-2025-0001", "201", "250000", SERVER_KEY) != VECTORS[1][4]


def test_a_paid_order_sends_pending_then_settlement_signed_and_shaped(
    midtrans_emulator: Any, midtrans_control: Any, shop: MerchantEndpoint
) -> None:
    page = create(midtrans_emulator.url, "WH-1", 250000, custom_field1="cart-8812").json()
    press(page["redirect_url"], "pay", method="bca_va")
    assert midtrans_control.wait_for_deliveries(10)
    bodies = shop.bodies()
    assert [b["transaction_status"] for b in bodies] == ["pending", "settlement"]
    assert [b["status_code"] for b in bodies] == ["201", "200"]
    for body in bodies:
        assert body["signature_key"] == sha512_signature(
            body["order_id"], body["status_code"], body["gross_amount"], SERVER_KEY
        )
        assert body["status_message"] == "midtrans payment notification"
        assert body["gross_amount"] == "250000.00"
        assert body["merchant_id"] == MERCHANT_ID
        assert body["custom_field1"] == "cart-8812"
        assert body["va_numbers"][0]["bank"] == "bca"
    assert bodies[1]["payment_amounts"][0]["amount"] == "250000.00"
    assert "settlement_time" in bodies[1]
    headers = shop.received[0][0]
    assert headers["User-Agent"] == "Veritrans"
    assert headers["Content-Type"] == "application/json"
    assert "Authorization" not in headers


def test_override_and_append_headers_choose_the_targets(
    midtrans_emulator: Any, midtrans_control: Any, shop: MerchantEndpoint
) -> None:
    other = MerchantEndpoint()
    try:
        create(midtrans_emulator.url, "WH-2", headers={"X-Override-Notification": other.url})
        midtrans_control.choose("WH-2")
        create(midtrans_emulator.url, "WH-3", headers={"X-Append-Notification": other.url})
        midtrans_control.choose("WH-3")
        assert midtrans_control.wait_for_deliveries(10)
        assert [b["order_id"] for b in shop.bodies()] == ["WH-3"]
        assert sorted(b["order_id"] for b in other.bodies()) == ["WH-2", "WH-3"]
    finally:
        other.close()


@pytest.mark.parametrize(
    ("merchant_statuses", "attempts"),
    [
        ([500, 500, 500], 2),
        ([503] * 6, 5),
        ([404] * 6, 3),
        ([400] * 6, 3),
        ([302], 1),
        ([418] * 7, 6),
        ([503, 503, 204], 3),
    ],
)
def test_retries_per_reply_class_until_a_2xx(
    midtrans_emulator: Any, midtrans_control: Any, shop: MerchantEndpoint, attempts: int
) -> None:
    create(midtrans_emulator.url, "RT-1")
    midtrans_control.choose("RT-1", "bca_va")
    assert midtrans_control.wait_for_deliveries(20)
    [delivery] = midtrans_control.deliveries(order_id="RT-1")
    assert len(delivery["attempts"]) == attempts
    assert len(shop.received) == attempts
    final = delivery["attempts"][-1]["http_status"]
    assert delivery["delivered"] is (200 <= final < 300)


def test_a_307_is_followed_with_the_same_post(
    midtrans_emulator: Any, midtrans_control: Any, shop: MerchantEndpoint
) -> None:
    shop.statuses.append(307)
    create(midtrans_emulator.url, "RT-2")
    midtrans_control.choose("RT-2", "bca_va")
    assert midtrans_control.wait_for_deliveries(10)
    [delivery] = midtrans_control.deliveries(order_id="RT-2")
    assert delivery["delivered"]
    assert len(delivery["attempts"]) == 1
    assert shop.bodies()[0] == shop.bodies()[1]


def test_the_retry_schedule_is_midtrans_scaled_and_shifted_within_the_interval() -> None:
    assert RETRY_DELAYS == (120.0, 600.0, 1800.0, 5400.0, 12600.0)
    assert [retries_for(s) for s in (500, 503, 400, 404, 301, 302, 303, 502, None)] == [
        1,
        4,
        2,
        2,
        0,
        0,
        0,
        5,
        5,
    ]
    plain = midtrans_schedule(scale=0.5, jitter=False)
    assert [plain.delay(n) for n in range(1, 6)] == [60.0, 300.0, 900.0, 2700.0, 6300.0]
    shifted = midtrans_schedule(seed=7)
    again = midtrans_schedule(seed=7)
    for n in range(1, 6):
        value = shifted.delay(n)
        assert 0 < value <= RETRY_DELAYS[n - 1]
        assert value == again.delay(n)


def test_the_fixture_scales_the_schedule(midtrans_control: Any) -> None:
    retry = midtrans_control._call("GET", "retry")
    assert retry["delays"] == pytest.approx([d * 1e-4 for d in RETRY_DELAYS])
    assert midtrans_control.set_retry_scale(0.5)["delays"][0] == 60.0


def test_duplicate_fault_delivers_the_same_webhook_again(
    midtrans_emulator: Any, midtrans_control: Any, shop: MerchantEndpoint
) -> None:
    midtrans_control.add_fault("notification", "duplicate", times=2, on_status="settlement")
    create(midtrans_emulator.url, "DP-1")
    midtrans_control.pay("DP-1")
    assert midtrans_control.wait_for_deliveries(10)
    statuses = [b["transaction_status"] for b in shop.bodies()]
    assert statuses == ["pending", "settlement", "settlement", "settlement"]
    assert shop.bodies()[1] == shop.bodies()[3]


def test_hold_fault_delivers_settlement_before_pending(
    midtrans_emulator: Any, midtrans_control: Any, shop: MerchantEndpoint
) -> None:
    midtrans_control.add_fault("notification", "hold", on_status="pending", order_id="HD-1")
    create(midtrans_emulator.url, "HD-1")
    midtrans_control.choose("HD-1", "bca_va")
    assert midtrans_control.wait_for_deliveries(10)
    assert shop.bodies() == []
    midtrans_control.pay("HD-1")
    assert midtrans_control.wait_for_deliveries(10)
    bodies = shop.bodies()
    assert [b["transaction_status"] for b in bodies] == ["settlement", "pending"]
    assert bodies[1]["signature_key"] == sha512_signature("HD-1", "201", "250000.00", SERVER_KEY)


def test_reorder_fault_sends_a_stale_signed_webhook_after_the_real_one(
    midtrans_emulator: Any, midtrans_control: Any, shop: MerchantEndpoint
) -> None:
    midtrans_control.add_fault("notification", "reorder", on_status="settlement")
    create(midtrans_emulator.url, "RO-1")
    midtrans_control.pay("RO-1")
    assert midtrans_control.wait_for_deliveries(10)
    bodies = shop.bodies()
    assert [b["transaction_status"] for b in bodies] == ["pending", "settlement", "pending"]
    stale = bodies[2]
    assert stale["status_code"] == "201"
    assert stale["signature_key"] == sha512_signature("RO-1", "201", "250000.00", SERVER_KEY)
    status = core(midtrans_emulator.url, "GET", "RO-1", "status").json()
    assert status["transaction_status"] == "settlement"


def test_drop_fault_sends_nothing_and_records_the_attempts(
    midtrans_emulator: Any, midtrans_control: Any, shop: MerchantEndpoint
) -> None:
    midtrans_control.add_fault("notification", "drop", on_status="pending")
    create(midtrans_emulator.url, "DR-1")
    midtrans_control.choose("DR-1", "bca_va")
    assert midtrans_control.wait_for_deliveries(20)
    [delivery] = midtrans_control.deliveries(order_id="DR-1")
    assert delivery["state"] == "failed"
    assert len(delivery["attempts"]) == 6
    assert shop.bodies() == []


def test_expire_and_cancel_webhooks_say_202(
    midtrans_emulator: Any, midtrans_control: Any, shop: MerchantEndpoint
) -> None:
    create(midtrans_emulator.url, "EC-1", 15000)
    midtrans_control.choose("EC-1", "other_qris")
    core(midtrans_emulator.url, "POST", "EC-1", "expire")
    create(midtrans_emulator.url, "EC-2", 75000)
    midtrans_control.act("capture", "EC-2")
    core(midtrans_emulator.url, "POST", "EC-2", "cancel", {})
    assert midtrans_control.wait_for_deliveries(10)
    last = {b["order_id"]: b for b in shop.bodies()}
    assert (last["EC-1"]["transaction_status"], last["EC-1"]["status_code"]) == ("expire", "202")
    assert (last["EC-2"]["transaction_status"], last["EC-2"]["status_code"]) == ("cancel", "202")
    for body in last.values():
        assert body["signature_key"] == sha512_signature(
            body["order_id"], "202", body["gross_amount"], SERVER_KEY
        )
