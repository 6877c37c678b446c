"""Faspay Debit API provider for the DANA e-wallet (channel 819).

Configure it as provider ``faspay_dana`` (see :class:`FaspayConfig` for the settings). The
gateway is :class:`FaspayDanaGateway`; the message classes translate each wire message in the
direction the plugin uses it (``to_payload`` for our requests and reply, ``from_payload`` /
``from_query`` for Faspay's messages) and can be used on their own.
Test helpers for integrators live in :mod:`adapters.faspay_dana.testing`.

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
    from adapters.faspay_dana._codes import (
        PAYMENT_STATUS_DESCRIPTIONS,
        PAYMENT_STATUSES,
        RESPONSE_CODES,
        STATUS_CODES,
        ResponseCode,
        payment_status,
        provider_error,
    )
    from adapters.faspay_dana._config import BASE_URLS, REDIRECT_STAGES, FaspayConfig
    from adapters.faspay_dana._errors import InvalidRequest, PayloadError
    from adapters.faspay_dana._gateway import FaspayDanaGateway
    from adapters.faspay_dana._messages.cancel import CancelRequest, CancelResponse
    from adapters.faspay_dana._messages.channels import (
        ChannelInquiryRequest,
        ChannelInquiryResponse,
        PaymentChannel,
    )
    from adapters.faspay_dana._messages.common import CHANNEL_DANA
    from adapters.faspay_dana._messages.create import (
        Address,
        PostDataItem,
        PostDataRequest,
        PostDataResponse,
    )
    from adapters.faspay_dana._messages.inquiry import InquiryRequest, InquiryResponse
    from adapters.faspay_dana._messages.notification import (
        NotificationAck,
        PaymentNotification,
        decode_notification,
    )
    from adapters.faspay_dana._messages.return_url import ReturnQuery
    from adapters.faspay_dana._signature import (
        bill_signature,
        channel_inquiry_signature,
        matches,
        sign,
        status_signature,
    )
    from adapters.faspay_dana._wire import (
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
    "Address": "adapters.faspay_dana._messages.create",
    "BASE_URLS": "adapters.faspay_dana._config",
    "CHANNEL_DANA": "adapters.faspay_dana._messages.common",
    "CancelRequest": "adapters.faspay_dana._messages.cancel",
    "CancelResponse": "adapters.faspay_dana._messages.cancel",
    "ChannelInquiryRequest": "adapters.faspay_dana._messages.channels",
    "ChannelInquiryResponse": "adapters.faspay_dana._messages.channels",
    "FaspayConfig": "adapters.faspay_dana._config",
    "FaspayDanaGateway": "adapters.faspay_dana._gateway",
    "InquiryRequest": "adapters.faspay_dana._messages.inquiry",
    "InquiryResponse": "adapters.faspay_dana._messages.inquiry",
    "InvalidRequest": "adapters.faspay_dana._errors",
    "JAKARTA": "adapters.faspay_dana._wire",
    "NotificationAck": "adapters.faspay_dana._messages.notification",
    "PAYMENT_STATUSES": "adapters.faspay_dana._codes",
    "PAYMENT_STATUS_DESCRIPTIONS": "adapters.faspay_dana._codes",
    "PayloadError": "adapters.faspay_dana._errors",
    "PaymentChannel": "adapters.faspay_dana._messages.channels",
    "PaymentNotification": "adapters.faspay_dana._messages.notification",
    "PostDataItem": "adapters.faspay_dana._messages.create",
    "PostDataRequest": "adapters.faspay_dana._messages.create",
    "PostDataResponse": "adapters.faspay_dana._messages.create",
    "REDIRECT_STAGES": "adapters.faspay_dana._config",
    "RESPONSE_CODES": "adapters.faspay_dana._codes",
    "ResponseCode": "adapters.faspay_dana._codes",
    "ReturnQuery": "adapters.faspay_dana._messages.return_url",
    "STATUS_CODES": "adapters.faspay_dana._codes",
    "bill_signature": "adapters.faspay_dana._signature",
    "channel_inquiry_signature": "adapters.faspay_dana._signature",
    "decode_notification": "adapters.faspay_dana._messages.notification",
    "format_datetime": "adapters.faspay_dana._wire",
    "from_wire_amount": "adapters.faspay_dana._wire",
    "matches": "adapters.faspay_dana._signature",
    "normalise_msisdn": "adapters.faspay_dana._wire",
    "parse_datetime": "adapters.faspay_dana._wire",
    "payment_status": "adapters.faspay_dana._codes",
    "provider_error": "adapters.faspay_dana._codes",
    "sign": "adapters.faspay_dana._signature",
    "status_signature": "adapters.faspay_dana._signature",
    "to_wire_amount": "adapters.faspay_dana._wire",
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
