"""The channel catalogue: every Faspay Debit channel this plugin speaks, as data.

One gateway configuration enables several channels (``channels = ["dana", "bca_va"]``) and the
checkout picks one per payment by its *method name* (:attr:`gateway_core.PaymentRequest.method`).
All channels use the same Debit API, signatures and notification (channels reference §2); they
differ in the ``payment_channel`` code, in what the customer is shown, and in expiry.

Families (channels reference §1, §2):

``ewallet``
    DANA, ShopeePay App, LinkAja, LinkAja App: the customer is redirected to the wallet's page
    or app, then back to the Return URL (one-step).
``ovo``
    OVO: a push the customer approves in the OVO app (§4.2), through Faspay's page (option a,
    a redirect) or the merchant's page (option b, ``POST /pws/ovo_direct``).
``va``
    Bank virtual accounts: the ``trx_id`` is the account number to transfer to (§3.3); no
    Return URL.
``retail``
    Indomaret and Alfagroup: the ``trx_id`` is the payment code given to the cashier (§6); no
    Return URL.
``qris``
    QRIS: a QR any QRIS app can pay (§5); no Return URL.

ASSUMPTIONS (channels reference §12, §14.7; confirm with Faspay before relying on them):

* Expiry defaults and bounds are not Faspay data. The only documented bound is D1's 30 days
  for every channel. Defaults: 1 day for VA and retail (the official WooCommerce plugin's
  default, C2), 30 minutes for QRIS (docs examples use 10-60 minutes), 5 minutes for OVO
  (C18), the configured ``bill_expiry_minutes`` (60 by default) for redirect e-wallets.
  Minimums: 10 minutes for VA and retail (time to reach an ATM or a store), 1 minute
  otherwise.
* The ``trx_id`` of a VA/retail bill is the number the customer pays to, for every bank
  (observed for BNI, CIMB, Permata, Alfagroup; assumed for BCA, BRI, Mandiri, Maybank,
  Danamon, Sinarmas, Indomaret). Dynamic VAs are closed-amount (transfer the exact total).
* 818 Sinarmas, 825 CIMB Niaga and 715 LinkAja QRIS are two-step like their families
  (the reference marks their flow an assumption); 716 LinkAja App is a one-step redirect.
* Inter-bank codes are those of the official payment guides (C2); Mandiri's Multi Payment
  company code 88308 likewise.

Codes a channel inquiry returns that are not in the catalogue are tolerated
(:func:`by_code` returns None; the inquiry still lists them).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import timedelta
from typing import Final

import attrs

from gateway_core import InstructionKind


class Family(enum.StrEnum):
    """How a channel is paid (see the module docstring)."""

    EWALLET = "ewallet"
    OVO = "ovo"
    VA = "va"
    RETAIL = "retail"
    QRIS = "qris"


#: The families with a Return URL step (one-step channels, §10); the others only notify.
RETURN_URL_FAMILIES: Final = frozenset({Family.EWALLET, Family.OVO})

MAX_EXPIRY: Final = timedelta(days=30)  # D1, every channel

# ASSUMPTION (§14.7): per-family default and minimum lifetimes (see the module docstring).
_DEFAULT_EXPIRY: Final[Mapping[Family, timedelta | None]] = {
    Family.EWALLET: None,  # the configured bill_expiry_minutes
    Family.OVO: timedelta(minutes=5),
    Family.VA: timedelta(days=1),
    Family.RETAIL: timedelta(days=1),
    Family.QRIS: timedelta(minutes=30),
}
_MIN_EXPIRY: Final[Mapping[Family, timedelta]] = {
    Family.EWALLET: timedelta(minutes=1),
    Family.OVO: timedelta(minutes=1),
    Family.VA: timedelta(minutes=10),
    Family.RETAIL: timedelta(minutes=10),
    Family.QRIS: timedelta(minutes=1),
}
#: What the customer is shown per family (None: a redirect to the channel's page).
_INSTRUCTION: Final[Mapping[Family, InstructionKind | None]] = {
    Family.EWALLET: None,
    Family.OVO: InstructionKind.PUSH,  # option b; option a is a redirect
    Family.VA: InstructionKind.VIRTUAL_ACCOUNT,
    Family.RETAIL: InstructionKind.PAYMENT_CODE,
    Family.QRIS: InstructionKind.QR,
}


@attrs.frozen
class Channel:
    """One Faspay Debit channel.

    ``method`` is the stable name a checkout passes as ``PaymentRequest.method``; ``code`` the
    ``payment_channel`` Faspay expects; ``issuer`` the bank, store brand or wallet shown to
    the customer; ``interbank_code`` the bank code other banks transfer to (VA);
    ``required_fields`` the customer fields the channel needs beyond Faspay's mandatory ones;
    ``guide`` a short English instruction (merchant content, not protocol: §3.1);
    ``assumed`` says the channel's flow itself is an ASSUMPTION in the reference.
    """

    method: str
    code: str
    family: Family
    name: str
    issuer: str
    interbank_code: str = ""
    required_fields: tuple[str, ...] = ()
    guide: str = ""
    assumed: bool = False

    @property
    def instruction(self) -> InstructionKind | None:
        """What the customer is shown: an instruction kind, or None for a redirect."""
        return _INSTRUCTION[self.family]

    @property
    def return_url(self) -> bool:
        """True when Faspay sends the customer back to the Return URL (one-step channels)."""
        return self.family in RETURN_URL_FAMILIES

    @property
    def min_expiry(self) -> timedelta:
        """ASSUMPTION: the shortest lifetime accepted for a bill on this channel."""
        return _MIN_EXPIRY[self.family]

    @property
    def max_expiry(self) -> timedelta:
        """D1's 30 days."""
        return MAX_EXPIRY

    def default_expiry(self, configured: timedelta) -> timedelta:
        """ASSUMPTION: the lifetime of a bill whose request sets none (``configured`` is
        ``bill_expiry_minutes``, used by the redirect e-wallets)."""
        return _DEFAULT_EXPIRY[self.family] or configured


