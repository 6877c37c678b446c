"""``POST /pws/ovo_direct``: OVO "Push to Pay" from the merchant's own page (option b, §4.2).

Form-encoded ``trx_id``, ``ovo_number``, ``signature = sha1(md5(user_id + password + trx_id))``
(D23, C18). The answer's shape is undocumented; ASSUMPTION: a JSON object ``{"response": "Push
to Pay", "trx_id", "merchant_id", "bill_no", "response_code", "response_desc"}`` (HTTP 200).
Codes (ASSUMPTIONS): ``00`` push sent (``immediate`` mode) or approved (``blocking`` mode);
``17`` declined or timed out (``blocking``); missing field ``83``; unknown ``trx_id`` or not an
OVO bill ``14``; bad signature ``55`` (``bad_signature_code``); expired ``54``; paid ``81``;
cancelled ``17``; number not registered with OVO ``18``.
"""

from __future__ import annotations

import threading
from urllib.parse import parse_qs

from gateway_faspay_dana._signature import matches
from gateway_faspay_dana.emulator import _codes as codes
from gateway_faspay_dana.emulator._errors import UnknownBill
from gateway_faspay_dana.emulator._model import Bill
from gateway_faspay_dana.emulator._payers import REFUSAL_CODES, Payers, PaymentRefused
from gateway_faspay_dana.emulator._reply import Reply, json_reply
from gateway_faspay_dana.emulator._settings import Settings
from gateway_faspay_dana.emulator._store import BillStore, MerchantBook


class OvoDirect:
    """Serves the push call against the store and the simulated OVO payer."""

    def __init__(
        self,
        *,
        store: BillStore,
        merchants: MerchantBook,
        payers: Payers,
        settings: Settings,
        stopping: threading.Event,
    ) -> None:
        self._store = store
        self._merchants = merchants
        self._payers = payers
        self._settings = settings
        self._stopping = stopping

    def handle(self, raw: bytes) -> Reply:
        """Answer one push call."""
        form = {
            k: v[0]
            for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()
        }
        trx_id = form.get("trx_id", "").strip()
        number = form.get("ovo_number", "").strip()
        signature = form.get("signature", "").strip()
        missing = [k for k, v in (("trx_id", trx_id), ("ovo_number", number)) if not v]
        if not signature:
            missing.append("signature")
        if missing:
            return self._answer(trx_id, codes.MANDATORY, f"{', '.join(missing)} missing")
        with self._store.lock:
            try:
                bill = self._payers.ovo_bill(trx_id)
            except UnknownBill:
                return self._answer(trx_id, codes.INVALID_ORDER, "unknown OVO trx_id")
            merchant = self._merchants.get(bill.merchant_id)
            if merchant is None or not matches(
                signature, merchant.user_id, merchant.password, trx_id
            ):
                code = self._settings.bad_signature_code
                return self._answer(trx_id, code, "signature does not match (over trx_id)", bill)
            if not number.isdigit():
                return self._answer(trx_id, codes.FORMAT_ERROR, "ovo_number must be digits", bill)
            try:
                code = self._payers.ovo_push(bill, number)
            except PaymentRefused as exc:
                refused = REFUSAL_CODES.get(exc.reason, codes.INVALID_ORDER)
                return self._answer(trx_id, refused, str(exc), bill)
        if self._settings.ovo_push_mode == "blocking":
            self._payers.wait_for_decision(bill, self._stopping)
            with self._store.lock:
                if bill.status == codes.FAILED:
                    code = codes.ORDER_CANCELLED
        return self._answer(trx_id, code, "push sent", bill)

    def _answer(self, trx_id: str, code: str, detail: str, known: Bill | None = None) -> Reply:
        data = {
            "response": "Push to Pay",
            "trx_id": trx_id,
            "merchant_id": known.merchant_id if known else "",
            "bill_no": known.bill_no if known else "",
            "response_code": code,
            "response_desc": codes.response_desc(code, self._settings.language),
        }
        return json_reply(
            200,
            data,
            code=code,
            detail=detail,
            bill_no=known.bill_no if known else None,
            merchant_id=known.merchant_id if known else None,
        )
