"""Nothing the customer's browser sees can prove a payment (issue 9, item 1).

Faspay signs a notification ``sha1(md5(user_id + password + bill_no + status))`` and shows the
customer ``sha1(md5(user_id + password + bill_no))`` in every redirect URL, and the status form
in every return URL. With references that may end in a digit, the redirect signature of bill
``X-12`` *is* the "paid" signature of bill ``X-1``. Two independent walls stop that: the Faspay
plugin's references never end in a digit, and the service confirms every settling Faspay
notification by an inquiry before it applies it.

The campaign plays a customer over loopback HTTP: one order, 13 attempts (a changing cart
each time, each attempt left payable), every page opened, abandoned or failed, the customer's
browser landing on the return URL; then every signature the browser saw is replayed as a
"paid" notification, JSON and XML, for every attempt of that order and of a second order.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import requests
from browser_forms import forms_of
from test_scenarios_support import gateway, journal, post_notification, response_code

from gateway_core import EventKind, PaymentStatus
from gateway_faspay_dana.testing import signed_notification

ORDER = "ORDER-FORGE"
OTHER = "ORDER-OTHER"
ATTEMPTS = 13
HEX40 = re.compile(r"(?<![0-9a-f])[0-9a-f]{40}(?![0-9a-f])")


def _browse(started: Any, action: str) -> set[str]:
    """What a customer does with one attempt: open the DANA page, press ``action`` (abandon
    or fail), land on the merchant's return page. Returns every signature-shaped value the
    browser saw (redirect URL, page, return URL)."""
    url = started.redirect.url
    seen = set(HEX40.findall(url))
    with requests.Session() as browser:
        page = browser.get(url, timeout=5)
        assert page.status_code == 200
        seen |= set(HEX40.findall(page.text))
        action_url, fields = forms_of(page.text)[f"dana-{action}"]
        done = browser.post(action_url, data=fields, allow_redirects=False, timeout=5)
        location = done.headers["Location"]
        seen |= set(HEX40.findall(unquote(location)))
        browser.get(location, allow_redirects=False, timeout=5)
    return seen


def test_every_signature_the_customer_saw_fails_to_forge_a_paid_notification(stack: Any) -> None:
    """Forgery campaign: 13 attempts of one order, every visible signature replayed as "paid"
    (JSON and XML) for every attempt of that order and of a second order."""
    seen: set[str] = set()
    bills: list[str] = []
    for number in range(ATTEMPTS):
        started = stack.start(ORDER, amount=str(2000 + number))  # the cart changed
        assert started.payment.attempt == len(bills) + 1
        bills.append(started.payment.merchant_reference)
        seen |= _browse(started, "fail" if number % 5 == 4 else "abandon")
    other = stack.start(OTHER, amount="5000")
    seen |= _browse(other, "abandon")
    bills.append(other.payment.merchant_reference)
    stack.wait()
    assert len(seen) >= ATTEMPTS  # at least one distinct signature per attempt
    assert not any(bill[-1].isdigit() for bill in bills)

    gw = gateway(stack)
    replies: list[tuple[int, str | None]] = []
    with requests.Session() as attacker:
        for bill in bills:
            record = stack.record(bill)
            for signature in sorted(seen):
                for fmt in ("json", "xml"):
                    body = signed_notification(
                        gw,
                        bill_no=bill,
                        trx_id=record.provider_reference,
                        status="2",
                        amount=record.amount,
                        fmt=fmt,
                        signature=signature,
                    )
                    kind = "application/json" if fmt == "json" else "text/xml"
                    reply = post_notification(stack, body, content_type=kind, session=attacker)
                    replies.append((reply.status_code, response_code(reply)))

    assert len(replies) == len(bills) * len(seen) * 2
    print(f"forgery campaign: {len(seen)} signatures x {len(bills)} bills x 2 formats")
    assert all(code != "00" for _, code in replies)
    assert all(status >= 400 for status, _ in replies)
    for bill in bills:
        assert stack.record(bill).status is not PaymentStatus.PAID
        assert stack.emulator.bill(bill)["status"] not in ("2", "4")  # the provider agrees
    assert stack.recorder.of_kind(EventKind.PAID) == []
    assert stack.service.ledger.counts_by_status()[PaymentStatus.PAID] == 0
    rejected = [e for e in journal(stack, "notification") if e.verdict == "rejected"]
    assert len(rejected) >= len(replies)


def test_a_correctly_signed_paid_notification_is_confirmed_by_inquiry_before_it_counts(
    stack: Any,
) -> None:
    """The second wall on its own: a "paid" notification whose signature verifies (leaked,
    replayed, or a collision) for a bill Faspay says is unpaid gets Faspay's failure reply and
    changes nothing; the real payment later is applied once."""
    started = stack.start(ORDER)
    bill = started.payment.merchant_reference
    record = stack.record(bill)
    forged = signed_notification(
        gateway(stack),
        bill_no=bill,
        trx_id=record.provider_reference,
        status="2",
        amount=record.amount,
    )
    inquiries_before = len(stack.emulator.requests_log("inquiry"))

    reply = post_notification(stack, forged)

    assert (reply.status_code, response_code(reply)) != (200, "00")
    assert response_code(reply) != "00"
    assert stack.record(bill).status is PaymentStatus.PENDING
    assert stack.recorder.of_kind(EventKind.PAID) == []
    assert len(stack.emulator.requests_log("inquiry")) == inquiries_before + 1
    last = journal(stack, "notification")[-1]
    assert (last.verdict, last.reason) == ("rejected", "status_unconfirmed")

    stack.emulator.pay(bill)  # the customer really pays: Faspay's own notification
    stack.wait()
    assert stack.record(bill).status is PaymentStatus.PAID
    assert len(stack.recorder.of_kind(EventKind.PAID)) == 1

    again = post_notification(stack, forged)  # now true: a duplicate, acknowledged
    assert response_code(again) == "00"
    assert len(stack.recorder.of_kind(EventKind.PAID)) == 1


def test_a_paid_notification_whose_inquiry_fails_gets_the_failure_reply_and_is_retried(
    stack: Any,
) -> None:
    """Confirmation impossible (the inquiry endpoint is down): Faspay's failure reply, so
    Faspay retries; the retry, confirmed, applies the payment once."""
    bill = stack.start(ORDER).payment.merchant_reference
    stack.emulator.add_fault("inquiry", "http_5xx", count=6)
    stack.emulator.pay(bill)
    stack.wait()

    attempts = [
        (a["http_status"], a["response_code"])
        for d in stack.emulator.deliveries(bill)
        for a in d["attempts"]
    ]
    assert attempts[0] != (200, "00")  # the first delivery could not be confirmed
    assert attempts[-1] == (200, "00")  # a retry was
    assert stack.record(bill).status is PaymentStatus.PAID
    assert len(stack.recorder.of_kind(EventKind.PAID)) == 1
