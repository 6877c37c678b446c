"""Post data transaction (§6): create the bill, and read Faspay's answer.

:class:`PostDataRequest` is built from the core's :class:`~gateway_core.PaymentRequest` and
checked against §6.1 and the chosen channel's rules (:mod:`gateway_faspay_dana._channels`)
before anything is sent; :class:`PostDataResponse` reads ``trx_id``, ``redirect_url`` and, for
QRIS, ``web_url``, ``alt_url`` and ``qr_content`` (channels reference §5.3).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final, Self

import attrs

from gateway_core import Money, PaymentRequest
from gateway_faspay_dana._channels import Channel, by_method
from gateway_faspay_dana._codes import SUCCESS
from gateway_faspay_dana._config import MAX_EXPIRY, FaspayConfig
from gateway_faspay_dana._errors import InvalidRequest, PayloadError
from gateway_faspay_dana._messages.common import (
    CHANNEL_DANA,
    DIGITS,
    INBOUND_BILL_NO,
    MERCHANT_ID,
    TRX_ID,
    check_aware,
    check_text,
    envelope,
    payload_error,
)
from gateway_faspay_dana._references import order_reference_for_faspay
from gateway_faspay_dana._signature import bill_signature
from gateway_faspay_dana._wire import (
    CURRENCY,
    JAKARTA,
    Fields,
    format_datetime,
    normalise_msisdn,
    to_wire_amount,
)

PAY_TYPE: Final = "1"
PAYMENT_PLAN: Final = "1"
TENOR: Final = "00"
TERMINAL: Final = "10"
#: ``cust_no`` sent when the customer has no id (the field is mandatory, §6.1).
GUEST_CUSTOMER: Final = "guest"

#: Our bill numbers: what :meth:`PostDataRequest.from_payment_request` accepts.
BILL_NO: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")


def channel_for(method: str, config: FaspayConfig) -> Channel:
    """The enabled channel for ``method`` (empty: the first enabled channel, the default).

    Raises :class:`InvalidRequest` (field ``method``) for a method the configuration does not
    enable.
    """
    name = method or config.channels[0]
    channel = by_method(name) if name in config.channels else None
    if channel is None:
        raise InvalidRequest(
            f"payment method {name!r} is not enabled; enabled: {', '.join(config.channels)}",
            field="method",
        )
    return channel


def _check_channel_rules(
    channel: Channel, request: PaymentRequest, bill_date: datetime, expired: datetime
) -> None:
    """The channel's own rules: required customer fields, expiry bounds (ASSUMPTION values,
    see :mod:`gateway_faspay_dana._channels`)."""
    if "phone" in channel.required_fields and not (request.customer.phone or "").strip():
        raise InvalidRequest(
            f"{channel.name} needs the customer's phone number (the {channel.issuer} account)",
            field="msisdn",
        )
    lifetime = expired - bill_date
    if lifetime < channel.min_expiry:
        minutes = int(channel.min_expiry.total_seconds() // 60)
        raise InvalidRequest(
            f"a {channel.name} bill must stay payable at least {minutes} minutes "
            "(expires_at is too early)",
            field="bill_expired",
        )
    if lifetime > channel.max_expiry:
        raise InvalidRequest(
            f"a {channel.name} bill may stay payable at most 30 days", field="bill_expired"
        )


@attrs.frozen
class Address:
    """A billing or shipping address (all optional, §6.1)."""

    address: str = attrs.field(default="", validator=check_text(200, required=False))
    city: str = attrs.field(default="", validator=check_text(50, required=False))
    region: str = attrs.field(default="", validator=check_text(100, required=False))
    state: str = attrs.field(default="", validator=check_text(100, required=False))
    poscode: str = attrs.field(default="", validator=check_text(10, required=False))
    country_code: str = attrs.field(default="", validator=check_text(10, required=False))

    def to_payload(self, prefix: str) -> dict[str, str]:
        keys = _ADDRESS_KEYS.get(prefix) or _address_keys(prefix)
        payload = dict(
            zip(
                keys, (self.address, self.city, self.region, self.state, self.poscode), strict=False
            )
        )
        if self.country_code or prefix == "billing":
            payload[keys[5]] = self.country_code
        return payload


def _address_keys(prefix: str) -> tuple[str, ...]:
    base = f"{prefix}_address"
    return (base, *(f"{base}_{part}" for part in _ADDRESS_PARTS))


_ADDRESS_PARTS: Final = ("city", "region", "state", "poscode", "country_code")
#: The payload keys of the two addresses, built once.
_ADDRESS_KEYS: Final = {prefix: _address_keys(prefix) for prefix in ("billing", "shipping")}


#: The empty address (``Address`` is immutable: one instance serves every message).
NO_ADDRESS: Final = Address()


@attrs.frozen
class PostDataItem:
    """One entry of ``item``. ``amount`` is the item price (D1), in IDR."""

    product: str = attrs.field(validator=check_text(50))
    qty: int
    amount: Money
    merchant_id: str = attrs.field(validator=check_text(5, pattern=r"[0-9]{5}"))
    item_id: str = attrs.field(default="", validator=check_text(32, required=False))
    payment_plan: str = attrs.field(
        default=PAYMENT_PLAN, validator=check_text(2, pattern=r"0?[12]")
    )
    tenor: str = attrs.field(default=TENOR, validator=check_text(2, pattern=r"[0-9]{2}"))
    #: ``amount`` on the wire, checked and converted once, when the item is built.
    _wire_amount: str = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_wire_amount", to_wire_amount(self.amount, field="amount"))
        qty = self.qty
        if qty.__class__ is not int or not 1 <= qty < _QTY_LIMIT:
            if isinstance(qty, bool) or not isinstance(qty, int) or not qty >= 1:
                raise InvalidRequest("item qty must be a positive integer", field="qty")
            if len(str(qty)) > 32:
                raise InvalidRequest("item qty exceeds Faspay's 32 digits", field="qty")

    def to_payload(self) -> dict[str, str]:
        payload = {
            "product": self.product,
            "qty": str(self.qty),
            "amount": self._wire_amount,
            "payment_plan": self.payment_plan,
            "merchant_id": self.merchant_id,
            "tenor": self.tenor,
        }
        if self.item_id:
            return {"id": self.item_id, **payload}
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
                qty=int(fields.text("qty", required=True, numeric=True, pattern=DIGITS)),
                amount=amount,
                merchant_id=fields.text("merchant_id", required=True, numeric=True),
                item_id=fields.text("id", numeric=True),
                payment_plan=plan,
                tenor=fields.text("tenor", numeric=True) or TENOR,
            )
        except InvalidRequest as exc:
            raise payload_error(exc) from None


#: Quantities below this have at most 32 digits.
_QTY_LIMIT: Final = 10**32


def _item_tuple(items: Iterable[PostDataItem]) -> tuple[PostDataItem, ...]:
    return tuple(items)


def items_of(value: object, *, strict: bool) -> tuple[PostDataItem, ...]:
    """``item`` / ``bill_items`` as an array, a single object (§14 #8) or empty; with
    ``strict``, an entry that is not an item is a :class:`PayloadError`, else the echo
    reads as empty."""
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

    merchant_id: str = attrs.field(validator=check_text(5, pattern=r"[0-9]{5}"))
    merchant: str = attrs.field(validator=check_text(32))
    bill_no: str = attrs.field(validator=check_text(32, pattern=BILL_NO.pattern))
    bill_reff: str = attrs.field(default="", validator=check_text(32, required=False))
    bill_date: datetime = attrs.field(validator=check_aware)
    bill_expired: datetime = attrs.field(validator=check_aware)
    bill_desc: str = attrs.field(validator=check_text(128))
    bill_currency: str = CURRENCY
    bill_gross: Money
    bill_miscfee: Money
    bill_total: Money
    cust_no: str = attrs.field(validator=check_text(32))
    cust_name: str = attrs.field(validator=check_text(128))
    payment_channel: str = attrs.field(default=CHANNEL_DANA, validator=check_text(32))
    pay_type: str = attrs.field(default=PAY_TYPE, validator=check_text(2, pattern=r"0?[1-3]"))
    bank_userid: str = attrs.field(default="", validator=check_text(128, required=False))
    msisdn: str = attrs.field(repr=False, validator=check_text(64, pattern=r"[0-9]+"))
    email: str = attrs.field(repr=False, validator=check_text(128))
    terminal: str = attrs.field(default=TERMINAL, validator=check_text(16, pattern=r"[0-9]+"))
    billing: Address = attrs.field(default=NO_ADDRESS, repr=False)
    receiver_name_for_shipping: str = attrs.field(
        default="", repr=False, validator=check_text(100, required=False)
    )
    shipping: Address = attrs.field(default=NO_ADDRESS, repr=False)
    items: tuple[PostDataItem, ...] = attrs.field(converter=_item_tuple)
    reserve1: str = attrs.field(default="", validator=check_text(50, required=False))
    reserve2: str = attrs.field(default="", validator=check_text(50, required=False))
    signature: str = attrs.field(repr=False)
    request: str = attrs.field(
        default="Post Data Transaction", validator=check_text(50, required=False)
    )
    #: ``bill_gross``, ``bill_miscfee`` and ``bill_total`` on the wire, checked and
    #: converted once, when the message is built.
    _wire_amounts: tuple[str, str, str] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        wire = (
            to_wire_amount(self.bill_gross, field="bill_gross"),
            to_wire_amount(self.bill_miscfee, field="bill_miscfee"),
            to_wire_amount(self.bill_total, field="bill_total"),
        )
        object.__setattr__(self, "_wire_amounts", wire)
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
        the channel's default lifetime) the ``bill_expired``; ``method`` the channel (see
        :func:`channel_for`), whose code is ``payment_channel``. ``extra_fees`` is
        ``bill_miscfee`` and ``amount - extra_fees`` is ``bill_gross``, so gross + miscfee =
        total. Without line items, one item named after the description carries
        ``bill_gross``. Raises
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
        channel = channel_for(request.method, config)
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
            expired = bill_date + channel.default_expiry(config.bill_expiry)
        if expired <= now:
            raise InvalidRequest("expires_at is in the past", field="bill_expired")
        _check_channel_rules(channel, request, bill_date, expired)
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
            payment_channel=channel.code,
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
            "bill_gross": self._wire_amounts[0],
            "bill_miscfee": self._wire_amounts[1],
            "bill_total": self._wire_amounts[2],
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


@attrs.frozen
class PostDataResponse:
    """The answer to post data: ``trx_id`` and (JSON only) ``redirect_url`` on success.

    For a VA or retail bill the ``trx_id`` is also the number the customer pays to (§3.3,
    §6); for QRIS ``qr_content`` (the EMV payload), ``web_url`` (a PNG of the QR) and
    ``alt_url`` (a page with only the QR) may come too (§5.3; ASSUMPTION: any of them may be
    missing, the "redirect type" carries only ``redirect_url``). Unknown keys (such as
    ``external_id``) are ignored.
    """

    response_code: str
    response_desc: str = ""
    trx_id: str = ""
    merchant_id: str = ""
    merchant: str = ""
    bill_no: str = ""
    redirect_url: str = attrs.field(default="", repr=False)
    bill_items: tuple[PostDataItem, ...] = ()
    response: str = ""
    web_url: str = attrs.field(default="", repr=False)
    alt_url: str = attrs.field(default="", repr=False)
    qr_content: str = attrs.field(default="", repr=False)

    @property
    def succeeded(self) -> bool:
        """True for ``response_code == "00"``."""
        return self.response_code == SUCCESS

    @classmethod
    def from_payload(
        cls, payload: Mapping[str, object], *, sent: PostDataRequest | None = None
    ) -> Self:
        """Both shapes; a success must carry ``trx_id``. ``bill_items`` is read best-effort
        (an odd echo never fails a bill that Faspay created). When ``sent`` is the request
        this answers and ``bill_items`` echoes its items exactly, they are ``sent.items``
        (already checked when built) rather than read again field by field."""
        fields, code, desc = envelope(payload)
        success = code == SUCCESS
        echo = fields.raw("bill_items")
        return cls(
            response_code=code,
            response_desc=desc,
            trx_id=fields.text("trx_id", required=success, numeric=True, pattern=TRX_ID),
            merchant_id=fields.text("merchant_id", numeric=True, pattern=MERCHANT_ID),
            merchant=fields.text("merchant"),
            bill_no=fields.text("bill_no", numeric=True, pattern=INBOUND_BILL_NO),
            redirect_url=fields.text("redirect_url", max_length=2048),
            bill_items=(
                sent.items
                if sent is not None and _echoes(echo, sent.items)
                else items_of(echo, strict=False)
            ),
            response=fields.text("response"),
            web_url=_lenient(fields, "web_url", 2048),
            alt_url=_lenient(fields, "alt_url", 2048),
            qr_content=_lenient(fields, "qr_content", 1024),
        )


def _echoes(echo: object, items: tuple[PostDataItem, ...]) -> bool:
    """True when ``echo`` (``bill_items`` as decoded) is exactly ``items`` as sent."""
    entries = [echo] if isinstance(echo, Mapping) else echo
    return (
        isinstance(entries, list)
        and len(entries) == len(items)
        and all(entry == item.to_payload() for entry, item in zip(entries, items, strict=True))
    )


def _lenient(fields: Fields, key: str, max_length: int) -> str:
    """An optional display field: "" when missing or odd (it never fails a created bill)."""
    try:
        return fields.text(key, max_length=max_length)
    except PayloadError:
        return ""
