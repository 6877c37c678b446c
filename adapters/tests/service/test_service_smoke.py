"""A paid DANA payment through the whole stack, on both ledger backends."""

from __future__ import annotations

import requests

from gateway_core import EventKind, PaymentStatus


def test_paid_payment_end_to_end(stack) -> None:  # type: ignore[no-untyped-def]
    started = stack.start("ORDER-1")
    assert started.payment.status is PaymentStatus.PENDING
    with requests.Session() as browser:
        page = browser.get(started.redirect.url, timeout=5)
        assert page.status_code == 200
        stack.emulator.pay(started.payment.merchant_reference)
    stack.wait()
    record = stack.record(started.payment.merchant_reference)
    assert record.status is PaymentStatus.PAID
    assert stack.recorder.effects[("ORDER-1", EventKind.PAID)] == 1
