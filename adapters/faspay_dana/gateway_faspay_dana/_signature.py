"""Faspay Debit signatures: ``sha1(md5(concat))`` as lowercase hex.

SHA-1 is applied to the 32-character lowercase hex string of the MD5 digest, not to its raw
bytes (PHP ``sha1(md5($s))``). Verification checks the candidate's type and shape first (a
``str`` of exactly 40 lowercase hex characters; anything else is a plain rejection, never an
exception) and then compares in constant time on bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import re

SIGNATURE_LENGTH = 40
_SHAPE = re.compile(r"[0-9a-f]{40}")


def sign(*parts: str) -> str:
    """``sha1(md5(''.join(parts)))`` in lowercase hex; parts are UTF-8 encoded."""
    concat = "".join(parts).encode("utf-8")
    inner = hashlib.md5(concat, usedforsecurity=False).hexdigest().encode("ascii")
    return hashlib.sha1(inner, usedforsecurity=False).hexdigest()


def well_formed(candidate: object) -> bool:
    """True when ``candidate`` is a ``str`` shaped like a signature (40 lowercase hex)."""
    return (
        isinstance(candidate, str)
        and len(candidate) == SIGNATURE_LENGTH
        and _SHAPE.fullmatch(candidate) is not None
    )


def matches(candidate: object, *parts: str) -> bool:
    """Constant-time check that ``candidate`` is the signature of ``parts``."""
    if not well_formed(candidate):
        return False
    assert isinstance(candidate, str)
    return hmac.compare_digest(candidate.encode("ascii"), sign(*parts).encode("ascii"))


# Formulas per message (protocol reference §3.3). ``user_id`` is "bot" + merchant_id.


def channel_inquiry_signature(user_id: str, password: str) -> str:
    """Payment Channel Inquiry: ``sign(user_id, password)``."""
    return sign(user_id, password)


def bill_signature(user_id: str, password: str, bill_no: str) -> str:
    """Post data, inquiry, cancel and the redirect path: ``sign(user_id, password, bill_no)``."""
    return sign(user_id, password, bill_no)


def status_signature(user_id: str, password: str, bill_no: str, status: str) -> str:
    """Notification (``payment_status_code``) and return URL (``status``):
    ``sign(user_id, password, bill_no, status)``."""
    return sign(user_id, password, bill_no, status)
