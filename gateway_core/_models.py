"""Value objects shared by the platform, the provider plugins and the order system.

All are small frozen attrs classes. Wire formats never appear here: a plugin turns these into
its provider's payloads (``to_payload`` / ``from_payload`` on its own message classes).
Fields that carry secrets or personal data (e-mail, phone, redirect URLs that embed a
signature, raw provider fields) are kept out of ``repr``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import attrs

from gateway_core._redact import mask_email, mask_phone, mask_url

if TYPE_CHECKING:
    from gateway_core._refunds import RefundReport

# ISO 4217 minor units for the currencies a checkout is likely to meet. A currency missing
# from this table is refused rather than guessed.
_MINOR_UNITS: dict[str, int] = {
    "AED": 2,
    "AUD": 2,
    "BHD": 3,
    "BRL": 2,
    "CAD": 2,
    "CHF": 2,
    "CLP": 0,
    "CNY": 2,
    "CZK": 2,
    "DKK": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "HUF": 2,
    "IDR": 2,
    "ILS": 2,
    "INR": 2,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "MXN": 2,
    "MYR": 2,
    "NOK": 2,
    "NZD": 2,
    "OMR": 3,
    "PHP": 2,
    "PLN": 2,
    "SAR": 2,
    "SEK": 2,
    "SGD": 2,
    "THB": 2,
    "TND": 3,
    "TRY": 2,
    "TWD": 2,
    "USD": 2,
    "VND": 0,
    "ZAR": 2,
}


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, bool | float):
        raise TypeError(
            "Money amounts must be Decimal, int or a decimal string; floats are refused "
            "because they cannot represent most decimal amounts exactly"
        )
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"not a decimal amount: {value!r}") from None
    else:
        raise TypeError(f"Money amount must be Decimal, int or str, not {type(value).__name__}")
    if not result.is_finite():
        raise ValueError("Money amount must be finite")
    return result


def _check_currency(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in _MINOR_UNITS:
        raise ValueError(f"unknown or unsupported ISO 4217 currency code: {value!r}")


@attrs.frozen(order=False)
class Money:
    """An exact amount in one ISO 4217 currency.

    ``Money("2000", "IDR")`` is two thousand rupiah. Floats are refused. The amount may not be
    finer than the currency's minor unit (``Money("0.001", "USD")`` is an error).
    """

    amount: Decimal = attrs.field(converter=_to_decimal)
    currency: str = attrs.field(validator=_check_currency)

    def __attrs_post_init__(self) -> None:
        exponent = self.amount.as_tuple().exponent
        assert isinstance(exponent, int)  # finite, checked by the converter
        if -exponent > self.minor_unit_digits and self.amount != self.amount.quantize(
            Decimal(1).scaleb(-self.minor_unit_digits)
        ):
            raise ValueError(
                f"{self.currency} has {self.minor_unit_digits} decimal places; "
                f"{self.amount} is finer than that"
            )

    @property
    def minor_unit_digits(self) -> int:
        """How many decimal places the currency has (2 for IDR and USD, 0 for JPY)."""
        return _MINOR_UNITS[self.currency]

    @property
    def exponent(self) -> int:
        """The currency's ISO 4217 exponent (2 for IDR and USD, 0 for JPY, 3 for KWD).

        The ISO exponent is not a provider's wire unit: several Indonesian providers count
        whole rupiah (exponent 0) although ISO gives IDR two decimals. A plugin converts with
        :meth:`to_units` and :meth:`from_units` using its own provider's exponent.
        """
        return _MINOR_UNITS[self.currency]

    @property
    def minor_units(self) -> int:
        """The amount as an integer count of the currency's ISO minor unit (cents, sen):
        ``to_units(self.exponent)``. The ledger stores this; a provider's wire units may
        differ (see :attr:`exponent`)."""
        return int(self.amount.scaleb(self.minor_unit_digits))

    def to_units(self, exponent: int) -> int:
        """The amount as an integer count of ``10 ** -exponent`` of the currency, for a
        provider's wire format: ``Money("2000", "IDR").to_units(0) == 2000`` (whole rupiah),
        ``.to_units(2) == 200000`` (sen). Raises :class:`ValueError` when the amount is finer
        than that unit (``Money("10.50", "IDR").to_units(0)``): never rounded silently."""
        if isinstance(exponent, bool) or not isinstance(exponent, int) or exponent < 0:
            raise TypeError("exponent must be a non-negative int")
        scaled = self.amount.scaleb(exponent)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{self} cannot be expressed in units of 10^-{exponent}")
        return int(scaled)

    @classmethod
    def from_units(cls, value: int, currency: str, exponent: int) -> Money:
        """The inverse of :meth:`to_units`: ``from_units(2000, "IDR", 0) == Money("2000",
        "IDR")``. Raises :class:`ValueError` when the result is finer than the currency's
        ISO minor unit."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("units must be an int")
        if isinstance(exponent, bool) or not isinstance(exponent, int) or exponent < 0:
            raise TypeError("exponent must be a non-negative int")
        return cls(Decimal(value).scaleb(-exponent), currency)

    @classmethod
    def from_minor_units(cls, value: int, currency: str) -> Money:
        """Build from an integer count of minor units: ``from_minor_units(200000, "IDR")``."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("minor units must be an int")
        return cls(Decimal(value).scaleb(-_MINOR_UNITS.get(currency, 0)), currency)

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(self.amount + other.amount, self.currency)

    def __mul__(self, factor: object) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, int):
            return NotImplemented
        return Money(self.amount * factor, self.currency)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        return self.currency == other.currency and self.amount == other.amount

    def __hash__(self) -> int:
        return hash((self.amount.normalize(), self.currency))

    def __str__(self) -> str:
        return f"{self.amount:.{self.minor_unit_digits}f} {self.currency}"


#: Value types a JSON round trip returns unchanged (exact types: not a float, which may be NaN,
#: nor a subclass such as an IntEnum, which JSON would turn into its base type).
_JSON_SCALARS = frozenset({str, int, bool, type(None)})


def json_object(value: Mapping[str, Any] | None) -> dict[str, Any]:
    """A plain JSON object (a deep copy) of ``value``: what ``provider_data`` may hold.
    Raises :class:`TypeError` for anything JSON cannot carry (a ``Decimal``, a ``datetime``,
    a non-string key), so a plugin's mistake shows at ``create``, not in the ledger."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"provider_data must be a mapping, not {type(value).__name__}")
    if all(k.__class__ is str and v.__class__ in _JSON_SCALARS for k, v in value.items()):
        return dict(value)  # flat, and JSON gives back exactly these values: the copy is this
    try:
        copied = json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"provider_data must be JSON-serialisable: {exc}") from None
    assert isinstance(copied, dict)
    if any(not isinstance(key, str) for key in value):
        raise TypeError("provider_data keys must be strings")
    return copied


