"""N6–N9 and N11 (reliability plan §7.3): notifications that must not change a payment —
tampered but correctly signed, badly signed, malformed, for a bill never created, and a flood
of forgeries. Posted over loopback HTTP to the merchant's WSGI endpoint, for every provider
(``faspay_dana`` on SQLite and PostgreSQL, ``midtrans_snap`` on SQLite: the same test code,
parameterised through ``provider_drivers``; each refusal is answered the provider's way:
Faspay's HTTP status with ``response_code`` ``"99"``, Midtrans' non-2xx of its retry class).

A few cases are Faspay's alone, and say why: its separate transaction id (``trx_id``) and
payment total, its legacy signature, its XML format.

Each input is journalled (verdict ``review`` or ``rejected``), leaves every ledger payment, its
transitions and the outbox as they were (apart from the one ``needs_review`` event a tampered
message raises), and produces no lifecycle effect in the order system.

The many cheap cases share one stack per backend (module scope); each test uses its own order.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from provider_drivers import matrix, open_provider_stack
from test_scenarios_support import (
    accepted,
    assert_invariants,
    effects,
    gateway,
    journal,
    new_order,
    notification_for,
    outbox_reviews,
    pay_without_notifying,
    post_notification,
    provider_stack,
    refused,
    response_code,
    reviews,
    snapshot,
    verdicts,
)

from gateway_core import EventKind, Money, PaymentStatus, ServicePolicy
from gateway_core.ledger import PaymentRecord
from gateway_faspay_dana.testing import signed_notification

shared = provider_stack(scope="module")


def faspay_only(stack: Any, why: str) -> None:
    if stack.provider != "faspay_dana":
        pytest.skip(f"Faspay only: {why}")


@pytest.fixture
def pending(shared: Any) -> PaymentRecord:
    """A fresh pending payment (its bill unpaid at the emulator) on the shared stack."""
    record: PaymentRecord = shared.start(new_order("REJ")).payment
    assert record.status is PaymentStatus.PENDING
    return record


def _journal_size(stack: Any) -> int:
    return len(journal(stack))


def _new_entries(stack: Any, since: int) -> list[tuple[str, str, str]]:
    return [(e.kind, e.verdict, e.reason) for e in journal(stack)[since:]]


# -- N6: correctly signed, but not what the ledger says ---------------------------------------


def _assert_quarantined(
    stack: Any, record: PaymentRecord, reply: requests.Response, reason: str, since: int
) -> None:
    # Acknowledged (policy ``acknowledge_review``, default True) so the provider's retries
    # don't bury the alert, but nothing is fulfilled.
    assert accepted(stack, reply)
    assert stack.record(record.merchant_reference) == record  # status, version, references
    assert record.id is not None
    assert [t.to_status for t in stack.ledger.transitions(record.id)] == [PaymentStatus.PENDING]
    assert _new_entries(stack, since) == [("notification", "review", reason)]
    assert outbox_reviews(stack, record) == [reason]
    assert effects(stack, record.order_reference, EventKind.PAID) == 0


def test_n6_tampered_amounts_are_quarantined_as_amount_mismatch(
    shared: Any, pending: PaymentRecord
) -> None:
    since = _journal_size(shared)
    body = notification_for(shared, pending, amount=Money("1", "IDR"))

    reply = post_notification(shared, body)

    _assert_quarantined(shared, pending, reply, "amount_mismatch", since)


def test_n6_tampered_payment_total_alone_is_quarantined_as_amount_mismatch(
    shared: Any, pending: PaymentRecord
) -> None:
    """Faspay only: Midtrans has no separate payment total (``gross_amount`` is the one
    amount, and it is signed)."""
    faspay_only(shared, "Midtrans has no separate payment total")
    since = _journal_size(shared)
    body = notification_for(shared, pending, paid_amount=Money("1", "IDR"))

    reply = post_notification(shared, body)

    _assert_quarantined(shared, pending, reply, "amount_mismatch", since)


def test_n6_wrong_merchant_id_is_quarantined_as_merchant_mismatch(
    shared: Any, pending: PaymentRecord
) -> None:
    since = _journal_size(shared)
    body = notification_for(shared, pending, merchant_id="88888")  # unsigned field

    reply = post_notification(shared, body)

    _assert_quarantined(shared, pending, reply, "merchant_mismatch", since)


def test_n6_wrong_trx_id_is_quarantined_as_reference_mismatch(
    shared: Any, pending: PaymentRecord
) -> None:
    """Faspay only: its ``trx_id`` is a provider reference apart from the bill number; a
    Midtrans notification's reference is its (signed) order id, the bill number itself."""
    faspay_only(shared, "Midtrans has no provider reference apart from the order id")
    since = _journal_size(shared)
    body = notification_for(shared, pending, trx_id="9999981977777777")

    reply = post_notification(shared, body)

    _assert_quarantined(shared, pending, reply, "reference_mismatch", since)


