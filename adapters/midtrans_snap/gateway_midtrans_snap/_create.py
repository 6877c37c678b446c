"""The Snap create request (``POST /snap/v1/transactions``, protocol reference §2).

:func:`snap_body` turns a :class:`~gateway_core.PaymentRequest` into Midtrans' JSON, checking
every rule before anything is sent (:class:`~gateway_core.InvalidRequest` names the field):

* ``gross_amount`` is an integer of rupiah; Midtrans refuses the request unless it equals
  Σ ``price`` × ``quantity`` of ``item_details`` (§2.3). The plugin sends the request's
  items (names cut to 50 characters), its ``extra_fees`` as a ``Fees`` line, and, when these
  do not add up to the amount, one more line with the difference: ``Other charges`` when
  positive, ``Discount`` (a negative price, which Midtrans allows) when negative. A request
  without items, with an item or fee that is not a whole number of rupiah, or with more than
  50 lines (the 16 KB body limit, §1.5) is sent as a single summary line, the description for
  the whole amount. Either way the lines add up exactly.
* ``customer_details`` carries the customer's name (first word / the rest, at most 30
  characters together for BCA VA), e-mail and phone; they are never logged.
* ``expiry`` is the blanket expiry of the page and the payment (§2.7): ``start_time`` is the
  attempt's creation, ``unit`` minutes, ``duration`` up to ``expires_at``, between 5 minutes
  and 7 days.
* ``enabled_payments`` is the request's method (expanded when it is a group such as
  ``bank_transfer``), else the configured list, else absent (every active payment).
* ``callbacks.finish`` and ``callbacks.error`` are the request's return URL with the plugin's
  ``snap_ref`` and ``snap_sig`` (see :func:`return_link`).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

from gateway_core import Customer, InvalidRequest, Money, PaymentRequest
from gateway_midtrans_snap._codes import CURRENCY, KNOWN_PAYMENTS, PROVIDER, expand
from gateway_midtrans_snap._config import MAX_EXPIRY, MIN_EXPIRY, MidtransConfig
from gateway_midtrans_snap._signature import return_signature
from gateway_midtrans_snap._wire import format_expiry_start

MAX_ITEMS: Final = 50
#: ``callbacks.finish`` / ``callbacks.error`` are String(255) (§2.2).
MAX_CALLBACK: Final = 255
RETURN_REF: Final = "snap_ref"
RETURN_SIG: Final = "snap_sig"
_UNSAFE_TEXT: Final = re.compile(r"[\x00-\x1f\x7f|]+")


def _invalid(message: str, field: str, request: PaymentRequest) -> InvalidRequest:
    return InvalidRequest(
        message, provider=PROVIDER, field=field, merchant_reference=request.merchant_reference
    )


def _text(value: str, limit: int) -> str:
    """A string Midtrans takes: no control characters nor ``|`` (Alfamart), cut to ``limit``."""
    return _UNSAFE_TEXT.sub(" ", value).strip()[:limit]


def rupiah(money: Money) -> int:
    """``money`` as whole rupiah; ValueError when it is not IDR or has cents."""
    if money.currency != CURRENCY:
        raise ValueError("Midtrans Snap takes IDR only")
    return money.to_units(0)


def item_details(request: PaymentRequest, gross: int) -> list[dict[str, Any]]:
    """Item lines that add up to ``gross`` exactly (see the module docstring)."""
    summary = [{"id": "order", "price": gross, "quantity": 1, "name": _summary_name(request)}]
    lines: list[dict[str, Any]] = []
    try:
        for number, item in enumerate(request.items, 1):
            lines.append(
                {
                    "id": _text(item.item_id, 50) or f"item-{number}",
                    "price": rupiah(item.unit_price),
                    "quantity": item.quantity,
                    "name": _text(item.name, 50) or f"Item {number}",
                }
            )
        fees = request.extra_fees
        if lines and fees is not None and fees.amount != 0:
            lines.append({"id": "fees", "price": rupiah(fees), "quantity": 1, "name": "Fees"})
    except ValueError:
        return summary
    if not lines or len(lines) >= MAX_ITEMS:
        return summary
    difference = gross - sum(line["price"] * line["quantity"] for line in lines)
    if difference:
        name = "Other charges" if difference > 0 else "Discount"
        lines.append({"id": "adjustment", "price": difference, "quantity": 1, "name": name})
    return lines


def _summary_name(request: PaymentRequest) -> str:
    return _text(request.description, 50) or _text(f"Order {request.order_reference}", 50)


def customer_details(customer: Customer) -> dict[str, str]:
    """The customer's name, e-mail and phone, the empty ones left out."""
    first, _, last = _text(customer.name, 255).partition(" ")
    first = first[:30]
    last = last.strip()[: max(0, 29 - len(first))]
    details = {
        "first_name": first,
        "last_name": last,
        "email": _text(customer.email, 255),
        # BNI VA: a phone starting with +62 or 0, at most 30 characters (§2.5).
        "phone": _text(customer.phone, 30),
    }
    return {key: value for key, value in details.items() if value}


