"""What the customer is shown per channel family, and what ``provider_data`` keeps to show it
again (a double click, a reload) without asking Faspay.

``provider_data`` holds only what the customer sees anyway, never a secret: the channel code,
the number or payment code, the QR payload and image URL, the *masked* OVO number. The
redirect URL (it embeds the bill's signature) is never stored: it is rebuilt from ``trx_id``
and ``bill_no`` (§7).

The ``trx_id`` (the payment's ``provider_reference``) and the instrument shown (VA number,
payment code, QR payload) are kept apart even where Faspay makes them equal today (channels
reference §13.5: a ``trx_id`` can be reused after payment or expiry).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from gateway_core import InstructionKind, Money, Payment, PaymentInstructions
from gateway_faspay_dana._channels import LEGACY_METHOD, Channel, Family, by_code, by_method
from gateway_faspay_dana._messages.create import PostDataResponse
from gateway_faspay_dana._wire import JAKARTA

#: ``provider_data`` keys.
CHANNEL: Final = "channel"
NUMBER: Final = "number"
QR_CONTENT: Final = "qr_content"
QR_IMAGE: Final = "qr_image"
PHONE: Final = "ovo_phone"
PUSH: Final = "ovo_push"

#: ``provider_data[PUSH]``: the push was accepted, or its answer never came (ASSUMPTION:
#: a timeout means "sent, wait", channels reference §4.2).
PUSH_SENT: Final = "sent"
PUSH_UNCONFIRMED: Final = "unconfirmed"


def channel_of(payment: Payment) -> Channel:
    """The payment's channel: the code ``create`` stored, else its method, else DANA (a
    payment made before channels existed)."""
    data = payment.provider_data or {}
    code = data.get(CHANNEL)
    found = by_code(code) if isinstance(code, str) else None
    found = found or by_method(payment.method) or by_method(LEGACY_METHOD)
    assert found is not None
    return found


def usable_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL, else ``""``."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return ""
    return url


def provider_data(channel: Channel, response: PostDataResponse) -> dict[str, Any]:
    """What :func:`instructions` needs later, from the post-data answer. A DANA payment
    keeps nothing, as before channels existed (:func:`channel_of` falls back to DANA)."""
    if channel.method == LEGACY_METHOD:
        return {}
    data: dict[str, Any] = {CHANNEL: channel.code}
    if channel.family in (Family.VA, Family.RETAIL):
        data[NUMBER] = response.trx_id  # the VA number / payment code (§3.3, §6)
    elif channel.family is Family.QRIS:
        image = usable_url(response.web_url) or usable_url(response.alt_url)
        if response.qr_content:
            data[QR_CONTENT] = response.qr_content
        if image:
            data[QR_IMAGE] = image
    return data


def instructions(channel: Channel, payment: Payment) -> PaymentInstructions | None:
    """The instructions to show for ``payment``, or None when the customer is redirected
    (redirect e-wallets, OVO through Faspay's page, a QRIS answer with neither payload nor
    image: Faspay's "redirect type", §5.3)."""
    return instructions_for(
        channel,
        payment.provider_data,
        amount=payment.amount,
        expires_at=payment.expires_at,
        provider_reference=payment.provider_reference,
    )


def instructions_for(
    channel: Channel,
    provider_data: Mapping[str, Any] | None,
    *,
    amount: Money,
    expires_at: datetime | None,
    provider_reference: str,
) -> PaymentInstructions | None:
    """:func:`instructions` from the payment's parts (``create`` calls it before the
    :class:`~gateway_core.Payment` exists, so that the payment is built once)."""
    data: Mapping[str, Any] = provider_data or {}
    # The bill_expired sent (Jakarta wall time, whole seconds), however the ledger kept it.
    expires = expires_at
    if expires is not None:
        expires = expires.astimezone(JAKARTA).replace(microsecond=0)
    common: dict[str, Any] = {"amount": amount, "expires_at": expires}
    if channel.family in (Family.VA, Family.RETAIL):
        number = data.get(NUMBER)
        if not isinstance(number, str) or not number:
            number = provider_reference  # ASSUMPTION §3.3: the trx_id is the number
        kind = (
            InstructionKind.VIRTUAL_ACCOUNT
            if channel.family is Family.VA
            else InstructionKind.PAYMENT_CODE
        )
        return PaymentInstructions(
            kind=kind, number=number, bank=channel.issuer, text=channel.guide, **common
        )
    if channel.family is Family.QRIS:
        payload, image = data.get(QR_CONTENT, ""), data.get(QR_IMAGE, "")
        if not payload and not image:
            return None
        return PaymentInstructions(
            kind=InstructionKind.QR,
            payload=payload if isinstance(payload, str) else "",
            url=image if isinstance(image, str) else "",
            text=channel.guide,
            **common,
        )
    if channel.family is Family.OVO and isinstance(data.get(PUSH), str):
        masked = data.get(PHONE, "")
        text = (
            f"We sent a payment request to the OVO account {masked}. {channel.guide}"
            if data.get(PUSH) == PUSH_SENT
            else f"A payment request is on its way to the OVO account {masked}. {channel.guide}"
        )
        return PaymentInstructions(kind=InstructionKind.PUSH, text=text, **common)
    return None
