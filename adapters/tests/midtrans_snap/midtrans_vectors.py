"""The examples of the Midtrans protocol reference, verbatim (invented values; server key
``SB-Mid-server-Emu1ator-Shared-Key-01``): the notifications of §4.7 and §7.5 and the Get
Status answers of §5.2, each with the ``signature_key`` the reference computed."""

from __future__ import annotations

# ruff: noqa: E501

BCA_VA_PENDING = """{
  "va_numbers": [{"bank": "bca", "va_number": "12345000001001"}],
  "transaction_time": "2025-06-01 10:02:11",
  "transaction_status": "pending",
  "transaction_id": "7c1e4b52-2f0a-4d6e-9b83-51a0c9e2d741",
  "status_message": "midtrans payment notification",
  "status_code": "201",
  "signature_key": "0baf90f295b13448dcffff5924b802b42b89274752b80eefdcdcd360b4db403786b4f5b13bfe8fab8fb61a5f78766aa5cdbcecd34e4238349cbdfbf33a127a77",
  "payment_type": "bank_transfer",
  "payment_amounts": [],
  "order_id": "ORDER-2025-0001",
  "merchant_id": "G123450001",
  "gross_amount": "250000.00",
  "fraud_status": "accept",
  "expiry_time": "2025-06-01 11:00:00",
  "currency": "IDR",
  "custom_field1": "cart-8812"
}
"""

BCA_VA_SETTLEMENT = """{
  "va_numbers": [{"bank": "bca", "va_number": "12345000001001"}],
  "transaction_time": "2025-06-01 10:02:11",
  "settlement_time": "2025-06-01 10:15:40",
  "transaction_status": "settlement",
  "transaction_id": "7c1e4b52-2f0a-4d6e-9b83-51a0c9e2d741",
  "status_message": "midtrans payment notification",
  "status_code": "200",
  "signature_key": "6696b6303f8795e1f5b4320fb1573ecf8bc50f4c982dacbb4e0ad16b49b9e4a2031e4247c8d35df7165684bb09a83d580b2852d0ba152b932a34584d3256a81d",
  "payment_type": "bank_transfer",
  "payment_amounts": [{"paid_at": "2025-06-01 10:15:39", "amount": "250000.00"}],
  "order_id": "ORDER-2025-0001",
  "merchant_id": "G123450001",
  "gross_amount": "250000.00",
  "fraud_status": "accept",
  "currency": "IDR"
}
"""

QRIS_SETTLEMENT = """{
  "transaction_type": "off-us",
  "transaction_time": "2025-06-02 14:20:05",
  "settlement_time": "2025-06-02 14:21:30",
  "transaction_status": "settlement",
  "transaction_id": "a3d9f1c0-5e7b-4b2a-8f61-0c4e2b9d7a15",
  "status_message": "midtrans payment notification",
  "status_code": "200",
  "signature_key": "54f5ee5d1026b4c37058d3dceb5f80def63bf487ca7fe7fab1990e6570f1eac0a67d87544fe9efeb111d3dd0dedaaff3cdd2d39e39c7ce7d23369629f1e04ea8",
  "payment_type": "qris",
  "order_id": "QR-2025-0042",
  "merchant_id": "G123450001",
  "issuer": "dana",
  "acquirer": "gopay",
  "gross_amount": "15000.00",
  "fraud_status": "accept",
  "currency": "IDR"
}
"""

CARD_CAPTURE = """{
  "transaction_time": "2025-06-03 09:10:00",
  "transaction_status": "capture",
  "transaction_id": "e52b7a90-1c3d-4f8e-b6a2-9d0c3f71e8b4",
  "status_message": "midtrans payment notification",
  "status_code": "200",
  "signature_key": "b12aea049e47b591aa6543843efb3e515927327d399e654e8c078434b30c63de3e1ca810c188f5090621e8bd87e9cc15fa3876cc93f4e48653873aa20cb00373",
  "payment_type": "credit_card",
  "order_id": "CC-2025-0007",
  "merchant_id": "G123450001",
  "masked_card": "48111111-1114",
  "gross_amount": "120000.00",
  "fraud_status": "accept",
  "eci": "05",
  "currency": "IDR",
  "channel_response_message": "Approved",
  "channel_response_code": "00",
  "card_type": "credit",
  "bank": "bni",
  "approval_code": "1717380600123"
}
"""