def supported_currencies() -> frozenset[str]:
    """The ISO 4217 codes :class:`Money` accepts."""
    return frozenset(_MINOR_UNITS)


class PaymentStatus(enum.Enum):
    """Where a payment stands, in the core's words (a plugin maps its provider's codes here)."""

    PENDING = "pending"
    IN_PROCESS = "in_process"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REVERSED = "reversed"
    UNKNOWN = "unknown"
    #: Paid, and part of the amount refunded (refunds are recorded one by one).
    PARTIALLY_REFUNDED = "partially_refunded"
    #: Paid, and the whole amount refunded.
    REFUNDED = "refunded"

    @property
    def is_final(self) -> bool:
        """True for statuses no provider message can move forward except a reversal of paid."""
        return self in _FINAL


_FINAL = frozenset(
    {
        PaymentStatus.PAID,
        PaymentStatus.FAILED,
        PaymentStatus.EXPIRED,
        PaymentStatus.CANCELLED,
        PaymentStatus.REVERSED,
        PaymentStatus.PARTIALLY_REFUNDED,
        PaymentStatus.REFUNDED,
    }
)


class Capability(enum.Enum):
    """An operation a provider plugin implements. ``create`` and friends are always required."""

    CREATE = "create"
    REDIRECT = "redirect"
    HANDLE_RETURN = "handle_return"
    HANDLE_NOTIFICATION = "handle_notification"
    INQUIRE = "inquire"
    CANCEL = "cancel"
    #: Give back all or part of a paid payment (:meth:`Gateway.refund`).
    REFUND = "refund"


class SignedField(enum.Enum):
    """A piece of a provider's inbound message that its signature may or may not protect."""

    MERCHANT_REFERENCE = "merchant_reference"
    STATUS = "status"
    AMOUNT = "amount"
    PROVIDER_REFERENCE = "provider_reference"
    MERCHANT = "merchant"
    TIMESTAMP = "timestamp"


