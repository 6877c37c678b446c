"""Wire-level parsing and validation of the four JSON API requests (§4–§9, §14, §15).

Tolerances (§14/§15): any ``Content-Type``; values as JSON strings or integers; ``item`` as an
object or an array; ``pay_type``/``payment_plan`` as ``1`` or ``01``; unknown fields ignored;
``request`` text never validated (it may be empty, as the official PHP SDK sends it).

Lengths (§6.1) are checked the way the live sandbox is known to: leniently. A third-party
client's test suite, written against the sandbox, posts a 36-character ``cust_no`` (documented
limit 32) and gets ``00``, so by default a text field over its documented length is accepted
and the leniency is recorded (``leniencies`` of the request, copied into the request log and
the bill record) so a developer sees what real Faspay might refuse. With ``strict`` the
documented limits apply (``30`` Format Error). ASSUMPTION: the sandbox is lenient for every
text length, not only ``cust_no``. ``bill_no`` keeps its 32-character pattern in both modes
(it is signed and echoed in URLs). QRIS 836 accepts empty ``msisdn``/``email`` in both modes
(the Paydia docs sample leaves them empty, channels reference §5.2), also recorded.

Amounts are digit-only strings (or JSON integers) in hundredths of a rupiah, at most 15 digits.
The legacy ``"8000.00"`` form (C6, C2) is tolerated only with exactly two decimals and is read as
rupiah with sen, i.e. normalised to hundredths by dropping the dot (``"8000.00"`` → ``800000``).
Anything else (``"2000.5"``, ``"1,000"``, ``"-5"``, ``"1e3"``, JSON floats) is ``13`` Invalid
Amount.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from gateway_faspay_dana._signature import matches
from gateway_faspay_dana.emulator._channels import channel as channel_spec
from gateway_faspay_dana.emulator._codes import (
    FORMAT_ERROR,
    INVALID_AMOUNT,
    INVALID_MERCHANT,
    MANDATORY,
    NOT_SUPPORTED,
)
from gateway_faspay_dana.emulator._model import Merchant

MAX_EXPIRY = timedelta(days=30)

#: QRIS channels whose docs sample sends empty ``msisdn`` and ``email`` (§5.2).
_CONTACT_OPTIONAL = frozenset({"836"})

_DIGITS = re.compile(r"[0-9]+")
_AMOUNT = re.compile(r"([0-9]{1,15})(?:\.([0-9]{2}))?")
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_BILL_NO = re.compile(r"[A-Za-z0-9._-]{1,32}")
_PLAN = re.compile(r"0?[12]")
_TENOR = re.compile(r"00|03|06|12")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


class Rejected(Exception):
    """A business rejection: ``response_code`` plus a detail kept for the request log.

    ``wrapper`` selects the undocumented ``{"response_error": {...}}`` shape (§2.4).
    """

    def __init__(self, code: str, detail: str = "", *, wrapper: bool = False) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
        self.wrapper = wrapper


class MalformedRequest(Exception):
    """The body is not a JSON object."""


def parse_body(raw: bytes) -> dict[str, Any]:
    """Decode a request body as a UTF-8 JSON object (any Content-Type)."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedRequest(f"body is not JSON: {type(exc).__name__}") from None
    if not isinstance(value, dict):
        raise MalformedRequest("body is not a JSON object")
    return value


def scalar(body: Mapping[str, Any], key: str) -> str | None:
    """A scalar field as text: ``None`` when absent, null or empty; JSON integers accepted.

    Floats, booleans, arrays and objects are ``30`` Format Error.
    """
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, (bool, float, list, dict)):
        raise Rejected(FORMAT_ERROR, f"{key} must be a string")
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise Rejected(FORMAT_ERROR, f"{key} must be a string")
    return value if value != "" else None


def required(body: Mapping[str, Any], key: str) -> str:
    """A mandatory scalar field (``83`` when absent or empty)."""
    value = scalar(body, key)
    if value is None:
        raise Rejected(MANDATORY, f"{key} is mandatory")
    return value


