"""The lean reading of a notification (one pass over well-formed strings) decides exactly as
the field-by-field reading: the same message, or the same refusal naming the same field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway_faspay_dana import PayloadError, PaymentNotification
from gateway_faspay_dana._messages.notification import _read_plain

GOOD: dict[str, object] = {
    "request": "Payment Notification",
    "trx_id": "9999981900000001",
    "merchant_id": "99999",
    "merchant": "Bench Store",
    "bill_no": "N00000001-1P",
    "payment_reff": "2026010200000000",
    "payment_date": "2026-01-02 10:11:12",
    "payment_status_code": "2",
    "payment_status_desc": "Payment Success",
    "bill_total": "200000",
    "payment_total": "200000",
    "payment_channel_uid": "819",
    "payment_channel": "DANA",
    "signature": "9443aaafe7b2f7dd8a09e6b2b0a22b64e0f0ed1d",
}

#: Values that break one rule or another, or that only the field-by-field reading accepts.
ODD_VALUES = st.one_of(
    st.none(),
    st.just(""),
    st.just("null"),
    st.just([]),
    st.just({}),
    st.booleans(),
    st.integers(min_value=-5, max_value=10**20),
    st.floats(allow_nan=False),
    st.sampled_from(["0", "2", "9", "99", "8000.00", "1" * 15, "1" * 16, "2026-13-01 00:00:00"]),
    st.text(max_size=40),
    st.text(alphabet="0123456789", min_size=1, max_size=40),
    st.text(min_size=256, max_size=300),
)


def _outcome(read: Any, payload: dict[str, object]) -> object:
    try:
        return read(payload)
    except PayloadError as exc:
        return ("refused", str(exc), exc.field)


def test_a_well_formed_notification_is_read_by_the_lean_reading() -> None:
    assert _read_plain(GOOD) is not None
    lean = PaymentNotification.from_payload(GOOD)
    assert lean == PaymentNotification._from_fields(GOOD)
    assert lean.bill_total == lean.payment_total
    assert str(lean.bill_total) == "2000.00 IDR"


def test_an_integer_field_falls_back_to_the_field_by_field_reading() -> None:
    payload = {**GOOD, "trx_id": 9999981900000001}
    assert _read_plain(payload) is None
    assert PaymentNotification.from_payload(payload).trx_id == "9999981900000001"


@pytest.mark.parametrize("key", sorted(GOOD))
def test_a_missing_field_decides_the_same(key: str) -> None:
    payload = {k: v for k, v in GOOD.items() if k != key}
    expected = _outcome(PaymentNotification._from_fields, payload)
    assert _outcome(PaymentNotification.from_payload, payload) == expected


#: Each breaks a pattern, a length or a type rule of some field (or fits where it may).
SPECIFIC_VALUES = [
    "a b",
    "x" * 33,
    "1" * 16,
    "A1",
    "\u0661\u0662",  # Arabic-Indic digits: not [0-9]
    "12.50",
    "0",
    "-1",
    "null",
    "",
    7,
    None,
]


@pytest.mark.parametrize("value", SPECIFIC_VALUES, ids=repr)
@pytest.mark.parametrize("key", sorted(GOOD))
def test_a_specific_odd_value_decides_the_same(key: str, value: object) -> None:
    payload = {**GOOD, key: value}
    expected = _outcome(PaymentNotification._from_fields, payload)
    assert _outcome(PaymentNotification.from_payload, payload) == expected


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    changes=st.dictionaries(
        st.sampled_from([*sorted(GOOD), "extra"]), ODD_VALUES, min_size=1, max_size=4
    )
)
def test_any_change_decides_the_same(changes: dict[str, object]) -> None:
    payload = {**GOOD, **changes}
    expected = _outcome(PaymentNotification._from_fields, payload)
    assert _outcome(PaymentNotification.from_payload, payload) == expected