@attrs.frozen
class TrustDeclaration:
    """What a provider's inbound messages prove, so the core knows what it must still check.

    ``notification_covers`` lists the fields the notification signature binds; anything else
    in the notification (amount, provider transaction id, merchant) is checked against the
    ledger by the core. ``notification_replayable`` is true when the same signed message can
    be sent again (no timestamp or nonce). ``return_settles`` is false when the customer's
    return may only trigger an inquiry, never a status change.

    ``notification_settles`` is false when a verified notification alone does not prove the
    status it reports (Faspay's signature is unkeyed per message, replayable, and its values
    collide with signatures the customer's browser sees): the payment service then confirms
    every notification that would change a payment by an inquiry before applying it, and
    replies with the provider's failure reply when it cannot confirm. Such a provider must
    declare the ``INQUIRE`` capability.
    """

    notification_covers: frozenset[SignedField]
    notification_replayable: bool
    return_covers: frozenset[SignedField] = frozenset()
    return_settles: bool = False
    notification_settles: bool = True

    def notification_proves(self, field: SignedField) -> bool:
        """True when the notification signature binds ``field``."""
        return field in self.notification_covers


@attrs.frozen
class Customer:
    """The paying customer. E-mail and phone are personal data: masked in ``repr``."""

    name: str
    email: str = attrs.field(default="", repr=mask_email)
    phone: str = attrs.field(default="", repr=mask_phone)
    customer_id: str = ""


@attrs.frozen
class LineItem:
    """One line of the order: ``quantity`` × ``unit_price``."""

    name: str
    quantity: int
    unit_price: Money
    item_id: str = ""

    def __attrs_post_init__(self) -> None:
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int):
            raise TypeError("quantity must be an int")
        if self.quantity < 1:
            raise ValueError("quantity must be at least 1")

    @property
    def total(self) -> Money:
        """``quantity × unit_price``."""
        return self.unit_price * self.quantity


def _to_items(value: Iterable[LineItem]) -> tuple[LineItem, ...]:
    return tuple(value)


@attrs.frozen
class PaymentRequest:
    """What the platform asks a provider to collect.

    ``merchant_reference`` is the provider-side bill number; when empty the payment service
    makes one per attempt (a retried order gets a new one). ``expires_at`` must be timezone
    aware. ``idempotency_key`` is set by the payment service for a gateway that declares
    ``idempotent_create``: the same key for every send of one attempt's create.

    ``method`` is the payment method the customer chose, by the provider's own name (one of
    the gateway's :attr:`~gateway_core.Gateway.payment_methods`, e.g. a bank's virtual
    account or a QR code); empty: the gateway's default method. An attempt is reused only
    for the same method: a customer who switches method gets a new attempt.
    """

    order_reference: str
    amount: Money
    customer: Customer
    description: str
    return_url: str = attrs.field(repr=False)
    expires_at: datetime | None = None
    items: tuple[LineItem, ...] = attrs.field(default=(), converter=_to_items)
    merchant_reference: str = ""
    created_at: datetime | None = None
    extra_fees: Money | None = None
    idempotency_key: str = attrs.field(default="", repr=False)
    method: str = ""

    def __attrs_post_init__(self) -> None:
        if self.amount.amount <= 0:
            raise ValueError("a payment amount must be positive")
        for name in ("expires_at", "created_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware")
        for item in self.items:
            if item.unit_price.currency != self.amount.currency:
                raise ValueError("every line item must be in the payment's currency")


class RedirectMethod(enum.Enum):
    """How the customer's browser is sent to the provider."""

    GET = "GET"
    POST = "POST"


@attrs.frozen
class RedirectInstruction:
    """Where to send the customer. The URL often embeds a signature: it is masked in ``repr``.

    A ``GET`` redirect is a plain link; a ``POST`` redirect is a form the customer's browser
    posts (``form_fields``, kept out of ``repr``) to ``url``: the web app serves it as a small
    auto-submitting page (``GET {prefix}/pay/<gateway>/<merchant_reference>``).
    """

    url: str = attrs.field(repr=mask_url)
    method: RedirectMethod = RedirectMethod.GET
    form_fields: Mapping[str, str] = attrs.field(factory=dict, repr=False)

    @property
    def is_form(self) -> bool:
        """True for a ``POST`` form."""
        return self.method is RedirectMethod.POST


