"""The customer's return (§12): verified, never settling, strict about types."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway_core import (
    BadSignature,
    MalformedNotification,
    Money,
    NotificationRejected,
    PaymentStatus,
    ReturnResult,
)
from gateway_faspay_dana import FaspayDanaGateway
from gateway_faspay_dana.testing import signed_return_query

DOCS_EXAMPLE = (
    "https://merchant_url.com/thankyou?trx_id=8985999990013136&merchant_id=99999"
    "&merchant=FASPAY+STORE&bill_no=4370&bill_ref=4370&bill_total=10000"
    "&bank_user_name=FaspayTest&status=0&signature=0da33ad07fe9980f7b7ff70a964803e821a86866"
)
FIXTURE_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def docs_query() -> dict[str, str]:
    return dict(parse_qsl(urlsplit(DOCS_EXAMPLE).query))


def query_for(gateway: FaspayDanaGateway, **changes: Any) -> dict[str, str]:
    values: dict[str, Any] = {
        "bill_no": "INV-1",
        "status": PaymentStatus.PAID,
        "trx_id": "9999981900000001",
        "amount": Money("2000", "IDR"),
    }
    values.update(changes)
    return signed_return_query(gateway, **values)


def test_the_docs_return_example_verifies(gateway: FaspayDanaGateway) -> None:
    result = gateway.handle_return(docs_query(), {})
    assert result == ReturnResult(
        provider="faspay_dana",
        merchant_reference="4370",
        status=PaymentStatus.PENDING,
        provider_reference="8985999990013136",
        provider_status="0",
        amount=Money("100", "IDR"),
        merchant_id="99999",
    )


def test_a_return_only_claims_a_status() -> None:
    assert FaspayDanaGateway.trust.return_settles is False


@pytest.mark.parametrize("key", ["bill_ref", "bill_reff"])
def test_bill_ref_and_bill_reff_are_both_accepted(
    gateway: FaspayDanaGateway, key: str
) -> None:  # §14 #1
    query = docs_query()
    reference = query.pop("bill_ref")
    query[key] = reference
    assert gateway.handle_return(query, {}).merchant_reference == "4370"


def test_the_status_parameter_is_what_is_signed(gateway: FaspayDanaGateway) -> None:  # §14 #11
    query = query_for(gateway, status=PaymentStatus.PAID)
    assert gateway.handle_return(query, {}).status is PaymentStatus.PAID
    query["status"] = "3"
    with pytest.raises(BadSignature):
        gateway.handle_return(query, {})


@pytest.mark.parametrize(
    "signature",
    [
        ["0da33ad07fe9980f7b7ff70a964803e821a86866"],
        10,
        None,
        "0DA33AD07FE9980F7B7FF70A964803E821A86866",
        "0da33ad07fe9980f7b7ff70a964803e821a8686",
        "é" * 40,
    ],
    ids=["list", "number", "null", "uppercase", "short", "non-ASCII"],
)
def test_a_signature_of_the_wrong_type_or_shape_is_bad(
    gateway: FaspayDanaGateway, signature: object
) -> None:
    query: dict[str, Any] = docs_query()
    query["signature"] = signature
    with pytest.raises(BadSignature):
        gateway.handle_return(query, {})


def test_a_missing_signature_is_bad(gateway: FaspayDanaGateway) -> None:
    query = docs_query()
    del query["signature"]
    with pytest.raises(BadSignature):
        gateway.handle_return(query, {})


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "6"},
        {"status": ""},
        {"bill_no": ""},
        {"bill_total": "100.00"},
        {"trx_id": "not a trx id!"},
        {"bill_no": ["4370"]},
        {"bill_reff": "other"},
    ],
    ids=["status 6", "no status", "no bill_no", "decimal total", "bad trx_id", "list", "refs"],
)
def test_malformed_returns_are_rejected(
    gateway: FaspayDanaGateway, changes: dict[str, Any]
) -> None:
    query: dict[str, Any] = {**docs_query(), **changes}
    with pytest.raises(MalformedNotification):
        gateway.handle_return(query, {})


def test_too_many_parameters_are_rejected(gateway: FaspayDanaGateway) -> None:
    query = {**docs_query(), **{f"p{i}": "x" for i in range(50)}}
    with pytest.raises(MalformedNotification):
        gateway.handle_return(query, {})


def test_a_query_that_is_not_a_mapping_is_rejected(gateway: FaspayDanaGateway) -> None:
    with pytest.raises(MalformedNotification):
        gateway.handle_return([("bill_no", "1")], {})  # type: ignore[arg-type]


# -- properties ---------------------------------------------------------------------------

QUERY_VALUES = st.one_of(
    st.text(max_size=60),
    st.none(),
    st.integers(),
    st.lists(st.text(max_size=5), max_size=3),
    st.binary(max_size=10),
)


def outcome(gateway: FaspayDanaGateway, query: Any) -> ReturnResult | NotificationRejected:
    try:
        return gateway.handle_return(query, {})
    except NotificationRejected as exc:
        return exc


@FIXTURE_SETTINGS
@given(query=st.dictionaries(st.text(max_size=15), QUERY_VALUES, max_size=12))
def test_any_query_gives_a_result_or_a_rejection(
    gateway: FaspayDanaGateway, query: dict[str, Any]
) -> None:
    assert isinstance(outcome(gateway, query), ReturnResult | NotificationRejected)


FIELDS = ["trx_id", "merchant_id", "merchant", "bill_no", "bill_ref", "bill_total", "status"]


@FIXTURE_SETTINGS
@given(field=st.sampled_from([*FIELDS, "signature"]), value=QUERY_VALUES)
def test_any_one_field_change_gives_a_result_or_a_rejection(
    gateway: FaspayDanaGateway, field: str, value: object
) -> None:
    query: dict[str, Any] = query_for(gateway)
    query[field] = value
    assert isinstance(outcome(gateway, query), ReturnResult | NotificationRejected)


SIGNED_CHANGES = st.one_of(
    st.tuples(st.just("bill_no"), st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True)),
    st.tuples(st.just("status"), st.sampled_from("01345789")),
    st.tuples(st.just("signature"), st.from_regex(r"[0-9a-f]{40}", fullmatch=True)),
)


@FIXTURE_SETTINGS
@given(change=SIGNED_CHANGES)
def test_changing_a_signed_parameter_invalidates_the_return(
    gateway: FaspayDanaGateway, change: tuple[str, str]
) -> None:
    field, value = change
    query = query_for(gateway)
    if query[field] == value:
        return
    query[field] = value
    with pytest.raises(BadSignature):
        gateway.handle_return(query, {})


@FIXTURE_SETTINGS
@given(total=st.integers(min_value=0, max_value=10**15 - 1))
def test_changing_the_unsigned_bill_total_still_verifies(
    gateway: FaspayDanaGateway, total: int
) -> None:
    query = query_for(gateway)
    query["bill_total"] = str(total)
    assert gateway.handle_return(query, {}).amount == Money.from_minor_units(total, "IDR")