def test_n6_genuine_payment_after_a_tampered_one_still_pays_once(
    shared: Any, pending: PaymentRecord
) -> None:
    post_notification(shared, notification_for(shared, pending, amount=Money("1", "IDR")))

    shared.driver.pay(shared, pending.merchant_reference)
    shared.wait()

    assert shared.record(pending.merchant_reference).status is PaymentStatus.PAID
    assert effects(shared, pending.order_reference, EventKind.PAID) == 1
    assert reviews(shared, pending.order_reference) == ["amount_mismatch"]
    assert_invariants(shared)


def test_n6_quarantine_alert_reaches_the_order_system_when_acknowledged(
    shared: Any, pending: PaymentRecord
) -> None:
    post_notification(shared, notification_for(shared, pending, amount=Money("1", "IDR")))

    assert reviews(shared, pending.order_reference) == ["amount_mismatch"]
    assert shared.ledger.outbox(pending.id, delivered=False) == []


# -- N7: bad signatures -----------------------------------------------------------------------


def _flip(signature: str) -> str:
    last = signature[-1]
    return signature[:-1] + ("0" if last != "0" else "1")


def _with_signature(stack: Any, body: bytes, value: Any) -> bytes:
    """``body`` with its signature replaced by ``value`` (``...`` removes it)."""
    return bytes(stack.driver.with_signature(body, value))


_SIGNATURE_FORGERIES: dict[str, Callable[[str], Any]] = {
    "bit_flip": _flip,
    "uppercase": str.upper,
    "too_short": lambda s: s[:-1],
    "too_long": lambda s: s + "0",
    "missing": lambda s: ...,
    "null": lambda s: None,
    "number": lambda s: int(s[:15], 16),
    "list": lambda s: [s],
    "non_ascii": lambda s: s[:-1] + "é",
}


@pytest.mark.parametrize("forgery", sorted(_SIGNATURE_FORGERIES))
def test_n7_bad_signature_is_refused_and_changes_nothing(
    shared: Any, pending: PaymentRecord, forgery: str, request: pytest.FixtureRequest
) -> None:
    if shared.provider == "midtrans_snap" and forgery == "uppercase":
        pytest.skip("the Midtrans plugin compares the hex digest lower-cased: the same value")
    good = notification_for(shared, pending)
    signature = shared.driver.signature_of(good)
    forged = _SIGNATURE_FORGERIES[forgery](signature)
    assert forged != signature
    before, since = snapshot(shared), _journal_size(shared)

    reply = post_notification(shared, _with_signature(shared, good, forged))

    assert refused(shared, reply, "bad_signature")
    assert snapshot(shared) == before
    assert _new_entries(shared, since) == [("notification", "rejected", "bad_signature")]
    # I5: journalled with its body, redacted (no run of the real signature survives).
    body = journal(shared)[-1].body
    assert pending.merchant_reference in body
    assert signature[:32].lower() not in body.lower()