def check_length(
    key: str, value: str, limit: int, *, strict: bool = True, notes: list[str] | None = None
) -> None:
    """``30`` when ``value`` is longer than the documented length (``strict``); otherwise the
    leniency is appended to ``notes``."""
    if len(value) > limit:
        if strict or notes is None:
            raise Rejected(FORMAT_ERROR, f"{key} longer than {limit}")
        notes.append(f"{key} is {len(value)} characters, documented limit {limit}: accepted")


def check_digits(key: str, value: str, limit: int) -> None:
    """``30`` unless ``value`` is 1..limit ASCII digits."""
    if not _DIGITS.fullmatch(value) or len(value) > limit:
        raise Rejected(FORMAT_ERROR, f"{key} must be numeric, at most {limit} digits")


def amount(body: Mapping[str, Any], key: str, *, mandatory: bool) -> int | None:
    """An amount in hundredths of a rupiah (see the module docstring); ``13`` when invalid."""
    value = body.get(key)
    if value is None or value == "":
        if mandatory:
            raise Rejected(MANDATORY, f"{key} is mandatory")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise Rejected(INVALID_AMOUNT, f"{key} must be digits in hundredths")
    if isinstance(value, int):
        if value < 0 or len(str(value)) > 15:
            raise Rejected(INVALID_AMOUNT, f"{key} out of range")
        return value
    match = _AMOUNT.fullmatch(value)
    if match is None:
        raise Rejected(INVALID_AMOUNT, f"{key} must be digits in hundredths")
    whole, cents = match.group(1), match.group(2)
    if cents is None:
        return int(whole)
    if len(whole) + 2 > 15:
        raise Rejected(INVALID_AMOUNT, f"{key} out of range")
    return int(whole) * 100 + int(cents)


def lookup_and_verify(
    body: Mapping[str, Any],
    merchants: Callable[[str], Merchant | None],
    *,
    signed_with_bill_no: bool,
    bad_signature_code: str,
) -> tuple[Merchant, str]:
    """Check the fields needed to authenticate, the merchant and the signature.

    Returns the merchant and ``bill_no`` (``""`` for the channel inquiry).
    """
    merchant_id = required(body, "merchant_id")
    bill_no = required(body, "bill_no") if signed_with_bill_no else ""
    signature = required(body, "signature")
    merchant = merchants(merchant_id)
    if merchant is None:
        raise Rejected(INVALID_MERCHANT, "unknown merchant_id")
    parts = (merchant.user_id, merchant.password, bill_no)
    if not matches(signature, *parts):
        raise Rejected(bad_signature_code, "signature does not match bot<merchant_id>+password")
    return merchant, bill_no


# --- Post Data Transaction -------------------------------------------------------------------

_CREATE_MANDATORY = (
    "merchant",
    "bill_date",
    "bill_expired",
    "bill_desc",
    "bill_currency",
    "cust_no",
    "cust_name",
    "payment_channel",
    "pay_type",
    "msisdn",
    "email",
    "terminal",
)

#: Documented maximum lengths of text fields (§6.1).
_CREATE_LENGTHS = {
    "request": 50,
    "merchant": 32,
    "bill_reff": 32,
    "bill_desc": 128,
    "cust_no": 32,
    "cust_name": 128,
    "cust_lastname": 128,
    "bank_userid": 128,
    "bank_user_id": 128,
    "email": 128,
    "billing_address": 200,
    "billing_address_city": 50,
    "billing_address_region": 100,
    "billing_address_state": 100,
    "billing_address_poscode": 10,
    "billing_address_country_code": 10,
    "receiver_name_for_shipping": 100,
    "shipping_address": 200,
    "shipping_address_city": 50,
    "shipping_address_region": 100,
    "shipping_address_state": 100,
    "shipping_address_poscode": 10,
    "shipping_address_country_code": 10,
    "reserve1": 50,
    "reserve2": 50,
    "signature": 100,
}

