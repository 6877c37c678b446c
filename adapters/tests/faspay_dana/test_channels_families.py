"""Issue 12, "must show": every Faspay Debit channel family through the whole stack.

The payment service on a real ledger, the merchant's WSGI endpoints on a real loopback server,
the emulator over loopback HTTP (XML notifications, its default), the emulator's simulated
payer for each family (a bank transfer to a virtual account, cash at a store counter, a QRIS
app scanning, an OVO push approved in the app, the customer's browser on a wallet's page).

For each family: create → what the shop shows (and nothing secret in its ``repr``) → paid →
the notification applied once, even delivered three times → the return (redirect wallets,
DANA) or an inquiry that agrees (VA, retail, QRIS, OVO push: no Return URL step). Then expiry
(the emulator's clock moved past ``bill_expired``) and cancel, each ending the payment once
and leaving a late payer refused.

Runtime: every case runs on a SQLite file; PostgreSQL runs one representative method per
family (``REPRESENTATIVES``), since the ledger code under test is the same for every method.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from browser_forms import forms_of
from channel_stack_support import GATEWAY, PASSWORD, ChannelStack

from gateway_core import (
    EventKind,
    InstructionKind,
    Money,
    PaymentInstructions,
    PaymentStatus,
    RedirectInstruction,
)
from gateway_core.ledger import PaymentRecord
from gateway_faspay_dana._channels import Channel, Family, by_method
from gateway_faspay_dana.emulator._control import EmulatorControl

S = PaymentStatus
PHONE = "081234567890"  # the emulator's OVO payer leaves it waiting (no scripted ending)
EMAIL = "budi@example.com"
AMOUNT = Money("150000", "IDR")

#: Every method the tests pay with, and the gateway's ``channels`` setting.
METHODS = (
    "bca_va",
    "permata_va",
    "indomaret",
    "qris_shopeepay",
    "qris_paydia",
    "ovo",
    "shopeepay",
    "dana",
)
#: One method per family: these also run on PostgreSQL, and run the expiry and cancel cases.
REPRESENTATIVES = ("bca_va", "indomaret", "qris_shopeepay", "ovo", "shopeepay", "dana")


def _cases(methods: tuple[str, ...]) -> list[Any]:
    cases = [pytest.param(m, "sqlite", id=f"{m}-sqlite") for m in methods]
    cases += [
        pytest.param(m, "postgres", id=f"{m}-postgres", marks=pytest.mark.postgres)
        for m in methods
        if m in REPRESENTATIVES
    ]
    return cases


@pytest.fixture
def family_stack(
    request: pytest.FixtureRequest, suite: Any, tmp_path: Any
) -> Iterator[ChannelStack]:
    """The channel stack on the case's backend (``backend`` parameter)."""
    backend = request.getfixturevalue("backend")
    if backend == "sqlite":
        store = suite.Store("sqlite", str(tmp_path / "ledger.db"))
    else:
        suite.require_postgres()
        store = suite.Store("postgres", suite.POSTGRES_URL, f"gw_test_{uuid.uuid4().hex[:16]}")
    stack = ChannelStack(store.url, methods=METHODS)
    try:
        yield stack
    finally:
        stack.close()
        if backend != "sqlite":
            suite.drop_schema(store.schema)


@pytest.fixture
def control(family_stack: ChannelStack) -> Iterator[EmulatorControl]:
    with EmulatorControl(family_stack.server.url) as client:
        yield client


# -- helpers -----------------------------------------------------------------------------------


def channel(method: str) -> Channel:
    found = by_method(method)
    assert found is not None
    return found


def family(method: str) -> Family:
    return channel(method).family


def start(stack: ChannelStack, order: str, method: str) -> tuple[PaymentRecord, Any]:
    started = stack.service.start_payment(GATEWAY, stack.request(order, method, phone=PHONE))
    assert started.payment.method == method
    assert started.payment.status is S.PENDING
    return started.payment, started


def long_pieces(url: str) -> list[str]:
    """The parts of a URL long enough to be a signature or a token."""
    return [piece for piece in re.split(r"[/?&=]", url) if len(piece) >= 24]


def assert_no_secrets(started: Any) -> None:
    """Nothing secret in what a log line or a traceback would print of the started payment."""
    text = repr(started) + repr(started.redirect)
    for secret in (PASSWORD, PHONE, EMAIL):
        assert secret not in text
    if isinstance(started.redirect, RedirectInstruction):
        for piece in long_pieces(started.redirect.url):
            assert piece not in text, "the redirect URL's signature is in the repr"
    else:
        assert started.redirect.payload == "" or started.redirect.payload not in text


