"""Midtrans statuses in the core's words (protocol reference §4.4, §4.5, §4.9), event keys,
the customer's return and the reply Midtrans gets (§3.2, §4.2)."""

from __future__ import annotations

import json

import pytest
from midtrans_support import NOW, SERVER_KEY, later, make_gateway
from midtrans_vectors import NOTIFICATIONS

from gateway_core import (
    BadSignature,
    InboundRequest,
    MalformedNotification,
    Money,
    Payment,
    PaymentStatus,
    Reason,
    RefundStatus,
    Verdict,
)
from gateway_midtrans_snap import payment_status
from gateway_midtrans_snap._status import order_status
from gateway_midtrans_snap.testing import signed_notification, signed_return_query

S = PaymentStatus

TABLE = [
    ("pending", "", S.PENDING),
    ("pending", "accept", S.PENDING),
    ("PENDING", "", S.PENDING),  # §4.4: DANA/ShopeePay's upper case
    ("authorize", "accept", S.IN_PROCESS),
    ("capture", "accept", S.PAID),
    ("capture", "", S.PAID),
    ("capture", "challenge", S.IN_PROCESS),
    ("capture", "deny", S.FAILED),
    ("settlement", "accept", S.PAID),
    ("settlement", "", S.PAID),  # fraud_status absent (Indomaret): acceptable, D10
    ("deny", "deny", S.FAILED),
    ("deny", "accept", S.FAILED),
    ("cancel", "accept", S.CANCELLED),
    ("expire", "accept", S.EXPIRED),
    ("failure", "", S.FAILED),
    ("refund", "accept", S.REFUNDED),
    ("partial_refund", "accept", S.PARTIALLY_REFUNDED),
    ("chargeback", "accept", S.REVERSED),
    ("partial_chargeback", "accept", S.REVERSED),
    ("something_new", "accept", S.UNKNOWN),
]


@pytest.mark.parametrize(("state", "fraud", "expected"), TABLE)
def test_the_status_table(state: str, fraud: str, expected: PaymentStatus) -> None:
    assert payment_status(state, fraud) is expected


@pytest.mark.parametrize(("state", "fraud", "expected"), TABLE)
def test_a_notification_reports_the_table(state: str, fraud: str, expected: PaymentStatus) -> None:
    gateway, _ = make_gateway()
    body = signed_notification(
        gateway, order_id="A-1S", status=state, amount=Money("1000", "IDR"), fraud_status=fraud
    )
    notification = gateway.parse_notification(InboundRequest.post(body))
    assert notification.status is expected
    assert notification.provider_status.startswith(state.lower())


def test_a_deny_is_not_final_for_the_order_while_its_page_is_open() -> None:
    """§4.9: a denied card attempt may be followed by a paid GoPay one."""
    body = {"transaction_status": "deny"}
    assert order_status(S.FAILED, "deny", body, later(30), NOW) is S.PENDING
    assert order_status(S.FAILED, "deny", body, later(-1), NOW) is S.FAILED
    reversal = {"transaction_status": "deny", "settlement_time": "2025-06-01 10:15:40"}
    assert order_status(S.FAILED, "deny", reversal, later(30), NOW) is S.REVERSED
    assert order_status(S.PAID, "settlement", body, later(30), NOW) is S.PAID


def _parse(body: bytes):  # type: ignore[no-untyped-def]
    gateway, _ = make_gateway()
    return gateway.parse_notification(InboundRequest.post(body))


def test_event_keys_are_stable_per_order_attempt_and_state() -> None:
    amount = Money("120000", "IDR")
    first = _parse(
        signed_notification(SERVER_KEY, order_id="A-1S", status="pending", amount=amount)
    )
    again = _parse(
        signed_notification(SERVER_KEY, order_id="A-1S", status="pending", amount=amount)
    )
    paid = _parse(
        signed_notification(SERVER_KEY, order_id="A-1S", status="settlement", amount=amount)
    )
    other_attempt = _parse(
        signed_notification(
            SERVER_KEY, order_id="A-1S", status="pending", amount=amount, transaction_id="t-2"
        )
    )
    assert first.event_key == again.event_key
    assert len({first.event_key, paid.event_key, other_attempt.event_key}) == 3
    challenge = _parse(
        signed_notification(
            SERVER_KEY, order_id="A-1S", status="capture", amount=amount, fraud_status="challenge"
        )
    )
    accepted = _parse(
        signed_notification(SERVER_KEY, order_id="A-1S", status="capture", amount=amount)
    )
    assert challenge.event_key != accepted.event_key


def _refund(number: int, amount: str, confirmed: bool = False) -> dict[str, object]:
    entry: dict[str, object] = {
        "refund_chargeback_id": 3100 + number,
        "refund_amount": amount,
        "created_at": "2025-06-10 11:00:02",
        "reason": "Ukuran tidak tersedia",
        "refund_key": f"A-1S-r{number}",
        "refund_method": "online",
    }
    if confirmed:
        entry["bank_confirmed_at"] = "2025-06-10 11:00:40"
    return entry


