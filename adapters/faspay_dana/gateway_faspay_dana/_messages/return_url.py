"""The customer's return to our Return URL (§12): a GET query, parsed strictly.

What the return claims is never proof of payment: the gateway verifies its signature and the
service confirms by inquiry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, Self

import attrs

from gateway_core import Money, PaymentStatus
from gateway_faspay_dana._codes import payment_status
from gateway_faspay_dana._errors import PayloadError
from gateway_faspay_dana._messages.common import INBOUND_BILL_NO, MERCHANT_ID, TRX_ID
from gateway_faspay_dana._wire import Fields

STATUS_CODE: Final = re.compile(r"[0-9]")
MAX_QUERY_FIELDS: Final = 40
MAX_QUERY_VALUE: Final = 512


@attrs.frozen(kw_only=True)
class ReturnQuery:
    """The customer's return to our Return URL (a GET query), parsed strictly.

    ``bill_ref`` (the docs' example) and ``bill_reff`` (the docs' table) are both read
    (§14 #1); when both are present they must agree. Every value must be a ``str``; at most
    40 parameters of 512 characters each. ``status`` must be a §11.2 code.
    """

    bill_no: str
    status: str
    trx_id: str = ""
    merchant_id: str = ""
    merchant: str = ""
    bill_reff: str = ""
    bill_total: Money | None = None
    payment_reff: str = ""
    payment_date: str = ""
    bank_user_name: str = attrs.field(default="", repr=False)
    request: str = ""
    signature: str = attrs.field(default="", repr=False)

    @property
    def payment_status(self) -> PaymentStatus:
        """``status`` as the core's status (what the return *claims*)."""
        return payment_status(self.status)

    @classmethod
    def from_query(cls, query: Mapping[str, object]) -> Self:
        if not isinstance(query, Mapping):
            raise PayloadError("query must be a mapping")
        if len(query) > MAX_QUERY_FIELDS:
            raise PayloadError("too many query parameters")
        for key, value in query.items():
            if not isinstance(key, str):
                raise PayloadError("query parameter names must be strings")
            if key != "signature" and not isinstance(value, str):
                raise PayloadError(f"{key} must be a single string", field=key)
        fields = Fields(query, what="query")
        bill_ref = fields.text("bill_ref", max_length=MAX_QUERY_VALUE)
        bill_reff = fields.text("bill_reff", max_length=MAX_QUERY_VALUE)
        if bill_ref and bill_reff and bill_ref != bill_reff:
            raise PayloadError("bill_ref and bill_reff disagree", field="bill_reff")
        status = fields.text("status", required=True, pattern=STATUS_CODE)
        payment_status(status)
        signature = query.get("signature")
        return cls(
            bill_no=fields.text("bill_no", required=True, pattern=INBOUND_BILL_NO),
            status=status,
            trx_id=fields.text("trx_id", pattern=TRX_ID),
            merchant_id=fields.text("merchant_id", pattern=MERCHANT_ID),
            merchant=fields.text("merchant", max_length=MAX_QUERY_VALUE),
            bill_reff=bill_ref or bill_reff,
            bill_total=fields.amount("bill_total"),
            payment_reff=fields.text("payment_reff", null_literal=True, max_length=MAX_QUERY_VALUE),
            payment_date=fields.text("payment_date", null_literal=True),
            bank_user_name=fields.text("bank_user_name", max_length=MAX_QUERY_VALUE),
            request=fields.text("request", max_length=MAX_QUERY_VALUE),
            signature=signature if isinstance(signature, str) else "",
        )
