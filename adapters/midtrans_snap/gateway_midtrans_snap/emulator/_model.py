"""The Midtrans emulator's data: merchants, Snap sessions, payment attempts, refunds, and the
status-code tables (protocol reference §4.5, §8, §11).

Amounts are whole rupiah (``int``) and rendered ``"%d.00"`` (§11.1). Times are aware
datetimes of the emulator clock (Asia/Jakarta), rendered ``YYYY-MM-DD HH:MM:SS``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

#: Midtrans' time zone (WIB, GMT+7, §0 conventions).
JAKARTA = ZoneInfo("Asia/Jakarta")
WALL_FORMAT = "%Y-%m-%d %H:%M:%S"

#: The emulator's default sandbox server key (§1.2's invented example key).
DEFAULT_SERVER_KEY = "SB-Mid-server-Emu1ator-Shared-Key-01"
DEFAULT_CLIENT_KEY = "SB-Mid-client-Emu1ator-Shared-Key-01"
DEFAULT_MERCHANT_ID = "G123450001"

# --- states ------------------------------------------------------------------------------------

PENDING = "pending"
AUTHORIZE = "authorize"
CAPTURE = "capture"
SETTLEMENT = "settlement"
DENY = "deny"
CANCEL = "cancel"
EXPIRE = "expire"
FAILURE = "failure"
REFUND = "refund"
PARTIAL_REFUND = "partial_refund"
CHARGEBACK = "chargeback"
PARTIAL_CHARGEBACK = "partial_chargeback"

STATUSES = frozenset(
    {
        PENDING,
        AUTHORIZE,
        CAPTURE,
        SETTLEMENT,
        DENY,
        CANCEL,
        EXPIRE,
        FAILURE,
        REFUND,
        PARTIAL_REFUND,
        CHARGEBACK,
        PARTIAL_CHARGEBACK,
    }
)
#: An attempt in one of these keeps its order_id "utilized" (§2.10): a re-create is refused.
UTILIZING = frozenset(STATUSES - {EXPIRE, CANCEL, DENY, FAILURE})
#: Money reached the merchant (the Snap session is completed).
PAID = frozenset({CAPTURE, SETTLEMENT, REFUND, PARTIAL_REFUND, CHARGEBACK, PARTIAL_CHARGEBACK})

#: Allowed transitions of the API and the page (§11.3); the control plane may force others.
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({SETTLEMENT, CAPTURE, DENY, EXPIRE, CANCEL, FAILURE}),
    AUTHORIZE: frozenset({CAPTURE, CANCEL, DENY, EXPIRE}),
    CAPTURE: frozenset({SETTLEMENT, CANCEL, DENY}),
    SETTLEMENT: frozenset({REFUND, PARTIAL_REFUND, CHARGEBACK, PARTIAL_CHARGEBACK, DENY}),
    PARTIAL_REFUND: frozenset({PARTIAL_REFUND, REFUND}),
    PARTIAL_CHARGEBACK: frozenset({CHARGEBACK}),
}


def webhook_code(status: str, fraud: str | None, *, cancel_code: str = "202") -> str:
    """``status_code`` of a webhook body (§4.5; ``cancel_code`` is the switchable row)."""
    if status == PENDING or (status == CAPTURE and fraud == "challenge"):
        return "201"
    if status in (DENY, EXPIRE, FAILURE):
        return "202"
    if status == CANCEL:
        return cancel_code
    return "200"


def status_code(status: str, fraud: str | None) -> str:
    """``status_code`` of a Get Status body (§4.5: cancel ``200``, expire ``407``)."""
    if status == EXPIRE:
        return "407"
    if status == CANCEL:
        return "200"
    return webhook_code(status, fraud)


# --- payment methods ----------------------------------------------------------------------------

#: enabled_payments name -> (payment_type, default attempt lifetime) (§2.6, §11.4, D19 201 row).
METHODS: dict[str, tuple[str, timedelta]] = {
    "credit_card": ("credit_card", timedelta(minutes=15)),
    **{
        f"{bank}_va": ("bank_transfer", timedelta(hours=24))
        for bank in ("bca", "bni", "bri", "cimb", "danamon", "bsi", "seabank", "saqu", "permata")
    },
    "other_va": ("bank_transfer", timedelta(hours=24)),
    "echannel": ("echannel", timedelta(hours=24)),
    "gopay": ("gopay", timedelta(minutes=15)),
    "other_qris": ("qris", timedelta(minutes=15)),
    "shopeepay": ("shopeepay", timedelta(minutes=15)),
    "dana": ("dana", timedelta(minutes=15)),
    "ovo": ("ovo", timedelta(minutes=15)),
    "indomaret": ("cstore", timedelta(hours=2)),
    "alfamart": ("cstore", timedelta(hours=2)),
    "akulaku": ("akulaku", timedelta(hours=2)),
    "kredivo": ("kredivo", timedelta(hours=2)),
}
#: Aliases accepted in enabled_payments (§2.6).
ALIASES: dict[str, tuple[str, ...]] = {
    "bank_transfer": tuple(m for m, (t, _) in METHODS.items() if t == "bank_transfer"),
    "cstore": ("indomaret", "alfamart"),
    "store": ("indomaret", "alfamart"),
}
#: Payment types ``/refund`` accepts (§7.3); bank transfer, echannel and cstore cannot be
#: refunded by API (412).
REFUNDABLE = frozenset(
    {"credit_card", "gopay", "shopeepay", "dana", "ovo", "qris", "kredivo", "akulaku"}
)
#: Payment types refunded only in full (§7.2).
FULL_REFUND_ONLY = frozenset({"shopeepay", "ovo"})
#: Payment types where the Idempotency-Key is not applied (§1.4), by enabled_payments name.
NO_IDEMPOTENCY = frozenset({"permata_va", "indomaret"})


def expand_methods(names: list[str] | None) -> list[str]:
    """``enabled_payments`` with aliases expanded and unknown names dropped (all when empty)."""
    out: list[str] = []
    for name in names or []:
        for method in ALIASES.get(name, (name,)):
            if method in METHODS and method not in out:
                out.append(method)
    return out or list(METHODS)


def rupiah(amount: int) -> str:
    """``"250000.00"`` (§11.1)."""
    return f"{int(amount)}.00"


def signature(order_id: str, code: str, gross_amount: str, server_key: str) -> str:
    """``SHA512(order_id + status_code + gross_amount + server_key)`` in lower-case hex (§4.6)."""
    return hashlib.sha512((order_id + code + gross_amount + server_key).encode()).hexdigest()


def mask(secret: str) -> str:
    """A secret shown by its first characters only."""
    return (secret[:14] + "…") if len(secret) > 14 else "…"


# --- records ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Merchant:
    """One merchant account: its keys and dashboard settings (finish/unfinish/error URLs,
    notification URL). ``refund_balance`` None = unlimited; a number caps refunds (414)."""

    server_key: str = DEFAULT_SERVER_KEY
    merchant_id: str = DEFAULT_MERCHANT_ID
    client_key: str = DEFAULT_CLIENT_KEY
    notification_url: str = ""
    finish_url: str = ""
    unfinish_url: str = ""
    error_url: str = ""
    refund_balance: int | None = None

    def to_dict(self, *, show_key: bool = False) -> dict[str, Any]:
        """Plain data (the server key masked unless ``show_key``)."""
        data = dataclasses.asdict(self)
        if not show_key:
            data["server_key"] = mask(self.server_key)
        return data

    def __repr__(self) -> str:
        return f"Merchant(merchant_id={self.merchant_id!r}, server_key={mask(self.server_key)!r})"


@dataclasses.dataclass
class Refund:
    """One refund of a transaction (§11.6) and the answer it got (replayed for its key)."""

    refund_chargeback_id: int
    refund_chargeback_uuid: str
    refund_key: str
    amount: int
    reason: str
    created_at: datetime
    refund_method: str
    bank_confirmed_at: datetime | None
    direct: bool
    response: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Session:
    """A Snap token and its page (§11.2): ``active`` → expired / canceled / superseded /
    completed."""

    token: str
    merchant_id: str
    order_id: str
    gross_amount: int
    #: The create request as sent (customer details included: kept out of ``repr``).
    body: dict[str, Any] = dataclasses.field(repr=False)
    methods: list[str]
    created_at: datetime
    page_expires_at: datetime
    attempt_expires_at: datetime | None
    attempt_lifetime: timedelta | None
    notification_urls: list[str]
    state: str = "active"
    denials: int = 0

    @property
    def callbacks(self) -> dict[str, str]:
        value = self.body.get("callbacks")
        return value if isinstance(value, dict) else {}


@dataclasses.dataclass
class Transaction:
    """One payment attempt (§11.3) with its refunds."""

    transaction_id: str
    merchant_id: str
    order_id: str
    token: str
    method: str
    payment_type: str
    gross_amount: int
    status: str
    fraud_status: str | None
    transaction_time: datetime
    expiry_time: datetime | None
    notification_urls: list[str]
    custom: dict[str, str]
    extras: dict[str, Any]
    settlement_time: datetime | None = None
    captured_at: datetime | None = None
    refunds: list[Refund] = dataclasses.field(default_factory=list)
    history: list[dict[str, str]] = dataclasses.field(default_factory=list)

    @property
    def refunded(self) -> int:
        """Σ refunds so far."""
        return sum(r.amount for r in self.refunds)
