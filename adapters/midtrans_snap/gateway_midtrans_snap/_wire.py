"""Wire details shared by the messages: JSON, amounts, times and Midtrans' refund entries.

Amounts: Midtrans counts whole rupiah. Requests carry integers (``gross_amount``, item
``price``, refund ``amount``); answers and notifications carry strings with two decimals
(``"250000.00"``, §4.3). Times are ``YYYY-MM-DD HH:MM:SS`` in Western Indonesian Time (GMT+7).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Final

from gateway_core import Money, RefundReport, RefundStatus, redact_text
from gateway_midtrans_snap._codes import CURRENCY, PROVIDER

#: Western Indonesian Time, a fixed offset (Indonesia has no daylight saving time).
JAKARTA: Final = timezone(timedelta(hours=7), "WIB")

_AMOUNT: Final = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,2})?")
_TIME: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_NOT_PRINTABLE: Final = re.compile(r"[^\x20-\x7e]+")


def jakarta_now() -> datetime:
    """The current time in GMT+7."""
    return datetime.now(UTC).astimezone(JAKARTA)


def encode_json(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_json_object(body: object) -> dict[str, Any] | None:
    """The JSON object in ``body``, or None for anything else (not bytes, not UTF-8, not
    JSON, not an object, a key given twice in one object, NaN)."""
    if not isinstance(body, bytes | bytearray):
        return None
    try:
        value = json.loads(
            bytes(body).decode("utf-8"),
            parse_constant=_no_constant,
            object_pairs_hook=_unique_keys,
        )
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different: a key given twice (which of the two would a
    signature check and the status mapping read?) makes the body malformed."""
    value = dict(pairs)
    if len(value) != len(pairs):
        raise ValueError("a key is given twice")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def format_amount(units: int) -> str:
    """Midtrans' rendering of an amount in answers: ``"%d.00"``."""
    return f"{units}.00"


def parse_amount(text: object, currency: str = CURRENCY) -> Money:
    """``"250000.00"`` as :class:`~gateway_core.Money`; ValueError for anything else."""
    if not isinstance(text, str) or _AMOUNT.fullmatch(text) is None:
        raise ValueError("an amount must be a decimal string such as '250000.00'")
    return Money(Decimal(text), currency)


def parse_time(text: object) -> datetime | None:
    """``YYYY-MM-DD HH:MM:SS`` (GMT+7) as an aware datetime; None when absent or unreadable."""
    if not isinstance(text, str) or _TIME.fullmatch(text) is None:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=JAKARTA)
    except ValueError:
        return None


def format_expiry_start(moment: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss Z`` in GMT+7, e.g. ``2025-06-01 10:00:00 +0700`` (§2.7)."""
    return moment.astimezone(JAKARTA).strftime("%Y-%m-%d %H:%M:%S +0700")


def printable(text: object, limit: int = 200) -> str:
    """Provider text fit for an error message or a log: printable ASCII, redacted, cut."""
    if not isinstance(text, str):
        return ""
    return redact_text(_NOT_PRINTABLE.sub(" ", text).strip())[:limit]


def text_field(body: Mapping[str, Any], name: str) -> str:
    """A string field (a number is read as its decimal text), ``""`` when absent."""
    value = body.get(name)
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) else ""


def currency_of(body: Mapping[str, Any]) -> str:
    """The body's ``currency`` (IDR when absent); ValueError for another currency."""
    currency = body.get("currency", CURRENCY) or CURRENCY
    if currency != CURRENCY:
        raise ValueError("Midtrans Snap amounts are in IDR")
    return CURRENCY


def refund_reports(body: Mapping[str, Any], merchant_reference: str) -> tuple[RefundReport, ...]:
    """The ``refunds[]`` of a notification or a Get Status answer (§5.2, §7.5), each as a
    succeeded :class:`~gateway_core.RefundReport` named by its ``refund_key`` (a refund
    appears there once Midtrans acknowledged it, L4). ValueError for a malformed entry."""
    entries = body.get("refunds")
    if entries is None:
        return ()
    if not isinstance(entries, list) or len(entries) > 1000:
        raise ValueError("refunds must be a list")
    currency = currency_of(body)
    reports = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValueError("a refund entry must be an object")
        reference = text_field(entry, "refund_chargeback_id")
        key = text_field(entry, "refund_key")
        if not reference and not key:
            raise ValueError("a refund entry names neither refund_key nor refund_chargeback_id")
        reports.append(
            RefundReport(
                provider=PROVIDER,
                merchant_reference=merchant_reference,
                key=key,
                status=RefundStatus.SUCCEEDED,
                amount=parse_amount(entry.get("refund_amount"), currency),
                provider_reference=reference,
                provider_status="bank_confirmed"
                if entry.get("bank_confirmed_at")
                else "acknowledged",
                refunded_at=parse_time(entry.get("created_at")),
                description=printable(entry.get("reason"), 255),
            )
        )
    return tuple(reports)
