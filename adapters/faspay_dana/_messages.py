"""One small class per Faspay Debit wire message, with ``to_payload`` / ``from_payload``.

Requests (ours to Faspay) validate Faspay's field rules when constructed and raise
:class:`~adapters.faspay_dana.InvalidRequest`; ``from_payload`` of any class raises
:class:`~adapters.faspay_dana.PayloadError` (it exists for the emulator, round-trip tests and
for Faspay's answers). Responses accept both of Faspay's shapes: the normal body, and the
undocumented ``{"response_error": {"response_code": ..., "response_desc": ...}}`` wrapper
(§2.4), which reads as a response with only a code and a description.

Protocol choices (see the reference's §14):

- ``pay_type`` and ``payment_plan`` are sent as ``"1"``, the documented one-character value
  (the DANA example's ``"01"`` is accepted when parsing; Faspay takes both, #7);
- ``item`` is sent as an array (#8) and read as an array or a single object;
- ``bank_userid`` is spelled as in every sample (#2) and sent only when set; so are the other
  optional fields that are not in the DANA example (``shipping_address_country_code``). The
  DANA example's key set is always sent, addresses as ``""`` when unknown;
- empty values may arrive as ``""``, ``null``, ``[]`` or missing (#14), and ``payment_reff``
  as the literal ``"null"`` (#15).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final, NamedTuple, Self

import attrs

from adapters.faspay_dana._codes import SUCCESS, payment_status
from adapters.faspay_dana._config import MAX_EXPIRY, FaspayConfig
from adapters.faspay_dana._errors import InvalidRequest, PayloadError
from adapters.faspay_dana._references import order_reference_for_faspay
from adapters.faspay_dana._signature import bill_signature, channel_inquiry_signature
from adapters.faspay_dana._wire import (
    CURRENCY,
    JAKARTA,
    Fields,
    decode_json_object,
    decode_xml_fields,
    encode_json,
    encode_xml,
    format_datetime,
    normalise_msisdn,
    parse_datetime,
    sniff_format,
    to_wire_amount,
)
from gateway_core import Money, PaymentRequest, PaymentStatus

CHANNEL_DANA: Final = "819"
PAY_TYPE: Final = "1"
PAYMENT_PLAN: Final = "1"
TENOR: Final = "00"
TERMINAL: Final = "10"
#: ``cust_no`` sent when the customer has no id (the field is mandatory, §6.1).
GUEST_CUSTOMER: Final = "guest"

#: Our bill numbers: what :meth:`PostDataRequest.from_payment_request` accepts.
BILL_NO: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")
#: Bill numbers read from Faspay: any visible ASCII, 1–32 characters.
INBOUND_BILL_NO: Final = re.compile(r"[\x21-\x7e]{1,32}")
TRX_ID: Final = re.compile(r"[0-9A-Za-z]{1,32}")
MERCHANT_ID: Final = re.compile(r"[0-9]{1,15}")
STATUS_CODE: Final = re.compile(r"[0-9]")
_DIGITS: Final = re.compile(r"[0-9]{1,32}")
_PLAN: Final = re.compile(r"0?[1-3]")
_TENOR: Final = re.compile(r"[0-9]{2}")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")

# -- validation helpers for outbound messages -----------------------------------------------


def _text(
    value: object,
    field: str,
    max_length: int,
    *,
    required: bool = True,
    pattern: re.Pattern[str] | None = None,
) -> None:
    if not isinstance(value, str):
        raise InvalidRequest(f"{field} must be a string", field=field)
    if not value:
        if required:
            raise InvalidRequest(f"{field} is required", field=field)
        return
    if len(value) > max_length:
        raise InvalidRequest(f"{field} is longer than Faspay's {max_length}", field=field)
    if _CONTROL.search(value):
        raise InvalidRequest(f"{field} contains control characters", field=field)
    if pattern is not None and pattern.fullmatch(value) is None:
        raise InvalidRequest(f"{field} has the wrong format", field=field)


def _check_text(max_length: int, *, required: bool = True, pattern: str | None = None) -> Any:
    compiled = re.compile(pattern) if pattern is not None else None

    def check(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
        _text(value, attribute.name, max_length, required=required, pattern=compiled)

    return check


def _check_amount(instance: object, attribute: attrs.Attribute[Money], value: Money) -> None:
    to_wire_amount(value, field=attribute.name)


def _check_aware(instance: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidRequest(f"{attribute.name} must be a timezone-aware datetime")


def _payload_error(exc: InvalidRequest) -> PayloadError:
    return PayloadError(exc.message, field=exc.field)


# -- payment channel inquiry (§5) -----------------------------------------------------------


@attrs.frozen
class ChannelInquiryRequest:
    """``POST /cvr/100001/10``: which channels are enabled for the merchant."""

    merchant_id: str = attrs.field(validator=_check_text(5, pattern=r"[0-9]{5}"))
    merchant: str = attrs.field(validator=_check_text(32, required=False))
    signature: str = attrs.field(repr=False)
    request: str = attrs.field(
        default="Request List of Payment Gateway", validator=_check_text(50, required=False)
    )

    @classmethod
    def for_config(cls, config: FaspayConfig) -> Self:
        """The request for ``config``, signed ``sha1(md5(user_id + password))``."""
        return cls(
            merchant_id=config.merchant_id,
            merchant=config.merchant_name,
            signature=channel_inquiry_signature(config.user_id, config.password),
        )

    def to_payload(self) -> dict[str, str]:
        return {
            "request": self.request,
            "merchant_id": self.merchant_id,
            "merchant": self.merchant,
            "signature": self.signature,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> Self:
        fields = Fields(payload)
        try:
            return cls(
                merchant_id=fields.text("merchant_id", required=True, numeric=True),
                merchant=fields.text("merchant"),
                signature=fields.text("signature"),
                request=fields.text("request"),
            )
        except InvalidRequest as exc:
            raise _payload_error(exc) from None


class PaymentChannel(NamedTuple):
    """One enabled channel, a ``(code, name)`` pair: ``pg_code`` (``"819"``) and ``pg_name``
    (``"DANA"``)."""

    code: str
    name: str


@attrs.frozen
class ChannelInquiryResponse:
    """The channel list. Channels sit in a nested ``payment_channel`` array (§14 #12); a
    single object, or the flat ``pg_code``/``pg_name`` of the docs' table, is read too."""

    response_code: str
    response_desc: str = ""
    merchant_id: str = ""
    merchant: str = ""
    channels: tuple[PaymentChannel, ...] = ()
    response: str = ""

    def to_payload(self) -> dict[str, object]:
        return {
            "response": self.response,
            "merchant_id": self.merchant_id,
            "merchant": self.merchant,
            "payment_channel": [{"pg_code": c.code, "pg_name": c.name} for c in self.channels],
            "response_code": self.response_code,
            "response_desc": self.response_desc,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> Self:
        fields, code, desc = _envelope(payload)
        raw = fields.raw("payment_channel")
        if raw == "" and fields.has("pg_code"):
            raw = [{"pg_code": fields.raw("pg_code"), "pg_name": fields.raw("pg_name")}]
        if raw == "":
            entries: list[object] = []
        elif isinstance(raw, Mapping):
            entries = [raw]
        elif isinstance(raw, list):
            entries = raw
        else:
            raise PayloadError("payment_channel must be an array", field="payment_channel")
        channels = []
        for entry in entries:
            item = Fields(_as_channel(entry), what="payment_channel entry")
            channels.append(
                PaymentChannel(
                    code=item.text("pg_code", required=True, numeric=True, pattern=_DIGITS),
                    name=item.text("pg_name"),
                )
            )
        return cls(
            response_code=code,
            response_desc=desc,
            merchant_id=fields.text("merchant_id", numeric=True, pattern=MERCHANT_ID),
            merchant=fields.text("merchant"),
            channels=tuple(channels),
            response=fields.text("response"),
        )


def _as_channel(value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise PayloadError("payment_channel entries must be objects", field="payment_channel")
    return value


def _envelope(payload: Mapping[str, object]) -> tuple[Fields, str, str]:
    """(fields, response_code, response_desc) of a normal or a ``response_error`` body."""
    fields = Fields(payload, what="response")
    if "response_error" in payload:
        error = Fields(_as_mapping(payload["response_error"]), what="response_error")
        code = error.code("response_code")
        # The wrapper only ever carries failures: a missing or "00" code is still one.
        return Fields({}), "" if code == SUCCESS else code, error.text("response_desc")
    return fields, fields.code("response_code", required=True), fields.text("response_desc")


def _as_mapping(value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise PayloadError("response_error must be an object", field="response_error")
    return value


# -- post data transaction (§6) --------------------------------------------------------------


@attrs.frozen
class Address:
    """A billing or shipping address (all optional, §6.1)."""

    address: str = attrs.field(default="", validator=_check_text(200, required=False))
    city: str = attrs.field(default="", validator=_check_text(50, required=False))
    region: str = attrs.field(default="", validator=_check_text(100, required=False))
    state: str = attrs.field(default="", validator=_check_text(100, required=False))
    poscode: str = attrs.field(default="", validator=_check_text(10, required=False))
    country_code: str = attrs.field(default="", validator=_check_text(10, required=False))

    _PARTS = ("", "_city", "_region", "_state", "_poscode", "_country_code")

    def to_payload(self, prefix: str) -> dict[str, str]:
        base = f"{prefix}_address"
        payload = {
            base: self.address,
            f"{base}_city": self.city,
            f"{base}_region": self.region,
            f"{base}_state": self.state,
            f"{base}_poscode": self.poscode,
        }
        if self.country_code or prefix == "billing":
            payload[f"{base}_country_code"] = self.country_code
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, object], prefix: str) -> Self:
        fields = Fields(payload)
        keys = [f"{prefix}_address{part}" for part in cls._PARTS]
        values = [fields.text(key, numeric=True, max_length=200) for key in keys]
        try:
            return cls(*values)
        except InvalidRequest as exc:
            raise _payload_error(exc) from None


@attrs.frozen
class PostDataItem:
    """One entry of ``item``. ``amount`` is the item price (D1), in IDR."""

    product: str = attrs.field(validator=_check_text(50))
    qty: int
    amount: Money = attrs.field(validator=_check_amount)
    merchant_id: str = attrs.field(validator=_check_text(5, pattern=r"[0-9]{5}"))
    item_id: str = attrs.field(default="", validator=_check_text(32, required=False))
    payment_plan: str = attrs.field(
        default=PAYMENT_PLAN, validator=_check_text(2, pattern=r"0?[12]")
    )
    tenor: str = attrs.field(default=TENOR, validator=_check_text(2, pattern=r"[0-9]{2}"))

    def __attrs_post_init__(self) -> None:
        if isinstance(self.qty, bool) or not isinstance(self.qty, int) or not self.qty >= 1:
            raise InvalidRequest("item qty must be a positive integer", field="qty")
        if len(str(self.qty)) > 32:
            raise InvalidRequest("item qty exceeds Faspay's 32 digits", field="qty")

    def to_payload(self) -> dict[str, str]:
        payload = {"id": self.item_id} if self.item_id else {}
        payload.update(
            {
                "product": self.product,
                "qty": str(self.qty),
                "amount": to_wire_amount(self.amount, field="amount"),
                "payment_plan": self.payment_plan,
                "merchant_id": self.merchant_id,
                "tenor": self.tenor,
            }
        )
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> Self:
        fields = Fields(payload, what="item")
        amount = fields.amount("amount", required=True, allow_decimals=True)
        assert amount is not None
        plan = fields.text("payment_plan", numeric=True) or PAYMENT_PLAN
        try:
            return cls(
                product=fields.text("product", required=True),
                qty=int(fields.text("qty", required=True, numeric=True, pattern=_DIGITS)),
                amount=amount,
                merchant_id=fields.text("merchant_id", required=True, numeric=True),
                item_id=fields.text("id", numeric=True),
                payment_plan=plan,
                tenor=fields.text("tenor", numeric=True) or TENOR,
            )
        except InvalidRequest as exc:
            raise _payload_error(exc) from None


def _item_tuple(items: Iterable[PostDataItem]) -> tuple[PostDataItem, ...]:
    return tuple(items)


def _items_of(value: object, *, strict: bool) -> tuple[PostDataItem, ...]:
    """``item`` / ``bill_items`` as an array, a single object (§14 #8) or empty."""
    if value in ("", None) or value == [] or value == {}:
        return ()
    entries = [value] if isinstance(value, Mapping) else value
    if not isinstance(entries, list):
        if strict:
            raise PayloadError("item must be an array or an object", field="item")
        return ()
    try:
        return tuple(PostDataItem.from_payload(_as_item(e)) for e in entries)
    except PayloadError:
        if strict:
            raise
        return ()


def _as_item(value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise PayloadError("item entries must be objects", field="item")
    return value


@attrs.frozen(kw_only=True)
class PostDataRequest:
    """``POST /cvr/300011/10``: create the bill. Validated against §6.1 when built.

    Amounts are IDR :class:`~gateway_core.Money` (sent as hundredths), dates aware datetimes
    (sent as Jakarta wall time). ``bill_expired`` must be after ``bill_date`` and at most 30
    days later.
    """

    merchant_id: str = attrs.field(validator=_check_text(5, pattern=r"[0-9]{5}"))
    merchant: str = attrs.field(validator=_check_text(32))
    bill_no: str = attrs.field(validator=_check_text(32, pattern=BILL_NO.pattern))
    bill_reff: str = attrs.field(default="", validator=_check_text(32, required=False))
    bill_date: datetime = attrs.field(validator=_check_aware)
    bill_expired: datetime = attrs.field(validator=_check_aware)
    bill_desc: str = attrs.field(validator=_check_text(128))
    bill_currency: str = CURRENCY
    bill_gross: Money = attrs.field(validator=_check_amount)
    bill_miscfee: Money = attrs.field(validator=_check_amount)
    bill_total: Money = attrs.field(validator=_check_amount)
    cust_no: str = attrs.field(validator=_check_text(32))
    cust_name: str = attrs.field(validator=_check_text(128))
    payment_channel: str = attrs.field(default=CHANNEL_DANA, validator=_check_text(32))
    pay_type: str = attrs.field(default=PAY_TYPE, validator=_check_text(2, pattern=r"0?[1-3]"))
    bank_userid: str = attrs.field(default="", validator=_check_text(128, required=False))
    msisdn: str = attrs.field(repr=False, validator=_check_text(64, pattern=r"[0-9]+"))
    email: str = attrs.field(repr=False, validator=_check_text(128))
    terminal: str = attrs.field(default=TERMINAL, validator=_check_text(16, pattern=r"[0-9]+"))
    billing: Address = attrs.field(factory=Address, repr=False)
    receiver_name_for_shipping: str = attrs.field(
        default="", repr=False, validator=_check_text(100, required=False)
    )
    shipping: Address = attrs.field(factory=Address, repr=False)
    items: tuple[PostDataItem, ...] = attrs.field(converter=_item_tuple)
    reserve1: str = attrs.field(default="", validator=_check_text(50, required=False))
    reserve2: str = attrs.field(default="", validator=_check_text(50, required=False))
    signature: str = attrs.field(repr=False)
    request: str = attrs.field(
        default="Post Data Transaction", validator=_check_text(50, required=False)
    )

    def __attrs_post_init__(self) -> None:
        if self.bill_currency != CURRENCY:
            raise InvalidRequest("bill_currency must be IDR", field="bill_currency")
        if not self.bill_total.amount > 0:
            raise InvalidRequest("bill_total must be more than zero", field="bill_total")
        if not self.bill_expired > self.bill_date:
            raise InvalidRequest("bill_expired must be after bill_date", field="bill_expired")
        if self.bill_expired - self.bill_date > MAX_EXPIRY:
            raise InvalidRequest(
                "bill_expired must be at most 30 days after bill_date", field="bill_expired"
            )
        if not self.items:
            raise InvalidRequest("at least one item is required", field="item")

    @classmethod
    def from_payment_request(
        cls, request: PaymentRequest, config: FaspayConfig, *, now: datetime
    ) -> Self:
        """The DANA post-data request for ``request``, signed for ``config``.

        ``merchant_reference`` is the ``bill_no``; ``order_reference`` the ``bill_reff``;
        ``created_at`` (else ``now``) the ``bill_date``; ``expires_at`` (else ``bill_date`` +
        ``config.bill_expiry``) the ``bill_expired``. ``extra_fees`` is ``bill_miscfee`` and
        ``amount - extra_fees`` is ``bill_gross``, so gross + miscfee = total. Without line
        items, one item named after the description carries ``bill_gross``. Raises
        :class:`InvalidRequest` for data Faspay would refuse.
        """
        bill_no = request.merchant_reference
        if not isinstance(bill_no, str) or BILL_NO.fullmatch(bill_no) is None:
            raise InvalidRequest(
                "merchant_reference (bill_no) must be 1-32 letters, digits, - or _",
                field="bill_no",
            )
        try:
            return cls._build(request, config, now=now)
        except InvalidRequest as exc:
            exc.merchant_reference = bill_no
            raise

    @classmethod
    def _build(cls, request: PaymentRequest, config: FaspayConfig, *, now: datetime) -> Self:
        total = request.amount
        if total.currency != CURRENCY:
            raise InvalidRequest("Faspay DANA collects IDR only", field="bill_currency")
        fees = request.extra_fees or Money(0, CURRENCY)
        if fees.currency != CURRENCY:
            raise InvalidRequest("extra_fees must be in IDR", field="bill_miscfee")
        gross = Money(total.amount - fees.amount, CURRENCY)
        if gross.amount < 0:
            raise InvalidRequest("extra_fees exceed the amount", field="bill_miscfee")
        for money, field in ((total, "bill_total"), (fees, "bill_miscfee")):
            to_wire_amount(money, field=field)
        bill_date = (request.created_at or now).astimezone(JAKARTA).replace(microsecond=0)
        if request.expires_at is not None:
            expired = request.expires_at.astimezone(JAKARTA).replace(microsecond=0)
        else:
            expired = bill_date + config.bill_expiry
        if expired <= now:
            raise InvalidRequest("expires_at is in the past", field="bill_expired")
        items = [
            PostDataItem(
                product=item.name,
                qty=item.quantity,
                amount=item.unit_price,
                merchant_id=config.merchant_id,
                item_id=item.item_id,
            )
            for item in request.items
        ] or [
            PostDataItem(
                product=request.description[:50],
                qty=1,
                amount=gross,
                merchant_id=config.merchant_id,
            )
        ]
        customer = request.customer
        return cls(
            merchant_id=config.merchant_id,
            merchant=config.merchant_name,
            bill_no=request.merchant_reference,
            bill_reff=order_reference_for_faspay(
                request.order_reference or request.merchant_reference
            ),
            bill_date=bill_date,
            bill_expired=expired,
            bill_desc=request.description,
            bill_gross=gross,
            bill_miscfee=fees,
            bill_total=total,
            cust_no=customer.customer_id or GUEST_CUSTOMER,
            cust_name=customer.name,
            msisdn=normalise_msisdn(customer.phone),
            email=customer.email,
            receiver_name_for_shipping=customer.name[:100],
            items=items,
            signature=bill_signature(config.user_id, config.password, request.merchant_reference),
        )

    def to_payload(self) -> dict[str, object]:
        """The JSON body, keys in the DANA example's order."""
        payload: dict[str, object] = {
            "request": self.request,
            "merchant_id": self.merchant_id,
            "merchant": self.merchant,
            "bill_no": self.bill_no,
            "bill_reff": self.bill_reff,
            "bill_date": format_datetime(self.bill_date),
            "bill_expired": format_datetime(self.bill_expired),
            "bill_desc": self.bill_desc,
            "bill_currency": self.bill_currency,
            "bill_gross": to_wire_amount(self.bill_gross, field="bill_gross"),
            "bill_miscfee": to_wire_amount(self.bill_miscfee, field="bill_miscfee"),
            "bill_total": to_wire_amount(self.bill_total, field="bill_total"),
            "cust_no": self.cust_no,
            "cust_name": self.cust_name,
            "payment_channel": self.payment_channel,
            "pay_type": self.pay_type,
        }
        if self.bank_userid:
            payload["bank_userid"] = self.bank_userid
        payload.update(
            {"msisdn": self.msisdn, "email": self.email, "terminal": self.terminal},
        )
        payload.update(self.billing.to_payload("billing"))
        payload["receiver_name_for_shipping"] = self.receiver_name_for_shipping
        payload.update(self.shipping.to_payload("shipping"))
        payload["item"] = [item.to_payload() for item in self.items]
        payload.update(
            {"reserve1": self.reserve1, "reserve2": self.reserve2, "signature": self.signature}
        )
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> Self:
        """Parse a post-data body leniently, as Faspay does (§15): numbers for numeric
        fields, ``pay_type`` ``1``/``01``, ``item`` as object or array, legacy ``.dd``
        amounts. Unknown fields are ignored."""
        fields = Fields(payload, what="post data")

        def amount(key: str, required: bool = False) -> Money:
            value = fields.amount(key, required=required, allow_decimals=True)
            return value if value is not None else Money(0, CURRENCY)

        try:
            return cls(
                merchant_id=fields.text("merchant_id", required=True, numeric=True),
                merchant=fields.text("merchant", required=True),
                bill_no=fields.text("bill_no", required=True, numeric=True),
                bill_reff=fields.text("bill_reff", numeric=True),
                bill_date=parse_datetime(fields.text("bill_date"), field="bill_date"),
                bill_expired=parse_datetime(fields.text("bill_expired"), field="bill_expired"),
                bill_desc=fields.text("bill_desc", required=True, max_length=1024),
                bill_currency=fields.text("bill_currency", required=True),
                bill_gross=amount("bill_gross"),
                bill_miscfee=amount("bill_miscfee"),
                bill_total=amount("bill_total", required=True),
                cust_no=fields.text("cust_no", required=True, numeric=True),
                cust_name=fields.text("cust_name", required=True),
                payment_channel=fields.text("payment_channel", required=True, numeric=True),
                pay_type=fields.text("pay_type", required=True, numeric=True),
                bank_userid=fields.text("bank_userid") or fields.text("bank_user_id"),
                msisdn=fields.text("msisdn", required=True, numeric=True),
                email=fields.text("email", required=True),
                terminal=fields.text("terminal", required=True, numeric=True),
                billing=Address.from_payload(payload, "billing"),
                receiver_name_for_shipping=fields.text("receiver_name_for_shipping"),
                shipping=Address.from_payload(payload, "shipping"),
                items=_items_of(fields.raw("item"), strict=True),
                reserve1=fields.text("reserve1"),
                reserve2=fields.text("reserve2"),
                signature=fields.text("signature"),
                request=fields.text("request"),
            )
        except InvalidRequest as exc:
            raise _payload_error(exc) from None


@attrs.frozen
class PostDataResponse:
    """The answer to post data: ``trx_id`` and (JSON only) ``redirect_url`` on success."""

    response_code: str
    response_desc: str = ""
    trx_id: str = ""
    merchant_id: str = ""
    merchant: str = ""
    bill_no: str = ""
    redirect_url: str = attrs.field(default="", repr=False)
    bill_items: tuple[PostDataItem, ...] = ()
    response: str = ""

    @property
    def succeeded(self) -> bool:
        """True for ``response_code == "00"``."""
        return self.response_code == SUCCESS

    def to_payload(self) -> dict[str, object]:
        return {
            "response": self.response,
            "trx_id": self.trx_id,
            "merchant_id": self.merchant_id,
            "merchant": self.merchant,
            "bill_no": self.bill_no,
            "bill_items": [item.to_payload() for item in self.bill_items],
            "response_code": self.response_code,
            "response_desc": self.response_desc,
            "redirect_url": self.redirect_url,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> Self:
        """Both shapes; a success must carry ``trx_id``. ``bill_items`` is read best-effort
        (an odd echo never fails a bill that Faspay created)."""
        fields, code, desc = _envelope(payload)
        success = code == SUCCESS
        return cls(
            response_code=code,
            response_desc=desc,
            trx_id=fields.text("trx_id", required=success, numeric=True, pattern=TRX_ID),
            merchant_id=fields.text("merchant_id", numeric=True, pattern=MERCHANT_ID),
            merchant=fields.text("merchant"),
            bill_no=fields.text("bill_no", numeric=True, pattern=INBOUND_BILL_NO),
            redirect_url=fields.text("redirect_url", max_length=2048),
            bill_items=_items_of(fields.raw("bill_items"), strict=False),
            response=fields.text("response"),
        )


# -- inquiry payment status (§8) ------------------------------------------------------------


@attrs.frozen
class InquiryRequest:
    """``POST /cvr/100004/10``: the bill's current status."""

    trx_id: str = attrs.field(validator=_check_text(32, pattern=TRX_ID.pattern))
    merchant_id: str = attrs.field(validator=_check_text(5, pattern=r"[0-9]{5}"))
    bill_no: str = attrs.field(validator=_check_text(32, pattern=INBOUND_BILL_NO.pattern))
    signature: str = attrs.field(repr=False)
    request: str = attrs.field(
        default="Inquiry Payment Status", validator=_check_text(50, required=False)
    )

    @classmethod
    def for_bill(cls, config: FaspayConfig, *, trx_id: str, bill_no: str) -> Self:
        """Signed ``sha1(md5(user_id + password + bill_no))``."""
        return cls(
            trx_id=trx_id,
            merchant_id=config.merchant_id,
            bill_no=bill_no,
            signature=bill_signature(config.user_id, config.password, bill_no),
        )

    def to_payload(self) -> dict[str, str]:
        return {
            "request": self.request,
            "trx_id": self.trx_id,
            "merchant_id": self.merchant_id,
            "bill_no": self.bill_no,
            "signature": self.signature,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> Self:
        fields = Fields(payload, what="inquiry")
        try:
            return cls(
                trx_id=fields.text("trx_id", required=True, numeric=True),
                merchant_id=fields.text("merchant_id", required=True, numeric=True),
                bill_no=fields.text("bill_no", required=True, numeric=True),
                signature=fields.text("signature"),
                request=fields.text("request"),
            )
        except InvalidRequest as exc:
            raise _payload_error(exc) from None


def _status_code(fields: Fields, *, required: bool) -> str:
    code = fields.text("payment_status_code", required=required, numeric=True)
    if code:
        payment_status(code)  # refuses codes outside §11.2
    return code


def _optional_datetime(text: str) -> datetime | None:
    try:
        return parse_datetime(text) if text else None
    except PayloadError:
        return None


@attrs.frozen
class InquiryResponse:
    """The bill's status. ``response_code "00"`` means the inquiry worked, not that the bill
    is paid: that is ``payment_status_code``."""

    response_code: str
    response_desc: str = ""
    trx_id: str = ""
    merchant_id: str = ""
    merchant: str = ""
    bill_no: str = ""
    payment_reff: str = ""
    payment_date: str = ""
    payment_status_code: str = ""
    payment_status_desc: str = ""
    payment_total: Money | None = None
    response: str = ""

    @property
    def status(self) -> PaymentStatus:
        """``payment_status_code`` as the core's status."""
        return payment_status(self.payment_status_code)

    @property
    def paid_at(self) -> datetime | None:
        """``payment_date`` as an aware datetime; ``None`` when empty or unreadable."""
        return _optional_datetime(self.payment_date)

    def to_payload(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "response": self.response,
            "trx_id": self.trx_id,
            "merchant_id": self.merchant_id,
            "merchant": self.merchant,
            "bill_no": self.bill_no,
            "payment_reff": self.payment_reff,
            "payment_date": self.payment_date,
            "payment_status_code": self.payment_status_code,
            "payment_status_desc": self.payment_status_desc,
            "response_code": self.response_code,
            "response_desc": self.response_desc,
        }
        if self.payment_total is not None:
            payload["payment_total"] = to_wire_amount(self.payment_total)
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> Self:
        """Both shapes; a success must carry a documented ``payment_status_code``."""
        fields, code, desc = _envelope(payload)
        return cls(
            response_code=code,
            response_desc=desc,
            trx_id=fields.text("trx_id", numeric=True, pattern=TRX_ID),
            merchant_id=fields.text("merchant_id", numeric=True, pattern=MERCHANT_ID),
            merchant=fields.text("merchant"),
            bill_no=fields.text("bill_no", numeric=True, pattern=INBOUND_BILL_NO),
            payment_reff=fields.text("payment_reff", numeric=True, null_literal=True),
            payment_date=fields.text("payment_date", null_literal=True),
            payment_status_code=_status_code(fields, required=code == SUCCESS),
            payment_status_desc=fields.text("payment_status_desc"),
            payment_total=fields.amount("payment_total"),
            response=fields.text("response"),
        )


# -- cancel transaction (§9) ----------------------------------------------------------------


@attrs.frozen
class CancelRequest:
    """``POST /cvr/100005/10``: void an unpaid bill. ``payment_cancel`` is the reason."""

    trx_id: str = attrs.field(validator=_check_text(32, pattern=TRX_ID.pattern))
    merchant_id: str = attrs.field(validator=_check_text(5, pattern=r"[0-9]{5}"))
    merchant: str = attrs.field(validator=_check_text(32, required=False))
    bill_no: str = attrs.field(validator=_check_text(32, pattern=INBOUND_BILL_NO.pattern))
    payment_cancel: str = attrs.field(validator=_check_text(50))
    signature: str = attrs.field(repr=False)
    request: str = attrs.field(
        default="Canceling Payment", validator=_check_text(50, required=False)
    )

    @classmethod
    def for_bill(cls, config: FaspayConfig, *, trx_id: str, bill_no: str, reason: str) -> Self:
        """Signed ``sha1(md5(user_id + password + bill_no))``; the reason is cut to the
        field's 50 characters (it is display text) and defaults to "Cancelled by merchant"."""
        text = _CONTROL.sub(" ", reason).strip()[:50] or "Cancelled by merchant"
        return cls(
            trx_id=trx_id,
            merchant_id=config.merchant_id,
            merchant=config.merchant_name,
            bill_no=bill_no,
            payment_cancel=text,
            signature=bill_signature(config.user_id, config.password, bill_no),
        )

    def to_payload(self) -> dict[str, str]:
        return {
            "request": self.request,
            "trx_id": self.trx_id,
            "merchant_id": self.merchant_id,
            "merchant": self.merchant,
            "bill_no": self.bill_no,
            "payment_cancel": self.payment_cancel,
            "signature": self.signature,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> Self:
        fields = Fields(payload, what="cancel")
        try:
            return cls(
                trx_id=fields.text("trx_id", required=True, numeric=True),
                merchant_id=fields.text("merchant_id", required=True, numeric=True),
                merchant=fields.text("merchant"),
                bill_no=fields.text("bill_no", required=True, numeric=True),
                payment_cancel=fields.text("payment_cancel", required=True),
                signature=fields.text("signature"),
                request=fields.text("request"),
            )
        except InvalidRequest as exc:
            raise _payload_error(exc) from None


@attrs.frozen
class CancelResponse:
    """The answer to cancel. The reason echo is ``payment_cancel`` (§14 #13; the doc
    table's ``payment_cancel_msg`` is read as a fallback)."""

    response_code: str
    response_desc: str = ""
    trx_id: str = ""
    merchant_id: str = ""
    merchant: str = ""
    bill_no: str = ""
    trx_status_code: str = ""
    trx_status_desc: str = ""
    payment_status_code: str = ""
    payment_status_desc: str = ""
    payment_cancel_date: str = ""
    payment_cancel: str = ""
    response: str = ""

    @property
    def status(self) -> PaymentStatus:
        """``payment_status_code`` as the core's status (``CANCELLED`` after a cancel)."""
        return payment_status(self.payment_status_code)

    def to_payload(self) -> dict[str, object]:
        return {
            "response": self.response,
            "trx_id": self.trx_id,
            "merchant_id": self.merchant_id,
            "merchant": self.merchant,
            "bill_no": self.bill_no,
            "trx_status_code": self.trx_status_code,
            "trx_status_desc": self.trx_status_desc,
            "payment_status_code": self.payment_status_code,
            "payment_status_desc": self.payment_status_desc,
            "payment_cancel_date": self.payment_cancel_date,
            "payment_cancel": self.payment_cancel,
            "response_code": self.response_code,
            "response_desc": self.response_desc,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> Self:
        """Both shapes; a success must carry a documented ``payment_status_code``."""
        fields, code, desc = _envelope(payload)
        return cls(
            response_code=code,
            response_desc=desc,
            trx_id=fields.text("trx_id", numeric=True, pattern=TRX_ID),
            merchant_id=fields.text("merchant_id", numeric=True, pattern=MERCHANT_ID),
            merchant=fields.text("merchant"),
            bill_no=fields.text("bill_no", numeric=True, pattern=INBOUND_BILL_NO),
            trx_status_code=fields.text("trx_status_code", numeric=True),
            trx_status_desc=fields.text("trx_status_desc"),
            payment_status_code=_status_code(fields, required=code == SUCCESS),
            payment_status_desc=fields.text("payment_status_desc"),
            payment_cancel_date=fields.text("payment_cancel_date", null_literal=True),
            payment_cancel=fields.text("payment_cancel") or fields.text("payment_cancel_msg"),
            response=fields.text("response"),
        )


# -- payment notification (§10) ---------------------------------------------------------------

_NOTIFICATION_ORDER: Final = (
    "request",
    "trx_id",
    "merchant_id",
    "merchant",
    "bill_no",
    "payment_reff",
    "payment_date",
    "payment_status_code",
    "payment_status_desc",
    "bill_total",
    "payment_total",
    "payment_channel_uid",
    "payment_channel",
    "signature",
)


@attrs.frozen(kw_only=True)
class PaymentNotification:
    """Faspay's server-to-server notification, parsed with strict types.

    Every field must be a string, except that a JSON integer is tolerated where the field is
    numeric (``trx_id``, ``merchant_id``, ``payment_status_code``, ``bill_total``,
    ``payment_total``, ``payment_channel_uid``: §2.4 notes Faspay tolerates numbers there, so
    its own messages may use them). ``bill_no`` and ``signature`` must be strings (a number
    would lose leading zeros). Mandatory: ``trx_id``, ``merchant_id``, ``bill_no``,
    ``payment_status_code`` (a §11.2 code) and ``bill_total`` (digits, hundredths). Unknown
    fields are ignored. ``signature`` holds the value only when it is a string ("" otherwise);
    verification is the gateway's job, on the raw value.
    """

    trx_id: str
    merchant_id: str
    bill_no: str
    payment_status_code: str
    bill_total: Money
    payment_total: Money | None = None
    payment_reff: str = ""
    payment_date: str = ""
    payment_status_desc: str = ""
    merchant: str = ""
    payment_channel_uid: str = ""
    payment_channel: str = ""
    request: str = "Payment Notification"
    signature: str = attrs.field(default="", repr=False)

    @property
    def status(self) -> PaymentStatus:
        """``payment_status_code`` as the core's status."""
        return payment_status(self.payment_status_code)

    @property
    def paid_at(self) -> datetime | None:
        """``payment_date`` (Jakarta time) as an aware datetime; ``None`` if empty/unreadable."""
        return _optional_datetime(self.payment_date)

    def to_payload(self) -> dict[str, str]:
        """All fields as strings, in the docs' order; amounts in hundredths."""
        values = {
            "request": self.request,
            "trx_id": self.trx_id,
            "merchant_id": self.merchant_id,
            "merchant": self.merchant,
            "bill_no": self.bill_no,
            "payment_reff": self.payment_reff or "null",
            "payment_date": self.payment_date,
            "payment_status_code": self.payment_status_code,
            "payment_status_desc": self.payment_status_desc,
            "bill_total": to_wire_amount(self.bill_total, field="bill_total"),
            "payment_total": (
                to_wire_amount(self.payment_total, field="payment_total")
                if self.payment_total is not None
                else ""
            ),
            "payment_channel_uid": self.payment_channel_uid,
            "payment_channel": self.payment_channel,
            "signature": self.signature,
        }
        return {key: values[key] for key in _NOTIFICATION_ORDER}

    def to_bytes(self, fmt: str = "json") -> bytes:
        """The body Faspay would POST, as JSON or XML."""
        payload = self.to_payload()
        if fmt == "xml":
            return encode_xml(payload.items())
        return encode_json(payload)

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> Self:
        fields = Fields(payload, what="notification")
        bill_total = fields.amount("bill_total", required=True)
        assert bill_total is not None
        signature = payload.get("signature")
        return cls(
            trx_id=fields.text("trx_id", required=True, numeric=True, pattern=TRX_ID),
            merchant_id=fields.text(
                "merchant_id", required=True, numeric=True, pattern=MERCHANT_ID
            ),
            bill_no=fields.text("bill_no", required=True, pattern=INBOUND_BILL_NO),
            payment_status_code=_status_code(fields, required=True),
            bill_total=bill_total,
            payment_total=fields.amount("payment_total"),
            payment_reff=fields.text("payment_reff", numeric=True, null_literal=True),
            payment_date=fields.text("payment_date", null_literal=True),
            payment_status_desc=fields.text("payment_status_desc"),
            merchant=fields.text("merchant"),
            payment_channel_uid=fields.text("payment_channel_uid", numeric=True, pattern=_DIGITS),
            payment_channel=fields.text("payment_channel"),
            request=fields.text("request"),
            signature=signature if isinstance(signature, str) else "",
        )


def decode_notification(body: bytes, *, max_bytes: int) -> tuple[str, dict[str, object]]:
    """(format, decoded fields) of a notification body; :class:`PayloadError` otherwise.

    The body is size-capped first, then its format sniffed from the first non-blank byte
    (``<`` XML, ``{`` JSON), then decoded safely (see :mod:`adapters.faspay_dana._wire`).
    """
    if not isinstance(body, bytes | bytearray):
        raise PayloadError("body must be bytes")
    if len(body) > max_bytes:
        raise PayloadError(f"body is larger than {max_bytes} bytes")
    fmt = sniff_format(body)
    if fmt == "xml":
        return fmt, decode_xml_fields(body)
    if fmt == "json":
        return fmt, decode_json_object(body)
    raise PayloadError("body is neither a JSON object nor an XML document")


# -- notification acknowledgement (§10.4) ---------------------------------------------------


@attrs.frozen(kw_only=True)
class NotificationAck:
    """Our reply to a notification; ``response_code "00"`` accepts it.

    The JSON form carries ``merchant``; the XML form, as in the docs' sample, does not.
    """

    trx_id: str = ""
    merchant_id: str = ""
    merchant: str = ""
    bill_no: str = ""
    response_code: str = SUCCESS
    response_desc: str = "Success"
    response_date: str = ""
    response: str = "Payment Notification"

    def to_payload(self) -> dict[str, str]:
        return {
            "response": self.response,
            "trx_id": self.trx_id,
            "merchant_id": self.merchant_id,
            "merchant": self.merchant,
            "bill_no": self.bill_no,
            "response_code": self.response_code,
            "response_desc": self.response_desc,
            "response_date": self.response_date,
        }

    def to_bytes(self, fmt: str = "json") -> bytes:
        """The reply body in ``fmt`` (``"json"`` or ``"xml"``)."""
        payload = self.to_payload()
        if fmt == "xml":
            payload.pop("merchant")
            return encode_xml(payload.items())
        return encode_json(payload)

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> Self:
        fields = Fields(payload, what="acknowledgement")
        return cls(
            trx_id=fields.text("trx_id", numeric=True),
            merchant_id=fields.text("merchant_id", numeric=True),
            merchant=fields.text("merchant"),
            bill_no=fields.text("bill_no", numeric=True),
            response_code=fields.code("response_code", required=True),
            response_desc=fields.text("response_desc"),
            response_date=fields.text("response_date"),
            response=fields.text("response"),
        )

    @classmethod
    def from_bytes(cls, body: bytes) -> tuple[str, Self]:
        """(format, ack) of a reply body, JSON or XML (for an emulator checking replies)."""
        fmt = sniff_format(body)
        if fmt == "xml":
            return fmt, cls.from_payload(decode_xml_fields(body))
        if fmt == "json":
            return fmt, cls.from_payload(decode_json_object(body))
        raise PayloadError("acknowledgement is neither JSON nor XML")


# -- return URL (§12) -------------------------------------------------------------------------

_RETURN_ORDER: Final = (
    "trx_id",
    "merchant_id",
    "merchant",
    "bill_no",
    "bill_ref",
    "bill_total",
    "payment_reff",
    "payment_date",
    "bank_user_name",
    "status",
    "signature",
)
MAX_QUERY_FIELDS: Final = 40
MAX_QUERY_VALUE: Final = 512


@attrs.frozen(kw_only=True)
class ReturnQuery:
    """The customer's return to our Return URL (a GET query), parsed strictly.

    ``bill_ref`` (the docs' example) and ``bill_reff`` (the docs' table) are both read
    (§14 #1); when both are present they must agree. Every value must be a ``str``; at most
    40 parameters of 512 characters each. ``status`` must be a §11.2 code.
    """

    bill_no: str
    status: str
    trx_id: str = ""
    merchant_id: str = ""
    merchant: str = ""
    bill_reff: str = ""
    bill_total: Money | None = None
    payment_reff: str = ""
    payment_date: str = ""
    bank_user_name: str = attrs.field(default="", repr=False)
    request: str = ""
    signature: str = attrs.field(default="", repr=False)

    @property
    def payment_status(self) -> PaymentStatus:
        """``status`` as the core's status (what the return *claims*)."""
        return payment_status(self.status)

    def to_query(self) -> dict[str, str]:
        """The query parameters in the D7 example's order (``bill_ref`` spelling)."""
        values = {
            "trx_id": self.trx_id,
            "merchant_id": self.merchant_id,
            "merchant": self.merchant,
            "bill_no": self.bill_no,
            "bill_ref": self.bill_reff,
            "bill_total": to_wire_amount(self.bill_total) if self.bill_total is not None else "",
            "payment_reff": self.payment_reff,
            "payment_date": self.payment_date,
            "bank_user_name": self.bank_user_name,
            "status": self.status,
            "signature": self.signature,
        }
        always = ("bill_no", "status")
        return {key: values[key] for key in _RETURN_ORDER if values[key] or key in always}

    @classmethod
    def from_query(cls, query: Mapping[str, object]) -> Self:
        if not isinstance(query, Mapping):
            raise PayloadError("query must be a mapping")
        if len(query) > MAX_QUERY_FIELDS:
            raise PayloadError("too many query parameters")
        for key, value in query.items():
            if not isinstance(key, str):
                raise PayloadError("query parameter names must be strings")
            if key != "signature" and not isinstance(value, str):
                raise PayloadError(f"{key} must be a single string", field=key)
        fields = Fields(query, what="query")
        bill_ref = fields.text("bill_ref", max_length=MAX_QUERY_VALUE)
        bill_reff = fields.text("bill_reff", max_length=MAX_QUERY_VALUE)
        if bill_ref and bill_reff and bill_ref != bill_reff:
            raise PayloadError("bill_ref and bill_reff disagree", field="bill_reff")
        status = fields.text("status", required=True, pattern=STATUS_CODE)
        payment_status(status)
        signature = query.get("signature")
        return cls(
            bill_no=fields.text("bill_no", required=True, pattern=INBOUND_BILL_NO),
            status=status,
            trx_id=fields.text("trx_id", pattern=TRX_ID),
            merchant_id=fields.text("merchant_id", pattern=MERCHANT_ID),
            merchant=fields.text("merchant", max_length=MAX_QUERY_VALUE),
            bill_reff=bill_ref or bill_reff,
            bill_total=fields.amount("bill_total"),
            payment_reff=fields.text("payment_reff", null_literal=True, max_length=MAX_QUERY_VALUE),
            payment_date=fields.text("payment_date", null_literal=True),
            bank_user_name=fields.text("bank_user_name", max_length=MAX_QUERY_VALUE),
            request=fields.text("request", max_length=MAX_QUERY_VALUE),
            signature=signature if isinstance(signature, str) else "",
        )