class InstructionKind(enum.Enum):
    """What the customer does when the provider gives instructions instead of a page."""

    #: Transfer to a virtual account (``bank`` and ``number``).
    VIRTUAL_ACCOUNT = "virtual_account"
    #: Scan a QR code (``payload`` is the QR content, e.g. a QRIS string).
    QR = "qr"
    #: Pay with a code at a counter or in an app (``number``).
    PAYMENT_CODE = "payment_code"
    #: Approve a push request the provider sent to the customer's app or phone.
    PUSH = "push"


@attrs.frozen
class PaymentInstructions:
    """How to pay when there is no page to send the customer to: a virtual-account number,
    a QR payload, a payment code, or a push the customer approves in an app.

    ``number`` is the account number or payment code, ``bank`` the bank (virtual accounts),
    ``payload`` the QR content, ``text`` a short human-readable instruction, ``url`` an
    optional deep link or image of the code. None of it proves anything about the payment.
    """

    kind: InstructionKind
    number: str = ""
    bank: str = ""
    payload: str = attrs.field(default="", repr=False)
    expires_at: datetime | None = None
    amount: Money | None = None
    text: str = ""
    url: str = attrs.field(default="", repr=mask_url)


@attrs.frozen
class Payment:
    """A payment as a provider knows it after ``create`` (or after an inquiry).

    ``provider_data`` is the plugin's own memory of the payment: an opaque, JSON-serialisable
    mapping (a checkout token, form fields) that ``create`` returns, the ledger stores, and the
    payment service hands back in the :class:`Payment` given to ``redirect``, ``inquire`` and
    ``cancel``. It never reaches the journal or a hook event and is kept out of ``repr``.
    """

    provider: str
    merchant_reference: str
    status: PaymentStatus
    amount: Money
    provider_reference: str = ""
    redirect: RedirectInstruction | PaymentInstructions | None = None
    order_reference: str = ""
    expires_at: datetime | None = None
    provider_status: str = ""
    provider_data: Mapping[str, Any] = attrs.field(
        factory=dict, converter=json_object, repr=False, hash=False
    )
    #: The payment method of the attempt (:attr:`PaymentRequest.method`; empty: the default).
    method: str = ""


@attrs.frozen
class StatusReport:
    """What a provider says about one payment in answer to ``inquire`` or ``cancel``.

    ``amount`` (the amount the provider says was paid, when it says so) and ``merchant_id``
    are compared with the ledger like a notification's: a mismatch is a review, never a
    transition.
    """

    provider: str
    merchant_reference: str
    provider_reference: str
    status: PaymentStatus
    provider_status: str = ""
    paid_at: datetime | None = None
    payment_reference: str = ""
    amount: Money | None = None
    description: str = ""
    merchant_id: str = ""
    #: Every refund the provider knows of for this payment (providers that can refund).
    refunds: tuple[RefundReport, ...] = ()


@attrs.frozen
class ReturnResult:
    """The customer's return from the provider, parsed and its signature verified.

    ``status`` is what the return *claims*; a provider whose trust declaration says
    ``return_settles=False`` is only telling the platform which page to show. The payment
    service confirms by inquiry.
    """

    provider: str
    merchant_reference: str
    status: PaymentStatus
    provider_reference: str = ""
    provider_status: str = ""
    amount: Money | None = None
    merchant_id: str = ""


@attrs.frozen
class Notification:
    """A provider's server-to-server notification whose signature has been verified.

    ``event_key`` is stable for the same provider event (for example ``bill:status``), so a
    duplicate delivery has the same key. ``fields`` holds the provider's other fields
    (unsigned; kept out of ``repr``). ``body_format`` is the plugin's own label for the wire
    format the provider used (``"json"``, ``"xml"``), for an acknowledgement that must match
    it; the core never reads it.
    """

    provider: str
    merchant_reference: str
    status: PaymentStatus
    event_key: str
    provider_reference: str = ""
    provider_status: str = ""
    merchant_id: str = ""
    amount: Money | None = None
    paid_amount: Money | None = None
    paid_at: datetime | None = None
    payment_reference: str = ""
    body_format: str = "json"
    #: The refunds a refund notification reports (each named by the merchant's key).
    refunds: tuple[RefundReport, ...] = ()
    fields: Mapping[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.frozen
class Acknowledgement:
    """The exact HTTP reply a provider expects to a notification."""

    status_code: int
    content_type: str
    body: bytes
    accepted: bool = True
