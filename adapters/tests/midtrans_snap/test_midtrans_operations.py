"""Get Status, cancel, expire and refund (protocol reference §5–§7) on a mock transport:
the requests sent and how each documented answer is read."""

from __future__ import annotations

import json
from typing import Any

import pytest
from midtrans_support import API, NOW, SERVER_KEY, FakeMidtrans, later, make_gateway
from midtrans_vectors import STATUS_ANSWERS

from gateway_core import (
    Customer,
    HttpRequest,
    HttpResponse,
    InvalidRequest,
    MalformedResponse,
    MockTransport,
    Money,
    NeverSent,
    OutcomeUnknown,
    Payment,
    PaymentRequest,
    PaymentStatus,
    ProviderClient,
    ProviderConfigurationError,
    ProviderRefused,
    ProviderUnavailable,
    RefundRequest,
    RefundStatus,
    RetryPolicy,
    TransportError,
)
from gateway_midtrans_snap import MidtransConfig, MidtransSnapGateway

S = PaymentStatus
ORDER = "ORDER-2025-0001S"


def _created(fake: FakeMidtrans, gateway: MidtransSnapGateway) -> Payment:
    return gateway.create(
        PaymentRequest(
            order_reference="cart-1",
            merchant_reference=ORDER,
            amount=Money("250000", "IDR"),
            customer=Customer("Sari"),
            description="order",
            return_url="https://shop.example.test/return",
            created_at=NOW,
            expires_at=later(60),
        )
    )


@pytest.fixture
def fake() -> FakeMidtrans:
    return FakeMidtrans()


@pytest.fixture
def gateway(fake: FakeMidtrans) -> MidtransSnapGateway:
    return make_gateway(fake)[0]


def _answering(*answers: HttpResponse | Exception, now: Any = NOW) -> MidtransSnapGateway:
    queue = list(answers)

    def handler(request: HttpRequest) -> HttpResponse:
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return _gateway_on(MockTransport(handler), now)


def _gateway_on(transport: MockTransport, now: Any = NOW) -> MidtransSnapGateway:
    """One retry, without sleeping."""
    config = MidtransConfig.from_settings({"server_key": SERVER_KEY}, {})
    client = ProviderClient(
        transport, RetryPolicy(max_retries=1), provider="midtrans_snap", sleep=lambda _: None
    )
    return MidtransSnapGateway(config, client=client, clock=lambda: now)


def _json(status: int, body: dict[str, Any]) -> HttpResponse:
    return HttpResponse(status, json.dumps(body).encode())


def _payment(**changes: Any) -> Payment:
    values: dict[str, Any] = {
        "provider": "midtrans_snap",
        "merchant_reference": ORDER,
        "status": S.PENDING,
        "amount": Money("250000", "IDR"),
        "provider_reference": ORDER,
        "expires_at": later(60),
        "provider_data": {"token": "0f8c1e2a-6b7d", "redirect_url": "https://x.test/snap/v3/r"},
    }
    values.update(changes)
    return Payment(**values)


# -- Get Status ---------------------------------------------------------------------------------


def test_before_the_customer_picks_a_method_the_order_is_pending(
    fake: FakeMidtrans, gateway: MidtransSnapGateway
) -> None:
    report = gateway.inquire(_created(fake, gateway))
    assert (report.status, report.provider_status) == (S.PENDING, "no_attempt")
    assert report.provider_reference == ORDER


def test_an_unused_page_past_its_expiry_is_expired() -> None:
    answer = _json(404, {"status_code": "404", "status_message": "Transaction doesn't exist."})
    gateway = _answering(answer, now=later(66))
    report = gateway.inquire(_payment())
    assert (report.status, report.provider_status) == (S.EXPIRED, "snap_expired")


def test_a_settled_order_reports_amount_time_and_attempt(
    fake: FakeMidtrans, gateway: MidtransSnapGateway
) -> None:
    payment = _created(fake, gateway)
    fake.choose(ORDER)
    assert gateway.inquire(payment).status is S.PENDING
    fake.settle(ORDER)
    report = gateway.inquire(payment)
    assert report.status is S.PAID
    assert report.amount == Money("250000", "IDR")
    assert report.payment_reference == fake.transactions[ORDER]["transaction_id"]
    assert report.paid_at is not None
    assert report.paid_at.isoformat() == "2025-06-01T10:15:40+07:00"


