"""Midtrans' signatures and credentials (protocol reference §1.2, §4.6), and the plugin's own
signature of the return links it gives Midtrans.

``signature_key = lowercase_hex(SHA-512(order_id + status_code + gross_amount + server_key))``
over the three values exactly as received (strings), compared in constant time. It binds the
order, the status *code* and the amount, not ``transaction_status``: a settlement and the
refunds of the same order carry the same signature (§7.5).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Final

_HEX_128: Final = re.compile(r"[0-9a-fA-F]{128}")
_RETURN_SIG: Final = re.compile(r"[0-9a-f]{32}")


def notification_signature(
    order_id: str, status_code: str, gross_amount: str, server_key: str
) -> str:
    """The ``signature_key`` Midtrans computes for a notification or a Get Status answer."""
    text = order_id + status_code + gross_amount + server_key
    return hashlib.sha512(text.encode("utf-8")).hexdigest()


def signature_matches(
    signature_key: object, *, order_id: str, status_code: str, gross_amount: str, server_key: str
) -> bool:
    """True when ``signature_key`` (as received) is the signature of the three values."""
    if not isinstance(signature_key, str) or _HEX_128.fullmatch(signature_key) is None:
        return False
    expected = notification_signature(order_id, status_code, gross_amount, server_key)
    return hmac.compare_digest(expected, signature_key.lower())


def basic_authorization(server_key: str) -> str:
    """The ``Authorization`` header value: ``Basic base64(server_key + ":")`` (§1.2)."""
    token = base64.b64encode((server_key + ":").encode("utf-8")).decode("ascii")
    return f"Basic {token}"


def return_signature(order_id: str, server_key: str) -> str:
    """The plugin's signature of a return link: 32 hex characters of
    ``HMAC-SHA256(server_key, "snap-return:" + order_id)``.

    Midtrans does not sign the customer's return (§3.2): the plugin puts ``snap_ref`` and this
    signature in the ``callbacks.finish`` / ``callbacks.error`` links it sends with each
    order, and Midtrans appends its own parameters to them. It proves only that the link was
    made by this merchant for that order (the customer sees it), never a status.
    """
    digest = hmac.new(
        server_key.encode("utf-8"), b"snap-return:" + order_id.encode("utf-8"), hashlib.sha256
    )
    return digest.hexdigest()[:32]


def return_signature_matches(signature: object, *, order_id: str, server_key: str) -> bool:
    """True when ``signature`` is :func:`return_signature` of ``order_id``."""
    if not isinstance(signature, str) or _RETURN_SIG.fullmatch(signature) is None:
        return False
    return hmac.compare_digest(return_signature(order_id, server_key), signature)
