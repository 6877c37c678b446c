"""Midtrans order ids: the merchant reference of each attempt.

Midtrans documents ``order_id`` as at most 50 characters of letters, digits, ``-``, ``_``,
``~`` and ``.`` (protocol reference §2.3); other characters have been accepted by the sandbox
but break the ``/v2/{order_id}/...`` URLs (§5.1), so the plugin never uses them.

One rule more than Midtrans': a reference never ends in a digit or a dot. The signature is
``SHA-512(order_id + status_code + gross_amount + server_key)`` without separators, and
``status_code`` and ``gross_amount`` are made of digits and a dot: an order id ending in a
digit could make the same string as another order id with other values (``"A-" + "120" +
"15000.00"`` is ``"A-1" + "201" + "5000.00"``). Ending in a letter, ``_``, ``~`` or ``-``,
the boundary is unambiguous, so no two (order, status, amount) share a signature.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from gateway_core import InvalidRequest
from gateway_midtrans_snap._codes import PROVIDER

MAX_LENGTH: Final = 50
ORDER_ID: Final = re.compile(r"[A-Za-z0-9_.~-]{0,49}[A-Za-z_~-]")
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.~-]")
#: Appended to every generated reference, so it never ends in a digit ("Snap").
SUFFIX: Final = "S"


def make_reference(order_reference: str, attempt: int) -> str:
    """``<order>-<attempt>S``, at most 50 characters; an order reference with characters
    outside Midtrans' alphabet, or too long, is shortened with a digest of itself."""
    base = _UNSAFE.sub("", order_reference)
    tail = f"-{attempt}{SUFFIX}"
    if not base or base != order_reference or len(base) + len(tail) > MAX_LENGTH:
        digest = hashlib.sha256(order_reference.encode("utf-8")).hexdigest()[:16]
        room = MAX_LENGTH - len(tail) - len(digest) - 1
        base = f"{base[:room]}-{digest}" if base and room > 0 else digest
    reference = f"{base}{tail}"
    check_reference(reference)
    return reference


def check_reference(reference: str) -> None:
    """Raise :class:`~gateway_core.InvalidRequest` unless ``reference`` is 1–50 characters of
    ``[A-Za-z0-9_.~-]`` not ending in a digit or a dot."""
    if not isinstance(reference, str) or ORDER_ID.fullmatch(reference) is None:
        raise InvalidRequest(
            "merchant_reference (Midtrans order_id) must be 1-50 letters, digits, - _ . ~ "
            "and must not end in a digit or a dot",
            provider=PROVIDER,
            field="merchant_reference",
        )
