"""Faspay's reference rules: the ``bill_no`` this plugin makes, and the ones it accepts.

Why a bill number must never end in a digit: Faspay signs with plain concatenation, no
separator. The redirect URL the customer's browser sees carries
``sha1(md5(user_id + password + bill_no))``, and a notification for bill ``B`` reporting status
``s`` (one digit) is signed ``sha1(md5(user_id + password + B + s))``. If bill ``B + "2"``
existed, its redirect signature would *be* a valid "paid" notification signature for bill
``B``. So no reference may equal another reference plus a status code: every reference this
plugin makes ends in a letter, and a reference supplied by the integrator is refused unless it
does too. (The payment service also confirms every settling Faspay notification by an inquiry,
declared in the plugin's ``TrustDeclaration``; this rule is the second, independent wall.)

``bill_reff`` (the order reference as Faspay shows it) is at most 32 characters as well: a
longer order reference is shortened the same way, keeping a digest so two long references
stay apart.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from gateway_faspay_dana._errors import InvalidRequest

MAX_REFERENCE: Final = 32
#: What a bill number this plugin sends may look like: Faspay's alphabet, ending in a letter,
#: ``-`` or ``_`` (never in a digit: see the module docstring).
REFERENCE: Final = re.compile(r"[A-Za-z0-9_-]{0,31}[A-Za-z_-]")
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_-]")
#: The letter that ends every generated reference (``ORDER-1001-1P``: attempt 1).
SUFFIX: Final = "P"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]


def make_reference(order_reference: str, attempt: int) -> str:
    """``<order>-<attempt>P``: Faspay's alphabet, at most 32 characters, ending in a letter.

    An order reference with other characters, or too long to fit, is cut and followed by a
    digest of the whole, so distinct orders keep distinct bill numbers.
    """
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError("attempt must be a positive int")
    tail = f"-{attempt}{SUFFIX}"
    base = _UNSAFE.sub("", order_reference)
    room = MAX_REFERENCE - len(tail)
    if not base or len(base) > room or base != order_reference:
        digest = _digest(order_reference)
        base = f"{base[: room - len(digest)]}{digest}" if base else digest
    return f"{base}{tail}"


def check_reference(reference: str) -> None:
    """Refuse a ``bill_no`` that breaks Faspay's rules or ends in a digit, before anything is
    recorded or sent."""
    if not isinstance(reference, str) or REFERENCE.fullmatch(reference) is None:
        raise InvalidRequest(
            "merchant_reference (bill_no) must be 1-32 letters, digits, - or _ and must not "
            "end in a digit (a bill number that ends in a digit can collide with another "
            "bill's notification signature)",
            field="bill_no",
        )


def order_reference_for_faspay(order_reference: str) -> str:
    """``bill_reff``: the order reference, or (when longer than 32 characters) its first 21
    characters, ``-`` and a 10-character digest of the whole."""
    if len(order_reference) <= MAX_REFERENCE:
        return order_reference
    return f"{order_reference[:21]}-{_digest(order_reference)}"