def expiry(request: PaymentRequest, now: datetime) -> dict[str, Any] | None:
    """The ``expiry`` object for ``request.expires_at`` (None when it has none)."""
    if request.expires_at is None:
        return None
    start = request.created_at or now
    if request.expires_at <= now:
        raise _invalid("expires_at is in the past", "expires_at", request)
    lifetime = request.expires_at - start
    if not MIN_EXPIRY <= lifetime <= MAX_EXPIRY:
        raise _invalid(
            "expires_at must be between 5 minutes and 7 days after the payment's creation "
            "(Midtrans Snap's bounds)",
            "expires_at",
            request,
        )
    minutes = math.ceil(lifetime.total_seconds() / 60)
    return {"start_time": format_expiry_start(start), "unit": "minute", "duration": minutes}


def enabled_payments(request: PaymentRequest, config: MidtransConfig) -> list[str] | None:
    """What the Snap page offers: the request's method, else the configuration's list."""
    if request.method:
        allowed = config.enabled_payments
        if allowed and request.method not in allowed:
            raise _invalid(
                f"payment method {request.method!r} is not enabled "
                f"(enabled_payments: {', '.join(allowed)})",
                "method",
                request,
            )
        if not allowed and request.method not in KNOWN_PAYMENTS:
            raise _invalid(f"unknown payment method {request.method!r}", "method", request)
        return list(expand(request.method))
    return list(config.enabled_payments) or None


def return_link(return_url: str, order_id: str, server_key: str) -> str:
    """``return_url`` with ``snap_ref=<order_id>&snap_sig=<signature>`` appended (existing
    query parameters kept; Midtrans appends its own after them, §3.2)."""
    separator = "&" if urlsplit(return_url).query else ("" if return_url.endswith("?") else "?")
    query = urlencode({RETURN_REF: order_id, RETURN_SIG: return_signature(order_id, server_key)})
    return f"{return_url}{separator}{query}"


def callbacks(request: PaymentRequest, config: MidtransConfig) -> dict[str, str] | None:
    """``callbacks.finish`` and ``callbacks.error``: the signed return link (None without a
    return URL: the dashboard's URLs apply)."""
    if not request.return_url:
        return None
    try:
        parts = urlsplit(request.return_url)
    except ValueError:
        raise _invalid("return_url is not a URL", "return_url", request) from None
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise _invalid(
            "return_url must be an absolute http(s) URL without a fragment", "return_url", request
        )
    link = return_link(request.return_url, request.merchant_reference, config.server_key)
    if len(link) > MAX_CALLBACK:
        raise _invalid(
            f"return_url is too long: with the plugin's signature it must fit Midtrans' "
            f"{MAX_CALLBACK} characters",
            "return_url",
            request,
        )
    return {"finish": link, "error": link}


def snap_body(request: PaymentRequest, config: MidtransConfig, now: datetime) -> dict[str, Any]:
    """The whole create body; :class:`~gateway_core.InvalidRequest` for a broken rule."""
    try:
        gross = rupiah(request.amount)
    except ValueError:
        raise _invalid(
            "Midtrans Snap takes a whole number of rupiah (IDR, no cents)", "amount", request
        ) from None
    body: dict[str, Any] = {
        "transaction_details": {"order_id": request.merchant_reference, "gross_amount": gross},
        "item_details": item_details(request, gross),
        "credit_card": {"secure": True},
        "custom_field1": _text(request.order_reference, 255),
    }
    customer = customer_details(request.customer)
    if customer:
        body["customer_details"] = customer
    payments = enabled_payments(request, config)
    if payments:
        body["enabled_payments"] = payments
    links = callbacks(request, config)
    if links:
        body["callbacks"] = links
    window = expiry(request, now)
    if window:
        body["expiry"] = window
    return body
