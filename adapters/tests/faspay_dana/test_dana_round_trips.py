"""Round trips: each message written by one side and read by the other gives it back (and
the acknowledgement's XML form is the docs' sample).

The plugin codes each message in the direction it uses (it writes requests and the
acknowledgement, reads responses, notifications and returns); the other direction is Faspay's
side, from the helper module ``faspay_side`` and :mod:`gateway_faspay_dana._faspay_side`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from faspay_side import (
    cancel_response_payload,
    channel_inquiry_response_payload,
    inquiry_response_payload,
    post_data_response_payload,
    read_acknowledgement,
    read_acknowledgement_payload,
    read_cancel_request,
    read_channel_inquiry_request,
    read_inquiry_request,
)

from gateway_core import Money
from gateway_faspay_dana import (
    CancelRequest,
    CancelResponse,
    ChannelInquiryRequest,
    ChannelInquiryResponse,
    InquiryRequest,
    InquiryResponse,
    NotificationAck,
    PaymentChannel,
    PaymentNotification,
    PostDataItem,
    PostDataResponse,
    ReturnQuery,
)
from gateway_faspay_dana._faspay_side import notification_payload, return_query

REDIRECT_URL = (
    "https://dev.faspay.co.id/pws/100003/0830000010100000/"
    "7ad74a4aa1c86aeb1308ea5c44e4aa0f4d6ed4e7?trx_id=9999981900021790&merchant_id=99999"
    "&bill_no=20201222023626"
)
SIG = "0" * 40

ROUND_TRIPS = [
    ChannelInquiryRequest(merchant_id="98765", merchant="Faspay sandbox", signature=SIG),
    ChannelInquiryResponse(
        response_code="00",
        response_desc="Sukses",
        merchant_id="98765",
        merchant="Faspay sandbox",
        channels=(PaymentChannel("819", "DANA"), PaymentChannel("812", "OVO")),
        response="List Payment Channel",
    ),
    PostDataResponse(
        response_code="00",
        response_desc="Success",
        trx_id="9999981900021790",
        merchant_id="99999",
        merchant="Sophia Store",
        bill_no="20201222023626",
        redirect_url=REDIRECT_URL,
        bill_items=(PostDataItem("Invoice", 2, Money("500", "IDR"), "99999", "A1"),),
        response="Transmission of Purchase Detail Info",
    ),
    InquiryRequest(
        trx_id="9876530200004184", merchant_id="98765", bill_no="9988776655", signature=SIG
    ),
    InquiryResponse(
        response_code="00",
        response_desc="Sukses",
        trx_id="9876530200004184",
        merchant_id="98765",
        merchant="Faspay sandbox",
        bill_no="9988776655",
        payment_reff="123",
        payment_date="2016-07-22 14:59:30",
        payment_status_code="2",
        payment_status_desc="Payment Sukses",
        payment_total=Money("10000", "IDR"),
        response="Pengecekan Status Pembayaran",
    ),
    CancelRequest(
        trx_id="9999970700002782",
        merchant_id="99999",
        merchant="Sophia Store",
        bill_no="8226",
        payment_cancel="Barang Habis",
        signature=SIG,
    ),
    CancelResponse(
        response_code="00",
        response_desc="Sukses",
        trx_id="9999970700002782",
        merchant_id="99999",
        merchant="Sophia Store",
        bill_no="8226",
        trx_status_code="8",
        trx_status_desc="Cancelled",
        payment_status_code="8",
        payment_status_desc="Payment Cancelled",
        payment_cancel_date="2020-12-19 06:10:00",
        payment_cancel="Barang Habis",
        response="Canceling Payment",
    ),
    PaymentNotification(
        trx_id="8985310250011254",
        merchant_id="31025",
        bill_no="300134486",
        payment_status_code="2",
        bill_total=Money("50000", "IDR"),
        payment_total=Money("50000", "IDR"),
        payment_reff="REF123",
        payment_date="2017-08-10 11:43:18",
        payment_status_desc="Payment Success",
        merchant="Sophia Store",
        payment_channel_uid="819",
        payment_channel="DANA",
        signature=SIG,
    ),
    NotificationAck(
        trx_id="8985310250011254",
        merchant_id="31025",
        merchant="Sophia Store",
        bill_no="300134486",
        response_date="2017-08-10 04:43:45",
    ),
]


#: Per message type: (write, read), one of them the plugin's, the other Faspay's side.
CODECS: dict[type, tuple[Callable[[Any], Mapping[str, object]], Callable[[Any], Any]]] = {
    ChannelInquiryRequest: (ChannelInquiryRequest.to_payload, read_channel_inquiry_request),
    ChannelInquiryResponse: (channel_inquiry_response_payload, ChannelInquiryResponse.from_payload),
    PostDataResponse: (post_data_response_payload, PostDataResponse.from_payload),
    InquiryRequest: (InquiryRequest.to_payload, read_inquiry_request),
    InquiryResponse: (inquiry_response_payload, InquiryResponse.from_payload),
    CancelRequest: (CancelRequest.to_payload, read_cancel_request),
    CancelResponse: (cancel_response_payload, CancelResponse.from_payload),
    PaymentNotification: (notification_payload, PaymentNotification.from_payload),
    NotificationAck: (NotificationAck.to_payload, read_acknowledgement_payload),
}


@pytest.mark.parametrize("message", ROUND_TRIPS, ids=lambda m: type(m).__name__)
def test_message_round_trips_through_its_payload(message: Any) -> None:
    write, read = CODECS[type(message)]
    assert read(write(message)) == message


def test_return_query_round_trips() -> None:
    query = ReturnQuery(
        bill_no="4370",
        status="0",
        trx_id="8985999990013136",
        merchant_id="99999",
        merchant="FASPAY STORE",
        bill_reff="4370",
        bill_total=Money("100", "IDR"),
        bank_user_name="FaspayTest",
        signature=SIG,
    )
    assert ReturnQuery.from_query(return_query(query)) == query


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_acknowledgement_round_trips_in_both_formats(fmt: str) -> None:
    ack = NotificationAck(trx_id="1", merchant_id="99999", bill_no="B1", response_date="x")
    parsed_fmt, parsed = read_acknowledgement(ack.to_bytes(fmt))
    assert parsed_fmt == fmt
    # The XML form has no merchant (as in the docs' sample).
    assert parsed == ack


def test_xml_acknowledgement_follows_the_docs_sample() -> None:
    ack = NotificationAck(
        trx_id="8985310250011254",
        merchant_id="31025",
        bill_no="300134486",
        response_date="2017-08-10 04:43:45",
    )
    assert ack.to_bytes("xml") == (
        b'<?xml version="1.0" encoding="utf-8"?><faspay><response>Payment Notification'
        b"</response><trx_id>8985310250011254</trx_id><merchant_id>31025</merchant_id>"
        b"<bill_no>300134486</bill_no><response_code>00</response_code>"
        b"<response_desc>Success</response_desc><response_date>2017-08-10 04:43:45"
        b"</response_date></faspay>"
    )