_ITEM_MANDATORY = ("product", "qty", "payment_plan", "tenor", "merchant_id")


@dataclasses.dataclass(frozen=True)
class CreateRequest:
    """A validated Post Data Transaction."""

    merchant: Merchant
    merchant_name: str
    bill_no: str
    bill_reff: str
    bill_date: datetime
    bill_expired: datetime
    bill_desc: str
    bill_total: int
    bill_gross: int | None
    bill_tax: int | None
    bill_miscfee: int | None
    cust_no: str
    cust_name: str
    channel: str
    msisdn: str
    email: str
    items: list[dict[str, str]]
    item_was_object: bool
    signature: str = dataclasses.field(repr=False)
    leniencies: tuple[str, ...] = ()


def validate_create(
    body: Mapping[str, Any],
    merchant: Merchant,
    bill_no: str,
    parse_datetime: Callable[[str], datetime],
    *,
    strict: bool = False,
) -> CreateRequest:
    """Validate a Post Data Transaction whose merchant and signature were already checked."""
    notes: list[str] = []
    raw_channel = scalar(body, "payment_channel")
    optional_contact = raw_channel in _CONTACT_OPTIONAL
    values: dict[str, str] = {}
    for key in _CREATE_MANDATORY:
        if optional_contact and key in ("msisdn", "email") and scalar(body, key) is None:
            notes.append(f"{key} empty for channel {raw_channel}: accepted (docs sample, §5.2)")
            values[key] = ""
            continue
        values[key] = required(body, key)
    if body.get("item") in (None, "", [], {}):
        raise Rejected(MANDATORY, "item is mandatory")
    amount(body, "bill_total", mandatory=True)  # 83 before any format check
    for key, limit in _CREATE_LENGTHS.items():
        value = scalar(body, key)
        if value is not None:
            check_length(key, value, limit, strict=strict or key == "signature", notes=notes)
    if not _BILL_NO.fullmatch(bill_no):
        raise Rejected(FORMAT_ERROR, "bill_no must be 1..32 of [A-Za-z0-9._-]")
    check_digits("payment_channel", values["payment_channel"], 32)
    check_digits("terminal", values["terminal"], 16)
    if values["msisdn"]:
        check_digits("msisdn", values["msisdn"], 64)
    if values["email"] and not _EMAIL.fullmatch(values["email"]):
        raise Rejected(FORMAT_ERROR, "email is not an address")
    pay_type = values["pay_type"]
    if pay_type not in ("1", "01"):
        raise Rejected(FORMAT_ERROR, "pay_type must be 1 (full settlement) for this channel")
    if values["bill_currency"] != "IDR":
        raise Rejected(FORMAT_ERROR, "bill_currency must be IDR")
    bill_date = _datetime("bill_date", values["bill_date"], parse_datetime)
    bill_expired = _datetime("bill_expired", values["bill_expired"], parse_datetime)
    if bill_expired <= bill_date:
        raise Rejected(FORMAT_ERROR, "bill_expired must be after bill_date")
    spec = channel_spec(values["payment_channel"])
    max_expiry = spec.max_expiry if spec is not None else MAX_EXPIRY
    if bill_expired - bill_date > max_expiry:
        raise Rejected(FORMAT_ERROR, "bill_expired is more than 30 days after bill_date")
    total = amount(body, "bill_total", mandatory=True)
    assert total is not None
    if total <= 0:
        raise Rejected(INVALID_AMOUNT, "bill_total must be positive")
    gross = amount(body, "bill_gross", mandatory=False)
    tax = amount(body, "bill_tax", mandatory=False)
    miscfee = amount(body, "bill_miscfee", mandatory=False)
    items, was_object = _items(body["item"], strict=strict, notes=notes)
    channel = values["payment_channel"]
    if channel not in merchant.channels:
        raise Rejected(NOT_SUPPORTED, f"channel {channel} not enabled", wrapper=True)
    if spec is None:
        raise Rejected(NOT_SUPPORTED, f"channel {channel} not modelled", wrapper=True)
    signature = scalar(body, "signature")
    assert signature is not None
    return CreateRequest(
        merchant=merchant,
        merchant_name=values["merchant"],
        bill_no=bill_no,
        bill_reff=scalar(body, "bill_reff") or "",
        bill_date=bill_date,
        bill_expired=bill_expired,
        bill_desc=values["bill_desc"],
        bill_total=total,
        bill_gross=gross,
        bill_tax=tax,
        bill_miscfee=miscfee,
        cust_no=values["cust_no"],
        cust_name=values["cust_name"],
        channel=channel,
        msisdn=values["msisdn"],
        email=values["email"],
        items=items,
        item_was_object=was_object,
        signature=signature,
        leniencies=tuple(notes),
    )


