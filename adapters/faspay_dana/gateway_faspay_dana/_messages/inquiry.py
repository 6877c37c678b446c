"""Inquiry payment status (§8): the bill's current status, asked of Faspay."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Self

import attrs

from gateway_core import Money, PaymentStatus
from gateway_faspay_dana._codes import SUCCESS, payment_status
from gateway_faspay_dana._config import FaspayConfig
from gateway_faspay_dana._messages.common import (
    INBOUND_BILL_NO,
    MERCHANT_ID,
    TRX_ID,
    check_text,
    envelope,
    optional_datetime,
    status_code,
)
from gateway_faspay_dana._signature import bill_signature


@attrs.frozen
class InquiryRequest:
    """``POST /cvr/100004/10``: the bill's current status."""

    trx_id: str = attrs.field(validator=check_text(32, pattern=TRX_ID.pattern))
    merchant_id: str = attrs.field(validator=check_text(5, pattern=r"[0-9]{5}"))
    bill_no: str = attrs.field(validator=check_text(32, pattern=INBOUND_BILL_NO.pattern))
    signature: str = attrs.field(repr=False)
    request: str = attrs.field(
        default="Inquiry Payment Status", validator=check_text(50, required=False)
    )

    @classmethod
    def for_bill(cls, config: FaspayConfig, *, trx_id: str, bill_no: str) -> Self:
        """Signed ``sha1(md5(user_id + password + bill_no))``."""
        return cls(
            trx_id=trx_id,
            merchant_id=config.merchant_id,
            bill_no=bill_no,
            signature=bill_signature(config.user_id, config.password, bill_no),
        )

    def to_payload(self) -> dict[str, str]:
        return {
            "request": self.request,
            "trx_id": self.trx_id,
            "merchant_id": self.merchant_id,
            "bill_no": self.bill_no,
            "signature": self.signature,
        }


@attrs.frozen
class InquiryResponse:
    """The bill's status. ``response_code "00"`` means the inquiry worked, not that the bill
    is paid: that is ``payment_status_code``."""

    response_code: str
    response_desc: str = ""
    trx_id: str = ""
    merchant_id: str = ""
    merchant: str = ""
    bill_no: str = ""
    payment_reff: str = ""
    payment_date: str = ""
    payment_status_code: str = ""
    payment_status_desc: str = ""
    payment_total: Money | None = None
    response: str = ""

    @property
    def status(self) -> PaymentStatus:
        """``payment_status_code`` as the core's status."""
        return payment_status(self.payment_status_code)

    @property
    def paid_at(self) -> datetime | None:
        """``payment_date`` as an aware datetime; ``None`` when empty or unreadable."""
        return optional_datetime(self.payment_date)

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
            payment_reff=fields.text("payment_reff", numeric=True, null_literal=True),
            payment_date=fields.text("payment_date", null_literal=True),
            payment_status_code=status_code(fields, required=code == SUCCESS),
            payment_status_desc=fields.text("payment_status_desc"),
            payment_total=fields.amount("payment_total"),
            response=fields.text("response"),
        )
