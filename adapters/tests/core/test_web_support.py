"""Helpers shared by the ``test_web_*`` modules: an Acme Pay runtime, signed messages, and a
real HTTP server on loopback. There are no tests in this module."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import waitress
from waitress import wasyncore

from gateway_core import Money, PaymentStatus, Runtime, Settings, build_runtime
from gateway_core.ledger import JournalEntry, Ledger, PaymentRecord
from gateway_core.testing import HookRecorder

SECRET = "test-secret"
GATEWAY = "acme"
REFERENCE = "ord-1-1"
ORDER = "ord-1"
ACK_OK = b'{"ok": true}'
ACK_FAILED = b'{"ok": false}'
JSON = "application/json"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def acme_runtime(
    tmp_path: Path, recorder: HookRecorder, *, base_url: str = "http://127.0.0.1:9"
) -> Runtime:
    """A real runtime: the Acme Pay plugin found through its entry point, a SQLite ledger,
    ``recorder`` registered as the order system. Needs ``example_plugin_on_path``."""
    settings = Settings.from_mapping(
        {
            "providers": {
                GATEWAY: {
                    "provider": "acme_pay",
                    "account": "shop_1",
                    "api_secret": SECRET,
                    "base_url": base_url,
                }
            },
            "ledger": {"url": f"sqlite:///{tmp_path}/l.db"},
        }
    )
    return build_runtime(settings, plugins=[recorder], environ={})


def insert_pending_payment(ledger: Ledger) -> PaymentRecord:
    """The pending attempt ``ord-1-1`` (Acme id ``ac_1``) of order ``ord-1``, 10.00 USD."""
    now = datetime.now(UTC)
    return ledger.insert_payment(
        PaymentRecord(
            id=None,
            gateway=GATEWAY,
            provider="acme_pay",
            order_reference=ORDER,
            merchant_reference=REFERENCE,
            provider_reference="ac_1",
            status=PaymentStatus.PENDING,
            amount=Money("10.00", "USD"),
            merchant_id="shop_1",
            attempt=1,
            superseded=False,
            created_at=now,
            updated_at=now,
            version=0,
        )
    )


def sign(body: bytes, secret: str = SECRET) -> str:
    """Acme's signature (hex HMAC-SHA256), computed here independently of the plugin."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def acme_notification(status: str = "paid", *, size: int | None = None) -> bytes:
    """An Acme notification body for ``ord-1-1``; ``size`` pads it to exactly that many
    bytes (with an extra field the plugin ignores)."""
    data: dict[str, Any] = {
        "id": "ac_1",
        "reference": REFERENCE,
        "status": status,
        "amount_minor": 1000,
        "currency": "USD",
    }
    body = json.dumps(data).encode()
    if size is not None:
        data["padding"] = ""
        padding = size - len(json.dumps(data).encode())
        assert padding >= 0, f"an Acme notification is at least {size - padding} bytes"
        data["padding"] = "x" * padding
        body = json.dumps(data).encode()
        assert len(body) == size
    return body


def signed_headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"Acme-Signature": sign(body, secret), "Content-Type": JSON}


def signed_return(status: str = "paid", reference: str = REFERENCE) -> dict[str, str]:
    """The query Acme appends to the customer's return URL."""
    return {
        "reference": reference,
        "status": status,
        "sig": sign(f"{reference}:{status}".encode()),
    }


@attrs.frozen
class LedgerState:
    """Everything a notification could change about one payment."""

    payment: PaymentRecord | None
    transitions: int
    events: int
    journal: tuple[JournalEntry, ...]

    @classmethod
    def of(cls, ledger: Ledger, reference: str = REFERENCE) -> LedgerState:
        record = ledger.get_payment(GATEWAY, reference)
        payment_id = record.id if record is not None else None
        return cls(
            payment=record,
            transitions=len(ledger.transitions(payment_id)) if payment_id else 0,
            events=len(ledger.outbox(payment_id)) if payment_id else 0,
            journal=tuple(ledger.journal()),
        )

    def refused_since(self, before: LedgerState) -> bool:
        """Nothing changed since ``before`` but one journalled refusal (a source not
        allowed): the payment, its transitions and its events are untouched."""
        added = self.journal[len(before.journal) :]
        return (self.payment, self.transitions, self.events) == (
            before.payment,
            before.transitions,
            before.events,
        ) and [(e.verdict, e.reason) for e in added] == [("rejected", "source_not_allowed")]


@contextmanager
def serve(app: WSGIApp, **adjustments: Any) -> Iterator[str]:
    """Serve ``app`` with waitress on a free loopback port; yields the base URL.

    X-Forwarded-For is passed through to the app unless ``adjustments`` say otherwise
    (waitress strips it by default; see docs/frameworks.md).
    """
    options: dict[str, Any] = {"threads": 4, "clear_untrusted_proxy_headers": False}
    options.update(adjustments)
    server = waitress.create_server(app, host="127.0.0.1", port=0, **options)
    stop = threading.Event()

    def run() -> None:
        # waitress's own run() loops until its sockets are closed, and closing them from
        # another thread races with its poll; this loop stops between polls and closes the
        # listener and any kept-alive connections itself.
        while not stop.is_set():
            wasyncore.loop(timeout=0.02, map=server._map, count=1)
        wasyncore.close_all(server._map)

    thread = threading.Thread(target=run, name="waitress-test", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        stop.set()
        thread.join(5)
        server.task_dispatcher.shutdown()