def test_n7_legacy_signature_without_status_is_refused(shared: Any, pending: PaymentRecord) -> None:
    """Faspay only: its legacy signature format (without the status)."""
    faspay_only(shared, "Faspay's legacy signature format")
    before, since = snapshot(shared), _journal_size(shared)

    reply = post_notification(shared, notification_for(shared, pending, legacy=True))

    assert (reply.status_code, response_code(reply)) == (403, "99")
    assert snapshot(shared) == before
    assert _new_entries(shared, since) == [("notification", "rejected", "bad_signature")]


def test_n7_signature_for_another_status_is_refused(shared: Any, pending: PaymentRecord) -> None:
    # Signed for "failed", relabelled "paid": the signature covers the status (Faspay's code,
    # Midtrans' status_code).
    relabelled = shared.driver.relabelled(shared, pending)
    before, since = snapshot(shared), _journal_size(shared)

    reply = post_notification(shared, relabelled)

    assert refused(shared, reply, "bad_signature")
    assert snapshot(shared) == before
    assert _new_entries(shared, since) == [("notification", "rejected", "bad_signature")]


# -- N8: malformed bodies ---------------------------------------------------------------------


def _truncated(body: bytes) -> bytes:
    return body[: len(body) // 2]


def _duplicate_status_key(body: bytes) -> bytes:
    # A second status field first (Faspay's payment_status_code "3", Midtrans' status_code
    # "202"): a parser keeping the first value would see a failure, the last a payment.
    if b'"signature_key"' in body:
        return b'{"status_code":"202",' + body[1:]
    return b'{"payment_status_code":"3",' + body[1:]


def _deeply_nested(body: bytes) -> bytes:
    # 5000 levels, still under the 16 KiB cap, so the depth check (not the size cap) refuses it.
    return body[:-1] + b',"x":' + b"[" * 5_000 + b"]" * 5_000 + b"}"


def _unclosed_xml(body: bytes) -> bytes:
    return b'<?xml version="1.0"?><faspay><bill_no>1</bill_no>'


def _xml_with_entities(body: bytes) -> bytes:
    return b'<?xml version="1.0"?><!DOCTYPE faspay [<!ENTITY a "aaaa">]><faspay>&a;</faspay>'


def _xml_repeated_status(body: bytes) -> bytes:
    # Well-formed XML, signed, but with a second payment_status_code element.
    payload = json.loads(body)
    fields = "".join(f"<{k}>{v}</{k}>" for k, v in payload.items())
    extra = "<payment_status_code>3</payment_status_code>"
    return f'<?xml version="1.0"?><faspay>{extra}{fields}</faspay>'.encode()


_MALFORMED: dict[str, Callable[[bytes], bytes]] = {
    "truncated_json": _truncated,
    "duplicate_keys": _duplicate_status_key,
    "deeply_nested_json": _deeply_nested,
    "unclosed_xml": _unclosed_xml,
    "xml_with_dtd": _xml_with_entities,
    "xml_repeated_element": _xml_repeated_status,
    "empty": lambda body: b"",
    "json_array": lambda body: b"[" + body + b"]",
}


@pytest.mark.parametrize("mangle", sorted(_MALFORMED))
def test_n8_malformed_body_is_refused_and_changes_nothing(
    shared: Any, pending: PaymentRecord, mangle: str, request: pytest.FixtureRequest
) -> None:
    body = _MALFORMED[mangle](notification_for(shared, pending))
    before, since = snapshot(shared), _journal_size(shared)

    reply = post_notification(shared, body)

    assert refused(shared, reply, "malformed")
    assert snapshot(shared) == before
    assert _new_entries(shared, since) == [("notification", "rejected", "malformed")]


def test_n8_ten_megabyte_body_is_refused_quickly_in_bounded_memory(
    shared: Any, pending: PaymentRecord
) -> None:
    signed = notification_for(shared, pending)
    body = signed[:-1] + b',"padding":"' + b"x" * (10 * 1024 * 1024) + b'"}'
    before, since = snapshot(shared), _journal_size(shared)

    tracemalloc.start()
    started = time.monotonic()
    try:
        reply = post_notification(shared, body)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert refused(shared, reply, "too_large")
    assert elapsed < 2.0
    # The endpoint reads at most max_body + 1 bytes (16 KiB): nothing near 10 MB was allocated
    # while the request was handled (client and server share this process).
    assert peak < 1024 * 1024
    assert snapshot(shared) == before
    entries = journal(shared)[since:]
    assert [(e.kind, e.verdict, e.reason) for e in entries] == [
        ("notification", "rejected", "too_large")
    ]
    assert len(entries[0].body) <= 4096  # journalled, truncated


def test_n8_well_formed_signed_xml_is_accepted_although_json_is_configured(
    shared: Any, pending: PaymentRecord
) -> None:
    # The configured notification_format is "json", but the gateway sniffs the format from the
    # body: a correctly signed XML notification is verified and applied, and answered in XML.
    faspay_only(shared, "Faspay's XML notification format")
    assert gateway(shared).config.notification_format == "json"
    pay_without_notifying(shared, pending.merchant_reference)
    body = signed_notification(
        gateway(shared),
        bill_no=pending.merchant_reference,
        trx_id=pending.provider_reference,
        status="2",
        amount=pending.amount,
        fmt="xml",
    )

    reply = post_notification(shared, body, content_type="application/json")

    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "application/xml"
    assert response_code(reply) == "00"
    assert shared.record(pending.merchant_reference).status is PaymentStatus.PAID
    assert effects(shared, pending.order_reference, EventKind.PAID) == 1


# -- N9: a bill this ledger never created ----------------------------------------------------


def _unknown_bill_notification(stack: Any) -> bytes:
    return bytes(stack.driver.unknown_notification(stack))


def test_n9_unknown_bill_gets_a_failure_reply_by_default(shared: Any) -> None:
    before, since = snapshot(shared), _journal_size(shared)

    reply = post_notification(shared, _unknown_bill_notification(shared))

    assert refused(shared, reply, "unknown_payment")
    assert snapshot(shared) == before
    assert _new_entries(shared, since) == [("notification", "rejected", "unknown_payment")]


@pytest.fixture(params=matrix())
def acknowledging_stack(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    policy = ServicePolicy(acknowledge_unknown_payment=True, reconcile_grace=timedelta(0))
    provider, backend = request.param
    with open_provider_stack(request.config, provider, backend, tmp_path, policy=policy) as built:
        yield built


def test_n9_unknown_bill_is_acknowledged_without_effect_when_configured(
    acknowledging_stack: Any,
) -> None:
    stack = acknowledging_stack
    before = snapshot(stack)

    reply = post_notification(stack, _unknown_bill_notification(stack))

    assert accepted(stack, reply)
    assert snapshot(stack) == before
    assert stack.recorder.events == []
    assert verdicts(journal(stack)) == [("rejected", "unknown_payment")]


# -- N11: a flood of forgeries costs no provider call ----------------------------------------


def test_n11_forged_flood_makes_no_inquiry_and_changes_nothing(
    shared: Any, pending: PaymentRecord
) -> None:
    good = notification_for(shared, pending)
    forged = shared.driver.forge(good)
    inquiries = shared.driver.inquiries(shared)
    before, since = snapshot(shared), _journal_size(shared)

    with requests.Session() as session:
        replies = [post_notification(shared, forged, session=session) for _ in range(50)]

    assert {refused(shared, r, "bad_signature") for r in replies} == {True}
    assert shared.driver.inquiries(shared) == inquiries
    assert snapshot(shared) == before
    assert _new_entries(shared, since) == [("notification", "rejected", "bad_signature")] * 50
