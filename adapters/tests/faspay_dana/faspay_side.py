"""Faspay's side of the plugin's messages, for round-trip and parsing tests only.

The plugin codes each message in the one direction it uses (it writes requests and reads
responses); these are the reverse codecs: reading our requests and writing Faspay's responses
as Faspay would, and reading our acknowledgement. The notification and the return query are
written by :mod:`gateway_faspay_dana._faspay_side` (``testing`` needs them too).
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway_core import Money
from gateway_faspay_dana._errors import InvalidRequest, PayloadError
from gateway_faspay_dana._messages.cancel import CancelRequest, CancelResponse
from gateway_faspay_dana._messages.channels import ChannelInquiryRequest, ChannelInquiryResponse
from gateway_faspay_dana._messages.common import payload_error
from gateway_faspay_dana._messages.create import (
    Address,
    PostDataRequest,
    PostDataResponse,
    items_of,
)
from gateway_faspay_dana._messages.inquiry import InquiryRequest, InquiryResponse
from gateway_faspay_dana._messages.notification import NotificationAck
from gateway_faspay_dana._wire import (
    CURRENCY,
    Fields,
    decode_json_object,
    decode_xml_fields,
    parse_datetime,
    sniff_format,
    to_wire_amount,
)

# -- requests, read as Faspay reads them ----------------------------------------------------


def read_channel_inquiry_request(payload: Mapping[str, object]) -> ChannelInquiryRequest:
    fields = Fields(payload)
    try:
        return ChannelInquiryRequest(
            merchant_id=fields.text("merchant_id", required=True, numeric=True),
            merchant=fields.text("merchant"),
            signature=fields.text("signature"),
            request=fields.text("request"),
        )
    except InvalidRequest as exc:
        raise payload_error(exc) from None


_ADDRESS_PARTS = ("", "_city", "_region", "_state", "_poscode", "_country_code")


def read_address(payload: Mapping[str, object], prefix: str) -> Address:
    fields = Fields(payload)
    keys = [f"{prefix}_address{part}" for part in _ADDRESS_PARTS]
    values = [fields.text(key, numeric=True, max_length=200) for key in keys]
    try:
        return Address(*values)
    except InvalidRequest as exc:
        raise payload_error(exc) from None


def read_post_data_request(payload: Mapping[str, object]) -> PostDataRequest:
    """Parse a post-data body leniently, as Faspay does (§15): numbers for numeric fields,
    ``pay_type`` ``1``/``01``, ``item`` as object or array, legacy ``.dd`` amounts. Unknown
    fields are ignored."""
    fields = Fields(payload, what="post data")

    def amount(key: str, required: bool = False) -> Money:
        value = fields.amount(key, required=required, allow_decimals=True)
        return value if value is not None else Money(0, CURRENCY)

    try:
        return PostDataRequest(
            merchant_id=fields.text("merchant_id", required=True, numeric=True),
            merchant=fields.text("merchant", required=True),
            bill_no=fields.text("bill_no", required=True, numeric=True),
            bill_reff=fields.text("bill_reff", numeric=True),
            bill_date=parse_datetime(fields.text("bill_date"), field="bill_date"),
            bill_expired=parse_datetime(fields.text("bill_expired"), field="bill_expired"),
            bill_desc=fields.text("bill_desc", required=True, max_length=1024),
            bill_currency=fields.text("bill_currency", required=True),
            bill_gross=amount("bill_gross"),
            bill_miscfee=amount("bill_miscfee"),
            bill_total=amount("bill_total", required=True),
            cust_no=fields.text("cust_no", required=True, numeric=True),
            cust_name=fields.text("cust_name", required=True),
            payment_channel=fields.text("payment_channel", required=True, numeric=True),
            pay_type=fields.text("pay_type", required=True, numeric=True),
            bank_userid=fields.text("bank_userid") or fields.text("bank_user_id"),
            msisdn=fields.text("msisdn", required=True, numeric=True),
            email=fields.text("email", required=True),
            terminal=fields.text("terminal", required=True, numeric=True),
            billing=read_address(payload, "billing"),
            receiver_name_for_shipping=fields.text("receiver_name_for_shipping"),
            shipping=read_address(payload, "shipping"),
            items=items_of(fields.raw("item"), strict=True),
            reserve1=fields.text("reserve1"),
            reserve2=fields.text("reserve2"),
            signature=fields.text("signature"),
            request=fields.text("request"),
        )
    except InvalidRequest as exc:
        raise payload_error(exc) from None


def read_inquiry_request(payload: Mapping[str, object]) -> InquiryRequest:
    fields = Fields(payload, what="inquiry")
    try:
        return InquiryRequest(
            trx_id=fields.text("trx_id", required=True, numeric=True),
            merchant_id=fields.text("merchant_id", required=True, numeric=True),
            bill_no=fields.text("bill_no", required=True, numeric=True),
            signature=fields.text("signature"),
            request=fields.text("request"),
        )
    except InvalidRequest as exc:
        raise payload_error(exc) from None


def read_cancel_request(payload: Mapping[str, object]) -> CancelRequest:
    fields = Fields(payload, what="cancel")
    try:
        return CancelRequest(
            trx_id=fields.text("trx_id", required=True, numeric=True),
            merchant_id=fields.text("merchant_id", required=True, numeric=True),
            merchant=fields.text("merchant"),
            bill_no=fields.text("bill_no", required=True, numeric=True),
            payment_cancel=fields.text("payment_cancel", required=True),
            signature=fields.text("signature"),
            request=fields.text("request"),
        )
    except InvalidRequest as exc:
        raise payload_error(exc) from None


# -- responses, written as Faspay writes them -----------------------------------------------


def channel_inquiry_response_payload(response: ChannelInquiryResponse) -> dict[str, object]:
    return {
        "response": response.response,
        "merchant_id": response.merchant_id,
        "merchant": response.merchant,
        "payment_channel": [{"pg_code": c.code, "pg_name": c.name} for c in response.channels],
        "response_code": response.response_code,
        "response_desc": response.response_desc,
    }


def post_data_response_payload(response: PostDataResponse) -> dict[str, object]:
    return {
        "response": response.response,
        "trx_id": response.trx_id,
        "merchant_id": response.merchant_id,
        "merchant": response.merchant,
        "bill_no": response.bill_no,
        "bill_items": [item.to_payload() for item in response.bill_items],
        "response_code": response.response_code,
        "response_desc": response.response_desc,
        "redirect_url": response.redirect_url,
    }


def inquiry_response_payload(response: InquiryResponse) -> dict[str, object]:
    payload: dict[str, object] = {
        "response": response.response,
        "trx_id": response.trx_id,
        "merchant_id": response.merchant_id,
        "merchant": response.merchant,
        "bill_no": response.bill_no,
        "payment_reff": response.payment_reff,
        "payment_date": response.payment_date,
        "payment_status_code": response.payment_status_code,
        "payment_status_desc": response.payment_status_desc,
        "response_code": response.response_code,
        "response_desc": response.response_desc,
    }
    if response.payment_total is not None:
        payload["payment_total"] = to_wire_amount(response.payment_total)
    return payload


def cancel_response_payload(response: CancelResponse) -> dict[str, object]:
    return {
        "response": response.response,
        "trx_id": response.trx_id,
        "merchant_id": response.merchant_id,
        "merchant": response.merchant,
        "bill_no": response.bill_no,
        "trx_status_code": response.trx_status_code,
        "trx_status_desc": response.trx_status_desc,
        "payment_status_code": response.payment_status_code,
        "payment_status_desc": response.payment_status_desc,
        "payment_cancel_date": response.payment_cancel_date,
        "payment_cancel": response.payment_cancel,
        "response_code": response.response_code,
        "response_desc": response.response_desc,
    }


# -- our acknowledgement, read as Faspay reads it -------------------------------------------


def read_acknowledgement_payload(payload: Mapping[str, object]) -> NotificationAck:
    fields = Fields(payload, what="acknowledgement")
    return NotificationAck(
        trx_id=fields.text("trx_id", numeric=True),
        merchant_id=fields.text("merchant_id", numeric=True),
        merchant=fields.text("merchant"),
        bill_no=fields.text("bill_no", numeric=True),
        response_code=fields.code("response_code", required=True),
        response_desc=fields.text("response_desc"),
        response_date=fields.text("response_date"),
        response=fields.text("response"),
    )


def read_acknowledgement(body: bytes) -> tuple[str, NotificationAck]:
    """(format, ack) of a reply body, JSON or XML."""
    fmt = sniff_format(body)
    if fmt == "xml":
        return fmt, read_acknowledgement_payload(decode_xml_fields(body))
    if fmt == "json":
        return fmt, read_acknowledgement_payload(decode_json_object(body))
    raise PayloadError("acknowledgement is neither JSON nor XML")