def test_refund_notifications_carry_their_refunds_and_their_own_keys() -> None:
    amount = Money("120000", "IDR")
    one = _parse(
        signed_notification(
            SERVER_KEY,
            order_id="A-1S",
            status="partial_refund",
            amount=amount,
            refunds=[_refund(1, "50000.00")],
        )
    )
    confirmed = _parse(
        signed_notification(
            SERVER_KEY,
            order_id="A-1S",
            status="partial_refund",
            amount=amount,
            refunds=[_refund(1, "50000.00", True)],
        )
    )
    two = _parse(
        signed_notification(
            SERVER_KEY,
            order_id="A-1S",
            status="refund",
            amount=amount,
            refunds=[_refund(1, "50000.00", True), _refund(2, "70000.00")],
        )
    )
    assert one.status is S.PARTIALLY_REFUNDED
    assert two.status is S.REFUNDED
    (refund,) = one.refunds
    assert refund.key == "A-1S-r1"
    assert refund.amount == Money("50000", "IDR")
    assert refund.provider_reference == "3101"
    assert refund.status is RefundStatus.SUCCEEDED
    assert refund.merchant_reference == "A-1S"
    # The bank's confirmation of the same refund is the same event; a second refund is not.
    assert confirmed.event_key == one.event_key
    assert two.event_key != one.event_key
    assert [r.key for r in two.refunds] == ["A-1S-r1", "A-1S-r2"]
    assert one.amount == amount  # the original gross_amount, compared with the ledger


def test_the_reference_refund_example() -> None:
    notification = _parse(NOTIFICATIONS["card_partial_refund"].encode())
    assert notification.status is S.PARTIALLY_REFUNDED
    assert [(r.key, r.amount) for r in notification.refunds] == [
        ("CC-2025-0007-r1", Money("50000", "IDR"))
    ]


def test_a_malformed_refund_entry_is_rejected() -> None:
    body = signed_notification(
        SERVER_KEY,
        order_id="A-1S",
        status="refund",
        amount=Money("1000", "IDR"),
        refunds=[{"refund_amount": "1000.00"}],
    )
    with pytest.raises(MalformedNotification):
        _parse(body)


def test_merchant_id_is_reported_only_when_configured() -> None:
    body = NOTIFICATIONS["bca_va_settlement"].encode()
    gateway, _ = make_gateway()
    assert gateway.parse_notification(InboundRequest.post(body)).merchant_id == ""
    configured, _ = make_gateway(merchant_id="G123450001")
    assert configured.parse_notification(InboundRequest.post(body)).merchant_id == "G123450001"
    assert configured.merchant_id == "G123450001"


# -- the customer's return --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "expected"),
    [("settlement", S.PAID), ("capture", S.PAID), ("pending", S.PENDING), ("deny", S.FAILED)],
)
def test_a_signed_return_names_the_order_and_hints_a_status(
    state: str, expected: PaymentStatus
) -> None:
    gateway, _ = make_gateway()
    query = signed_return_query(gateway, order_id="A-1S", transaction_status=state)
    result = gateway.parse_return(InboundRequest.get(query))
    assert (result.merchant_reference, result.status) == ("A-1S", expected)
    assert not type(gateway).trust.return_settles


def test_an_unfinish_return_without_midtrans_parameters_is_pending() -> None:
    gateway, _ = make_gateway()
    query = signed_return_query(gateway, order_id="A-1S")
    for name in ("order_id", "status_code", "transaction_status"):
        del query[name]
    assert gateway.parse_return(InboundRequest.get(query)).status is S.PENDING


@pytest.mark.parametrize(
    "change",
    [
        {"snap_ref": "B-1S"},  # another order, with A's signature
        {"order_id": "B-1S"},  # Midtrans' order id disagrees with the signed one
        {"snap_sig": "0" * 32},
        {"snap_sig": None},
        {"snap_ref": None},
    ],
)
def test_a_forged_return_is_rejected(change: dict[str, str | None]) -> None:
    gateway, _ = make_gateway()
    query = signed_return_query(gateway, order_id="A-1S")
    for name, value in change.items():
        if value is None:
            del query[name]
        else:
            query[name] = value
    with pytest.raises(BadSignature):
        gateway.parse_return(InboundRequest.get(query))


# -- the reply ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "accepted", "status"),
    [
        (Reason.NONE, True, 200),
        (Reason.STATUS_UNCONFIRMED, False, 503),
        (Reason.LEDGER_UNAVAILABLE, False, 503),
        (Reason.UNKNOWN_PAYMENT, False, 404),
        (Reason.BAD_SIGNATURE, False, 400),
        (Reason.MALFORMED, False, 400),
    ],
)
def test_replies_follow_midtrans_retry_classes(reason: Reason, accepted: bool, status: int) -> None:
    gateway, _ = make_gateway()
    verdict = Verdict.APPLIED if accepted else Verdict.REJECTED
    ack = gateway.reply(verdict, None, reason, None, accepted=accepted)
    assert (ack.status_code, ack.accepted) == (status, accepted)
    if not accepted:
        assert json.loads(ack.body)["status"] == "rejected"


def test_a_method_mismatch_is_reported() -> None:
    gateway, _ = make_gateway()
    payment = Payment(
        provider="midtrans_snap",
        merchant_reference="A-1S",
        status=S.PENDING,
        amount=Money("1000", "IDR"),
        method="bca_va",
    )
    card = _parse(
        signed_notification(
            SERVER_KEY,
            order_id="A-1S",
            status="capture",
            amount=Money("1000", "IDR"),
            payment_type="credit_card",
        )
    )
    va = _parse(
        signed_notification(
            SERVER_KEY, order_id="A-1S", status="settlement", amount=Money("1000", "IDR")
        )
    )
    assert gateway.notification_mismatch(payment, card) == "method_mismatch"
    assert gateway.notification_mismatch(payment, va) == ""