QRIS_EXPIRE = """{
  "transaction_time": "2025-06-04 08:00:00",
  "transaction_status": "expire",
  "transaction_id": "4b8e2c17-9d3a-4e65-a0f2-7c1d5b9e3a60",
  "status_message": "midtrans payment notification",
  "status_code": "202",
  "signature_key": "ff484615c47170375f43138528ce74ac9ab6e1b25592583b14b54ff17dfce7926b8957ed590fd885c1336ceb70136d119d57101562dfb4b12b1c12abac5c3fb8",
  "payment_type": "qris",
  "order_id": "cart_77.retry-2",
  "merchant_id": "G123450001",
  "gross_amount": "15000.00",
  "fraud_status": "accept",
  "currency": "IDR"
}
"""

CARD_CANCEL = """{
  "transaction_time": "2025-06-05 16:40:12",
  "transaction_status": "cancel",
  "transaction_id": "c0a7e3d1-6b2f-4a98-8e15-2f9d4c6b1a73",
  "status_message": "midtrans payment notification",
  "status_code": "202",
  "signature_key": "864f8b1c3c76008358357fceda0e7ab530fdb511b82cfc6d68a8d4b145de159d53c2bfc1a3447984da5689fb83d458ab62f10a43f373562850516e0dd7813f5b",
  "payment_type": "credit_card",
  "order_id": "CC-2025-0008",
  "masked_card": "48111111-1114",
  "bank": "bni",
  "gross_amount": "75000.00",
  "fraud_status": "accept"
}
"""

CARD_PARTIAL_REFUND = """{
  "transaction_time": "2025-06-03 09:10:00",
  "transaction_status": "partial_refund",
  "transaction_id": "e52b7a90-1c3d-4f8e-b6a2-9d0c3f71e8b4",
  "status_message": "midtrans payment notification",
  "status_code": "200",
  "signature_key": "b12aea049e47b591aa6543843efb3e515927327d399e654e8c078434b30c63de3e1ca810c188f5090621e8bd87e9cc15fa3876cc93f4e48653873aa20cb00373",
  "payment_type": "credit_card",
  "order_id": "CC-2025-0007",
  "masked_card": "48111111-1114",
  "bank": "bni",
  "gross_amount": "120000.00",
  "fraud_status": "accept",
  "currency": "IDR",
  "refund_amount": "50000.00",
  "refunds": [
    {
      "refund_chargeback_id": 3101,
      "refund_amount": "50000.00",
      "created_at": "2025-06-10 11:00:02",
      "reason": "Ukuran tidak tersedia",
      "refund_key": "CC-2025-0007-r1",
      "refund_method": "online",
      "bank_confirmed_at": "2025-06-10 11:00:40"
    }
  ]
}
"""

STATUS_PENDING = """{
  "status_code": "201",
  "status_message": "Success, transaction is found",
  "transaction_id": "7c1e4b52-2f0a-4d6e-9b83-51a0c9e2d741",
  "order_id": "ORDER-2025-0001",
  "merchant_id": "G123450001",
  "gross_amount": "250000.00",
  "currency": "IDR",
  "payment_type": "bank_transfer",
  "transaction_time": "2025-06-01 10:02:11",
  "transaction_status": "pending",
  "fraud_status": "accept",
  "va_numbers": [{"bank": "bca", "va_number": "12345000001001"}],
  "payment_amounts": [],
  "expiry_time": "2025-06-01 11:00:00",
  "signature_key": "0baf90f295b13448dcffff5924b802b42b89274752b80eefdcdcd360b4db403786b4f5b13bfe8fab8fb61a5f78766aa5cdbcecd34e4238349cbdfbf33a127a77"
}
"""

STATUS_EXPIRED = """{
  "status_code": "407",
  "status_message": "Success, transaction is found",
  "transaction_id": "91f0b6d2-3e4c-4a1b-8d7e-6c5a2f0e9b14",
  "order_id": "INV.2025.10.31-XY",
  "gross_amount": "99000.00",
  "currency": "IDR",
  "payment_type": "bank_transfer",
  "transaction_time": "2025-10-31 09:00:00",
  "transaction_status": "expire",
  "fraud_status": "accept",
  "expiry_time": "2025-11-01 09:00:00",
  "signature_key": "5cc19c0863c52913bd8180c7e9b4eb4f6900c01d0e52f391bb6ebeb85c8b0669b8084c7470f9fc0577d786bfe7d4a50a71cbd62c2238728a462a695dc85d19d3"
}
"""

NOTIFICATIONS = {
    "bca_va_pending": BCA_VA_PENDING,
    "bca_va_settlement": BCA_VA_SETTLEMENT,
    "qris_settlement": QRIS_SETTLEMENT,
    "card_capture": CARD_CAPTURE,
    "qris_expire": QRIS_EXPIRE,
    "card_cancel": CARD_CANCEL,
    "card_partial_refund": CARD_PARTIAL_REFUND,
}
STATUS_ANSWERS = {"status_pending": STATUS_PENDING, "status_expired": STATUS_EXPIRED}
