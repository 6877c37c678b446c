"""The value objects: exact money, masked personal data, validated invariants."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway_core import (
    Customer,
    LineItem,
    Money,
    PaymentRequest,
    PaymentStatus,
    RedirectInstruction,
)


def test_money_refuses_floats() -> None:
    with pytest.raises(TypeError, match="floats are refused"):
        Money(20.5, "IDR")  # type: ignore[arg-type]


def test_money_refuses_unknown_currency() -> None:
    with pytest.raises(ValueError, match="currency"):
        Money("1", "XXX")


def test_money_knows_minor_units() -> None:
    assert Money("2000", "IDR").minor_units == 200000
    assert Money("5", "JPY").minor_units == 5
    assert Money("1.234", "KWD").minor_units == 1234


def test_money_refuses_amounts_finer_than_the_currency() -> None:
    with pytest.raises(ValueError, match="finer"):
        Money("0.001", "USD")
    with pytest.raises(ValueError, match="finer"):
        Money("1.5", "JPY")


def test_money_accepts_trailing_zero_precision() -> None:
    assert Money("10.000", "USD") == Money("10", "USD")


@given(st.integers(min_value=0, max_value=10**15 - 1))
def test_minor_units_round_trip(value: int) -> None:
    assert Money.from_minor_units(value, "IDR").minor_units == value


def test_money_arithmetic_keeps_currency() -> None:
    assert Money("1.50", "USD") + Money("2", "USD") == Money("3.50", "USD")
    assert Money("1000", "IDR") * 3 == Money("3000", "IDR")
    with pytest.raises(ValueError, match="cannot add"):
        Money("1", "USD") + Money("1", "EUR")


def test_customer_repr_masks_email_and_phone() -> None:
    text = repr(Customer("Ann", email="ann.secret@example.com", phone="081234567890"))
    assert "ann.secret@example.com" not in text
    assert "081234567890" not in text
    assert "Ann" in text


def test_redirect_repr_hides_the_signed_part_of_the_url() -> None:
    url = "https://x.example/pws/100003/0830000010100000/" + "a" * 40 + "?trx_id=1"
    text = repr(RedirectInstruction(url=url))
    assert "a" * 40 not in text
    assert "trx_id" not in text


def test_payment_request_requires_aware_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        PaymentRequest(
            order_reference="o",
            amount=Money("1", "IDR"),
            customer=Customer("A"),
            description="d",
            return_url="https://r",
            expires_at=datetime(2026, 1, 1),
        )


@pytest.mark.parametrize("amount", ["0", "-5"])
def test_payment_request_amount_must_be_positive(amount: str) -> None:
    with pytest.raises(ValueError, match="positive"):
        PaymentRequest(
            order_reference="o",
            amount=Money(amount, "IDR"),
            customer=Customer("A"),
            description="d",
            return_url="https://r",
        )


def test_line_items_must_share_the_payment_currency() -> None:
    with pytest.raises(ValueError, match="currency"):
        PaymentRequest(
            order_reference="o",
            amount=Money("1", "IDR"),
            customer=Customer("A"),
            description="d",
            return_url="https://r",
            items=[LineItem("x", 1, Money("1", "USD"))],
        )


def test_models_are_frozen() -> None:
    money = Money("1", "IDR")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        money.amount = Decimal(2)  # type: ignore[misc]


def test_final_statuses() -> None:
    assert PaymentStatus.PAID.is_final
    assert not PaymentStatus.PENDING.is_final
    assert not PaymentStatus.UNKNOWN.is_final
    assert datetime.now(UTC)  # keeps the UTC import honest for readers