def assert_shown(
    stack: ChannelStack, method: str, record: PaymentRecord, started: Any
) -> PaymentInstructions | RedirectInstruction:
    """What the shop shows for ``method``, and the web app's pay page agreeing with it."""
    kind, issuer, guide = family(method), channel(method).issuer, channel(method).guide
    shown = started.redirect
    page = requests.get(
        f"{stack.merchant_url}/pay/{GATEWAY}/{record.merchant_reference}",
        allow_redirects=False,
        timeout=10,
    )
    if kind is Family.EWALLET:
        assert started.instructions is None
        assert isinstance(shown, RedirectInstruction)
        assert not shown.is_form
        assert shown.url.startswith(stack.server.url)
        assert (page.status_code, page.headers["Location"]) == (302, shown.url)
        return shown
    assert isinstance(shown, PaymentInstructions)
    assert started.instructions == shown
    assert shown.amount == AMOUNT
    assert record.expires_at is not None
    assert shown.expires_at == record.expires_at.replace(microsecond=0)
    assert page.status_code == 200
    body = page.text
    if kind is Family.VA or kind is Family.RETAIL:
        expected = (
            InstructionKind.VIRTUAL_ACCOUNT if kind is Family.VA else InstructionKind.PAYMENT_CODE
        )
        assert shown.kind is expected
        assert shown.bank == issuer
        assert shown.number == record.provider_reference  # ASSUMPTION §3.3: trx_id is it
        assert shown.number.isdigit()
        assert shown.text == guide
        assert shown.number in body
        assert issuer in body
    elif kind is Family.QRIS:
        assert shown.kind is InstructionKind.QR
        assert re.fullmatch(r"000201.*6304[0-9A-F]{4}", shown.payload)
        assert shown.payload in body
    else:
        assert kind is Family.OVO
        assert shown.kind is InstructionKind.PUSH
        assert "08******7890" in shown.text
        assert PHONE not in shown.text
        assert PHONE not in body
        assert "08******7890" in body
    return shown


def payer(stack: ChannelStack, method: str, record: PaymentRecord) -> requests.Response:
    """The family's simulated payer at the emulator (control API): its raw answer."""
    kind = family(method)
    number = record.provider_reference
    path, body = {
        Family.VA: (f"va/{number}/transfer", {}),
        Family.RETAIL: (f"retail/{number}/pay", {}),
        Family.QRIS: (f"qr/{number}/scan", {"issuer": "GoPay"}),
        Family.OVO: (f"ovo/{number}/respond", {"action": "approve"}),
        Family.EWALLET: ("pay", {"bill_no": record.merchant_reference}),
    }[kind]
    return requests.post(f"{stack.server.url}/_emulator/{path}", json=body, timeout=10)


def pay_in_the_browser(stack: ChannelStack, record: PaymentRecord) -> requests.Response:
    """The customer of a redirect wallet: the shop's pay link, the wallet's page, "Pay", and
    back to the shop's return endpoint. Returns the return endpoint's answer."""
    with requests.Session() as browser:
        page = browser.get(f"{stack.merchant_url}/pay/{GATEWAY}/{record.merchant_reference}")
        assert page.status_code == 200
        action, fields = forms_of(page.text)["dana-pay"]
        back = browser.post(action, data=fields, allow_redirects=False, timeout=10)
        assert back.status_code == 302
        location = back.headers["Location"]
        assert location.startswith(f"{stack.merchant_url}/return/{GATEWAY}")
        return browser.get(location, allow_redirects=False, timeout=10)


def transitions_to(stack: ChannelStack, record: PaymentRecord, status: S) -> int:
    assert record.id is not None
    return sum(1 for t in stack.runtime.ledger.transitions(record.id) if t.to_status is status)


def effects(stack: ChannelStack, order: str, kind: EventKind) -> int:
    return int(stack.recorder.effects.get((order, kind), 0))


def notifications(stack: ChannelStack, record: PaymentRecord) -> list[str]:
    entries = stack.runtime.ledger.journal(GATEWAY, limit=1000)
    return [
        e.verdict
        for e in entries
        if e.kind == "notification" and e.merchant_reference == record.merchant_reference
    ]


def refused(answer: requests.Response, reason: str) -> bool:
    return answer.status_code == 409 and answer.json().get("reason") == reason


