"""Snap API answers (create, cancel a Snap session; protocol reference §2.8, §2.11).

Snap signals errors with real HTTP status codes and ``{"error_messages": [...]}`` (no
``status_code`` field), unlike the Core API.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

import attrs

from gateway_core import (
    HttpResponse,
    MalformedResponse,
    ProviderConfigurationError,
    ProviderError,
    ProviderRefused,
    ProviderTemporaryError,
)
from gateway_midtrans_snap._codes import PROVIDER
from gateway_midtrans_snap._wire import decode_json_object, printable

TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
#: The create was refused because the order id already has a payment attempt (§2.10; the
#: legacy Indonesian wording too).
_UTILIZED: Final = ("utilized", "sudah digunakan")


class OrderUtilized(ProviderRefused):
    """Snap refused the create: the order id already has a payment attempt (§2.10)."""


@attrs.frozen
class SnapToken:
    """Snap's answer to a create: the page token and the page's URL (opaque, §2.8)."""

    token: str
    redirect_url: str = attrs.field(repr=False)


def usable_url(url: object) -> bool:
    """True for an absolute http(s) URL."""
    if not isinstance(url, str) or not url or len(url) > 2048:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _messages(response: HttpResponse) -> list[str]:
    body = decode_json_object(response.body)
    found = body.get("error_messages") if body is not None else None
    if isinstance(found, list):
        return [m for m in found if isinstance(m, str)]
    return []


def snap_error(response: HttpResponse, *, operation: str, order_id: str) -> ProviderError:
    """The error for a Snap refusal (any status but 2xx)."""
    messages = _messages(response)
    text = "; ".join(printable(m, 160) for m in messages[:3]) or f"HTTP {response.status_code}"
    status = response.status_code
    if status in (401, 403) or any("merchant is required" in m.lower() for m in messages):
        return ProviderConfigurationError(
            f"Midtrans Snap refused {operation}: unauthorized (server key, or a key of the "
            "other environment?)",
            provider=PROVIDER,
            merchant_reference=order_id,
            provider_code=str(status),
        )
    if any(word in m.lower() for m in messages for word in _UTILIZED):
        return OrderUtilized(
            f"Midtrans Snap refused {operation}: the order id already has a payment attempt",
            provider=PROVIDER,
            merchant_reference=order_id,
            provider_code="utilized",
        )
    kind: type[ProviderError] = ProviderTemporaryError if status >= 500 else ProviderRefused
    return kind(
        f"Midtrans Snap refused {operation} (HTTP {status}): {text}",
        provider=PROVIDER,
        merchant_reference=order_id,
        provider_code=str(status),
    )


def parse_create(response: HttpResponse, *, order_id: str) -> SnapToken:
    """``201 {"token", "redirect_url"}``; a ProviderError for a refusal, MalformedResponse
    for an answer without a usable token and URL (the create may have been processed)."""
    if not 200 <= response.status_code < 300:
        raise snap_error(response, operation="create", order_id=order_id)
    body = decode_json_object(response.body) or {}
    token, url = body.get("token"), body.get("redirect_url")
    if not isinstance(token, str) or TOKEN.fullmatch(token) is None or not usable_url(url):
        raise MalformedResponse(
            "Midtrans Snap answered create without a usable token and redirect_url",
            provider=PROVIDER,
            merchant_reference=order_id,
        )
    assert isinstance(url, str)
    return SnapToken(token, url)


#: Outcomes of cancelling a Snap session (§2.11).
CANCELLED = "cancelled"
IN_PROGRESS = "in_progress"
NOT_FOUND = "not_found"


def parse_session_cancel(response: HttpResponse, *, order_id: str) -> str:
    """``{"canceled_at": ...}`` (or "token already canceled") → ``cancelled``; "Transaction is
    on progress" → ``in_progress`` (a payment attempt exists: cancel it by order id); "token
    not found" → ``not_found``. The HTTP codes of the errors are undocumented (ASSUMPTION):
    the message decides."""
    if 200 <= response.status_code < 300:
        return CANCELLED
    messages = " ".join(_messages(response)).lower()
    if "already canceled" in messages or "already cancelled" in messages:
        return CANCELLED
    if "on progress" in messages or "in progress" in messages:
        return IN_PROGRESS
    if "not found" in messages:
        return NOT_FOUND
    raise snap_error(response, operation="cancel_session", order_id=order_id)
