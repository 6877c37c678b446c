"""Faspay Debit API provider for the DANA e-wallet (channel 819).

Configure it as provider ``faspay_dana`` (see :class:`FaspayConfig` for the settings). The
gateway is :class:`FaspayDanaGateway`; the message classes translate each wire message in the
direction the plugin uses it (``to_payload`` for our requests and reply, ``from_payload`` /
``from_query`` for Faspay's messages) and can be used on their own.
Test helpers for integrators live in :mod:`gateway_faspay_dana.testing`.

Errors::

    gateway_core.GatewayError
    └── InvalidRequest (also ValueError) ... a request breaks a Faspay field rule; not sent
    ValueError
    └── PayloadError ....................... a wire message lacks the documented shape
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway_faspay_dana._codes import (
        PAYMENT_STATUS_DESCRIPTIONS,
        PAYMENT_STATUSES,
        RESPONSE_CODES,
        STATUS_CODES,
        ResponseCode,
        payment_status,
        provider_error,
    )
    from gateway_faspay_dana._config import BASE_URLS, REDIRECT_STAGES, FaspayConfig
    from gateway_faspay_dana._errors import InvalidRequest, PayloadError
    from gateway_faspay_dana._gateway import FaspayDanaGateway
    from gateway_faspay_dana._messages.cancel import CancelRequest, CancelResponse
    from gateway_faspay_dana._messages.channels import (
        ChannelInquiryRequest,
        ChannelInquiryResponse,
        PaymentChannel,
    )
    from gateway_faspay_dana._messages.common import CHANNEL_DANA
    from gateway_faspay_dana._messages.create import (
        Address,
        PostDataItem,
        PostDataRequest,
        PostDataResponse,
    )
    from gateway_faspay_dana._messages.inquiry import InquiryRequest, InquiryResponse
    from gateway_faspay_dana._messages.notification import (
        NotificationAck,
        PaymentNotification,
        decode_notification,
    )
    from gateway_faspay_dana._messages.return_url import ReturnQuery
    from gateway_faspay_dana._signature import (
        bill_signature,
        channel_inquiry_signature,
        matches,
        sign,
        status_signature,
    )
    from gateway_faspay_dana._wire import (
        JAKARTA,
        format_datetime,
        from_wire_amount,
        normalise_msisdn,
        parse_datetime,
        to_wire_amount,
    )

# Public name -> the private module defining it. Imported on first access, so that loading
# the plugin module (entry-point discovery) does not import the whole provider.
_LAZY: dict[str, str] = {
    "Address": "gateway_faspay_dana._messages.create",
    "BASE_URLS": "gateway_faspay_dana._config",
    "CHANNEL_DANA": "gateway_faspay_dana._messages.common",
    "CancelRequest": "gateway_faspay_dana._messages.cancel",
    "CancelResponse": "gateway_faspay_dana._messages.cancel",
    "ChannelInquiryRequest": "gateway_faspay_dana._messages.channels",
    "ChannelInquiryResponse": "gateway_faspay_dana._messages.channels",
    "FaspayConfig": "gateway_faspay_dana._config",
    "FaspayDanaGateway": "gateway_faspay_dana._gateway",
    "InquiryRequest": "gateway_faspay_dana._messages.inquiry",
    "InquiryResponse": "gateway_faspay_dana._messages.inquiry",
    "InvalidRequest": "gateway_faspay_dana._errors",
    "JAKARTA": "gateway_faspay_dana._wire",
    "NotificationAck": "gateway_faspay_dana._messages.notification",
    "PAYMENT_STATUSES": "gateway_faspay_dana._codes",
    "PAYMENT_STATUS_DESCRIPTIONS": "gateway_faspay_dana._codes",
    "PayloadError": "gateway_faspay_dana._errors",
    "PaymentChannel": "gateway_faspay_dana._messages.channels",
    "PaymentNotification": "gateway_faspay_dana._messages.notification",
    "PostDataItem": "gateway_faspay_dana._messages.create",
    "PostDataRequest": "gateway_faspay_dana._messages.create",
    "PostDataResponse": "gateway_faspay_dana._messages.create",
    "REDIRECT_STAGES": "gateway_faspay_dana._config",
    "RESPONSE_CODES": "gateway_faspay_dana._codes",
    "ResponseCode": "gateway_faspay_dana._codes",
    "ReturnQuery": "gateway_faspay_dana._messages.return_url",
    "STATUS_CODES": "gateway_faspay_dana._codes",
    "bill_signature": "gateway_faspay_dana._signature",
    "channel_inquiry_signature": "gateway_faspay_dana._signature",
    "decode_notification": "gateway_faspay_dana._messages.notification",
    "format_datetime": "gateway_faspay_dana._wire",
    "from_wire_amount": "gateway_faspay_dana._wire",
    "matches": "gateway_faspay_dana._signature",
    "normalise_msisdn": "gateway_faspay_dana._wire",
    "parse_datetime": "gateway_faspay_dana._wire",
    "payment_status": "gateway_faspay_dana._codes",
    "provider_error": "gateway_faspay_dana._codes",
    "sign": "gateway_faspay_dana._signature",
    "status_signature": "gateway_faspay_dana._signature",
    "to_wire_amount": "gateway_faspay_dana._wire",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


# Plain sorted() order, like gateway_core.__all__ (ruff would group constants first).
__all__ = [  # noqa: RUF022
    "Address",
    "BASE_URLS",
    "CHANNEL_DANA",
    "CancelRequest",
    "CancelResponse",
    "ChannelInquiryRequest",
    "ChannelInquiryResponse",
    "FaspayConfig",
    "FaspayDanaGateway",
    "InquiryRequest",
    "InquiryResponse",
    "InvalidRequest",
    "JAKARTA",
    "NotificationAck",
    "PAYMENT_STATUSES",
    "PAYMENT_STATUS_DESCRIPTIONS",
    "PayloadError",
    "PaymentChannel",
    "PaymentNotification",
    "PostDataItem",
    "PostDataRequest",
    "PostDataResponse",
    "REDIRECT_STAGES",
    "RESPONSE_CODES",
    "ResponseCode",
    "ReturnQuery",
    "STATUS_CODES",
    "bill_signature",
    "channel_inquiry_signature",
    "decode_notification",
    "format_datetime",
    "from_wire_amount",
    "matches",
    "normalise_msisdn",
    "parse_datetime",
    "payment_status",
    "provider_error",
    "sign",
    "status_signature",
    "to_wire_amount",
]
