"""The emulator's own channel registry: every Faspay Debit channel family it plays.

This is the emulator's side of the protocol (Faspay's server), deliberately independent of the
plugin's channel catalogue. Seeded from the channels reference §1, §3–§6 and the DANA reference
§11.3. Per channel: code, name (as a sandbox channel inquiry lists it), family, bank or issuer,
inter-bank code, how its ``trx_id`` is built (§14.1) and its expiry bounds (§14.7).

ASSUMPTIONS (channels reference §12, §14.7): the expiry defaults and maxima below are emulator
configuration, not Faspay data — every family's maximum is D1's 30 days; the defaults (1 day
for VA/retail, 1 hour for QRIS and redirect wallets, 5 minutes for OVO, C18) are what official
plugins use. The OVO approval window (60 s of emulator time) is an assumption too (E1/E3). The
``trx_id`` shape ``merchant(5) + channel(3) + sequence(8)`` is observed for 801/825/707/302/711;
for the other VAs it is assumed; Permata is ``8985 + merchant(5) + sequence(7)`` (D6, D7).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Final, Literal

Family = Literal["virtual_account", "retail", "qris", "ewallet_redirect", "ovo", "dana"]

FAMILIES: Final[tuple[Family, ...]] = (
    "virtual_account",
    "retail",
    "qris",
    "ewallet_redirect",
    "ovo",
    "dana",
)

#: Families with a Return URL step (one-step channels, channels reference §10).
RETURN_URL_FAMILIES: Final = frozenset({"ewallet_redirect", "ovo", "dana"})

#: Families whose ``trx_id`` is what the customer pays to (VA number / payment code, §3.3, §6).
INSTRUMENT_FAMILIES: Final = frozenset({"virtual_account", "retail"})

MAX_EXPIRY: Final = timedelta(days=30)

#: ASSUMPTION (§14.7): default lifetime per family when the emulator has to pick one.
DEFAULT_EXPIRY: Final[dict[str, timedelta]] = {
    "virtual_account": timedelta(days=1),
    "retail": timedelta(days=1),
    "qris": timedelta(hours=1),
    "ewallet_redirect": timedelta(hours=1),
    "ovo": timedelta(minutes=5),
    "dana": timedelta(hours=1),
}

#: ASSUMPTION (§4.2, §14.5): seconds of emulator time an OVO push waits for the payer.
OVO_PUSH_WINDOW: Final = 60.0


@dataclasses.dataclass(frozen=True)
class Channel:
    """One payment channel as the emulated Faspay knows it."""

    code: str
    name: str
    family: Family
    issuer: str
    interbank_code: str = ""
    trx_prefix: str = ""
    """A fixed prefix of the ``trx_id`` (Permata ``8985``); empty for the usual shape."""
    acquirer: str = ""
    """QRIS acquirer slug used in the ``web_url`` path (``/__assets/qr/<acquirer>/...``)."""

    @property
    def default_expiry(self) -> timedelta:
        """ASSUMPTION: the family's default lifetime (§14.7)."""
        return DEFAULT_EXPIRY[self.family]

    @property
    def max_expiry(self) -> timedelta:
        """D1's 30-day cap (the same for every family)."""
        return MAX_EXPIRY

    @property
    def has_return_url(self) -> bool:
        """True for one-step channels (DANA, redirect wallets, OVO)."""
        return self.family in RETURN_URL_FAMILIES

    def trx_id(self, merchant_id: str, sequence: int) -> str:
        """The ``trx_id`` for the ``sequence``-th bill (§14.1)."""
        if self.trx_prefix:
            return f"{self.trx_prefix}{merchant_id}{sequence % 10**7:07d}"
        return f"{merchant_id}{self.code}{sequence % 10**8:08d}"

    def to_dict(self) -> dict[str, str]:
        """Plain data for the control API."""
        return {
            "code": self.code,
            "name": self.name,
            "family": self.family,
            "issuer": self.issuer,
            "interbank_code": self.interbank_code,
            "trx_id_pattern": (
                f"{self.trx_prefix}+merchant(5)+sequence(7)"
                if self.trx_prefix
                else f"merchant(5)+{self.code}+sequence(8)"
            ),
            "default_expiry_seconds": str(int(self.default_expiry.total_seconds())),
            "max_expiry_seconds": str(int(self.max_expiry.total_seconds())),
            "return_url": "yes" if self.has_return_url else "no",
        }


def _va(code: str, name: str, bank: str, interbank: str = "", prefix: str = "") -> Channel:
    return Channel(code, name, "virtual_account", bank, interbank, prefix)


#: Every channel the emulator can play, by code (names as the C7 sandbox list where known).
CHANNELS: Final[dict[str, Channel]] = {
    c.code: c
    for c in (
        _va("402", "Permata", "Permata", "013", prefix="8985"),
        _va("702", "BCA Virtual Account", "BCA"),
        _va("800", "BRI Virtual Account", "BRI", "002"),
        _va("801", "BNI Virtual Account", "BNI", "009"),
        _va("802", "Mandiri Virtual Account", "Mandiri", "008"),
        _va("408", "Maybank Virtual Account", "Maybank", "016"),
        _va("708", "Danamon VA", "Danamon", "011"),
        _va("818", "Sinarmas Virtual Account", "Sinarmas"),
        _va("825", "CIMB VA", "CIMB Niaga"),
        _va("718", "BNC Virtual Account", "BNC"),
        _va("837", "BTN Virtual Account", "BTN"),
        _va("703", "Mandiri Bill Payment", "Mandiri"),
        Channel("706", "Payment Point Indomaret", "retail", "Indomaret"),
        Channel("707", "ALFAGROUP", "retail", "Alfamart/Alfamidi"),
        Channel("711", "ShopeePay QRIS", "qris", "ShopeePay", acquirer="shopeepay"),
        Channel("715", "LinkAja QRIS", "qris", "LinkAja", acquirer="linkaja"),
        Channel("836", "Paydia QRIS", "qris", "Paydia", acquirer="paydia"),
        Channel("713", "ShopeePay App", "ewallet_redirect", "ShopeePay"),
        Channel("302", "LinkAja", "ewallet_redirect", "LinkAja"),
        Channel("716", "LinkAja App", "ewallet_redirect", "LinkAja"),
        Channel("812", "OVO", "ovo", "OVO"),
        Channel("819", "DANA", "dana", "DANA"),
    )
}

#: Codes only listed by name (internet banking, pay-later; §7): channel inquiry may list them,
#: posting a bill for them gets ``40`` (not modelled).
LISTED_ONLY: Final[dict[str, str]] = {
    "401": "BRI E-PAY",
    "700": "CIMB Clicks",
    "701": "DANAMON ONLINE BANKING",
}

#: The sandbox channel list recorded in C7 (DANA ref §11.3) plus the other modelled channels.
ALL_CODES: Final[tuple[str, ...]] = tuple(sorted(CHANNELS))


def channel(code: str) -> Channel | None:
    """The modelled channel with ``code``, or None."""
    return CHANNELS.get(str(code))


def channel_name(code: str) -> str:
    """The name channel inquiry and notifications use for ``code``."""
    found = CHANNELS.get(code)
    if found is not None:
        return found.name
    return LISTED_ONLY.get(code, code)


def family_of(code: str) -> Family:
    """The family of ``code`` (``dana`` for codes the registry does not model)."""
    found = CHANNELS.get(code)
    return found.family if found is not None else "dana"
