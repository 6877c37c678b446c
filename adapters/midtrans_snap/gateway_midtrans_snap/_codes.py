"""Midtrans' vocabulary: transaction statuses, fraud statuses, the payment names of
``enabled_payments`` and the ``payment_type`` each becomes (protocol reference §2.6, §4.4,
§4.5), mapped to the core's :class:`~gateway_core.PaymentStatus`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from gateway_core import PaymentStatus

PROVIDER: Final = "midtrans_snap"
CURRENCY: Final = "IDR"

_S = PaymentStatus

#: ``transaction_status`` → the core's status, when ``fraud_status`` is absent or ``accept``
#: (§4.4). ``deny`` is one attempt's refusal: :func:`order_status` decides what it means for
#: the Snap order. ``chargeback`` and ``partial_chargeback`` are reported as ``reversed`` (the
#: signature does not cover ``transaction_status``, so only a status, confirmed by Get Status
#: before it is applied, is safe; a provider event would be delivered unconfirmed).
TRANSACTION_STATUSES: Mapping[str, PaymentStatus] = {
    "pending": _S.PENDING,
    "authorize": _S.IN_PROCESS,
    "capture": _S.PAID,
    "settlement": _S.PAID,
    "deny": _S.FAILED,
    "cancel": _S.CANCELLED,
    "expire": _S.EXPIRED,
    "failure": _S.FAILED,
    "refund": _S.REFUNDED,
    "partial_refund": _S.PARTIALLY_REFUNDED,
    "chargeback": _S.REVERSED,
    "partial_chargeback": _S.REVERSED,
}

#: Statuses whose ``gross_amount`` is an amount paid (compared with the ledger).
PAID_STATUSES: Final = frozenset({_S.PAID, _S.PARTIALLY_REFUNDED, _S.REFUNDED, _S.REVERSED})

#: Refund states: their event key also names how many refunds the order has.
REFUND_STATES: Final = frozenset({"refund", "partial_refund"})


def payment_status(transaction_status: str, fraud_status: str = "") -> PaymentStatus:
    """The core's status for one attempt: ``capture`` + ``challenge`` waits for the
    merchant's review (``in_process``), a ``deny`` by fraud detection fails, anything unknown
    is ``unknown``. Statuses are compared lower-cased (§4.4: DANA's ``"PENDING"``)."""
    state = transaction_status.strip().lower()
    fraud = fraud_status.strip().lower()
    status = TRANSACTION_STATUSES.get(state, _S.UNKNOWN)
    if fraud == "deny" and status in (_S.PAID, _S.IN_PROCESS, _S.PENDING):
        return _S.FAILED
    if fraud == "challenge" and status is _S.PAID:
        return _S.IN_PROCESS
    return status


def provider_status(transaction_status: str, fraud_status: str = "") -> str:
    """``transaction_status``, with a ``fraud_status`` other than ``accept`` appended
    (``capture:challenge``): distinct provider states get distinct names (event keys)."""
    state = transaction_status.strip().lower()
    fraud = fraud_status.strip().lower()
    return f"{state}:{fraud}" if fraud and fraud != "accept" else state


#: Current ``enabled_payments`` names (§2.6, D2).
CURRENT_PAYMENTS: Final = (
    "credit_card",
    "echannel",
    "permata_va",
    "bca_va",
    "bni_va",
    "bri_va",
    "cimb_va",
    "danamon_va",
    "bsi_va",
    "seabank_va",
    "saqu_va",
    "other_va",
    "gopay",
    "ovo",
    "dana",
    "shopeepay",
    "other_qris",
    "alfamart",
    "indomaret",
    "akulaku",
    "kredivo",
)
#: Legacy names still accepted by Snap (§2.6).
LEGACY_PAYMENTS: Final = (
    "bca_klikpay",
    "bca_klikbca",
    "bri_epay",
    "cimb_clicks",
    "danamon_online",
    "uob_ezpay",
    "mandiri_clickpay",
)
_VA: Final = (
    "permata_va",
    "bca_va",
    "bni_va",
    "bri_va",
    "cimb_va",
    "danamon_va",
    "bsi_va",
    "seabank_va",
    "saqu_va",
    "other_va",
)
#: Group names Snap expands itself (§2.6): ``bank_transfer`` (the VA types), ``cstore``
#: (current) and ``store`` (legacy) for Alfamart and Indomaret.
ALIASES: Mapping[str, tuple[str, ...]] = {
    "bank_transfer": _VA,
    "cstore": ("alfamart", "indomaret"),
    "store": ("alfamart", "indomaret"),
}
KNOWN_PAYMENTS: Final = frozenset(CURRENT_PAYMENTS + LEGACY_PAYMENTS) | frozenset(ALIASES)

#: ``enabled_payments`` name → the ``payment_type`` values its notifications carry (§2.6).
_PAYMENT_TYPES: Mapping[str, frozenset[str]] = {
    **{va: frozenset({"bank_transfer"}) for va in _VA},
    "echannel": frozenset({"echannel"}),
    "gopay": frozenset({"gopay", "qris"}),
    "other_qris": frozenset({"qris"}),
    "alfamart": frozenset({"cstore"}),
    "indomaret": frozenset({"cstore"}),
    "credit_card": frozenset({"credit_card"}),
}


def expand(method: str) -> tuple[str, ...]:
    """The ``enabled_payments`` entries a payment method stands for (its own name, or a
    group's members)."""
    return ALIASES.get(method, (method,))


def payment_types(method: str) -> frozenset[str]:
    """The ``payment_type`` values a notification for ``method`` may carry (empty: any)."""
    types: set[str] = set()
    for name in expand(method):
        types |= _PAYMENT_TYPES.get(name, frozenset({name}))
    return frozenset(types)
