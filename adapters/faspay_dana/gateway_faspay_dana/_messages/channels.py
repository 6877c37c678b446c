"""Payment channel inquiry (§5): which channels are enabled for the merchant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Self

import attrs

from gateway_faspay_dana._config import FaspayConfig
from gateway_faspay_dana._errors import PayloadError
from gateway_faspay_dana._messages.common import DIGITS, MERCHANT_ID, check_text, envelope
from gateway_faspay_dana._signature import channel_inquiry_signature
from gateway_faspay_dana._wire import Fields


@attrs.frozen
class ChannelInquiryRequest:
    """``POST /cvr/100001/10``: which channels are enabled for the merchant."""

    merchant_id: str = attrs.field(validator=check_text(5, pattern=r"[0-9]{5}"))
    merchant: str = attrs.field(validator=check_text(32, required=False))
    signature: str = attrs.field(repr=False)
    request: str = attrs.field(
        default="Request List of Payment Gateway", validator=check_text(50, required=False)
    )

    @classmethod
    def for_config(cls, config: FaspayConfig) -> Self:
        """The request for ``config``, signed ``sha1(md5(user_id + password))``."""
        return cls(
            merchant_id=config.merchant_id,
            merchant=config.merchant_name,
            signature=channel_inquiry_signature(config.user_id, config.password),
        )

    def to_payload(self) -> dict[str, str]:
        return {
            "request": self.request,
            "merchant_id": self.merchant_id,
            "merchant": self.merchant,
            "signature": self.signature,
        }


class PaymentChannel(NamedTuple):
    """One enabled channel, a ``(code, name)`` pair: ``pg_code`` (``"819"``) and ``pg_name``
    (``"DANA"``)."""

    code: str
    name: str


@attrs.frozen
class ChannelInquiryResponse:
    """The channel list. Channels sit in a nested ``payment_channel`` array (§14 #12); a
    single object, or the flat ``pg_code``/``pg_name`` of the docs' table, is read too."""

    response_code: str
    response_desc: str = ""
    merchant_id: str = ""
    merchant: str = ""
    channels: tuple[PaymentChannel, ...] = ()
    response: str = ""

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> Self:
        fields, code, desc = envelope(payload)
        raw = fields.raw("payment_channel")
        if raw == "" and fields.has("pg_code"):
            raw = [{"pg_code": fields.raw("pg_code"), "pg_name": fields.raw("pg_name")}]
        if raw == "":
            entries: list[object] = []
        elif isinstance(raw, Mapping):
            entries = [raw]
        elif isinstance(raw, list):
            entries = raw
        else:
            raise PayloadError("payment_channel must be an array", field="payment_channel")
        channels = []
        for entry in entries:
            item = Fields(_as_channel(entry), what="payment_channel entry")
            channels.append(
                PaymentChannel(
                    code=item.text("pg_code", required=True, numeric=True, pattern=DIGITS),
                    name=item.text("pg_name"),
                )
            )
        return cls(
            response_code=code,
            response_desc=desc,
            merchant_id=fields.text("merchant_id", numeric=True, pattern=MERCHANT_ID),
            merchant=fields.text("merchant"),
            channels=tuple(channels),
            response=fields.text("response"),
        )


def _as_channel(value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise PayloadError("payment_channel entries must be objects", field="payment_channel")
    return value