def _datetime(key: str, value: str, parse: Callable[[str], datetime]) -> datetime:
    if not _DATETIME.fullmatch(value):
        raise Rejected(FORMAT_ERROR, f"{key} must be YYYY-MM-DD HH:MM:SS")
    try:
        return parse(value)
    except ValueError:
        raise Rejected(FORMAT_ERROR, f"{key} is not a valid date") from None


def _items(raw: object, *, strict: bool, notes: list[str]) -> tuple[list[dict[str, str]], bool]:
    was_object = isinstance(raw, dict)
    entries = [raw] if was_object else raw
    if not isinstance(entries, list) or not entries:
        raise Rejected(FORMAT_ERROR, "item must be an object or a non-empty array")
    items: list[dict[str, str]] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise Rejected(FORMAT_ERROR, "each item must be an object")
        item: dict[str, str] = {}
        item_id = scalar(entry, "id")
        if item_id is not None:
            item["id"] = item_id
        for key in _ITEM_MANDATORY:
            value = scalar(entry, key)
            if value is None:
                raise Rejected(MANDATORY, f"item.{key} is mandatory")
            item[key] = value
        price = amount(entry, "amount", mandatory=True)
        item["amount"] = str(price)
        check_length("item.product", item["product"], 50, strict=strict, notes=notes)
        check_digits("item.qty", item["qty"], 32)
        if int(item["qty"]) <= 0:
            raise Rejected(FORMAT_ERROR, "item.qty must be positive")
        if not _PLAN.fullmatch(item["payment_plan"]):
            raise Rejected(FORMAT_ERROR, "item.payment_plan must be 1 or 2")
        if not _TENOR.fullmatch(item["tenor"]):
            raise Rejected(FORMAT_ERROR, "item.tenor must be 00, 03, 06 or 12")
        check_digits("item.merchant_id", item["merchant_id"], 15)
        ordered: dict[str, str] = {
            key: item[key]
            for key in ("id", "product", "qty", "amount", "payment_plan", "merchant_id", "tenor")
            if key in item
        }
        items.append(ordered)
    return items, was_object


# --- Inquiry / Cancel -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BillReference:
    """A validated ``trx_id`` + ``bill_no`` pair (inquiry and cancel)."""

    merchant: Merchant
    trx_id: str
    bill_no: str
    reason: str = ""
    leniencies: tuple[str, ...] = ()


def validate_reference(
    body: Mapping[str, Any],
    merchant: Merchant,
    bill_no: str,
    *,
    cancel: bool,
    strict: bool = False,
) -> BillReference:
    """Validate an Inquiry Payment Status or Cancel Transaction request."""
    notes: list[str] = []
    trx_id = required(body, "trx_id")
    reason = required(body, "payment_cancel") if cancel else ""
    check_digits("trx_id", trx_id, 16)
    check_length("bill_no", bill_no, 32)
    check_length("payment_cancel", reason, 50, strict=strict, notes=notes)
    request_text = scalar(body, "request")
    if request_text is not None:
        check_length("request", request_text, 50, strict=strict, notes=notes)
    return BillReference(
        merchant=merchant, trx_id=trx_id, bill_no=bill_no, reason=reason, leniencies=tuple(notes)
    )