def _va(method: str, code: str, bank: str, interbank: str, guide: str = "", **kw: bool) -> Channel:
    other = (
        f"; from another bank, transfer to bank code {interbank} + this number" if interbank else ""
    )
    text = guide or (
        f"Transfer the exact amount to this {bank} virtual account number from {bank} ATM, "
        f"mobile or internet banking{other}."
    )
    return Channel(
        method, code, Family.VA, f"{bank} Virtual Account", bank, interbank, (), text, **kw
    )


_QR_GUIDE: Final = (
    "Scan the QR code with any QRIS-enabled banking or e-wallet app and pay the amount shown."
)

#: Every channel, in display order. Method names are stable: they are stored with payments.
CHANNELS: Final[tuple[Channel, ...]] = (
    Channel("dana", "819", Family.EWALLET, "DANA", "DANA"),
    Channel("shopeepay", "713", Family.EWALLET, "ShopeePay", "ShopeePay"),
    Channel("linkaja", "302", Family.EWALLET, "LinkAja", "LinkAja"),
    Channel("linkaja_app", "716", Family.EWALLET, "LinkAja App", "LinkAja", assumed=True),
    Channel(
        "ovo",
        "812",
        Family.OVO,
        "OVO",
        "OVO",
        required_fields=("phone",),
        guide="Open the OVO app and approve the payment request before it times out.",
    ),
    _va("permata_va", "402", "Permata", "013"),
    _va("bca_va", "702", "BCA", ""),
    _va("bri_va", "800", "BRI", "002"),
    _va("bni_va", "801", "BNI", "009"),
    _va(
        "mandiri_va",
        "802",
        "Mandiri",
        "008",
        "At a Mandiri ATM or Livin' choose Multi Payment, company code 88308 (FASPAY), and enter "
        "this number as the customer code; from another bank, transfer to bank code 008 + this "
        "number. Pay the exact amount.",
    ),
    _va("maybank_va", "408", "Maybank", "016"),
    _va("danamon_va", "708", "Danamon", "011"),
    _va("sinarmas_va", "818", "Sinarmas", "", assumed=True),
    _va("cimb_va", "825", "CIMB Niaga", "", assumed=True),
    Channel(
        "indomaret",
        "706",
        Family.RETAIL,
        "Indomaret",
        "Indomaret",
        guide="Show this payment code to the cashier at any Indomaret and pay the exact amount; "
        "keep the receipt.",
    ),
    Channel(
        "alfagroup",
        "707",
        Family.RETAIL,
        "Alfamart / Alfamidi",
        "Alfagroup",
        guide="Tell the cashier at Alfamart, Alfamidi or Dan+Dan you want to pay a Faspay bill, "
        "give this payment code and pay the exact amount; keep the receipt.",
    ),
    Channel("qris_shopeepay", "711", Family.QRIS, "QRIS (ShopeePay)", "ShopeePay", guide=_QR_GUIDE),
    Channel(
        "qris_linkaja",
        "715",
        Family.QRIS,
        "QRIS (LinkAja)",
        "LinkAja",
        guide=_QR_GUIDE,
        assumed=True,
    ),
    Channel("qris_paydia", "836", Family.QRIS, "QRIS (Paydia)", "Paydia", guide=_QR_GUIDE),
)

BY_METHOD: Final[Mapping[str, Channel]] = {c.method: c for c in CHANNELS}
BY_CODE: Final[Mapping[str, Channel]] = {c.code: c for c in CHANNELS}
#: The method of every payment made before channels existed (DANA only).
LEGACY_METHOD: Final = "dana"
DEFAULT_CHANNELS: Final = (LEGACY_METHOD,)


def by_method(method: str) -> Channel | None:
    """The channel named ``method``, or None."""
    return BY_METHOD.get(method)


def by_code(code: str) -> Channel | None:
    """The catalogue's channel for a Faspay code, or None (unknown codes are tolerated)."""
    return BY_CODE.get(code)


def known_methods() -> tuple[str, ...]:
    """Every method name, in catalogue order."""
    return tuple(c.method for c in CHANNELS)
