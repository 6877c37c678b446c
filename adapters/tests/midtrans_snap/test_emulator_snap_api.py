"""The Midtrans emulator's Snap and Core API over real loopback HTTP: create (items that add
up, duplicate order_id), status, cancel, expire, approve/deny, Basic auth, JSON everywhere, the
Idempotency-Key (protocol reference §1, §2, §5, §6, §11.1, §11.7, §11.10)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from midtrans_emulator_support import SERVER_KEY, auth, core, create, press, snap_body


def test_create_answers_201_with_a_token_and_the_page_url(midtrans_emulator: Any) -> None:
    reply = create(midtrans_emulator.url, "ORDER-1", 250000)
    assert reply.status_code == 201
    body = reply.json()
    assert set(body) == {"token", "redirect_url"}
    assert len(body["token"]) == 36
    assert body["redirect_url"] == f"{midtrans_emulator.url}/snap/v3/redirection/{body['token']}"


def test_items_that_do_not_add_up_are_refused_with_the_documented_message(
    midtrans_emulator: Any,
) -> None:
    body = snap_body("ORDER-2", 250000)
    body["item_details"][0]["price"] += 1
    reply = requests.post(
        f"{midtrans_emulator.url}/snap/v1/transactions", json=body, headers=auth(), timeout=10
    )
    assert reply.status_code == 400
    assert reply.json() == {
        "error_messages": [
            "transaction_details.gross_amount is not equal to the sum of item_details"
        ]
    }
    assert midtrans_emulator.app.sessions() == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (None, "is required"),
        ({"transaction_details": {"order_id": "X"}}, "gross_amount is required"),
        ({"transaction_details": {"order_id": "X", "gross_amount": "abc"}}, "is not a number"),
        ({"transaction_details": {"order_id": "X", "gross_amount": 0}}, "gross_amount"),
        ({"transaction_details": {"order_id": "X" * 51, "gross_amount": 5}}, "order_id"),
        (
            {
                "transaction_details": {"order_id": "X", "gross_amount": 5},
                "expiry": {"duration": 10, "unit": "second"},
            },
            "expiry.unit",
        ),
    ],
)
def test_invalid_create_bodies_get_400_error_messages(
    midtrans_emulator: Any, body: Any, needle: str
) -> None:
    reply = requests.post(
        f"{midtrans_emulator.url}/snap/v1/transactions", json=body, headers=auth(), timeout=10
    )
    assert reply.status_code == 400
    assert any(needle in message for message in reply.json()["error_messages"])


def test_same_order_id_before_any_attempt_gives_a_new_token_and_kills_the_old_page(
    midtrans_emulator: Any,
) -> None:
    first = create(midtrans_emulator.url, "DUP-1").json()
    second = create(midtrans_emulator.url, "DUP-1", 260000).json()
    assert second["token"] != first["token"]
    assert requests.get(first["redirect_url"], timeout=10).status_code == 404
    assert requests.get(second["redirect_url"], timeout=10).status_code == 200
    states = {s["token"]: s["state"] for s in midtrans_emulator.app.sessions()}
    assert states == {first["token"]: "superseded", second["token"]: "active"}


def test_same_order_id_with_an_attempt_is_utilized_until_the_attempt_expires(
    midtrans_emulator: Any, midtrans_control: Any
) -> None:
    create(midtrans_emulator.url, "DUP-2")
    midtrans_control.choose("DUP-2", "bca_va")
    refused = create(midtrans_emulator.url, "DUP-2")
    assert refused.status_code == 400
    assert "has been paid and utilized" in refused.json()["error_messages"][0]
    expired = core(midtrans_emulator.url, "POST", "DUP-2", "expire", {})
    assert expired.status_code == 200
    assert expired.json()["status_code"] == "407"
    assert create(midtrans_emulator.url, "DUP-2").status_code == 201


def test_status_is_404_until_a_method_is_chosen_then_resolves_both_ids(
    midtrans_emulator: Any, midtrans_control: Any
) -> None:
    base = midtrans_emulator.url
    create(base, "ST-1", 15000)
    missing = core(base, "GET", "ST-1", "status")
    assert missing.status_code == 404
    assert missing.json()["status_code"] == "404"
    assert "exist" in missing.json()["status_message"]
    txn = midtrans_control.choose("ST-1", "bca_va")
    by_order = core(base, "GET", "ST-1", "status").json()
    # The official client's notification() quirk: stray query parameters are ignored.
    stray = requests.get(
        f"{base}/v2/{txn['transaction_id']}/status?X-Override-Notification=x",
        headers=auth(),
        timeout=10,
    ).json()
    assert stray["transaction_id"] == by_order["transaction_id"] == txn["transaction_id"]
    assert stray["order_id"] == "ST-1"
    assert by_order["status_code"] == "201"
    assert by_order["transaction_status"] == "pending"
    assert by_order["gross_amount"] == "15000.00"
    assert by_order["payment_type"] == "bank_transfer"
    assert by_order["va_numbers"][0]["bank"] == "bca"


def test_a_wrong_or_missing_server_key_is_refused_on_both_apis(midtrans_emulator: Any) -> None:
    base = midtrans_emulator.url
    snap = create(base, "AUTH-1", key="SB-Mid-server-not-the-key")
    assert snap.status_code == 401
    assert "unauthorized" in snap.json()["error_messages"][0]
    bare = requests.post(f"{base}/snap/v1/transactions", json=snap_body("AUTH-2"), timeout=10)
    assert bare.status_code == 401
    status = core(base, "GET", "AUTH-1", "status", key="SB-Mid-server-not-the-key")
    assert status.status_code == 401
    assert status.json()["status_code"] == "401"
    assert midtrans_emulator.app.sessions() == []
    assert create(base, "AUTH-1").status_code == 201


def test_every_answer_is_json_even_unknown_routes(midtrans_emulator: Any) -> None:
    reply = requests.get(f"{midtrans_emulator.url}/v2/x/nothing", headers=auth(), timeout=10)
    assert reply.status_code == 404
    assert reply.json()["status_code"] == "404"


def test_cancel_and_expire_follow_the_state_machine(
    midtrans_emulator: Any, midtrans_control: Any
) -> None:
    base = midtrans_emulator.url
    create(base, "CX-1")
    midtrans_control.choose("CX-1", "bca_va")
    cancelled = core(base, "POST", "CX-1", "cancel", {})
    assert cancelled.status_code == 200
    assert cancelled.json()["status_code"] == "200"
    assert cancelled.json()["transaction_status"] == "cancel"
    status = core(base, "GET", "CX-1", "status").json()
    assert (status["status_code"], status["transaction_status"]) == ("200", "cancel")
    again = core(base, "POST", "CX-1", "cancel", {})
    assert again.status_code == 412
    assert again.json()["status_code"] == "412"
    assert core(base, "POST", "CX-1", "expire", {}).json()["status_code"] == "412"
    # expire a pending attempt: HTTP 200 with body 407, and Get Status says 407 afterwards
    create(base, "CX-2")
    midtrans_control.choose("CX-2", "other_qris")
    assert core(base, "POST", "CX-2", "expire").json()["status_code"] == "407"
    assert core(base, "GET", "CX-2", "status").json()["status_code"] == "407"


def test_a_settled_payment_cannot_be_cancelled_and_a_capture_can(
    midtrans_emulator: Any, midtrans_control: Any
) -> None:
    base = midtrans_emulator.url
    create(base, "CX-3")
    midtrans_control.pay("CX-3")
    assert core(base, "POST", "CX-3", "cancel", {}).json()["status_code"] == "412"
    create(base, "CX-4")
    midtrans_control.act("capture", "CX-4")
    assert core(base, "POST", "CX-4", "refund", {"amount": 1000}).json()["status_code"] == "412"
    assert core(base, "POST", "CX-4", "cancel", {}).json()["transaction_status"] == "cancel"


def test_approve_and_deny_only_a_challenged_capture(
    midtrans_emulator: Any, midtrans_control: Any
) -> None:
    base = midtrans_emulator.url
    create(base, "CH-1")
    midtrans_control.pay("CH-1")
    assert core(base, "POST", "CH-1", "approve", {}).json()["status_code"] == "412"
    press(create(base, "CH-3").json()["redirect_url"], "challenge")
    challenged = core(base, "GET", "CH-3", "status").json()
    assert (challenged["transaction_status"], challenged["fraud_status"]) == (
        "capture",
        "challenge",
    )
    assert challenged["status_code"] == "201"
    approved = core(base, "POST", "CH-3", "approve", {}).json()
    assert approved["status_code"] == "200"
    after = core(base, "GET", "CH-3", "status").json()
    assert (after["status_code"], after["fraud_status"]) == ("200", "accept")
    assert core(base, "POST", "CH-3", "deny", {}).json()["status_code"] == "412"


def test_the_idempotency_key_replays_a_success_and_ignores_long_keys(
    midtrans_emulator: Any, midtrans_control: Any
) -> None:
    base = midtrans_emulator.url
    create(base, "ID-1", 100000)
    midtrans_control.pay("ID-1")
    headers = {"Idempotency-Key": "key-1"}
    first = core(base, "POST", "ID-1", "refund", {"amount": 1000}, headers=headers).json()
    replay = core(base, "POST", "ID-1", "refund", {"amount": 5000}, headers=headers).json()
    assert replay == first
    assert len(midtrans_control.transaction("ID-1")["refunds"]) == 1
    long_key = {"Idempotency-Key": "k" * 47}
    core(base, "POST", "ID-1", "refund", {"amount": 1000}, headers=long_key)
    core(base, "POST", "ID-1", "refund", {"amount": 1000}, headers=long_key)
    assert len(midtrans_control.transaction("ID-1")["refunds"]) == 3
    logged = [e["idempotency"] for e in midtrans_control.requests_log("refund")["requests"]]
    assert logged[:2] == ["stored", "replayed"]


def test_snap_session_cancel(midtrans_emulator: Any, midtrans_control: Any) -> None:
    base = midtrans_emulator.url
    token = create(base, "SC-1").json()["token"]
    url = f"{base}/snap/v1/transactions/{token}/cancel"
    first = requests.post(url, json={}, headers=auth(), timeout=10)
    assert first.status_code == 200
    assert "canceled_at" in first.json()
    again = requests.post(url, json={}, headers=auth(), timeout=10)
    assert again.json() == {"error_messages": ["token already canceled"]}
    token2 = create(base, "SC-2").json()["token"]
    midtrans_control.choose("SC-2", "bca_va")
    busy = requests.post(
        f"{base}/snap/v1/transactions/{token2}/cancel", json={}, headers=auth(), timeout=10
    )
    assert busy.json() == {"error_messages": ["Transaction is on progress"]}
    unknown = requests.post(
        f"{base}/snap/v1/transactions/nope/cancel", json={}, headers=auth(), timeout=10
    )
    assert unknown.status_code == 404


def test_endpoint_faults_from_the_kit_and_midtrans_core_error(
    midtrans_emulator: Any, midtrans_control: Any
) -> None:
    base = midtrans_emulator.url
    create(base, "F-1")
    midtrans_control.choose("F-1", "bca_va")
    midtrans_control.add_fault("status", "http_5xx", status=502)
    assert core(base, "GET", "F-1", "status").status_code == 502
    midtrans_control.add_fault("status", "core_error", code="503")
    failed = core(base, "GET", "F-1", "status")
    assert failed.status_code == 503
    assert failed.json()["status_code"] == "503"
    midtrans_control.add_fault("cancel", "reset_after_read")
    with pytest.raises(requests.ConnectionError):
        core(base, "POST", "F-1", "cancel", {})
    # processed although the answer was lost
    assert midtrans_control.transaction("F-1")["transaction_status"] == "cancel"
    assert core(base, "GET", "F-1", "status").status_code == 200
    assert SERVER_KEY not in str(midtrans_control.info())
