"""Wire formats: amounts in hundredths, Jakarta dates, phone numbers, safe decoding."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway_core import Money
from gateway_faspay_dana import (
    JAKARTA,
    InvalidRequest,
    PayloadError,
    format_datetime,
    from_wire_amount,
    normalise_msisdn,
    parse_datetime,
    to_wire_amount,
)
from gateway_faspay_dana._wire import decode_json_object, decode_xml_fields, sniff_format

MAX_AMOUNT = 10**15 - 1


def test_amounts_are_sent_in_hundredths_of_a_rupiah() -> None:
    assert to_wire_amount(Money("2000", "IDR")) == "200000"
    assert to_wire_amount(Money("1000.50", "IDR")) == "100050"
    assert to_wire_amount(Money(0, "IDR")) == "0"


def test_wire_amounts_read_back_as_rupiah() -> None:
    assert from_wire_amount("200000") == Money("2000", "IDR")


@given(st.integers(min_value=0, max_value=MAX_AMOUNT))
def test_every_numeric_15_amount_round_trips(minor: int) -> None:
    money = Money.from_minor_units(minor, "IDR")
    assert to_wire_amount(money) == str(minor)
    assert from_wire_amount(str(minor)) == money


def test_amounts_beyond_fifteen_digits_are_refused() -> None:
    with pytest.raises(InvalidRequest):
        to_wire_amount(Money.from_minor_units(MAX_AMOUNT + 1, "IDR"))
    with pytest.raises(PayloadError):
        from_wire_amount(str(MAX_AMOUNT + 1))


@pytest.mark.parametrize("money", [Money("10", "USD"), Money("-1", "IDR")])
def test_non_idr_and_negative_amounts_are_refused(money: Money) -> None:
    with pytest.raises(InvalidRequest):
        to_wire_amount(money)


@pytest.mark.parametrize("text", ["", "1.5", "-100", "1e5", " 100", "１００", "100.00"])
def test_wire_amounts_must_be_digits(text: str) -> None:
    with pytest.raises(PayloadError):
        from_wire_amount(text)


def test_legacy_decimal_amounts_are_read_only_when_allowed() -> None:
    assert from_wire_amount("8000.00", allow_decimals=True) == Money("8000", "IDR")


def test_dates_are_written_as_jakarta_wall_time() -> None:
    assert format_datetime(datetime(2020, 12, 18, 23, 4, 29, tzinfo=UTC)) == "2020-12-19 06:04:29"


def test_dates_are_read_as_jakarta_time() -> None:
    parsed = parse_datetime("2020-12-19 06:04:29")
    assert parsed == datetime(2020, 12, 19, 6, 4, 29, tzinfo=JAKARTA)
    assert parsed.utcoffset() is not None


@pytest.mark.parametrize("text", ["2020-12-19", "2020-13-01 00:00:00", "2020-12-19T06:04:29", ""])
def test_malformed_dates_are_refused(text: str) -> None:
    with pytest.raises(PayloadError):
        parse_datetime(text)


@pytest.mark.parametrize(
    "phone", ["8562927907", "08562927907", "+62 856-2927-907", "62856 2927 907", "(0856) 2927.907"]
)
def test_phone_numbers_take_the_dana_example_form(phone: str) -> None:
    assert normalise_msisdn(phone) == "8562927907"


@pytest.mark.parametrize("phone", ["", "   ", "+62", "0812-abc-567", "12345", "8" * 16])
def test_unusable_phone_numbers_are_refused(phone: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        normalise_msisdn(phone)
    assert info.value.field == "msisdn"


def test_json_with_duplicate_keys_is_refused() -> None:
    with pytest.raises(PayloadError):
        decode_json_object(b'{"bill_no": "1", "bill_no": "2"}')


@pytest.mark.parametrize("body", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}'])
def test_json_constants_are_refused(body: bytes) -> None:
    with pytest.raises(PayloadError):
        decode_json_object(body)


def test_deeply_nested_json_is_refused_before_parsing() -> None:
    with pytest.raises(PayloadError):
        decode_json_object(b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}")


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    assert decode_json_object(b'{"merchant": "' + b"[{" * 50 + b'"}') == {"merchant": "[{" * 50}


@pytest.mark.parametrize("body", [b"[]", b'"x"', b"1", b"null", b"\xff\xfe{}"])
def test_json_must_be_a_utf8_object(body: bytes) -> None:
    with pytest.raises(PayloadError):
        decode_json_object(body)


def test_xml_fields_are_read_from_a_faspay_root() -> None:
    body = b"<?xml version='1.0'?><faspay><bill_no> 42 </bill_no><merchant/></faspay>"
    assert decode_xml_fields(body) == {"bill_no": "42", "merchant": ""}


def test_xml_with_a_dtd_is_refused() -> None:
    body = b'<?xml version="1.0"?><!DOCTYPE faspay [<!ENTITY x "y">]><faspay><a>&x;</a></faspay>'
    with pytest.raises(PayloadError):
        decode_xml_fields(body)


def test_xml_external_entities_are_refused() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE faspay [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<faspay><a>&x;</a></faspay>"
    )
    with pytest.raises(PayloadError):
        decode_xml_fields(body)


def test_a_stray_ampersand_is_escaped_like_faspays_plugin_does() -> None:
    body = b"<faspay><merchant>Toko A & B &amp; C</merchant></faspay>"
    assert decode_xml_fields(body) == {"merchant": "Toko A & B & C"}


def test_repeated_xml_fields_are_refused() -> None:
    with pytest.raises(PayloadError):
        decode_xml_fields(b"<faspay><bill_no>1</bill_no><bill_no>2</bill_no></faspay>")


def test_an_xml_field_with_children_is_not_a_string() -> None:
    fields = decode_xml_fields(b"<faspay><bill_no><x>1</x></bill_no></faspay>")
    assert not isinstance(fields["bill_no"], str)


def test_the_xml_root_must_be_faspay() -> None:
    with pytest.raises(PayloadError):
        decode_xml_fields(b"<other><bill_no>1</bill_no></other>")


@pytest.mark.parametrize(
    ("body", "fmt"),
    [
        (b"  \r\n<faspay/>", "xml"),
        (b"\xef\xbb\xbf{}", "json"),
        (b'\n {"a": 1}', "json"),
        (b"[]", None),
        (b"", None),
        (b"hello", None),
    ],
)
def test_format_is_sniffed_from_the_first_non_blank_byte(body: bytes, fmt: str | None) -> None:
    assert sniff_format(body) == fmt
