"""Cancel transaction (§9): void an unpaid bill."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

import attrs

from gateway_core import PaymentStatus
from gateway_faspay_dana._codes import SUCCESS, payment_status
from gateway_faspay_dana._config import FaspayConfig
from gateway_faspay_dana._messages.common import (
    CONTROL,
    INBOUND_BILL_NO,
    MERCHANT_ID,
    TRX_ID,
    check_text,
    envelope,
    status_code,
)
from gateway_faspay_dana._signature import bill_signature


@attrs.frozen
class CancelRequest:
    """``POST /cvr/100005/10``: void an unpaid bill. ``payment_cancel`` is the reason."""

    trx_id: str = attrs.field(validator=check_text(32, pattern=TRX_ID.pattern))
    merchant_id: str = attrs.field(validator=check_text(5, pattern=r"[0-9]{5}"))
    merchant: str = attrs.field(validator=check_text(32, required=False))
    bill_no: str = attrs.field(validator=check_text(32, pattern=INBOUND_BILL_NO.pattern))
    payment_cancel: str = attrs.field(validator=check_text(50))
    signature: str = attrs.field(repr=False)
    request: str = attrs.field(
        default="Canceling Payment", validator=check_text(50, required=False)
    )

    @classmethod
    def for_bill(cls, config: FaspayConfig, *, trx_id: str, bill_no: str, reason: str) -> Self:
        """Signed ``sha1(md5(user_id + password + bill_no))``; the reason is cut to the
        field's 50 characters (it is display text) and defaults to "Cancelled by merchant"."""
        text = CONTROL.sub(" ", reason).strip()[:50] or "Cancelled by merchant"
        return cls(
            trx_id=trx_id,
            merchant_id=config.merchant_id,
            merchant=config.merchant_name,
            bill_no=bill_no,
            payment_cancel=text,
            signature=bill_signature(config.user_id, config.password, bill_no),
        )

    def to_payload(self) -> dict[str, str]:
        return {
            "request": self.request,
            "trx_id": self.trx_id,
            "merchant_id": self.merchant_id,
            "merchant": self.merchant,
            "bill_no": self.bill_no,
            "payment_cancel": self.payment_cancel,
            "signature": self.signature,
        }


@attrs.frozen
class CancelResponse:
    """The answer to cancel. The reason echo is ``payment_cancel`` (§14 #13; the doc
    table's ``payment_cancel_msg`` is read as a fallback)."""

    response_code: str
    response_desc: str = ""
    trx_id: str = ""
    merchant_id: str = ""
    merchant: str = ""
    bill_no: str = ""
    trx_status_code: str = ""
    trx_status_desc: str = ""
    payment_status_code: str = ""
    payment_status_desc: str = ""
    payment_cancel_date: str = ""
    payment_cancel: str = ""
    response: str = ""

    @property
    def status(self) -> PaymentStatus:
        """``payment_status_code`` as the core's status (``CANCELLED`` after a cancel)."""
        return payment_status(self.payment_status_code)

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> Self:
        """Both shapes; a success must carry a documented ``payment_status_code``."""
        fields, code, desc = envelope(payload)
        return cls(
            response_code=code,
            response_desc=desc,
            trx_id=fields.text("trx_id", numeric=True, pattern=TRX_ID),
            merchant_id=fields.text("merchant_id", numeric=True, pattern=MERCHANT_ID),
            merchant=fields.text("merchant"),
            bill_no=fields.text("bill_no", numeric=True, pattern=INBOUND_BILL_NO),
            trx_status_code=fields.text("trx_status_code", numeric=True),
            trx_status_desc=fields.text("trx_status_desc"),
            payment_status_code=status_code(fields, required=code == SUCCESS),
            payment_status_desc=fields.text("payment_status_desc"),
            payment_cancel_date=fields.text("payment_cancel_date", null_literal=True),
            payment_cancel=fields.text("payment_cancel") or fields.text("payment_cancel_msg"),
            response=fields.text("response"),
        )
