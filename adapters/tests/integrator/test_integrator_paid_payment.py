"""What an integrator's own test-suite looks like: only the pytest plugin's fixtures (loaded
through the ``pytest11`` entry point) and public imports; nothing private.

The test completes a paid DANA payment: create at the emulated Faspay, the customer opens
the redirect and pays on the DANA page (plain HTTP forms), the browser is sent back to the
return URL, and the notification Faspay would send verifies and says paid.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urljoin, urlsplit

import requests

from gateway_core import Customer, Money, PaymentRequest, PaymentStatus


def test_a_paid_dana_payment(faspay_dana_gateway, faspay_notification, faspay_emulator_control):  # type: ignore[no-untyped-def]
    gateway = faspay_dana_gateway
    payment = gateway.create(
        PaymentRequest(
            order_reference="ORDER-42",
            merchant_reference="ORDER-42-1",
            amount=Money("2000", "IDR"),
            customer=Customer("Budi", email="budi@example.com", phone="081234567890"),
            description="Kopi",
            return_url="https://shop.example/return",
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
    )
    assert payment.status is PaymentStatus.PENDING
    assert payment.provider_reference

    with requests.Session() as browser:
        page = browser.get(gateway.redirect(payment).url, timeout=10)
        assert page.status_code == 200
        form = re.search(
            r"<form id='dana-pay' method='post' action='([^']+)'>(.*?)</form>", page.text, re.S
        )
        assert form is not None
        fields = dict(re.findall(r"name='([^']+)' value='([^']*)'", form.group(2)))
        done = browser.post(
            urljoin(page.url, form.group(1)), data=fields, allow_redirects=False, timeout=10
        )
    # Without a registered return URL the emulator shows its own page; with one it redirects.
    assert done.status_code in (200, 302)
    if done.status_code == 302:
        query = dict(parse_qsl(urlsplit(done.headers["Location"]).query))
        assert gateway.handle_return(query).status is PaymentStatus.PAID

    notification = gateway.handle_notification(faspay_notification("ORDER-42-1", "2"))
    assert notification.status is PaymentStatus.PAID
    assert notification.amount == Money("2000", "IDR")
    assert notification.provider_reference == payment.provider_reference
    assert gateway.acknowledge(notification).accepted

    assert gateway.inquire(payment).status is PaymentStatus.PAID
    assert faspay_emulator_control.bill("ORDER-42-1")["status"] == "2"
