"""A small Midtrans stand-in for message-building tests and the conformance kit's mock run
(a :class:`~gateway_core.MockTransport` handler), until the Midtrans emulator exists; and the
shared constants of the Midtrans tests (importable as ``midtrans_support``: a unique module
name)."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from gateway_core import HttpRequest, HttpResponse, MockTransport
from gateway_midtrans_snap import (
    MidtransConfig,
    MidtransSnapGateway,
    basic_authorization,
    notification_signature,
)
from gateway_midtrans_snap._wire import JAKARTA

#: The reference's shared emulator key (§4.6); its signature vectors V2–V4 use it.
SERVER_KEY = "SB-Mid-server-Emu1ator-Shared-Key-01"
SNAP = "https://app.sandbox.midtrans.com"
API = "https://api.sandbox.midtrans.com"
NOW = datetime(2025, 6, 1, 10, 0, tzinfo=JAKARTA)


def _json(status: int, body: dict[str, Any]) -> HttpResponse:
    return HttpResponse(status, json.dumps(body).encode(), {"Content-Type": "application/json"})


class FakeMidtrans:
    """Snap sessions and Core transactions, just enough for the plugin's calls (§2, §5–§7).

    ``choose(order_id)`` is the customer picking a method on the page (a pending attempt);
    ``settle(order_id)`` the customer paying. Every request must carry the Basic header.
    """

    def __init__(self, server_key: str = SERVER_KEY) -> None:
        self.server_key = server_key
        self.sessions: dict[str, dict[str, Any]] = {}  # order_id -> session
        self.transactions: dict[str, dict[str, Any]] = {}  # order_id -> latest attempt
        self.tokens: dict[str, str] = {}  # token -> order_id
        self._refund_ids = itertools.count(3101)

    # -- the customer's side --------------------------------------------------------------

    def choose(self, order_id: str, payment_type: str = "bank_transfer") -> None:
        session = self.sessions[order_id]
        gross = session["body"]["transaction_details"]["gross_amount"]
        self.transactions[order_id] = {
            "transaction_id": str(uuid.uuid4()),
            "order_id": order_id,
            "gross_amount": f"{gross}.00",
            "currency": "IDR",
            "payment_type": payment_type,
            "transaction_time": "2025-06-01 10:02:11",
            "transaction_status": "pending",
            "fraud_status": "accept",
            "merchant_id": "G123450001",
            "refunds": [],
        }

    def settle(self, order_id: str) -> None:
        self.transactions[order_id]["transaction_status"] = "settlement"
        self.transactions[order_id]["settlement_time"] = "2025-06-01 10:15:40"

    # -- the API ----------------------------------------------------------------------------

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.headers.get("Authorization") != basic_authorization(self.server_key):
            return _json(401, {"error_messages": ["Access denied due to unauthorized transaction"]})
        path = urlsplit(request.url).path
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts == ["snap", "v1", "transactions"] and request.method == "POST":
            return self._create(json.loads(request.body))
        if parts[:3] == ["snap", "v1", "transactions"] and parts[-1] == "cancel":
            return self._cancel_session(parts[3])
        if parts[0] == "v2" and len(parts) == 3:
            return self._core(parts[1], parts[2], request)
        return _json(404, {"status_code": "404", "status_message": "not found"})

    def _create(self, body: dict[str, Any]) -> HttpResponse:
        details = body["transaction_details"]
        order_id = details["order_id"]
        items = body.get("item_details", [])
        if items and sum(i["price"] * i["quantity"] for i in items) != details["gross_amount"]:
            message = "transaction_details.gross_amount is not equal to the sum of item_details"
            return _json(400, {"error_messages": [message]})
        if order_id in self.transactions:
            message = "transaction_details.order_id has been paid and utilized"
            return _json(400, {"error_messages": [message + ", please use another order ID"]})
        old = self.sessions.get(order_id)
        if old is not None:
            self.tokens.pop(old["token"], None)  # re-created: the old token stops working
        token = str(uuid.uuid4())
        self.sessions[order_id] = {"token": token, "body": body, "state": "active"}
        self.tokens[token] = order_id
        url = f"{SNAP}/snap/v3/redirection/{token}"
        return _json(201, {"token": token, "redirect_url": url})

    def _cancel_session(self, token: str) -> HttpResponse:
        order_id = self.tokens.get(token)
        if order_id is None:
            return _json(404, {"error_messages": ["token not found"]})
        if order_id in self.transactions:
            return _json(409, {"error_messages": ["Transaction is on progress"]})
        session = self.sessions[order_id]
        if session["state"] == "canceled":
            return _json(409, {"error_messages": ["token already canceled"]})
        session["state"] = "canceled"
        return _json(200, {"canceled_at": "2025-06-03T13:09:39.776Z"})

    def _core(self, order_id: str, action: str, request: HttpRequest) -> HttpResponse:
        trx = self.transactions.get(order_id)
        if trx is None:
            body = {"status_code": "404", "status_message": "Transaction doesn't exist."}
            return _json(404, body)
        state = trx["transaction_status"]
        if action == "status":
            code = {"pending": "201", "expire": "407", "deny": "202"}.get(state, "200")
            return _json(200, self._signed({**trx, "status_code": code}))
        if action == "cancel" and state in ("pending", "capture", "authorize"):
            trx["transaction_status"] = "cancel"
            return _json(200, {**trx, "status_code": "200", "status_message": "Success"})
        if action == "expire" and state == "pending":
            trx["transaction_status"] = "expire"
            return _json(200, {**trx, "status_code": "407", "status_message": "Success"})
        if action == "refund" and state in ("settlement", "partial_refund"):
            return self._refund(trx, json.loads(request.body))
        body = {"status_code": "412", "status_message": "Merchant cannot modify the status"}
        return _json(412, body)

    def _refund(self, trx: dict[str, Any], asked: dict[str, Any]) -> HttpResponse:
        key, amount = asked["refund_key"], asked["amount"]
        for refund in trx["refunds"]:
            if refund["refund_key"] == key:  # ASSUMPTION (§7.4): same key -> 406
                return _json(406, {"status_code": "406", "status_message": "Duplicate refund ID"})
        gross = int(trx["gross_amount"].split(".")[0])
        done = sum(int(r["refund_amount"].split(".")[0]) for r in trx["refunds"])
        if amount <= 0 or done + amount > gross:
            return _json(414, {"status_code": "414", "status_message": "invalid amount"})
        refund = {
            "refund_chargeback_id": next(self._refund_ids),
            "refund_amount": f"{amount}.00",
            "created_at": "2025-06-10 11:00:02",
            "reason": asked.get("reason", ""),
            "refund_key": key,
            "refund_method": "online",
        }
        trx["refunds"].append(refund)
        trx["refund_amount"] = f"{done + amount}.00"
        trx["transaction_status"] = "refund" if done + amount == gross else "partial_refund"
        answer = {
            "status_code": "200",
            "status_message": "Success, refund request is approved",
            "transaction_id": trx["transaction_id"],
            "order_id": trx["order_id"],
            "transaction_status": trx["transaction_status"],
            "gross_amount": trx["gross_amount"],
            "refund_chargeback_id": refund["refund_chargeback_id"],
            "refund_amount": refund["refund_amount"],
            "refund_key": key,
        }
        return _json(200, answer)

    def _signed(self, body: dict[str, Any]) -> dict[str, Any]:
        signature = notification_signature(
            body["order_id"], body["status_code"], body["gross_amount"], self.server_key
        )
        return {
            **body,
            "status_message": "Success, transaction is found",
            "signature_key": signature,
        }


def make_gateway(
    fake: FakeMidtrans | None = None,
    *,
    now: datetime = NOW,
    **settings: Any,
) -> tuple[MidtransSnapGateway, MockTransport]:
    """A gateway on the stand-in (no retries' sleeping: one attempt unless asked)."""
    transport = MockTransport(fake if fake is not None else FakeMidtrans())
    config = {"server_key": SERVER_KEY, "max_retries": 0, **settings}
    gateway = MidtransSnapGateway(
        MidtransConfig.from_settings(config, {}), transport=transport, clock=lambda: now
    )
    return gateway, transport


def later(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)