# -- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "backend"), _cases(METHODS))
def test_each_family_is_shown_paid_and_settled_once(
    family_stack: ChannelStack, control: EmulatorControl, method: str, backend: str
) -> None:
    stack, service = family_stack, family_stack.service
    order = f"FAM-{method}"
    record, started = start(stack, order, method)
    reference = record.merchant_reference
    assert_no_secrets(started)
    assert_shown(stack, method, record, started)
    assert control.bill(reference)["status"] == ("1" if family(method) is Family.OVO else "0")

    # Faspay retries: the paid notification arrives three times.
    control.add_fault("notification", "duplicate", times=2, bill_no=reference, on_status="2")
    if family(method) is Family.EWALLET:
        back = pay_in_the_browser(stack, record)
        assert back.status_code == 303
        landed = urlsplit(back.headers["Location"])
        assert landed.path == "/x"
        query = parse_qs(landed.query)
        assert (query["reference"], query["status"]) == ([reference], ["paid"])
    else:
        assert payer(stack, method, record).status_code == 200
    stack.wait()

    paid = service.payment(GATEWAY, reference)
    assert paid.status is S.PAID
    assert transitions_to(stack, paid, S.PAID) == 1
    assert effects(stack, order, EventKind.PAID) == 1
    verdicts = notifications(stack, paid)
    assert len(verdicts) == 3  # every copy journalled ...
    assert verdicts.count("applied") <= 1  # ... applied at most once (else by the return)
    assert set(verdicts) <= {"applied", "duplicate"}
    if family(method) is not Family.EWALLET:
        assert verdicts.count("applied") == 1
        # No Return URL step but OVO's, in the catalogue and in the emulator's registry.
        one_step = family(method) is Family.OVO
        assert channel(method).return_url is one_step
        registry = {c["code"]: c["return_url"] for c in control.channels()}
        assert registry[channel(method).code] == ("yes" if one_step else "no")
    # The provider agrees, and asking again changes nothing.
    again = service.inquire(GATEWAY, reference)
    assert again.status is S.PAID
    assert transitions_to(stack, again, S.PAID) == 1
    assert effects(stack, order, EventKind.PAID) == 1
    # Paid: the pay link is gone, and the payer cannot pay twice.
    gone = requests.get(f"{stack.merchant_url}/pay/{GATEWAY}/{reference}", timeout=10)
    assert gone.status_code == 404
    second = payer(stack, method, record)
    assert second.status_code == 409
    assert stack.runtime.ledger.outbox(delivered=False) == []


def _lifetime(record: PaymentRecord) -> float:
    assert record.expires_at is not None
    return (record.expires_at - datetime.now(UTC)).total_seconds()


@pytest.mark.parametrize(("method", "backend"), _cases(REPRESENTATIVES))
def test_each_family_expires_once_and_refuses_a_late_payer(
    family_stack: ChannelStack, control: EmulatorControl, method: str, backend: str
) -> None:
    stack, service = family_stack, family_stack.service
    order = f"EXP-{method}"
    record, _ = start(stack, order, method)
    reference = record.merchant_reference
    # One jump past bill_expired: the emulator expires the bill at once (for OVO, before
    # the waiting push's own window is looked at).
    expired = control.advance_clock(_lifetime(record) + 120)
    assert reference in expired
    stack.wait()  # the emulator's expiry notification (status 7)
    after = service.payment(GATEWAY, reference)
    assert after.status is S.EXPIRED
    service.reconcile(grace=timedelta(0))  # the provider agrees: nothing more happens
    assert service.inquire(GATEWAY, reference).status is S.EXPIRED
    assert transitions_to(stack, after, S.EXPIRED) == 1
    assert effects(stack, order, EventKind.EXPIRED) == 1
    assert notifications(stack, after) == ["applied"]
    late = payer(stack, method, record)
    assert refused(late, "expired"), late.text
    assert control.bill(reference)["status"] == "7"
    gone = requests.get(f"{stack.merchant_url}/pay/{GATEWAY}/{reference}", timeout=10)
    assert gone.status_code == 404


@pytest.mark.parametrize(("method", "backend"), _cases(REPRESENTATIVES))
def test_each_family_cancels_once_and_refuses_the_payer(
    family_stack: ChannelStack, control: EmulatorControl, method: str, backend: str
) -> None:
    stack, service = family_stack, family_stack.service
    order = f"CXL-{method}"
    record, _ = start(stack, order, method)
    reference = record.merchant_reference
    cancelled = service.cancel(GATEWAY, reference, "customer changed their mind")
    assert cancelled.status is S.CANCELLED
    stack.wait()  # the emulator also notifies the cancel (status 8): a duplicate
    assert notifications(stack, cancelled) == ["duplicate"]
    assert service.inquire(GATEWAY, reference).status is S.CANCELLED
    assert transitions_to(stack, cancelled, S.CANCELLED) == 1
    assert effects(stack, order, EventKind.CANCELLED) == 1
    late = payer(stack, method, record)
    assert refused(late, "cancelled"), late.text
    assert control.bill(reference)["status"] == "8"
    gone = requests.get(f"{stack.merchant_url}/pay/{GATEWAY}/{reference}", timeout=10)
    assert gone.status_code == 404
