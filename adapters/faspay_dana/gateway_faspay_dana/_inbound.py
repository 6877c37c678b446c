"""Faspay's inbound messages: parse and verify a notification (JSON or XML) or the customer's
return, and render the §10.4 reply for the payment service's verdict.

Parsing never raises anything but :class:`~gateway_core.NotificationRejected`:
:class:`~gateway_core.MalformedNotification` or :class:`~gateway_core.BadSignature`. The reply
is in the format of the request's body (the configured ``notification_format`` when the format
cannot be told): HTTP 200 with ``response_code "00"``, or a failure with ``"99"`` (HTTP 403
for a bad signature, 400 otherwise).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from gateway_core import (
    Acknowledgement,
    BadSignature,
    MalformedNotification,
    Notification,
    NotificationRejected,
    PaymentStatus,
    ProviderEvent,
    Reason,
    ReturnResult,
    get_logger,
)
from gateway_faspay_dana._codes import SUCCESS, payment_status
from gateway_faspay_dana._config import FaspayConfig
from gateway_faspay_dana._errors import PROVIDER, PayloadError
from gateway_faspay_dana._messages.common import INBOUND_BILL_NO, TRX_ID, optional_datetime
from gateway_faspay_dana._messages.notification import (
    NotificationAck,
    decode_notification,
    notification_fields,
)
from gateway_faspay_dana._messages.return_url import ReturnQuery
from gateway_faspay_dana._signature import matches
from gateway_faspay_dana._wire import format_datetime, sniff_format

log = get_logger("gateway_faspay_dana")

#: ``response_code`` of every failure acknowledgement we send (Faspay's Magento plugin uses
#: ``99`` for the same cases; Faspay's own table has no merchant-reply codes).
REJECTED_CODE: Final = "99"
MALFORMED_STATUS: Final = 400
BAD_SIGNATURE_STATUS: Final = 403
REFUSED_STATUS: Final = 400

_CONTENT_TYPES: Final = {"json": "application/json", "xml": "application/xml"}
_REASON: Final = re.compile(r"[^\x20-\x7e]+")
#: What the provider reads for a reason whose code alone would not say it.
_TEXTS: Final = {Reason.LEDGER_UNAVAILABLE: "temporarily unavailable"}


def parse_notification(config: FaspayConfig, body: bytes) -> Notification:
    """Parse and verify a notification (JSON or XML, sniffed from the body).

    The signature must be ``sha1(md5(user_id + password + bill_no + payment_status_code))``.
    The legacy form without the status (§14 #3) is logged and rejected unless
    ``accept_legacy_signature`` is set.
    """
    try:
        fmt, payload = decode_notification(body, max_bytes=config.max_notification_bytes)
        return _verified(config, notification_fields(payload), payload.get("signature"), fmt)
    except NotificationRejected:
        raise
    except PayloadError as exc:
        log.warning("notification rejected: malformed (%s)", exc.field or "body")
        rejected = MalformedNotification(f"malformed Faspay notification: {exc}", provider=PROVIDER)
    except Exception as exc:
        log.error("notification rejected: unexpected %s", type(exc).__name__)
        rejected = MalformedNotification("unreadable Faspay notification", provider=PROVIDER)
    raise rejected


def _verified(
    config: FaspayConfig, message: Mapping[str, Any], signature: object, fmt: str
) -> Notification:
    """The core's :class:`Notification` of ``message`` (:class:`PaymentNotification`'s fields,
    read once) once ``signature`` verifies; :class:`BadSignature` otherwise."""
    bill_no, code = message["bill_no"], message["payment_status_code"]
    legacy = False
    if not matches(signature, config.user_id, config.password, bill_no, code):
        legacy = matches(signature, config.user_id, config.password, bill_no)
        if not (legacy and config.accept_legacy_signature):
            log.warning(
                "notification rejected: %s signature, bill_no=%s",
                "legacy (no status)" if legacy else "bad",
                bill_no,
            )
            raise BadSignature(
                "Faspay notification signature does not verify"
                + (" (legacy form without the status is not accepted)" if legacy else ""),
                provider=PROVIDER,
                merchant_reference=bill_no,
            )
        log.warning("notification accepted with a legacy signature, bill_no=%s", bill_no)
    status = payment_status(code)
    payment_date = message["payment_date"]
    fields: dict[str, Any] = {
        "request": message["request"],
        "merchant": message["merchant"],
        "payment_date": payment_date,
        "payment_status_desc": message["payment_status_desc"],
        "payment_channel_uid": message["payment_channel_uid"],
        "payment_channel": message["payment_channel"],
        "legacy_signature": legacy,
    }
    log.info("notification verified, bill_no=%s, status=%s", bill_no, code)
    return Notification(
        provider=PROVIDER,
        merchant_reference=bill_no,
        status=status,
        event_key=f"{bill_no}:{code}",
        provider_reference=message["trx_id"],
        provider_status=code,
        merchant_id=message["merchant_id"],
        amount=message["bill_total"],
        # An unpaid bill's payment_total says nothing about the bill: only a paid (or
        # reversed) one is an amount the core should compare.
        paid_amount=(
            message["payment_total"]
            if status in (PaymentStatus.PAID, PaymentStatus.REVERSED)
            else None
        ),
        paid_at=optional_datetime(payment_date),
        payment_reference=message["payment_reff"],
        body_format=fmt,
        fields=fields,
    )


def parse_return(config: FaspayConfig, params: Mapping[str, str]) -> ReturnResult:
    """Parse and verify the customer's return: ``signature`` must be ``sha1(md5(user_id +
    password + bill_no + status))``. The status is a claim to pick a page with, never a
    settlement (``return_settles=False``)."""
    try:
        parsed = ReturnQuery.from_query(params)
        if not matches(
            params.get("signature"), config.user_id, config.password, parsed.bill_no, parsed.status
        ):
            log.warning("return rejected: bad signature, bill_no=%s", parsed.bill_no)
            raise BadSignature(
                "Faspay return signature does not verify",
                provider=PROVIDER,
                merchant_reference=parsed.bill_no,
            )
        return ReturnResult(
            provider=PROVIDER,
            merchant_reference=parsed.bill_no,
            status=parsed.payment_status,
            provider_reference=parsed.trx_id,
            provider_status=parsed.status,
            amount=parsed.bill_total,
            merchant_id=parsed.merchant_id,
        )
    except NotificationRejected:
        raise
    except PayloadError as exc:
        log.warning("return rejected: malformed (%s)", exc.field or "query")
        raise MalformedNotification(f"malformed Faspay return: {exc}", provider=PROVIDER) from None
    except Exception as exc:
        log.error("return rejected: unexpected %s", type(exc).__name__)
        raise MalformedNotification("unreadable Faspay return", provider=PROVIDER) from None


def render_reply(
    config: FaspayConfig,
    now: datetime,
    message: Notification | ProviderEvent | None,
    reason: Reason,
    body: bytes,
    *,
    accepted: bool,
) -> Acknowledgement:
    """The §10.4 reply. For a parsed notification: in its format, echoing it, HTTP 200 with
    ``"00"`` or HTTP 400 with ``"99"`` and the reason as the text. Without one (parsing failed,
    or the request was refused unread): in the body's own format, echoing the well-shaped
    ``trx_id`` and ``bill_no`` it holds, ``"Invalid signature"`` (HTTP 403) or ``"Malformed
    notification"`` (HTTP 400)."""
    if isinstance(message, Notification):
        fmt = message.body_format if message.body_format in _CONTENT_TYPES else "json"
        merchant = message.fields.get("merchant")
        if accepted:
            text = "Success"
        else:
            text = _TEXTS.get(reason) or _printable(reason.value)[:50] or "Rejected"
        ack = NotificationAck(
            trx_id=message.provider_reference,
            merchant_id=message.merchant_id or config.merchant_id,
            merchant=merchant if isinstance(merchant, str) and merchant else config.merchant_name,
            bill_no=message.merchant_reference,
            response_code=SUCCESS if accepted else REJECTED_CODE,
            response_desc=text,
            response_date=format_datetime(now),
        )
        return Acknowledgement(
            status_code=200 if accepted else REFUSED_STATUS,
            content_type=_CONTENT_TYPES[fmt],
            body=ack.to_bytes(fmt),
            accepted=accepted,
        )
    fmt, echo = _format_and_echo(config, body)
    bad_signature = reason is Reason.BAD_SIGNATURE
    if accepted:
        text = "Success"
    elif reason in _TEXTS:
        text = _TEXTS[reason]
    else:
        text = "Invalid signature" if bad_signature else "Malformed notification"
    ack = NotificationAck(
        trx_id=echo.get("trx_id", ""),
        merchant_id=config.merchant_id,
        merchant=config.merchant_name,
        bill_no=echo.get("bill_no", ""),
        response_code=SUCCESS if accepted else REJECTED_CODE,
        response_desc=text,
        response_date=format_datetime(now),
    )
    status = 200 if accepted else BAD_SIGNATURE_STATUS if bad_signature else MALFORMED_STATUS
    return Acknowledgement(
        status_code=status,
        content_type=_CONTENT_TYPES[fmt],
        body=ack.to_bytes(fmt),
        accepted=accepted,
    )


def _format_and_echo(config: FaspayConfig, body: bytes) -> tuple[str, dict[str, str]]:
    """The body's format and its well-shaped ``trx_id`` and ``bill_no`` (for the reply)."""
    fallback = config.notification_format
    try:
        fmt, payload = decode_notification(body, max_bytes=config.max_notification_bytes)
    except Exception:
        fmt = _format_of(body, fallback)
        return (fmt if fmt in _CONTENT_TYPES else "json"), {}
    echo: dict[str, str] = {}
    for key, pattern in (("trx_id", TRX_ID), ("bill_no", INBOUND_BILL_NO)):
        value = payload.get(key)
        if isinstance(value, str) and pattern.fullmatch(value):
            echo[key] = value
    return (fmt if fmt in _CONTENT_TYPES else "json"), echo


def _format_of(body: object, fallback: str) -> str:
    try:
        return sniff_format(body) or fallback
    except Exception:
        return fallback


def _printable(text: str) -> str:
    return _REASON.sub(" ", text).strip() if isinstance(text, str) else ""
