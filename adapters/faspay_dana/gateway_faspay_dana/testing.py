"""Builders of correctly signed Faspay messages, for integrators' tests and the emulator.

::

    from gateway_faspay_dana.testing import signed_notification, signed_return_query

    body = signed_notification(config, bill_no="INV-1", trx_id="9999981900000001",
                               status=PaymentStatus.PAID, amount=Money("2000", "IDR"))
    gateway.handle_notification(body, {})

``credentials`` is a :class:`~gateway_faspay_dana.FaspayConfig`, a
:class:`~gateway_faspay_dana.FaspayDanaGateway`, a settings mapping (as given to
``FaspayConfig.from_settings``; the environment is not read) or a ``(merchant_id, password)``
pair. Keyword ``overrides`` replace fields *after* signing (so they can tamper with a signed
message); an override of ``None`` removes the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway_core import Money, PaymentStatus
from gateway_faspay_dana._codes import PAYMENT_STATUS_DESCRIPTIONS, STATUS_CODES, payment_status
from gateway_faspay_dana._config import FaspayConfig
from gateway_faspay_dana._faspay_side import notification_payload, return_query
from gateway_faspay_dana._gateway import FaspayDanaGateway
from gateway_faspay_dana._messages.common import CHANNEL_DANA
from gateway_faspay_dana._messages.notification import PaymentNotification
from gateway_faspay_dana._messages.return_url import ReturnQuery
from gateway_faspay_dana._signature import bill_signature, status_signature
from gateway_faspay_dana._wire import encode_json, encode_xml, format_datetime, jakarta_now

__all__ = ["Credentials", "config_of", "signed_notification", "signed_return_query"]

Credentials = FaspayConfig | FaspayDanaGateway | Mapping[str, Any] | tuple[str, str]

_TEST_MERCHANT = "Faspay Test Store"


def config_of(credentials: Credentials) -> FaspayConfig:
    """The :class:`FaspayConfig` behind ``credentials``."""
    if isinstance(credentials, FaspayConfig):
        return credentials
    if isinstance(credentials, FaspayDanaGateway):
        return credentials.config
    if isinstance(credentials, tuple):
        merchant_id, password = credentials
        return FaspayConfig(
            merchant_id=merchant_id, merchant_name=_TEST_MERCHANT, password=password
        )
    if isinstance(credentials, Mapping):
        settings = {"merchant_name": _TEST_MERCHANT, **credentials}
        return FaspayConfig.from_settings(settings, environ={})
    raise TypeError("credentials must be a FaspayConfig, a gateway, a mapping or a pair")


def _code(status: PaymentStatus | str) -> str:
    if isinstance(status, PaymentStatus):
        return STATUS_CODES[status]
    payment_status(status)  # a documented code only
    return status


def _money(amount: Money | int | str) -> Money:
    if isinstance(amount, Money):
        return amount
    if isinstance(amount, int) and not isinstance(amount, bool):
        return Money.from_minor_units(amount, "IDR")
    if isinstance(amount, str) and amount.isdigit():
        return Money.from_minor_units(int(amount), "IDR")
    raise TypeError("amount must be Money, minor units (int) or a digit string")


def _apply(payload: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    return payload


def signed_notification(
    credentials: Credentials,
    *,
    bill_no: str,
    trx_id: str,
    status: PaymentStatus | str,
    amount: Money | int | str,
    fmt: str = "json",
    legacy: bool = False,
    paid_amount: Money | int | str | None = None,
    payment_date: datetime | str | None = None,
    payment_reff: str = "null",
    **overrides: Any,
) -> bytes:
    """A notification body as Faspay would POST it, signed for ``credentials``.

    ``status`` is a core status or a Faspay ``payment_status_code``; ``amount`` the bill
    total (``paid_amount``, default the same, is ``payment_total``). ``legacy=True`` signs
    without the status (the docs' XML sample, §14 #3). ``fmt`` is ``"json"`` or ``"xml"``.
    """
    config = config_of(credentials)
    code = _code(status)
    if legacy:
        signature = bill_signature(config.user_id, config.password, bill_no)
    else:
        signature = status_signature(config.user_id, config.password, bill_no, code)
    if isinstance(payment_date, datetime):
        date = format_datetime(payment_date)
    else:
        date = payment_date if payment_date is not None else format_datetime(jakarta_now())
    message = PaymentNotification(
        trx_id=trx_id,
        merchant_id=config.merchant_id,
        merchant=config.merchant_name,
        bill_no=bill_no,
        payment_reff=payment_reff,
        payment_date=date,
        payment_status_code=code,
        payment_status_desc=PAYMENT_STATUS_DESCRIPTIONS[code],
        bill_total=_money(amount),
        payment_total=_money(paid_amount if paid_amount is not None else amount),
        payment_channel_uid=CHANNEL_DANA,
        payment_channel="DANA",
        signature=signature,
    )
    payload = _apply(dict(notification_payload(message)), overrides)
    if fmt == "xml":
        return encode_xml((key, str(value)) for key, value in payload.items())
    if fmt != "json":
        raise ValueError("fmt must be 'json' or 'xml'")
    return encode_json(payload)


def signed_return_query(
    credentials: Credentials,
    *,
    bill_no: str,
    status: PaymentStatus | str,
    trx_id: str = "",
    amount: Money | int | str | None = None,
    bank_user_name: str = "DANA Customer",
    **overrides: Any,
) -> dict[str, str]:
    """The Return URL's query parameters as Faspay sends them (D7 order, ``bill_ref``),
    signed ``sha1(md5(user_id + password + bill_no + status))``."""
    config = config_of(credentials)
    code = _code(status)
    query = return_query(
        ReturnQuery(
            bill_no=bill_no,
            status=code,
            trx_id=trx_id,
            merchant_id=config.merchant_id,
            merchant=config.merchant_name,
            bill_reff=bill_no,
            bill_total=_money(amount) if amount is not None else None,
            bank_user_name=bank_user_name,
            signature=status_signature(config.user_id, config.password, bill_no, code),
        )
    )
    return _apply(dict(query), overrides)
