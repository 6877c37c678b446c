"""Merchants the emulator plays Faspay for, and the bills it keeps (its ledger)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Literal

from gateway_faspay_dana.emulator._channels import ALL_CODES, Channel, channel
from gateway_faspay_dana.emulator._codes import DANA, OPEN_STATUSES, UNPROCESSED

NotificationFormat = Literal["json", "xml"]

#: The password Faspay's sandbox documentation uses in every example (§3.1). Fake, public.
SANDBOX_PASSWORD = "p@ssw0rd"  # noqa: S105 - the documented public sandbox value


@dataclasses.dataclass(frozen=True)
class Merchant:
    """A merchant account as Faspay registers it (Merchant Page ▸ Developer Settings).

    ``user_id`` defaults to ``"bot" + merchant_id`` (§3.1); it is used only inside signatures.
    ``notification_url`` and ``return_url`` are registered settings, not request fields; an
    empty ``notification_url`` means notifications are recorded but not sent.
    ``notification_format`` defaults to ``"xml"``, what Faspay's own SDK and plugins parse
    (DANA ref §10.1); ``"json"`` is the other Merchant Page choice. ``channels`` is the enabled
    set channel inquiry returns; ``("all",)`` enables every channel the emulator models.
    """

    merchant_id: str
    merchant_name: str = "Sophia Store"
    user_id: str = ""
    password: str = dataclasses.field(default=SANDBOX_PASSWORD, repr=False)
    notification_url: str = ""
    notification_format: NotificationFormat = "xml"
    return_url: str = ""
    channels: tuple[str, ...] = (DANA,)

    def __post_init__(self) -> None:
        if not isinstance(self.merchant_id, str) or not self.merchant_id.isdigit():
            raise ValueError("merchant_id must be a string of digits")
        if not self.user_id:
            object.__setattr__(self, "user_id", "bot" + self.merchant_id)
        if self.notification_format not in ("json", "xml"):
            raise ValueError("notification_format must be 'json' or 'xml'")
        codes = tuple(str(c) for c in self.channels)
        if "all" in codes:
            codes = tuple(dict.fromkeys((*(c for c in codes if c != "all"), *ALL_CODES)))
        object.__setattr__(self, "channels", codes)

    def to_dict(self, *, show_password: bool = False) -> dict[str, Any]:
        """Plain data (the password masked unless ``show_password``)."""
        return {
            "merchant_id": self.merchant_id,
            "merchant_name": self.merchant_name,
            "user_id": self.user_id,
            "password": self.password if show_password else mask(self.password),
            "notification_url": self.notification_url,
            "notification_format": self.notification_format,
            "return_url": self.return_url,
            "channels": list(self.channels),
        }


def mask(secret: str) -> str:
    """``p@******`` style masking (first two characters kept for recognition only)."""
    if len(secret) <= 2:
        return "*" * len(secret)
    return secret[:2] + "*" * (len(secret) - 2)


@dataclasses.dataclass
class Bill:
    """One Faspay transaction (one ``trx_id``), the emulator's truth."""

    merchant_id: str
    merchant_name: str
    bill_no: str
    trx_id: str
    channel: str
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
    msisdn: str
    email: str
    items: list[dict[str, str]]
    item_was_object: bool
    signature: str = dataclasses.field(repr=False)
    created_at: datetime
    status: str = UNPROCESSED
    payment_reff: str = ""
    payment_date: datetime | None = None
    status_changed_at: datetime | None = None
    cancel_reason: str = ""
    cancel_date: datetime | None = None
    bank_user_name: str = ""
    redirect_url: str = ""
    history: list[dict[str, str]] = dataclasses.field(default_factory=list)
    payment_total: int | None = None
    """What the payer actually paid (hundredths); ``None`` until paid (then ``bill_total``
    unless an amount mismatch was accepted)."""
    payer: str = ""
    """Who paid: the bank, store or QRIS issuer named by the simulated payer."""
    qr_content: str = ""
    ovo_number: str = dataclasses.field(default="", repr=False)
    ovo_push_deadline: datetime | None = None
    """While an OVO push waits for the payer: when its window closes (emulator time)."""
    ovo_refuse_next: bool = False
    """Scripted: the next OVO push for this bill is refused as not registered (``18``)."""
    leniencies: list[str] = dataclasses.field(default_factory=list)

    @property
    def spec(self) -> Channel | None:
        """The registry entry of the bill's channel."""
        return channel(self.channel)

    @property
    def family(self) -> str:
        """The bill's channel family (``dana`` for unmodelled codes)."""
        spec = self.spec
        return spec.family if spec is not None else "dana"

    @property
    def open(self) -> bool:
        """True while the bill can still be paid, failed, expired or cancelled."""
        return self.status in OPEN_STATUSES

    @property
    def total_text(self) -> str:
        """``bill_total`` as the digit-only hundredths string Faspay echoes."""
        return str(self.bill_total)

    @property
    def paid_text(self) -> str:
        """``payment_total`` as text (``bill_total`` when nothing else was paid)."""
        return str(self.bill_total if self.payment_total is None else self.payment_total)
