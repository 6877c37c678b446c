"""Bayar Kilat's signatures, shared by the gateway, its tests and its local server.

A notification's ``X-Kilat-Signature`` header is ``t=<unix time>,v1=<hex>``, the hex being
HMAC-SHA256 (keyed with the webhook secret) of ``"<t>.<raw body>"``: it binds every byte of the
body and the time, so an old message cannot be replayed outside the tolerance. A return's
``sig`` field is the same HMAC of ``"<t>.<reference>.<payment_id>.<status>"``.
"""

from __future__ import annotations

import hashlib
import hmac
import time

#: Bayar Kilat counts amounts in whole units of the currency, whatever ISO 4217 says.
WIRE_EXPONENT = 0
HEADER = "X-Kilat-Signature"


def sign(secret: str, timestamp: int, payload: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<payload>"``."""
    message = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def notification_headers(
    secret: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """The headers Bayar Kilat sends with ``body``."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {HEADER: f"t={ts},v1={sign(secret, ts, body)}", "Content-Type": "application/json"}


def verify_header(
    secret: str, header: str, body: bytes, *, tolerance: float, now: float | None = None
) -> str:
    """Why ``header`` does not sign ``body`` (``""`` when it does)."""
    parts: dict[str, str] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, value)
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isdigit() or len(stamp) > 12 or not given:
        return f"{HEADER} missing or malformed"
    moment = time.time() if now is None else now
    if abs(moment - int(stamp)) > tolerance:
        return f"{HEADER} timestamp outside the tolerance"
    expected = sign(secret, int(stamp), body)
    if not hmac.compare_digest(given.encode("ascii", "replace"), expected.encode()):
        return f"{HEADER} does not match"
    return ""


def return_payload(reference: str, payment_id: str, status: str) -> bytes:
    """What a return's ``sig`` signs (after ``"<t>."``)."""
    return f"{reference}.{payment_id}.{status}".encode()


def signed_return_fields(
    secret: str, *, reference: str, payment_id: str, status: str, timestamp: int | None = None
) -> dict[str, str]:
    """The form fields of a signed return, as Bayar Kilat's checkout POSTs them."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "reference": reference,
        "payment_id": payment_id,
        "status": status,
        "t": str(ts),
        "sig": sign(secret, ts, return_payload(reference, payment_id, status)),
    }
