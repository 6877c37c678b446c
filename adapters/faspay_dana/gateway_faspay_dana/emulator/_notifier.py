"""Faspay's notification policy for the emulation kit's :class:`Notifier`.

Policy (§10.1, ASSUMPTIONS where the docs are silent): one attempt plus up to three re-sends
(``max_attempts=4``) spaced by ``retry_interval`` seconds (default 60); an attempt counts as
delivered only when the reply is HTTP 200 **and** its body (JSON or XML, sniffed) has
``response_code`` ``"00"``. Every attempt and reply is recorded (with its ``response_code``).
The delivery machinery (threads, faults, records) is the kit's
(``gateway_core.emulation.notifier``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gateway_core.emulation.notifier import (
    Delivery,
    Message,
    NotificationPlan,
    Notifier,
    RetrySchedule,
    Verdict,
)
from gateway_faspay_dana.emulator._messages import parse_acknowledgement, render

__all__ = [
    "Delivery",
    "NotificationPlan",
    "Notifier",
    "faspay_accept",
    "faspay_message",
    "faspay_notifier",
]


def faspay_accept(status: int, reply: bytes) -> Verdict:
    """Delivered when the reply is HTTP 200 with ``response_code`` ``"00"``."""
    code = parse_acknowledgement(reply).get("response_code")
    if status == 200 and code == "00":
        return Verdict(True, fields={"response_code": code})
    error = f"HTTP {status}" if status != 200 else f"response_code {code!r}"
    return Verdict(False, error, fields={"response_code": code})


def faspay_message(merchant_id: str, fields: Mapping[str, str], fmt: str) -> Message:
    """The notification body for ``fields`` in ``fmt`` (json or xml), labelled for the
    delivery records (``merchant_id``, ``bill_no``, ``trx_id``, ``status``, ``format``)."""
    body, content_type = render(fields, fmt)
    labels = {
        "merchant_id": merchant_id,
        "bill_no": fields.get("bill_no", ""),
        "trx_id": fields.get("trx_id", ""),
        "status": fields.get("payment_status_code", ""),
        "format": fmt,
    }
    return Message(body, content_type, labels)


def faspay_notifier(
    *, retry_interval: float, max_attempts: int, timeout: float, now: Callable[[], str]
) -> Notifier:
    """A notifier with Faspay's retry policy and acknowledgement rule."""
    return Notifier(
        schedule=RetrySchedule.fixed(retry_interval, max_attempts),
        accept=faspay_accept,
        timeout=timeout,
        now=now,
        headers={"User-Agent": "faspay-dana-emulator"},
        attempt_fields={"response_code": None},
        name="faspay-emulator",
    )