def test_the_reference_status_examples() -> None:
    pending = json.loads(STATUS_ANSWERS["status_pending"])
    expired = json.loads(STATUS_ANSWERS["status_expired"])
    gateway = _answering(_json(200, pending), _json(200, expired))
    report = gateway.inquire(_payment(merchant_reference="ORDER-2025-0001"))
    assert (report.status, report.amount) == (S.PENDING, None)
    report = gateway.inquire(_payment(merchant_reference="INV.2025.10.31-XY"))
    assert (report.status, report.provider_status) == (S.EXPIRED, "expire")


@pytest.mark.parametrize("case", ["forged-status", "another-order"])
def test_a_status_answer_that_does_not_verify_is_not_believed(case: str) -> None:
    answer = json.loads(STATUS_ANSWERS["status_pending"])
    reference = "ORDER-2025-0001"
    if case == "forged-status":  # settled, under the pending answer's signature
        answer.update(transaction_status="settlement", status_code="200")
    else:
        reference = "OTHER-1S"
    gateway = _answering(_json(200, answer), _json(200, answer))
    with pytest.raises(ProviderUnavailable) as info:  # malformed, retried, then given up
        gateway.inquire(_payment(merchant_reference=reference))
    assert isinstance(info.value.__cause__, MalformedResponse)


def test_an_unauthorized_answer_is_a_configuration_error() -> None:
    gateway = _answering(_json(401, {"status_code": "401", "status_message": "unauthorized"}))
    with pytest.raises(ProviderConfigurationError):
        gateway.inquire(_payment())


# -- cancel and expire -------------------------------------------------------------------------


def test_cancel_a_pending_attempt_by_order_id(
    fake: FakeMidtrans, gateway: MidtransSnapGateway
) -> None:
    payment = _created(fake, gateway)
    fake.choose(ORDER)
    report = gateway.cancel(payment)
    assert report.status is S.CANCELLED
    assert fake.transactions[ORDER]["transaction_status"] == "cancel"


def test_cancel_of_an_unused_page_cancels_its_snap_session(
    fake: FakeMidtrans, gateway: MidtransSnapGateway
) -> None:
    payment = _created(fake, gateway)
    first = gateway.cancel(payment)
    again = gateway.cancel(payment)  # "token already canceled": still cancelled
    assert first.status is again.status is S.CANCELLED
    assert fake.sessions[ORDER]["state"] == "canceled"


def test_cancel_of_a_settled_order_answers_its_status(
    fake: FakeMidtrans, gateway: MidtransSnapGateway
) -> None:
    payment = _created(fake, gateway)
    fake.choose(ORDER)
    fake.settle(ORDER)
    assert gateway.cancel(payment).status is S.PAID  # 412, then Get Status


def test_expire_a_pending_attempt(fake: FakeMidtrans, gateway: MidtransSnapGateway) -> None:
    payment = _created(fake, gateway)
    fake.choose(ORDER)
    report = gateway.expire(payment)
    assert report.status is S.EXPIRED  # body "407": success, not an error (§1.5)
    assert gateway.inquire(payment).status is S.EXPIRED


def test_expire_needs_an_attempt(fake: FakeMidtrans, gateway: MidtransSnapGateway) -> None:
    payment = _created(fake, gateway)
    with pytest.raises(ProviderRefused) as info:
        gateway.expire(payment)
    assert info.value.provider_code == "404"


# -- refunds -----------------------------------------------------------------------------------


def _settled(fake: FakeMidtrans, gateway: MidtransSnapGateway) -> Payment:
    payment = _created(fake, gateway)
    fake.choose(ORDER, "credit_card")
    fake.settle(ORDER)
    return payment


def _refund(key: str, amount: str, reason: str = "") -> RefundRequest:
    return RefundRequest(ORDER, Money(amount, "IDR"), key, reason)


def test_refund_sends_the_key_amount_and_reason(fake: FakeMidtrans) -> None:
    gateway, transport = make_gateway(fake)
    payment = _settled(fake, gateway)
    report = gateway.refund(payment, _refund("ORDER-r1", "50000", "Ukuran tidak tersedia"))
    sent = transport.requests[-1]
    assert (sent.method, sent.url) == ("POST", f"{API}/v2/{ORDER}/refund")
    assert sent.idempotent
    assert json.loads(sent.body) == {
        "refund_key": "ORDER-r1",
        "amount": 50000,
        "reason": "Ukuran tidak tersedia",
    }
    assert report.status is RefundStatus.SUCCEEDED
    assert (report.key, report.amount, report.provider_reference) == (
        "ORDER-r1",
        Money("50000", "IDR"),
        "3101",
    )
    assert report.provider_status == "partial_refund"


