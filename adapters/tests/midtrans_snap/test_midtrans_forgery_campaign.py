"""Nothing public proves a Midtrans payment or refund (security review).

Midtrans signs a webhook ``SHA-512(order_id + status_code + gross_amount + server_key)``: not
the ``transaction_status``, not the ``refunds[]`` list. A settlement webhook's signature is
therefore also a valid signature of a "refund" webhook of the same order (reference §7.5), and
a pending webhook's (``201``) signs any status word with ``201``. Three walls: the plugin
verifies the signature; the payment service confirms every Midtrans notification by Get Status
before anything changes (the trust declaration does not list the status as signed); a claim of
money (paid, refunded) or a refund list Get Status does not confirm gets the failure reply.

The campaign plays a customer over loopback HTTP against the Midtrans emulator: three orders,
seven attempts (each page left, denied, failed, cancelled or made pending; one order really
paid), the browser landing on the merchant's return URL each time. Then, as an attacker who
also captured every genuine webhook: every token and signature the browser saw is replayed as
the ``signature_key`` of paid and refund notifications for every attempt; every genuine webhook
is relabelled paid / refunded with a forged ``refunds[]``; every return link is replayed
claiming settlement and refund. 0 applied, 0 refunds recorded, and the emulator confirms
nothing was paid or refunded that the customer did not really pay.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
import requests
from midtrans_emulator_support import press

from gateway_core import EventKind, Money, PaymentStatus

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "service"))
from provider_drivers import ProviderStack, open_provider_stack

from gateway_midtrans_snap.testing import signed_notification

S = PaymentStatus
#: Anything signature- or token-shaped: hex runs of 16+ and UUIDs.
TOKENS = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?<![0-9a-fA-F])[0-9a-fA-F]{16,}(?![0-9a-fA-F])"
)
#: What each attempt's customer does on the Snap page.
OUTCOMES = ("leave", "deny", "pending", "error", "cancel", "leave")
MONEY_STATES = ("settlement", "capture", "refund", "partial_refund")


@pytest.fixture
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProviderStack]:
    with open_provider_stack(request.config, "midtrans_snap", "sqlite", tmp_path) as built:
        yield built


def _browse(stack: ProviderStack, url: str, outcome: str) -> tuple[set[str], str]:
    """The customer opens the page, presses ``outcome`` and lands on the merchant's return.
    Returns every token-shaped value the browser saw and the return URL."""
    seen = set(TOKENS.findall(url))
    with requests.Session() as browser:
        page = browser.get(url, timeout=5)
        assert page.status_code == 200
        seen |= set(TOKENS.findall(page.text))
    done = press(url, outcome)
    location = done.headers.get("Location", "")
    seen |= set(TOKENS.findall(unquote(location)))
    if location.startswith(stack.merchant_url):
        requests.get(location, allow_redirects=False, timeout=5)
    return seen, location


def _forged_refunds(order_id: str, gross: str) -> list[dict[str, Any]]:
    return [
        {
            "refund_chargeback_id": 990001,
            "refund_amount": gross,
            "created_at": "2025-06-10 11:00:02",
            "reason": "forged",
            "refund_key": f"{order_id}-evil",
            "refund_method": "online",
            "bank_confirmed_at": "2025-06-10 11:00:40",
        }
    ]


def test_nothing_the_customer_saw_or_captured_proves_a_payment_or_a_refund(
    stack: ProviderStack,
) -> None:
    seen: set[str] = set()
    returns: list[str] = []
    bills: list[str] = []
    for order in ("MT-FORGE-A", "MT-FORGE-B"):
        for number, outcome in enumerate(OUTCOMES[:4] if order.endswith("A") else OUTCOMES[4:]):
            started = stack.start(order, amount=str(20000 + 1000 * number))
            bills.append(started.payment.merchant_reference)
            assert started.redirect is not None
            found, location = _browse(stack, started.redirect.url, outcome)
            seen |= found
            returns.append(location)
    paid = stack.start("MT-FORGE-PAID", amount="50000")
    assert paid.redirect is not None
    found, location = _browse(stack, paid.redirect.url, "pay")
    seen |= found
    returns.append(location)
    paid_ref = paid.payment.merchant_reference
    stack.wait()
    assert stack.record(paid_ref).status is S.PAID
    unpaid = [b for b in bills if stack.driver.provider_status(stack, b) is not S.PAID]
    assert unpaid == bills
    assert len(seen) >= len(bills)  # a token per page at least
    genuine = [d["body"] for d in stack.emulator.deliveries()]
    assert len(genuine) >= 5
    paid_before = len(stack.recorder.of_kind(EventKind.PAID))
    inquiries_before = stack.driver.inquiries(stack)

    replies: list[int] = []
    accepted: list[str] = []
    with requests.Session() as attacker:

        def post(body: bytes) -> None:
            reply = attacker.post(
                stack.notify_url,
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=10,
            )
            replies.append(reply.status_code)
            if reply.status_code < 400:
                accepted.append(
                    json.dumps(
                        {
                            k: v
                            for k, v in json.loads(body).items()
                            if k
                            in (
                                "order_id",
                                "transaction_status",
                                "status_code",
                                "refunds",
                                "refund_amount",
                            )
                        }
                    )
                )

        # 1. Every token the browser saw as the signature of paid / refund notifications.
        for bill in [*bills, paid_ref]:
            record = stack.record(bill)
            for token in sorted(seen):
                for state in MONEY_STATES:
                    refunds = _forged_refunds(bill, "50000.00") if "refund" in state else None
                    post(
                        signed_notification(
                            stack.gateway,
                            order_id=bill,
                            status=state,
                            amount=record.amount,
                            refunds=refunds,
                            signature_key=token,
                        )
                    )
        bad_signature = len(replies)
        # 2. Every genuine webhook (correctly signed) relabelled paid / refunded.
        for text in genuine:
            body = json.loads(text)
            for state in MONEY_STATES:
                if body["transaction_status"] == state:
                    continue  # a plain replay is a duplicate, not a forgery
                if body["order_id"] == paid_ref and state in ("settlement", "capture"):
                    continue  # true: that order is paid (acknowledged as a duplicate)
                forged = dict(body, transaction_status=state, fraud_status="accept")
                if "refund" in state:
                    forged["refunds"] = _forged_refunds(body["order_id"], body["gross_amount"])
                    forged["refund_amount"] = body["gross_amount"]
                post(json.dumps(forged).encode())
        # 3. Every return link, claiming settlement and refund.
        for location in returns:
            if not location.startswith(stack.merchant_url):
                continue
            query = dict(parse_qsl(urlsplit(location).query))
            for state, code in (("settlement", "200"), ("refund", "200"), ("capture", "200")):
                attacker.get(
                    stack.return_url,
                    params={**query, "transaction_status": state, "status_code": code},
                    allow_redirects=False,
                    timeout=10,
                )

    print(
        f"midtrans forgery campaign: {len(seen)} tokens, {len(bills) + 1} bills, "
        f"{len(genuine)} genuine webhooks, {len(replies)} forged notifications"
    )
    assert bad_signature == len(seen) * (len(bills) + 1) * len(MONEY_STATES)
    assert accepted == []  # not one acknowledged
    assert all(status == 400 for status in replies[:bad_signature])
    assert stack.driver.inquiries(stack) > inquiries_before  # the relabelled ones were asked
    for bill in bills:
        assert stack.record(bill).status is not S.PAID
        assert stack.service.refunds(stack.gateway_name, bill) == []
        assert stack.driver.provider_status(stack, bill) is not S.PAID  # the provider agrees
    assert stack.record(paid_ref).status is S.PAID
    assert stack.service.refunds(stack.gateway_name, paid_ref) == []
    (attempt,) = stack.emulator.transactions(paid_ref)
    assert attempt["transaction_status"] == "settlement"
    assert not attempt.get("refunds")
    assert len(stack.recorder.of_kind(EventKind.PAID)) == paid_before == 1
    assert stack.recorder.of_kind(EventKind.REFUND_SUCCEEDED) == []
    assert stack.ledger.counts_by_status()[S.PAID] == 1
    rejected = [e for e in stack.ledger.journal() if e.verdict == "rejected"]
    assert len(rejected) >= len(replies)


def test_a_genuine_refund_webhook_with_a_tampered_refund_list_changes_nothing(
    stack: ProviderStack,
) -> None:
    """The customer got a real partial refund; its genuine webhook (same signature whatever
    the list says) is replayed with the amount inflated and with a second refund added: both
    refused (Get Status does not list them), one refund in the ledger, as at Midtrans."""
    started = stack.start("MT-FORGE-RF", amount="50000")
    ref = started.payment.merchant_reference
    stack.emulator.act("pay", ref)
    stack.wait()
    stack.service.refund(stack.gateway_name, ref, Money("20000", "IDR"), key="MT-RF-r1")
    stack.wait()
    assert stack.record(ref).status is S.PARTIALLY_REFUNDED
    genuine = json.loads(stack.emulator.deliveries(order_id=ref, event="refund")[-1]["body"])
    inflated = json.loads(json.dumps(genuine))
    inflated["refunds"][0]["refund_amount"] = "50000.00"
    inflated["refund_amount"] = "50000.00"
    inflated["transaction_status"] = "refund"
    extra = json.loads(json.dumps(genuine))
    extra["refunds"].append(
        dict(genuine["refunds"][0], refund_key="MT-RF-evil", refund_chargeback_id=4242)
    )
    extra["refund_amount"] = "40000.00"
    with requests.Session() as attacker:
        replies = [
            attacker.post(stack.notify_url, data=json.dumps(body), timeout=10).status_code
            for body in (inflated, extra)
        ]
        replay = attacker.post(stack.notify_url, data=json.dumps(genuine), timeout=10)
    assert all(status >= 400 for status in replies), replies
    assert replay.status_code == 200  # the genuine one is true: acknowledged, changes nothing
    refunds = stack.service.refunds(stack.gateway_name, ref)
    assert [(r.refund_key, r.amount) for r in refunds] == [("MT-RF-r1", Money("20000", "IDR"))]
    assert stack.record(ref).status is S.PARTIALLY_REFUNDED
    assert stack.emulator.transaction(ref)["refund_amount"] == "20000.00"
    assert len(stack.recorder.of_kind(EventKind.REFUND_SUCCEEDED)) == 1
