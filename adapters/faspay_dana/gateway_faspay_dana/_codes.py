"""Faspay's code tables (protocol reference §11) mapped to the core's vocabulary.

``response_code`` (§11.1) says whether an API call succeeded; every code other than ``"00"``
becomes one of the core's :class:`~gateway_core.ProviderError` subclasses, split by who has to
act:

- :class:`~gateway_core.ProviderConfigurationError`: our setup is wrong (``03`` invalid
  merchant, ``40`` function not enabled, ``55`` bad user/password, ``56``/``63`` IP allow-list
  or suspended account — the two are swapped between doc versions, so both land here, ``82``
  and ``84`` unregistered entity/parameters);
- :class:`~gateway_core.ProviderTemporaryError`: Faspay says it is broken (``66``, ``96``);
- :class:`~gateway_core.ProviderRefused`: a refusal of this request (``13``, ``14``, ``17``,
  ``18``, ``21``, ``30``, ``54``, ``80``, ``81``, ``83``, ``85``, the third-party ``01``) and
  any code not in the table.

``payment_status_code`` (§11.2) becomes a :class:`~gateway_core.PaymentStatus`. There is no
code ``6``; it and anything else outside the table is refused (:func:`payment_status` raises
:class:`~gateway_faspay_dana.PayloadError`), never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

import attrs

from gateway_core import (
    PaymentStatus,
    ProviderConfigurationError,
    ProviderError,
    ProviderRefused,
    ProviderTemporaryError,
)
from gateway_faspay_dana._errors import PROVIDER, PayloadError

SUCCESS = "00"


@attrs.frozen
class ResponseCode:
    """One row of the ``response_code`` table: its meaning and the error it raises."""

    code: str
    description: str
    error: type[ProviderError] | None


def _rows() -> dict[str, ResponseCode]:
    config = ProviderConfigurationError
    refused = ProviderRefused
    temporary = ProviderTemporaryError
    table: list[tuple[str, str, type[ProviderError] | None]] = [
        ("00", "Success", None),
        ("01", "Failed", refused),
        ("03", "Invalid Merchant", config),
        ("13", "Invalid Amount", refused),
        ("14", "Invalid Order", refused),
        ("17", "Order Cancelled by Merchant/Customer", refused),
        ("18", "Invalid Customer or MSISDN is not found", refused),
        ("21", "Subscription is Expired", refused),
        ("30", "Format Error", refused),
        ("40", "Requested Function not Supported", config),
        ("54", "Order is Expired", refused),
        ("55", "Incorrect User/Password", config),
        ("56", "Security Violation (from unknown IP-Address)", config),
        ("63", "Not Active / Suspended", config),
        ("66", "Internal Error", temporary),
        ("80", "Payment Was Reversal", refused),
        ("81", "Already Been Paid", refused),
        ("82", "Unregistered Entity", config),
        ("83", "Parameter is mandatory", refused),
        ("84", "Unregistered Parameters", config),
        ("85", "Insufficient Parameters", refused),
        ("96", "System Malfunction", temporary),
    ]
    return {code: ResponseCode(code, text, error) for code, text, error in table}


#: ``response_code`` → its row (§11.1, with the current D8 meanings of 56 and 63).
RESPONSE_CODES: Mapping[str, ResponseCode] = MappingProxyType(_rows())

#: ``payment_status_code`` → the core's status (§11.2).
PAYMENT_STATUSES: Mapping[str, PaymentStatus] = MappingProxyType(
    {
        "0": PaymentStatus.PENDING,
        "1": PaymentStatus.IN_PROCESS,
        "2": PaymentStatus.PAID,
        "3": PaymentStatus.FAILED,
        "4": PaymentStatus.REVERSED,
        "5": PaymentStatus.UNKNOWN,
        "7": PaymentStatus.EXPIRED,
        "8": PaymentStatus.CANCELLED,
        "9": PaymentStatus.UNKNOWN,
    }
)

#: ``payment_status_code`` → the docs' English description (§11.2).
PAYMENT_STATUS_DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "0": "Unprocessed",
        "1": "In Process",
        "2": "Payment Success",
        "3": "Payment Failed",
        "4": "Payment Reversal",
        "5": "No bills found",
        "7": "Payment Expired",
        "8": "Payment Cancelled",
        "9": "Unknown",
    }
)

#: The canonical Faspay code for each core status (``UNKNOWN`` → ``9``), for builders.
STATUS_CODES: Mapping[PaymentStatus, str] = MappingProxyType(
    {
        PaymentStatus.PENDING: "0",
        PaymentStatus.IN_PROCESS: "1",
        PaymentStatus.PAID: "2",
        PaymentStatus.FAILED: "3",
        PaymentStatus.REVERSED: "4",
        PaymentStatus.EXPIRED: "7",
        PaymentStatus.CANCELLED: "8",
        PaymentStatus.UNKNOWN: "9",
    }
)

_PRINTABLE = re.compile(r"[^\x20-\x7e]")


def payment_status(code: str) -> PaymentStatus:
    """The core status for a ``payment_status_code``; :class:`PayloadError` outside §11.2."""
    try:
        return PAYMENT_STATUSES[code]
    except (KeyError, TypeError):
        raise PayloadError(
            "payment_status_code is not a documented status code", field="payment_status_code"
        ) from None


def error_class(code: str) -> type[ProviderError]:
    """The exception class for a non-success ``response_code`` (unknown → ProviderRefused)."""
    row = RESPONSE_CODES.get(code)
    if row is None or row.error is None:
        return ProviderRefused
    return row.error


def provider_error(
    code: str, *, operation: str, merchant_reference: str = "", description: str = ""
) -> ProviderError:
    """The error to raise for a non-``"00"`` ``response_code`` answering ``operation``.

    ``description`` is Faspay's ``response_desc``; it is shown trimmed to printable ASCII.
    """
    row = RESPONSE_CODES.get(code)
    meaning = row.description if row is not None else "unknown response code"
    shown = _PRINTABLE.sub("?", description)[:80].strip()
    text = f"Faspay refused {operation}: {meaning}"
    if shown and shown.lower() != meaning.lower():
        text += f" ({shown!r})"
    return error_class(code)(
        text, provider=PROVIDER, merchant_reference=merchant_reference, provider_code=code
    )