def test_partial_then_full_refund_and_the_status_lists_both(fake: FakeMidtrans) -> None:
    gateway, _ = make_gateway(fake)
    payment = _settled(fake, gateway)
    gateway.refund(payment, _refund("r1", "50000"))
    gateway.refund(payment, _refund("r2", "200000"))
    report = gateway.inquire(payment)
    assert report.status is S.REFUNDED
    assert [(r.key, r.amount.amount) for r in report.refunds] == [("r1", 50000), ("r2", 200000)]
    assert report.amount == Money("250000", "IDR")


def test_the_same_key_again_answers_the_stored_refund(fake: FakeMidtrans) -> None:
    """406 "Duplicate refund ID": Get Status lists the refund under the key (no second one)."""
    gateway, _ = make_gateway(fake)
    payment = _settled(fake, gateway)
    first = gateway.refund(payment, _refund("r1", "50000"))
    again = gateway.refund(payment, _refund("r1", "50000"))
    assert (again.key, again.amount, again.provider_reference) == (
        first.key,
        first.amount,
        first.provider_reference,
    )
    assert len(fake.transactions[ORDER]["refunds"]) == 1


def test_a_406_without_the_key_in_get_status_is_outcome_unknown() -> None:
    duplicate = _json(406, {"status_code": "406", "status_message": "Duplicate refund ID"})
    status = {**json.loads(STATUS_ANSWERS["status_pending"]), "order_id": ORDER}
    status.pop("signature_key")
    gateway = _answering(duplicate, _json(200, status))
    with pytest.raises(OutcomeUnknown):
        gateway.refund(_payment(), _refund("r9", "1000"))


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("412", "Merchant cannot modify the status of the transaction"),
        ("414", "Refund request is rejected due to invalid amount"),
        ("404", "Transaction doesn't exist."),
    ],
)
def test_refusals_carry_midtrans_reason(code: str, message: str) -> None:
    gateway = _answering(_json(int(code), {"status_code": code, "status_message": message}))
    with pytest.raises(ProviderRefused) as info:
        gateway.refund(_payment(), _refund("r1", "1000"))
    assert info.value.provider_code == code
    assert message in str(info.value)


def test_a_refund_above_what_remains_is_refused(fake: FakeMidtrans) -> None:
    gateway, _ = make_gateway(fake)
    payment = _settled(fake, gateway)
    with pytest.raises(ProviderRefused) as info:
        gateway.refund(payment, _refund("r1", "250001"))
    assert info.value.provider_code == "414"


def test_a_lost_refund_answer_is_re_sent_with_the_same_key_then_unknown() -> None:
    lost = TransportError("read timeout")
    gateway = _answering(lost, lost)
    with pytest.raises(OutcomeUnknown):
        gateway.refund(_payment(), _refund("r1", "1000"))


def test_a_refund_lost_once_succeeds_on_the_re_send(fake: FakeMidtrans) -> None:
    calls: list[HttpRequest] = []
    inner = fake

    def flaky(request: HttpRequest) -> HttpResponse:
        calls.append(request)
        response = inner(request)
        if (
            request.operation == "refund"
            and len([c for c in calls if c.operation == "refund"]) == 1
        ):
            raise TransportError("the answer was lost")
        return response

    gateway = _gateway_on(MockTransport(flaky))
    payment = _settled(fake, gateway)
    report = gateway.refund(payment, _refund("r1", "50000"))
    assert report.key == "r1"
    assert report.status is RefundStatus.SUCCEEDED
    assert len(fake.transactions[ORDER]["refunds"]) == 1  # the re-send refunded nothing more


def test_a_refund_never_sent_stays_never_sent() -> None:
    gateway = _answering(NeverSent("refused"), NeverSent("refused"))
    with pytest.raises(NeverSent):
        gateway.refund(_payment(), _refund("r1", "1000"))


@pytest.mark.parametrize(
    ("key", "amount"), [("has space", "1000"), ("r1", "10.50")], ids=["key", "cents"]
)
def test_refund_rules_are_checked_before_sending(key: str, amount: str) -> None:
    gateway = _answering()
    with pytest.raises(InvalidRequest) as info:
        gateway.refund(_payment(), _refund(key, amount))
    assert info.value.field == ("key" if key != "r1" else "amount")
