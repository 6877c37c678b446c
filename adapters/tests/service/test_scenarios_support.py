"""Helpers shared by the notification-scenario tests (``test_scenarios_*.py``, reliability plan
§7.3, N1–N11): building and posting signed Faspay messages over loopback HTTP, reading the
merchant's acknowledgements, and checking the global invariants I1–I5 after a scenario.

This module holds no tests; it is named ``test_scenarios_*`` only so that it sits with the
scenario files (pytest collects it and finds nothing).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
from defusedxml.ElementTree import fromstring

from gateway_core import EventKind, PaymentStatus
from gateway_core._state import allowed
from gateway_core.ledger import JournalEntry, PaymentRecord
from gateway_faspay_dana.testing import signed_notification, signed_return_query

S = PaymentStatus

#: Sources that may put a payment in ``paid``: a verified notification, or an inquiry (run
#: directly, after a customer's return, or by reconciliation). Never ``create``/``operator``.
PAID_SOURCES = frozenset({"notification", "inquiry", "return", "reconcile"})

#: The emulator's ``payment_status_code`` for "the provider says the money moved".
PROVIDER_PAID = frozenset({"2", "4"})

HTTP_TIMEOUT = 10.0


# -- building and sending messages ------------------------------------------------------------


def gateway(stack: Any) -> Any:
    """The configured DANA gateway: its credentials sign the test's messages."""
    return stack.service.gateways[stack.gateway_name]


def notification_for(stack: Any, record: PaymentRecord, status: str = "2", **changes: Any) -> bytes:
    """A correctly signed notification for ``record`` (its bill, trx_id and amount);
    ``changes`` are passed to :func:`signed_notification` (tampering after signing)."""
    values: dict[str, Any] = {
        "bill_no": record.merchant_reference,
        "trx_id": record.provider_reference,
        "status": status,
        "amount": record.amount,
    }
    values.update(changes)
    return signed_notification(gateway(stack), **values)


def return_query_for(stack: Any, record: PaymentRecord, status: str = "2") -> dict[str, str]:
    """The customer's signed return query for ``record`` claiming ``status``."""
    return signed_return_query(
        gateway(stack),
        bill_no=record.merchant_reference,
        trx_id=record.provider_reference,
        status=status,
        amount=record.amount,
    )


def post_notification(
    stack: Any,
    body: bytes,
    *,
    content_type: str = "application/json",
    session: requests.Session | None = None,
) -> requests.Response:
    """POST ``body`` to the merchant's notification endpoint, as Faspay would."""
    sender = session or requests
    return sender.post(
        stack.notify_url,
        data=body,
        headers={"Content-Type": content_type},
        timeout=HTTP_TIMEOUT,
    )


def get_return(
    stack: Any, query: dict[str, str], *, session: requests.Session | None = None
) -> requests.Response:
    """The customer's browser arriving at the return URL (redirects not followed)."""
    sender = session or requests
    return sender.get(stack.return_url, params=query, allow_redirects=False, timeout=HTTP_TIMEOUT)


def response_code(response: requests.Response) -> str | None:
    """``response_code`` of the merchant's acknowledgement (JSON or XML), or None."""
    body = response.content
    try:
        if body.lstrip().startswith(b"<"):
            element = fromstring(body)
            found = element.find("response_code")
            return None if found is None else (found.text or "")
        value = json.loads(body)
    except Exception:
        return None
    code = value.get("response_code") if isinstance(value, dict) else None
    return code if isinstance(code, str) else None


def pay_without_notifying(stack: Any, bill_no: str) -> None:
    """The customer pays at the provider, but every delivery of that notification is lost
    (the merchant endpoint is unreachable): the test delivers it itself."""
    stack.emulator.add_fault("notification", "drop", bill_no=bill_no, on_status="2")
    stack.emulator.pay(bill_no)
    stack.wait()


def provider_body(stack: Any, bill_no: str, status: str = "2") -> bytes:
    """The exact body the emulator built (and, with a ``drop`` fault, never delivered) for the
    last ``status`` notification of ``bill_no``."""
    deliveries = [d for d in stack.emulator.deliveries(bill_no) if d["status"] == status]
    assert deliveries, f"the emulator made no status-{status} notification for {bill_no}"
    body: str = deliveries[-1]["body"]
    return body.encode("utf-8")


# -- reading the ledger and the order system ------------------------------------------------


def journal(stack: Any, kind: str | None = None) -> list[JournalEntry]:
    """The gateway's journal (oldest first), optionally one ``kind`` only."""
    entries = stack.ledger.journal(stack.gateway_name, limit=10_000)
    return [e for e in entries if kind is None or e.kind == kind]


def verdicts(entries: Iterable[JournalEntry]) -> list[tuple[str, str]]:
    """(verdict, reason) of each entry."""
    return [(e.verdict, e.reason) for e in entries]


def paid_transitions(stack: Any, record: PaymentRecord) -> list[Any]:
    """The transitions of ``record`` into ``paid``."""
    assert record.id is not None
    return [t for t in stack.ledger.transitions(record.id) if t.to_status is S.PAID]


def effects(stack: Any, order: str, kind: EventKind) -> int:
    """How many distinct ``kind`` events the order system applied for ``order``."""
    return int(stack.recorder.effects.get((order, kind), 0))


def reviews(stack: Any, order: str) -> list[str]:
    """Reasons of the distinct ``needs_review`` events the order system received for ``order``."""
    seen: dict[str, str] = {}
    for event in stack.recorder.of_kind(EventKind.NEEDS_REVIEW):
        if event.order_reference == order:
            seen.setdefault(event.event_id, event.reason)
    return list(seen.values())


def outbox_reviews(stack: Any, record: PaymentRecord) -> list[str]:
    """Reasons of the ``needs_review`` events written to the outbox for ``record``."""
    return [
        str(event.payload.get("reason", ""))
        for event in stack.ledger.outbox(record.id)
        if event.kind is EventKind.NEEDS_REVIEW
    ]


def snapshot(stack: Any) -> dict[str, Any]:
    """Everything a rejected input must leave alone: payments, transitions, outbox, events."""
    payments = stack.ledger.list_payments(gateway=stack.gateway_name, limit=1000)
    return {
        "payments": sorted(payments, key=lambda p: p.id or 0),
        "transitions": {p.id: stack.ledger.transitions(p.id) for p in payments},
        "outbox": [e.event_id for e in stack.ledger.outbox()],
        "events": [e.event_id for e in stack.recorder.events],
    }


# -- the global invariants (reliability plan §7.3) --------------------------------------------


def assert_invariants(stack: Any, *, reconciled: bool = False) -> None:
    """I1 (when ``reconciled``), I2, I3, I4 over every payment of the stack, and every hook
    event in the outbox delivered. I5 (rejected inputs journalled) is asserted by each test
    for the inputs it sends."""
    records = stack.ledger.list_payments(gateway=stack.gateway_name, limit=1000)
    for record in records:
        assert record.id is not None
        transitions = stack.ledger.transitions(record.id)
        status = S.UNKNOWN
        for t in transitions:
            # The chain is contiguous and starts at ``unknown``.
            assert t.from_status is status, f"{record.merchant_reference}: {transitions}"
            status = t.to_status
            # I4: only allowed moves; ``paid`` only ever goes on to ``reversed``.
            assert allowed(t.from_status, t.to_status), f"{t.from_status} -> {t.to_status}"
            if t.from_status is S.PAID:
                assert t.to_status is S.REVERSED
            # I3: ``paid`` only from a verified notification or an inquiry, and only when the
            # provider (the emulator's ledger) really has the bill paid.
            if t.to_status is S.PAID:
                assert t.source in PAID_SOURCES, t
                bill = stack.emulator.bill(record.merchant_reference)
                assert bill["status"] in PROVIDER_PAID, (record.merchant_reference, bill["status"])
        assert status is record.status
        if reconciled and record.provider_reference:
            # I1: a bill the provider has settled is settled the same way locally.
            bill = stack.emulator.bill(record.merchant_reference)
            if bill["status"] in ("2", "3", "4", "7", "8"):
                expected = {"2": S.PAID, "3": S.FAILED, "4": S.REVERSED, "7": S.EXPIRED}
                assert record.status is expected.get(bill["status"], S.CANCELLED)
    # I2: at most one effect per (order, kind) for the lifecycle kinds (``created`` is one per
    # attempt, ``needs_review`` one per distinct anomaly; tests assert those themselves).
    for (order, kind), count in stack.recorder.effects.items():
        if kind not in (EventKind.CREATED, EventKind.NEEDS_REVIEW):
            assert count <= 1, f"{count} {kind.value} effects for {order}"
    # At-least-once delivery has happened: nothing is left in the outbox.
    pending = [e.event_id for e in stack.ledger.outbox(delivered=False)]
    assert pending == [], f"undelivered hook events: {pending}"


# -- one stack shared by a module's tests (for the many cheap rejection cases) ---------------


def root_conftest(config: pytest.Config) -> ModuleType:
    """``adapters/tests/conftest.py`` as pytest loaded it (its ``build_stack``, ``Store``...).

    Test folders have no ``__init__.py``, so ``import conftest`` would find whichever conftest
    was imported last; the plugin manager knows the right one."""
    wanted = Path(__file__).resolve().parent.parent / "conftest.py"
    for plugin in config.pluginmanager.get_plugins():
        filename = getattr(plugin, "__file__", None)
        if isinstance(plugin, ModuleType) and filename and Path(filename).resolve() == wanted:
            return plugin
    raise RuntimeError(f"{wanted} is not loaded")  # pragma: no cover


@contextlib.contextmanager
def open_stack(
    config: pytest.Config, backend: str, directory: Path, **options: Any
) -> Iterator[Any]:
    """A whole stack (see ``build_stack``) on ``backend`` (``sqlite`` or ``postgres``), for a
    fixture of any scope; PostgreSQL is skipped (or fails under CI) when unreachable."""
    conf = root_conftest(config)
    schema = ""
    if backend == "sqlite":
        store = conf.Store("sqlite", str(directory / "ledger.db"))
    else:
        conf.require_postgres()
        schema = f"gw_test_{uuid.uuid4().hex[:16]}"
        store = conf.Store("postgres", conf.POSTGRES_URL, schema)
    try:
        built, close = conf.build_stack(store, **options)
        try:
            yield built
        finally:
            close()
    finally:
        if schema:
            conf.drop_schema(schema)


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def new_order(prefix: str) -> str:
    """An order reference no other test of a shared stack uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
